/*
 * metrics.c - the agent's aggregates and their Prometheus exposition.
 *
 * Series are (cluster, database, user): counts, errors, a duration
 * histogram with fixed bounds in seconds, and the on/off-CPU breakdown.
 * Per query: candidates keyed by the normalized text's hash, ranked by a
 * total time that halves every minute; the top N are exported with their
 * own counters, which start when a query enters the top (so every series
 * only grows), and everything else adds to queryid="other".  A query that
 * drops out leaves its series (Prometheus marks it stale) and adds to
 * "other" again.  Both tables have fixed caps (metrics.h): the memory
 * bound is about PGS_AGENT_MAX_QUERIES * (PGS_AGENT_QUERY_TEXT + 100) bytes
 * plus PGS_AGENT_MAX_SERIES * 300, some 6 MB.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

static const double bucket_le[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

typedef struct Series
{
	char	   *cluster,
			   *database,
			   *user;
	uint64_t	calls,
				errors,
				timed;			/* observed in the histogram (not timed together in a batch) */
	uint64_t	buckets[NBUCKETS];	/* per bucket, not cumulative */
	double		sum_s;
	uint64_t	cpu_ns,
				off_ns[PGS_WAIT_CLASSES];
	int			next;			/* hash chain, -1: end */
} Series;

typedef struct Query
{
	uint64_t	id;
	char	   *text;
	bool		exported;
	double		score_ns;		/* total time, halving every minute: the ranking */
	uint64_t	calls,			/* since it was exported */
				errors;
	double		seconds;
	int			next;
} Query;

#define SERIES_SLOTS 2048
#define QUERY_SLOTS 8192

struct PgsAgentMetrics
{
	pthread_mutex_t lock;
	int			top;
	Series	   *series;			/* PGS_AGENT_MAX_SERIES, the last one "other" */
	int			nseries;
	int			series_head[SERIES_SLOTS];
	Query	   *queries;		/* PGS_AGENT_MAX_QUERIES */
	int			nqueries;
	int			query_head[QUERY_SLOTS];
	int			free_query;		/* a chain of evicted slots, -1: none */
	int			exported;
	uint64_t	other_calls,
				other_errors;
	double		other_seconds;
	uint64_t	evicted;		/* candidates dropped to make room */
	double		last_decay;
	unsigned	rand_state;
	PgsAgentSelf self;
	PgsBuf		extra;			/* the other tracers' families, rendered by the tracer loop */
};

static Query *weakest_exported(PgsAgentMetrics *m);

static uint64_t
fnv1a(const char *s, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
	{
		h ^= (unsigned char) s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void
pgs_agent_queryid(const char *normalized, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long) fnv1a(normalized, strlen(normalized), 14695981039346656037ULL));
}

static double
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

PgsAgentMetrics *
pgs_agent_metrics_new(int top)
{
	PgsAgentMetrics *m = pgs_xmalloc(sizeof(PgsAgentMetrics));

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->top = top;
	m->series = pgs_xmalloc(sizeof(Series) * PGS_AGENT_MAX_SERIES);
	m->queries = pgs_xmalloc(sizeof(Query) * PGS_AGENT_MAX_QUERIES);
	memset(m->series_head, -1, sizeof(m->series_head));
	memset(m->query_head, -1, sizeof(m->query_head));
	m->free_query = -1;
	m->last_decay = mono_seconds();
	m->rand_state = 12345;
	pgs_buf_init(&m->extra);
	return m;
}

void
pgs_agent_metrics_free(PgsAgentMetrics *m)
{
	if (m == NULL)
		return;
	for (int i = 0; i < m->nseries; i++)
	{
		free(m->series[i].cluster);
		free(m->series[i].database);
		free(m->series[i].user);
	}
	for (int i = 0; i < m->nqueries; i++)
		free(m->queries[i].text);
	free(m->series);
	free(m->queries);
	pgs_buf_free(&m->extra);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static Series *
new_series(PgsAgentMetrics *m, const char *cluster, const char *database, const char *user, int slot)
{
	Series	   *s = &m->series[m->nseries];

	memset(s, 0, sizeof(*s));
	s->cluster = pgs_xstrdup(cluster);
	s->database = pgs_xstrdup(database);
	s->user = pgs_xstrdup(user);
	s->next = slot >= 0 ? m->series_head[slot] : -1;
	if (slot >= 0)
		m->series_head[slot] = m->nseries;
	m->nseries++;
	return s;
}

/* the series of (cluster, database, user); the last slot is everything beyond the cap */
static Series *
series_of(PgsAgentMetrics *m, const char *cluster, const char *database, const char *user)
{
	uint64_t	h = 14695981039346656037ULL;
	int			slot;

	h = fnv1a(cluster, strlen(cluster) + 1, h);
	h = fnv1a(database, strlen(database) + 1, h);
	h = fnv1a(user, strlen(user), h);
	slot = (int) (h % SERIES_SLOTS);
	for (int i = m->series_head[slot]; i >= 0; i = m->series[i].next)
	{
		Series	   *s = &m->series[i];

		if (strcmp(s->user, user) == 0 && strcmp(s->database, database) == 0 && strcmp(s->cluster, cluster) == 0)
			return s;
	}
	if (m->nseries < PGS_AGENT_MAX_SERIES - 1)
		return new_series(m, cluster, database, user, slot);
	if (m->nseries == PGS_AGENT_MAX_SERIES - 1)
		new_series(m, "other", "other", "other", -1);
	return &m->series[PGS_AGENT_MAX_SERIES - 1];
}

static void
unlink_query(PgsAgentMetrics *m, int qi)
{
	int		   *p = &m->query_head[m->queries[qi].id % QUERY_SLOTS];

	while (*p >= 0 && *p != qi)
		p = &m->queries[*p].next;
	if (*p == qi)
		*p = m->queries[qi].next;
}

/* a slot for a new candidate: a free one, or the lowest-ranked of 16 drawn at random (never an exported one) */
static int
query_slot(PgsAgentMetrics *m)
{
	int			victim = -1;

	if (m->free_query >= 0)
	{
		int			qi = m->free_query;

		m->free_query = m->queries[qi].next;
		return qi;
	}
	if (m->nqueries < PGS_AGENT_MAX_QUERIES)
		return m->nqueries++;
	for (int tries = 0; tries < 64 && (victim < 0 || tries < 16); tries++)
	{
		int			qi = (int) (rand_r(&m->rand_state) % PGS_AGENT_MAX_QUERIES);

		if (!m->queries[qi].exported && (victim < 0 || m->queries[qi].score_ns < m->queries[victim].score_ns))
			victim = qi;
	}
	if (victim < 0)
		return -1;
	unlink_query(m, victim);
	free(m->queries[victim].text);
	m->evicted++;
	return victim;
}

static Query *
query_of(PgsAgentMetrics *m, const char *text)
{
	char	   *norm = pgs_normalize_query(text);
	uint64_t	id;
	int			slot,
				qi;
	Query	   *q;

	if (strlen(norm) > PGS_AGENT_QUERY_TEXT)
	{
		norm[PGS_AGENT_QUERY_TEXT] = '\0';
		pgs_utf8_trim(norm);
	}
	id = fnv1a(norm, strlen(norm), 14695981039346656037ULL);
	slot = (int) (id % QUERY_SLOTS);
	for (int i = m->query_head[slot]; i >= 0; i = m->queries[i].next)
		if (m->queries[i].id == id)
		{
			free(norm);
			return &m->queries[i];
		}
	if ((qi = query_slot(m)) < 0)
	{
		free(norm);
		return NULL;
	}
	q = &m->queries[qi];
	memset(q, 0, sizeof(*q));
	q->id = id;
	q->text = norm;
	q->next = m->query_head[slot];
	m->query_head[slot] = qi;
	return q;
}

static void
observe(Series *se, const PgsStatement *s)
{
	double		sec = s->duration_ns / 1e9;
	size_t		b = 0;

	se->calls++;
	if (s->error)
		se->errors++;
	if (s->breakdown)
	{
		se->cpu_ns += s->cpu_ns;
		for (int i = 0; i < PGS_WAIT_CLASSES; i++)
			se->off_ns[i] += s->off_ns[i];
	}
	/* statements timed together have no time of their own: counted, not observed */
	if (s->batch)
		return;
	while (b < NBUCKETS && sec > bucket_le[b])
		b++;
	if (b < NBUCKETS)
		se->buckets[b]++;
	se->timed++;
	se->sum_s += sec;
}

void
pgs_agent_metrics_add(PgsAgentMetrics *m, const char *cluster, const PgsStatement *s)
{
	Query	   *q;
	double		sec = s->batch ? s->duration_ns / 1e9 / (s->batch_size ? s->batch_size : 1) : s->duration_ns / 1e9;

	pthread_mutex_lock(&m->lock);
	observe(series_of(m, cluster, s->database[0] ? s->database : "unknown", s->user[0] ? s->user : "unknown"), s);
	q = s->text_unknown ? NULL : query_of(m, s->text);
	if (q)
		q->score_ns += sec * 1e9;
	if (q && q->exported)
	{
		q->calls++;
		q->errors += s->error;
		q->seconds += sec;
	}
	else
	{
		m->other_calls++;
		m->other_errors += s->error;
		m->other_seconds += sec;
	}
	pthread_mutex_unlock(&m->lock);
}

void
pgs_agent_metrics_set_top(PgsAgentMetrics *m, int top)
{
	pthread_mutex_lock(&m->lock);
	m->top = top;
	/* fewer places: the weakest leave now */
	while (m->exported > m->top)
	{
		Query	   *w = weakest_exported(m);

		if (w == NULL)
			break;
		w->exported = false;
		m->exported--;
	}
	pthread_mutex_unlock(&m->lock);
}

void
pgs_agent_metrics_set_extra(PgsAgentMetrics *m, const PgsBuf *text)
{
	pthread_mutex_lock(&m->lock);
	m->extra.len = 0;
	pgs_buf_append(&m->extra, text->data, text->len);
	pthread_mutex_unlock(&m->lock);
}

void
pgs_agent_metrics_set_self(PgsAgentMetrics *m, const PgsAgentSelf *self)
{
	pthread_mutex_lock(&m->lock);
	m->self = *self;
	pthread_mutex_unlock(&m->lock);
}

static int
by_score_desc(const void *a, const void *b)
{
	const Query *x = *(const Query *const *) a,
			   *y = *(const Query *const *) b;

	return x->score_ns < y->score_ns ? 1 : x->score_ns > y->score_ns ? -1 : 0;
}

/* the exported query with the lowest score, NULL: none */
static Query *
weakest_exported(PgsAgentMetrics *m)
{
	Query	   *w = NULL;

	for (int i = 0; i < m->nqueries; i++)
		if (m->queries[i].text && m->queries[i].exported && (w == NULL || m->queries[i].score_ns < w->score_ns))
			w = &m->queries[i];
	return w;
}

/*
 * The top N, refreshed before a scrape: scores halve every minute; the best
 * candidates fill free places, and one that ranks above twice the weakest
 * exported query's score takes its place (up to 5 per scrape).
 */
static void
refresh_top(PgsAgentMetrics *m)
{
	double		now = mono_seconds();
	double		f = pow(0.5, (now - m->last_decay) / 60.0);
	Query	  **cand = pgs_xmalloc(sizeof(Query *) * (m->nqueries + 1));
	int			nc = 0,
				swaps = 0;

	m->last_decay = now;
	for (int i = 0; i < m->nqueries; i++)
	{
		Query	   *q = &m->queries[i];

		if (q->text == NULL)
			continue;
		q->score_ns *= f;
		if (!q->exported)
			cand[nc++] = q;
	}
	qsort(cand, nc, sizeof(Query *), by_score_desc);
	for (int i = 0; i < nc && cand[i]->score_ns > 0; i++)
	{
		if (m->exported >= m->top)
		{
			Query	   *weakest = weakest_exported(m);

			if (weakest == NULL || swaps >= 5 || cand[i]->score_ns <= 2 * weakest->score_ns)
				break;
			weakest->exported = false;
			m->exported--;
			swaps++;
		}
		cand[i]->exported = true;
		cand[i]->calls = cand[i]->errors = 0;
		cand[i]->seconds = 0;
		m->exported++;
	}
	free(cand);
}

void
pgs_agent_label_value(PgsBuf *b, const char *v)
{
	for (const char *p = v; *p; p++)
	{
		if (*p == '\\')
			pgs_buf_puts(b, "\\\\");
		else if (*p == '"')
			pgs_buf_puts(b, "\\\"");
		else if (*p == '\n')
			pgs_buf_puts(b, "\\n");
		else
			pgs_buf_append(b, p, 1);
	}
}

static void
family(PgsBuf *b, const char *name, const char *type, const char *help)
{
	pgs_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
series_labels(PgsBuf *b, const Series *s)
{
	pgs_buf_puts(b, "cluster=\"");
	pgs_agent_label_value(b, s->cluster);
	pgs_buf_puts(b, "\",database=\"");
	pgs_agent_label_value(b, s->database);
	pgs_buf_puts(b, "\",user=\"");
	pgs_agent_label_value(b, s->user);
	pgs_buf_puts(b, "\"");
}

static void
render_counts(PgsAgentMetrics *m, PgsBuf *b)
{
	family(b, "pgscope_statements_total", "counter", "Statements the traced servers finished.");
	for (int i = 0; i < m->nseries; i++)
	{
		pgs_buf_puts(b, "pgscope_statements_total{");
		series_labels(b, &m->series[i]);
		pgs_buf_printf(b, "} %llu\n", (unsigned long long) m->series[i].calls);
	}
	family(b, "pgscope_statement_errors_total", "counter", "Statements that ended in an error.");
	for (int i = 0; i < m->nseries; i++)
	{
		pgs_buf_puts(b, "pgscope_statement_errors_total{");
		series_labels(b, &m->series[i]);
		pgs_buf_printf(b, "} %llu\n", (unsigned long long) m->series[i].errors);
	}
}

static void
render_histograms(PgsAgentMetrics *m, PgsBuf *b)
{
	family(b, "pgscope_statement_duration_seconds", "histogram",
		   "Statement durations, from the request's arrival to the server's last reply (statements timed together in a batch are not observed).");
	for (int i = 0; i < m->nseries; i++)
	{
		const Series *s = &m->series[i];
		uint64_t	cum = 0;

		for (size_t k = 0; k < NBUCKETS; k++)
		{
			cum += s->buckets[k];
			pgs_buf_puts(b, "pgscope_statement_duration_seconds_bucket{");
			series_labels(b, s);
			pgs_buf_printf(b, ",le=\"%g\"} %llu\n", bucket_le[k], (unsigned long long) cum);
		}
		pgs_buf_puts(b, "pgscope_statement_duration_seconds_bucket{");
		series_labels(b, s);
		pgs_buf_printf(b, ",le=\"+Inf\"} %llu\npgscope_statement_duration_seconds_sum{", (unsigned long long) s->timed);
		series_labels(b, s);
		pgs_buf_printf(b, "} %.9f\npgscope_statement_duration_seconds_count{", s->sum_s);
		series_labels(b, s);
		pgs_buf_printf(b, "} %llu\n", (unsigned long long) s->timed);
	}
}

/* the breakdown by (cluster, database, class): the series summed over their users */
static void
render_waits(PgsAgentMetrics *m, PgsBuf *b)
{
	family(b, "pgscope_statement_wait_seconds_total", "counter",
		   "Statement time on CPU (class CPU) and off CPU by the wait event class the backend was in.");
	for (int i = 0; i < m->nseries; i++)
	{
		const Series *s = &m->series[i];
		bool		first = true;
		uint64_t	sums[PGS_WAIT_CLASSES + 1] = {0};

		for (int j = 0; j < i && first; j++)
			first = strcmp(m->series[j].cluster, s->cluster) != 0 || strcmp(m->series[j].database, s->database) != 0;
		if (!first)
			continue;
		for (int j = i; j < m->nseries; j++)
			if (strcmp(m->series[j].cluster, s->cluster) == 0 && strcmp(m->series[j].database, s->database) == 0)
			{
				sums[PGS_WAIT_CLASSES] += m->series[j].cpu_ns;
				for (int k = 0; k < PGS_WAIT_CLASSES; k++)
					sums[k] += m->series[j].off_ns[k];
			}
		for (int k = 0; k <= PGS_WAIT_CLASSES; k++)
		{
			pgs_buf_puts(b, "pgscope_statement_wait_seconds_total{cluster=\"");
			pgs_agent_label_value(b, s->cluster);
			pgs_buf_puts(b, "\",database=\"");
			pgs_agent_label_value(b, s->database);
			pgs_buf_printf(b, "\",class=\"%s\"} %.9f\n", k == PGS_WAIT_CLASSES ? "CPU" : pgs_wait_class_names[k],
						   sums[k] / 1e9);
		}
	}
}

static void
render_queries(PgsAgentMetrics *m, PgsBuf *b)
{
	static const char *const names[] = {"pgscope_query_calls_total", "pgscope_query_errors_total",
	"pgscope_query_seconds_total"};
	static const char *const helps[] = {
		"Statements per normalized query, for the top queries by total time (since each entered the top); the rest in queryid=\"other\".",
		"Statements per normalized query that ended in an error (as pgscope_query_calls_total).",
		"Total statement time per normalized query (as pgscope_query_calls_total)."
	};

	for (int f = 0; f < 3; f++)
	{
		family(b, names[f], "counter", helps[f]);
		for (int i = 0; i < m->nqueries; i++)
		{
			const Query *q = &m->queries[i];

			if (q->text && q->exported)
				pgs_buf_printf(b, f == 2 ? "%s{queryid=\"%016llx\"} %.9f\n" : "%s{queryid=\"%016llx\"} %.0f\n",
							   names[f], (unsigned long long) q->id,
							   f == 0 ? (double) q->calls : f == 1 ? (double) q->errors : q->seconds);
		}
		pgs_buf_printf(b, f == 2 ? "%s{queryid=\"other\"} %.9f\n" : "%s{queryid=\"other\"} %.0f\n", names[f],
					   f == 0 ? (double) m->other_calls : f == 1 ? (double) m->other_errors : m->other_seconds);
	}
	family(b, "pgscope_query_info", "gauge", "The normalized text of each query id exported (value 1).");
	for (int i = 0; i < m->nqueries; i++)
		if (m->queries[i].text && m->queries[i].exported)
		{
			pgs_buf_printf(b, "pgscope_query_info{queryid=\"%016llx\",query=\"", (unsigned long long) m->queries[i].id);
			pgs_agent_label_value(b, m->queries[i].text);
			pgs_buf_puts(b, "\"} 1\n");
		}
}

static void
render_self(PgsAgentMetrics *m, PgsBuf *b)
{
	const PgsAgentSelf *s = &m->self;

	family(b, "pgscope_targets_attached", "gauge", "Clusters the agent is attached to.");
	pgs_buf_printf(b, "pgscope_targets_attached %d\n", s->targets);
	family(b, "pgscope_attaches_total", "counter", "Attaches to a cluster since the agent started (a restarted server counts again).");
	pgs_buf_printf(b, "pgscope_attaches_total %llu\n", (unsigned long long) s->attaches);
	family(b, "pgscope_attach_failures_total", "counter", "Attaches that failed (said in the agent's log).");
	pgs_buf_printf(b, "pgscope_attach_failures_total %llu\n", (unsigned long long) s->attach_failures);
	family(b, "pgscope_events_lost_total", "counter", "Events the kernel could not hand over (ring buffer full).");
	pgs_buf_printf(b, "pgscope_events_lost_total %llu\n", (unsigned long long) s->events_lost);
	family(b, "pgscope_undecodable_reads_total", "counter", "Client reads that were not protocol messages the tracer could decode (their statements not counted).");
	pgs_buf_printf(b, "pgscope_undecodable_reads_total %llu\n", (unsigned long long) s->undecodable);
	family(b, "pgscope_query_candidates", "gauge", "Normalized queries tracked for the top (bounded).");
	pgs_buf_printf(b, "pgscope_query_candidates %d\n", m->nqueries);
	family(b, "pgscope_query_candidates_evicted_total", "counter", "Tracked queries dropped to make room for new ones.");
	pgs_buf_printf(b, "pgscope_query_candidates_evicted_total %llu\n", (unsigned long long) m->evicted);
	{
		struct rusage ru;
		long		pages = 0;
		FILE	   *f = fopen("/proc/self/statm", "r");

		if (f && fscanf(f, "%*d %ld", &pages) != 1)
			pages = 0;
		if (f)
			fclose(f);
		getrusage(RUSAGE_SELF, &ru);
		family(b, "pgscope_agent_cpu_seconds_total", "counter", "CPU time the agent's process used, user and system.");
		pgs_buf_printf(b, "pgscope_agent_cpu_seconds_total %.6f\n",
					   ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
		family(b, "pgscope_agent_resident_memory_bytes", "gauge", "The agent's resident memory.");
		pgs_buf_printf(b, "pgscope_agent_resident_memory_bytes %ld\n", pages * sysconf(_SC_PAGESIZE));
	}
	if (s->otlp)
	{
		family(b, "pgscope_otlp_spans_exported_total", "counter", "Spans the OTLP receiver accepted.");
		pgs_buf_printf(b, "pgscope_otlp_spans_exported_total %llu\n", (unsigned long long) s->spans_exported);
		family(b, "pgscope_otlp_spans_dropped_total", "counter", "Spans lost: the queue was full, or the receiver refused them.");
		pgs_buf_printf(b, "pgscope_otlp_spans_dropped_total %llu\n", (unsigned long long) s->spans_dropped);
		family(b, "pgscope_otlp_export_failures_total", "counter", "Requests to the OTLP receiver that failed (retried with backoff).");
		pgs_buf_printf(b, "pgscope_otlp_export_failures_total %llu\n", (unsigned long long) s->span_failures);
		family(b, "pgscope_otlp_spans_queued", "gauge", "Spans waiting for the exporter.");
		pgs_buf_printf(b, "pgscope_otlp_spans_queued %llu\n", (unsigned long long) s->spans_queued);
		family(b, "pgscope_otlp_bad_traceparent_total", "counter", "Malformed traceparent comments (ignored).");
		pgs_buf_printf(b, "pgscope_otlp_bad_traceparent_total %llu\n", (unsigned long long) s->bad_traceparent);
	}
	if (s->bpf_stats)
	{
		family(b, "pgscope_bpf_run_seconds_total", "counter", "Time the agent's BPF programs ran in the kernel (kernel.bpf_stats_enabled).");
		pgs_buf_printf(b, "pgscope_bpf_run_seconds_total %.9f\n", s->bpf_run_ns / 1e9);
	}
}

void
pgs_agent_metrics_render(PgsAgentMetrics *m, PgsBuf *out)
{
	pthread_mutex_lock(&m->lock);
	refresh_top(m);
	render_counts(m, out);
	render_histograms(m, out);
	render_waits(m, out);
	render_queries(m, out);
	pgs_buf_append(out, m->extra.data, m->extra.len);
	render_self(m, out);
	pthread_mutex_unlock(&m->lock);
}
