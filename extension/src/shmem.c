/*
 * shmem.c
 *		Instance-wide profile tables and activation state (needs
 *		shared_preload_libraries).
 *
 * Locking protocol (after pg_stat_statements): one LWLock guards the shape of
 * the tables.  Lookups and counter updates take it shared and update each
 * entry's counters under that entry's spinlock (a function's spinlock also
 * covers its statement slots); inserting entries, reset, and nothing else,
 * take it exclusive.  The activation fields are read without a lock (each
 * is a single aligned word) and written under the header spinlock.
 *
 * Tables have a fixed size from GUCs.  Entry counts are checked before every
 * insert, so a full table sets its overflow flag, logs once and is skipped;
 * the merge runs in transaction callbacks and must never raise an ERROR.
 * Shared values are nanoseconds.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "access/xact.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "pgscope.h"

int			pgs_max_functions = 2000;
int			pgs_max_statements = 200000;
int			pgs_max_callgraphs = 20000;
int			pgs_max_source_bytes = 4 * 1024 * 1024;
int			pgs_max_global_seconds = 3600;

typedef struct PgsSharedHeader
{
	PgsActivation act;			/* first: see pgscope.h */
	LWLock	   *lock;
	slock_t		mutex;			/* activation fields */
	uint32		generation;		/* bumped by reset: cached slots go stale */
	uint64		seq;
	int			nfuncs;
	int			nstmts;
	int			ncg;
	int			src_used;
	bool		functions_overflow;
	bool		statements_overflow;
	bool		callgraph_overflow;
	bool		source_overflow;
} PgsSharedHeader;

typedef struct PgsSharedFunc
{
	PgsFuncKey	key;
	slock_t		mutex;
	int32		kind;
	uint64		seq;
	PgsCounters counters;		/* under mutex */
	int32		nstmts;
	int32		stmt_base;		/* -1: statements did not fit */
	int32		sig_off;		/* -1: did not fit */
	int32		src_off;		/* -1: unknown or did not fit */
} PgsSharedFunc;

/* a statement slot: all of it under its function's mutex */
typedef struct PgsSharedStmt
{
	int32		lineno;
	int32		type;
	PgsCounters counters;
} PgsSharedStmt;

typedef struct PgsCgKey
{
	Oid			db;
	uint32		pad;
	uint64		hash;
} PgsCgKey;

typedef struct PgsSharedCg
{
	PgsCgKey	key;
	slock_t		mutex;
	int32		depth;
	PgsCounters counters;		/* under mutex; calls, total, self */
	int32		frames[FLEXIBLE_ARRAY_MEMBER];	/* shared function slots,
												 * -1 folded, -2 unknown */
} PgsSharedCg;

typedef struct PgsFuncIdx
{
	PgsFuncKey	key;
	int32		slot;
} PgsFuncIdx;

typedef struct PgsCgIdx
{
	PgsCgKey	key;
	int32		slot;
} PgsCgIdx;

static PgsSharedHeader *hdr = NULL;
PgsActivation *pgs_activation = NULL;
static PgsSharedFunc *sfuncs = NULL;
static PgsSharedStmt *sstmts = NULL;
static char *scg_base = NULL;
static char *spool = NULL;
static HTAB *func_index = NULL;
static HTAB *cg_index = NULL;

#if PGS_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static inline int
cg_frames_cap(void)
{
	return pgs_max_stack_depth + 1;
}

static inline Size
cg_entry_size(void)
{
	return MAXALIGN(offsetof(PgsSharedCg, frames) + sizeof(int32) * cg_frames_cap());
}

static inline PgsSharedCg *
cg_at(int slot)
{
	return (PgsSharedCg *) (scg_base + cg_entry_size() * slot);
}

static Size
pgs_shmem_size(void)
{
	Size		sz = MAXALIGN(sizeof(PgsSharedHeader));

	sz = add_size(sz, MAXALIGN(mul_size(sizeof(PgsSharedFunc), pgs_max_functions)));
	sz = add_size(sz, MAXALIGN(mul_size(sizeof(PgsSharedStmt), pgs_max_statements)));
	sz = add_size(sz, mul_size(cg_entry_size(), pgs_max_callgraphs));
	sz = add_size(sz, MAXALIGN(pgs_max_source_bytes));
	sz = add_size(sz, hash_estimate_size(pgs_max_functions, sizeof(PgsFuncIdx)));
	sz = add_size(sz, hash_estimate_size(pgs_max_callgraphs, sizeof(PgsCgIdx)));
	return sz;
}

static void
pgs_shmem_request(void)
{
#if PGS_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(pgs_shmem_size());
	RequestNamedLWLockTranche("pgscope", 1);
}

static void
pgs_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;
	char	   *p;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	p = ShmemInitStruct("pgscope tables",
						pgs_shmem_size() -
						hash_estimate_size(pgs_max_functions, sizeof(PgsFuncIdx)) -
						hash_estimate_size(pgs_max_callgraphs, sizeof(PgsCgIdx)),
						&found);
	hdr = (PgsSharedHeader *) p;
	p += MAXALIGN(sizeof(PgsSharedHeader));
	sfuncs = (PgsSharedFunc *) p;
	p += MAXALIGN(mul_size(sizeof(PgsSharedFunc), pgs_max_functions));
	sstmts = (PgsSharedStmt *) p;
	p += MAXALIGN(mul_size(sizeof(PgsSharedStmt), pgs_max_statements));
	scg_base = p;
	p += mul_size(cg_entry_size(), pgs_max_callgraphs);
	spool = p;

	if (!found)
	{
		memset(hdr, 0, sizeof(PgsSharedHeader));
		hdr->lock = &(GetNamedLWLockTranche("pgscope"))->lock;
		SpinLockInit(&hdr->mutex);
		hdr->act.collect_interval = 0;
	}
	pgs_activation = &hdr->act;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PgsFuncKey);
	ctl.entrysize = sizeof(PgsFuncIdx);
	func_index = ShmemInitHash("pgscope function index", pgs_max_functions,
							   pgs_max_functions, &ctl, HASH_ELEM | HASH_BLOBS);
	ctl.keysize = sizeof(PgsCgKey);
	ctl.entrysize = sizeof(PgsCgIdx);
	cg_index = ShmemInitHash("pgscope callgraph index", pgs_max_callgraphs,
							 pgs_max_callgraphs, &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
pgs_shmem_init(void)
{
#if PGS_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgs_shmem_request;
#else
	pgs_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgs_shmem_startup;
}

bool
pgs_shared_available(void)
{
	return hdr != NULL;
}

/* Does instance-wide or per-pid profiling, not yet expired, cover this backend? */
bool
pgs_shared_wants_me(void)
{
	if (pgs_shared_may_want_me())
	{
		TimestampTz now = GetCurrentStatementStartTimestamp();

		if (hdr->act.global_on && (hdr->act.global_expires == 0 || now < hdr->act.global_expires))
			return true;
		if (hdr->act.pid == MyProcPid && (hdr->act.pid_expires == 0 || now < hdr->act.pid_expires))
			return true;
	}
	return false;
}

/* usecs: -1 for pgscope.max_global_seconds, 0 for never; callers bound it (sqlapi.c) */
static TimestampTz
expiry_from(int64 usecs)
{
	if (usecs < 0)
		usecs = (int64) pgs_max_global_seconds * USECS_PER_SEC;
	if (usecs == 0)
		return 0;
	return GetCurrentTimestamp() + usecs;
}

void
pgs_shared_set_global(bool on, int64 expire_usecs)
{
	TimestampTz exp = on ? expiry_from(expire_usecs) : 0;

	SpinLockAcquire(&hdr->mutex);
	hdr->act.global_on = on;
	hdr->act.global_expires = exp;
	SpinLockRelease(&hdr->mutex);
}

void
pgs_shared_set_pid(int pid, int64 expire_usecs)
{
	TimestampTz exp = pid != 0 ? expiry_from(expire_usecs) : 0;

	SpinLockAcquire(&hdr->mutex);
	hdr->act.pid = pid;
	hdr->act.pid_expires = exp;
	SpinLockRelease(&hdr->mutex);
}

void
pgs_shared_set_interval(int seconds)
{
	SpinLockAcquire(&hdr->mutex);
	hdr->act.collect_interval = seconds;
	SpinLockRelease(&hdr->mutex);
}

int
pgs_shared_collect_interval(void)
{
	return hdr ? hdr->act.collect_interval : 0;
}

void
pgs_shared_status(PgsSharedStatus *st)
{
	memset(st, 0, sizeof(*st));
	if (hdr == NULL)
		return;
	SpinLockAcquire(&hdr->mutex);
	st->global_enabled = hdr->act.global_on;
	st->global_expires = hdr->act.global_expires;
	st->pid = hdr->act.pid;
	st->pid_expires = hdr->act.pid_expires;
	st->collect_interval = hdr->act.collect_interval;
	SpinLockRelease(&hdr->mutex);
	LWLockAcquire(hdr->lock, LW_SHARED);
	st->functions_overflow = hdr->functions_overflow;
	st->statements_overflow = hdr->statements_overflow;
	st->callgraph_overflow = hdr->callgraph_overflow;
	st->source_overflow = hdr->source_overflow;
	st->nfuncs = hdr->nfuncs;
	st->nstmts = hdr->nstmts;
	st->ncg = hdr->ncg;
	LWLockRelease(hdr->lock);
}

/* ---------- merge ---------- */

typedef struct MergeState
{
	bool		exclusive;
	bool		missing;		/* an entry needs inserting: run again exclusive */
	bool		log_functions;
	bool		log_statements;
	bool		log_callgraph;
	bool		log_source;
} MergeState;

/* Copy a string into the pool; -1 when it does not fit.  Exclusive lock held. */
static int32
pool_put(const char *s, MergeState *ms)
{
	int			len;
	int32		off;

	if (s == NULL)
		return -1;
	len = strlen(s) + 1;
	if (hdr->src_used + len > pgs_max_source_bytes)
	{
		if (!hdr->source_overflow)
			ms->log_source = true;
		hdr->source_overflow = true;
		return -1;
	}
	off = hdr->src_used;
	memcpy(spool + off, s, len);
	hdr->src_used += len;
	return off;
}

static int32
func_slot(PgsFunc *fn, MergeState *ms)
{
	PgsFuncIdx *ix;
	bool		found;
	PgsSharedFunc *sf;
	int32		slot;

	if (fn->shared_generation == hdr->generation && fn->shared_slot >= 0)
		return fn->shared_slot;
	ix = hash_search(func_index, &fn->key, HASH_FIND, NULL);
	if (ix)
		slot = ix->slot;
	else if (!ms->exclusive)
	{
		ms->missing = true;
		return -1;
	}
	else
	{
		if (hdr->nfuncs >= pgs_max_functions)
		{
			if (!hdr->functions_overflow)
				ms->log_functions = true;
			hdr->functions_overflow = true;
			return -2;
		}
		ix = hash_search(func_index, &fn->key, HASH_ENTER_NULL, &found);
		if (ix == NULL)
		{
			if (!hdr->functions_overflow)
				ms->log_functions = true;
			hdr->functions_overflow = true;
			return -2;
		}
		slot = hdr->nfuncs++;
		ix->slot = slot;
		sf = &sfuncs[slot];
		memset(sf, 0, sizeof(*sf));
		sf->key = fn->key;
		SpinLockInit(&sf->mutex);
		sf->kind = fn->kind;
		sf->seq = ++hdr->seq;
		sf->stmt_base = -1;
		if (hdr->nstmts + fn->nstmts + 1 <= pgs_max_statements)
		{
			sf->stmt_base = hdr->nstmts;
			sf->nstmts = fn->nstmts;
			memset(&sstmts[sf->stmt_base], 0, sizeof(PgsSharedStmt) * (fn->nstmts + 1));
			hdr->nstmts += fn->nstmts + 1;
		}
		else
		{
			if (!hdr->statements_overflow)
				ms->log_statements = true;
			hdr->statements_overflow = true;
		}
		sf->sig_off = pool_put(fn->signature, ms);
		sf->src_off = pool_put(fn->source, ms);
	}
	fn->shared_slot = slot;
	fn->shared_generation = hdr->generation;
	return slot;
}

static void
merge_func(PgsFunc *fn, void *arg)
{
	MergeState *ms = arg;
	PgsSharedFunc *sf;
	PgsCounters delta;
	int32		slot;
	bool		dirty = pgs_counters_unmerged(&fn->counters, &fn->merged);
	int			i;

	for (i = 1; !dirty && i <= fn->nstmts; i++)
		dirty = pgs_counters_unmerged(&fn->stmts[i].counters, &fn->merged_stmts[i]);
	if (!dirty)
		return;

	slot = func_slot(fn, ms);
	if (slot == -1)
		return;					/* retried in the exclusive pass */
	if (slot >= 0)
	{
		sf = &sfuncs[slot];
		SpinLockAcquire(&sf->mutex);
		delta = pgs_counters_since_ns(&fn->counters, &fn->merged);
		pgs_counters_add(&sf->counters, &delta);
		if (sf->stmt_base >= 0)
		{
			int			n = Min(sf->nstmts, fn->nstmts);

			for (i = 1; i <= n; i++)
			{
				PgsStmt    *s = &fn->stmts[i];
				PgsSharedStmt *t = &sstmts[sf->stmt_base + i];

				if (!pgs_counters_unmerged(&s->counters, &fn->merged_stmts[i]))
					continue;
				t->lineno = s->lineno;
				t->type = s->type;
				delta = pgs_counters_since_ns(&s->counters, &fn->merged_stmts[i]);
				pgs_counters_add(&t->counters, &delta);
			}
		}
		SpinLockRelease(&sf->mutex);
	}
	/* merged, or dropped for lack of room: either way not retried */
	pgs_func_mark_merged(fn);
}

static void
merge_cg(PgsCgNode *n, void *arg)
{
	MergeState *ms = arg;
	PgsCgKey	key;
	PgsCgIdx   *ix;
	PgsSharedCg *c;
	PgsCounters delta;
	int32		slot;
	bool		found;

	if (!pgs_counters_unmerged(&n->counters, &n->merged))
		return;
	if (n->shared_generation == hdr->generation && n->shared_slot >= 0)
		slot = n->shared_slot;
	else
	{
		memset(&key, 0, sizeof(key));
		key.db = MyDatabaseId;
		key.hash = n->hash;
		ix = hash_search(cg_index, &key, HASH_FIND, NULL);
		if (ix)
			slot = ix->slot;
		else if (!ms->exclusive)
		{
			ms->missing = true;
			return;
		}
		else
		{
			PgsCgNode  *p;
			int			i;

			if (hdr->ncg >= pgs_max_callgraphs ||
				(ix = hash_search(cg_index, &key, HASH_ENTER_NULL, &found)) == NULL)
			{
				if (!hdr->callgraph_overflow)
					ms->log_callgraph = true;
				hdr->callgraph_overflow = true;
				n->merged = n->counters;
				return;
			}
			slot = hdr->ncg++;
			ix->slot = slot;
			c = cg_at(slot);
			memset(c, 0, cg_entry_size());
			c->key = key;
			SpinLockInit(&c->mutex);
			c->depth = Min(n->depth, cg_frames_cap());
			for (p = n, i = n->depth - 1; p->parent != NULL && i >= 0; p = p->parent, i--)
			{
				int32		fs;

				if (i >= cg_frames_cap())
					continue;
				if (p->fn == NULL)
					fs = -1;
				else
				{
					fs = func_slot(p->fn, ms);
					if (fs < 0)
						fs = -2;
				}
				c->frames[i] = fs;
			}
		}
		n->shared_slot = slot;
		n->shared_generation = hdr->generation;
	}
	c = cg_at(slot);
	SpinLockAcquire(&c->mutex);
	delta = pgs_counters_since_ns(&n->counters, &n->merged);
	pgs_counters_add(&c->counters, &delta);
	SpinLockRelease(&c->mutex);
	n->merged = n->counters;
}

/*
 * Merge what this backend collected since the last merge.  Called from
 * transaction callbacks: no ERROR may escape, so nothing here allocates.
 */
void
pgs_shared_merge(void)
{
	MergeState	ms;

	if (hdr == NULL || !OidIsValid(MyDatabaseId))
		return;
	memset(&ms, 0, sizeof(ms));
	LWLockAcquire(hdr->lock, LW_SHARED);
	pgs_local_foreach(merge_func, merge_cg, &ms);
	LWLockRelease(hdr->lock);
	if (ms.missing)
	{
		ms.exclusive = true;
		ms.missing = false;
		LWLockAcquire(hdr->lock, LW_EXCLUSIVE);
		pgs_local_foreach(merge_func, merge_cg, &ms);
		LWLockRelease(hdr->lock);
	}
	if (ms.log_functions)
		ereport(LOG, (errmsg("pgscope: shared function table is full (pgscope.max_functions = %d); further functions are not collected",
							 pgs_max_functions)));
	if (ms.log_statements)
		ereport(LOG, (errmsg("pgscope: shared statement table is full (pgscope.max_statements = %d); statements of further functions are not collected",
							 pgs_max_statements)));
	if (ms.log_callgraph)
		ereport(LOG, (errmsg("pgscope: shared call graph table is full (pgscope.max_callgraphs = %d); further call stacks are not collected",
							 pgs_max_callgraphs)));
	if (ms.log_source)
		ereport(LOG, (errmsg("pgscope: shared source pool is full (pgscope.max_source_bytes = %d); further sources are not kept",
							 pgs_max_source_bytes)));
}

void
pgs_shared_reset(void)
{
	HASH_SEQ_STATUS hs;
	void	   *e;

	LWLockAcquire(hdr->lock, LW_EXCLUSIVE);
	hash_seq_init(&hs, func_index);
	while ((e = hash_seq_search(&hs)) != NULL)
		hash_search(func_index, e, HASH_REMOVE, NULL);
	hash_seq_init(&hs, cg_index);
	while ((e = hash_seq_search(&hs)) != NULL)
		hash_search(cg_index, e, HASH_REMOVE, NULL);
	hdr->nfuncs = hdr->nstmts = hdr->ncg = hdr->src_used = 0;
	hdr->functions_overflow = hdr->statements_overflow = false;
	hdr->callgraph_overflow = hdr->source_overflow = false;
	hdr->generation++;
	SpinLockAcquire(&hdr->mutex);
	hdr->act.generation = hdr->generation;
	SpinLockRelease(&hdr->mutex);
	LWLockRelease(hdr->lock);
}

/* ---------- snapshot for SQL (current database only) ---------- */

PgsSnapshot *
pgs_shared_snapshot(void)
{
	PgsSnapshot *snap = palloc0(sizeof(PgsSnapshot));
	int32	   *map;
	int			i;

	LWLockAcquire(hdr->lock, LW_SHARED);
	map = palloc(sizeof(int32) * (hdr->nfuncs + 1));
	snap->funcs = palloc0(sizeof(PgsSnapFunc) * (hdr->nfuncs + 1));
	for (i = 0; i < hdr->nfuncs; i++)
	{
		PgsSharedFunc *sf = &sfuncs[i];
		PgsSnapFunc *f;

		map[i] = -2;
		if (sf->key.db != MyDatabaseId)
			continue;
		map[i] = snap->nfuncs;
		f = &snap->funcs[snap->nfuncs++];
		f->key = sf->key;
		f->kind = sf->kind;
		f->seq = sf->seq;
		f->signature = sf->sig_off >= 0 ? pstrdup(spool + sf->sig_off) : NULL;
		f->source = sf->src_off >= 0 ? pstrdup(spool + sf->src_off) : NULL;
		f->nstmts = sf->stmt_base >= 0 ? sf->nstmts : 0;
		f->stmts = palloc0(sizeof(PgsSnapStmt) * (f->nstmts + 1));
		SpinLockAcquire(&sf->mutex);
		f->counters = sf->counters;
		for (int j = 1; j <= f->nstmts; j++)
		{
			PgsSharedStmt *t = &sstmts[sf->stmt_base + j];

			f->stmts[j].lineno = t->lineno;
			f->stmts[j].type = t->counters.calls ? t->type : -1;
			f->stmts[j].counters = t->counters;
		}
		SpinLockRelease(&sf->mutex);
	}
	snap->cg = palloc0(sizeof(PgsSnapCg) * (hdr->ncg + 1));
	for (i = 0; i < hdr->ncg; i++)
	{
		PgsSharedCg *c = cg_at(i);
		PgsSnapCg  *s;

		if (c->key.db != MyDatabaseId)
			continue;
		s = &snap->cg[snap->ncg++];
		s->depth = c->depth;
		s->frames = palloc(sizeof(int32) * Max(c->depth, 1));
		for (int j = 0; j < c->depth; j++)
			s->frames[j] = c->frames[j] >= 0 ? map[c->frames[j]] : c->frames[j];
		SpinLockAcquire(&c->mutex);
		s->counters = c->counters;
		SpinLockRelease(&c->mutex);
	}
	LWLockRelease(hdr->lock);
	return snap;
}
