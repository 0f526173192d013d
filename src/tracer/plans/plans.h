/*
 * plans.h - what the plans tracer's BPF program and its user side share:
 * one event per statement slower than the threshold, carrying its plan tree
 * in EXPLAIN's order (pre-order: init plans, outer, inner, members, subquery,
 * sub plans), each node with the index of its parent.
 */
#ifndef PGSCOPE_PLANS_H
#define PGSCOPE_PLANS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_PLAN_MAX_NODES	64		/* a plan is cut there (flag PGS_PLAN_CUT_NODES) */
#define PGS_PLAN_MAX_DEPTH	24		/* and there (PGS_PLAN_CUT_DEPTH) */
#define PGS_PLAN_TEXT		1024	/* the statement's text, cut there */
#define PGS_PLAN_NAME		48		/* a sub plan's or CTE's name */
#define PGS_PLAN_TAGS		1024	/* NodeTag values below this are known to the BPF program */

/* the node's relationship to its parent, EXPLAIN's "Parent Relationship" */
#define PGS_REL_NONE		0
#define PGS_REL_OUTER		1
#define PGS_REL_INNER		2
#define PGS_REL_MEMBER		3
#define PGS_REL_SUBQUERY	4
#define PGS_REL_INITPLAN	5
#define PGS_REL_SUBPLAN		6

/* where the plan came from: the portal's cached plan, generic when its plan source holds it too */
#define PGS_ORIGIN_NONE		0	/* not a cached plan (a simple query, SPI's one-shot plans) */
#define PGS_ORIGIN_CUSTOM	1
#define PGS_ORIGIN_GENERIC	2
#define PGS_ORIGIN_UNKNOWN	3	/* run by another portal's statement (a function's query) */

#define PGS_PLAN_CUT_NODES	0x1
#define PGS_PLAN_CUT_DEPTH	0x2
#define PGS_PLAN_UNREADABLE	0x4		/* a pointer of the tree could not be read */
#define PGS_PLAN_INSTRUMENTED 0x8	/* the nodes carry actual rows and loops (--analyze) */
#define PGS_PLAN_TIMED		0x10	/* and times */

struct pgs_plan_node
{
	__s32		tag;			/* the Plan's NodeTag */
	__s16		parent;			/* index in the event's nodes, -1: the root */
	__u8		rel;			/* PGS_REL_* */
	__u8		depth;
	__u32		relid;			/* the scanned (or modified) relation, 0: none */
	__u32		indexid;
	__s32		detail;			/* join type, aggregate strategy, scan direction, operation */
	__s32		detail2;		/* aggregate split */
	__s32		width;
	__u8		parallel_aware;
	__u8		instrumented;	/* the node has Instrumentation */
	__u8		running;		/* Instrumentation.running: a loop not yet added to the totals */
	__u8		pad;
	__u64		startup_cost;	/* doubles, as the bits PostgreSQL stores */
	__u64		total_cost;
	__u64		rows;
	/* Instrumentation, as the executor left it at ExecutorEnd (user space folds the open loop in) */
	__u64		ntuples;		/* doubles */
	__u64		nloops;
	__u64		startup;
	__u64		total;
	__u64		tuplecount;
	__u64		firsttuple;
	__u64		filtered1;
	__u64		filtered2;
	__u64		counter_ns;		/* the open loop's run time */
	char		name[PGS_PLAN_NAME];	/* a sub plan's "InitPlan 1", a CTE scan's CTE */
};

struct pgs_plan_event
{
	__u32		pid;
	__u16		nnodes;
	__u16		flags;			/* PGS_PLAN_* */
	__u64		end_ns;			/* CLOCK_MONOTONIC */
	__u64		duration_ns;	/* ExecutorStart to ExecutorEnd */
	__u64		query_id;
	__u32		db;
	__u32		origin;			/* PGS_ORIGIN_* */
	char		datname[64];
	char		usename[64];
	char		text[PGS_PLAN_TEXT];
	struct pgs_plan_node nodes[PGS_PLAN_MAX_NODES];
};

/* the counters of the per-CPU array "counters" */
#define PGS_PLAN_CNT_LOST		0	/* events the ring buffer could not take */
#define PGS_PLAN_CNT_SLOW		1	/* statements over the threshold */
#define PGS_PLAN_CNT_STARTS		2	/* executor starts seen */
#define PGS_PLAN_CNT_UNMATCHED	3	/* ends without a start (started before the tracer) */
#define PGS_PLAN_CNT_INSTRUMENTED 4	/* executor starts given instrumentation (--analyze) */
#define PGS_PLAN_COUNTERS		5

#endif
