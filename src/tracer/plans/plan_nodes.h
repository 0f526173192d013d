/*
 * plan_nodes.h - the plan nodes "pgscope plans" knows, with EXPLAIN's name
 * for each and what the BPF program reads beyond the Plan fields every node
 * has; and the enums whose names EXPLAIN prints (join type, aggregate
 * strategy and split, scan direction, ModifyTable's operation).
 *
 * Only names live here: the values (NodeTag T_*, JOIN_*, ...) differ from
 * one major to the next and are generated from each major's server headers
 * by tools/pgoffsets.c, which includes this file, into build/pg_offsets.h.
 * Plain macros, so the tool (server headers), the tracer and its BPF
 * program can all include it.
 */
#ifndef PGSCOPE_PLAN_NODES_H
#define PGSCOPE_PLAN_NODES_H

/* what the BPF program reads of a node beyond Plan (the kinds are ours, not PostgreSQL's) */
#define PGS_PK_PLAIN		0	/* nothing more */
#define PGS_PK_SCAN			1	/* Scan.scanrelid: the range table entry's relation */
#define PGS_PK_INDEXSCAN	2	/* a scan + IndexScan.indexid, indexorderdir */
#define PGS_PK_INDEXONLY	3	/* a scan + IndexOnlyScan.indexid, indexorderdir */
#define PGS_PK_BITMAPINDEX	4	/* BitmapIndexScan.indexid */
#define PGS_PK_JOIN			5	/* Join.jointype */
#define PGS_PK_AGG			6	/* Agg.aggstrategy, aggsplit */
#define PGS_PK_MODIFY		7	/* ModifyTable.operation, nominalRelation */
#define PGS_PK_APPEND		8	/* AppendState.appendplans[as_nplans] */
#define PGS_PK_MERGEAPPEND	9	/* MergeAppendState.mergeplans[ms_nplans] */
#define PGS_PK_BITMAPAND	10	/* BitmapAndState.bitmapplans[nplans] */
#define PGS_PK_BITMAPOR		11	/* BitmapOrState.bitmapplans[nplans] */
#define PGS_PK_SUBQUERY		12	/* a scan + SubqueryScanState.subplan */
#define PGS_PK_CTESCAN		13	/* a scan whose range table entry names the CTE */

/* X(PostgreSQL's node name, EXPLAIN's "Node Type", what is read) */
#define PGS_PLAN_NODES(X) \
	X(Result, "Result", PGS_PK_PLAIN) \
	X(ProjectSet, "ProjectSet", PGS_PK_PLAIN) \
	X(ModifyTable, "ModifyTable", PGS_PK_MODIFY) \
	X(Append, "Append", PGS_PK_APPEND) \
	X(MergeAppend, "Merge Append", PGS_PK_MERGEAPPEND) \
	X(RecursiveUnion, "Recursive Union", PGS_PK_PLAIN) \
	X(BitmapAnd, "BitmapAnd", PGS_PK_BITMAPAND) \
	X(BitmapOr, "BitmapOr", PGS_PK_BITMAPOR) \
	X(SeqScan, "Seq Scan", PGS_PK_SCAN) \
	X(SampleScan, "Sample Scan", PGS_PK_SCAN) \
	X(IndexScan, "Index Scan", PGS_PK_INDEXSCAN) \
	X(IndexOnlyScan, "Index Only Scan", PGS_PK_INDEXONLY) \
	X(BitmapIndexScan, "Bitmap Index Scan", PGS_PK_BITMAPINDEX) \
	X(BitmapHeapScan, "Bitmap Heap Scan", PGS_PK_SCAN) \
	X(TidScan, "Tid Scan", PGS_PK_SCAN) \
	X(TidRangeScan, "Tid Range Scan", PGS_PK_SCAN) \
	X(SubqueryScan, "Subquery Scan", PGS_PK_SUBQUERY) \
	X(FunctionScan, "Function Scan", PGS_PK_SCAN) \
	X(ValuesScan, "Values Scan", PGS_PK_SCAN) \
	X(TableFuncScan, "Table Function Scan", PGS_PK_SCAN) \
	X(CteScan, "CTE Scan", PGS_PK_CTESCAN) \
	X(NamedTuplestoreScan, "Named Tuplestore Scan", PGS_PK_SCAN) \
	X(WorkTableScan, "WorkTable Scan", PGS_PK_SCAN) \
	X(ForeignScan, "Foreign Scan", PGS_PK_SCAN) \
	X(CustomScan, "Custom Scan", PGS_PK_SCAN) \
	X(NestLoop, "Nested Loop", PGS_PK_JOIN) \
	X(MergeJoin, "Merge Join", PGS_PK_JOIN) \
	X(HashJoin, "Hash Join", PGS_PK_JOIN) \
	X(Material, "Materialize", PGS_PK_PLAIN) \
	X(Memoize, "Memoize", PGS_PK_PLAIN) \
	X(Sort, "Sort", PGS_PK_PLAIN) \
	X(IncrementalSort, "Incremental Sort", PGS_PK_PLAIN) \
	X(Group, "Group", PGS_PK_PLAIN) \
	X(Agg, "Aggregate", PGS_PK_AGG) \
	X(WindowAgg, "WindowAgg", PGS_PK_PLAIN) \
	X(Unique, "Unique", PGS_PK_PLAIN) \
	X(Gather, "Gather", PGS_PK_PLAIN) \
	X(GatherMerge, "Gather Merge", PGS_PK_PLAIN) \
	X(Hash, "Hash", PGS_PK_PLAIN) \
	X(SetOp, "SetOp", PGS_PK_PLAIN) \
	X(LockRows, "LockRows", PGS_PK_PLAIN) \
	X(Limit, "Limit", PGS_PK_PLAIN)

#define PGS_PLAN_ENUM_(name, explain, kind) PGS_PN_##name,
enum
{
	PGS_PLAN_NODES(PGS_PLAN_ENUM_)
	PGS_PLAN_NODE_COUNT
};

/* EXPLAIN's "Join Type"s, in our order; a major without one has -1 in its row */
#define PGS_JOIN_TYPES(X) \
	X(INNER, "Inner") X(LEFT, "Left") X(FULL, "Full") X(RIGHT, "Right") X(SEMI, "Semi") \
	X(ANTI, "Anti") X(RIGHT_SEMI, "Right Semi") X(RIGHT_ANTI, "Right Anti")
#define PGS_JOIN_TYPE_COUNT 8

/* EXPLAIN's aggregate "Strategy"s: AGG_PLAIN, AGG_SORTED, AGG_HASHED, AGG_MIXED */
#define PGS_AGG_STRATEGIES(X) X(PLAIN, "Plain") X(SORTED, "Sorted") X(HASHED, "Hashed") X(MIXED, "Mixed")
#define PGS_AGG_STRATEGY_COUNT 4

/* ModifyTable's "Operation": CMD_INSERT, ... (MERGE from 15) */
#define PGS_CMD_TYPES(X) X(INSERT, "Insert") X(UPDATE, "Update") X(DELETE, "Delete") X(MERGE, "Merge")
#define PGS_CMD_TYPE_COUNT 4

#endif
