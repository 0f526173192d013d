/*
 * hist.c - log2 histograms of microseconds.
 */
#include "hist.h"

#include <stdlib.h>
#include <string.h>

int
pgs_hist_slot(uint64_t ns)
{
	uint64_t	us = ns / 1000;
	int			slot = 0;

	while (us > 1 && slot < PGS_HIST_SLOTS - 1)
	{
		us >>= 1;
		slot++;
	}
	return slot;
}

void
pgs_hist_add(PgsHist *h, uint64_t ns)
{
	h->slots[pgs_hist_slot(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void
pgs_hist_print(FILE *f, const PgsHist *h, const char *unit_label)
{
	int			lo = -1,
				hi = -1;
	uint64_t	peak = 0;

	for (int i = 0; i < PGS_HIST_SLOTS; i++)
		if (h->slots[i])
		{
			if (lo < 0)
				lo = i;
			hi = i;
			if (h->slots[i] > peak)
				peak = h->slots[i];
		}
	if (lo < 0)
	{
		fprintf(f, "     (no statements)\n");
		return;
	}
	fprintf(f, "%24s : %-9s distribution\n", unit_label, "count");
	for (int i = lo; i <= hi; i++)
	{
		uint64_t	from = i == 0 ? 0 : (1ULL << i),
					to = (1ULL << (i + 1)) - 1;
		int			stars = (int) (peak ? (h->slots[i] * 40 + peak - 1) / peak : 0);
		char		bar[41];

		memset(bar, '*', stars);
		bar[stars] = '\0';
		fprintf(f, "%10llu -> %-10llu : %-9llu |%-40s|\n", (unsigned long long) from,
				(unsigned long long) to, (unsigned long long) h->slots[i], bar);
	}
}

void
pgs_hist_json(PgsBuf *b, const PgsHist *h)
{
	bool		first = true;

	pgs_buf_puts(b, "[");
	for (int i = 0; i < PGS_HIST_SLOTS; i++)
	{
		if (!h->slots[i])
			continue;
		pgs_buf_printf(b, "%s{\"from_us\":%llu,\"to_us\":%llu,\"count\":%llu}", first ? "" : ",",
					   (unsigned long long) (i == 0 ? 0 : (1ULL << i)),
					   (unsigned long long) ((1ULL << (i + 1)) - 1), (unsigned long long) h->slots[i]);
		first = false;
	}
	pgs_buf_puts(b, "]");
}

/* ---------- bounded percentiles ---------- */

static int
q_bucket(uint64_t ns)
{
	int			octave;

	if (ns < ((uint64_t) 1 << PGS_Q_MIN_SHIFT))
		return 0;
	octave = 63 - __builtin_clzll(ns);
	if (octave >= PGS_Q_MIN_SHIFT + PGS_Q_OCTAVES)
		return PGS_Q_BUCKETS - 1;
	/* the PGS_Q_SUB equal steps of [2^octave, 2^(octave+1)) */
	return (octave - PGS_Q_MIN_SHIFT) * PGS_Q_SUB +
		(int) ((ns >> (octave - 5)) & (PGS_Q_SUB - 1));
}

/* the middle of bucket b */
static uint64_t
q_value(int b)
{
	int			octave = b / PGS_Q_SUB + PGS_Q_MIN_SHIFT,
				sub = b % PGS_Q_SUB;
	uint64_t	lo = ((uint64_t) 1 << octave) + ((uint64_t) sub << (octave - 5));

	return lo + ((uint64_t) 1 << (octave - 5)) / 2;
}

void
pgs_q_add(PgsQuantiles *q, uint64_t ns)
{
	if (q->n == 0 || ns < q->min_ns)
		q->min_ns = ns;
	if (ns > q->max_ns)
		q->max_ns = ns;
	if (q->buckets == NULL && q->n < PGS_Q_EXACT)
	{
		q->exact = pgs_grow(q->exact, &q->exact_cap, q->n, sizeof(uint64_t));
		q->exact[q->n++] = ns;
		return;
	}
	if (q->buckets == NULL)
	{
		q->buckets = calloc(PGS_Q_BUCKETS, sizeof(uint32_t));
		if (q->buckets == NULL)
			pgs_die("out of memory");
		for (uint64_t i = 0; i < q->n; i++)
			q->buckets[q_bucket(q->exact[i])]++;
		free(q->exact);
		q->exact = NULL;
		q->exact_cap = 0;
	}
	q->buckets[q_bucket(ns)]++;
	q->n++;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

uint64_t
pgs_q_percentile(PgsQuantiles *q, double p)
{
	uint64_t	rank,
				seen = 0;

	if (q->n == 0)
		return 0;
	rank = (uint64_t) (p / 100.0 * (double) q->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > q->n)
		rank = q->n;
	if (q->buckets != NULL && rank == q->n)
		return q->max_ns;		/* the extremes are known exactly */
	if (q->buckets != NULL && rank == 1)
		return q->min_ns;
	if (q->buckets == NULL)
	{
		qsort(q->exact, q->n, sizeof(uint64_t), cmp_u64);
		return q->exact[rank - 1];
	}
	for (int b = 0; b < PGS_Q_BUCKETS; b++)
	{
		seen += q->buckets[b];
		if (seen >= rank)
		{
			uint64_t	v = b == 0 ? q->min_ns : b == PGS_Q_BUCKETS - 1 ? q->max_ns : q_value(b);

			return v < q->min_ns ? q->min_ns : v > q->max_ns ? q->max_ns : v;
		}
	}
	return q->max_ns;
}

void
pgs_q_free(PgsQuantiles *q)
{
	free(q->exact);
	free(q->buckets);
	memset(q, 0, sizeof(*q));
}
