/*
 * sqlapi.c
 *		The SQL-callable functions: the native pgscope_* API and the C parts of
 *		the plprofiler 4.2 compatibility layer (the rest of that layer is SQL in
 *		the install script, on top of these).
 *
 * Every reader works on a snapshot (local.c or shmem.c builds it), so the
 * row-building code below is shared by the local and the shared variant.
 * Privilege rule: whatever affects other sessions or exposes their data
 * needs superuser or membership in pgscope_admin (reading shared data is
 * also allowed to pg_read_all_stats).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/int.h"
#include "executor/instrument.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "pgscope.h"

#define PGS_MAX_ARRAY_ELEMS 100000

/*
 * Result columns of the C functions, as pgscope--1.0.sql declares them.  Rows
 * are filled left to right (values[i++]) and the count asserted at the end,
 * so a column added in one place and not the other is caught in a debug
 * build.
 */
#define PGS_FUNCTIONS_COLS 12
#define PGS_STATEMENTS_COLS 11
#define PGS_LINES_COLS 14
#define PGS_CALLGRAPH_COLS 7
#define PGS_STATUS_COLS 18
#define PGS_FUNCS_SOURCE_COLS 3

static const char *const stmt_type_names[] = {
	"block", "assign", "if", "case", "loop", "while", "for (integer)",
	"for (query)", "for (cursor)", "foreach", "exit", "return", "return next",
	"return query", "raise", "assert", "sql", "execute", "for (execute)",
	"get diagnostics", "open", "fetch", "close", "perform", "call", "commit",
	"rollback"
};

const char *
pgs_stmt_typename(int type)
{
	if (type >= 0 && type < (int) lengthof(stmt_type_names))
		return stmt_type_names[type];
	return "unknown";
}

const char *
pgs_kind_name(int kind)
{
	switch (kind)
	{
		case PGS_KIND_PROCEDURE:
			return "procedure";
		case PGS_KIND_TRIGGER:
			return "trigger";
		case PGS_KIND_EVENT_TRIGGER:
			return "event trigger";
		case PGS_KIND_DO:
			return "do";
		default:
			return "function";
	}
}

/* ---------- privilege and argument checks ---------- */

static bool
is_admin(void)
{
	Oid			role = get_role_oid("pgscope_admin", true);

	return superuser() || (OidIsValid(role) && has_privs_of_role(GetUserId(), role));
}

static void
require_admin(const char *what)
{
	if (!is_admin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errhint("Only superusers and members of the role pgscope_admin may do this; a superuser can run GRANT pgscope_admin TO <role>.")));
}

static void
require_shared(void)
{
	if (!pgs_shared_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgscope shared profiling is not available"),
				 errhint("Add pgscope to shared_preload_libraries in postgresql.conf and restart the server; session profiling (pgscope.enabled) works without it.")));
}

static void
require_shared_read(void)
{
	require_shared();
	if (!is_admin() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read instance-wide profile data"),
				 errhint("Superusers and members of pgscope_admin or pg_read_all_stats may read it; your own session's profile is in the *_local functions.")));
}

static void
require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be NULL", name),
				 errhint("Pass a value for \"%s\"; see the pgscope README for each function's arguments.", name)));
}

/* the longest expiry accepted: beyond it the arithmetic nears timestamp limits, and '0' means never */
#define PGS_MAX_EXPIRY_USECS ((int64) 10 * 366 * USECS_PER_DAY)

/*
 * An expiry argument in microseconds: -1 when NULL (pgscope.max_global_seconds
 * applies), 0 for never, else at least 1 us ('500 milliseconds' expires, it
 * is not rounded down to "never").  Checked here, at the call, so that no
 * stored expiry can overflow later.
 */
#define EXPIRY_HINT "Give an interval such as '10 minutes', or '0' for no expiry."
#define interval_usecs(fcinfo, n) interval_usecs_hint(fcinfo, n, EXPIRY_HINT)

static int64
interval_usecs_hint(FunctionCallInfo fcinfo, int n, const char *hint)
{
	Interval   *iv;
	int64		usecs,
				part;

	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return -1;
	iv = PG_GETARG_INTERVAL_P(n);
	if (pg_mul_s64_overflow((int64) iv->month, (int64) DAYS_PER_MONTH * USECS_PER_DAY, &usecs) ||
		pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &part) ||
		pg_add_s64_overflow(usecs, part, &usecs) ||
		pg_add_s64_overflow(usecs, iv->time, &usecs) ||
		usecs > PGS_MAX_EXPIRY_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expiry must not be longer than 10 years"),
				 errhint("%s", hint)));
	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expiry must not be negative"),
				 errhint("%s", hint)));
	return usecs;
}

/* ---------- snapshots and derived facts ---------- */

typedef struct SnapInfo
{
	PgsSnapshot *snap;
	bool	   *is_current;		/* pg_proc still holds this version */
	bool	   *is_latest;		/* the version plprofiler-compatible output shows */
} SnapInfo;

static SnapInfo *
take_snapshot(bool shared)
{
	SnapInfo   *si = palloc0(sizeof(SnapInfo));
	PgsSnapshot *snap;
	int			i,
				j;

	if (shared)
	{
		require_shared_read();
		snap = pgs_shared_snapshot();
	}
	else
		snap = pgs_local_snapshot();
	si->snap = snap;
	si->is_current = palloc0(sizeof(bool) * (snap->nfuncs + 1));
	si->is_latest = palloc0(sizeof(bool) * (snap->nfuncs + 1));
	for (i = 0; i < snap->nfuncs; i++)
	{
		PgsFuncKey *k = &snap->funcs[i].key;
		HeapTuple	tup;

		if (!OidIsValid(k->oid))
			continue;
		tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(k->oid));
		if (HeapTupleIsValid(tup))
		{
			si->is_current[i] = HeapTupleHeaderGetRawXmin(tup->t_data) == k->xmin &&
				ItemPointerGetBlockNumberNoCheck(&tup->t_self) == k->blk &&
				ItemPointerGetOffsetNumberNoCheck(&tup->t_self) == k->off;
			ReleaseSysCache(tup);
		}
	}
	/* per oid: the current version, else the newest one seen */
	for (i = 0; i < snap->nfuncs; i++)
	{
		bool		latest = true;

		if (!OidIsValid(snap->funcs[i].key.oid))
			continue;
		for (j = 0; j < snap->nfuncs && latest; j++)
		{
			if (j == i || snap->funcs[j].key.oid != snap->funcs[i].key.oid)
				continue;
			if (si->is_current[j] ||
				(!si->is_current[i] && snap->funcs[j].seq > snap->funcs[i].seq))
				latest = false;
		}
		si->is_latest[i] = latest;
	}
	return si;
}

/* Column i as text s, NULL when there is none; returns the next column. */
static int
put_text(Datum *values, bool *nulls, int i, const char *s)
{
	if (s)
		values[i] = CStringGetTextDatum(s);
	else
		nulls[i] = true;
	return i + 1;
}

/*
 * The counters from column i on, in the order every reader declares them:
 * calls, errors, total, self, max.  Returns the next column.
 */
static int
put_counters(Datum *values, int i, const PgsCounters *c)
{
	values[i++] = Int64GetDatum(c->calls);
	values[i++] = Int64GetDatum(c->errors);
	values[i++] = Int64GetDatum(c->total);
	values[i++] = Int64GetDatum(c->self);
	values[i++] = Int64GetDatum(c->max);
	return i;
}

/* The columns naming f (id, oid, signature) from column i on; returns the next. */
static int
put_function(Datum *values, bool *nulls, int i, const PgsSnapFunc *f)
{
	values[i++] = Int64GetDatum(pgs_func_id(&f->key));
	values[i++] = ObjectIdGetDatum(f->key.oid);
	return put_text(values, nulls, i, f->signature);
}

/*
 * The start of every snapshot reader: its argument "shared" checked, the
 * snapshot taken, the result set materialized.
 */
static SnapInfo *
snapshot_rows(FunctionCallInfo fcinfo)
{
	SnapInfo   *si;

	require_arg(fcinfo, 0, "shared");
	si = take_snapshot(PG_GETARG_BOOL(0));
	pgs_init_materialized_srf(fcinfo);
	return si;
}

/*
 * A row of ncols columns, filled up to column i (asserted equal), added to
 * the materialized result.
 */
static void
emit_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls, int i, int ncols)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	Assert(i == ncols);
	(void) ncols;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Split source into lines (1-based); a trailing empty line is dropped. */
static int
split_lines(const char *src, char ***lines_out)
{
	int			n = 0,
				cap = 16;
	char	  **lines = palloc(sizeof(char *) * cap);
	const char *p = src;

	while (p != NULL && *p != '\0')
	{
		const char *nl = strchr(p, '\n');
		int			len = nl ? (int) (nl - p) : (int) strlen(p);

		if (n + 1 >= cap)
		{
			cap *= 2;
			lines = repalloc(lines, sizeof(char *) * cap);
		}
		lines[++n] = pnstrdup(p, len);
		p = nl ? nl + 1 : NULL;
	}
	*lines_out = lines;
	return n;
}

/* ---------- native readers ---------- */

PG_FUNCTION_INFO_V1(pgscope_functions);
Datum
pgscope_functions(PG_FUNCTION_ARGS)
{
	SnapInfo   *si = snapshot_rows(fcinfo);
	int			fi;

	for (fi = 0; fi < si->snap->nfuncs; fi++)
	{
		PgsSnapFunc *f = &si->snap->funcs[fi];
		Datum		values[PGS_FUNCTIONS_COLS];
		bool		nulls[PGS_FUNCTIONS_COLS] = {0};
		int			i = 0;

		i = put_function(values, nulls, i, f);
		values[i++] = CStringGetTextDatum(pgs_kind_name(f->kind));
		values[i++] = BoolGetDatum(si->is_current[fi]);
		values[i++] = BoolGetDatum(si->is_latest[fi]);
		i = put_counters(values, i, &f->counters);
		i = put_text(values, nulls, i, f->source);
		emit_row(fcinfo, values, nulls, i, PGS_FUNCTIONS_COLS);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgscope_statements);
Datum
pgscope_statements(PG_FUNCTION_ARGS)
{
	SnapInfo   *si = snapshot_rows(fcinfo);
	int			fi,
				j;

	for (fi = 0; fi < si->snap->nfuncs; fi++)
	{
		PgsSnapFunc *f = &si->snap->funcs[fi];

		for (j = 1; j <= f->nstmts; j++)
		{
			PgsSnapStmt *s = &f->stmts[j];
			Datum		values[PGS_STATEMENTS_COLS];
			bool		nulls[PGS_STATEMENTS_COLS] = {0};
			int			i = 0;

			if (s->counters.calls == 0 && s->type < 0)
				continue;
			i = put_function(values, nulls, i, f);
			values[i++] = Int32GetDatum(j);
			values[i++] = Int32GetDatum(s->lineno);
			values[i++] = CStringGetTextDatum(pgs_stmt_typename(s->type));
			i = put_counters(values, i, &s->counters);
			emit_row(fcinfo, values, nulls, i, PGS_STATEMENTS_COLS);
		}
	}
	return (Datum) 0;
}

/*
 * The counters of f's source line (line 0: the function's own) and how many
 * statements start on it.
 */
static PgsCounters
line_counters(const PgsSnapFunc *f, int line, int32 *nstmts)
{
	PgsCounters sum = {0};

	*nstmts = 0;
	if (line == 0)
		return f->counters;
	for (int j = 1; j <= f->nstmts; j++)
	{
		const PgsSnapStmt *s = &f->stmts[j];

		if (s->type < 0 || s->lineno != line)
			continue;
		(*nstmts)++;
		pgs_counters_add(&sum, &s->counters);
	}
	return sum;
}

PG_FUNCTION_INFO_V1(pgscope_lines);
Datum
pgscope_lines(PG_FUNCTION_ARGS)
{
	SnapInfo   *si = snapshot_rows(fcinfo);
	int			fi,
				j,
				line;

	for (fi = 0; fi < si->snap->nfuncs; fi++)
	{
		PgsSnapFunc *f = &si->snap->funcs[fi];
		char	  **lines = NULL;
		int			nlines = f->source ? split_lines(f->source, &lines) : 0;
		int			maxline = nlines;

		for (j = 1; j <= f->nstmts; j++)
			if (f->stmts[j].type >= 0 && f->stmts[j].lineno > maxline)
				maxline = f->stmts[j].lineno;

		for (line = 0; line <= maxline; line++)
		{
			Datum		values[PGS_LINES_COLS];
			bool		nulls[PGS_LINES_COLS] = {0};
			int			i = 0;
			int32		nstmts;
			PgsCounters c = line_counters(f, line, &nstmts);

			i = put_function(values, nulls, i, f);
			values[i++] = BoolGetDatum(si->is_latest[fi]);
			values[i++] = CStringGetTextDatum(pgs_kind_name(f->kind));
			values[i++] = Int32GetDatum(line);
			/* line 0 stands for the whole function: its text is the signature */
			i = put_text(values, nulls, i,
						 line == 0 ? f->signature : line <= nlines ? lines[line] : NULL);
			values[i++] = Int32GetDatum(nstmts);
			i = put_counters(values, i, &c);
			values[i++] = BoolGetDatum(si->is_current[fi]);
			emit_row(fcinfo, values, nulls, i, PGS_LINES_COLS);
		}
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgscope_callgraph);
Datum
pgscope_callgraph(PG_FUNCTION_ARGS)
{
	SnapInfo   *si = snapshot_rows(fcinfo);
	int			ci,
				j;

	for (ci = 0; ci < si->snap->ncg; ci++)
	{
		PgsSnapCg  *c = &si->snap->cg[ci];
		const PgsCounters *cnt = &c->counters;
		Datum	   *names = palloc(sizeof(Datum) * Max(c->depth, 1));
		Datum	   *ids = palloc(sizeof(Datum) * Max(c->depth, 1));
		Datum	   *oids = palloc(sizeof(Datum) * Max(c->depth, 1));
		Datum		values[PGS_CALLGRAPH_COLS];
		bool		nulls[PGS_CALLGRAPH_COLS] = {0};
		int			i = 0;

		for (j = 0; j < c->depth; j++)
		{
			int32		fi = c->frames[j];

			if (fi >= 0)
			{
				PgsSnapFunc *f = &si->snap->funcs[fi];

				names[j] = CStringGetTextDatum(f->signature ? f->signature : "unknown");
				ids[j] = Int64GetDatum(pgs_func_id(&f->key));
				oids[j] = ObjectIdGetDatum(f->key.oid);
			}
			else
			{
				names[j] = CStringGetTextDatum(fi == -1 ? "[deeper frames folded]" : "[unknown]");
				ids[j] = Int64GetDatum(fi);
				oids[j] = ObjectIdGetDatum(InvalidOid);
			}
		}
		values[i++] = PointerGetDatum(construct_array(names, c->depth, TEXTOID, -1, false, TYPALIGN_INT));
		values[i++] = PointerGetDatum(construct_array(ids, c->depth, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[i++] = PointerGetDatum(construct_array(oids, c->depth, OIDOID, 4, true, TYPALIGN_INT));
		values[i++] = Int64GetDatum(cnt->calls);
		values[i++] = Int64GetDatum(cnt->total);
		/* children: what the stack's calls spent in functions they called */
		values[i++] = Int64GetDatum(cnt->total > cnt->self ? cnt->total - cnt->self : 0);
		values[i++] = Int64GetDatum(cnt->self);
		emit_row(fcinfo, values, nulls, i, PGS_CALLGRAPH_COLS);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgscope_status);
Datum
pgscope_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	PgsSharedStatus st;
	Datum		values[PGS_STATUS_COLS];
	bool		nulls[PGS_STATUS_COLS] = {0};
	int			i = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pgs_shared_status(&st);
	values[i++] = BoolGetDatum(pgs_loaded_at_startup);
	values[i++] = BoolGetDatum(pgs_session_enabled);
	values[i++] = BoolGetDatum(st.act.global_on && (st.act.global_expires == 0 || now < st.act.global_expires));
	values[i] = TimestampTzGetDatum(st.act.global_expires);
	nulls[i++] = !st.act.global_on || st.act.global_expires == 0;
	values[i++] = Int32GetDatum((st.act.pid_expires == 0 || now < st.act.pid_expires) ? st.act.pid : 0);
	values[i] = TimestampTzGetDatum(st.act.pid_expires);
	nulls[i++] = st.act.pid == 0 || st.act.pid_expires == 0;
	values[i++] = Int32GetDatum(st.act.collect_interval);
	values[i++] = BoolGetDatum(pgs_plugin_slot_owned());
	values[i++] = BoolGetDatum(pgs_plugin_chained());
	values[i++] = Int64GetDatum(pgs_callbacks_seen());
	values[i++] = BoolGetDatum(st.functions_overflow);
	values[i++] = BoolGetDatum(st.statements_overflow);
	values[i++] = BoolGetDatum(st.callgraph_overflow);
	values[i++] = BoolGetDatum(st.source_overflow);
	values[i++] = Int32GetDatum(st.nfuncs);
	values[i++] = Int32GetDatum(st.nstmts);
	values[i++] = Int32GetDatum(st.ncg);
	values[i++] = BoolGetDatum(pgs_shared_available());
	Assert(i == PGS_STATUS_COLS);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------- switches ---------- */

static void
warn_if_slot_lost(void)
{
	if (!pgs_plugin_slot_owned())
		ereport(WARNING,
				(errmsg("another PL/pgSQL plugin was loaded after pgscope and now holds the plugin slot"),
				 errdetail("pgscope sees PL/pgSQL only if that plugin forwards its callbacks."),
				 errhint("Load pgscope last, e.g. list it after plpgsql_check in shared_preload_libraries, and check pgscope_status().callbacks_seen.")));
}

PG_FUNCTION_INFO_V1(pgscope_enable);
Datum
pgscope_enable(PG_FUNCTION_ARGS)
{
	bool		on;

	require_arg(fcinfo, 0, "enabled");
	on = PG_GETARG_BOOL(0);
	(void) set_config_option("pgscope.enabled", on ? "on" : "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	if (on)
		warn_if_slot_lost();
	PG_RETURN_BOOL(on);
}

PG_FUNCTION_INFO_V1(pgscope_enable_global);
Datum
pgscope_enable_global(PG_FUNCTION_ARGS)
{
	bool		on;
	int64		usecs;

	require_arg(fcinfo, 0, "enabled");
	on = PG_GETARG_BOOL(0);
	require_admin("switch instance-wide profiling");
	require_shared();
	usecs = interval_usecs(fcinfo, 1);
	pgs_shared_set_global(on, usecs);
	pgs_refresh_active();
	if (on)
		warn_if_slot_lost();
	PG_RETURN_BOOL(on);
}

#define LEASE_HINT "A tracer renews a lease of a few seconds every second, so that a killed one's lapses soon."

PG_FUNCTION_INFO_V1(pgscope_instrument);
Datum
pgscope_instrument(PG_FUNCTION_ARGS)
{
	int32		owner;
	const char *what;
	int			options;
	int64		usecs = 0;
	Oid			db = InvalidOid;

	require_arg(fcinfo, 0, "owner");
	require_arg(fcinfo, 1, "options");
	owner = PG_GETARG_INT32(0);
	what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	require_admin("instrument other sessions' statements");
	require_shared();
	if (owner <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("owner must be positive"),
				 errhint("Give the tracer's process id: it names the lease to renew or end.")));
	if (strcmp(what, "off") == 0)
		options = 0;
	else if (strcmp(what, "rows") == 0)
		options = INSTRUMENT_ROWS;
	else if (strcmp(what, "timing") == 0)
		options = INSTRUMENT_ROWS | INSTRUMENT_TIMER;
	else if (strcmp(what, "frames") == 0)
		options = PGS_LEASE_FRAMES;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown instrument options \"%s\"", what),
				 errhint("Give 'rows', 'timing', 'frames' or 'off'.")));
	if (options != 0)
	{
		usecs = interval_usecs_hint(fcinfo, 2, LEASE_HINT);
		if (usecs <= 0 || usecs > 3600 * USECS_PER_SEC)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the lease must be longer than 0 and at most an hour"),
					 errhint(LEASE_HINT)));
		if (!PG_ARGISNULL(3))
		{
			db = get_database_oid(NameStr(*PG_GETARG_NAME(3)), true);
			if (db == InvalidOid)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_DATABASE),
						 errmsg("database \"%s\" does not exist", NameStr(*PG_GETARG_NAME(3))),
						 errhint("Give a database of this server, or NULL for all of them.")));
		}
	}
	if (!pgs_shared_set_lease(owner, options, db, usecs))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("%d tracers already instrument this server's statements", PGS_MAX_LEASES),
				 errhint("Stop one of them, or wait for a killed one's lease to lapse.")));
	PG_RETURN_BOOL(options != 0);
}

PG_FUNCTION_INFO_V1(pgscope_enable_pid);
Datum
pgscope_enable_pid(PG_FUNCTION_ARGS)
{
	int32		pid;
	int64		usecs;

	require_arg(fcinfo, 0, "pid");
	pid = PG_GETARG_INT32(0);
	require_admin("switch profiling of another backend");
	require_shared();
	if (pid < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pid must not be negative"),
				 errhint("Give a backend's pid from pg_stat_activity, or 0 to switch per-pid profiling off.")));
	usecs = interval_usecs(fcinfo, 1);
	pgs_shared_set_pid(pid, usecs);
	pgs_refresh_active();
	if (pid != 0)
		warn_if_slot_lost();
	PG_RETURN_INT32(pid);
}

PG_FUNCTION_INFO_V1(pgscope_set_collect_interval);
Datum
pgscope_set_collect_interval(PG_FUNCTION_ARGS)
{
	int32		secs;

	require_arg(fcinfo, 0, "seconds");
	secs = PG_GETARG_INT32(0);
	require_admin("change the collect interval");
	require_shared();
	if (secs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("collect interval must not be negative"),
				 errhint("Give seconds between merges of long-running transactions, or 0 to merge only at transaction end.")));
	pgs_shared_set_interval(secs);
	PG_RETURN_INT32(secs);
}

PG_FUNCTION_INFO_V1(pgscope_get_collect_interval);
Datum
pgscope_get_collect_interval(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(pgs_shared_collect_interval());
}

PG_FUNCTION_INFO_V1(pgscope_reset);
Datum
pgscope_reset(PG_FUNCTION_ARGS)
{
	require_arg(fcinfo, 0, "shared");
	if (PG_GETARG_BOOL(0))
	{
		require_admin("reset instance-wide profile data");
		require_shared();
		pgs_shared_reset();
	}
	else
		pgs_local_reset();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pgscope_collect);
Datum
pgscope_collect(PG_FUNCTION_ARGS)
{
	require_shared();
	/* the shared tables are everyone's: a session only fills them when the instance-wide switch covers it */
	if (!is_admin() && !pgs_shared_wants_me())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to merge this session's profile into the instance-wide tables"),
				 errhint("Sessions covered by pgscope_enable_global() or pgscope_enable_pid() are merged by themselves; "
						 "superusers and members of pgscope_admin may merge any session.  This session's own profile "
						 "is in pgscope_functions() and the other functions called with shared => false.")));
	pgs_merge_local(true);
	PG_RETURN_INT32(0);
}

/* ---------- source and stack names by oid (plprofiler compatibility) ---------- */

static Oid *
oid_array_arg(FunctionCallInfo fcinfo, int n, int *count)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	Oid		   *oids;
	int			i;

	require_arg(fcinfo, n, "func_oids");
	arr = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("expected a one-dimensional array of oids"),
				 errhint("Pass e.g. pl_profiler_func_oids_local().")));
	if (ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) > PGS_MAX_ARRAY_ELEMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many oids: %d (at most %d)",
						ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)), PGS_MAX_ARRAY_ELEMS),
				 errhint("Ask for fewer functions at a time.")));
	deconstruct_array(arr, OIDOID, 4, true, TYPALIGN_INT, &elems, &nulls, count);
	oids = palloc(sizeof(Oid) * (*count + 1));
	for (i = 0; i < *count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the oid array must not contain NULL"),
					 errhint("Remove the NULL elements.")));
		oids[i] = DatumGetObjectId(elems[i]);
	}
	return oids;
}

/* A profiled version of oid (latest first) in either store, for dropped functions. */
static PgsSnapFunc *
find_profiled(SnapInfo **stores, int nstores, Oid oid)
{
	for (int s = 0; s < nstores; s++)
	{
		PgsSnapFunc *best = NULL;

		if (stores[s] == NULL)
			continue;
		for (int i = 0; i < stores[s]->snap->nfuncs; i++)
		{
			PgsSnapFunc *f = &stores[s]->snap->funcs[i];

			if (f->key.oid == oid && (best == NULL || f->seq > best->seq))
				best = f;
		}
		if (best)
			return best;
	}
	return NULL;
}

static int
profile_stores(SnapInfo **stores)
{
	int			n = 0;

	stores[n++] = take_snapshot(false);
	if (pgs_shared_available() &&
		(is_admin() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS)))
		stores[n++] = take_snapshot(true);
	return n;
}

static void
unknown_oid(Oid oid)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FUNCTION),
			 errmsg("function with OID %u does not exist and has no profile", oid),
			 errhint("Pass oids from pl_profiler_func_oids_local() or pl_profiler_func_oids_shared().")));
}

PG_FUNCTION_INFO_V1(pgscope_funcs_source);
Datum
pgscope_funcs_source(PG_FUNCTION_ARGS)
{
	int			count;
	Oid		   *oids = oid_array_arg(fcinfo, 0, &count);
	SnapInfo   *stores[2] = {NULL, NULL};
	int			nstores = 0;

	pgs_init_materialized_srf(fcinfo);
	for (int oi = 0; oi < count; oi++)
	{
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(oids[oi]));
		char	   *src = NULL;
		char	   *sig = NULL;
		char	  **lines;
		int			nlines;

		if (HeapTupleIsValid(tup))
		{
			bool		isnull;
			Datum		d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

			src = isnull ? pstrdup("") : TextDatumGetCString(d);
			ReleaseSysCache(tup);
			sig = format_procedure_qualified(oids[oi]);
		}
		else
		{
			PgsSnapFunc *f;

			if (nstores == 0)
				nstores = profile_stores(stores);
			f = find_profiled(stores, nstores, oids[oi]);
			if (f == NULL)
				unknown_oid(oids[oi]);
			src = f->source ? pstrdup(f->source) : pstrdup("");
			sig = pstrdup(f->signature ? f->signature : "unknown");
		}
		nlines = split_lines(src, &lines);
		for (int l = 0; l <= nlines; l++)
		{
			Datum		values[PGS_FUNCS_SOURCE_COLS];
			bool		nulls[PGS_FUNCS_SOURCE_COLS] = {0};
			int			i = 0;

			values[i++] = ObjectIdGetDatum(oids[oi]);
			values[i++] = Int64GetDatum(l);
			values[i++] = CStringGetTextDatum(l == 0 ? psprintf("-- Line 0 %s", sig) : lines[l]);
			emit_row(fcinfo, values, nulls, i, PGS_FUNCS_SOURCE_COLS);
		}
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgscope_get_stack);
Datum
pgscope_get_stack(PG_FUNCTION_ARGS)
{
	int			count;
	Oid		   *oids;
	Datum	   *out;
	SnapInfo   *stores[2] = {NULL, NULL};
	int			nstores = 0;

	require_arg(fcinfo, 0, "stack");
	oids = oid_array_arg(fcinfo, 0, &count);
	out = palloc(sizeof(Datum) * (count + 1));
	for (int i = 0; i < count; i++)
	{
		char	   *name;
		HeapTuple	tup;

		if (!OidIsValid(oids[i]))
		{
			out[i] = CStringGetTextDatum("inline_code_block() oid=0");
			continue;
		}
		tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(oids[i]));
		if (HeapTupleIsValid(tup))
		{
			Form_pg_proc p = (Form_pg_proc) GETSTRUCT(tup);

			name = psprintf("%s.%s() oid=%u", get_namespace_name(p->pronamespace),
							NameStr(p->proname), oids[i]);
			ReleaseSysCache(tup);
		}
		else
		{
			PgsSnapFunc *f;
			char	   *sig;
			char	   *paren;

			if (nstores == 0)
				nstores = profile_stores(stores);
			f = find_profiled(stores, nstores, oids[i]);
			if (f == NULL || f->signature == NULL)
				unknown_oid(oids[i]);
			sig = pstrdup(f->signature);
			if ((paren = strchr(sig, '(')) != NULL)
				*paren = '\0';
			name = psprintf("%s() oid=%u", sig, oids[i]);
		}
		out[i] = CStringGetTextDatum(name);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(out, count, TEXTOID, -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(pgscope_get_enabled_global);
Datum
pgscope_get_enabled_global(PG_FUNCTION_ARGS)
{
	PgsSharedStatus st;

	pgs_shared_status(&st);
	PG_RETURN_BOOL(st.act.global_on &&
				   (st.act.global_expires == 0 || GetCurrentTimestamp() < st.act.global_expires));
}

PG_FUNCTION_INFO_V1(pgscope_get_enabled_pid);
Datum
pgscope_get_enabled_pid(PG_FUNCTION_ARGS)
{
	PgsSharedStatus st;

	pgs_shared_status(&st);
	PG_RETURN_INT32((st.act.pid_expires == 0 || GetCurrentTimestamp() < st.act.pid_expires) ? st.act.pid : 0);
}
