/*
 * locks.c - "pgscope locks": every heavyweight lock wait of a running
 * server with its lock decoded, the waiter's statement and the holders at
 * the time the wait began; deadlocks with their cycle; row locks; with
 * --all every acquisition and release; --stats and a wait-for graph (--dot).
 *
 * The kernel side (locks.bpf.c) reports waits as they start and end.
 * Names, holders and statements come over libpq from the traced server
 * itself (pg_locks, pg_stat_activity, pg_class), read when the wait starts
 * and cached, so relations dropped later keep their names.
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "expo.h"
#include "hist.h"
#include "locks.h"
#include "locks.skel.h"
#include "names.h"
#include "tracer.h"
#include "util.h"

#define MAX_HOLDERS 16
#define MAX_PIDS 4096

static const char *const lock_modes[] = {
	"NoLock", "AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
	"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"
};
#define tag_types pgs_locktag_names
static const char *const tuple_modes[] = {"FOR KEY SHARE", "FOR SHARE", "FOR NO KEY UPDATE", "FOR UPDATE"};
static const char *const wait_policies[PGS_WAIT_POLICY_COUNT] = {"block", "skip locked", "nowait"};
static const char *const tm_results[PGS_TM_RESULT_COUNT] = {
	"ok", "invisible", "self-modified", "updated", "deleted", "being modified", "would block"
};

static const char *
policy_name(int p)
{
	return p >= 0 && p < PGS_WAIT_POLICY_COUNT ? wait_policies[p] : "?";
}

static const char *
tm_result_name(int r)
{
	return r >= 0 && r < PGS_TM_RESULT_COUNT ? tm_results[r] : "?";
}

static const char *
mode_name(int m)
{
	return m >= 0 && m < (int) (sizeof(lock_modes) / sizeof(lock_modes[0])) ? lock_modes[m] : "?";
}

typedef struct Holder
{
	int			pid;
	char		mode[32];
	char	   *application;
	char	   *statement;
} Holder;

typedef struct Wait
{
	bool		open;
	struct pgs_lock_event ev;	/* the start */
	char	   *lock;			/* decoded tag */
	char	   *stat_key;		/* what --stats groups by */
	char	   *statement;
	char	   *application;
	int			nholders;
	Holder		holders[MAX_HOLDERS];
	bool		holders_known;
	bool		holders_read;	/* looked up (or given up) */
} Wait;

typedef struct Edge
{
	int			waiter,
				holder;
	char	   *label;			/* lock and mode */
	uint64_t	count;
	uint64_t	total_ns;
	bool		deadlock;
	struct Edge *next;
} Edge;

typedef struct Node
{
	int			pid;
	char	   *application;
	char	   *statement;
	struct Node *next;
} Node;

typedef struct Stat
{
	char	   *key;
	int			mode;
	uint64_t	requests;
	uint64_t	waits;
	uint64_t	total_ns;
	uint64_t	max_ns;
	struct Stat *next;
} Stat;

typedef struct LocksCtx
{
	bool		json;
	bool		all;
	bool		stats;
	const char *dot;
	PgsNames   *names;			/* libpq lookups on the traced server */
	PGconn	   *conn;			/* its main connection, NULL if it failed */
	int			postmaster;		/* the traced cluster's, by the host's pids */
	Wait		waits[MAX_PIDS];
	int			wait_pids[MAX_PIDS];
	Edge	   *edges;
	Node	   *nodes;
	Stat	   *stats_list;
	uint64_t	nwaits,
				ndeadlocks,
				nrows;
	PgsBuf		out;
	double		holders_after_ms;	/* --holders-after */
	uint64_t	holders_after_ns;	/* read holders of waits lasting this long */
	int			nopen;
} LocksCtx;

static const char *
relation_name(LocksCtx *c, unsigned db, unsigned oid)
{
	return pgs_names_of(c->names, PGS_NAME_RELATION, db, oid);
}

/* the lock tag in words with numbers for names (what the agent, without a connection, says) */
static void
tag_numbers(const struct pgs_lock_event *e, char *buf, size_t len)
{
	const char *type = e->type < PGS_LOCKTAG_COUNT && tag_types[e->type] ? tag_types[e->type] : "?";

	switch (e->type)
	{
		case PGS_LOCKTAG_RELATION:
			snprintf(buf, len, "relation %u of database %u", e->field2, e->field1);
			break;
		case PGS_LOCKTAG_RELATION_EXTEND:
			snprintf(buf, len, "extension of relation %u of database %u", e->field2, e->field1);
			break;
		case PGS_LOCKTAG_DATABASE_FROZEN_IDS:
			snprintf(buf, len, "frozen IDs of database %u", e->field1);
			break;
		case PGS_LOCKTAG_PAGE:
			snprintf(buf, len, "page %u of relation %u of database %u", e->field3, e->field2, e->field1);
			break;
		case PGS_LOCKTAG_TUPLE:
			snprintf(buf, len, "tuple (%u,%u) of relation %u of database %u", e->field3, e->field4, e->field2,
					 e->field1);
			break;
		case PGS_LOCKTAG_TRANSACTION:
			snprintf(buf, len, "transaction %u", e->field1);
			break;
		case PGS_LOCKTAG_VIRTUALTRANSACTION:
			snprintf(buf, len, "virtual transaction %u/%u", e->field1, e->field2);
			break;
		case PGS_LOCKTAG_SPECULATIVE_TOKEN:
			snprintf(buf, len, "speculative token %u of transaction %u", e->field2, e->field1);
			break;
		case PGS_LOCKTAG_OBJECT:
			snprintf(buf, len, "object %u/%u/%u of database %u", e->field2, e->field3, e->field4, e->field1);
			break;
		case PGS_LOCKTAG_ADVISORY:
			if (e->field4 == PGS_ADVISORY_TWO_INT4)
				snprintf(buf, len, "advisory lock (%d, %d)", (int) e->field2, (int) e->field3);
			else
				snprintf(buf, len, "advisory lock %lld", (long long) (((uint64_t) e->field2 << 32) | e->field3));
			break;
		default:
			snprintf(buf, len, "%s lock %u/%u/%u/%u", type, e->field1, e->field2, e->field3, e->field4);
	}
}

/* the lock tag in words, and the key --stats groups it under */
static void
decode_tag(LocksCtx *c, const struct pgs_lock_event *e, char **text, char **key)
{
	char		buf[512],
				kbuf[512];
	const char *type = e->type < PGS_LOCKTAG_COUNT && tag_types[e->type] ? tag_types[e->type] : "?";
	char	   *ident = NULL;

	switch (e->type)
	{
		case PGS_LOCKTAG_RELATION:
			snprintf(buf, sizeof(buf), "relation %s", relation_name(c, e->field1, e->field2));
			snprintf(kbuf, sizeof(kbuf), "%s", buf);
			break;
		case PGS_LOCKTAG_RELATION_EXTEND:
			snprintf(buf, sizeof(buf), "extension of relation %s", relation_name(c, e->field1, e->field2));
			snprintf(kbuf, sizeof(kbuf), "%s", buf);
			break;
		case PGS_LOCKTAG_PAGE:
			snprintf(buf, sizeof(buf), "page %u of relation %s", e->field3, relation_name(c, e->field1, e->field2));
			snprintf(kbuf, sizeof(kbuf), "page of relation %s", relation_name(c, e->field1, e->field2));
			break;
		case PGS_LOCKTAG_TUPLE:
			snprintf(buf, sizeof(buf), "tuple (%u,%u) of relation %s", e->field3, e->field4,
					 relation_name(c, e->field1, e->field2));
			snprintf(kbuf, sizeof(kbuf), "tuple of relation %s", relation_name(c, e->field1, e->field2));
			break;
		case PGS_LOCKTAG_OBJECT:
			{
				char		a[16],
							b[16],
							d[16];
				const char *params[3] = {a, b, d};

				snprintf(a, sizeof(a), "%u", e->field2);
				snprintf(b, sizeof(b), "%u", e->field3);
				snprintf(d, sizeof(d), "%u", e->field4);
				ident = pgs_names_fetch1(pgs_names_conn_for_db(c->names, e->field1),
							   "SELECT type || ' ' || identity FROM pg_identify_object($1::oid, $2::oid, $3::int)",
							   3, params);
			}
			/* FALLTHROUGH */
		default:
			if (ident)
				snprintf(buf, sizeof(buf), "object %s", ident);
			else
				tag_numbers(e, buf, sizeof(buf));
			free(ident);
			/* objects, advisory locks and frozen IDs by what they are; transactions and the rest by type */
			snprintf(kbuf, sizeof(kbuf), "%s", e->type == PGS_LOCKTAG_OBJECT || e->type == PGS_LOCKTAG_ADVISORY ||
					 e->type == PGS_LOCKTAG_DATABASE_FROZEN_IDS ? buf : type);
	}
	*text = pgs_xstrdup(buf);
	*key = pgs_xstrdup(kbuf);
}

/* ---------- bookkeeping ---------- */

/*
 * The wait slot of pid: open addressing by pid, a closed wait's slot marked
 * free (-1) for the next pid that needs one.  NULL when pid has none and
 * create is false.
 */
static Wait *
wait_of(LocksCtx *c, int pid, bool create)
{
	int			slot = pid % MAX_PIDS,
				reuse = -1;

	for (int i = 0; i < MAX_PIDS; i++)
	{
		int			s = (slot + i) % MAX_PIDS;

		if (c->wait_pids[s] == pid)
			return &c->waits[s];
		if (c->wait_pids[s] == -1 && reuse < 0)
			reuse = s;
		if (c->wait_pids[s] == 0)
		{
			if (reuse < 0)
				reuse = s;
			break;
		}
	}
	if (!create)
		return NULL;
	if (reuse < 0)
		reuse = slot;			/* MAX_PIDS waits open at once: the oldest in the way is overwritten */
	c->wait_pids[reuse] = pid;
	return &c->waits[reuse];
}

static void
free_wait(Wait *w)
{
	free(w->lock);
	free(w->stat_key);
	free(w->statement);
	free(w->application);
	for (int i = 0; i < w->nholders; i++)
	{
		free(w->holders[i].application);
		free(w->holders[i].statement);
	}
	memset(w, 0, sizeof(*w));
}

static Stat *
stat_of(LocksCtx *c, const char *key, int mode)
{
	Stat	   *s;

	for (s = c->stats_list; s; s = s->next)
		if (s->mode == mode && strcmp(s->key, key) == 0)
			return s;
	s = calloc(1, sizeof(*s));
	s->key = pgs_xstrdup(key);
	s->mode = mode;
	s->next = c->stats_list;
	c->stats_list = s;
	return s;
}

static void
note_node(LocksCtx *c, int pid, const char *app, const char *stmt)
{
	Node	   *n;

	for (n = c->nodes; n; n = n->next)
		if (n->pid == pid)
			break;
	if (n == NULL)
	{
		n = calloc(1, sizeof(*n));
		n->pid = pid;
		n->next = c->nodes;
		c->nodes = n;
	}
	if (app && !n->application)
		n->application = pgs_xstrdup(app);
	if (stmt && *stmt)
	{
		free(n->statement);
		n->statement = pgs_xstrdup(stmt);
	}
}

static Edge *
edge_of(LocksCtx *c, int waiter, int holder, const char *label)
{
	Edge	   *e;

	for (e = c->edges; e; e = e->next)
		if (e->waiter == waiter && e->holder == holder && strcmp(e->label, label) == 0)
			return e;
	e = calloc(1, sizeof(*e));
	e->waiter = waiter;
	e->holder = holder;
	e->label = pgs_xstrdup(label);
	e->next = c->edges;
	c->edges = e;
	return e;
}

/* holders of the lock pid waits for, their modes and statements, and pid's own statement */
static void
read_holders(LocksCtx *c, Wait *w, int pid)
{
	char		p[16];
	const char *params[1] = {p};
	PGresult   *r;

	if (c->conn == NULL)
		return;
	/* the server knows its backends by its own pids (in a container, not the host's) */
	snprintf(p, sizeof(p), "%d", pgs_server_pid(pid));
	if (w->ev.type == PGS_LOCKTAG_TRANSACTION)
	{
		/*
		 * A transaction's lock is held by the backend running it: found in
		 * pg_stat_activity, without pg_locks, which takes every lock-manager
		 * partition lock and stalls a busy server.
		 */
		char		xid[16];
		const char *xparams[1] = {xid};

		snprintf(xid, sizeof(xid), "%u", w->ev.field1);
		r = pgs_query(c->conn,
					  "SELECT pid, 'ExclusiveLock', coalesce(application_name, ''), coalesce(query, '') "
					  "  FROM pg_stat_activity WHERE backend_xid = $1::xid ORDER BY pid",
					  1, xparams, NULL, 0);
	}
	else
		r = pgs_query(c->conn,
				  "SELECT h.pid, h.mode, coalesce(a.application_name, ''), coalesce(a.query, '') "
				  "  FROM pg_locks w JOIN pg_locks h "
				  "    ON h.locktype = w.locktype AND h.database IS NOT DISTINCT FROM w.database "
				  "   AND h.relation IS NOT DISTINCT FROM w.relation AND h.page IS NOT DISTINCT FROM w.page "
				  "   AND h.tuple IS NOT DISTINCT FROM w.tuple AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid "
				  "   AND h.transactionid IS NOT DISTINCT FROM w.transactionid "
				  "   AND h.classid IS NOT DISTINCT FROM w.classid AND h.objid IS NOT DISTINCT FROM w.objid "
				  "   AND h.objsubid IS NOT DISTINCT FROM w.objsubid "
				  "  LEFT JOIN pg_stat_activity a ON a.pid = h.pid "
				  " WHERE w.pid = $1::int AND NOT w.granted AND h.granted AND h.pid <> w.pid "
				  " ORDER BY h.pid, h.mode", 1, params, NULL, 0);
	if (r)
	{
		w->holders_known = true;
		for (int i = 0; i < PQntuples(r) && w->nholders < MAX_HOLDERS; i++)
		{
			Holder	   *h = &w->holders[w->nholders++];

			h->pid = pgs_host_pid(c->postmaster, atoi(PQgetvalue(r, i, 0)));
			if (h->pid == 0)
				h->pid = atoi(PQgetvalue(r, i, 0));
			snprintf(h->mode, sizeof(h->mode), "%s", PQgetvalue(r, i, 1));
			h->application = pgs_xstrdup(PQgetvalue(r, i, 2));
			h->statement = pgs_xstrdup(PQgetvalue(r, i, 3));
			note_node(c, h->pid, h->application, h->statement);
		}
		/* the wait may be over before pg_locks was read: nothing to name then */
		if (PQntuples(r) == 0)
			w->holders_known = false;
	}
	PQclear(r);
	r = pgs_query(c->conn, "SELECT coalesce(application_name, ''), coalesce(query, '') FROM pg_stat_activity WHERE pid = $1::int",
				  1, params, NULL, 0);
	if (r && PQntuples(r) == 1)
	{
		w->application = pgs_xstrdup(PQgetvalue(r, 0, 0));
		w->statement = pgs_xstrdup(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	note_node(c, pid, w->application, w->statement);
}

/* ---------- output ---------- */

static void
put_line(LocksCtx *c)
{
	fputs(c->out.data, stdout);
	fflush(stdout);
	c->out.len = 0;
	c->out.data[0] = '\0';
}

static void
one_line_text(PgsBuf *b, const char *s)
{
	for (; s && *s; s++)
		pgs_buf_append(b, (*s == '\n' || *s == '\r' || *s == '\t') ? " " : s, 1);
}

static void
print_wait(LocksCtx *c, const Wait *w, uint64_t end_ns, uint64_t dur_ns, const char *how)
{
	char		hms[32],
				iso[48],
				ehms[32],
				eiso[48];

	pgs_mono_to_clock(w->ev.ts_ns, hms, sizeof(hms), iso, sizeof(iso));
	pgs_mono_to_clock(end_ns, ehms, sizeof(ehms), eiso, sizeof(eiso));
	if (c->json)
	{
		pgs_buf_printf(&c->out, "{\"event\":\"wait\",\"start\":\"%s\",\"end\":\"%s\",\"duration_ms\":%.3f,\"pid\":%u,"
					   "\"outcome\":\"%s\",\"locktype\":\"%s\",\"lock\":",
					   iso, eiso, dur_ns / 1e6, w->ev.pid, how,
					   w->ev.type < 11 ? tag_types[w->ev.type] : "?");
		pgs_buf_json_string(&c->out, w->lock);
		pgs_buf_printf(&c->out, ",\"mode\":\"%s\",\"statement\":", mode_name(w->ev.mode));
		pgs_buf_json_string(&c->out, w->statement ? w->statement : "");
		pgs_buf_puts(&c->out, ",\"holders\":[");
		for (int i = 0; i < w->nholders; i++)
		{
			pgs_buf_printf(&c->out, "%s{\"pid\":%d,\"mode\":\"%s\",\"application\":", i ? "," : "",
						   w->holders[i].pid, w->holders[i].mode);
			pgs_buf_json_string(&c->out, w->holders[i].application);
			pgs_buf_puts(&c->out, ",\"statement\":");
			pgs_buf_json_string(&c->out, w->holders[i].statement);
			pgs_buf_puts(&c->out, "}");
		}
		pgs_buf_puts(&c->out, "]}\n");
	}
	else
	{
		pgs_buf_printf(&c->out, "%s-%s pid %u waited %.3f ms%s for %s on %s", hms, ehms, w->ev.pid, dur_ns / 1e6,
					   strcmp(how, "granted") == 0 ? "" : strcmp(how, "deadlock") == 0 ? " (deadlock: aborted)" :
					   " (ended without the lock)", mode_name(w->ev.mode), w->lock);
		if (w->nholders)
		{
			pgs_buf_puts(&c->out, "; held by");
			for (int i = 0; i < w->nholders; i++)
				pgs_buf_printf(&c->out, "%s pid %d (%s)", i ? "," : "", w->holders[i].pid, w->holders[i].mode);
		}
		else if (c->conn && w->holders_read)
			pgs_buf_puts(&c->out, "; holders not seen (the wait ended first)");
		else if (c->conn)
			pgs_buf_printf(&c->out, "; holders not read (shorter than --holders-after %.0f ms)", c->holders_after_ns / 1e6);
		pgs_buf_puts(&c->out, "\n    waiter: ");
		one_line_text(&c->out, w->statement ? w->statement : "?");
		for (int i = 0; i < w->nholders; i++)
		{
			pgs_buf_printf(&c->out, "\n    holder %d: ", w->holders[i].pid);
			one_line_text(&c->out, w->holders[i].statement);
		}
		pgs_buf_puts(&c->out, "\n");
	}
	put_line(c);
}

static void
close_wait(LocksCtx *c, Wait *w, uint64_t end_ns, const char *how)
{
	uint64_t	dur = end_ns > w->ev.ts_ns ? end_ns - w->ev.ts_ns : 0;
	Stat	   *s = stat_of(c, w->stat_key, w->ev.mode);
	char		label[600];

	c->nwaits++;
	s->waits++;
	s->total_ns += dur;
	if (dur > s->max_ns)
		s->max_ns = dur;
	snprintf(label, sizeof(label), "%s %s", mode_name(w->ev.mode), w->lock);
	for (int i = 0; i < w->nholders; i++)
	{
		Edge	   *e = edge_of(c, w->ev.pid, w->holders[i].pid, label);

		e->count++;
		e->total_ns += dur;
	}
	if (!c->stats)
		print_wait(c, w, end_ns, dur, how);
	free_wait(w);
	c->wait_pids[w - c->waits] = -1;	/* free for another pid */
	c->nopen--;
}

/*
 * Holders are read over libpq once a wait has lasted --holders-after: the
 * short waits of a busy server end before anyone could act on them, and
 * reading pg_locks for each would cost the server more than the waits.
 */
static void
read_due_holders(LocksCtx *c)
{
	uint64_t	now;

	if (c->nopen <= 0)
		return;
	now = (uint64_t) (pgs_now() * 1e9);
	for (int i = 0; i < MAX_PIDS; i++)
	{
		Wait	   *w;

		if (c->wait_pids[i] <= 0)
			continue;
		w = &c->waits[i];
		if (w->open && !w->holders_read && now - w->ev.ts_ns >= c->holders_after_ns)
		{
			w->holders_read = true;
			read_holders(c, w, w->ev.pid);
		}
	}
}

/* follows waiter -> holder edges of the open waits from pid back to pid */
static int
find_cycle(LocksCtx *c, int start, int *path, int maxlen)
{
	int			depth = 0;
	int			cur = start;
	bool		seen[MAX_PIDS] = {0};

	while (depth < maxlen)
	{
		Wait	   *w = wait_of(c, cur, false);
		int			next = 0;

		path[depth++] = cur;
		seen[cur % MAX_PIDS] = true;
		if (w == NULL || !w->open)
			return 0;
		for (int i = 0; i < w->nholders; i++)
		{
			if (w->holders[i].pid == start)
				return depth;
			if (!seen[w->holders[i].pid % MAX_PIDS] && !next)
				next = w->holders[i].pid;
		}
		if (!next)
			return 0;
		cur = next;
	}
	return 0;
}

static void
report_deadlock(LocksCtx *c, const struct pgs_lock_event *e)
{
	int			path[32];
	int			n = find_cycle(c, e->pid, path, 32);
	char		hms[32],
				iso[48];

	c->ndeadlocks++;
	pgs_mono_to_clock(e->ts_ns, hms, sizeof(hms), iso, sizeof(iso));
	if (c->json)
	{
		pgs_buf_printf(&c->out, "{\"event\":\"deadlock\",\"time\":\"%s\",\"detected_by\":%u,\"cycle\":[", iso, e->pid);
		for (int i = 0; i < n; i++)
		{
			Wait	   *w = wait_of(c, path[i], false);	/* open: in the cycle */

			pgs_buf_printf(&c->out, "%s{\"pid\":%d,\"mode\":\"%s\",\"lock\":", i ? "," : "", path[i], mode_name(w->ev.mode));
			pgs_buf_json_string(&c->out, w->lock ? w->lock : "");
			pgs_buf_printf(&c->out, ",\"held_by\":%d,\"statement\":", path[(i + 1) % n]);
			pgs_buf_json_string(&c->out, w->statement ? w->statement : "");
			pgs_buf_puts(&c->out, "}");
		}
		pgs_buf_puts(&c->out, "]}\n");
	}
	else
	{
		pgs_buf_printf(&c->out, "%s DEADLOCK detected by pid %u:", hms, e->pid);
		if (n == 0)
			pgs_buf_puts(&c->out, " (the cycle's waits were not all seen)");
		for (int i = 0; i < n; i++)
		{
			Wait	   *w = wait_of(c, path[i], false);	/* open: in the cycle */

			pgs_buf_printf(&c->out, "\n    pid %d waits for %s on %s held by pid %d: ", path[i],
						   mode_name(w->ev.mode), w->lock ? w->lock : "?", path[(i + 1) % n]);
			one_line_text(&c->out, w->statement ? w->statement : "?");
		}
		pgs_buf_puts(&c->out, "\n");
	}
	put_line(c);
	for (int i = 0; i < n; i++)
	{
		Wait	   *w = wait_of(c, path[i], false);	/* open: in the cycle */
		char		label[600];

		snprintf(label, sizeof(label), "%s %s", mode_name(w->ev.mode), w->lock ? w->lock : "?");
		edge_of(c, path[i], path[(i + 1) % n], label)->deadlock = true;
	}
	/* the detecting backend's wait ends in an error, without a wait-done probe */
	{
		Wait	   *w = wait_of(c, e->pid, false);

		if (w && w->open)
			close_wait(c, w, e->ts_ns, "deadlock");
	}
}

static void
report_row(LocksCtx *c, const struct pgs_lock_event *e)
{
	char		hms[32],
				iso[48];
	const char *rel;

	c->nrows++;
	if (c->stats)
		return;
	rel = e->database ? relation_name(c, e->database, e->relid) : "?";
	pgs_mono_to_clock(e->ts_ns - e->duration_ns, hms, sizeof(hms), iso, sizeof(iso));
	if (c->json)
	{
		pgs_buf_printf(&c->out, "{\"event\":\"row_lock\",\"time\":\"%s\",\"pid\":%u,\"relation\":", iso, e->pid);
		pgs_buf_json_string(&c->out, rel);
		pgs_buf_printf(&c->out, ",\"ctid\":\"(%u,%u)\",\"mode\":\"%s\",\"wait_policy\":\"%s\",\"result\":\"%s\",\"duration_ms\":%.3f}\n",
					   e->block, e->offset, e->mode >= 0 && e->mode < 4 ? tuple_modes[e->mode] : "?",
					   policy_name(e->wait_policy),
					   tm_result_name(e->result), e->duration_ns / 1e6);
	}
	else
		pgs_buf_printf(&c->out, "%s pid %u row lock %s on %s (%u,%u), policy %s: %s after %.3f ms\n", hms, e->pid,
					   e->mode >= 0 && e->mode < 4 ? tuple_modes[e->mode] : "?", rel, e->block, e->offset,
					   policy_name(e->wait_policy),
					   tm_result_name(e->result), e->duration_ns / 1e6);
	put_line(c);
}

static void
report_acquire_release(LocksCtx *c, const struct pgs_lock_event *e)
{
	char	   *text,
			   *key;
	char		hms[32],
				iso[48];

	decode_tag(c, e, &text, &key);
	if (e->kind == PGS_LK_ACQUIRE)
		stat_of(c, key, e->mode)->requests++;
	if (!c->stats)
	{
		static const char *const results[] = {"not available", "acquired", "already held", "already clear"};
		const char *res = e->kind == PGS_LK_RELEASE ? "released" :
			e->result >= 0 && e->result < 4 ? results[e->result] : "?";

		pgs_mono_to_clock(e->ts_ns, hms, sizeof(hms), iso, sizeof(iso));
		if (c->json)
		{
			pgs_buf_printf(&c->out, "{\"event\":\"%s\",\"time\":\"%s\",\"pid\":%u,\"lock\":",
						   e->kind == PGS_LK_ACQUIRE ? "acquire" : "release", iso, e->pid);
			pgs_buf_json_string(&c->out, text);
			pgs_buf_printf(&c->out, ",\"mode\":\"%s\",\"result\":\"%s\"}\n", mode_name(e->mode), res);
		}
		else
			pgs_buf_printf(&c->out, "%s pid %u %s %s on %s\n", hms, e->pid, res, mode_name(e->mode), text);
		put_line(c);
	}
	free(text);
	free(key);
}

static int
on_event(void *ctx, void *data, size_t size)
{
	LocksCtx   *c = ctx;
	const struct pgs_lock_event *e = data;
	Wait	   *w;

	if (size < sizeof(*e))
		return 0;
	switch (e->kind)
	{
		case PGS_LK_WAIT_START:
			w = wait_of(c, e->pid, true);
			if (w->open)		/* the previous wait ended in an error (timeout, cancel) */
				close_wait(c, w, e->ts_ns, "error");
			w->open = true;
			c->nopen++;
			w->ev = *e;
			decode_tag(c, e, &w->lock, &w->stat_key);
			if (c->holders_after_ns == 0)
			{
				read_holders(c, w, e->pid);
				w->holders_read = true;
			}
			break;
		case PGS_LK_WAIT_END:
			w = wait_of(c, e->pid, false);
			if (w && w->open)
				close_wait(c, w, e->ts_ns, "granted");
			break;
		case PGS_LK_DEADLOCK:
			report_deadlock(c, e);
			break;
		case PGS_LK_ROW:
			report_row(c, e);
			break;
		case PGS_LK_ACQUIRE:
		case PGS_LK_RELEASE:
			report_acquire_release(c, e);
			break;
		case PGS_LK_RELEASE_ALL:
			if (!c->stats && e->method == PGS_DEFAULT_LOCKMETHOD)	/* not advisory (user) locks */
			{
				char		hms[32],
							iso[48];

				pgs_mono_to_clock(e->ts_ns, hms, sizeof(hms), iso, sizeof(iso));
				if (c->json)
					pgs_buf_printf(&c->out, "{\"event\":\"release_all\",\"time\":\"%s\",\"pid\":%u}\n", iso, e->pid);
				else
					pgs_buf_printf(&c->out, "%s pid %u released all its transaction's locks\n", hms, e->pid);
				put_line(c);
			}
			break;
	}
	return 0;
}

/* ---------- summaries ---------- */

static void
print_stats(LocksCtx *c)
{
	if (c->json)
	{
		for (Stat *s = c->stats_list; s; s = s->next)
		{
			c->out.len = 0;
			pgs_buf_puts(&c->out, "{\"event\":\"stats\",\"lock\":");
			pgs_buf_json_string(&c->out, s->key);
			pgs_buf_printf(&c->out, ",\"mode\":\"%s\",\"requests\":%llu,\"waits\":%llu,\"total_wait_ms\":%.3f,\"max_wait_ms\":%.3f}\n",
						   mode_name(s->mode), (unsigned long long) s->requests, (unsigned long long) s->waits,
						   s->total_ns / 1e6, s->max_ns / 1e6);
			put_line(c);
		}
		for (Edge *e = c->edges; e; e = e->next)
		{
			pgs_buf_printf(&c->out, "{\"event\":\"pair\",\"waiter\":%d,\"holder\":%d,\"lock\":", e->waiter, e->holder);
			pgs_buf_json_string(&c->out, e->label);
			pgs_buf_printf(&c->out, ",\"waits\":%llu,\"total_wait_ms\":%.3f}\n", (unsigned long long) e->count, e->total_ns / 1e6);
			put_line(c);
		}
		return;
	}
	printf("\n%-48s %-26s %9s %7s %12s %12s\n", "LOCK", "MODE", "REQUESTS", "WAITS", "TOTAL_MS", "MAX_MS");
	for (Stat *s = c->stats_list; s; s = s->next)
	{
		char		req[24];

		if (c->all)
			snprintf(req, sizeof(req), "%llu", (unsigned long long) s->requests);
		else
			snprintf(req, sizeof(req), "-");
		printf("%-48.48s %-26s %9s %7llu %12.3f %12.3f\n", s->key, mode_name(s->mode), req,
			   (unsigned long long) s->waits, s->total_ns / 1e6, s->max_ns / 1e6);
	}
	printf("\n%8s %8s %7s %12s  %s\n", "WAITER", "HOLDER", "WAITS", "TOTAL_MS", "LOCK");
	for (Edge *e = c->edges; e; e = e->next)
		printf("%8d %8d %7llu %12.3f  %s%s\n", e->waiter, e->holder, (unsigned long long) e->count,
			   e->total_ns / 1e6, e->label, e->deadlock ? "  (deadlock)" : "");
	fflush(stdout);
}

static void
dot_escape(PgsBuf *b, const char *s, size_t max)
{
	size_t		n = 0;

	for (; s && *s && n < max; s++, n++)
	{
		if (*s == '"' || *s == '\\')
			pgs_buf_append(b, "\\", 1);
		pgs_buf_append(b, (*s == '\n' || *s == '\r' || *s == '\t') ? " " : s, 1);
	}
	if (s && *s)
		pgs_buf_puts(b, "...");
}

/* DOT.svg beside the DOT file when Graphviz is installed; its absence is not an error */
static void
render_svg(const char *dot_path, const PgsBuf *dot)
{
	const char *const argv[] = {"dot", "-Tsvg", NULL};
	PgsBuf		svg;
	char	   *svg_path;
	int			rc;

	if (system("command -v dot >/dev/null 2>&1") != 0)
		return;
	pgs_buf_init(&svg);
	rc = pgs_pipe_through(argv, dot->data, dot->len, &svg);
	if (rc == 0 && asprintf(&svg_path, "%s.svg", dot_path) > 0)
	{
		rc = pgs_write_file(svg_path, svg.data, svg.len);
		if (rc == 0)
			fprintf(stderr, "%s: rendered to %s\n", pgs_cmd, svg_path);
		else
			pgs_err("cannot write %s: %s", svg_path, pgs_output_strerror(rc));
		free(svg_path);
	}
	else
		pgs_err("cannot render the graph with Graphviz: dot failed");
	pgs_buf_free(&svg);
}

static int
write_dot(LocksCtx *c)
{
	PgsBuf		b;
	int			rc;

	pgs_buf_init(&b);
	pgs_buf_puts(&b, "digraph pgscope_waits {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n"
				 "  edge [fontname=\"monospace\", fontsize=9];\n");
	for (Node *n = c->nodes; n; n = n->next)
	{
		pgs_buf_printf(&b, "  p%d [label=\"pid %d\\n", n->pid, n->pid);
		dot_escape(&b, n->application && *n->application ? n->application : "(no application name)", 40);
		pgs_buf_puts(&b, "\\n");
		dot_escape(&b, n->statement ? n->statement : "", 60);
		pgs_buf_puts(&b, "\"];\n");
	}
	for (Edge *e = c->edges; e; e = e->next)
	{
		pgs_buf_printf(&b, "  p%d -> p%d [label=\"", e->waiter, e->holder);
		dot_escape(&b, e->label, 80);
		pgs_buf_printf(&b, "\\n%llu wait%s, %.1f ms\"%s];\n", (unsigned long long) e->count, e->count == 1 ? "" : "s",
					   e->total_ns / 1e6, e->deadlock ? ", color=red, fontcolor=red, penwidth=2.5" : "");
	}
	pgs_buf_puts(&b, "}\n");
	rc = pgs_write_file(c->dot, b.data, b.len);
	if (rc != 0)
	{
		pgs_err("cannot write %s: %s", c->dot, pgs_output_strerror(rc));
		pgs_buf_free(&b);
		return rc;
	}
	fprintf(stderr, "%s: wait-for graph written to %s\n", pgs_cmd, c->dot);
	render_svg(c->dot, &b);
	pgs_buf_free(&b);
	return 0;
}

/* ---------- the command ---------- */

static const char usage_text[] =
	"usage: pgscope locks [--pid PID | -D DATADIR | --bin PATH] [--all] [--stats] [--dot FILE]\n"
	"                     [-U USER] [--dbname DB] [--holders-after MS] [--json] [--duration SEC]\n"
	"  every heavyweight lock wait (lock, mode, waiter and its statement, the holders when the\n"
	"  wait began), deadlocks with their cycle, row locks; --all adds every acquisition and\n"
	"  release; --stats prints per-lock and per-pair totals instead; --dot writes the wait-for\n"
	"  graph (and an SVG when Graphviz is installed); holders are read over libpq for waits\n"
	"  that last --holders-after ms (default 10; 0: every wait); needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsOptSpec opts[] = {
	PGS_OPT_FLAG("all", LocksCtx, all),
	PGS_OPT_FLAG("stats", LocksCtx, stats),
	PGS_OPT_OUTPUT("dot", LocksCtx, dot),
	PGS_OPT_NUMBER("holders-after", 0, PGS_ARG_DOUBLE, LocksCtx, holders_after_ms, 0, 3600000, "milliseconds (0 or more)"),
	PGS_OPT_END
};

static const PgsCommand locks_command =
	{"pgscope locks", usage_text, opts, PGS_CMD_NAMES | PGS_CMD_OFFSETS};

/* --all: every acquisition and release, besides the waits */
static void
attach_all(struct locks_bpf *skel, const PgsTarget *t)
{
	if (!(skel->links.on_acquire = pgs_attach_func(skel->progs.on_acquire, t, "LockAcquireExtended", false)) ||
		!(skel->links.on_release = pgs_attach_func(skel->progs.on_release, t, "LockRelease", false)) ||
		!(skel->links.on_acquire_ret = pgs_attach_func(skel->progs.on_acquire_ret, t, "LockAcquireExtended", true)) ||
		!(skel->links.on_release_all = pgs_attach_func(skel->progs.on_release_all, t, "LockReleaseAll", false)))
		pgs_err("--all unavailable: %s does not export LockAcquireExtended/LockRelease", t->bin);
}

/* the program with the offsets it reads by, attached: NULL when lock waits cannot be traced (said) */
static struct locks_bpf *
attach(const PgsTarget *t, bool all)
{
	struct locks_bpf *skel;

	PGS_SKEL_OPEN(locks, skel, t);
	skel->rodata->mydatabaseid_addr = t->mydatabaseid;
	skel->rodata->off_rd_id = t->offsets->relation_rd_id;
	skel->rodata->off_t_self = t->offsets->heaptuple_t_self;
	skel->rodata->off_tag_field1 = t->offsets->locktag_field1;
	skel->rodata->off_tag_field2 = t->offsets->locktag_field2;
	skel->rodata->off_tag_field3 = t->offsets->locktag_field3;
	skel->rodata->off_tag_field4 = t->offsets->locktag_field4;
	skel->rodata->off_tag_type = t->offsets->locktag_type;
	skel->rodata->off_tag_method = t->offsets->locktag_method;
	bpf_program__set_autoload(skel->progs.on_acquire, all);
	bpf_program__set_autoload(skel->progs.on_acquire_ret, all);
	bpf_program__set_autoload(skel->progs.on_release, all);
	bpf_program__set_autoload(skel->progs.on_release_all, all);
	PGS_SKEL_LOAD(locks, skel);
	if (!(skel->links.on_wait_start = pgs_attach_probe(skel->progs.on_wait_start, t, "lock__wait__start")) ||
		!(skel->links.on_wait_done = pgs_attach_probe(skel->progs.on_wait_done, t, "lock__wait__done")))
	{
		pgs_err("lock waits unavailable: %s has no USDT probes postgresql:lock__wait__start/done (a build without --enable-dtrace)", t->bin);
		goto cleanup;
	}
	if (!(skel->links.on_deadlock = pgs_attach_probe(skel->progs.on_deadlock, t, "deadlock__found")))
		pgs_err("deadlock reports unavailable: no USDT probe postgresql:deadlock__found in %s", t->bin);
	if (!(skel->links.on_lock_tuple = pgs_attach_func(skel->progs.on_lock_tuple, t, "heap_lock_tuple", false)) ||
		!(skel->links.on_lock_tuple_ret = pgs_attach_func(skel->progs.on_lock_tuple_ret, t, "heap_lock_tuple", true)))
		pgs_err("row locks unavailable: %s does not export heap_lock_tuple", t->bin);
	if (all)
		attach_all(skel, t);
	PGS_SKEL_ATTACHED(locks, skel);
}

/* each round of the loop: the holders of waits that lasted long enough; soon again while waits are open */
static int
every_round(void *arg)
{
	LocksCtx   *c = arg;

	read_due_holders(c);
	return c->nopen > 0 ? 5 : 50;
}

/* the end: waits still open, then --stats, --dot and the counts */
static int
finish(LocksCtx *c, struct locks_bpf *skel)
{
	for (int i = 0; i < MAX_PIDS; i++)
		if (c->waits[i].open)
			close_wait(c, &c->waits[i], (uint64_t) (pgs_now() * 1e9), "still waiting");
	if (c->stats)
		print_stats(c);
	if (c->dot && write_dot(c) != 0)
		return EXIT_RUNTIME;
	fprintf(stderr, "%s: %llu lock waits, %llu deadlocks, %llu row locks, %llu events lost\n", pgs_cmd,
			(unsigned long long) c->nwaits, (unsigned long long) c->ndeadlocks, (unsigned long long) c->nrows,
			(unsigned long long) pgs_percpu_sum(bpf_map__fd(skel->maps.counters), 0));
	return pgs_tracer_status();
}

int
cmd_locks(int argc, char **argv)
{
	PgsTracing	tr;
	LocksCtx   *c = calloc(1, sizeof(LocksCtx));
	struct locks_bpf *skel;
	PgsLoop		loop = {.what = "lock waits", .every = every_round, .arg = c};
	int			rc = EXIT_RUNTIME;

	if (c == NULL)
		pgs_die("out of memory");
	c->holders_after_ms = 10;
	pgs_command_start(&locks_command, c, argc, argv, &tr);
	c->holders_after_ns = (uint64_t) (c->holders_after_ms * 1e6);
	c->json = tr.to.json;
	pgs_buf_init(&c->out);
	c->names = pgs_names_open(&tr.t, tr.user, tr.dbname);
	c->conn = pgs_names_conn(c->names);
	c->postmaster = tr.t.postmaster;
	loop.note = c->conn ? NULL : "; names, holders and statements unavailable";
	if ((skel = attach(&tr.t, c->all)) == NULL)
		goto cleanup;
	if ((loop.rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, c, NULL)) == NULL)
		pgs_err("cannot open the ring buffer: %s", strerror(errno));
	else if (pgs_tracer_loop(&loop, &tr.t, tr.to.duration) == 0)
		rc = finish(c, skel);
	ring_buffer__free(loop.rb);
	PGS_SKEL_DESTROY(locks, skel);
cleanup:
	pgs_names_close(c->names);
	return rc;
}

/* ---------- what the agent exports: lock wait histograms by lock type and mode, deadlocks ---------- */

#define PART_MODES 9

#define PART_RECENT 4096			/* the last waits, for the spans of the statements they are in */

typedef struct LocksPart
{
	struct locks_bpf *skel;
	struct ring_buffer *rb;
	uint64_t	hist[PGS_LOCKTAG_COUNT][PART_MODES][PGS_HIST_SLOTS];
	uint64_t	sum_ns[PGS_LOCKTAG_COUNT][PART_MODES];
	uint64_t	deadlocks;
	struct pgs_lock_event recent[PART_RECENT];	/* WAIT_END events, oldest overwritten */
	uint64_t	nrecent;		/* ever stored: the next goes to nrecent % PART_RECENT */
} LocksPart;

static int
part_event(void *ctx, void *data, size_t size)
{
	LocksPart  *lp = ctx;
	const struct pgs_lock_event *e = data;

	if (size < sizeof(*e))
		return 0;
	if (e->kind == PGS_LK_DEADLOCK)
		lp->deadlocks++;
	if (e->kind != PGS_LK_WAIT_END || e->type >= PGS_LOCKTAG_COUNT || e->mode < 0 || e->mode >= PART_MODES)
		return 0;
	lp->hist[e->type][e->mode][pgs_hist_slot(e->duration_ns)]++;
	lp->sum_ns[e->type][e->mode] += e->duration_ns;
	lp->recent[lp->nrecent++ % PART_RECENT] = *e;
	return 0;
}

/* the waits of pid that ended within [from_ns, to_ns], the events not read yet included */
static int
part_waits(void *p, uint32_t pid, uint64_t from_ns, uint64_t to_ns, PgsWaitEvent *out, int max)
{
	LocksPart  *lp = p;
	int			n = 0;
	uint64_t	have;

	ring_buffer__consume(lp->rb);
	have = lp->nrecent < PART_RECENT ? lp->nrecent : PART_RECENT;
	/* the newest first: the statement that just ended waited last */
	for (uint64_t k = 1; k <= have && n < max; k++)
	{
		const struct pgs_lock_event *e = &lp->recent[(lp->nrecent - k) % PART_RECENT];

		if (e->pid != pid || e->ts_ns < from_ns || e->ts_ns > to_ns)
			continue;
		out[n] = (PgsWaitEvent) {.start_ns = e->ts_ns - e->duration_ns, .duration_ns = e->duration_ns,
			.name = "pgscope.lock_wait", .type = tag_types[e->type] ? tag_types[e->type] : "?",
		.mode = lock_modes[e->mode]};
		tag_numbers(e, out[n].object, sizeof(out[n].object));
		n++;
	}
	return n;
}

static void *
part_open(const PgsTarget *t)
{
	LocksPart  *lp;
	struct locks_bpf *skel;

	if (!t->offsets)
	{
		pgs_err("lock metrics unavailable: no struct offsets for PostgreSQL %d", t->major);
		return NULL;
	}
	if ((skel = attach(t, false)) == NULL)
		return NULL;
	lp = pgs_xmalloc(sizeof(LocksPart));
	memset(lp, 0, sizeof(*lp));
	lp->skel = skel;
	if ((lp->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), part_event, lp, NULL)) == NULL)
	{
		pgs_err("cannot open the lock events' ring buffer: %s", strerror(errno));
		PGS_SKEL_DESTROY(locks, skel);
		free(lp);
		return NULL;
	}
	return lp;
}

static void
part_render(void *p, const char *labels, PgsExpo *e)
{
	LocksPart  *lp = p;

	ring_buffer__consume(lp->rb);
	for (int t = 0; t < PGS_LOCKTAG_COUNT; t++)
		for (int m = 1; m < PART_MODES; m++)
		{
			PgsBuf		l;
			uint64_t	n = 0;

			for (int s = 0; s < PGS_HIST_SLOTS; s++)
				n += lp->hist[t][m][s];
			if (n == 0)
				continue;
			pgs_buf_init(&l);
			pgs_buf_puts(&l, labels);
			pgs_expo_label(&l, "locktype", tag_types[t] ? tag_types[t] : "?");
			pgs_expo_label(&l, "mode", lock_modes[m]);
			pgs_expo_log2_hist(e, "pgscope_lock_wait_seconds", "Heavyweight lock waits: how long, by lock type and mode.",
							   l.data, lp->hist[t][m], PGS_HIST_SLOTS, lp->sum_ns[t][m] / 1e9);
			pgs_buf_free(&l);
		}
	pgs_expo_sample(e, "pgscope_deadlocks_total", "counter", "Deadlocks the backends found.", labels, (double) lp->deadlocks);
}

static void
part_close(void *p)
{
	LocksPart  *lp = p;

	ring_buffer__free(lp->rb);
	PGS_SKEL_DESTROY(locks, lp->skel);
	free(lp);
}

const PgsAgentPart pgs_locks_part = {"locks", part_open, part_render, part_close, part_waits};
