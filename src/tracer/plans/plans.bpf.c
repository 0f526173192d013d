// SPDX-License-Identifier: GPL-2.0
/*
 * plans.bpf.c - the plan tree each statement slower than min_ns ran with,
 * read from the backend's executor state at its end: uprobes on the exported
 * standard_ExecutorStart (the start time; with --analyze, instrumentation
 * asked for as EXPLAIN ANALYZE asks) and standard_ExecutorEnd (before the
 * executor frees anything: QueryDesc.planstate is the tree EXPLAIN walks).
 * Statements under the threshold cost a map update and a delete, never a walk.
 *
 * The walk is a loop (bpf_loop) over an explicit stack of frames: a node,
 * or the rest of a list of children (an Append's members, a node's init
 * plans or sub plans), so that nodes come out in EXPLAIN's order.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "plans.h"
#include "plan_nodes.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 min_ns = 0;
const volatile __u64 mydatabaseid_addr = 0;
const volatile __u64 myprocport_addr = 0;
const volatile __u64 parallel_worker_addr = 0;
const volatile __u64 activeportal_addr = 0;	/* &ParallelWorkerNumber: >= 0 in a parallel worker */
const volatile __u32 filter_db = 0;
const volatile __u32 instrument_options = 0;	/* --analyze: INSTRUMENT_ROWS [| INSTRUMENT_TIMER] */
const volatile __u32 write_options = 0;	/* set them with bpf_probe_write_user; 0: the extension's lease does */
const volatile __u32 instrument_rows_bit = 0, instrument_timer_bit = 0;
const volatile __u32 explain_only_flag = 0;
const volatile __u32 instr_time_size = 8;
/* struct offsets, from build/pg_offsets.h */
const volatile __u32 off_port_db = 0, off_port_user = 0;
const volatile __u32 off_qd_plannedstmt = 0, off_qd_source_text = 0, off_qd_planstate = 0, off_qd_instrument_options = 0;
const volatile __u32 off_ps_rtable = 0, off_ps_query_id = 0;
const volatile __u32 off_portal_stmts = 0, off_portal_cplan = 0, off_cplan_refcount = 0;
const volatile __u32 off_pstate_plan = 0, off_pstate_instrument = 0, off_pstate_lefttree = 0, off_pstate_righttree = 0;
const volatile __u32 off_pstate_init_plan = 0, off_pstate_sub_plan = 0;
const volatile __u32 off_plan_startup_cost = 0, off_plan_total_cost = 0, off_plan_rows = 0, off_plan_width = 0;
const volatile __u32 off_plan_parallel_aware = 0;
const volatile __u32 off_scanrelid = 0, off_indexscan_indexid = 0, off_indexscan_dir = 0;
const volatile __u32 off_indexonly_indexid = 0, off_indexonly_dir = 0, off_bitmapindex_indexid = 0;
const volatile __u32 off_jointype = 0, off_agg_strategy = 0, off_agg_split = 0;
const volatile __u32 off_modify_operation = 0, off_modify_nominal_rel = 0;
const volatile __u32 off_append_plans = 0, off_append_nplans = 0, off_mergeappend_plans = 0, off_mergeappend_nplans = 0;
const volatile __u32 off_bitmapand_plans = 0, off_bitmapand_nplans = 0, off_bitmapor_plans = 0, off_bitmapor_nplans = 0;
const volatile __u32 off_subqueryscan_subplan = 0, off_sps_subplan = 0, off_sps_planstate = 0, off_subplan_name = 0;
const volatile __u32 off_rte_relid = 0, off_rte_ctename = 0, off_list_length = 0, off_list_elements = 0;
const volatile __u32 off_instr_ntuples = 0, off_instr_nloops = 0, off_instr_total = 0, off_instr_startup = 0;
const volatile __u32 off_instr_nfiltered1 = 0, off_instr_nfiltered2 = 0, off_instr_running = 0;
const volatile __u32 off_instr_tuplecount = 0, off_instr_firsttuple = 0, off_instr_counter = 0;
/* PGS_PK_* + 1 of each NodeTag value the tracer knows (0: unknown, read as a plain node) */
const volatile __u8 tag_kind[PGS_PLAN_TAGS] = {};

struct start_key
{
	__u64		qd;
	__u32		pid;
	__u32		pad;
};

PGS_MAP(starts, BPF_MAP_TYPE_LRU_HASH, 16384, struct start_key, struct start_val);

struct start_val
{
	__u64		ns;
	__u64		portal;			/* ActivePortal as it started: at the end it may be another */
};

#define FR_NODE		0			/* ptr: a PlanState */
#define FR_ARRAY	1			/* ptr: PlanState *[n], from i */
#define FR_SUBPLANS	2			/* ptr: a List's cells of SubPlanState *, n of them, from i */
#define STACK		32			/* a power of two */

struct frame
{
	__u64		ptr;
	__u64		name;			/* a user-space char *, 0: none */
	__u32		n;
	__u32		i;
	__s16		parent;
	__u8		kind;
	__u8		rel;
	__u8		depth;
	__u8		pad[3];
};

struct scratch
{
	struct pgs_plan_event ev;
	struct frame stack[STACK];
	__u32		sp;
	__u32		rtable_len;
	__u64		rtable_cells;
};

PGS_MAP(scratch_map, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, struct scratch);

struct
{
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

PGS_COUNTERS(PGS_PLAN_COUNTERS)

/* size (4 or 8) bytes at user address addr, 0 when addr is 0 or unreadable (little-endian) */
static __always_inline __u64
rd_user(__u64 addr, __u32 size)
{
	__u64		v = 0;

	if (addr)
		bpf_probe_read_user(&v, size, (void *) addr);
	return v;
}
#define rd_ptr(addr) rd_user((addr), 8)
#define rd_u32(addr) ((__u32) rd_user((addr), 4))

static __always_inline bool
traced_backend(void)
{
	if (!traced_task(bpf_get_current_task_btf()))
		return false;
	if (parallel_worker_addr && (int) rd_u32(parallel_worker_addr) >= 0)
		return false;
	return !filter_db || rd_u32(mydatabaseid_addr) == filter_db;
}

/*
 * Whether the portal that started pstmt runs it from a cached plan, and
 * which: a generic plan is also held by its plan source (refcount 2 or more),
 * a custom one only by the portal.  Asked at the end, of slow statements
 * only: the portal releases its cached plan after the executor's end (a
 * portal's cleanup ends its executor first).
 */
static __always_inline __u32
plan_origin(__u64 portal, __u64 pstmt)
{
	__u64		stmts,
				cplan;

	if (!portal || !pstmt)
		return PGS_ORIGIN_UNKNOWN;
	stmts = rd_ptr(portal + off_portal_stmts);
	if (!stmts || rd_u32(stmts + off_list_length) == 0 || rd_ptr(rd_ptr(stmts + off_list_elements)) != pstmt)
		return PGS_ORIGIN_UNKNOWN;
	cplan = rd_ptr(portal + off_portal_cplan);
	if (!cplan)
		return PGS_ORIGIN_NONE;
	return (int) rd_u32(cplan + off_cplan_refcount) > 1 ? PGS_ORIGIN_GENERIC : PGS_ORIGIN_CUSTOM;
}

SEC("uprobe")
int
BPF_KPROBE(on_executor_start, void *qd, int eflags)
{
	struct start_key k = {.qd = (__u64) qd, .pid = bpf_get_current_pid_tgid() >> 32};
	struct start_val v = {};

	if ((eflags & explain_only_flag) || !traced_backend())
		return 0;
	count(PGS_PLAN_CNT_STARTS);
	if (instrument_options)
	{
		/* (the extension's ExecutorStart hook runs before standard_ExecutorStart) */
		__u32		opts = rd_u32((__u64) qd + off_qd_instrument_options);

		if (write_options && (opts & instrument_options) != instrument_options)
		{
			opts |= instrument_options;
			if (bpf_probe_write_user((char *) qd + off_qd_instrument_options, &opts, sizeof(opts)) != 0)
				opts = 0;
		}
		if ((opts & instrument_options) == instrument_options)
			count(PGS_PLAN_CNT_INSTRUMENTED);
	}
	v.portal = rd_ptr(activeportal_addr);
	v.ns = bpf_ktime_get_ns();
	/* a backend's QueryDesc often sits where its last one did: its entry is rewritten in place then */
	pgs_map_put(&starts, &k, &v, sizeof(v));
	return 0;
}

static __always_inline bool
push(struct scratch *s, __u8 kind, __u64 ptr, __u32 n, __u32 i, __s16 parent, __u8 rel, __u8 depth, __u64 name)
{
	__u32		sp = s->sp;
	struct frame *f;

	if (!ptr)
		return true;
	if (sp >= STACK)
	{
		s->ev.flags |= PGS_PLAN_CUT_DEPTH;
		return false;
	}
	f = &s->stack[sp];
	f->ptr = ptr;
	f->name = name;
	f->n = n;
	f->i = i;
	f->parent = parent;
	f->kind = kind;
	f->rel = rel;
	f->depth = depth;
	s->sp = sp + 1;
	return true;
}

/* the rest of a List of SubPlanState from its cells */
static __always_inline void
push_list(struct scratch *s, __u64 list, __s16 parent, __u8 rel, __u8 depth)
{
	__u32		n;

	if (!list)
		return;
	n = rd_u32(list + off_list_length);
	if (n)
		push(s, FR_SUBPLANS, rd_ptr(list + off_list_elements), n, 0, parent, rel, depth, 0);
}

static __always_inline __u32
rte_relid(struct scratch *s, __u32 rti, __u64 *rte_out)
{
	__u64		rte;

	if (rti == 0 || rti > s->rtable_len)
		return 0;
	rte = rd_ptr(s->rtable_cells + 8 * (__u64) (rti - 1));
	*rte_out = rte;
	return rte ? rd_u32(rte + off_rte_relid) : 0;
}

static __always_inline void
read_instrument(struct pgs_plan_node *node, __u64 instr)
{
	__u8		running = 0;

	if (!instr)
		return;
	node->instrumented = 1;
	bpf_probe_read_user(&node->ntuples, 8, (void *) (instr + off_instr_ntuples));
	bpf_probe_read_user(&node->nloops, 8, (void *) (instr + off_instr_nloops));
	bpf_probe_read_user(&node->startup, 8, (void *) (instr + off_instr_startup));
	bpf_probe_read_user(&node->total, 8, (void *) (instr + off_instr_total));
	bpf_probe_read_user(&node->tuplecount, 8, (void *) (instr + off_instr_tuplecount));
	bpf_probe_read_user(&node->firsttuple, 8, (void *) (instr + off_instr_firsttuple));
	bpf_probe_read_user(&node->filtered1, 8, (void *) (instr + off_instr_nfiltered1));
	bpf_probe_read_user(&node->filtered2, 8, (void *) (instr + off_instr_nfiltered2));
	bpf_probe_read_user(&running, 1, (void *) (instr + off_instr_running));
	node->running = running;
	if (instr_time_size == 8)
		node->counter_ns = rd_ptr(instr + off_instr_counter);
	else
	{
		__s64		ts[2] = {};	/* a struct timespec */

		bpf_probe_read_user(ts, sizeof(ts), (void *) (instr + off_instr_counter));
		node->counter_ns = (__u64) (ts[0] * 1000000000LL + ts[1]);
	}
}

/* what a node of kind reads beyond Plan, and its special children pushed */
static __always_inline void
read_kind(struct scratch *s, struct pgs_plan_node *node, __u8 kind, __u64 ps, __u64 plan, __s16 me, __u8 depth)
{
	__u64		rte = 0;

	switch (kind)
	{
		case PGS_PK_SCAN:
		case PGS_PK_SUBQUERY:
		case PGS_PK_CTESCAN:
		case PGS_PK_INDEXSCAN:
		case PGS_PK_INDEXONLY:
			node->relid = rte_relid(s, rd_u32(plan + off_scanrelid), &rte);
			break;
		case PGS_PK_MODIFY:
			node->relid = rte_relid(s, rd_u32(plan + off_modify_nominal_rel), &rte);
			node->detail = (int) rd_u32(plan + off_modify_operation);
			break;
		case PGS_PK_BITMAPINDEX:
			node->indexid = rd_u32(plan + off_bitmapindex_indexid);
			break;
		case PGS_PK_JOIN:
			node->detail = (int) rd_u32(plan + off_jointype);
			break;
		case PGS_PK_AGG:
			node->detail = (int) rd_u32(plan + off_agg_strategy);
			node->detail2 = (int) rd_u32(plan + off_agg_split);
			break;
	}
	switch (kind)
	{
		case PGS_PK_INDEXSCAN:
			node->indexid = rd_u32(plan + off_indexscan_indexid);
			node->detail = (int) rd_u32(plan + off_indexscan_dir);
			break;
		case PGS_PK_INDEXONLY:
			node->indexid = rd_u32(plan + off_indexonly_indexid);
			node->detail = (int) rd_u32(plan + off_indexonly_dir);
			break;
		case PGS_PK_CTESCAN:
			if (rte)
				bpf_probe_read_user_str(node->name, sizeof(node->name), (void *) rd_ptr(rte + off_rte_ctename));
			break;
		case PGS_PK_APPEND:
		case PGS_PK_MERGEAPPEND:
		case PGS_PK_BITMAPAND:
		case PGS_PK_BITMAPOR:
			/* the members: an array of PlanState pointers and its length */
			{
				__u64		plans = kind == PGS_PK_APPEND ? off_append_plans :
					kind == PGS_PK_MERGEAPPEND ? off_mergeappend_plans :
					kind == PGS_PK_BITMAPAND ? off_bitmapand_plans : off_bitmapor_plans;
				__u64		nplans = kind == PGS_PK_APPEND ? off_append_nplans :
					kind == PGS_PK_MERGEAPPEND ? off_mergeappend_nplans :
					kind == PGS_PK_BITMAPAND ? off_bitmapand_nplans : off_bitmapor_nplans;

				push(s, FR_ARRAY, rd_ptr(ps + plans), rd_u32(ps + nplans), 0, me, PGS_REL_MEMBER, depth + 1, 0);
			}
			break;
		case PGS_PK_SUBQUERY:
			push(s, FR_NODE, rd_ptr(ps + off_subqueryscan_subplan), 0, 0, me, PGS_REL_SUBQUERY, depth + 1, 0);
			break;
	}
}

/* one node: its fields, then its children pushed so that they pop in EXPLAIN's order */
static __always_inline int
visit(struct scratch *s, struct frame *f)
{
	__u32		n = s->ev.nnodes;
	__u64		ps = f->ptr,
				plan;
	__s32		tag = 0;
	__u8		kind = 0,
				depth = f->depth;
	__s16		me;
	struct pgs_plan_node *node;

	if (n >= PGS_PLAN_MAX_NODES)
	{
		s->ev.flags |= PGS_PLAN_CUT_NODES;
		return 1;
	}
	if (depth >= PGS_PLAN_MAX_DEPTH)
	{
		s->ev.flags |= PGS_PLAN_CUT_DEPTH;
		return 0;
	}
	plan = rd_ptr(ps + off_pstate_plan);
	if (!plan || bpf_probe_read_user(&tag, sizeof(tag), (void *) plan) != 0)
	{
		s->ev.flags |= PGS_PLAN_UNREADABLE;
		return 0;
	}
	node = &s->ev.nodes[n];
	__builtin_memset(node, 0, sizeof(*node));
	me = (__s16) n;
	node->tag = tag;
	node->parent = f->parent;
	node->rel = f->rel;
	node->depth = depth;
	bpf_probe_read_user(&node->startup_cost, 8, (void *) (plan + off_plan_startup_cost));
	bpf_probe_read_user(&node->total_cost, 8, (void *) (plan + off_plan_total_cost));
	bpf_probe_read_user(&node->rows, 8, (void *) (plan + off_plan_rows));
	node->width = (__s32) rd_u32(plan + off_plan_width);
	bpf_probe_read_user(&node->parallel_aware, 1, (void *) (plan + off_plan_parallel_aware));
	if (f->name)
		bpf_probe_read_user_str(node->name, sizeof(node->name), (void *) f->name);
	read_instrument(node, rd_ptr(ps + off_pstate_instrument));
	s->ev.nnodes = n + 1;
	if (tag >= 0 && tag < PGS_PLAN_TAGS)
		kind = tag_kind[tag];
	/* pushed last to first: sub plans, the special children, inner, outer, init plans */
	push_list(s, rd_ptr(ps + off_pstate_sub_plan), me, PGS_REL_SUBPLAN, depth + 1);
	if (kind)
		read_kind(s, node, kind - 1, ps, plan, me, depth);
	push(s, FR_NODE, rd_ptr(ps + off_pstate_righttree), 0, 0, me, PGS_REL_INNER, depth + 1, 0);
	push(s, FR_NODE, rd_ptr(ps + off_pstate_lefttree), 0, 0, me, PGS_REL_OUTER, depth + 1, 0);
	push_list(s, rd_ptr(ps + off_pstate_init_plan), me, PGS_REL_INITPLAN, depth + 1);
	return 0;
}

static long
walk_step(__u32 index, void *ctx)
{
	__u32		zero = 0,
				sp;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	struct frame f;

	if (!s)
		return 1;
	sp = s->sp;
	if (sp == 0 || sp > STACK)
		return 1;
	sp--;
	f = s->stack[sp];
	s->sp = sp;
	if (f.kind == FR_NODE)
		return visit(s, &f);
	if (f.i >= f.n)
		return 0;
	if (f.i + 1 < f.n)
		push(s, f.kind, f.ptr, f.n, f.i + 1, f.parent, f.rel, f.depth, 0);
	if (f.kind == FR_ARRAY)
		push(s, FR_NODE, rd_ptr(f.ptr + 8 * (__u64) f.i), 0, 0, f.parent, f.rel, f.depth, 0);
	else
	{
		__u64		sps = rd_ptr(f.ptr + 8 * (__u64) f.i);
		__u64		subplan = rd_ptr(sps + off_sps_subplan);

		push(s, FR_NODE, rd_ptr(sps + off_sps_planstate), 0, 0, f.parent, f.rel, f.depth,
			 subplan ? rd_ptr(subplan + off_subplan_name) : 0);
	}
	return 0;
}

SEC("uprobe")
int
BPF_KPROBE(on_executor_end, void *qd)
{
	struct start_key k = {.qd = (__u64) qd, .pid = bpf_get_current_pid_tgid() >> 32};
	struct start_val *start = bpf_map_lookup_elem(&starts, &k);
	__u64		now = bpf_ktime_get_ns(),
				dur,
				pstmt,
				rtable,
				port,
				portal,
				size;
	__u32		zero = 0,
				opts;
	struct scratch *s;

	if (!start || !start->ns)
	{
		if (traced_backend())
			count(PGS_PLAN_CNT_UNMATCHED);
		return 0;
	}
	dur = now - start->ns;
	portal = start->portal;
	/* ended: marked, not deleted (the next start at this QueryDesc reuses the entry; the LRU map evicts the rest) */
	start->ns = 0;
	if (dur < min_ns)
		return 0;
	count(PGS_PLAN_CNT_SLOW);
	s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	s->ev.pid = k.pid;
	s->ev.nnodes = 0;
	opts = rd_u32((__u64) qd + off_qd_instrument_options);
	s->ev.flags = ((opts & (instrument_rows_bit | instrument_timer_bit)) ? PGS_PLAN_INSTRUMENTED : 0) |
		((opts & instrument_timer_bit) ? PGS_PLAN_TIMED : 0);
	s->ev.end_ns = now;
	s->ev.duration_ns = dur;
	s->ev.db = rd_u32(mydatabaseid_addr);
	s->ev.datname[0] = s->ev.usename[0] = s->ev.text[0] = 0;
	bpf_probe_read_user_str(s->ev.text, sizeof(s->ev.text), (void *) rd_ptr((__u64) qd + off_qd_source_text));
	port = rd_ptr(myprocport_addr);
	if (port)
	{
		bpf_probe_read_user_str(s->ev.datname, sizeof(s->ev.datname), (void *) rd_ptr(port + off_port_db));
		bpf_probe_read_user_str(s->ev.usename, sizeof(s->ev.usename), (void *) rd_ptr(port + off_port_user));
	}
	pstmt = rd_ptr((__u64) qd + off_qd_plannedstmt);
	s->ev.query_id = rd_ptr(pstmt + off_ps_query_id);
	s->ev.origin = plan_origin(portal, pstmt);
	rtable = rd_ptr(pstmt + off_ps_rtable);
	s->rtable_len = rtable ? rd_u32(rtable + off_list_length) : 0;
	s->rtable_cells = rtable ? rd_ptr(rtable + off_list_elements) : 0;
	s->sp = 0;
	push(s, FR_NODE, rd_ptr((__u64) qd + off_qd_planstate), 0, 0, -1, PGS_REL_NONE, 0, 0);
	bpf_loop(4 * PGS_PLAN_MAX_NODES, walk_step, NULL, 0);
	if (s->sp > 0 && s->ev.nnodes >= PGS_PLAN_MAX_NODES)
		s->ev.flags |= PGS_PLAN_CUT_NODES;
	size = __builtin_offsetof(struct pgs_plan_event, nodes) +
		(__u64) (s->ev.nnodes & (PGS_PLAN_MAX_NODES * 2 - 1)) * sizeof(struct pgs_plan_node);
	if (size > sizeof(s->ev))
		size = sizeof(s->ev);
	if (bpf_ringbuf_output(&events, &s->ev, size, 0) != 0)
		count(PGS_PLAN_CNT_LOST);
	return 0;
}
