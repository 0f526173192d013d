/*
 * agent.c - "pgscope agent": the statement tracer as a long-running agent.
 * It attaches to every running cluster (or those of --pid/-D), follows
 * servers that start, restart or stop (a scan every --rescan seconds, one
 * log line per attach and detach), folds each finished statement into
 * bounded aggregates (metrics.c) and serves them to Prometheus (http.c).
 * SIGHUP re-reads --config; SIGTERM and Ctrl-C detach everything and exit 0.
 */
#include "agent.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "expo.h"
#include "http.h"
#include "metrics.h"
#include "otlp.h"
#include "stmt_source.h"
#include "tracer.h"
#include "util.h"

#define MAX_TARGETS 64
#define MAX_GIVEN 16

typedef struct AgentOpts
{
	const char *listen;
	long		top;
	bool		no_breakdown;
	bool		split;			/* parse/plan/execute times: child spans */
	bool		statements_only;
	double		rescan;
	int			npids;
	long		pids[MAX_GIVEN];
	int			ndirs;
	char	   *dirs[MAX_GIVEN];
	const char *config;
	PgsOtlpOpts otlp;			/* otlp.url NULL: no traces */
} AgentOpts;

typedef struct Attached
{
	PgsTarget	t;				/* the source points into it: heap, never moved */
	PgsStmtSource *src;
	char		cluster[PATH_MAX];	/* its data directory: the metrics' cluster label */
	PgsStmtSourceStats last;	/* the kernel's counters at the last refresh */
	PgsAgentMetrics *m_ref;
	PgsOtlp    *otlp_ref;
	int			port;			/* the server's, from postmaster.pid (0: unknown) */
	void	   *parts[5];		/* the other tracers' (parts[i] of agent_parts[i]), NULL: not attached */
} Attached;

#define NPARTS 5
static const PgsAgentPart *const agent_parts[NPARTS] = {&pgs_locks_part, &pgs_wal_part, &pgs_lwlocks_part, &pgs_io_part,
&pgs_net_part};

typedef struct Agent
{
	AgentOpts	o;
	PgsAgentMetrics *m;
	PgsHttp    *http;
	PgsOtlp    *otlp;
	Attached   *att[MAX_TARGETS];
	int			natt;
	struct
	{
		int			pid;		/* a postmaster an attach failed for */
		int			tries;
		double		retry_at;	/* pgs_now(): tried again from then on, 30 s after the first failure, doubling to 10 min */
	}			failed[MAX_TARGETS];
	int			nfailed;
	PgsAgentSelf self;
	uint64_t	lost_before,	/* the counters of sources already closed */
				undecodable_before;
	PgsOtlpStats otlp_before;	/* and those of exporters a SIGHUP replaced */
} Agent;

static volatile sig_atomic_t reload_pending = 0;

static const char usage_text[] =
	"usage: pgscope agent [--prometheus HOST:PORT] [--pid PID]... [-D DATADIR]... [--top N]\n"
	"                     [--no-breakdown] [--statements-only] [--rescan SEC] [--config FILE]\n"
	"                     [--otlp http://HOST:PORT[/v1/traces] [--sample-ratio R] [--slow-ms MS] [--raw-query]\n"
	"                     [--split]]\n"
	"  an always-on agent: traces the statements, lock and LWLock waits, WAL, IO latency and traffic\n"
	"  of every running cluster (or of those given; --statements-only: the statements alone),\n"
	"  follows servers that start, restart or stop, and serves Prometheus metrics at\n"
	"  http://HOST:PORT/metrics (default " PGS_AGENT_DEFAULT_LISTEN ": loopback); --top N queries by\n"
	"  total time get series of their own (default 100); --config FILE holds more options, one\n"
	"  per line (\"top 50\", \"pid 1234\"), re-read on SIGHUP; --otlp sends a span per statement\n"
	"  (OTLP/HTTP JSON; R of them, default 1, but errors, statements of --slow-ms (1000) or more and\n"
	"  those whose traceparent, in a sqlcommenter comment or application_name, is sampled always);\n"
	"  --split adds parse, plan and execute child spans (three more uprobes per statement);\n"
	"  needs root or CAP_BPF+CAP_PERFMON\n";

static void
on_hup(int sig)
{
	(void) sig;
	reload_pending = 1;
}

/* one option by its long name (the command line's and the config file's): 0, or 2 when bad */
static int
agent_option(AgentOpts *o, const char *name, const char *arg)
{
	double		d;
	long		l;

	if (strcmp(name, "prometheus") == 0 && pgs_http_addr_ok(arg))
		o->listen = pgs_xstrdup(arg);
	else if (strcmp(name, "top") == 0 && pgs_parse_long(arg, 1, 10000, &l))
		o->top = l;
	else if (strcmp(name, "rescan") == 0 && pgs_parse_double(arg, 0.1, 3600, &d))
		o->rescan = d;
	else if (strcmp(name, "pid") == 0 && o->npids < MAX_GIVEN && pgs_parse_long(arg, 1, 1L << 22, &l))
		o->pids[o->npids++] = l;
	else if (strcmp(name, "datadir") == 0 && o->ndirs < MAX_GIVEN)
		o->dirs[o->ndirs++] = pgs_xstrdup(arg);
	else if (strcmp(name, "no-breakdown") == 0)
		o->no_breakdown = true;
	else if (strcmp(name, "statements-only") == 0)
		o->statements_only = true;
	else if (strcmp(name, "config") == 0)
		o->config = pgs_xstrdup(arg);
	else if (strcmp(name, "otlp") == 0 && pgs_otlp_url_ok(arg))
		o->otlp.url = pgs_xstrdup(arg);
	else if (strcmp(name, "sample-ratio") == 0 && pgs_parse_double(arg, 0, 1, &d))
		o->otlp.sample_ratio = d;
	else if (strcmp(name, "slow-ms") == 0 && pgs_parse_double(arg, 0, 1e9, &d))
		o->otlp.slow_ms = d;
	else if (strcmp(name, "raw-query") == 0)
		o->otlp.raw_query = true;
	else if (strcmp(name, "split") == 0)
		o->split = true;
	else
		return 2;
	return 0;
}

/* --config FILE: "name value" per line, # comments; 0, or 2 when a line is bad (said) */
static int
read_config(AgentOpts *o, const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		line[1024];
	int			rc = 0,
				lineno = 0;

	if (f == NULL)
	{
		pgs_err("cannot read %s: %s", path, strerror(errno));
		return 2;
	}
	while (rc == 0 && fgets(line, sizeof(line), f))
	{
		char	   *name = line + strspn(line, " \t"),
				   *arg;

		lineno++;
		line[strcspn(line, "\r\n#")] = '\0';
		if (*name == '\0')
			continue;
		arg = name + strcspn(name, " \t");
		if (*arg)
			*arg++ = '\0';
		arg += strspn(arg, " \t");
		arg[strcspn(arg, " \t")] = '\0';
		if (strcmp(name, "config") == 0 || (rc = agent_option(o, name, *arg ? arg : NULL)) != 0)
		{
			pgs_err("%s:%d: not an option with a good value: \"%s%s%s\"", path, lineno, name, *arg ? " " : "", arg);
			rc = 2;
		}
	}
	fclose(f);
	return rc;
}

static void
parse_args(AgentOpts *o, int argc, char **argv)
{
	static const struct option longs[] = {
		{"prometheus", required_argument, NULL, 'P'}, {"pid", required_argument, NULL, 'p'},
		{"top", required_argument, NULL, 't'}, {"no-breakdown", no_argument, NULL, 'n'},
		{"rescan", required_argument, NULL, 'r'}, {"config", required_argument, NULL, 'c'},
		{"statements-only", no_argument, NULL, 's'}, {"otlp", required_argument, NULL, 'o'},
		{"sample-ratio", required_argument, NULL, 'R'}, {"slow-ms", required_argument, NULL, 'S'},
		{"raw-query", no_argument, NULL, 'q'}, {"split", no_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}
	};
	int			c;

	*o = (AgentOpts) {.listen = PGS_AGENT_DEFAULT_LISTEN, .top = 100, .rescan = 2,
	.otlp = {.sample_ratio = 1, .slow_ms = 1000}};
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:D:", longs, NULL)) != -1)
	{
		const char *name = c == 'D' ? "datadir" : NULL;

		for (int i = 0; name == NULL && longs[i].name; i++)
			if (longs[i].val == c)
				name = longs[i].name;
		if (c == 'h')
		{
			fputs(usage_text, stdout);
			exit(0);
		}
		if (c == '?' || c == ':')
			pgs_bad_option(argv, optind, c == ':', "agent");
		if (agent_option(o, name, optarg) != 0)
			pgs_usage("bad value for --%s: \"%s\"", name, optarg ? optarg : "");
	}
	pgs_no_more_args(argc, argv, optind, "agent");
	if (o->config && read_config(o, o->config) != 0)
		exit(2);
}

/* ---------- targets: found, attached, dropped ---------- */

static bool
is_attached(const Agent *a, int pid)
{
	for (int i = 0; i < a->natt; i++)
		if (a->att[i]->t.postmaster == pid)
			return true;
	return false;
}

/* the slot of a postmaster an attach failed for, -1 */
static int
failed_slot(const Agent *a, int pid)
{
	for (int i = 0; i < a->nfailed; i++)
		if (a->failed[i].pid == pid)
			return i;
	return -1;
}

/* whether pid failed to attach and is not due to be tried again */
static bool
failed_before(const Agent *a, int pid)
{
	int			i = failed_slot(a, pid);

	return i >= 0 && pgs_now() < a->failed[i].retry_at;
}

/* said, and tried again later: 30 s, then twice as long each time, at most 10 minutes */
static void
attach_failed(Agent *a, int pid, const char *why)
{
	int			i = failed_slot(a, pid);
	double		wait;

	if (i < 0)
	{
		if (a->nfailed == MAX_TARGETS)	/* (64 failing postmasters: the first is forgotten) */
			a->failed[0] = a->failed[--a->nfailed];
		i = a->nfailed++;
		a->failed[i].pid = pid;
		a->failed[i].tries = 0;
	}
	wait = 30.0 * (1 << (a->failed[i].tries < 5 ? a->failed[i].tries : 5));
	wait = wait < 600 ? wait : 600;
	a->failed[i].tries++;
	a->failed[i].retry_at = pgs_now() + wait;
	a->self.attach_failures++;
	pgs_err("cannot attach to the server of postmaster %d: %s (trying again in %.0f s)", pid, why, wait);
}

/* a postmaster attached after all, or gone: no longer among the failed */
static void
forget_failed(Agent *a, int pid)
{
	int			i = failed_slot(a, pid);

	if (i >= 0)
		a->failed[i] = a->failed[--a->nfailed];
}

/* the waits of a statement's span: those its cluster's parts saw pid wait within it */
static int
waits_of(void *arg, uint32_t pid, uint64_t from_ns, uint64_t to_ns, PgsWaitEvent *out, int max)
{
	Attached   *at = arg;
	int			n = 0;

	for (int i = 0; i < NPARTS && n < max; i++)
		if (at->parts[i] && agent_parts[i]->waits)
			n += agent_parts[i]->waits(at->parts[i], pid, from_ns, to_ns, out + n, max - n);
	return n;
}

static void
on_statement(const PgsStatement *s, void *arg)
{
	Attached   *at = arg;

	pgs_agent_metrics_add(at->m_ref, at->cluster, s);
	/* (more rows of a suspended portal: its statement's span was sent with the first round trip) */
	if (at->otlp_ref && !s->continues)
		pgs_otlp_statement(at->otlp_ref, s, at->port, waits_of, at);
}

/* the server's port: the fourth line of its postmaster.pid (0: unknown) */
static int
server_port(const PgsTarget *t)
{
	char		path[PATH_MAX + 32],
				seen[PATH_MAX + 64],
				line[256];
	FILE	   *f;
	int			port = 0;

	snprintf(path, sizeof(path), "%s/postmaster.pid", t->datadir);
	pgs_proc_visible_path(t->postmaster, path, seen, sizeof(seen));
	if ((f = fopen(seen, "r")) == NULL)
		return 0;
	for (int i = 0; i < 4 && fgets(line, sizeof(line), f); i++)
		if (i == 3)
			port = atoi(line);
	fclose(f);
	return port;
}

static void
attach_one(Agent *a, int pid)
{
	Attached   *at;
	char		why[PATH_MAX + 128];
	/*
	 * The client traffic from the statement tracer's socket programs (one
	 * program per event, not two); no buffer and WAL counts per statement,
	 * which no metric or span shows.
	 */
	PgsStmtSourceOpts so = {.capture_len = 1025, .breakdown = !a->o.no_breakdown, .split = a->o.split,
	.appname = a->otlp != NULL, .net = !a->o.statements_only, .no_usage = true, .duration = -1};

	if (a->natt >= MAX_TARGETS)
	{
		attach_failed(a, pid, "the agent follows at most 64 clusters");
		return;
	}
	at = pgs_xmalloc(sizeof(Attached));
	memset(at, 0, sizeof(*at));
	at->m_ref = a->m;
	if (pgs_target_of_postmaster(&at->t, pid, why, sizeof(why)) != NULL)
	{
		free(at);
		attach_failed(a, pid, why);
		return;
	}
	snprintf(at->cluster, sizeof(at->cluster), "%s", at->t.datadir[0] ? at->t.datadir : "unknown");
	at->otlp_ref = a->otlp;
	at->port = server_port(&at->t);
	if ((at->src = pgs_stmt_source_open(&at->t, &so, on_statement, at)) == NULL)
	{
		free(at);
		attach_failed(a, pid, "the statement tracer could not attach (said above)");
		return;
	}
	for (int i = 0; i < NPARTS && !a->o.statements_only; i++)
		if ((at->parts[i] = agent_parts[i] == &pgs_net_part ? pgs_net_part_over(pgs_stmt_source_net_map(at->src))
			 : agent_parts[i]->open(&at->t)) == NULL)
			pgs_err("no %s metrics for the cluster in %s (said above)", agent_parts[i]->name, at->cluster);
	a->att[a->natt++] = at;
	a->self.attaches++;
	forget_failed(a, pid);
	pgs_err("attached to the cluster in %s (postmaster %d, PostgreSQL %d, %s)%s", at->cluster, pid, at->t.major,
			at->t.bin, at->t.offsets && at->t.myprocport ? "" : "; database and user names unavailable");
}

/* the kernel's counters of at, into the agent's totals */
static void
refresh_counters(Agent *a, Attached *at)
{
	pgs_stmt_source_stats(at->src, &at->last);
}

static void
detach(Agent *a, int i, const char *why)
{
	Attached   *at = a->att[i];

	/* what the kernel has already sent is counted (and sent on) before the source closes */
	pgs_stmt_source_poll(at->src, 0);
	refresh_counters(a, at);
	a->lost_before += at->last.lost;
	a->undecodable_before += at->last.undecodable;
	pgs_stmt_source_close(at->src);
	for (int p = 0; p < NPARTS; p++)
		if (at->parts[p])
			agent_parts[p]->close(at->parts[p]);
	pgs_err("detached from the cluster in %s (postmaster %d): %s", at->cluster, at->t.postmaster, why);
	free(at);
	a->att[i] = a->att[--a->natt];
}

/* the postmasters wanted now: those of --pid and -D (followed through restarts), or every one */
static int
wanted(Agent *a, int *pids, int max)
{
	int			n = 0;

	if (a->o.npids == 0 && a->o.ndirs == 0)
		return pgs_list_postmasters(pids, max);
	for (int i = 0; i < a->o.npids && n < max; i++)
	{
		PgsTarget	t;
		char		why[PATH_MAX + 128];

		/* a --pid is its data directory from then on: a restarted server has another pid */
		if (pgs_target_of_postmaster(&t, (int) a->o.pids[i], why, sizeof(why)) == NULL && t.datadir[0] &&
			a->o.ndirs < MAX_GIVEN)
		{
			a->o.dirs[a->o.ndirs++] = pgs_xstrdup(t.datadir);
			a->o.pids[i--] = a->o.pids[--a->o.npids];
		}
		else if (pgs_process_alive((int) a->o.pids[i]))
			pids[n++] = (int) a->o.pids[i];
	}
	for (int i = 0; i < a->o.ndirs && n < max; i++)
	{
		int			pid = pgs_datadir_postmaster(a->o.dirs[i]);

		if (pid > 0)
			pids[n++] = pid;
	}
	return n;
}

static void
scan(Agent *a)
{
	int			pids[MAX_TARGETS],
				n;

	for (int i = a->natt - 1; i >= 0; i--)
		if (!pgs_process_alive(a->att[i]->t.postmaster))
			detach(a, i, "the server stopped");
	for (int i = a->nfailed - 1; i >= 0; i--)
		if (!pgs_process_alive(a->failed[i].pid))
			a->failed[i] = a->failed[--a->nfailed];
	n = wanted(a, pids, MAX_TARGETS);
	for (int i = 0; i < n; i++)
		if (!is_attached(a, pids[i]) && !failed_before(a, pids[i]))
			attach_one(a, pids[i]);
	/* a server no longer wanted (a SIGHUP changed the list) */
	for (int i = a->natt - 1; i >= 0; i--)
	{
		bool		keep = false;

		for (int j = 0; j < n && !keep; j++)
			keep = pids[j] == a->att[i]->t.postmaster;
		if (!keep)
			detach(a, i, "no longer among the targets");
	}
}

/* the other tracers' metrics of every cluster, for the next scrapes */
static void
refresh_parts(Agent *a)
{
	PgsExpo    *e = pgs_expo_new();
	PgsBuf		text;

	for (int i = 0; i < a->natt; i++)
	{
		PgsBuf		labels;

		pgs_buf_init(&labels);
		pgs_expo_label(&labels, "cluster", a->att[i]->cluster);
		for (int p = 0; p < NPARTS; p++)
			if (a->att[i]->parts[p])
				agent_parts[p]->render(a->att[i]->parts[p], labels.data, e);
		pgs_buf_free(&labels);
	}
	pgs_buf_init(&text);
	pgs_expo_write(e, &text);
	pgs_agent_metrics_set_extra(a->m, &text);
	pgs_buf_free(&text);
	pgs_expo_free(e);
}

/* the agent's own figures for the next scrape */
static void
refresh_self(Agent *a)
{
	a->self.targets = a->natt;
	a->self.events_lost = a->lost_before;
	a->self.undecodable = a->undecodable_before;
	a->self.bpf_run_ns = 0;
	for (int i = 0; i < a->natt; i++)
	{
		refresh_counters(a, a->att[i]);
		a->self.events_lost += a->att[i]->last.lost;
		a->self.undecodable += a->att[i]->last.undecodable;
		a->self.bpf_run_ns += pgs_stmt_source_run_ns(a->att[i]->src);
	}
	if (a->otlp || a->self.otlp)
	{
		PgsOtlpStats st = a->otlp_before;

		/* (exported once, the counters stay: they never go back) */
		if (a->otlp)
			pgs_otlp_stats(a->otlp, &st), pgs_otlp_stats_add(&st, &a->otlp_before);
		a->self.otlp = true;
		a->self.spans_exported = st.exported;
		a->self.spans_dropped = st.dropped;
		a->self.span_failures = st.failures;
		a->self.spans_queued = a->otlp ? st.queued : 0;
		a->self.bad_traceparent = st.bad_traceparent;
	}
	pgs_agent_metrics_set_self(a->m, &a->self);
}

/* ---------- the loop ---------- */

static void
render(PgsBuf *out, void *arg)
{
	pgs_agent_metrics_render(arg, out);
}

/* systemd's Type=notify: READY=1 to $NOTIFY_SOCKET (nothing when not started by it) */
static void
notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int			fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *) &sa,
		   (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

static bool
same_str(const char *x, const char *y)
{
	return x == y || (x && y && strcmp(x, y) == 0);
}

/*
 * SIGHUP's new trace options: the exporter replaced when they differ (what
 * the old one holds is sent first), its counters kept.  Whether the clusters
 * must be attached again (what the kernel captures changed).
 */
static bool
reload_otlp(Agent *a, AgentOpts *o)
{
	char		why[256];
	bool		reattach = (o->otlp.url == NULL) != (a->o.otlp.url == NULL) || o->split != a->o.split ||
		o->no_breakdown != a->o.no_breakdown || o->statements_only != a->o.statements_only;

	if (same_str(o->otlp.url, a->o.otlp.url) && o->otlp.sample_ratio == a->o.otlp.sample_ratio &&
		o->otlp.slow_ms == a->o.otlp.slow_ms && o->otlp.raw_query == a->o.otlp.raw_query)
		return reattach;
	if (a->otlp)
	{
		PgsOtlpStats st;

		/* no statement may reach the old exporter while it stops */
		for (int i = 0; i < a->natt; i++)
			a->att[i]->otlp_ref = NULL;
		pgs_otlp_stop(a->otlp, &st);
		pgs_otlp_stats_add(&a->otlp_before, &st);
		a->otlp = NULL;
		pgs_err("SIGHUP: stopped sending spans to %s", a->o.otlp.url);
	}
	if (o->otlp.url && (a->otlp = pgs_otlp_start(&o->otlp, why, sizeof(why))) == NULL)
	{
		pgs_err("SIGHUP: %s: no spans are sent", why);
		o->otlp.url = NULL;
	}
	else if (o->otlp.url)
		pgs_err("SIGHUP: sending spans to %s (sample ratio %g; errors and statements of %g ms or more always)",
				o->otlp.url, o->otlp.sample_ratio, o->otlp.slow_ms);
	for (int i = 0; i < a->natt; i++)
		a->att[i]->otlp_ref = a->otlp;
	return reattach || (o->otlp.url == NULL) != (a->o.otlp.url == NULL);
}

/* SIGHUP: the command line's options again, then the config file's; a bad file keeps what was in force */
static void
reload(Agent *a, const AgentOpts *base)
{
	AgentOpts	o = *base;
	char		why[256];

	reload_pending = 0;
	/* the statements that ended before the SIGHUP are done with the options they ran under */
	for (int i = 0; i < a->natt; i++)
		pgs_stmt_source_poll(a->att[i]->src, 0);
	if (base->config == NULL)
	{
		pgs_err("SIGHUP: no --config file to re-read");
		return;
	}
	if (read_config(&o, base->config) != 0)
	{
		pgs_err("SIGHUP: %s has errors: the options in force are kept", base->config);
		return;
	}
	if (strcmp(o.listen, a->o.listen) != 0)
	{
		PgsHttp    *h = pgs_http_start(o.listen, render, a->m, why, sizeof(why));

		if (h == NULL)
		{
			pgs_err("SIGHUP: %s: still serving on %s", why, a->o.listen);
			o.listen = a->o.listen;
		}
		else
		{
			pgs_http_stop(a->http);
			a->http = h;
		}
	}
	if (reload_otlp(a, &o))
		while (a->natt > 0)
			detach(a, a->natt - 1, "attached again with the new options");
	a->o = o;
	a->nfailed = 0;
	pgs_agent_metrics_set_top(a->m, (int) o.top);
	pgs_err("SIGHUP: re-read %s (metrics on %s, top %ld%s)", base->config, o.listen, o.top,
			o.otlp.url ? ", spans" : "");
	scan(a);
}

/* until SIGTERM or Ctrl-C: drain every source, rescan every --rescan seconds, refresh the own figures */
static void
run(Agent *a, const AgentOpts *base)
{
	double		next_scan = 0,
				next_self = 0;

	while (!pgs_stop)
	{
		double		now = pgs_now();

		if (reload_pending)
			reload(a, base);
		if (now >= next_scan)
		{
			scan(a);
			next_scan = now + a->o.rescan;
		}
		for (int i = a->natt - 1; i >= 0; i--)
			if (pgs_stmt_source_poll(a->att[i]->src, 0) < 0)
				detach(a, i, "its events could not be read");
		if (now >= next_self)
		{
			refresh_self(a);
			refresh_parts(a);
			next_self = now + 1;
		}
		/* events do not wake us: a round every 50 ms (a signal cuts the sleep short) */
		nanosleep(&(struct timespec) {0, 50 * 1000000L}, NULL);
	}
}

int
cmd_agent(int argc, char **argv)
{
	Agent		a;
	AgentOpts	base;
	char		why[256];
	struct sigaction sa = {.sa_handler = on_hup};

	pgs_cmd = "pgscope agent";
	memset(&a, 0, sizeof(a));
	parse_args(&a.o, argc, argv);
	base = a.o;
	pgs_tracer_prepare();
	a.m = pgs_agent_metrics_new((int) a.o.top);
	if ((a.http = pgs_http_start(a.o.listen, render, a.m, why, sizeof(why))) == NULL)
		pgs_die("%s", why);
	pgs_catch_signals();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	pgs_err("serving metrics at http://%s/metrics", a.o.listen);
	if (a.o.otlp.url && (a.otlp = pgs_otlp_start(&a.o.otlp, why, sizeof(why))) == NULL)
		pgs_die("%s", why);
	if (a.otlp)
		pgs_err("sending spans to %s (sample ratio %g; errors and statements of %g ms or more always)", a.o.otlp.url,
				a.o.otlp.sample_ratio, a.o.otlp.slow_ms);
	scan(&a);
	notify_ready();
	run(&a, &base);
	pgs_ack_stop();
	while (a.natt > 0)
		detach(&a, a.natt - 1, "the agent is stopping");
	pgs_otlp_stop(a.otlp, NULL);
	pgs_http_stop(a.http);
	pgs_agent_metrics_free(a.m);
	pgs_err("stopped");
	return 0;
}
