/*
 * local.c
 *		The backend-local profile store: one entry per function version with
 *		its statements, and the call-graph trie, in counters of clock ticks.
 *
 * The executor hooks (plugin.c) find a function's entry here once per call
 * and then update its counters directly; shmem.c merges what is new into
 * the shared tables, and SQL reads the store through a snapshot in
 * nanoseconds.  Everything lives in one memory context, so a reset while
 * no PL/pgSQL code runs frees it at once; while activations run they point
 * into the entries, which a reset then zeroes in place instead.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "compat.h"
#include "pgscope.h"

/*
 * The function of a PLpgSQL_function seen lately, by its address, so that a
 * call needs no key built and no hash lookup.  A freed and reused address is
 * told apart by the version (oid, xmin, tid) stored with it.
 */
typedef struct PgsFnCacheEnt
{
	PLpgSQL_function *func;
	Oid			oid;
	TransactionId xmin;
	ItemPointerData tid;
	PgsFunc    *fn;
} PgsFnCacheEnt;

#define PGS_FN_CACHE_SIZE 256

static MemoryContext pgs_cxt = NULL;
static HTAB *func_table = NULL;
static PgsCgNode cg_root;
static uint64 func_seq = 0;
static PgsFnCacheEnt fn_cache[PGS_FN_CACHE_SIZE];

/* An empty store (the memory context is created once and only reset later). */
void
pgs_local_init(void)
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

/* ---------- function entries ---------- */

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
	fn->merged_stmts = MemoryContextAllocZero(pgs_cxt, sizeof(PgsCounters) * (nstmts + 1));
	for (i = 0; i <= nstmts; i++)
		fn->stmts[i].type = -1;
	fn->nstmts = nstmts;
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
		pgs_number_statements(fn, func);
		fill_function_info(fn, func, do_source);
	}
	PG_CATCH();
	{
		hash_search(func_table, &fn->key, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * The key of func's version; a DO block (no oid) is identified by a hash of
 * its source, do_source, so repeated runs of the same block add up.
 */
static void
function_key(PgsFuncKey *key, PLpgSQL_function *func, const char *do_source)
{
	memset(key, 0, sizeof(*key));
	key->db = MyDatabaseId;
	key->oid = func->fn_oid;
	if (OidIsValid(func->fn_oid))
	{
		key->xmin = PGS_FN_XMIN(func);
		key->blk = ItemPointerGetBlockNumberNoCheck(&PGS_FN_TID(func));
		key->off = ItemPointerGetOffsetNumberNoCheck(&PGS_FN_TID(func));
	}
	else
	{
		uint64		h;

		h = do_source ? hash_bytes_extended((const unsigned char *) do_source,
											strlen(do_source), 0) : 0;
		key->xmin = (uint32) (h >> 32);
		key->blk = (uint32) h;
	}
}

/*
 * The entry of func's version, made on first sight.  do_source is the text
 * of the DO block being run, if any (only read when func has no oid).
 */
PgsFunc *
pgs_local_function(PLpgSQL_function *func, const char *do_source)
{
	PgsFuncKey	key;
	PgsFunc    *fn;
	bool		found;
	PgsFnCacheEnt *ce = NULL;

	if (OidIsValid(func->fn_oid))
	{
		ce = &fn_cache[((uintptr_t) func >> 4) % PGS_FN_CACHE_SIZE];
		if (ce->func == func && ce->oid == func->fn_oid && ce->xmin == PGS_FN_XMIN(func) &&
			ItemPointerEquals(&ce->tid, &PGS_FN_TID(func)))
			return ce->fn;
	}

	function_key(&key, func, do_source);
	fn = hash_search(func_table, &key, HASH_ENTER, &found);
	if (!found)
		init_function(fn, func, do_source);
	else if (fn->nstmts < (int) func->nstatements)
	{
		/* cannot happen for one version; grow rather than index out of bounds */
		PgsStmt    *old = fn->stmts;
		PgsCounters *oldm = fn->merged_stmts;
		int			oldn = fn->nstmts;

		alloc_stmts(fn, func->nstatements);
		memcpy(fn->stmts, old, sizeof(PgsStmt) * (oldn + 1));
		memcpy(fn->merged_stmts, oldm, sizeof(PgsCounters) * (oldn + 1));
		pgs_number_statements(fn, func);
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

/* ---------- call graph ---------- */

/*
 * The node of fn called from parent (NULL: from no profiled function), made
 * on first sight.  Below pgscope.max_stack_depth every deeper call goes to
 * one folded marker node.
 */
PgsCgNode *
pgs_local_cg_child(PgsCgNode *parent, PgsFunc *fn)
{
	PgsCgNode  *n,
			   *prev = NULL;

	if (parent == NULL)
		parent = &cg_root;
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

/* ---------- merged marks, reset ---------- */

/* Everything fn counted is in the shared tables, or is not for them. */
void
pgs_func_mark_merged(PgsFunc *fn)
{
	fn->merged = fn->counters;
	for (int i = 0; i <= fn->nstmts; i++)
		fn->merged_stmts[i] = fn->stmts[i].counters;
}

static void
mark_merged_func(PgsFunc *fn, void *arg)
{
	pgs_func_mark_merged(fn);
}

static void
mark_merged_cg(PgsCgNode *n, void *arg)
{
	n->merged = n->counters;
}

/* What the store holds now is never to be merged (see plugin.c's shared_rebase). */
void
pgs_local_mark_merged(void)
{
	pgs_local_foreach(mark_merged_func, mark_merged_cg, NULL);
}

static void
zero_func(PgsFunc *fn, void *arg)
{
	memset(&fn->counters, 0, sizeof(PgsCounters));
	memset(&fn->merged, 0, sizeof(PgsCounters));
	memset(fn->merged_stmts, 0, sizeof(PgsCounters) * (fn->nstmts + 1));
	/* what was seen of each statement (line, type, place) stays */
	for (int i = 0; i <= fn->nstmts; i++)
		memset(&fn->stmts[i].counters, 0, sizeof(PgsCounters));
}

static void
zero_cg(PgsCgNode *n, void *arg)
{
	memset(&n->counters, 0, sizeof(PgsCounters));
	memset(&n->merged, 0, sizeof(PgsCounters));
}

/*
 * Forget everything counted.  in_place: activations are running and point
 * into the entries, so the entries stay and only their counters are zeroed.
 */
void
pgs_local_clear(bool in_place)
{
	if (in_place)
		pgs_local_foreach(zero_func, zero_cg, NULL);
	else
	{
		MemoryContextReset(pgs_cxt);
		pgs_local_init();
	}
}

/* Calls counted in all functions (a parallel worker reports them). */
uint64
pgs_local_calls(void)
{
	HASH_SEQ_STATUS hs;
	PgsFunc    *fn;
	uint64		calls = 0;

	if (func_table == NULL)
		return 0;
	hash_seq_init(&hs, func_table);
	while ((fn = hash_seq_search(&hs)) != NULL)
		calls += fn->counters.calls;
	return calls;
}

/* ---------- snapshot ---------- */

static void
snap_func(PgsFunc *fn, void *arg)
{
	PgsSnapshot *snap = arg;
	PgsSnapFunc *sf = &snap->funcs[snap->nfuncs];

	fn->snap_index = snap->nfuncs++;
	sf->key = fn->key;
	sf->kind = fn->kind;
	sf->signature = fn->signature;
	sf->source = fn->source;
	sf->seq = fn->seq;
	sf->counters = pgs_counters_ns(&fn->counters);
	sf->nstmts = fn->nstmts;
	sf->stmts = palloc0(sizeof(PgsSnapStmt) * (fn->nstmts + 1));
	for (int i = 1; i <= fn->nstmts; i++)
	{
		PgsStmt    *s = &fn->stmts[i];
		PgsSnapStmt *t = &sf->stmts[i];

		t->lineno = s->lineno;
		t->type = s->type;
		t->counters = pgs_counters_ns(&s->counters);
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
	PgsSnapshot *snap = arg;
	PgsSnapCg  *c;
	PgsCgNode  *p;
	int			i;

	if (n->counters.calls == 0)
		return;
	c = &snap->cg[snap->ncg++];
	c->depth = n->depth;
	c->frames = palloc(sizeof(int32) * n->depth);
	for (p = n, i = n->depth - 1; p != &cg_root && i >= 0; p = p->parent, i--)
		c->frames[i] = p->fn ? p->fn->snap_index : -1;
	c->counters = pgs_counters_ns(&n->counters);
}

PgsSnapshot *
pgs_local_snapshot(void)
{
	PgsSnapshot *snap = palloc0(sizeof(PgsSnapshot));
	int			ncg = 0;

	snap->funcs = palloc0(sizeof(PgsSnapFunc) * (hash_get_num_entries(func_table) + 1));
	pgs_local_foreach(snap_func, NULL, snap);
	pgs_local_foreach(NULL, count_cg, &ncg);
	snap->cg = palloc0(sizeof(PgsSnapCg) * (ncg + 1));
	pgs_local_foreach(NULL, snap_cg, snap);
	return snap;
}
