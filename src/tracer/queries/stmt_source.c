/*
 * stmt_source.c - open, set rodata, load, attach, poll, destroy: the one
 * place the statement tracer's BPF object is driven (after libbpf-tools'
 * flow, with its boilerplate written once).
 *
 * What it attaches: the socket tracepoints (every plain connection), the
 * server's be_tls_read/be_tls_write (TLS connections, in plain text), and
 * the executor's USDT probes query__start, query__execute__start/done and
 * transaction__abort at their call sites without the kernel's semaphore
 * handling: the BPF program raises a backend's semaphores only while it
 * works through a read that brought several statements, so everything else
 * never reaches the probes.  Semaphores it raised are lowered again when
 * tracing ends, here if the backend did not get to it first.
 */
#include "stmt_source.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queries.h"
#include "pgwire.h"
#include "queries.skel.h"
#include "util.h"

const char *const pgs_wait_class_names[PGS_WAIT_CLASSES] = {
	"NoWaitEvent", "LWLock", "Lock", "BufferPin", "Activity", "Client", "Extension", "IPC", "Timeout", "IO",
	"Runqueue"
};

struct Probing;
struct BackendStream;

typedef struct PollCtx
{
	pgs_stmt_cb cb;
	void	   *arg;
	PgsStmtSourceStats *stats;
	struct Probing *probing;
	uint64_t	min_ns;
	struct BackendStream *streams;	/* STREAM_SLOTS */
	pgs_tick_cb tick;
} PollCtx;

static void probe_backend(struct Probing *pr, uint32_t pid);

/* set around per-backend attaches: a backend that just exited is no news */
static bool quiet_libbpf = false;

/* PGSCOPE_DEBUG_EVENTS: each event and probe attach on stderr (read once: events are many) */
static bool
debug_events(void)
{
	static int	on = -1;

	if (on < 0)
		on = getenv("PGSCOPE_DEBUG_EVENTS") != NULL;
	return on;
}

static int
libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char		line[1024];

	if (quiet_libbpf && !getenv("PGSCOPE_BPF_DEBUG"))
		return 0;
	/* PGSCOPE_BPF_DEBUG=1: libbpf's whole output, verifier logs included */
	if (getenv("PGSCOPE_BPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* memlock limits are harmless where the kernel accounts BPF memory to cgroups */
	if (strstr(line, "memlock") || strstr(line, "RLIMIT"))
		return 0;
	line[strcspn(line, "\n")] = '\0';
	fprintf(stderr, "%s: libbpf: %s\n", pgs_cmd, line);
	return 0;
}

/* a C string of at most max bytes from a fixed-size field */
static char *
field_string(const char *src, size_t max)
{
	size_t		n = strnlen(src, max);

	return strndup(src, n);
}

/* the same into dst (dstsize bytes, NUL-terminated, cut if need be) */
static void
copy_field(char *dst, size_t dstsize, const char *src, size_t max)
{
	size_t		n = strnlen(src, max);

	n = n < dstsize ? n : dstsize - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * The statement's text, malloc'd: from the messages of its read, from a
 * named Parse seen earlier, or from pg_stat_activity as the kernel read it;
 * when none has it, a text that says so.
 */
static char *
statement_text(const struct pgs_query_event *e, const char *req, size_t len, PgsStatement *s)
{
	char	   *text = NULL,
			   *activity = NULL;

	if (e->flags & PGS_F_ACTIVITY)
		activity = field_string(e->text, e->text_len < PGS_MAX_TEXT ? e->text_len : PGS_MAX_TEXT);
	if (e->flags & PGS_F_EXECUTOR)
	{
		/* one of several statements of a read: which Query, which statement of it */
		unsigned	qindex = e->unit >> 16,
					unit = e->unit & 0xffff;

		s->protocol = len > 0 && req[0] == PGS_FE_QUERY ? PGS_PROTO_SIMPLE : PGS_PROTO_EXTENDED;
		if (s->protocol == PGS_PROTO_SIMPLE)
			text = pgs_proto_query_statement(req, len, qindex, unit, &s->truncated);
		if (text == NULL && activity)
		{
			text = s->protocol == PGS_PROTO_SIMPLE ? pgs_sql_statement(activity, unit) : NULL;
			if (text == NULL)
				text = pgs_xstrdup(activity);
			s->text_from_activity = true;
		}
	}
	else
	{
		/* a read may begin with the rest of a message: the first whole one is at req_off */
		size_t		off = e->req_off < len ? e->req_off : len;

		if (len > off && req[off] == PGS_FE_PARSE)
			pgs_proto_learn(e->pid, req + off, len - off);
		text = pgs_proto_text(e->pid, req + off, len - off, &s->protocol, &s->truncated);
		if (text == NULL && activity)
		{
			text = pgs_xstrdup(activity);
			s->text_from_activity = true;
		}
	}
	if (s->text_from_activity && e->text_len >= PGS_MAX_TEXT - 1)
		s->truncated = true;
	free(activity);
	if (text == NULL)
	{
		s->text_unknown = true;
		text = pgs_xstrdup("(text unknown: prepared before tracing began, and pg_stat_activity showed none)");
	}
	return text;
}

/* fields every statement of an event shares */
static void
fill_common(PgsStatement *s, const struct pgs_query_event *e)
{
	s->pid = e->pid;
	/* read in the kernel while the backend lived; /proc is a fallback only */
	s->server_pid = e->server_pid ? e->server_pid : (uint32_t) pgs_server_pid((int) e->pid);
	s->end_ns = e->end_ns;
	s->duration_ns = e->duration_ns;
	s->parse_ns = e->parse_ns;
	s->plan_ns = e->plan_ns;
	s->exec_ns = e->exec_ns;
	s->split = e->flags & PGS_F_SPLIT;
	s->continues = e->flags & PGS_F_CONTINUES;
	s->breakdown = e->flags & PGS_F_BREAKDOWN;
	s->executor = e->flags & PGS_F_EXECUTOR;
	s->tls = e->flags & PGS_F_TLS;
	s->cpu_ns = e->cpu_ns;
	memcpy(s->off_ns, e->off_ns, sizeof(s->off_ns));
	s->blks_hit = e->blks_hit;
	s->blks_read = e->blks_read;
	s->wal_records = e->wal_records;
	s->wal_bytes = e->wal_bytes;
	s->parse_at = e->parse_at;
	s->plan_at = e->plan_at;
	s->exec_at = e->exec_at;
	copy_field(s->appname, sizeof(s->appname), e->appname, sizeof(e->appname));
	s->error = e->flags & PGS_F_ERROR;
	if (s->error && e->sqlstate[0])
		snprintf(s->sqlstate, sizeof(s->sqlstate), "%.5s", e->sqlstate);
}

/*
 * Per backend, once it sent a read of several statements: its reads decoded
 * as one stream (messages straddle reads), and the texts each of its last
 * reads executes, until that read's batch event arrives (it comes when the
 * batch ended, after the next read's bytes).
 */
#define PENDING_READS 4

typedef struct ReadTexts
{
	uint32_t	seq;
	bool		simple;			/* simple Query messages */
	PgsTexts	t;
} ReadTexts;

typedef struct BackendStream
{
	uint32_t	pid;
	uint32_t	seq;			/* the last read fed */
	PgsProtoStream *st;
	ReadTexts	pending[PENDING_READS];
	unsigned	next;
	uint64_t	batches;		/* its batches, and those that took --min-ms or more */
	uint64_t	slow_batches;
} BackendStream;

#define STREAM_SLOTS 1024

static void
read_texts_free(ReadTexts *rt)
{
	pgs_texts_free(&rt->t);
	memset(rt, 0, sizeof(*rt));
}

static void
backend_stream_clear(BackendStream *bs)
{
	pgs_stream_free(bs->st);
	for (int i = 0; i < PENDING_READS; i++)
		read_texts_free(&bs->pending[i]);
	memset(bs, 0, sizeof(*bs));
}

static BackendStream *
backend_stream(PollCtx *pc, uint32_t pid)
{
	/* direct-mapped: a collision forgets a backend's stream, never mixes two */
	BackendStream *bs = &pc->streams[pid % STREAM_SLOTS];

	if (bs->pid != pid || bs->st == NULL)
	{
		backend_stream_clear(bs);
		bs->pid = pid;
		bs->st = pgs_stream_new(pid);
	}
	return bs;
}

/*
 * One read's bytes, in the order the backend read them.  Only a read that
 * executes something takes a slot: a long message's middle reads (a 60 KB
 * Parse is eight of them) come before the batch event of the read that
 * began it, and must not push its texts out.
 */
static void
on_read(PollCtx *pc, const struct pgs_query_event *e, size_t len)
{
	BackendStream *bs = backend_stream(pc, e->pid);
	ReadTexts	rt = {.seq = e->read_seq},
			   *slot = NULL;
	size_t		from = 0;

	/* a read that does not follow the last one fed starts at its first whole message */
	if (bs->seq + 1 != e->read_seq)
	{
		pgs_stream_reset(bs->st);
		from = e->req_off < len ? e->req_off : len;
	}
	if (!pgs_stream_feed(bs->st, e->req + from, len - from, &rt.t))
		pc->stats->undecodable++;
	rt.simple = pgs_stream_saw_query(bs->st);
	bs->seq = e->read_seq;
	if (rt.t.n == 0 && !(e->flags & PGS_F_BATCH_START))
	{
		read_texts_free(&rt);
		return;
	}
	/* the same read sent again (when it starts a batch): its slot is replaced (reads count from 1) */
	for (int i = 0; i < PENDING_READS && !slot; i++)
		if (bs->pending[i].seq == e->read_seq)
			slot = &bs->pending[i];
	if (!slot)
		slot = &bs->pending[bs->next++ % PENDING_READS];
	read_texts_free(slot);
	*slot = rt;
}

/*
 * Several statements of one read that ran before this backend had the
 * executor probes: each is counted and named, all carry the batch's time;
 * the probes are attached to the backend for its next ones.
 */
static void
on_batch(PollCtx *pc, const struct pgs_query_event *e, size_t len)
{
	char	  **texts = NULL;
	BackendStream *bs = backend_stream(pc, e->pid);
	ReadTexts  *rt = NULL;
	size_t		n = 0,
				cap = 0,
				later = 0,
				want;
	bool		simple = false;
	char	   *db = field_string(e->database, PGS_NAME_LEN),
			   *user = field_string(e->user, PGS_NAME_LEN);

	for (int i = 0; i < PENDING_READS && !rt; i++)
		if (bs->pending[i].seq == e->read_seq && bs->pending[i].t.text)
			rt = &bs->pending[i];
	if (rt)
		simple = rt->simple;
	/*
	 * The statements of the Sync group (or simple Query) this event
	 * answered: a read of several is answered a group at a time, and its
	 * texts are kept until its last group's event.
	 */
	for (size_t i = 0; rt && i < rt->t.n; i++)
		if (rt->t.group[i] == e->group)
		{
			texts = pgs_grow(texts, &cap, n, sizeof(char *));
			texts[n++] = rt->t.text[i];
			rt->t.text[i] = NULL;
		}
		else if (rt->t.group[i] > e->group)
			later++;
	if (rt && !later)
		read_texts_free(rt);
	/*
	 * Statements the kernel counted but whose bytes we did not get (lost,
	 * or beyond what an event holds): counted, never named.  The first
	 * group's event counts the read's Executes and Queries, the later
	 * groups' included; a later group's, only those answered before an
	 * error (a send that ends with ReadyForQuery is not walked).
	 */
	want = e->done + ((e->flags & PGS_F_ERROR) ? 1 : 0);
	if (e->group == 0 && e->unit > later && e->unit - later > want)
		want = e->unit - later;
	while (n < want)
	{
		texts = pgs_grow(texts, &cap, n, sizeof(char *));
		texts[n++] = pgs_xstrdup("(text unknown: the bytes of its read were lost)");
	}
	/*
	 * With an error, the server answered `done` statements of the group,
	 * failed the next and skipped the rest up to the Sync: those were not
	 * executions.
	 */
	if (e->flags & PGS_F_ERROR && e->done < n)
	{
		for (size_t i = e->done + 1; i < n; i++)
			free(texts[i]);
		n = e->done + 1;
	}
	pc->stats->batch_seen += n;
	if (n > 1)
		pc->stats->batch_statements += n;
	else
		pc->stats->batch_singles++;	/* not a batch after all */
	for (size_t i = 0; i < n; i++)
	{
		PgsStatement s;

		memset(&s, 0, sizeof(s));
		fill_common(&s, e);
		s.error = (e->flags & PGS_F_ERROR) && i == n - 1 && e->done < n;
		/* one statement after all (a ';' in a literal): the batch's time is its own */
		s.batch = n > 1;
		s.batch_size = (uint32_t) n;
		s.batch_index = (uint32_t) i;
		s.protocol = simple ? PGS_PROTO_SIMPLE : PGS_PROTO_EXTENDED;
		s.database = db;
		s.user = user;
		s.text = texts[i];
		s.truncated = (e->flags & PGS_F_TRUNCATED) != 0;
		if (e->duration_ns >= pc->min_ns)
		{
			pc->stats->delivered++;
			pc->cb(&s, pc->arg);
		}
		free(texts[i]);
	}
	free(texts);
	free(db);
	free(user);
	/*
	 * A batch shorter than --min-ms holds no statement that long, and the
	 * probes cost a trap per statement of the backend from then on: they go
	 * on when batches that could hold one recur (the first of a connection
	 * is slow for warming its caches, and a preempted one now and then too).
	 */
	bs = backend_stream(pc, e->pid);
	bs->batches += 1 + e->quiet;	/* and those the kernel kept to itself, all shorter than min_ns */
	if (e->duration_ns >= pc->min_ns)
		bs->slow_batches++;
	if (pc->min_ns == 0 || (bs->slow_batches >= 5 && bs->slow_batches * 5 >= bs->batches))
		probe_backend(pc->probing, e->pid);
}

static int
on_event(void *ctx, void *data, size_t size)
{
	PollCtx    *pc = ctx;
	const struct pgs_query_event *e = data;
	PgsStatement s;
	char	   *db,
			   *user,
			   *text;
	size_t		len,
				head;
	const char *req;

	/* a packed event's request follows its text (PGS_F_PACKED), others' is at req */
	if (size < offsetof(struct pgs_query_event, text))
		return 0;
	head = (e->flags & PGS_F_PACKED) ? offsetof(struct pgs_query_event, text) +
		(e->text_len < PGS_MAX_TEXT ? e->text_len : PGS_MAX_TEXT) : offsetof(struct pgs_query_event, req);
	if (size < head)
		return 0;
	req = (const char *) data + head;
	len = e->req_len;
	if (len > size - head)
		len = size - head;
	if (debug_events())
	{
		fprintf(stderr, "event kind %u pid %u seq %u lead %u unit %u done %u off %u len %zu flags %x dur %.3f ms types:",
				e->kind, e->pid, e->read_seq, e->lead, e->unit, e->done, e->req_off, len, e->flags, e->duration_ns / 1e6);
		for (size_t p = e->req_off; p + 5 <= len;)
		{
			const unsigned char *m = (const unsigned char *) req + p;
			uint32_t	ml = ((uint32_t) m[1] << 24) | ((uint32_t) m[2] << 16) | ((uint32_t) m[3] << 8) | m[4];

			fputc(m[0], stderr);
			if (ml < 4)
				break;
			p += 1 + ml;
		}
		fputc('\n', stderr);
	}
	if (e->kind == PGS_EV_PARSE)
	{
		pgs_proto_learn(e->pid, req, len);
		return 0;
	}
	if (e->kind == PGS_EV_BATCH)
	{
		on_batch(pc, e, len);
		return 0;
	}
	if (e->kind == PGS_EV_READ)
	{
		on_read(pc, e, len);
		/* with no --min-ms every statement is wanted: the probes go on at once */
		if ((e->flags & PGS_F_BATCH_START) && pc->min_ns == 0)
			probe_backend(pc->probing, e->pid);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	db = field_string(e->database, PGS_NAME_LEN);
	user = field_string(e->user, PGS_NAME_LEN);
	text = statement_text(e, req, len, &s);
	if (s.truncated || (e->flags & PGS_F_TRUNCATED))
	{
		s.truncated = true;
		pgs_utf8_trim(text);
	}
	fill_common(&s, e);
	s.database = db;
	s.user = user;
	s.text = text;
	if (!s.continues)
		pc->stats->delivered++;
	pc->cb(&s, pc->arg);
	free(text);
	free(db);
	free(user);
	return 0;
}

/* ---------- attaching ---------- */

static const char *const executor_probes[PGS_NPROBES] = {
	"query__start", "query__execute__start", "query__execute__done", "transaction__abort"
};

static struct bpf_program *
executor_prog(struct queries_bpf *skel, int i)
{
	struct bpf_program *progs[PGS_NPROBES] = {
		skel->progs.on_query_start, skel->progs.on_execute_start, skel->progs.on_execute_done, skel->progs.on_abort
	};

	return progs[i];
}

/* the executor probes in every backend (--exact-pipelines, --split): false when one is missing */
static bool
attach_executor_everywhere(const PgsTarget *t, struct queries_bpf *skel)
{
	struct bpf_link **links[PGS_NPROBES] = {
		&skel->links.on_query_start, &skel->links.on_execute_start, &skel->links.on_execute_done, &skel->links.on_abort
	};

	for (int i = 0; i < PGS_NPROBES; i++)
		if ((*links[i] = pgs_attach_probe(executor_prog(skel, i), t, executor_probes[i])) == NULL)
		{
			pgs_err("cannot attach to postgresql:%s in %s (%s): statements of pipelines and multi-statement "
					"queries are counted and timed together, not one by one", executor_probes[i], t->bin, strerror(errno));
			return false;
		}
	return true;
}

/*
 * Backends that sent several statements in one read get the executor probes
 * for the rest of their life (the kernel raises their semaphores in that
 * process alone); links are dropped when the backend exits.  Destroying a
 * uprobe link waits for the kernel (some 100 ms here), so that happens on a
 * thread of its own.
 */
#define PROBE_LINKS (PGS_NPROBES * PGS_USDT_MAX_SITES)

typedef struct ProbedBackend
{
	uint32_t	pid;
	int			nlinks;
	struct bpf_link *links[PROBE_LINKS];
} ProbedBackend;

typedef struct Probing
{
	struct queries_bpf *skel;
	const PgsTarget *t;
	bool		available;		/* the binary has the probes */
	const PgsUsdt *usdt;		/* their sites and semaphores (PGS_NPROBES) */
	bool		everywhere;
	ProbedBackend *backends;
	size_t		n,
				cap;
	uint32_t   *gone;			/* backends an attach failed for */
	size_t		ngone,
				gone_cap;
	uint64_t	attached;
	pthread_t  *threads;
	size_t		nthreads,
				tcap;
} Probing;

static void *
destroy_links(void *arg)
{
	ProbedBackend *pb = arg;

	for (int i = 0; i < pb->nlinks; i++)
		bpf_link__destroy(pb->links[i]);
	free(pb);
	return NULL;
}

static void
drop_backend(Probing *pr, size_t i)
{
	ProbedBackend *copy = pgs_xmalloc(sizeof(*copy));
	pthread_t	th;

	*copy = pr->backends[i];
	bpf_map_delete_elem(bpf_map__fd(pr->skel->maps.probed), &copy->pid);
	pr->backends[i] = pr->backends[--pr->n];
	if (pthread_create(&th, NULL, destroy_links, copy) != 0)
	{
		destroy_links(copy);
		return;
	}
	pr->threads = pgs_grow(pr->threads, &pr->tcap, pr->nthreads, sizeof(pthread_t));
	pr->threads[pr->nthreads++] = th;
}

static void
probe_backend(struct Probing *pr, uint32_t pid)
{
	ProbedBackend pb = {.pid = pid};
	uint32_t	one = 1;

	if (!pr->available || pr->everywhere)
		return;
	for (size_t i = 0; i < pr->n; i++)
		if (pr->backends[i].pid == pid)
			return;
	for (size_t i = 0; i < pr->ngone; i++)
		if (pr->gone[i] == pid)
			return;
	/*
	 * Each call site as a uprobe of this process with the probe's semaphore
	 * as its reference counter: what libbpf's USDT attach does, without
	 * parsing the binary again for every backend.
	 */
	quiet_libbpf = true;
	for (int i = 0; i < PGS_NPROBES; i++)
		for (int k = 0; k < pr->usdt[i].nsites; k++)
		{
			LIBBPF_OPTS(bpf_uprobe_opts, opts, .ref_ctr_offset = (size_t) pr->usdt[i].semaphore_offset);
			struct bpf_link *l = bpf_program__attach_uprobe_opts(executor_prog(pr->skel, i), (int) pid, pr->t->bin,
																 (size_t) pr->usdt[i].site_offsets[k], &opts);

			if (l == NULL)
			{
				int			e = errno;

				quiet_libbpf = false;
				for (int j = 0; j < pb.nlinks; j++)
					bpf_link__destroy(pb.links[j]);
				/* not tried again for this backend (it has usually exited meanwhile) */
				pr->gone = pgs_grow(pr->gone, &pr->gone_cap, pr->ngone, sizeof(uint32_t));
				pr->gone[pr->ngone++] = pid;
				if (e != ESRCH)
					pgs_err("cannot attach the executor probes to backend %u: %s", pid, strerror(e));
				return;
			}
			pb.links[pb.nlinks++] = l;
		}
	quiet_libbpf = false;
	if (debug_events())
		fprintf(stderr, "attached the executor probes to %u at %.6f\n", pid, pgs_now());
	pr->backends = pgs_grow(pr->backends, &pr->cap, pr->n, sizeof(ProbedBackend));
	pr->backends[pr->n++] = pb;
	pr->attached++;
	bpf_map_update_elem(bpf_map__fd(pr->skel->maps.probed), &pid, &one, BPF_ANY);
}

/* backends that exited lose their links, and their pids may be used again */
static void
probing_sweep(Probing *pr)
{
	for (size_t i = pr->ngone; i > 0; i--)
	{
		char		path[64];

		snprintf(path, sizeof(path), "/proc/%u", pr->gone[i - 1]);
		if (access(path, F_OK) != 0)
			pr->gone[i - 1] = pr->gone[--pr->ngone];
	}
	/*
	 * Unregistering a uprobe holds it against registrations for a while (a
	 * grace period, some 100 ms per link here), and a backend that starts
	 * pipelining then runs untimed meanwhile: links of exited backends are
	 * kept (harmless: their process is gone) until many have piled up.
	 */
	size_t		dead = 0;

	for (size_t i = 0; i < pr->n; i++)
	{
		char		path[64];

		snprintf(path, sizeof(path), "/proc/%u", pr->backends[i].pid);
		if (access(path, F_OK) != 0)
			dead++;
	}
	if (dead < 256)
		return;
	for (size_t i = pr->n; i > 0; i--)
	{
		char		path[64];

		snprintf(path, sizeof(path), "/proc/%u", pr->backends[i - 1].pid);
		if (access(path, F_OK) != 0)
			drop_backend(pr, i - 1);
	}
}

static void
probing_end(Probing *pr)
{
	while (pr->n > 0)
		drop_backend(pr, pr->n - 1);
	for (size_t i = 0; i < pr->nthreads; i++)
		pthread_join(pr->threads[i], NULL);
	free(pr->threads);
	free(pr->backends);
	free(pr->gone);
	pr->threads = NULL;
	pr->backends = NULL;
	pr->nthreads = pr->n = 0;
}

/* TLS reads and be_tls_write: only TLS connections pay for these uprobes */
static void
attach_tls(const PgsTarget *t, struct queries_bpf *skel, const PgsTlsReadSite *site)
{
	if (!pgs_attach_tls_read(t, site, skel->progs.on_tls_read_done, &skel->links.on_tls_read_done,
							 skel->progs.on_tls_read, &skel->links.on_tls_read, skel->progs.on_tls_read_ret,
							 &skel->links.on_tls_read_ret) ||
		!(skel->links.on_tls_write = pgs_attach_func(skel->progs.on_tls_write, t, "be_tls_write", false)))
		pgs_err("TLS connections are not traced: %s does not export be_tls_read/be_tls_write (%s)",
				t->bin, strerror(errno));
}

/* --split: the parse and plan probes; without them statements are still traced */
static void
attach_split(const PgsTarget *t, struct queries_bpf *skel)
{
	static const char *const probes[4] = {
		"query__parse__start", "query__parse__done", "query__plan__start", "query__plan__done"
	};
	struct bpf_program *progs[4] = {
		skel->progs.on_parse_start, skel->progs.on_parse_done, skel->progs.on_plan_start, skel->progs.on_plan_done
	};
	struct bpf_link **links[4] = {
		&skel->links.on_parse_start, &skel->links.on_parse_done, &skel->links.on_plan_start, &skel->links.on_plan_done
	};

	for (int i = 0; i < 4; i++)
		if ((*links[i] = pgs_attach_probe(progs[i], t, probes[i])) == NULL)
		{
			pgs_err("parse/plan/execute split unavailable: %s has no USDT probe postgresql:%s (%s); tracing statements without it",
					t->bin, probes[i], strerror(errno));
			return;
		}
}

/* what the program reads in the backend, at the addresses and offsets of this binary */
static void
set_reading(struct queries_bpf *skel, const PgsTarget *t, const PgsStmtSourceOpts *o)
{
	if (t->myprocport && t->offsets)
	{
		skel->rodata->myprocport_addr = t->myprocport;
		skel->rodata->off_database_name = t->offsets->port_database_name;
		skel->rodata->off_user_name = t->offsets->port_user_name;
	}
	if (t->mybeentry && t->offsets && t->offsets->beentry_activity_raw)
	{
		skel->rodata->mybeentry_addr = t->mybeentry;
		skel->rodata->off_activity_raw = t->offsets->beentry_activity_raw;
	}
	skel->rodata->my_wait_event_info_addr = t->my_wait_event_info;
	if (t->offsets && !o->no_usage)
	{
		skel->rodata->pgbufferusage_addr = t->pgbufferusage;
		skel->rodata->pgwalusage_addr = t->pgwalusage;
		skel->rodata->off_blks_hit = t->offsets->bufusage_shared_hit;
		skel->rodata->off_blks_read = t->offsets->bufusage_shared_read;
		skel->rodata->off_wal_records = t->offsets->walusage_records;
		skel->rodata->off_wal_bytes = t->offsets->walusage_bytes;
	}
}

/* the program loaded with what o asks for, attached: NULL when statements cannot be traced (said) */
static struct queries_bpf *
attach(const PgsTarget *t, const PgsStmtSourceOpts *o, bool everywhere)
{
	struct queries_bpf *skel;
	PgsTlsReadSite site;

	PGS_SKEL_OPEN(queries, skel, t);
	if (pgs_tls_read_choose(t, &site, skel->progs.on_tls_read_done, skel->progs.on_tls_read,
							skel->progs.on_tls_read_ret))
		skel->rodata->tls_ptr_reg = (uint32_t) site.ptr_reg;
	skel->rodata->min_ns = o->min_ns;
	skel->rodata->capture_len = o->capture_len;
	skel->rodata->all_probed = everywhere;
	skel->rodata->breakdown = o->breakdown;
	skel->rodata->split = o->split;
	skel->rodata->read_appname = o->appname;
	skel->rodata->keep_net = o->net;
	skel->rodata->application_name_addr = t->application_name;
	set_reading(skel, t, o);
	bpf_program__set_autoload(skel->progs.on_parse_start, o->split);
	bpf_program__set_autoload(skel->progs.on_parse_done, o->split);
	bpf_program__set_autoload(skel->progs.on_plan_start, o->split);
	bpf_program__set_autoload(skel->progs.on_plan_done, o->split);
	bpf_program__set_autoload(skel->progs.on_switch, o->breakdown);
	if (o->breakdown && !t->my_wait_event_info)
		pgs_err("wait event classes unavailable: %s does not export my_wait_event_info; off-CPU time is reported unclassified",
				t->bin);
	PGS_SKEL_LOAD(queries, skel);
	if (!(skel->links.on_recv = bpf_program__attach(skel->progs.on_recv)) ||
		!(skel->links.on_send = bpf_program__attach(skel->progs.on_send)))
	{
		pgs_err("cannot attach to the socket tracepoints sock:sock_recv_length/sock_send_length (Linux 6.6 or later): %s", strerror(errno));
		goto cleanup;
	}
	if (o->breakdown && !(skel->links.on_switch = bpf_program__attach(skel->progs.on_switch)))
	{
		pgs_err("cannot attach to sched:sched_switch for --breakdown: %s", strerror(errno));
		goto cleanup;
	}
	attach_tls(t, skel, &site);
	if (everywhere && !attach_executor_everywhere(t, skel))
		goto cleanup;
	if (o->split)
		attach_split(t, skel);
	PGS_SKEL_ATTACHED(queries, skel);
}

void
pgs_stmt_source_report(const PgsStmtSourceStats *st)
{
	if (st->batches)
		pgs_err("%llu batches (a read's statements up to a Sync; %llu statements) ran without the executor probes in their backend "
				"(before they were attached, or, with --min-ms, while none of its batches took that long): counted, "
				"each with the batch's time; --exact-pipelines times every one from the start",
				(unsigned long long) st->batches, (unsigned long long) (st->batch_statements + st->quiet));
	if (st->continued)
		pgs_err("%llu round trips fetched more rows of a statement's suspended portal (an Execute with a row limit, "
				"as JDBC's fetch size sends): parts of their statements, not counted as statements",
				(unsigned long long) st->continued);
	if (st->gssapi)
		pgs_err("%llu connections encrypted with GSSAPI were not traced", (unsigned long long) st->gssapi);
	if (st->undecodable)
		pgs_err("%llu reads were not protocol messages we could decode: skipped to the next ReadyForQuery, their statements not counted",
				(unsigned long long) st->undecodable);
}

/* an open source: its program, the per-backend probes, the decoding state */
struct PgsStmtSource
{
	PgsUsdt		usdt[PGS_NPROBES];
	Probing		probing;
	PollCtx		pc;
	PgsStmtSourceStats stats;
	struct ring_buffer *rb;
	double		next_sweep;		/* once a second, backends that exited lose their probes */
};

static int
every_round(void *arg)
{
	PgsStmtSource *src = arg;

	if (pgs_now() >= src->next_sweep)
	{
		probing_sweep(&src->probing);
		src->next_sweep = pgs_now() + 1;
	}
	return 0;
}

static void
tick_round(void *arg)
{
	PgsStmtSource *src = arg;

	src->pc.tick(src->pc.arg);
}

static void
read_stats(struct queries_bpf *skel, const Probing *probing, PgsStmtSourceStats *stats)
{
	int			fd = bpf_map__fd(skel->maps.counters);

	stats->batches = pgs_percpu_sum(fd, PGS_C_BATCH) - stats->batch_singles;
	stats->quiet = pgs_percpu_sum(fd, PGS_C_QUIET);
	stats->seen = pgs_percpu_sum(fd, PGS_C_ENDED) + stats->batch_seen + stats->quiet;
	stats->lost = pgs_percpu_sum(fd, PGS_C_LOST);
	stats->undecodable = pgs_percpu_sum(fd, PGS_C_UNDECODABLE);
	stats->gssapi = pgs_percpu_sum(fd, PGS_C_GSSAPI);
	stats->multi = pgs_percpu_sum(fd, PGS_C_MULTI);
	stats->continued = pgs_percpu_sum(fd, PGS_C_CONTINUED);
	stats->probed = probing->attached;
}

/* whether the binary has the executor probes, with their sites in usdt (PGS_NPROBES) */
static bool
find_executor_probes(const PgsTarget *t, PgsUsdt *usdt)
{
	for (int i = 0; i < PGS_NPROBES; i++)
		if (pgs_usdt_find(t->bin, "postgresql", executor_probes[i], &usdt[i]) != 0)
		{
			pgs_err("%s has no USDT probe postgresql:%s (a build without --enable-dtrace): statements of pipelines "
					"and multi-statement queries are counted and timed together, not one by one", t->bin, executor_probes[i]);
			return false;
		}
	return true;
}

static void
say_tracing(const PgsTarget *t)
{
	if (t->postmaster)
		fprintf(stderr, "%s: tracing %s %d (PostgreSQL %d, %s)%s\n", pgs_cmd, t->backend ? "backend" : "the cluster of postmaster",
				t->backend ? t->backend : t->postmaster, t->major, t->bin,
				t->myprocport && t->offsets ? "" : "; database and user names unavailable");
	else
		fprintf(stderr, "%s: tracing every process of %s (PostgreSQL %d)\n", pgs_cmd, t->bin, t->major);
	fflush(stderr);
}

PgsStmtSource *
pgs_stmt_source_open(const PgsTarget *t, const PgsStmtSourceOpts *o, pgs_stmt_cb cb, void *arg)
{
	PgsStmtSource *src = calloc(1, sizeof(PgsStmtSource));

	if (src == NULL || (src->pc.streams = calloc(STREAM_SLOTS, sizeof(BackendStream))) == NULL)
		pgs_die("out of memory");
	libbpf_set_print(libbpf_print);
	src->pc = (PollCtx) {cb, arg, &src->stats, &src->probing, o->min_ns, src->pc.streams, NULL};
	src->probing = (Probing) {.t = t, .usdt = src->usdt};
	src->next_sweep = pgs_now() + 1;
	src->probing.available = find_executor_probes(t, src->usdt);
	src->probing.everywhere = src->probing.available && (o->exact_pipelines || o->split);
	if ((src->probing.skel = attach(t, o, src->probing.everywhere)) == NULL)
		goto fail;
	if ((src->rb = ring_buffer__new(bpf_map__fd(src->probing.skel->maps.events), on_event, &src->pc, NULL)) == NULL)
	{
		pgs_err("cannot open the ring buffer: %s", strerror(errno));
		goto fail;
	}
	return src;

fail:
	pgs_stmt_source_close(src);
	return NULL;
}

int
pgs_stmt_source_poll(PgsStmtSource *src, int timeout_ms)
{
	/* events do not wake a poll (BPF_RB_NO_WAKEUP but for a few): it waits, then drains */
	int			n = ring_buffer__poll(src->rb, timeout_ms);

	if (n >= 0 || n == -EINTR)
		n = ring_buffer__consume(src->rb);
	every_round(src);
	return n == -EINTR ? 0 : n;
}

void
pgs_stmt_source_stats(PgsStmtSource *src, PgsStmtSourceStats *stats)
{
	read_stats(src->probing.skel, &src->probing, &src->stats);
	*stats = src->stats;
}

int
pgs_stmt_source_net_map(PgsStmtSource *src)
{
	return src->probing.skel->rodata->keep_net ? bpf_map__fd(src->probing.skel->maps.net_totals) : -1;
}

uint64_t
pgs_stmt_source_run_ns(PgsStmtSource *src)
{
	struct bpf_program *prog;
	uint64_t	ns = 0;

	bpf_object__for_each_program(prog, src->probing.skel->obj)
	{
		struct bpf_prog_info info;
		__u32		len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_program__fd(prog) >= 0 && bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
			ns += info.run_time_ns;
	}
	return ns;
}

void
pgs_stmt_source_close(PgsStmtSource *src)
{
	if (src == NULL)
		return;
	ring_buffer__free(src->rb);
	probing_end(&src->probing);
	for (int i = 0; i < STREAM_SLOTS; i++)
		backend_stream_clear(&src->pc.streams[i]);
	free(src->pc.streams);
	PGS_SKEL_DESTROY(queries, src->probing.skel);
	free(src);
}

int
pgs_stmt_source_run(const PgsTarget *t, const PgsStmtSourceOpts *o, pgs_stmt_cb cb,
					pgs_tick_cb tick, void *arg, PgsStmtSourceStats *stats)
{
	PgsStmtSource *src = pgs_stmt_source_open(t, o, cb, arg);
	PgsLoop		loop = {.every = every_round};
	int			rc = EXIT_RUNTIME;

	memset(stats, 0, sizeof(*stats));
	if (src == NULL)
		return rc;
	loop.rb = src->rb;
	loop.arg = src;
	say_tracing(t);
	if (tick && o->tick_seconds > 0)
	{
		src->pc.tick = tick;
		loop.tick = tick_round;
		loop.tick_seconds = o->tick_seconds;
	}
	if (pgs_tracer_loop(&loop, t, o->duration) == 0)
	{
		pgs_stmt_source_stats(src, stats);
		rc = pgs_tracer_status();
	}
	pgs_stmt_source_close(src);
	return rc;
}
