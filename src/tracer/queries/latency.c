/*
 * latency.c - "pgscope latency": log2 latency histograms of a running
 * server's statements per interval, overall or by normalized query,
 * database or user, and at the end a per-query table (calls, mean, p50,
 * p99, max) with percentiles exact up to 64 calls of a query and within 3%
 * beyond (hist.h), in bounded memory.
 */
#include "tracer_cmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "stmt_source.h"
#include "tracer.h"
#include "util.h"

typedef enum ByKind
{
	BY_NONE, BY_QUERY, BY_DATABASE, BY_USER
} ByKind;

typedef struct KeyStats
{
	char	   *key;
	PgsHist		interval;		/* this interval */
	PgsQuantiles q;				/* whole run, for percentiles */
	uint64_t	untimed;		/* statements of batches: counted in calls, without a time of their own */
	uint64_t	sum_ns;
	uint64_t	max_ns;
	struct KeyStats *next;
} KeyStats;

#define NBUCKETS 1024
/*
 * Memory is bounded whatever the workload: at most PGS_MAX_KEYS normalized
 * queries (or databases, users) are told apart, the rest are summed under
 * OTHER_KEY, and each keeps its percentiles in a sketch of at most 4 KiB
 * (hist.h): some 30 MB in all.
 */
#define PGS_MAX_KEYS 5000
#define OTHER_KEY "(other queries: more than 5000 distinct texts)"

typedef struct KeyTable
{
	KeyStats   *buckets[NBUCKETS];
	size_t		count;
	uint64_t	overflowed;		/* statements counted under OTHER_KEY */
} KeyTable;

typedef struct LatencyCtx
{
	int			by;				/* ByKind (an int: --by is parsed into it) */
	bool		json;
	long		top;
	const char *database;
	PgsHist		overall;		/* this interval */
	KeyTable	by_key;			/* --by, per interval */
	KeyTable	queries;		/* normalized queries, whole run */
	uint64_t	batch_statements;	/* statements without a time of their own */
	PgsBuf		out;
	double		interval;		/* -i */
} LatencyCtx;

static KeyStats *
key_get(KeyTable *t, const char *key)
{
	unsigned	h = 2166136261u;
	KeyStats   *k;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	for (k = t->buckets[h % NBUCKETS]; k; k = k->next)
		if (strcmp(k->key, key) == 0)
			return k;
	if (t->count >= PGS_MAX_KEYS && strcmp(key, OTHER_KEY) != 0)
	{
		t->overflowed++;
		return key_get(t, OTHER_KEY);
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		pgs_die("out of memory");
	k->key = pgs_xstrdup(key);
	k->next = t->buckets[h % NBUCKETS];
	t->buckets[h % NBUCKETS] = k;
	t->count++;
	return k;
}

static void
key_record(KeyStats *k, uint64_t ns, bool keep)
{
	pgs_hist_add(&k->interval, ns);
	k->sum_ns += ns;
	if (ns > k->max_ns)
		k->max_ns = ns;
	if (keep)
		pgs_q_add(&k->q, ns);
}

/* every entry of a table, most statements first */
static KeyStats **
sorted(KeyTable *t, bool by_total)
{
	KeyStats  **v = pgs_xmalloc(sizeof(KeyStats *) * (t->count + 1));
	size_t		n = 0;

	for (int b = 0; b < NBUCKETS; b++)
		for (KeyStats *k = t->buckets[b]; k; k = k->next)
			v[n++] = k;
	for (size_t i = 1; i < n; i++)
	{
		KeyStats   *x = v[i];
		size_t		j = i;

		while (j > 0 && (by_total ? v[j - 1]->sum_ns < x->sum_ns : v[j - 1]->interval.count < x->interval.count))
		{
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	v[n] = NULL;
	return v;
}

static void
on_statement(const PgsStatement *s, void *arg)
{
	LatencyCtx *c = arg;
	char	   *norm;

	/* (more rows of an earlier statement: its first round trip was the call) */
	if (s->continues || (c->database && strcmp(c->database, s->database) != 0))
		return;
	norm = pgs_normalize_query(s->text);
	/* a statement of a batch has no time of its own: a call, kept out of times and histograms */
	if (s->batch)
	{
		c->batch_statements++;
		key_get(&c->queries, norm)->untimed++;
		free(norm);
		return;
	}
	pgs_hist_add(&c->overall, s->duration_ns);
	key_record(key_get(&c->queries, norm), s->duration_ns, true);
	if (c->by != BY_NONE)
		key_record(key_get(&c->by_key, c->by == BY_QUERY ? norm : c->by == BY_DATABASE ? s->database : s->user),
				   s->duration_ns, false);
	free(norm);
}

static const char *const by_names[] = {"", "query", "database", "user"};

static void
on_tick(void *arg)
{
	LatencyCtx *c = arg;
	char		hms[32],
				iso[48];
	KeyStats  **v;

	pgs_mono_to_clock((uint64_t) (pgs_now() * 1e9), hms, sizeof(hms), iso, sizeof(iso));
	if (c->json)
	{
		c->out.len = 0;
		pgs_buf_printf(&c->out, "{\"time\":\"%s\",\"statements\":%llu,\"histogram\":", iso,
					   (unsigned long long) c->overall.count);
		pgs_hist_json(&c->out, &c->overall);
		if (c->by != BY_NONE)
		{
			bool		first = true;

			pgs_buf_printf(&c->out, ",\"by\":\"%s\",\"groups\":[", by_names[c->by]);
			v = sorted(&c->by_key, false);
			for (long i = 0; v[i] && i < c->top; i++)
			{
				if (v[i]->interval.count == 0)
					continue;
				pgs_buf_puts(&c->out, first ? "{\"key\":" : ",{\"key\":");
				first = false;
				pgs_buf_json_string(&c->out, v[i]->key);
				pgs_buf_printf(&c->out, ",\"statements\":%llu,\"histogram\":", (unsigned long long) v[i]->interval.count);
				pgs_hist_json(&c->out, &v[i]->interval);
				pgs_buf_puts(&c->out, "}");
			}
			free(v);
			pgs_buf_puts(&c->out, "]");
		}
		pgs_buf_puts(&c->out, "}\n");
		fputs(c->out.data, stdout);
	}
	else
	{
		printf("\n%s  %llu statements\n", hms, (unsigned long long) c->overall.count);
		pgs_hist_print(stdout, &c->overall, "usecs");
		if (c->by != BY_NONE)
		{
			v = sorted(&c->by_key, false);
			for (long i = 0; v[i] && i < c->top; i++)
			{
				if (v[i]->interval.count == 0)
					continue;
				printf("\n%s %s  (%llu statements)\n", by_names[c->by], v[i]->key,
					   (unsigned long long) v[i]->interval.count);
				pgs_hist_print(stdout, &v[i]->interval, "usecs");
			}
			free(v);
		}
	}
	fflush(stdout);
	memset(&c->overall, 0, sizeof(c->overall));
	for (int b = 0; b < NBUCKETS; b++)
		for (KeyStats *k = c->by_key.buckets[b]; k; k = k->next)
			memset(&k->interval, 0, sizeof(k->interval));
}

static void
print_query_table(LatencyCtx *c)
{
	KeyStats  **v = sorted(&c->queries, true);

	if (!c->json)
		printf("\n%10s %11s %11s %11s %11s %11s  %s\n", "CALLS", "TOTAL_MS", "MEAN_MS", "P50_MS", "P99_MS",
			   "MAX_MS", "QUERY");
	for (long i = 0; v[i] && i < c->top; i++)
	{
		KeyStats   *k = v[i];
		double		mean;

		if (k->q.n == 0 && k->untimed == 0)
			continue;
		mean = k->q.n ? (double) k->sum_ns / k->q.n / 1e6 : 0;
		if (c->json)
		{
			c->out.len = 0;
			pgs_buf_printf(&c->out, "{\"query\":");
			pgs_buf_json_string(&c->out, k->key);
			pgs_buf_printf(&c->out, ",\"calls\":%llu,\"untimed\":%llu,\"total_ms\":%.3f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
						   (unsigned long long) (k->q.n + k->untimed), (unsigned long long) k->untimed,
						   k->sum_ns / 1e6, mean, pgs_q_percentile(&k->q, 50) / 1e6,
						   pgs_q_percentile(&k->q, 99) / 1e6, k->max_ns / 1e6);
			fputs(c->out.data, stdout);
		}
		else
			printf("%10llu %11.3f %11.3f %11.3f %11.3f %11.3f  %.120s\n", (unsigned long long) (k->q.n + k->untimed),
				   k->sum_ns / 1e6, mean, pgs_q_percentile(&k->q, 50) / 1e6, pgs_q_percentile(&k->q, 99) / 1e6,
				   k->max_ns / 1e6, k->key);
	}
	free(v);
	fflush(stdout);
}

static const char usage_text[] =
	"usage: pgscope latency [--pid PID | -D DATADIR | --bin PATH] [-i SEC] [--by query|database|user]\n"
	"                       [-d DATABASE] [--top N] [--json] [--duration SEC]\n"
	"  log2 histograms of statement latency every interval, then calls, mean, p50, p99 and\n"
	"  max per normalized query; needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsOptSpec opts[] = {
	PGS_OPT_NUMBER("interval", 'i', PGS_ARG_DOUBLE, LatencyCtx, interval, 0.1, 86400, "seconds from 0.1 to 86400"),
	/* its words in ByKind's order, from BY_QUERY (1) */
	PGS_OPT_CHOICE("by", LatencyCtx, by, "query, database or user", "query|database|user"),
	PGS_OPT_NUMBER("top", 0, PGS_ARG_LONG, LatencyCtx, top, 1, 100000, "a whole number from 1 to 100000"),
	PGS_OPT_END
};

static const PgsCommand latency_command =
	{"pgscope latency", usage_text, opts, PGS_CMD_DATABASE};

/* the end: the last, partial interval, the query table, and what the run saw */
static void
finish(LatencyCtx *c, const PgsStmtSourceStats *st)
{
	if (c->overall.count)
		on_tick(c);
	print_query_table(c);
	fprintf(stderr, "%s: %llu statements ended, %llu events lost\n", pgs_cmd,
			(unsigned long long) st->seen, (unsigned long long) st->lost);
	if (c->batch_statements)
		fprintf(stderr, "%s: %llu statements ran in batches before their backend had the executor probes: "
				"counted in calls, but without a time of their own they are not in the times and histograms\n", pgs_cmd,
				(unsigned long long) c->batch_statements);
	pgs_stmt_source_report(st);
	if (c->queries.overflowed)
		fprintf(stderr, "%s: %llu statements of texts beyond the first %d distinct ones are summed as \"(other queries)\"\n",
				pgs_cmd, (unsigned long long) c->queries.overflowed, PGS_MAX_KEYS);
}

int
cmd_latency(int argc, char **argv)
{
	PgsTracing	tr;
	PgsStmtSourceOpts so = {.capture_len = 1025};
	PgsStmtSourceStats st;
	LatencyCtx *c = calloc(1, sizeof(LatencyCtx));
	int			rc;

	if (c == NULL)
		pgs_die("out of memory");
	c->top = 20;
	c->interval = 1;
	pgs_command_start(&latency_command, c, argc, argv, &tr);
	so.duration = tr.to.duration;
	so.tick_seconds = c->interval;
	c->database = tr.database;
	c->json = tr.to.json;
	pgs_buf_init(&c->out);
	pgs_catch_signals();
	rc = pgs_stmt_source_run(&tr.t, &so, on_statement, on_tick, c, &st);
	if (rc == 0 || pgs_target_gone)
		finish(c, &st);
	return rc;
}
