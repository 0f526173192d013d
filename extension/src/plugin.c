/*
 * plugin.c
 *		The PL/pgSQL executor hooks and the backend-local profile.
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
 * between (a function call, an error, a chained plugin) forces a read.  estate->plugin_info holds the index (+1) of the
 * activation's function frame, never a pointer, because the stack array
 * grows.
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

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "executor/executor.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

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

typedef struct PgsFnCacheEnt
{
	PLpgSQL_function *func;
	Oid			oid;
	TransactionId xmin;
	ItemPointerData tid;
	PgsFunc    *fn;
} PgsFnCacheEnt;

#define PGS_FN_CACHE_SIZE 256

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

static MemoryContext pgs_cxt = NULL;
static HTAB *func_table = NULL;
static PgsCgNode cg_root;
static uint64 func_seq = 0;
static PgsFnCacheEnt fn_cache[PGS_FN_CACHE_SIZE];

static const char *pending_do_source = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static uint64 last_merge_ticks = 0;

/*
 * The last statement callback, while nothing else has happened since: its
 * activation (NULL: none usable), whether it was an end, the statement and
 * the tick it took.
 */
static PLpgSQL_execstate *last_estate = NULL;
static bool last_was_end;
static const PgsStmt *last_st;
static uint64 last_ticks;

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
	bool		busy = pgs_active || depth > 0 || prev_plugin != NULL;

	pgs_plugin.stmt_beg = busy ? pgs_stmt_beg : NULL;
	pgs_plugin.stmt_end = busy ? pgs_stmt_end : NULL;
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

/* ---------- local profile storage ---------- */

static void
local_tables_init(void)
{
	HASHCTL		ctl;

	if (pgs_cxt == NULL)
		pgs_cxt = AllocSetContextCreate(TopMemoryContext, "pgscope profile",
										ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PgsFuncKey);
	ctl.entrysize = sizeof(PgsFunc);
	ctl.hcxt = pgs_cxt;
	func_table = hash_create("pgscope functions", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&cg_root, 0, sizeof(cg_root));
	cg_root.shared_slot = -1;
	memset(fn_cache, 0, sizeof(fn_cache));
}

static uint64
key_hash(const PgsFuncKey *key)
{
	/* the database is not part of a path hash: the shared key carries it */
	return hash_bytes_extended((const unsigned char *) &key->oid,
							   sizeof(PgsFuncKey) - offsetof(PgsFuncKey, oid), 0);
}

int64
pgs_func_id(const PgsFuncKey *key)
{
	return (int64) (key_hash(key) >> 1);
}

static void
fill_function_info(PgsFunc *fn, PLpgSQL_function *func, const char *do_source)
{
	MemoryContext old = MemoryContextSwitchTo(pgs_cxt);

	fn->kind = PGS_KIND_FUNCTION;
	if (func->fn_is_trigger == PLPGSQL_DML_TRIGGER)
		fn->kind = PGS_KIND_TRIGGER;
	else if (func->fn_is_trigger == PLPGSQL_EVENT_TRIGGER)
		fn->kind = PGS_KIND_EVENT_TRIGGER;

	if (!OidIsValid(func->fn_oid))
	{
		fn->kind = PGS_KIND_DO;
		fn->signature = psprintf("DO block %08x%08x", fn->key.xmin, fn->key.blk);
		fn->source = do_source ? pstrdup(do_source) : NULL;
	}
	else
	{
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(func->fn_oid));

		fn->signature = format_procedure_qualified(func->fn_oid);
		if (HeapTupleIsValid(tup))
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tup);

			if (proc->prokind == PROKIND_PROCEDURE)
				fn->kind = PGS_KIND_PROCEDURE;
			/* only the source of the version that was compiled is ours */
			if (HeapTupleHeaderGetRawXmin(tup->t_data) == PGS_FN_XMIN(func) &&
				ItemPointerEquals(&tup->t_self, &PGS_FN_TID(func)))
			{
				bool		isnull;
				Datum		d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

				if (!isnull)
					fn->source = TextDatumGetCString(d);
			}
			ReleaseSysCache(tup);
		}
	}
	MemoryContextSwitchTo(old);
}

static void
alloc_stmts(PgsFunc *fn, int nstmts)
{
	int			i;

	fn->stmts = MemoryContextAllocZero(pgs_cxt, sizeof(PgsStmt) * (nstmts + 1));
	fn->merged_stmts = MemoryContextAllocZero(pgs_cxt, sizeof(PgsStmt) * (nstmts + 1));
	for (i = 0; i <= nstmts; i++)
		fn->stmts[i].type = -1;
	fn->nstmts = nstmts;
}

/*
 * Number every statement list of the function and note each statement's
 * list and position (see "One clock read per statement" above).
 */
typedef struct PgsSeqWalk
{
	PgsFunc    *fn;
	uint32		nlists;
} PgsSeqWalk;

static void seq_stmt(PgsSeqWalk *w, PLpgSQL_stmt *stmt);

static inline PgsStmt *
seq_entry(PgsSeqWalk *w, PLpgSQL_stmt *stmt)
{
	if (stmt->stmtid > 0 && stmt->stmtid <= (unsigned) w->fn->nstmts)
		return &w->fn->stmts[stmt->stmtid];
	return NULL;
}

/* one of parent's statement lists; first_flags go to its first statement */
static void
seq_list(PgsSeqWalk *w, PLpgSQL_stmt *parent, List *stmts, uint8 first_flags)
{
	ListCell   *lc;
	uint32		list = ++w->nlists;
	int			pos = 0;

	foreach(lc, stmts)
	{
		PLpgSQL_stmt *stmt = (PLpgSQL_stmt *) lfirst(lc);
		PgsStmt    *st = seq_entry(w, stmt);

		if (st)
		{
			st->list = list;
			st->parent = parent->stmtid;
			st->pos = (uint16) Min(pos, PG_UINT16_MAX);
			st->seqflags |= pos == 0 ? first_flags : 0;
		}
		pos++;
		seq_stmt(w, stmt);
	}
}

static void
seq_stmt(PgsSeqWalk *w, PLpgSQL_stmt *stmt)
{
	PgsStmt    *st = seq_entry(w, stmt);
	uint8		tail = 0;
	ListCell   *lc;

	check_stack_depth();
	switch (stmt->cmd_type)
	{
		case PLPGSQL_STMT_BLOCK:
			{
				PLpgSQL_stmt_block *b = (PLpgSQL_stmt_block *) stmt;

				seq_list(w, stmt, b->body,
						 b->n_initvars == 0 && b->exceptions == NULL ? PGS_SEQ_HEAD : 0);
				if (b->exceptions)
				{
					foreach(lc, b->exceptions->exc_list)
						seq_list(w, stmt, ((PLpgSQL_exception *) lfirst(lc))->action, 0);
				}
				else
					tail = PGS_SEQ_TAIL;
				break;
			}
		case PLPGSQL_STMT_IF:
			{
				PLpgSQL_stmt_if *i = (PLpgSQL_stmt_if *) stmt;

				seq_list(w, stmt, i->then_body, 0);
				foreach(lc, i->elsif_list)
					seq_list(w, stmt, ((PLpgSQL_if_elsif *) lfirst(lc))->stmts, 0);
				seq_list(w, stmt, i->else_body, 0);
				tail = PGS_SEQ_TAIL;
				break;
			}
		case PLPGSQL_STMT_CASE:
			{
				PLpgSQL_stmt_case *c = (PLpgSQL_stmt_case *) stmt;

				foreach(lc, c->case_when_list)
					seq_list(w, stmt, ((PLpgSQL_case_when *) lfirst(lc))->stmts, 0);
				seq_list(w, stmt, c->else_stmts, 0);
				tail = PGS_SEQ_TAIL;
				break;
			}
		case PLPGSQL_STMT_LOOP:
			seq_list(w, stmt, ((PLpgSQL_stmt_loop *) stmt)->body, PGS_SEQ_WRAP | PGS_SEQ_HEAD);
			tail = PGS_SEQ_TAIL;
			break;
		case PLPGSQL_STMT_FORI:
			/* its bounds are evaluated after it starts: no HEAD */
			seq_list(w, stmt, ((PLpgSQL_stmt_fori *) stmt)->body, PGS_SEQ_WRAP);
			tail = PGS_SEQ_TAIL;
			break;
			/* a condition, a fetch or an array step runs between iterations */
		case PLPGSQL_STMT_WHILE:
			seq_list(w, stmt, ((PLpgSQL_stmt_while *) stmt)->body, 0);
			break;
		case PLPGSQL_STMT_FORS:
		case PLPGSQL_STMT_FORC:
		case PLPGSQL_STMT_DYNFORS:
			seq_list(w, stmt, ((PLpgSQL_stmt_forq *) stmt)->body, 0);
			break;
		case PLPGSQL_STMT_FOREACH_A:
			seq_list(w, stmt, ((PLpgSQL_stmt_foreach_a *) stmt)->body, 0);
			break;
		default:
			break;
	}
	if (st)
		st->seqflags |= tail;
}

/* Note every statement's list, position and PGS_SEQ_* flags. */
static void
number_statements(PgsFunc *fn, PLpgSQL_function *func)
{
	PgsSeqWalk	w = {fn, 0};

	for (int i = 0; i <= fn->nstmts; i++)
	{
		fn->stmts[i].list = fn->stmts[i].parent = 0;
		fn->stmts[i].pos = 0;
		fn->stmts[i].seqflags = 0;
	}
	if (func->action)
		seq_stmt(&w, (PLpgSQL_stmt *) func->action);
}

/* Fill a new entry; on error remove it again so no half-made entry stays. */
static void
init_function(PgsFunc *fn, PLpgSQL_function *func, const char *do_source)
{
	memset(((char *) fn) + sizeof(PgsFuncKey), 0, sizeof(PgsFunc) - sizeof(PgsFuncKey));
	fn->seq = ++func_seq;
	fn->shared_slot = -1;
	PG_TRY();
	{
		alloc_stmts(fn, func->nstatements);
		number_statements(fn, func);
		fill_function_info(fn, func, do_source);
	}
	PG_CATCH();
	{
		hash_search(func_table, &fn->key, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static PgsFunc *
lookup_function(PLpgSQL_function *func)
{
	PgsFuncKey	key;
	PgsFunc    *fn;
	bool		found;
	const char *do_source = NULL;
	PgsFnCacheEnt *ce = NULL;

	if (OidIsValid(func->fn_oid))
	{
		ce = &fn_cache[((uintptr_t) func >> 4) % PGS_FN_CACHE_SIZE];
		/* a freed and reused PLpgSQL_function address must not match */
		if (ce->func == func && ce->oid == func->fn_oid && ce->xmin == PGS_FN_XMIN(func) &&
			ItemPointerEquals(&ce->tid, &PGS_FN_TID(func)))
			return ce->fn;
	}

	memset(&key, 0, sizeof(key));
	key.db = MyDatabaseId;
	key.oid = func->fn_oid;
	if (OidIsValid(func->fn_oid))
	{
		key.xmin = PGS_FN_XMIN(func);
		key.blk = ItemPointerGetBlockNumberNoCheck(&PGS_FN_TID(func));
		key.off = ItemPointerGetOffsetNumberNoCheck(&PGS_FN_TID(func));
	}
	else
	{
		/* an anonymous block: identified by its source text */
		uint64		h;

		do_source = pending_do_source;
		h = do_source ? hash_bytes_extended((const unsigned char *) do_source,
											strlen(do_source), 0) : 0;
		key.xmin = (uint32) (h >> 32);
		key.blk = (uint32) h;
	}

	fn = hash_search(func_table, &key, HASH_ENTER, &found);
	if (!found)
		init_function(fn, func, do_source);
	else if (fn->nstmts < (int) func->nstatements)
	{
		/* cannot happen for one version; grow rather than index out of bounds */
		PgsStmt    *old = fn->stmts,
				   *oldm = fn->merged_stmts;
		int			oldn = fn->nstmts;

		alloc_stmts(fn, func->nstatements);
		memcpy(fn->stmts, old, sizeof(PgsStmt) * (oldn + 1));
		memcpy(fn->merged_stmts, oldm, sizeof(PgsStmt) * (oldn + 1));
		number_statements(fn, func);
	}

	if (ce)
	{
		ce->func = func;
		ce->oid = func->fn_oid;
		ce->xmin = PGS_FN_XMIN(func);
		ce->tid = PGS_FN_TID(func);
		ce->fn = fn;
	}
	return fn;
}

static PgsCgNode *
cg_child(PgsCgNode *parent, PgsFunc *fn)
{
	PgsCgNode  *n,
			   *prev = NULL;

	if (parent->depth >= pgs_max_stack_depth)
	{
		if (parent->fn == NULL && parent != &cg_root)
			return parent;		/* already inside the folded marker */
		fn = NULL;
	}
	for (n = parent->child; n != NULL; prev = n, n = n->sibling)
	{
		if (n->fn == fn)
		{
			if (prev)
			{
				/* move to front: hot callees are found first */
				prev->sibling = n->sibling;
				n->sibling = parent->child;
				parent->child = n;
			}
			return n;
		}
	}
	n = MemoryContextAllocZero(pgs_cxt, sizeof(PgsCgNode));
	n->fn = fn;
	n->parent = parent;
	n->depth = parent->depth + 1;
	n->hash = hash_combine64(parent->hash,
							 fn ? key_hash(&fn->key) : UINT64CONST(0x9e3779b97f4a7c15));
	n->shared_slot = -1;
	n->sibling = parent->child;
	parent->child = n;
	return n;
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

static void
mark_merged_cg(PgsCgNode *n)
{
	for (; n != NULL; n = n->sibling)
	{
		n->merged_calls = n->calls;
		n->merged_total = n->total;
		n->merged_self = n->self;
		mark_merged_cg(n->child);
	}
}

/* what is unmerged now is not for the shared tables (see uncovered_data) */
static pg_noinline void
shared_rebase(void)
{
	HASH_SEQ_STATUS hs;
	PgsFunc    *fn;

	hash_seq_init(&hs, func_table);
	while ((fn = hash_seq_search(&hs)) != NULL)
	{
		fn->merged_calls = fn->calls;
		fn->merged_errors = fn->errors;
		fn->merged_total = fn->total;
		fn->merged_self = fn->self;
		memcpy(fn->merged_stmts, fn->stmts, sizeof(PgsStmt) * (fn->nstmts + 1));
	}
	mark_merged_cg(cg_root.child);
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

	f->fn = lookup_function(func);
	f->caller = cur_fn;
	cur_fn = (int32) (f - frames);
	parent = f->caller >= 0 ? frames[f->caller].cg : &cg_root;
	f->cg = cg_child(parent, f->fn);
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

	if (unlikely(s->count++ == 0))
	{
		/* first run since the function was seen or reset: it is "seen" now */
		s->lineno = f->stmt->lineno;
		s->type = f->stmt->cmd_type;
	}
	if (error)
		s->errors++;
	s->active--;
	if (f->outer)
		s->total += el;
	s->self += el - f->child;
	if (el > s->max)
		s->max = el;
	if (f > frames)
		f[-1].child += el;
}

static void
close_function_frame(PgsFrame *f, uint64 now, bool error)
{
	uint64		el = now - f->start;
	PgsFunc    *fn = f->fn;
	PgsCgNode  *cg = f->cg;

	fn->calls++;
	if (error)
		fn->errors++;
	if (f->outer)
		fn->total += el;
	fn->self += el - f->callee;
	if (el > fn->max)
		fn->max = el;
	fn->active--;

	cg->calls++;
	if (f->cg_outer)
		cg->total += el;
	cg->self += el - f->callee;
	cur_fn = f->caller;

	if (f->caller >= 0)
		frames[f->caller].callee += el;
	if (f > frames)
		f[-1].child += el;
}

/* Close every frame above target as raised by an error.  Never allocates. */
static void
unwind_to(int32 target)
{
	uint64		now;

	last_estate = NULL;
	if (depth <= target)
		return;
	now = pgs_ticks();
	while (depth > target)
	{
		PgsFrame   *f = &frames[depth - 1];

		if (f->stmt != NULL)
			close_stmt_frame(f, now, true);
		else if (f->profiled)
			close_function_frame(f, now, true);
		depth--;
	}
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

	last_estate = NULL;
	callbacks_seen++;
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

	last_estate = NULL;
	f = function_frame_of(estate);
	if (f == NULL)
		return;
	now = pgs_ticks();
	/* statements of this activation still open (should not happen): close them */
	while (&frames[depth - 1] != f)
	{
		PgsFrame   *top = &frames[depth - 1];

		if (top->stmt != NULL)
			close_stmt_frame(top, now, false);
		else if (top->profiled)
			close_function_frame(top, now, false);
		depth--;
	}
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
			last_estate = NULL;
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
			if (last_estate == estate &&
				(last_was_end ?
				 st->list == last_st->list && (st->pos > last_st->pos || (st->seqflags & PGS_SEQ_WRAP)) :
				 (st->seqflags & PGS_SEQ_HEAD) && &stmts[st->parent] == last_st))
				f->start = last_ticks;
			else
				f->start = pgs_ticks();
			/* a chained plugin runs between us and the next callback */
			if (likely(prev_plugin == NULL))
			{
				last_estate = estate;
				last_was_end = false;
				last_st = st;
				last_ticks = f->start;
				return;
			}
		}
	}
	last_estate = NULL;
	FORWARD_STMT(stmt_beg, estate, stmt);
}

static void
pgs_stmt_end(PLpgSQL_execstate *estate, PLpgSQL_stmt *stmt)
{
	PLpgSQL_execstate *prev = last_estate;

	last_estate = NULL;
	if (likely(depth > 0))
	{
		PgsFrame   *f = &frames[depth - 1];

		if (likely(f->stmt == stmt && f->estate == estate))
		{
			const PgsStmt *st = f->st;
			uint64		now;

			if (prev == estate && last_was_end &&
				(st->seqflags & PGS_SEQ_TAIL) && last_st->parent == stmt->stmtid)
				now = last_ticks;
			else
				now = pgs_ticks();
			close_stmt_frame(f, now, false);
			depth--;
			/* a chained plugin runs between us and the next callback */
			if (likely(prev_plugin == NULL))
			{
				last_estate = estate;
				last_was_end = true;
				last_st = st;
				last_ticks = now;
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
	HASH_SEQ_STATUS hs;
	PgsFunc    *fn;
	uint64		calls = 0;

	if (!IsParallelWorker() || !pgs_session_enabled || pgs_collect_shared || func_table == NULL)
		return;
	hash_seq_init(&hs, func_table);
	while ((fn = hash_seq_search(&hs)) != NULL)
		calls += fn->calls;
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

				last_estate = NULL;
				/*
				 * PostgresMain clears error_context_stack before aborting, so
				 * after an error nothing is live; a procedure's ROLLBACK keeps
				 * its own activations.
				 */
				while (target > 0 && !estate_is_live(frames[target - 1].estate))
					target--;
				unwind_to(target);
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
			last_estate = NULL;
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

/* ---------- noticing activation while the slot is parked ---------- */

static void
pgs_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (slot_parked && pgs_shared_may_want_me())
		pgs_refresh_active();
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

/* ---------- reset, iteration, snapshot ---------- */

static void
zero_cg(PgsCgNode *n)
{
	for (; n != NULL; n = n->sibling)
	{
		n->calls = n->total = n->self = 0;
		n->merged_calls = n->merged_total = n->merged_self = 0;
		zero_cg(n->child);
	}
}

void
pgs_local_reset(void)
{
	last_estate = NULL;			/* last_st may point into what is freed */
	if (depth == 0)
	{
		MemoryContextReset(pgs_cxt);
		local_tables_init();
		return;
	}
	else
	{
		/* activations are running and point into the tables: zero in place */
		HASH_SEQ_STATUS hs;
		PgsFunc    *fn;

		hash_seq_init(&hs, func_table);
		while ((fn = hash_seq_search(&hs)) != NULL)
		{
			fn->calls = fn->errors = fn->total = fn->self = fn->max = 0;
			fn->merged_calls = fn->merged_errors = fn->merged_total = fn->merged_self = 0;
			memset(fn->merged_stmts, 0, sizeof(PgsStmt) * (fn->nstmts + 1));
			for (int i = 0; i <= fn->nstmts; i++)
			{
				PgsStmt    *st = &fn->stmts[i];

				st->count = st->errors = st->total = st->self = st->max = 0;
			}
		}
		zero_cg(cg_root.child);
	}
}

static void
foreach_cg(PgsCgNode *n, pgs_cg_visitor cv, void *arg)
{
	for (; n != NULL; n = n->sibling)
	{
		cv(n, arg);
		foreach_cg(n->child, cv, arg);
	}
}

void
pgs_local_foreach(pgs_func_visitor fv, pgs_cg_visitor cv, void *arg)
{
	HASH_SEQ_STATUS hs;
	PgsFunc    *fn;

	if (fv)
	{
		hash_seq_init(&hs, func_table);
		while ((fn = hash_seq_search(&hs)) != NULL)
			fv(fn, arg);
	}
	if (cv)
		foreach_cg(cg_root.child, cv, arg);
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

typedef struct SnapBuild
{
	PgsSnapshot *snap;
} SnapBuild;

static void
snap_func(PgsFunc *fn, void *arg)
{
	SnapBuild  *b = arg;
	PgsSnapFunc *sf = &b->snap->funcs[b->snap->nfuncs];

	fn->snap_index = b->snap->nfuncs++;
	sf->key = fn->key;
	sf->kind = fn->kind;
	sf->signature = fn->signature;
	sf->source = fn->source;
	sf->seq = fn->seq;
	sf->calls = fn->calls;
	sf->errors = fn->errors;
	sf->total = pgs_ticks_to_ns(fn->total);
	sf->self = pgs_ticks_to_ns(fn->self);
	sf->max = pgs_ticks_to_ns(fn->max);
	sf->nstmts = fn->nstmts;
	sf->stmts = palloc0(sizeof(PgsSnapStmt) * (fn->nstmts + 1));
	for (int i = 1; i <= fn->nstmts; i++)
	{
		PgsStmt    *s = &fn->stmts[i];
		PgsSnapStmt *t = &sf->stmts[i];

		t->lineno = s->lineno;
		t->type = s->type;
		t->count = s->count;
		t->errors = s->errors;
		t->total = pgs_ticks_to_ns(s->total);
		t->self = pgs_ticks_to_ns(s->self);
		t->max = pgs_ticks_to_ns(s->max);
	}
}

static void
count_cg(PgsCgNode *n, void *arg)
{
	(*(int *) arg)++;
}

static void
snap_cg(PgsCgNode *n, void *arg)
{
	SnapBuild  *b = arg;
	PgsSnapCg  *c;
	PgsCgNode  *p;
	int			i;

	if (n->calls == 0)
		return;
	c = &b->snap->cg[b->snap->ncg++];
	c->depth = n->depth;
	c->frames = palloc(sizeof(int32) * n->depth);
	for (p = n, i = n->depth - 1; p != &cg_root && i >= 0; p = p->parent, i--)
		c->frames[i] = p->fn ? p->fn->snap_index : -1;
	c->calls = n->calls;
	c->total = pgs_ticks_to_ns(n->total);
	c->self = pgs_ticks_to_ns(n->self);
}

PgsSnapshot *
pgs_local_snapshot(void)
{
	SnapBuild	b;
	int			ncg = 0;

	b.snap = palloc0(sizeof(PgsSnapshot));
	b.snap->funcs = palloc0(sizeof(PgsSnapFunc) * (hash_get_num_entries(func_table) + 1));
	pgs_local_foreach(snap_func, NULL, &b);
	pgs_local_foreach(NULL, count_cg, &ncg);
	b.snap->cg = palloc0(sizeof(PgsSnapCg) * (ncg + 1));
	pgs_local_foreach(NULL, snap_cg, &b);
	return b.snap;
}

/* ---------- initialisation ---------- */

void
pgs_plugin_init(void)
{
	plugin_ptr = (PLpgSQL_plugin **) find_rendezvous_variable("PLpgSQL_plugin");
	prev_plugin = *plugin_ptr;
	*plugin_ptr = &pgs_plugin;

	local_tables_init();
	pgs_refresh_active();

	RegisterXactCallback(pgs_xact_callback, NULL);
	RegisterSubXactCallback(pgs_subxact_callback, NULL);

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pgs_ProcessUtility;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = pgs_ExecutorStart;
}
