/*
 * plugin.c
 *		The PL/pgSQL executor hooks: the frame stack that times function
 *		activations and statements into the backend-local profile (local.c),
 *		error unwinding, chaining, and when data goes to the shared tables.
 *
 * pgscope takes the "PLpgSQL_plugin" rendezvous slot and chains to whatever
 * plugin held it before (plpgsql_check, pldebugger): every callback is
 * forwarded, the helper pointers PL/pgSQL fills into our struct are copied
 * into the previous plugin's struct, and the previous plugin gets its own
 * plugin_info, swapped in around each forwarded call.
 *
 * Timing uses one stack of frames per backend; a frame is a function
 * activation or a statement.  Each frame records its start tick and the
 * ticks spent in its direct children, so self time is exact and nothing is
 * rounded per statement.
 *
 * A clock read is skipped where the previous callback's tick is as good:
 * when PL/pgSQL runs nothing but its own list and loop-counter steps in
 * between (no expression, no fetch, no variable initialiser, no
 * subtransaction, no user code).  That is (1) a statement started right
 * after the previous one of its list ended, or as the first of an integer
 * FOR's or a plain LOOP's body on the next iteration; (2) the first
 * statement of a plain LOOP, or of a block without variables to initialise
 * and without EXCEPTION, right after its parent started; (3) the end of a
 * block without EXCEPTION, an IF, a CASE, a LOOP or an integer FOR right
 * after a statement of its own ended.  WHILE, FOR over a query and FOREACH
 * evaluate or fetch between iterations and are never among them.  The gap
 * (a few ns, less than a clock read, about 7 ns for rdtsc here) goes to the
 * neighbouring statement instead of the enclosing one; the statement loop
 * then pays one read per statement instead of two.  Any other callback in
 * between (a function call, an error, a chained plugin) forces a read.
 * stmttree.c marks which statements qualify.
 *
 * estate->plugin_info holds the index (+1) of the activation's function
 * frame, never a pointer, because the stack array grows.
 *
 * Frames of code that an error unwound never see stmt_end/func_end.  They are
 * closed, with their time up to the abort and an error count, from the
 * subtransaction callback (everything opened since the subtransaction began;
 * this is how PL/pgSQL exception blocks unwind) and from the transaction
 * callback (every frame whose activation is no longer on error_context_stack,
 * which PostgresMain clears before aborting; a procedure's own ROLLBACK keeps
 * its live frames).  No frame is ever left stale.
 *
 * Cost when profiling is off: the statement hooks are removed from our
 * plugin struct (PL/pgSQL tests each pointer before calling it), so only
 * func_setup/func_end run, once per call.  They stay installed while any
 * frame is open, so disabling mid-function still closes what was opened.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "executor/executor.h"
#include "tcop/utility.h"
#include "utils/memutils.h"

#include "compat.h"
#include "pgscope.h"

typedef struct PgsFrame
{
	uint64		start;
	uint64		child;			/* ticks of direct child frames */
	uint64		callee;			/* function frames: ticks of called functions */
	PLpgSQL_execstate *estate;
	PLpgSQL_stmt *stmt;			/* NULL for a function frame */
	PgsStmt    *st;				/* statement frames */
	PgsFunc    *fn;				/* function frames */
	PgsCgNode  *cg;				/* function frames */
	void	   *prev_info;		/* function frames: the chained plugin's
								 * plugin_info */
	int32		caller;			/* function frames: nearest profiled function
								 * frame below, or -1 */
	bool		outer;			/* counts toward inclusive totals */
	bool		cg_outer;		/* not folded into the caller's marker node */
	bool		profiled;		/* false: carries prev_info only */
} PgsFrame;

typedef struct PgsSubxactMark
{
	SubTransactionId subid;
	int32		depth;
} PgsSubxactMark;

bool		pgs_session_enabled = false;
int			pgs_max_stack_depth = 100;

static bool pgs_active = false;
static bool pgs_collect_shared = false; /* data was taken for the shared tables */
/*
 * Only what was recorded while instance-wide or per-pid profiling covered
 * this backend goes to the shared tables, and only what was recorded since
 * their last reset: when collection starts after uncovered profiling (a
 * session that had pgscope.enabled on), or a reset happened since, what is
 * unmerged so far is marked merged instead (shared_rebase()).
 */
static bool uncovered_data = false;
static uint32 seen_generation = 0;

static PLpgSQL_plugin **plugin_ptr = NULL;
static PLpgSQL_plugin *prev_plugin = NULL;
static bool slot_parked = false;	/* we emptied the slot while idle */
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static uint64 callbacks_seen = 0;

static PgsFrame *frames = NULL;
static int32 depth = 0;
static int32 frames_cap = 0;
static int32 cur_fn = -1;		/* innermost profiled function frame */

static PgsSubxactMark *subxact_marks = NULL;
static int32 nsubxact_marks = 0;
static int32 subxact_marks_cap = 0;

static const char *pending_do_source = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static uint64 last_merge_ticks = 0;

/*
 * The last statement callback, while nothing else has happened since: the
 * tick a neighbouring statement may take instead of reading the clock (see
 * the header).  A static struct: its fields cost what separate statics
 * would on the statement path.
 */
typedef struct PgsLastCallback
{
	PLpgSQL_execstate *estate;	/* its activation; NULL: none usable */
	bool		was_end;		/* stmt_end, else stmt_beg */
	const PgsStmt *st;			/* its statement */
	uint64		ticks;			/* the tick it took */
} PgsLastCallback;

static PgsLastCallback last_cb = {NULL};

static void pgs_func_setup(PLpgSQL_execstate *estate, PLpgSQL_function *func);
static void pgs_func_beg(PLpgSQL_execstate *estate, PLpgSQL_function *func);
static void pgs_func_end(PLpgSQL_execstate *estate, PLpgSQL_function *func);
static void pgs_stmt_beg(PLpgSQL_execstate *estate, PLpgSQL_stmt *stmt);
static void pgs_stmt_end(PLpgSQL_execstate *estate, PLpgSQL_stmt *stmt);

static PLpgSQL_plugin pgs_plugin = {
	pgs_func_setup, NULL, pgs_func_end, NULL, NULL
};

/* ---------- hook installation ---------- */

/*
 * Install the per-statement hooks only when they have work to do; the
 * statement loop then pays nothing while profiling is off.
 */
static inline void
sync_hooks(void)
{
	bool		timing = pgs_active || depth > 0 || prev_plugin != NULL,
				busy = timing || pgs_publish;

	/* the frame stack for samplers (pgs_publish) needs calls and returns alone */
	pgs_plugin.stmt_beg = timing ? pgs_stmt_beg : NULL;
	pgs_plugin.stmt_end = timing ? pgs_stmt_end : NULL;
	pgs_plugin.func_end = busy ? pgs_func_end : NULL;
	pgs_plugin.func_beg = prev_plugin != NULL ? pgs_func_beg : NULL;

	/*
	 * Idle and alone in the slot: empty it, so PL/pgSQL skips even its
	 * per-call plugin bookkeeping.  The ExecutorStart hook below notices
	 * instance-wide or per-pid activation and takes the slot back; nothing is
	 * taken back if another module has filled the slot meanwhile.
	 */
	if (plugin_ptr == NULL)
		return;
	if (!busy && !slot_parked && *plugin_ptr == &pgs_plugin)
	{
		*plugin_ptr = NULL;
		slot_parked = true;
	}
	else if (busy && slot_parked && *plugin_ptr == NULL)
	{
		*plugin_ptr = &pgs_plugin;
		slot_parked = false;
	}
}

static inline bool
compute_active(void)
{
	return pgs_session_enabled || (pgs_shared_may_want_me() && pgs_shared_wants_me());
}

void
pgs_refresh_active(void)
{
	pgs_active = compute_active();
	sync_hooks();
}

bool
pgs_plugin_slot_owned(void)
{
	return plugin_ptr != NULL &&
		(*plugin_ptr == &pgs_plugin || (slot_parked && *plugin_ptr == NULL));
}

bool
pgs_plugin_chained(void)
{
	return prev_plugin != NULL;
}

uint64
pgs_callbacks_seen(void)
{
	return callbacks_seen;
}

/* ---------- frame stack ---------- */

static inline PgsFrame *
push_frame(void)
{
	if (unlikely(depth >= frames_cap))
	{
		int32		newcap = frames_cap ? frames_cap * 2 : 256;

		if (frames == NULL)
			frames = MemoryContextAlloc(TopMemoryContext, sizeof(PgsFrame) * newcap);
		else
			frames = repalloc(frames, sizeof(PgsFrame) * newcap);
		frames_cap = newcap;
	}
	return &frames[depth++];
}

static inline PgsFrame *
function_frame_of_idx(uintptr_t idx, PLpgSQL_execstate *estate)
{
	if (idx == 0 || idx > (uintptr_t) depth || frames[idx - 1].estate != estate ||
		frames[idx - 1].stmt != NULL)
		return NULL;
	return &frames[idx - 1];
}

static inline PgsFrame *
function_frame_of(PLpgSQL_execstate *estate)
{
	return function_frame_of_idx((uintptr_t) estate->plugin_info, estate);
}

/* what is unmerged now is not for the shared tables (see uncovered_data) */
static pg_noinline void
shared_rebase(void)
{
	pgs_local_mark_merged();
	uncovered_data = false;
	seen_generation = pgs_activation->generation;
}

/*
 * Turn a function frame into a profiled one, starting its clock now.  The
 * frame is the top of the stack, so the innermost profiled function below it
 * is its caller.
 */
static pg_noinline void
start_function_profile(PgsFrame *f, PLpgSQL_function *func)
{
	PgsCgNode  *parent;

	f->fn = pgs_local_function(func, pending_do_source);
	f->caller = cur_fn;
	cur_fn = (int32) (f - frames);
	parent = f->caller >= 0 ? frames[f->caller].cg : NULL;
	f->cg = pgs_local_cg_child(parent, f->fn);
	f->cg_outer = !(f->cg->fn == NULL && f->cg == parent);
	f->outer = (f->fn->active++ == 0);
	f->profiled = true;
	f->child = 0;
	f->callee = 0;
	if (!pgs_session_enabled || pgs_shared_may_want_me())
	{
		if (unlikely(uncovered_data || seen_generation != pgs_activation->generation))
			shared_rebase();
		pgs_collect_shared = true;
	}
	else
		uncovered_data = true;
	f->start = pgs_ticks();
}

static inline void
close_stmt_frame(PgsFrame *f, uint64 now, bool error)
{
	uint64		el = now - f->start;
	PgsStmt    *s = f->st;
	PgsCounters *c = &s->counters;

	if (unlikely(c->calls++ == 0))
	{
		/* first run since the function was seen or reset: it is "seen" now */
		s->lineno = f->stmt->lineno;
		s->type = f->stmt->cmd_type;
	}
	if (error)
		c->errors++;
	s->active--;
	if (f->outer)
		c->total += el;
	c->self += el - f->child;
	if (el > c->max)
		c->max = el;
	if (f > frames)
		f[-1].child += el;
}

static void
close_function_frame(PgsFrame *f, uint64 now, bool error)
{
	uint64		el = now - f->start;
	PgsFunc    *fn = f->fn;
	PgsCounters *fc = &fn->counters;
	PgsCounters *cc = &f->cg->counters;

	fc->calls++;
	if (error)
		fc->errors++;
	if (f->outer)
		fc->total += el;
	fc->self += el - f->callee;
	if (el > fc->max)
		fc->max = el;
	fn->active--;

	/* a stack's errors and max are not kept */
	cc->calls++;
	if (f->cg_outer)
		cc->total += el;
	cc->self += el - f->callee;
	cur_fn = f->caller;

	if (f->caller >= 0)
		frames[f->caller].callee += el;
	if (f > frames)
		f[-1].child += el;
}

/* Close every frame above target at now, as raised by an error or not.  Never allocates. */
static void
close_frames_above(int32 target, uint64 now, bool error)
{
	while (depth > target)
	{
		PgsFrame   *f = &frames[depth - 1];

		if (f->stmt != NULL)
			close_stmt_frame(f, now, error);
		else if (f->profiled)
			close_function_frame(f, now, error);
		depth--;
	}
}

/* Close every frame above target as raised by an error. */
static void
unwind_to(int32 target)
{
	last_cb.estate = NULL;
	if (depth <= target)
		return;
	close_frames_above(target, pgs_ticks(), true);
	sync_hooks();
}

/* ---------- forwarding to the chained plugin ---------- */

/*
 * Forwarding lives out of line: a hot hook that took a local's address would
 * get a stack-protector canary on every statement.  The chained plugin sees
 * its own plugin_info during the call, and whatever it stores there is kept
 * in our frame for its next callback.
 */
#define DEFINE_FORWARD(fname, argtype) \
static pg_noinline void \
fname(void (*cb) (PLpgSQL_execstate *, argtype *), PLpgSQL_execstate *estate, argtype *arg) \
{ \
	PgsFrame   *f = function_frame_of(estate); \
	void	   *ours = estate->plugin_info; \
\
	estate->plugin_info = f ? f->prev_info : NULL; \
	cb(estate, arg); \
	f = function_frame_of_idx((uintptr_t) ours, estate); \
	if (f) \
		f->prev_info = estate->plugin_info; \
	estate->plugin_info = ours; \
}

DEFINE_FORWARD(forward_stmt, PLpgSQL_stmt)
DEFINE_FORWARD(forward_func, PLpgSQL_function)

#define FORWARD_STMT(cb, estate, stmt) \
	do { \
		if (unlikely(prev_plugin != NULL) && prev_plugin->cb) \
			forward_stmt(prev_plugin->cb, (estate), (stmt)); \
	} while (0)

#define FORWARD_FUNC(cb, estate, func) \
	do { \
		if (prev_plugin != NULL && prev_plugin->cb) \
			forward_func(prev_plugin->cb, (estate), (func)); \
	} while (0)

/* ---------- the five callbacks ---------- */

static void
pgs_func_setup(PLpgSQL_execstate *estate, PLpgSQL_function *func)
{
	bool		active = compute_active();

	last_cb.estate = NULL;
	callbacks_seen++;
	if (unlikely(pgs_publish))
		pgs_publish_call(estate, func, pgs_plugin.error_callback);
	if (unlikely(active != pgs_active))
	{
		pgs_active = active;
		sync_hooks();
	}
	estate->plugin_info = NULL;
	if (active || prev_plugin)
	{
		PgsFrame   *f = push_frame();

		memset(f, 0, sizeof(PgsFrame));
		f->estate = estate;
		f->caller = -1;
		estate->plugin_info = (void *) (uintptr_t) depth;
		sync_hooks();
		if (pgs_active)
		{
			PG_TRY();
			{
				start_function_profile(f, func);
			}
			PG_CATCH();
			{
				depth--;
				estate->plugin_info = NULL;
				sync_hooks();
				PG_RE_THROW();
			}
			PG_END_TRY();
		}
	}

	if (prev_plugin)
	{
		/* PL/pgSQL filled these into our struct just before calling us */
		prev_plugin->error_callback = pgs_plugin.error_callback;
		prev_plugin->assign_expr = pgs_plugin.assign_expr;
		prev_plugin->assign_value = pgs_plugin.assign_value;
		prev_plugin->eval_datum = pgs_plugin.eval_datum;
		prev_plugin->cast_value = pgs_plugin.cast_value;
		FORWARD_FUNC(func_setup, estate, func);
	}
}

static void
pgs_func_beg(PLpgSQL_execstate *estate, PLpgSQL_function *func)
{
	FORWARD_FUNC(func_beg, estate, func);
}

static void
pgs_func_end(PLpgSQL_execstate *estate, PLpgSQL_function *func)
{
	PgsFrame   *f;
	uint64		now;

	FORWARD_FUNC(func_end, estate, func);

	if (unlikely(pgs_publish))
		pgs_publish_return(estate);
	last_cb.estate = NULL;
	f = function_frame_of(estate);
	if (f == NULL)
		return;
	now = pgs_ticks();
	/* statements of this activation still open (should not happen): close them */
	close_frames_above((int32) (f - frames) + 1, now, false);
	if (f->profiled)
		close_function_frame(f, now, false);
	depth--;
	estate->plugin_info = NULL;
	if (depth == 0)
	{
		sync_hooks();
		if (pgs_collect_shared)
		{
			int			interval = pgs_shared_collect_interval();

			if (interval > 0 &&
				pgs_ticks_to_ns(now - last_merge_ticks) >= (uint64) interval * 1000000000)
				pgs_merge_local(false);
		}
	}
}

static void
pgs_stmt_beg(PLpgSQL_execstate *estate, PLpgSQL_stmt *stmt)
{
	if (likely(pgs_active))
	{
		PgsFrame   *ff = function_frame_of(estate);
		PgsFrame   *f;

		if (unlikely(ff == NULL || !ff->profiled))
		{
			/* profiling was switched on while this activation ran */
			last_cb.estate = NULL;
			if (ff == NULL)
			{
				ff = push_frame();
				memset(ff, 0, sizeof(PgsFrame));
				ff->estate = estate;
				ff->caller = -1;
				estate->plugin_info = (void *) (uintptr_t) depth;
			}
			start_function_profile(ff, estate->func);
		}
		if (likely(stmt->stmtid > 0 && stmt->stmtid <= (unsigned) ff->fn->nstmts))
		{
			PgsStmt    *stmts = ff->fn->stmts,
					   *st = &stmts[stmt->stmtid];

			f = push_frame();	/* may move the array: ff is stale now */
			f->estate = estate;
			f->stmt = stmt;
			f->st = st;
			/* inclusive time: not again inside an execution of the same statement (recursion) */
			f->outer = (st->active++ == 0);
			f->child = 0;
			if (last_cb.estate == estate &&
				(last_cb.was_end ?
				 st->list == last_cb.st->list && (st->pos > last_cb.st->pos || (st->seqflags & PGS_SEQ_WRAP)) :
				 (st->seqflags & PGS_SEQ_HEAD) && &stmts[st->parent] == last_cb.st))
				f->start = last_cb.ticks;
			else
				f->start = pgs_ticks();
			/* a chained plugin runs between us and the next callback */
			if (likely(prev_plugin == NULL))
			{
				last_cb.estate = estate;
				last_cb.was_end = false;
				last_cb.st = st;
				last_cb.ticks = f->start;
				return;
			}
		}
	}
	last_cb.estate = NULL;
	FORWARD_STMT(stmt_beg, estate, stmt);
}

static void
pgs_stmt_end(PLpgSQL_execstate *estate, PLpgSQL_stmt *stmt)
{
	PLpgSQL_execstate *prev = last_cb.estate;

	last_cb.estate = NULL;
	if (likely(depth > 0))
	{
		PgsFrame   *f = &frames[depth - 1];

		if (likely(f->stmt == stmt && f->estate == estate))
		{
			const PgsStmt *st = f->st;
			uint64		now;

			if (prev == estate && last_cb.was_end &&
				(st->seqflags & PGS_SEQ_TAIL) && last_cb.st->parent == stmt->stmtid)
				now = last_cb.ticks;
			else
				now = pgs_ticks();
			close_stmt_frame(f, now, false);
			depth--;
			/* a chained plugin runs between us and the next callback */
			if (likely(prev_plugin == NULL))
			{
				last_cb.estate = estate;
				last_cb.was_end = true;
				last_cb.st = st;
				last_cb.ticks = now;
				return;
			}
		}
	}
	FORWARD_STMT(stmt_end, estate, stmt);
}

/* ---------- transaction and subtransaction ends ---------- */

static bool
estate_is_live(PLpgSQL_execstate *estate)
{
	ErrorContextCallback *e;

	for (e = error_context_stack; e != NULL; e = e->previous)
		if (e->callback == pgs_plugin.error_callback && e->arg == (void *) estate)
			return true;
	return false;
}

/*
 * A parallel worker inherits pgscope.enabled, but what it records dies with
 * it: a session's profile lives in the leader's memory.  Unless the
 * instance-wide tables take the worker's data, it says how many calls the
 * session profile misses, in a NOTICE that reaches the leader's client
 * (pgscope plprof run puts the sum in its report).
 */
static void
report_worker_calls(void)
{
	uint64		calls;

	if (!IsParallelWorker() || !pgs_session_enabled || pgs_collect_shared)
		return;
	calls = pgs_local_calls();
	if (calls > 0)
		ereport(NOTICE,
				(errmsg("pgscope: " UINT64_FORMAT " PL/pgSQL calls ran in a parallel worker and are not in this session's profile", calls),
				 errhint("Instance-wide profiling (pgscope_enable_global) collects parallel workers too; or set max_parallel_workers_per_gather = 0 while profiling a session.")));
}

static void
pgs_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			{
				int32		target = depth;

				last_cb.estate = NULL;
				/*
				 * PostgresMain clears error_context_stack before aborting, so
				 * after an error nothing is live; a procedure's ROLLBACK keeps
				 * its own activations.
				 */
				while (target > 0 && !estate_is_live(frames[target - 1].estate))
					target--;
				unwind_to(target);
				/* the published stack likewise (a procedure's ROLLBACK keeps its frames) */
				target = (int32) Min(pgscope_plstack.depth, PGS_PLSTACK_MAX);
				while (target > 0 &&
					   !estate_is_live((PLpgSQL_execstate *) (uintptr_t) pgscope_plstack.frames[target - 1].estate))
					target--;
				pgscope_plstack.depth = (uint32) target;
				pgscope_plstack.truncated = 0;
			}
			/* FALLTHROUGH */
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			report_worker_calls();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			nsubxact_marks = 0;
			if (pgs_collect_shared)
				pgs_merge_local(false);
			break;
		default:
			break;
	}
}

static void
pgs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int32		i;

	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (nsubxact_marks >= subxact_marks_cap)
			{
				int32		newcap = subxact_marks_cap ? subxact_marks_cap * 2 : 32;
				void	   *p;

				p = MemoryContextAllocExtended(TopMemoryContext,
											   sizeof(PgsSubxactMark) * newcap,
											   MCXT_ALLOC_NO_OOM);
				if (p == NULL)
					return;		/* out of memory: no mark, its abort is left to an enclosing one */
				if (subxact_marks)
				{
					memcpy(p, subxact_marks, sizeof(PgsSubxactMark) * nsubxact_marks);
					pfree(subxact_marks);
				}
				subxact_marks = p;
				subxact_marks_cap = newcap;
			}
			subxact_marks[nsubxact_marks].subid = mySubid;
			subxact_marks[nsubxact_marks].depth = depth;
			nsubxact_marks++;
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			last_cb.estate = NULL;
			for (i = nsubxact_marks - 1; i >= 0; i--)
			{
				if (subxact_marks[i].subid == mySubid)
				{
					unwind_to(subxact_marks[i].depth);
					nsubxact_marks = i;
					break;
				}
			}
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			for (i = nsubxact_marks - 1; i >= 0; i--)
			{
				if (subxact_marks[i].subid == mySubid)
				{
					nsubxact_marks = i;
					break;
				}
			}
			break;
		default:
			break;
	}
}

/* ---------- noticing activation while the slot is parked; tracer leases ---------- */

/*
 * The tracers' leases: the instrument options they ask for (0 when none is
 * live), and the frame stack published or not as a 'frames' lease says.
 */
static int
lease_options(void)
{
	int			options;

	if (likely(pgs_activation == NULL || (pgs_activation->instrument_any == 0 && !pgs_publish)) ||
		IsParallelWorker())
		return 0;
	options = pgs_activation->instrument_any ? pgs_shared_instrument_options(MyDatabaseId) : 0;
	if (((options & PGS_LEASE_FRAMES) != 0) != pgs_publish)
	{
		pgs_publish = (options & PGS_LEASE_FRAMES) != 0;
		pgs_publish_reset();
		sync_hooks();
	}
	return options & ~PGS_LEASE_FRAMES;
}

static void
pgs_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	int			options;

	if (slot_parked && pgs_shared_may_want_me())
		pgs_refresh_active();
	/* a tracer's lease (pgscope plans --analyze): instrument as EXPLAIN ANALYZE would */
	options = lease_options();
	if (unlikely(options != 0) && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		queryDesc->instrument_options |= options;
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* ---------- DO blocks: their source comes from the DoStmt ---------- */

static void
pgs_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	const char *saved = pending_do_source;

	/* CALL and DO start PL/pgSQL without passing ExecutorStart */
	if (slot_parked && pgs_shared_may_want_me())
		pgs_refresh_active();
	(void) lease_options();
	if (IsA(pstmt->utilityStmt, DoStmt))
	{
		ListCell   *lc;

		foreach(lc, ((DoStmt *) pstmt->utilityStmt)->args)
		{
			DefElem    *d = (DefElem *) lfirst(lc);

			if (strcmp(d->defname, "as") == 0)
				pending_do_source = strVal(d->arg);
		}
	}
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		pending_do_source = saved;
	}
	PG_END_TRY();
}

/* ---------- reset, merge ---------- */

void
pgs_local_reset(void)
{
	last_cb.estate = NULL;		/* last_cb.st may point into what is freed */
	/* running activations point into the entries: zero them in place */
	pgs_local_clear(depth > 0);
}

void
pgs_merge_local(bool force)
{
	if (!force && !pgs_collect_shared)
		return;
	pgs_shared_merge();
	last_merge_ticks = pgs_ticks();
	/* keep collecting for the shared tables while activations still run */
	pgs_collect_shared = depth > 0 && pgs_shared_wants_me();
}

/* ---------- initialisation ---------- */

void
pgs_plugin_init(void)
{
	plugin_ptr = (PLpgSQL_plugin **) find_rendezvous_variable("PLpgSQL_plugin");
	prev_plugin = *plugin_ptr;
	*plugin_ptr = &pgs_plugin;

	pgs_local_init();
	pgs_refresh_active();

	RegisterXactCallback(pgs_xact_callback, NULL);
	RegisterSubXactCallback(pgs_subxact_callback, NULL);

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pgs_ProcessUtility;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = pgs_ExecutorStart;
}
