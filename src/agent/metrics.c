/*
 * metrics.c - the agent's aggregates and their Prometheus exposition.
 *
 * Series are (cluster, database, user): counts, errors, a duration
 * histogram with fixed bounds in seconds, and the on/off-CPU breakdown.
 * Per query: candidates keyed by the normalized text's hash, ranked by a
 * total time that halves every minute; the top N are exported with their
 * own counters, which start when a query enters the top (so every series
 * only grows), and everything else adds to queryid="other".  A query that
 * drops out leaves its series (Prometheus marks it stale), and its counts
 * go to "other", which it adds to again: the query series always add up to
 * the statements.  Both tables have fixed caps (metrics.h): the memory
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

#include "expo.h"
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
#define SHAPE_SLOTS 4096

/* a text's shape (pgs_query_shape) -> its query's slot, valid while the slot holds that id */
typedef struct ShapeMemo
{
	uint64_t	shape;
	uint64_t	id;
	int			qi;
} ShapeMemo;

typedef struct SeriesMemo
{
	uint32_t	pid;
	int			si;
} SeriesMemo;

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
	ShapeMemo	shapes[SHAPE_SLOTS];	/* most statements skip the normalizer */
	SeriesMemo	last_series[256];	/* a backend's last series, by pid: most skip the hash */
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

/*
 * q leaves the top: its series stops, and what it counted since it entered
 * goes to "other", so that the query series still add up to the statements
 * (its own series would drop out of every sum with its last scrape).
 */
static void
leave_top(PgsAgentMetrics *m, Query *q)
{
	q->exported = false;
	m->exported--;
	m->other_calls += q->calls;
	m->other_errors += q->errors;
	m->other_seconds += q->seconds;
}

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

static bool
series_is(const Series *s, const char *cluster, const char *database, const char *user)
{
	return strcmp(s->user, user) == 0 && strcmp(s->database, database) == 0 && strcmp(s->cluster, cluster) == 0;
}

/* the series of (cluster, database, user); the last slot is everything beyond the cap */
static Series *
series_of(PgsAgentMetrics *m, const char *cluster, const char *database, const char *user, uint32_t pid)
{
	uint64_t	h = 14695981039346656037ULL;
	int			slot,
				si;
	SeriesMemo *last = &m->last_series[pid % 256];

	if (last->pid == pid && last->si < m->nseries && series_is(&m->series[last->si], cluster, database, user))
		return &m->series[last->si];
	h = fnv1a(cluster, strlen(cluster) + 1, h);
	h = fnv1a(database, strlen(database) + 1, h);
	h = fnv1a(user, strlen(user), h);
	slot = (int) (h % SERIES_SLOTS);
	for (si = m->series_head[slot]; si >= 0; si = m->series[si].next)
		if (series_is(&m->series[si], cluster, database, user))
			break;
	if (si < 0 && m->nseries < PGS_AGENT_MAX_SERIES - 1)
		si = (int) (new_series(m, cluster, database, user, slot) - m->series);
	else if (si < 0)
	{
		if (m->nseries == PGS_AGENT_MAX_SERIES - 1)
			new_series(m, "other", "other", "other", -1);
		si = PGS_AGENT_MAX_SERIES - 1;
	}
	last->pid = pid;
	last->si = si;
	return &m->series[si];
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
	size_t		len = strlen(text);
	uint64_t	shape = pgs_query_shape(text, len);
	ShapeMemo  *memo = &m->shapes[shape % SHAPE_SLOTS];
	char	   *norm;
	uint64_t	id;
	int			slot,
				qi;
	Query	   *q;

	if (shape && memo->shape == shape && m->queries[memo->qi].id == memo->id && m->queries[memo->qi].text)
	{
		return &m->queries[memo->qi];
	}
	norm = pgs_normalize_query(text);
	if (strlen(norm) > PGS_AGENT_QUERY_TEXT)
	{
		norm[PGS_AGENT_QUERY_TEXT] = '\0';
		pgs_utf8_trim(norm);
	}
	id = fnv1a(norm, strlen(norm), 14695981039346656037ULL);
	slot = (int) (id % QUERY_SLOTS);
	for (qi = m->query_head[slot]; qi >= 0; qi = m->queries[qi].next)
		if (m->queries[qi].id == id)
			break;
	if (qi >= 0)
		free(norm);
	else if ((qi = query_slot(m)) < 0)
	{
		free(norm);
		return NULL;
	}
	else
	{
		q = &m->queries[qi];
		memset(q, 0, sizeof(*q));
		q->id = id;
		q->text = norm;
		q->next = m->query_head[slot];
		m->query_head[slot] = qi;
	}
	if (shape)
		*memo = (ShapeMemo) {shape, id, qi};
	return &m->queries[qi];
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
	Series	   *se;
	double		sec = s->batch ? s->duration_ns / 1e9 / (s->batch_size ? s->batch_size : 1) : s->duration_ns / 1e9;

	pthread_mutex_lock(&m->lock);
	se = series_of(m, cluster, s->database[0] ? s->database : "unknown", s->user[0] ? s->user : "unknown", s->pid);
	q = s->text_unknown ? NULL : query_of(m, s->text);
	if (q)
		q->score_ns += sec * 1e9;
	if (s->continues)
	{
		/* more rows of a suspended portal: time (and waits) of the statement counted at its first round trip */
		if (s->breakdown)
		{
			se->cpu_ns += s->cpu_ns;
			for (int i = 0; i < PGS_WAIT_CLASSES; i++)
				se->off_ns[i] += s->off_ns[i];
		}
		if (q && q->exported)
			q->seconds += sec;
		else
			m->other_seconds += sec;
		pthread_mutex_unlock(&m->lock);
		return;
	}
	observe(se, s);
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
		leave_top(m, w);
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
			leave_top(m, weakest);
			swaps++;
		}
		cand[i]->exported = true;
		cand[i]->calls = cand[i]->errors = 0;
		cand[i]->seconds = 0;
		m->exported++;
	}
	free(cand);
}

/* the labels of a series: cluster, database, user */
static void
series_labels(PgsBuf *b, const Series *s)
{
	b->len = 0;
	b->data[0] = '\0';
	pgs_expo_label(b, "cluster", s->cluster);
	pgs_expo_label(b, "database", s->database);
	pgs_expo_label(b, "user", s->user);
}

static void
render_series(PgsAgentMetrics *m, PgsExpo *e)
{
	PgsBuf		l;

	pgs_buf_init(&l);
	for (int i = 0; i < m->nseries; i++)
	{
		const Series *s = &m->series[i];

		series_labels(&l, s);
		pgs_expo_sample(e, "pgscope_statements_total", "counter", "Statements the traced servers finished.", l.data,
						(double) s->calls);
		pgs_expo_sample(e, "pgscope_statement_errors_total", "counter", "Statements that ended in an error.", l.data,
						(double) s->errors);
		pgs_expo_hist(e, "pgscope_statement_duration_seconds",
					  "Statement durations, from the request's arrival to the server's last reply (statements timed together in a batch are not observed).",
					  l.data, bucket_le, s->buckets, NBUCKETS, s->timed, s->sum_s);
	}
	pgs_buf_free(&l);
}

/* the breakdown by (cluster, database, class): the series summed over their users */
static void
render_waits(PgsAgentMetrics *m, PgsExpo *e)
{
	PgsBuf		l;

	pgs_buf_init(&l);
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
			l.len = 0;
			pgs_expo_label(&l, "cluster", s->cluster);
			pgs_expo_label(&l, "database", s->database);
			pgs_expo_label(&l, "class", k == PGS_WAIT_CLASSES ? "CPU" : pgs_wait_class_names[k]);
			pgs_expo_sample(e, "pgscope_statement_wait_seconds_total", "counter",
							"Statement time on CPU (class CPU) and off CPU by the wait event class the backend was in.",
							l.data, sums[k] / 1e9);
		}
	}
	pgs_buf_free(&l);
}

static void
query_samples(PgsExpo *e, const char *id, uint64_t calls, uint64_t errors, double seconds)
{
	char		l[64];

	snprintf(l, sizeof(l), "queryid=\"%s\"", id);
	pgs_expo_sample(e, "pgscope_query_calls_total", "counter",
					"Statements per normalized query, for the top queries by total time (since each entered the top); the rest in queryid=\"other\".",
					l, (double) calls);
	pgs_expo_sample(e, "pgscope_query_errors_total", "counter",
					"Statements per normalized query that ended in an error (as pgscope_query_calls_total).", l, (double) errors);
	pgs_expo_sample(e, "pgscope_query_seconds_total", "counter",
					"Total statement time per normalized query (as pgscope_query_calls_total).", l, seconds);
}

static void
render_queries(PgsAgentMetrics *m, PgsExpo *e)
{
	PgsBuf		l;

	pgs_buf_init(&l);
	for (int i = 0; i < m->nqueries; i++)
	{
		const Query *q = &m->queries[i];
		char		id[17];

		if (!q->text || !q->exported)
			continue;
		snprintf(id, sizeof(id), "%016llx", (unsigned long long) q->id);
		query_samples(e, id, q->calls, q->errors, q->seconds);
		l.len = 0;
		pgs_expo_label(&l, "queryid", id);
		pgs_expo_label(&l, "query", q->text);
		pgs_expo_sample(e, "pgscope_query_info", "gauge", "The normalized text of each query id exported (value 1).", l.data, 1);
	}
	query_samples(e, "other", m->other_calls, m->other_errors, m->other_seconds);
	pgs_buf_free(&l);
}

/* the agent's own: a sample without labels */
static void
own(PgsExpo *e, const char *name, const char *type, const char *help, double v)
{
	pgs_expo_sample(e, name, type, help, "", v);
}

static void
render_process(PgsExpo *e)
{
	struct rusage ru;
	long		pages = 0;
	FILE	   *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%*d %ld", &pages) != 1)
		pages = 0;
	if (f)
		fclose(f);
	getrusage(RUSAGE_SELF, &ru);
	own(e, "pgscope_agent_cpu_seconds_total", "counter", "CPU time the agent's process used, user and system.",
		ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	own(e, "pgscope_agent_resident_memory_bytes", "gauge", "The agent's resident memory.", (double) pages * sysconf(_SC_PAGESIZE));
}

static void
render_self(PgsAgentMetrics *m, PgsExpo *e)
{
	const PgsAgentSelf *s = &m->self;

	own(e, "pgscope_targets_attached", "gauge", "Clusters the agent is attached to.", s->targets);
	own(e, "pgscope_attaches_total", "counter", "Attaches to a cluster since the agent started (a restarted server counts again).", (double) s->attaches);
	own(e, "pgscope_attach_failures_total", "counter", "Attaches that failed (said in the agent's log).", (double) s->attach_failures);
	own(e, "pgscope_events_lost_total", "counter", "Events the kernel could not hand over (ring buffer full).", (double) s->events_lost);
	own(e, "pgscope_undecodable_reads_total", "counter", "Client reads that were not protocol messages the tracer could decode (their statements not counted).", (double) s->undecodable);
	own(e, "pgscope_query_candidates", "gauge", "Normalized queries tracked for the top (bounded).", m->nqueries);
	own(e, "pgscope_query_candidates_evicted_total", "counter", "Tracked queries dropped to make room for new ones.", (double) m->evicted);
	render_process(e);
	if (s->otlp)
	{
		own(e, "pgscope_otlp_spans_exported_total", "counter", "Spans the OTLP receiver accepted.", (double) s->spans_exported);
		own(e, "pgscope_otlp_spans_dropped_total", "counter", "Spans lost: the queue was full, or the receiver refused them.", (double) s->spans_dropped);
		own(e, "pgscope_otlp_export_failures_total", "counter", "Requests to the OTLP receiver that failed (retried with backoff).", (double) s->span_failures);
		own(e, "pgscope_otlp_spans_queued", "gauge", "Spans waiting for the exporter.", (double) s->spans_queued);
		own(e, "pgscope_otlp_bad_traceparent_total", "counter", "Malformed traceparent comments (ignored).", (double) s->bad_traceparent);
	}
	if (s->bpf_stats)
		own(e, "pgscope_bpf_run_seconds_total", "counter", "Time the agent's BPF programs ran in the kernel (kernel.bpf_stats_enabled).", s->bpf_run_ns / 1e9);
}

void
pgs_agent_metrics_render(PgsAgentMetrics *m, PgsBuf *out)
{
	PgsExpo    *e = pgs_expo_new();

	pthread_mutex_lock(&m->lock);
	refresh_top(m);
	render_series(m, e);
	render_waits(m, e);
	render_queries(m, e);
	render_self(m, e);
	pgs_expo_write(e, out);
	pgs_buf_append(out, m->extra.data, m->extra.len);
	pthread_mutex_unlock(&m->lock);
	pgs_expo_free(e);
}
