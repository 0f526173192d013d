/*
 * pg_offsets_type.h - one row per PostgreSQL major version of the struct
 * offsets the tracer reads; the rows are generated into build/pg_offsets.h
 * by tools/pgoffsets.c from the installed server headers.
 */
#ifndef PGSCOPE_PG_OFFSETS_TYPE_H
#define PGSCOPE_PG_OFFSETS_TYPE_H

#include "plans/plan_nodes.h"

typedef struct PgsPgOffsets
{
	int			major;
	/* one line per server struct: the offsets of the members read */
	unsigned long port_database_name, port_user_name, port_ssl_in_use;	/* Port */
	unsigned long relation_rd_id;	/* RelationData */
	unsigned long heaptuple_t_self;	/* HeapTupleData */
	unsigned long locktag_field1, locktag_field2, locktag_field3, locktag_field4,
				locktag_type, locktag_method;	/* LOCKTAG */
	unsigned long bufusage_shared_hit, bufusage_shared_read;	/* BufferUsage (pgBufferUsage) */
	unsigned long walusage_records, walusage_bytes;	/* WalUsage (pgWalUsage) */
	unsigned long xlogrecdata_data;	/* XLogRecData */
	unsigned long xlogrecord_tot_len, xlogrecord_info, xlogrecord_rmid;	/* XLogRecord */
	unsigned long ckpt_bufs_written, ckpt_segs_added, ckpt_segs_removed,
				ckpt_segs_recycled;	/* CheckpointStatsData (CheckpointStats) */
	unsigned long beentry_activity_raw;	/* PgBackendStatus (MyBEEntry) */
	unsigned long aio_op, aio_target, aio_target_rlocator, aio_target_fork;	/* PgAioHandle (18 on; 0: none) */
	/* "pgscope plans": the executor's QueryDesc and PlanState trees, the Plan nodes they point to */
	unsigned long qd_plannedstmt, qd_source_text, qd_planstate, qd_instrument_options;	/* QueryDesc */
	unsigned long ps_rtable, ps_query_id;	/* PlannedStmt */
	unsigned long portal_stmts, portal_cplan;	/* PortalData (ActivePortal) */
	unsigned long cplan_refcount;	/* CachedPlan */
	unsigned long pstate_plan, pstate_instrument, pstate_lefttree, pstate_righttree,
				pstate_init_plan, pstate_sub_plan;	/* PlanState */
	unsigned long plan_startup_cost, plan_total_cost, plan_rows, plan_width,
				plan_parallel_aware;	/* Plan */
	unsigned long scan_scanrelid;	/* Scan */
	unsigned long indexscan_indexid, indexscan_dir;	/* IndexScan */
	unsigned long indexonly_indexid, indexonly_dir;	/* IndexOnlyScan */
	unsigned long bitmapindex_indexid;	/* BitmapIndexScan */
	unsigned long join_jointype;	/* Join */
	unsigned long agg_strategy, agg_split;	/* Agg */
	unsigned long modify_operation, modify_nominal_rel;	/* ModifyTable */
	/* the children of AppendState, MergeAppendState, BitmapAndState, BitmapOrState */
	unsigned long append_plans, append_nplans, mergeappend_plans, mergeappend_nplans,
				bitmapand_plans, bitmapand_nplans, bitmapor_plans, bitmapor_nplans;
	unsigned long subqueryscan_subplan;	/* SubqueryScanState */
	unsigned long subplanstate_subplan, subplanstate_planstate;	/* SubPlanState */
	unsigned long subplan_plan_name;	/* SubPlan */
	unsigned long rte_relid, rte_ctename;	/* RangeTblEntry */
	unsigned long list_length, list_elements;	/* List */
	unsigned long instr_ntuples, instr_nloops, instr_total, instr_startup,
				instr_nfiltered1, instr_nfiltered2, instr_running, instr_tuplecount,
				instr_firsttuple, instr_counter;	/* Instrumentation */
	unsigned long instr_time_size;	/* sizeof(instr_time): 8, nanoseconds (16+), or a struct timespec */
	/* enum values */
	int			plan_tag[PGS_PLAN_NODE_COUNT];	/* NodeTag of each of PGS_PLAN_NODES, -1: none */
	int			join_type[PGS_JOIN_TYPE_COUNT];
	int			agg_strategy_value[PGS_AGG_STRATEGY_COUNT];
	int			cmd_type[PGS_CMD_TYPE_COUNT];
	int			aggsplit_combine;	/* AGGSPLITOP_COMBINE, AGGSPLITOP_SKIPFINAL bits */
	int			aggsplit_skipfinal;
	int			scandir_backward;	/* BackwardScanDirection, ForwardScanDirection */
	int			scandir_forward;
	int			instrument_rows;	/* INSTRUMENT_ROWS, INSTRUMENT_TIMER */
	int			instrument_timer;
	int			exec_flag_explain_only;	/* EXEC_FLAG_EXPLAIN_ONLY */
	int			aio_op_readv;	/* PGAIO_OP_READV, PGAIO_OP_WRITEV, PGAIO_TID_SMGR (18 on) */
	int			aio_op_writev;
	int			aio_tid_smgr;
} PgsPgOffsets;

#endif
