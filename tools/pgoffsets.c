/*
 * pgoffsets.c - build-time tool, compiled once per installed
 * postgresql-server-dev-N: prints the offsets of the PostgreSQL struct
 * fields the BPF programs read, as one row of the table in
 * build/pg_offsets.h (designated initializers, so a field a major lacks
 * can simply be left out).  No offset is ever written by hand.
 */
#include "postgres.h"

#include <stddef.h>
#include <stdio.h>

#include "access/htup.h"
#include "access/xlogrecord.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "executor/execdesc.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "libpq/libpq-be.h"
#include "storage/lock.h"
#if PG_VERSION_NUM >= 180000
#include "storage/aio_internal.h"
#endif
#include "utils/backend_status.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/rel.h"

#include "../src/tracer/plans/plan_nodes.h"

/* postgres.h maps printf to the server's own; this tool has plain libc */
#undef printf

#define OFF(field, type, member) printf(", ." #field " = %zu", offsetof(type, member))

int
main(void)
{
	printf("\t{.major = %d", PG_VERSION_NUM / 10000);
	OFF(port_database_name, Port, database_name);
	OFF(port_user_name, Port, user_name);
	OFF(port_ssl_in_use, Port, ssl_in_use);
	OFF(relation_rd_id, RelationData, rd_id);
	OFF(heaptuple_t_self, HeapTupleData, t_self);
	OFF(locktag_field1, LOCKTAG, locktag_field1);
	OFF(locktag_field2, LOCKTAG, locktag_field2);
	OFF(locktag_field3, LOCKTAG, locktag_field3);
	OFF(locktag_field4, LOCKTAG, locktag_field4);
	OFF(locktag_type, LOCKTAG, locktag_type);
	OFF(locktag_method, LOCKTAG, locktag_lockmethodid);
	OFF(bufusage_shared_hit, BufferUsage, shared_blks_hit);
	OFF(bufusage_shared_read, BufferUsage, shared_blks_read);
	OFF(walusage_records, WalUsage, wal_records);
	OFF(walusage_bytes, WalUsage, wal_bytes);
	OFF(xlogrecdata_data, XLogRecData, data);
	OFF(xlogrecord_tot_len, XLogRecord, xl_tot_len);
	OFF(xlogrecord_info, XLogRecord, xl_info);
	OFF(xlogrecord_rmid, XLogRecord, xl_rmid);
	OFF(ckpt_bufs_written, CheckpointStatsData, ckpt_bufs_written);
	OFF(ckpt_segs_added, CheckpointStatsData, ckpt_segs_added);
	OFF(ckpt_segs_removed, CheckpointStatsData, ckpt_segs_removed);
	OFF(ckpt_segs_recycled, CheckpointStatsData, ckpt_segs_recycled);
	OFF(beentry_activity_raw, PgBackendStatus, st_activity_raw);
#if PG_VERSION_NUM >= 180000
	/* asynchronous IO (18): a handle's operation, its target, the relation and fork of an smgr target */
	OFF(aio_op, PgAioHandle, op);
	OFF(aio_target, PgAioHandle, target);
	OFF(aio_target_rlocator, PgAioHandle, target_data.smgr.rlocator);
	/* forkNum, a bit-field, is the low byte of the unit right after nblocks */
	printf(", .aio_target_fork = %zu", offsetof(PgAioHandle, target_data.smgr.nblocks) + sizeof(BlockNumber));
	printf(", .aio_op_readv = %d, .aio_op_writev = %d, .aio_tid_smgr = %d", (int) PGAIO_OP_READV,
		   (int) PGAIO_OP_WRITEV, (int) PGAIO_TID_SMGR);
#endif
	/* pgscope plans */
	OFF(qd_plannedstmt, QueryDesc, plannedstmt);
	OFF(qd_source_text, QueryDesc, sourceText);
	OFF(qd_planstate, QueryDesc, planstate);
	OFF(qd_instrument_options, QueryDesc, instrument_options);
	OFF(ps_rtable, PlannedStmt, rtable);
	OFF(ps_query_id, PlannedStmt, queryId);
	OFF(portal_stmts, PortalData, stmts);
	OFF(portal_cplan, PortalData, cplan);
	OFF(cplan_refcount, CachedPlan, refcount);
	OFF(pstate_plan, PlanState, plan);
	OFF(pstate_instrument, PlanState, instrument);
	OFF(pstate_lefttree, PlanState, lefttree);
	OFF(pstate_righttree, PlanState, righttree);
	OFF(pstate_init_plan, PlanState, initPlan);
	OFF(pstate_sub_plan, PlanState, subPlan);
	OFF(plan_startup_cost, Plan, startup_cost);
	OFF(plan_total_cost, Plan, total_cost);
	OFF(plan_rows, Plan, plan_rows);
	OFF(plan_width, Plan, plan_width);
	OFF(plan_parallel_aware, Plan, parallel_aware);
	OFF(scan_scanrelid, Scan, scanrelid);
	OFF(indexscan_indexid, IndexScan, indexid);
	OFF(indexscan_dir, IndexScan, indexorderdir);
	OFF(indexonly_indexid, IndexOnlyScan, indexid);
	OFF(indexonly_dir, IndexOnlyScan, indexorderdir);
	OFF(bitmapindex_indexid, BitmapIndexScan, indexid);
	OFF(join_jointype, Join, jointype);
	OFF(agg_strategy, Agg, aggstrategy);
	OFF(agg_split, Agg, aggsplit);
	OFF(modify_operation, ModifyTable, operation);
	OFF(modify_nominal_rel, ModifyTable, nominalRelation);
	OFF(append_plans, AppendState, appendplans);
	OFF(append_nplans, AppendState, as_nplans);
	OFF(mergeappend_plans, MergeAppendState, mergeplans);
	OFF(mergeappend_nplans, MergeAppendState, ms_nplans);
	OFF(bitmapand_plans, BitmapAndState, bitmapplans);
	OFF(bitmapand_nplans, BitmapAndState, nplans);
	OFF(bitmapor_plans, BitmapOrState, bitmapplans);
	OFF(bitmapor_nplans, BitmapOrState, nplans);
	OFF(subqueryscan_subplan, SubqueryScanState, subplan);
	OFF(subplanstate_subplan, SubPlanState, subplan);
	OFF(subplanstate_planstate, SubPlanState, planstate);
	OFF(subplan_plan_name, SubPlan, plan_name);
	OFF(rte_relid, RangeTblEntry, relid);
	OFF(rte_ctename, RangeTblEntry, ctename);
	OFF(list_length, List, length);
	OFF(list_elements, List, elements);
	OFF(instr_ntuples, Instrumentation, ntuples);
	OFF(instr_nloops, Instrumentation, nloops);
	OFF(instr_total, Instrumentation, total);
	OFF(instr_startup, Instrumentation, startup);
	OFF(instr_nfiltered1, Instrumentation, nfiltered1);
	OFF(instr_nfiltered2, Instrumentation, nfiltered2);
	OFF(instr_running, Instrumentation, running);
	OFF(instr_tuplecount, Instrumentation, tuplecount);
	OFF(instr_firsttuple, Instrumentation, firsttuple);
	OFF(instr_counter, Instrumentation, counter);
	printf(", .instr_time_size = %zu", sizeof(instr_time));
#define TAG(name, explain, kind) printf("%d, ", (int) T_##name);
	printf(", .plan_tag = {");
	PGS_PLAN_NODES(TAG);
	printf("}");
	/* join types a major lacks: -1 (JOIN_RIGHT_ANTI from 16, JOIN_RIGHT_SEMI from 18) */
#if PG_VERSION_NUM < 160000
#define JOIN_RIGHT_ANTI (-1)
#endif
#if PG_VERSION_NUM < 180000
#define JOIN_RIGHT_SEMI (-1)
#endif
#define JOINV(name, explain) printf("%d, ", (int) JOIN_##name);
	printf(", .join_type = {");
	PGS_JOIN_TYPES(JOINV);
	printf("}");
#define AGGV(name, explain) printf("%d, ", (int) AGG_##name);
	printf(", .agg_strategy_value = {");
	PGS_AGG_STRATEGIES(AGGV);
	printf("}");
#define CMDV(name, explain) printf("%d, ", (int) CMD_##name);
	printf(", .cmd_type = {");
	PGS_CMD_TYPES(CMDV);
	printf("}");
	printf(", .aggsplit_combine = %d, .aggsplit_skipfinal = %d", AGGSPLITOP_COMBINE, AGGSPLITOP_SKIPFINAL);
	printf(", .scandir_backward = %d, .scandir_forward = %d", (int) BackwardScanDirection, (int) ForwardScanDirection);
	printf(", .instrument_rows = %d, .instrument_timer = %d", (int) INSTRUMENT_ROWS, (int) INSTRUMENT_TIMER);
	printf(", .exec_flag_explain_only = %d", EXEC_FLAG_EXPLAIN_ONLY);
	printf("},\n");
	return 0;
}
