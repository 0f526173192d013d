/*
 * shmem.c
 *		Instance-wide profile tables and activation state (needs
 *		shared_preload_libraries).
 *
 * Locking protocol (after pg_stat_statements): one LWLock guards the shape of
 * the tables: which entries exist, their keys, strings, statement slots and
 * call stacks, all written once when an entry is inserted.  Lookups, merges
 * and snapshots take it shared; inserting entries, reset, and nothing else,
 * take it exclusive.  Under the shared lock, counters change concurrently:
 * each entry's are read and written under that entry's spinlock, and a
 * function's spinlock also covers its statement slots.  A spinlock is held
 * for one entry's copy or sum at a time, never across a loop over entries
 * (a function's statements included), and whatever is computed for it (the
 * conversion to nanoseconds, whose first call may sleep while it calibrates
 * the clock) is computed before it is taken.  So a reader sees each entry
 * consistent, not a function and all its statements at one instant, as
 * pg_stat_statements guarantees nothing across entries either.  The
 * activation fields are read without a lock (each is a single aligned word)
 * and written under the header spinlock.
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

/*
 * A tracer's lease (pgscope plans --analyze): statements that start before it
 * expires are instrumented with its options, as EXPLAIN ANALYZE's are.  A
 * tracer renews it every second and ends it when it exits; a killed tracer's
 * lapses.
 */
typedef struct PgsLease
{
	int32		owner;			/* the tracer's pid, 0: a free slot */
	int32		options;		/* INSTRUMENT_* */
	Oid			db;				/* InvalidOid: every database */
	TimestampTz expires;
} PgsLease;

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
	PgsLease	leases[PGS_MAX_LEASES];	/* under mutex */
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

/*
 * Sets, renews or (options 0) ends owner's lease; the summary every
 * ExecutorStart reads first (act.instrument_any) is recomputed from the live
 * leases.
 */
bool
pgs_shared_set_lease(int owner, int options, Oid db, int64 usecs)
{
	TimestampTz now = GetCurrentTimestamp();
	PgsLease   *slot = NULL;
	uint32		any = 0;
	int			i;

	SpinLockAcquire(&hdr->mutex);
	for (i = 0; i < PGS_MAX_LEASES; i++)
		if (hdr->leases[i].owner == owner)
			slot = &hdr->leases[i];
	for (i = 0; slot == NULL && options != 0 && i < PGS_MAX_LEASES; i++)
		if (hdr->leases[i].owner == 0 || hdr->leases[i].expires <= now)
			slot = &hdr->leases[i];
	if (slot != NULL)
	{
		slot->owner = options != 0 ? owner : 0;
		slot->options = options;
		slot->db = db;
		slot->expires = options != 0 ? now + usecs : 0;
	}
	for (i = 0; i < PGS_MAX_LEASES; i++)
		if (hdr->leases[i].owner != 0 && hdr->leases[i].expires > now)
			any |= (uint32) hdr->leases[i].options;
	hdr->act.instrument_any = any;
	SpinLockRelease(&hdr->mutex);
	return slot != NULL || options == 0;
}

/*
 * Called when act.instrument_any says some lease may be live.  Read without
 * the lock, as the activation is (each field one aligned word): every
 * statement start of the instance comes here while a tracer holds a lease,
 * and a lease read half-renewed is at worst a second old or new.
 */
int
pgs_shared_instrument_options(Oid db)
{
	TimestampTz now = GetCurrentTimestamp();
	int			options = 0;
	int			i;

	for (i = 0; i < PGS_MAX_LEASES; i++)
	{
		volatile PgsLease *l = &hdr->leases[i];

		if (l->owner != 0 && l->expires > now && (l->db == InvalidOid || l->db == db))
			options |= l->options;
	}
	return options;
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
	st->act = hdr->act;
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

/* A table is full: flag it, and have it logged once, after the lock is released. */
static void
note_overflow(bool *overflow, bool *log)
{
	if (!*overflow)
		*log = true;
	*overflow = true;
}

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
		note_overflow(&hdr->source_overflow, &ms->log_source);
		return -1;
	}
	off = hdr->src_used;
	memcpy(spool + off, s, len);
	hdr->src_used += len;
	return off;
}

/* A new function entry in slot, with room for its statements if there is. */
static void
init_shared_func(int32 slot, PgsFunc *fn, MergeState *ms)
{
	PgsSharedFunc *sf = &sfuncs[slot];

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
		note_overflow(&hdr->statements_overflow, &ms->log_statements);
	sf->sig_off = pool_put(fn->signature, ms);
	sf->src_off = pool_put(fn->source, ms);
}

/*
 * key's slot in a shared table (index: key -> {key, int32 slot at slot_off};
 * *n of max slots taken): -1 when it has none yet and the lock is only
 * shared (the exclusive pass inserts it), -2 when the table is full (said
 * once through overflow and log); *created when this call took the slot (the
 * caller fills it in).
 */
static int32
table_slot(HTAB *index, const void *key, Size slot_off, int *n, int max, bool *overflow, bool *log,
		   MergeState *ms, bool *created)
{
	char	   *ix = hash_search(index, key, HASH_FIND, NULL);
	bool		found;
	int32		slot;

	*created = false;
	if (ix)
		return *(int32 *) (ix + slot_off);
	if (!ms->exclusive)
	{
		ms->missing = true;
		return -1;
	}
	if (*n >= max || (ix = hash_search(index, key, HASH_ENTER_NULL, &found)) == NULL)
	{
		note_overflow(overflow, log);
		return -2;
	}
	slot = (*n)++;
	*(int32 *) (ix + slot_off) = slot;
	*created = true;
	return slot;
}

/* fn's slot in the shared function table; -1 and -2 as for table_slot() */
static int32
func_slot(PgsFunc *fn, MergeState *ms)
{
	int32		slot;
	bool		created;

	if (fn->shared_generation == hdr->generation && fn->shared_slot >= 0)
		return fn->shared_slot;
	slot = table_slot(func_index, &fn->key, offsetof(PgsFuncIdx, slot), &hdr->nfuncs, pgs_max_functions,
					  &hdr->functions_overflow, &ms->log_functions, ms, &created);
	if (slot < 0)
		return slot;
	if (created)
		init_shared_func(slot, fn, ms);
	fn->shared_slot = slot;
	fn->shared_generation = hdr->generation;
	return slot;
}

static bool
func_unmerged(PgsFunc *fn)
{
	if (pgs_counters_unmerged(&fn->counters, &fn->merged))
		return true;
	/* statements of an activation still running, before the function ends */
	for (int i = 1; i <= fn->nstmts; i++)
		if (pgs_counters_unmerged(&fn->stmts[i].counters, &fn->merged_stmts[i]))
			return true;
	return false;
}

/* Add what fn gained since its last merge to its shared entry sf. */
static void
add_func_counters(PgsSharedFunc *sf, PgsFunc *fn)
{
	PgsCounters delta = pgs_counters_since_ns(&fn->counters, &fn->merged);
	int			n;

	SpinLockAcquire(&sf->mutex);
	pgs_counters_add(&sf->counters, &delta);
	SpinLockRelease(&sf->mutex);

	/* stmt_base and nstmts were set at insert: the LWLock covers them */
	if (sf->stmt_base < 0)
		return;
	n = Min(sf->nstmts, fn->nstmts);
	for (int i = 1; i <= n; i++)
	{
		PgsStmt    *s = &fn->stmts[i];
		PgsSharedStmt *t = &sstmts[sf->stmt_base + i];

		if (!pgs_counters_unmerged(&s->counters, &fn->merged_stmts[i]))
			continue;
		delta = pgs_counters_since_ns(&s->counters, &fn->merged_stmts[i]);
		SpinLockAcquire(&sf->mutex);
		t->lineno = s->lineno;
		t->type = s->type;
		pgs_counters_add(&t->counters, &delta);
		SpinLockRelease(&sf->mutex);
	}
}

static void
merge_func(PgsFunc *fn, void *arg)
{
	MergeState *ms = arg;
	int32		slot;

	if (!func_unmerged(fn))
		return;
	slot = func_slot(fn, ms);
	if (slot == -1)
		return;					/* retried in the exclusive pass */
	if (slot >= 0)
		add_func_counters(&sfuncs[slot], fn);
	/* merged, or dropped for lack of room: either way not retried */
	pgs_func_mark_merged(fn);
}

/* A new call-stack entry in slot for n; its frames are function slots. */
static void
init_shared_cg(int32 slot, PgsCgKey *key, PgsCgNode *n, MergeState *ms)
{
	PgsSharedCg *c = cg_at(slot);
	PgsCgNode  *p;
	int			i;

	memset(c, 0, cg_entry_size());
	c->key = *key;
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

/* n's slot in the shared call-graph table; -1 and -2 as for table_slot() */
static int32
cg_slot(PgsCgNode *n, MergeState *ms)
{
	PgsCgKey	key;
	int32		slot;
	bool		created;

	if (n->shared_generation == hdr->generation && n->shared_slot >= 0)
		return n->shared_slot;
	memset(&key, 0, sizeof(key));
	key.db = MyDatabaseId;
	key.hash = n->hash;
	slot = table_slot(cg_index, &key, offsetof(PgsCgIdx, slot), &hdr->ncg, pgs_max_callgraphs,
					  &hdr->callgraph_overflow, &ms->log_callgraph, ms, &created);
	if (slot < 0)
		return slot;
	if (created)
		init_shared_cg(slot, &key, n, ms);
	n->shared_slot = slot;
	n->shared_generation = hdr->generation;
	return slot;
}

static void
merge_cg(PgsCgNode *n, void *arg)
{
	MergeState *ms = arg;
	int32		slot;

	if (!pgs_counters_unmerged(&n->counters, &n->merged))
		return;
	slot = cg_slot(n, ms);
	if (slot == -1)
		return;					/* retried in the exclusive pass */
	if (slot >= 0)
	{
		PgsSharedCg *c = cg_at(slot);
		PgsCounters delta = pgs_counters_since_ns(&n->counters, &n->merged);

		SpinLockAcquire(&c->mutex);
		pgs_counters_add(&c->counters, &delta);
		SpinLockRelease(&c->mutex);
	}
	/* merged, or dropped for lack of room: either way not retried */
	n->merged = n->counters;
}

/* the server log's line, once, that a shared table filled (when it just did) */
static void
log_full(bool filled, const char *what, const char *setting, int size, const char *consequence)
{
	if (filled)
		ereport(LOG, (errmsg("pgscope: shared %s is full (pgscope.%s = %d); %s", what, setting, size, consequence)));
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
	log_full(ms.log_functions, "function table", "max_functions", pgs_max_functions,
			 "further functions are not collected");
	log_full(ms.log_statements, "statement table", "max_statements", pgs_max_statements,
			 "statements of further functions are not collected");
	log_full(ms.log_callgraph, "call graph table", "max_callgraphs", pgs_max_callgraphs,
			 "further call stacks are not collected");
	log_full(ms.log_source, "source pool", "max_source_bytes", pgs_max_source_bytes,
			 "further sources are not kept");
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

/* Copy function sf into f.  The LWLock is held (shared). */
static void
snap_shared_func(PgsSharedFunc *sf, PgsSnapFunc *f)
{
	/* written once at insert, under the exclusive lock */
	f->key = sf->key;
	f->kind = sf->kind;
	f->seq = sf->seq;
	f->signature = sf->sig_off >= 0 ? pstrdup(spool + sf->sig_off) : NULL;
	f->source = sf->src_off >= 0 ? pstrdup(spool + sf->src_off) : NULL;
	f->nstmts = sf->stmt_base >= 0 ? sf->nstmts : 0;
	f->stmts = palloc0(sizeof(PgsSnapStmt) * (f->nstmts + 1));

	/* merged concurrently: one entry at a time under its spinlock */
	SpinLockAcquire(&sf->mutex);
	f->counters = sf->counters;
	SpinLockRelease(&sf->mutex);
	for (int j = 1; j <= f->nstmts; j++)
	{
		PgsSharedStmt *t = &sstmts[sf->stmt_base + j];
		PgsSnapStmt *s = &f->stmts[j];

		SpinLockAcquire(&sf->mutex);
		s->lineno = t->lineno;
		s->type = t->type;
		s->counters = t->counters;
		SpinLockRelease(&sf->mutex);
		if (s->counters.calls == 0)
			s->type = -1;
	}
}

/*
 * Copy call stack c into s; map turns shared function slots into indexes of
 * the snapshot.  The LWLock is held (shared).
 */
static void
snap_shared_cg(PgsSharedCg *c, const int32 *map, PgsSnapCg *s)
{
	s->depth = c->depth;
	s->frames = palloc(sizeof(int32) * Max(c->depth, 1));
	for (int j = 0; j < c->depth; j++)
		s->frames[j] = c->frames[j] >= 0 ? map[c->frames[j]] : c->frames[j];
	SpinLockAcquire(&c->mutex);
	s->counters = c->counters;
	SpinLockRelease(&c->mutex);
}

/*
 * The shared tables' entries of this database.  The shared LWLock keeps the
 * set of entries fixed while the loops run (merges may add to counters
 * meanwhile; an insert waits); no spinlock is held across an entry.
 */
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
		map[i] = -2;
		if (sfuncs[i].key.db != MyDatabaseId)
			continue;
		map[i] = snap->nfuncs;
		snap_shared_func(&sfuncs[i], &snap->funcs[snap->nfuncs++]);
	}
	snap->cg = palloc0(sizeof(PgsSnapCg) * (hdr->ncg + 1));
	for (i = 0; i < hdr->ncg; i++)
	{
		PgsSharedCg *c = cg_at(i);

		if (c->key.db != MyDatabaseId)
			continue;
		snap_shared_cg(c, map, &snap->cg[snap->ncg++]);
	}
	LWLockRelease(hdr->lock);
	return snap;
}
