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
	unsigned long port_database_name;
	unsigned long port_user_name;
	unsigned long port_ssl_in_use;	/* Port.ssl_in_use */
	unsigned long relation_rd_id;	/* RelationData.rd_id */
	unsigned long heaptuple_t_self;	/* HeapTupleData.t_self */
	unsigned long locktag_field1;
	unsigned long locktag_field2;
	unsigned long locktag_field3;
	unsigned long locktag_field4;
	unsigned long locktag_type;
	unsigned long locktag_method;
	unsigned long bufusage_shared_hit;	/* BufferUsage (pgBufferUsage) */
	unsigned long bufusage_shared_read;
	unsigned long walusage_records;	/* WalUsage (pgWalUsage) */
	unsigned long walusage_bytes;
	unsigned long xlogrecdata_data;	/* XLogRecData.data */
	unsigned long xlogrecord_tot_len;
	unsigned long xlogrecord_info;
	unsigned long xlogrecord_rmid;
	unsigned long ckpt_bufs_written;	/* CheckpointStatsData (CheckpointStats) */
	unsigned long ckpt_segs_added;
	unsigned long ckpt_segs_removed;
	unsigned long ckpt_segs_recycled;
	unsigned long beentry_activity_raw;	/* PgBackendStatus.st_activity_raw (MyBEEntry) */
	/* "pgscope plans": the executor's QueryDesc and PlanState trees, the Plan nodes they point to */
	unsigned long qd_plannedstmt;	/* QueryDesc */
	unsigned long qd_source_text;
	unsigned long qd_planstate;
	unsigned long qd_instrument_options;
	unsigned long ps_rtable;	/* PlannedStmt */
	unsigned long ps_query_id;
	unsigned long portal_stmts;	/* PortalData (ActivePortal) */
	unsigned long portal_cplan;
	unsigned long cplan_refcount;	/* CachedPlan */
	unsigned long pstate_plan;	/* PlanState */
	unsigned long pstate_instrument;
	unsigned long pstate_lefttree;
	unsigned long pstate_righttree;
	unsigned long pstate_init_plan;
	unsigned long pstate_sub_plan;
	unsigned long plan_startup_cost;	/* Plan */
	unsigned long plan_total_cost;
	unsigned long plan_rows;
	unsigned long plan_width;
	unsigned long plan_parallel_aware;
	unsigned long scan_scanrelid;	/* Scan */
	unsigned long indexscan_indexid;	/* IndexScan */
	unsigned long indexscan_dir;
	unsigned long indexonly_indexid;	/* IndexOnlyScan */
	unsigned long indexonly_dir;
	unsigned long bitmapindex_indexid;	/* BitmapIndexScan */
	unsigned long join_jointype;	/* Join */
	unsigned long agg_strategy;	/* Agg */
	unsigned long agg_split;
	unsigned long modify_operation;	/* ModifyTable */
	unsigned long modify_nominal_rel;
	unsigned long append_plans;	/* AppendState */
	unsigned long append_nplans;
	unsigned long mergeappend_plans;	/* MergeAppendState */
	unsigned long mergeappend_nplans;
	unsigned long bitmapand_plans;	/* BitmapAndState */
	unsigned long bitmapand_nplans;
	unsigned long bitmapor_plans;	/* BitmapOrState */
	unsigned long bitmapor_nplans;
	unsigned long subqueryscan_subplan;	/* SubqueryScanState */
	unsigned long subplanstate_subplan;	/* SubPlanState */
	unsigned long subplanstate_planstate;
	unsigned long subplan_plan_name;	/* SubPlan */
	unsigned long rte_relid;	/* RangeTblEntry */
	unsigned long rte_ctename;
	unsigned long list_length;	/* List */
	unsigned long list_elements;
	unsigned long instr_ntuples;	/* Instrumentation */
	unsigned long instr_nloops;
	unsigned long instr_total;
	unsigned long instr_startup;
	unsigned long instr_nfiltered1;
	unsigned long instr_nfiltered2;
	unsigned long instr_running;
	unsigned long instr_tuplecount;
	unsigned long instr_firsttuple;
	unsigned long instr_counter;
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
} PgsPgOffsets;

#endif
