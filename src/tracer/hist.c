/*
 * hist.c - log2 histograms of microseconds.
 */
#include "hist.h"

#include <string.h>

void
pgs_hist_add(PgsHist *h, uint64_t ns)
{
	uint64_t	us = ns / 1000;
	int			slot = 0;

	while (us > 1 && slot < PGS_HIST_SLOTS - 1)
	{
		us >>= 1;
		slot++;
	}
	h->slots[slot]++;
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
