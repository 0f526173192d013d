/*
 * plans.c - "pgscope plans": the plan each statement slower than --min-ms
 * ran with, read from the stock binary's executor state as the statement
 * ends (plans.bpf.c), printed as EXPLAIN prints it (text, or JSON with
 * EXPLAIN's field names); --analyze makes the executor count rows (and
 * time) for the statements that start while it runs, as EXPLAIN ANALYZE
 * does; --by query reports the statements that ran with more than one plan.
 *
 * Node types and every enum EXPLAIN names come from the traced major's own
 * headers (build/pg_offsets.h); relation and index names over libpq.
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "plan_nodes.h"
#include "plans.h"
#include "plans.skel.h"
#include "proto.h"
#include "tracer.h"
#include "util.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define MAX_GROUPS 1000			/* --by query: statements told apart; the rest are counted */
#define MAX_SHAPES 8			/* plans kept per statement */

typedef struct Shape
{
	uint64_t	hash;
	uint64_t	count;
	struct pgs_plan_event *first;	/* the first statement that ran with it */
} Shape;

typedef struct Group
{
	char	   *query;			/* normalized */
	uint64_t	count;
	double		total_ms;
	int			nshapes;
	uint64_t	more_shapes;	/* statements whose plan was a shape past MAX_SHAPES */
	Shape		shapes[MAX_SHAPES];
} Group;

typedef struct PlansCtx
{
	double		min_ms;
	int			analyze;		/* 0, 1 rows, 2 timing */
	int			by;				/* 0, 1: query */
	bool		json;
	int			major;
	const PgsPgOffsets *off;
	PgsNames   *names;
	const char *tag_name[PGS_PLAN_TAGS];	/* EXPLAIN's name of a NodeTag value */
	int			tag_index[PGS_PLAN_TAGS];	/* its PGS_PN_*, -1: unknown */
	PgsBuf		out;
	uint64_t	nplans;
	Group	   *groups;
	size_t		ngroups;
	uint64_t	ungrouped;
	struct pgs_plan_event ev;	/* the event being printed */
	int			postmaster;
	int			own[16];		/* our own connections' backends, whose statements are not shown */
	int			nown;
	const char *database;		/* -d */
	bool		lease;			/* --analyze through the extension's lease */
	bool		lease_warned;
	bool		write_refused;	/* the kernel refused bpf_probe_write_user */
} PlansCtx;

static const char *const node_names[] = {
#define PGS_PLAN_NAME_(name, explain, kind) explain,
	PGS_PLAN_NODES(PGS_PLAN_NAME_)
};
static const int node_kinds[] = {
#define PGS_PLAN_KIND_(name, explain, kind) kind,
	PGS_PLAN_NODES(PGS_PLAN_KIND_)
};
static const char *const join_names[] = {
#define PGS_JOIN_NAME_(name, explain) explain,
	PGS_JOIN_TYPES(PGS_JOIN_NAME_)
};
static const char *const agg_names[] = {
#define PGS_AGG_NAME_(name, explain) explain,
	PGS_AGG_STRATEGIES(PGS_AGG_NAME_)
};
static const char *const cmd_names[] = {
#define PGS_CMD_NAME_(name, explain) explain,
	PGS_CMD_TYPES(PGS_CMD_NAME_)
};
static const char *const rel_names[] = {NULL, "Outer", "Inner", "Member", "Subquery", "InitPlan", "SubPlan"};
static const char *const origin_names[] = {"not cached", "custom", "generic", "unknown"};

/* the name of value v in a major's table of values (-1: the major has none) */
static const char *
enum_name(const int *values, const char *const *names, int n, int v)
{
	for (int i = 0; i < n; i++)
		if (values[i] == v)
			return names[i];
	return NULL;
}

static double
dbl(uint64_t bits)
{
	double		d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static int
kind_of(const PlansCtx *c, int tag)
{
	int			i = tag >= 0 && tag < PGS_PLAN_TAGS ? c->tag_index[tag] : -1;

	return i < 0 ? -1 : node_kinds[i];
}

/* ---------- one node's facts, as EXPLAIN names them ---------- */

typedef struct NodeFacts
{
	const char *type;			/* "Hash Join" */
	const char *join,
			   *strategy,
			   *partial,
			   *operation,
			   *direction;
	const char *relname,
			   *schema,
			   *index;
	bool		never;			/* instrumented, never executed */
	double		rows,			/* actual, per loop */
				loops,
				startup_ms,
				total_ms;
} NodeFacts;

static void
actuals(const struct pgs_plan_node *n, NodeFacts *f)
{
	double		ntuples = dbl(n->ntuples),
				nloops = dbl(n->nloops),
				startup = dbl(n->startup),
				total = dbl(n->total);

	/* what InstrEndLoop does to the loop still open when ExecutorEnd begins */
	if (n->running)
	{
		ntuples += dbl(n->tuplecount);
		nloops += 1;
		startup += dbl(n->firsttuple);
		total += (double) n->counter_ns / 1e9;
	}
	f->never = nloops <= 0;
	f->loops = nloops;
	f->rows = nloops > 0 ? ntuples / nloops : 0;
	f->startup_ms = nloops > 0 ? 1000.0 * startup / nloops : 0;
	f->total_ms = nloops > 0 ? 1000.0 * total / nloops : 0;
}

static void
node_facts(PlansCtx *c, const struct pgs_plan_event *e, const struct pgs_plan_node *n, NodeFacts *f)
{
	const PgsPgOffsets *o = c->off;
	int			kind = kind_of(c, n->tag);
	static char unknown[32];

	memset(f, 0, sizeof(*f));
	f->type = n->tag >= 0 && n->tag < PGS_PLAN_TAGS ? c->tag_name[n->tag] : NULL;
	if (f->type == NULL)
	{
		snprintf(unknown, sizeof(unknown), "Node %d", n->tag);
		f->type = unknown;
	}
	if (kind == PGS_PK_JOIN)
		f->join = enum_name(o->join_type, join_names, PGS_JOIN_TYPE_COUNT, n->detail);
	if (kind == PGS_PK_AGG)
	{
		f->strategy = enum_name(o->agg_strategy_value, agg_names, PGS_AGG_STRATEGY_COUNT, n->detail);
		f->partial = (n->detail2 & o->aggsplit_combine) ? "Finalize" :
			(n->detail2 & o->aggsplit_skipfinal) ? "Partial" : "Simple";
	}
	if (kind == PGS_PK_MODIFY)
		f->operation = enum_name(o->cmd_type, cmd_names, PGS_CMD_TYPE_COUNT, n->detail);
	if (kind == PGS_PK_INDEXSCAN || kind == PGS_PK_INDEXONLY)
		f->direction = n->detail == o->scandir_backward ? "Backward" :
			n->detail == o->scandir_forward ? "Forward" : "NoMovement";
	if (n->relid && kind != PGS_PK_CTESCAN && kind != PGS_PK_SUBQUERY)
	{
		f->relname = pgs_names_of(c->names, PGS_NAME_RELNAME, e->db, n->relid);
		f->schema = pgs_names_of(c->names, PGS_NAME_SCHEMA, e->db, n->relid);
	}
	if (n->indexid)
		f->index = pgs_names_of(c->names, PGS_NAME_RELNAME, e->db, n->indexid);
	if (n->instrumented)
		actuals(n, f);
}

/* ---------- text, as EXPLAIN's ---------- */

/* "Parallel Seq Scan", "Hash Left Join", "Partial HashAggregate", "Insert" */
static void
text_label(PgsBuf *b, const NodeFacts *f, const struct pgs_plan_node *n)
{
	if (n->parallel_aware)
		pgs_buf_puts(b, "Parallel ");
	if (f->operation)
		pgs_buf_puts(b, f->operation);
	else if (f->strategy)
	{
		if (strcmp(f->partial, "Simple") != 0)
			pgs_buf_printf(b, "%s ", f->partial);
		pgs_buf_puts(b, strcmp(f->strategy, "Sorted") == 0 ? "GroupAggregate" :
					 strcmp(f->strategy, "Hashed") == 0 ? "HashAggregate" :
					 strcmp(f->strategy, "Mixed") == 0 ? "MixedAggregate" : "Aggregate");
	}
	else if (f->join && strcmp(f->join, "Inner") != 0)
	{
		/* "Nested Loop Left Join", "Hash Anti Join" */
		const char *t = f->type;
		size_t		l = strlen(t);

		if (l > 5 && strcmp(t + l - 5, " Join") == 0)
			l -= 5;
		pgs_buf_printf(b, "%.*s %s Join", (int) l, t, f->join);
	}
	else
		pgs_buf_puts(b, f->type);
	if (f->direction && strcmp(f->direction, "Backward") == 0)
		pgs_buf_puts(b, " Backward");
	if (f->index)
		pgs_buf_printf(b, " %s %s", f->relname ? "using" : "on", f->index);
	if (f->relname)
		pgs_buf_printf(b, " on %s", f->relname);
	else if (n->name[0] && !(n->rel == PGS_REL_INITPLAN || n->rel == PGS_REL_SUBPLAN))
		pgs_buf_printf(b, " on %s", n->name);
}

static void
text_node(PlansCtx *c, const struct pgs_plan_event *e, int i, int indent)
{
	const struct pgs_plan_node *n = &e->nodes[i];
	PgsBuf	   *b = &c->out;
	NodeFacts	f;

	node_facts(c, e, n, &f);
	if ((n->rel == PGS_REL_INITPLAN || n->rel == PGS_REL_SUBPLAN) && indent >= 6)
	{
		/* EXPLAIN's "  InitPlan 1 (returns $0)", its node two columns further in */
		pgs_buf_printf(b, "%*s%s\n", indent - 4, "", n->name[0] ? n->name : rel_names[n->rel]);
		indent += 2;
	}
	if (indent > 0)
		pgs_buf_printf(b, "%*s->  ", indent - 4, "");
	text_label(b, &f, n);
	pgs_buf_printf(b, "  (cost=%.2f..%.2f rows=%.0f width=%d)", dbl(n->startup_cost), dbl(n->total_cost),
				   dbl(n->rows), n->width);
	if (n->instrumented && f.never)
		pgs_buf_puts(b, " (never executed)");
	else if (n->instrumented && (e->flags & PGS_PLAN_TIMED))
		pgs_buf_printf(b, " (actual time=%.3f..%.3f rows=%.*f loops=%.0f)", f.startup_ms, f.total_ms,
					   c->major >= 18 ? 2 : 0, f.rows, f.loops);
	else if (n->instrumented)
		pgs_buf_printf(b, " (actual rows=%.*f loops=%.0f)", c->major >= 18 ? 2 : 0, f.rows, f.loops);
	pgs_buf_puts(b, "\n");
	for (int j = i + 1; j < e->nnodes; j++)
		if (e->nodes[j].parent == i)
			text_node(c, e, j, indent == 0 ? 6 : indent + 6);
}

/* ---------- JSON, with EXPLAIN (FORMAT JSON)'s field names ---------- */

static void
json_field(PgsBuf *b, const char *key, const char *v)
{
	if (v == NULL)
		return;
	pgs_buf_printf(b, ", \"%s\": ", key);
	pgs_buf_json_string(b, v);
}

static void
json_node(PlansCtx *c, const struct pgs_plan_event *e, int i)
{
	const struct pgs_plan_node *n = &e->nodes[i];
	PgsBuf	   *b = &c->out;
	NodeFacts	f;
	bool		kids = false;

	node_facts(c, e, n, &f);
	pgs_buf_puts(b, "{\"Node Type\": ");
	pgs_buf_json_string(b, f.type);
	json_field(b, "Parent Relationship", rel_names[n->rel < 7 ? n->rel : 0]);
	if (n->rel == PGS_REL_INITPLAN || n->rel == PGS_REL_SUBPLAN)
		json_field(b, "Subplan Name", n->name);
	pgs_buf_printf(b, ", \"Parallel Aware\": %s", n->parallel_aware ? "true" : "false");
	json_field(b, "Join Type", f.join);
	json_field(b, "Strategy", f.strategy);
	json_field(b, "Partial Mode", f.partial);
	json_field(b, "Operation", f.operation);
	json_field(b, "Scan Direction", f.direction);
	json_field(b, "Index Name", f.index);
	json_field(b, "Relation Name", f.relname);
	json_field(b, "Schema", f.schema);
	if (kind_of(c, n->tag) == PGS_PK_CTESCAN)
		json_field(b, "CTE Name", n->name);
	pgs_buf_printf(b, ", \"Startup Cost\": %.2f, \"Total Cost\": %.2f, \"Plan Rows\": %.0f, \"Plan Width\": %d",
				   dbl(n->startup_cost), dbl(n->total_cost), dbl(n->rows), n->width);
	if (n->instrumented)
	{
		if (e->flags & PGS_PLAN_TIMED)
			pgs_buf_printf(b, ", \"Actual Startup Time\": %.3f, \"Actual Total Time\": %.3f", f.startup_ms, f.total_ms);
		pgs_buf_printf(b, ", \"Actual Rows\": %.*f, \"Actual Loops\": %.0f", c->major >= 18 ? 2 : 0, f.rows, f.loops);
	}
	for (int j = i + 1; j < e->nnodes; j++)
		if (e->nodes[j].parent == i)
		{
			pgs_buf_puts(b, kids ? ", " : ", \"Plans\": [");
			kids = true;
			json_node(c, e, j);
		}
	pgs_buf_puts(b, kids ? "]}" : "}");
}

static const char *
cut_note(const struct pgs_plan_event *e)
{
	if (e->flags & PGS_PLAN_UNREADABLE)
		return "a node could not be read";
	if (e->flags & PGS_PLAN_CUT_NODES)
		return "cut at " STR(PGS_PLAN_MAX_NODES) " nodes";
	if (e->flags & PGS_PLAN_CUT_DEPTH)
		return "cut at depth " STR(PGS_PLAN_MAX_DEPTH);
	return NULL;
}

static void
print_plan(PlansCtx *c, const struct pgs_plan_event *e)
{
	char		hms[32],
				iso[48];
	const char *cut = cut_note(e);
	PgsBuf	   *b = &c->out;

	pgs_mono_to_clock(e->end_ns, hms, sizeof(hms), iso, sizeof(iso));
	if (c->json)
	{
		pgs_buf_printf(b, "{\"time\": \"%s\", \"pid\": %u, \"database\": ", iso, e->pid);
		pgs_buf_json_string(b, e->datname);
		pgs_buf_puts(b, ", \"user\": ");
		pgs_buf_json_string(b, e->usename);
		pgs_buf_printf(b, ", \"duration_ms\": %.3f, \"query_id\": \"%llu\", \"plan_origin\": \"%s\", \"query\": ",
					   e->duration_ns / 1e6, (unsigned long long) e->query_id, origin_names[e->origin & 3]);
		pgs_buf_json_string(b, e->text);
		pgs_buf_printf(b, ", \"truncated\": ");
		if (cut)
			pgs_buf_json_string(b, cut);
		else
			pgs_buf_puts(b, "null");
		pgs_buf_puts(b, ", \"Plan\": ");
		if (e->nnodes > 0)
			json_node(c, e, 0);
		else
			pgs_buf_puts(b, "null");
		pgs_buf_puts(b, "}\n");
		return;
	}
	pgs_buf_printf(b, "%s pid %u %s@%s %.3f ms, %s plan%s%s\n", hms, e->pid, e->usename, e->datname,
				   e->duration_ns / 1e6, origin_names[e->origin & 3], cut ? ", " : "", cut ? cut : "");
	pgs_buf_puts(b, "  ");
	for (const char *p = e->text; *p; p++)
		pgs_buf_append(b, *p == '\n' ? "\n  " : p, 1 + (*p == '\n') * 2);
	pgs_buf_puts(b, "\n");
	if (e->nnodes > 0)
		text_node(c, e, 0, 0);
	pgs_buf_puts(b, "\n");
}

/* ---------- --by query: each statement's plan shapes ---------- */

/* what tells plans apart: node types, their places, relations, indexes, join types, strategies */
static uint64_t
shape_hash(const struct pgs_plan_event *e)
{
	uint64_t	h = 1469598103934665603ULL;

	for (int i = 0; i < e->nnodes; i++)
	{
		const struct pgs_plan_node *n = &e->nodes[i];
		int64_t		v[] = {n->tag, n->parent, n->rel, n->relid, n->indexid, n->detail, n->detail2, n->parallel_aware};

		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			h = (h ^ (uint64_t) v[k]) * 1099511628211ULL;
	}
	return h;
}

static Group *
group_of(PlansCtx *c, const char *query)
{
	for (size_t i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].query, query) == 0)
			return &c->groups[i];
	if (c->ngroups >= MAX_GROUPS)
		return NULL;
	if (c->groups == NULL)
		c->groups = calloc(MAX_GROUPS, sizeof(Group));
	if (c->groups == NULL)
		pgs_die("out of memory");
	c->groups[c->ngroups].query = pgs_xstrdup(query);
	return &c->groups[c->ngroups++];
}

static void
group_event(PlansCtx *c, const struct pgs_plan_event *e, size_t size)
{
	char	   *q = pgs_normalize_query(e->text);
	Group	   *g = group_of(c, q ? q : e->text);
	uint64_t	h = shape_hash(e);
	int			i;

	free(q);
	if (g == NULL)
	{
		c->ungrouped++;
		return;
	}
	g->count++;
	g->total_ms += e->duration_ns / 1e6;
	for (i = 0; i < g->nshapes; i++)
		if (g->shapes[i].hash == h)
			break;
	if (i == g->nshapes)
	{
		if (i == MAX_SHAPES)
		{
			g->more_shapes++;
			return;
		}
		g->shapes[i].hash = h;
		g->shapes[i].first = pgs_xmalloc(sizeof(struct pgs_plan_event));
		memset(g->shapes[i].first, 0, sizeof(struct pgs_plan_event));
		memcpy(g->shapes[i].first, e, size);
		g->nshapes++;
	}
	g->shapes[i].count++;
}

static int
by_total_desc(const void *a, const void *b)
{
	double		x = ((const Group *) a)->total_ms,
				y = ((const Group *) b)->total_ms;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void
print_groups(PlansCtx *c)
{
	PgsBuf	   *b = &c->out;

	qsort(c->groups, c->ngroups, sizeof(Group), by_total_desc);
	for (size_t i = 0; i < c->ngroups; i++)
	{
		Group	   *g = &c->groups[i];

		if (c->json)
		{
			pgs_buf_puts(b, "{\"query\": ");
			pgs_buf_json_string(b, g->query);
			pgs_buf_printf(b, ", \"calls\": %llu, \"total_ms\": %.3f, \"plan_changed\": %s, \"plans\": [",
						   (unsigned long long) g->count, g->total_ms, g->nshapes > 1 ? "true" : "false");
		}
		else
			pgs_buf_printf(b, "%s%llu statements, %.3f ms in all, %d plan%s%s:\n  %s\n\n", i ? "\n" : "",
						   (unsigned long long) g->count, g->total_ms, g->nshapes, g->nshapes == 1 ? "" : "s",
						   g->nshapes > 1 ? " - PLAN CHANGED" : "", g->query);
		for (int k = 0; k < g->nshapes; k++)
		{
			if (c->json)
				pgs_buf_printf(b, "%s{\"calls\": %llu, \"first\": ", k ? ", " : "", (unsigned long long) g->shapes[k].count);
			else
				pgs_buf_printf(b, "plan %d of %d, %llu statements, first:\n", k + 1, g->nshapes,
							   (unsigned long long) g->shapes[k].count);
			print_plan(c, g->shapes[k].first);
			if (c->json)
			{
				b->len--;		/* print_plan's newline */
				pgs_buf_puts(b, "}");
			}
		}
		if (c->json)
			pgs_buf_printf(b, "], \"more_plans\": %llu}\n", (unsigned long long) g->more_shapes);
		else if (g->more_shapes)
			pgs_buf_printf(b, "(%llu statements ran with still other plans)\n", (unsigned long long) g->more_shapes);
		pgs_emit(b->data, b->len);
		b->len = 0;
	}
}

/* ---------- the command ---------- */

static int
on_event(void *ctx, void *data, size_t size)
{
	PlansCtx   *c = ctx;
	struct pgs_plan_event *e = &c->ev;	/* the ring buffer's pages are read-only here */

	if (size < offsetof(struct pgs_plan_event, nodes))
		return 0;
	if (size > sizeof(*e))
		size = sizeof(*e);
	memcpy(e, data, size);
	if (e->nnodes > PGS_PLAN_MAX_NODES ||
		size < offsetof(struct pgs_plan_event, nodes) + e->nnodes * sizeof(struct pgs_plan_node))
		e->nnodes = 0;
	e->text[PGS_PLAN_TEXT - 1] = e->datname[63] = e->usename[63] = 0;
	for (int i = 0; i < e->nnodes; i++)
	{
		e->nodes[i].name[PGS_PLAN_NAME - 1] = 0;
		if (e->nodes[i].parent >= i)	/* a parent comes first: anything else is not ours */
			e->nodes[i].parent = -1;
	}
	for (int i = 0; i < c->nown; i++)
		if (c->own[i] == (int) e->pid)
			return 0;
	c->nplans++;
	if (c->by)
	{
		group_event(c, e, size);
		return 0;
	}
	print_plan(c, e);
	/* naming its relations may have opened a connection */
	c->nown = pgs_names_backends(c->names, c->postmaster, c->own, 16);
	if (!pgs_emit(c->out.data, c->out.len))
		return -1;
	c->out.len = 0;
	return 0;
}

/* ---------- --analyze: who sets the executor's instrument options ---------- */

/*
 * bpf_probe_write_user, where the kernel lets a uprobe program call it (root,
 * and no lockdown: integrity lockdown refuses the helper, as do kernels built
 * without it).  No probe says so reliably (libbpf's knows older verifier
 * messages only), so the first load tries it, quietly, and a refusal turns to
 * the extension's way.  PGSCOPE_ANALYZE_VIA=extension goes there at once.
 */
static int
quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/* the extension's way: a lease of 5 seconds, renewed every second, ended at exit (a killed tracer's lapses) */
static const char *
lease(PlansCtx *c, const char *what)
{
	return pgs_names_lease(c->names, what, c->database);
}

static void
renew_lease(void *arg)
{
	PlansCtx   *c = arg;
	const char *err;

	if (!c->lease || (err = lease(c, c->analyze == 2 ? "timing" : "rows")) == NULL)
	{
		c->lease_warned = false;
		return;
	}
	if (!c->lease_warned)
		fprintf(stderr, "%s: --analyze: cannot renew the instrumentation lease (%s): statements starting "
				"from now on may not be instrumented\n", pgs_cmd, err);
	c->lease_warned = true;
}

static void
end_lease(PlansCtx *c)
{
	const char *err;

	if (c->lease && (err = lease(c, "off")) != NULL)
		fprintf(stderr, "%s: --analyze: cannot end the instrumentation lease (%s): it lapses within 5 seconds\n",
				pgs_cmd, err);
	c->lease = false;
}

static const char usage_text[] =
	"usage: pgscope plans [--pid PID | -D DATADIR | --bin PATH] [--min-ms MS] [-d DATABASE]\n"
	"                     [--analyze[=rows|timing]] [--by query] [-U USER] [--dbname DB]\n"
	"                     [--json] [--duration SEC]\n"
	"  the plan each statement slower than --min-ms (default 100) ran with, read from the\n"
	"  executor as it ends: node types, join types, strategies, relations and indexes,\n"
	"  estimated costs, rows and widths, init plans, sub plans, Append members and CTEs,\n"
	"  as EXPLAIN prints them (--json: EXPLAIN's field names); a plan is cut at "
	STR(PGS_PLAN_MAX_NODES) " nodes\n"
	"  or depth " STR(PGS_PLAN_MAX_DEPTH) " (and says so); a prepared statement's plan says generic or custom.\n"
	"  --analyze makes the executor count each node's rows and loops (=timing: and time them,\n"
	"  as EXPLAIN ANALYZE does) for every statement of the cluster (of -d) that starts while\n"
	"  it runs: a cost on each (timing: up to 2x on tight loops).  Through bpf_probe_write_user\n"
	"  where the kernel allows it (root, no lockdown), else through the pgscope extension\n"
	"  (preloaded, created in --dbname; superuser or pgscope_admin).\n"
	"  --by query: per normalized statement, its plans, and which ran with more than one;\n"
	"  needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsOptSpec opts[] = {
	PGS_OPT_NUMBER("min-ms", 0, PGS_ARG_DOUBLE, PlansCtx, min_ms, 0, 86400000, "milliseconds (0 or more)"),
	PGS_OPT_CHOICE_OPT("analyze", PlansCtx, analyze, "rows or timing", "rows|timing"),
	PGS_OPT_CHOICE("by", PlansCtx, by, "query", "query"),
	PGS_OPT_END
};

static const PgsCommand plans_command =
	{"pgscope plans", usage_text, opts, PGS_CMD_NAMES | PGS_CMD_DATABASE | PGS_CMD_OFFSETS};

#define SET(field) skel->rodata->off_##field
static void
set_offsets(struct plans_bpf *skel, const PgsPgOffsets *o)
{
	SET(port_db) = o->port_database_name, SET(port_user) = o->port_user_name;
	SET(qd_plannedstmt) = o->qd_plannedstmt, SET(qd_source_text) = o->qd_source_text;
	SET(qd_planstate) = o->qd_planstate, SET(qd_instrument_options) = o->qd_instrument_options;
	SET(ps_rtable) = o->ps_rtable, SET(ps_query_id) = o->ps_query_id;
	SET(portal_stmts) = o->portal_stmts, SET(portal_cplan) = o->portal_cplan, SET(cplan_refcount) = o->cplan_refcount;
	SET(pstate_plan) = o->pstate_plan, SET(pstate_instrument) = o->pstate_instrument;
	SET(pstate_lefttree) = o->pstate_lefttree, SET(pstate_righttree) = o->pstate_righttree;
	SET(pstate_init_plan) = o->pstate_init_plan, SET(pstate_sub_plan) = o->pstate_sub_plan;
	SET(plan_startup_cost) = o->plan_startup_cost, SET(plan_total_cost) = o->plan_total_cost;
	SET(plan_rows) = o->plan_rows, SET(plan_width) = o->plan_width, SET(plan_parallel_aware) = o->plan_parallel_aware;
	SET(scanrelid) = o->scan_scanrelid, SET(indexscan_indexid) = o->indexscan_indexid, SET(indexscan_dir) = o->indexscan_dir;
	SET(indexonly_indexid) = o->indexonly_indexid, SET(indexonly_dir) = o->indexonly_dir;
	SET(bitmapindex_indexid) = o->bitmapindex_indexid, SET(jointype) = o->join_jointype;
	SET(agg_strategy) = o->agg_strategy, SET(agg_split) = o->agg_split;
	SET(modify_operation) = o->modify_operation, SET(modify_nominal_rel) = o->modify_nominal_rel;
	SET(append_plans) = o->append_plans, SET(append_nplans) = o->append_nplans;
	SET(mergeappend_plans) = o->mergeappend_plans, SET(mergeappend_nplans) = o->mergeappend_nplans;
	SET(bitmapand_plans) = o->bitmapand_plans, SET(bitmapand_nplans) = o->bitmapand_nplans;
	SET(bitmapor_plans) = o->bitmapor_plans, SET(bitmapor_nplans) = o->bitmapor_nplans;
	SET(subqueryscan_subplan) = o->subqueryscan_subplan, SET(sps_subplan) = o->subplanstate_subplan;
	SET(sps_planstate) = o->subplanstate_planstate, SET(subplan_name) = o->subplan_plan_name;
	SET(rte_relid) = o->rte_relid, SET(rte_ctename) = o->rte_ctename;
	SET(list_length) = o->list_length, SET(list_elements) = o->list_elements;
	SET(instr_ntuples) = o->instr_ntuples, SET(instr_nloops) = o->instr_nloops;
	SET(instr_total) = o->instr_total, SET(instr_startup) = o->instr_startup;
	SET(instr_nfiltered1) = o->instr_nfiltered1, SET(instr_nfiltered2) = o->instr_nfiltered2;
	SET(instr_running) = o->instr_running, SET(instr_tuplecount) = o->instr_tuplecount;
	SET(instr_firsttuple) = o->instr_firsttuple, SET(instr_counter) = o->instr_counter;
	skel->rodata->instr_time_size = (uint32_t) o->instr_time_size;
	skel->rodata->explain_only_flag = (uint32_t) o->exec_flag_explain_only;
	for (int i = 0; i < PGS_PLAN_NODE_COUNT; i++)
		if (o->plan_tag[i] >= 0 && o->plan_tag[i] < PGS_PLAN_TAGS)
			skel->rodata->tag_kind[o->plan_tag[i]] = (uint8_t) (node_kinds[i] + 1);
}
#undef SET

static struct plans_bpf *
attach(PlansCtx *c, const PgsTarget *t, unsigned db)
{
	struct plans_bpf *skel;

	PGS_SKEL_OPEN(plans, skel, t);
	skel->rodata->min_ns = (uint64_t) (c->min_ms * 1e6);
	skel->rodata->mydatabaseid_addr = t->mydatabaseid;
	skel->rodata->myprocport_addr = t->myprocport;
	skel->rodata->parallel_worker_addr = t->parallelworkernumber;
	skel->rodata->activeportal_addr = t->activeportal;
	skel->rodata->filter_db = db;
	if (c->analyze)
		skel->rodata->instrument_options = (uint32_t) (c->off->instrument_rows |
													   (c->analyze == 2 ? c->off->instrument_timer : 0));
	skel->rodata->write_options = c->analyze && !c->lease;
	skel->rodata->instrument_rows_bit = (uint32_t) c->off->instrument_rows;
	skel->rodata->instrument_timer_bit = (uint32_t) c->off->instrument_timer;
	set_offsets(skel, c->off);
	if (skel->rodata->write_options && !getenv("PGSCOPE_BPF_DEBUG"))
	{
		libbpf_print_fn_t prev = libbpf_set_print(quiet_print);
		int			err = plans_bpf__load(skel);

		libbpf_set_print(prev);
		if (err)
		{
			c->write_refused = true;
			goto cleanup;
		}
	}
	else
		PGS_SKEL_LOAD(plans, skel);
	if (!(skel->links.on_executor_start = pgs_attach_func(skel->progs.on_executor_start, t, "standard_ExecutorStart", false)) ||
		!(skel->links.on_executor_end = pgs_attach_func(skel->progs.on_executor_end, t, "standard_ExecutorEnd", false)))
	{
		pgs_err("plans unavailable: cannot attach to standard_ExecutorStart/End of %s: %s", t->bin, strerror(errno));
		goto cleanup;
	}
	PGS_SKEL_ATTACHED(plans, skel);
}

static void
init_tags(PlansCtx *c)
{
	for (int i = 0; i < PGS_PLAN_TAGS; i++)
		c->tag_index[i] = -1;
	for (int i = 0; i < PGS_PLAN_NODE_COUNT; i++)
		if (c->off->plan_tag[i] >= 0 && c->off->plan_tag[i] < PGS_PLAN_TAGS)
		{
			c->tag_name[c->off->plan_tag[i]] = node_names[i];
			c->tag_index[c->off->plan_tag[i]] = i;
		}
}

static int
finish(PlansCtx *c, struct plans_bpf *skel)
{
	int			fd = bpf_map__fd(skel->maps.counters);

	if (c->by)
		print_groups(c);
	fprintf(stderr, "%s: %llu plans of %llu statements over %.3g ms (of %llu started)", pgs_cmd,
			(unsigned long long) c->nplans, (unsigned long long) pgs_percpu_sum(fd, PGS_PLAN_CNT_SLOW), c->min_ms,
			(unsigned long long) pgs_percpu_sum(fd, PGS_PLAN_CNT_STARTS));
	if (c->analyze)
		fprintf(stderr, ", %llu instrumented", (unsigned long long) pgs_percpu_sum(fd, PGS_PLAN_CNT_INSTRUMENTED));
	if (c->ungrouped)
		fprintf(stderr, ", %llu past %d statements not grouped", (unsigned long long) c->ungrouped, MAX_GROUPS);
	fprintf(stderr, ", %llu lost\n", (unsigned long long) pgs_percpu_sum(fd, PGS_PLAN_CNT_LOST));
	return pgs_tracer_status();
}

/*
 * The programs attached, with --analyze through bpf_probe_write_user or, where
 * the kernel refuses it (or PGSCOPE_ANALYZE_VIA=extension asks), through the
 * pgscope extension's lease; NULL (said) when neither works.
 */
static struct plans_bpf *
attach_analyzing(PlansCtx *c, const PgsTarget *t, unsigned db)
{
	struct plans_bpf *skel = attach(c, t, db);
	const char *err;

	if (skel == NULL && c->write_refused)
	{
		/* the kernel refuses bpf_probe_write_user: the extension's lease */
		c->lease = true;
		if ((err = lease(c, c->analyze == 2 ? "timing" : "rows")) != NULL)
		{
			c->lease = false;
			pgs_err("--analyze: this kernel does not let the tracer set the executor's instrumentation "
					"(bpf_probe_write_user needs root and no lockdown), and the pgscope extension's lease failed: %s", err);
			return NULL;
		}
		return attach(c, t, db);
	}
	if (skel != NULL && c->lease && (err = lease(c, c->analyze == 2 ? "timing" : "rows")) != NULL)
	{
		c->lease = false;
		pgs_err("--analyze: the pgscope extension's lease failed: %s", err);
		PGS_SKEL_DESTROY(plans, skel);
		return NULL;
	}
	return skel;
}

/* what the attach message adds: the cost --analyze puts on every statement, and its way */
static const char *
analyze_note(const PlansCtx *c)
{
	if (!c->analyze)
		return NULL;
	if (c->analyze == 2)
		return c->lease ? "; --analyze=timing (through the pgscope extension): statements starting now count rows and time every node (a cost on each)"
			: "; --analyze=timing: statements starting now count rows and time every node (a cost on each)";
	return c->lease ? "; --analyze (through the pgscope extension): statements starting now count every node's rows (a cost on each)"
		: "; --analyze: statements starting now count every node's rows (a cost on each)";
}

int
cmd_plans(int argc, char **argv)
{
	PgsTracing	tr;
	PlansCtx   *c = calloc(1, sizeof(PlansCtx));
	struct plans_bpf *skel = NULL;
	PgsLoop		loop = {.what = "plans", .arg = c};
	int			rc = EXIT_RUNTIME;
	unsigned	db;
	const char *via;

	if (c == NULL)
		pgs_die("out of memory");
	c->min_ms = 100;
	pgs_command_start(&plans_command, c, argc, argv, &tr);
	c->json = tr.to.json;
	c->major = tr.t.major;
	c->off = tr.t.offsets;
	init_tags(c);
	pgs_buf_init(&c->out);
	c->names = pgs_names_open(&tr.t, tr.user, tr.dbname);
	c->postmaster = tr.t.postmaster;
	c->nown = pgs_names_backends(c->names, c->postmaster, c->own, 16);
	c->database = tr.database;
	db = tr.database ? pgs_database_oid(c->names, tr.database) : 0;
	via = getenv("PGSCOPE_ANALYZE_VIA");
	c->lease = c->analyze && via != NULL && strcmp(via, "extension") == 0;
	if ((skel = attach_analyzing(c, &tr.t, db)) == NULL)
		goto cleanup;
	if (c->lease)
	{
		loop.tick = renew_lease;
		loop.tick_seconds = 1;
	}
	loop.note = analyze_note(c);
	if ((loop.rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, c, NULL)) == NULL)
		pgs_err("cannot open the ring buffer: %s", strerror(errno));
	else if (pgs_tracer_loop(&loop, &tr.t, tr.to.duration) == 0)
		rc = finish(c, skel);
	ring_buffer__free(loop.rb);
cleanup:
	/* no statement starts instrumented from here on; those started finish as they began */
	end_lease(c);
	PGS_SKEL_DESTROY(plans, skel);
	pgs_names_close(c->names);
	return rc;
}
