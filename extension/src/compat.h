/*
 * compat.h
 *		The one place where PostgreSQL major-version differences (14-18) are
 *		hidden.  Code elsewhere calls these wrappers and never tests
 *		PG_VERSION_NUM itself.
 */
#ifndef PGSCOPE_COMPAT_H
#define PGSCOPE_COMPAT_H

#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"

#if PG_VERSION_NUM < 140000
#error "pgscope needs PostgreSQL 14 or later (PLpgSQL_stmt.stmtid, ProcessUtility readOnlyTree)"
#endif

/*
 * Materialized SRF setup: PG15 added InitMaterializedSRF(); PG14 spells the
 * same steps out by hand.
 */
#if PG_VERSION_NUM >= 150000
#define pgs_init_materialized_srf(fcinfo) InitMaterializedSRF((fcinfo), 0)
#else
#include "utils/tuplestore.h"
static inline void
pgs_init_materialized_srf(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	MemoryContext oldcxt;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcxt);
}
#endif

/*
 * Shared memory must be requested from shmem_request_hook since PG15; before
 * that, RequestAddinShmemSpace() was called directly from _PG_init().
 */
#if PG_VERSION_NUM >= 150000
#define PGS_HAVE_SHMEM_REQUEST_HOOK 1
#else
#define PGS_HAVE_SHMEM_REQUEST_HOOK 0
#endif

/* Reserving the GUC prefix: PG15 renamed EmitWarningsOnPlaceholders(). */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * A PL/pgSQL function's version (pg_proc row xmin and ctid): PG18 moved
 * fn_xmin and fn_tid into the cached-function header every PL shares
 * (utils/funccache.h, PLpgSQL_function.cfunc).
 */
#if PG_VERSION_NUM >= 180000
#define PGS_FN_XMIN(func) ((func)->cfunc.fn_xmin)
#define PGS_FN_TID(func) ((func)->cfunc.fn_tid)
#else
#define PGS_FN_XMIN(func) ((func)->fn_xmin)
#define PGS_FN_TID(func) ((func)->fn_tid)
#endif

#endif							/* PGSCOPE_COMPAT_H */
