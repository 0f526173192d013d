/*
 * pgscope.h
 *		Structures shared by the parts of the pgscope PL/pgSQL profiler: the
 *		counters every store keeps, the per-backend ("local") profile the
 *		executor hooks fill, the snapshot form both local and shared data are
 *		read through, and the entry points of each source file.
 *
 * Time is kept in clock ticks in backend-local data (TSC ticks where the CPU
 * has an invariant TSC, nanoseconds otherwise) and converted to nanoseconds
 * only when data leaves the backend: when merged into shared memory or read
 * through SQL.  Nothing is ever truncated per statement.
 */
#ifndef PGSCOPE_H
#define PGSCOPE_H

#include "postgres.h"

#include "miscadmin.h"
#include "plpgsql.h"

/*
 * Everything shared between our source files is hidden from the dynamic
 * symbol table: calls stay direct and the per-statement flag below is read
 * without a GOT indirection.
 */
#define PGS_INTERNAL __attribute__((visibility("hidden")))

/* ---------- clock ---------- */

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define PGS_HAVE_TSC 1
#else
#define PGS_HAVE_TSC 0
#endif
#include <time.h>

extern PGS_INTERNAL bool pgs_use_tsc;
extern PGS_INTERNAL uint64 pgs_clock_ns_out_of_line(void);

static inline uint64
pgs_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64) ts.tv_sec * UINT64CONST(1000000000) + (uint64) ts.tv_nsec;
}

/* The per-statement clock: one rdtsc (~7 ns here) instead of a vDSO call (~16 ns). */
static inline uint64
pgs_ticks(void)
{
#if PGS_HAVE_TSC
	if (likely(pgs_use_tsc))
		return __rdtsc();
#endif
	/* out of line: an inlined timespec would add a stack canary to each hook */
	return pgs_clock_ns_out_of_line();
}

extern PGS_INTERNAL void pgs_clock_init(void);
extern PGS_INTERNAL uint64 pgs_ticks_to_ns(uint64 ticks);

/* ---------- identity of a function version ---------- */

typedef enum PgsFuncKind
{
	PGS_KIND_FUNCTION,
	PGS_KIND_PROCEDURE,
	PGS_KIND_TRIGGER,
	PGS_KIND_EVENT_TRIGGER,
	PGS_KIND_DO
} PgsFuncKind;

/*
 * A function version is (oid, xmin, tid) of its pg_proc row, so CREATE OR
 * REPLACE starts a new profile.  A DO block has oid 0 and carries a 64-bit
 * hash of its source in xmin/blk, so repeated runs of the same block add up.
 * The struct is used as a hash key: padding is explicit and zeroed.
 */
typedef struct PgsFuncKey
{
	Oid			db;
	Oid			oid;
	uint32		xmin;
	uint32		blk;
	uint16		off;
	uint16		pad;
} PgsFuncKey;

/* ---------- counters ---------- */

/*
 * What is counted for a statement, a function version and a call stack, in
 * every store: the backend-local profile (ticks), the shared tables and the
 * snapshots (nanoseconds).  It is embedded in each of them and copied whole;
 * sums go through pgs_counters_add(), and the conversion to nanoseconds
 * through the two functions below, so the units change in one place.  Call
 * stacks count neither errors nor a maximum (both stay zero).
 */
typedef struct PgsCounters
{
	uint64		calls;			/* a statement's executions, a function's or a
								 * stack's calls */
	uint64		errors;			/* of those, ended by an error */
	uint64		total;			/* inclusive, outermost activations only */
	uint64		self;			/* minus nested statements and called functions */
	uint64		max;			/* longest single run */
} PgsCounters;

static inline void
pgs_counters_add(PgsCounters *dst, const PgsCounters *src)
{
	dst->calls += src->calls;
	dst->errors += src->errors;
	dst->total += src->total;
	dst->self += src->self;
	dst->max = Max(dst->max, src->max);
}

/*
 * Whether cur has anything the shared tables lack.  A run that ends always
 * adds a call, so comparing calls would do; total and self cost nothing more.
 */
static inline bool
pgs_counters_unmerged(const PgsCounters *cur, const PgsCounters *merged)
{
	return cur->calls != merged->calls || cur->self != merged->self ||
		cur->total != merged->total;
}

/* ticks to nanoseconds (pgscope.c) */
extern PGS_INTERNAL PgsCounters pgs_counters_ns(const PgsCounters *ticks);
extern PGS_INTERNAL PgsCounters pgs_counters_since_ns(const PgsCounters *cur,
													  const PgsCounters *merged);

/* ---------- backend-local profile (ticks) ---------- */

typedef struct PgsStmt
{
	PgsCounters counters;		/* calls: executions */
	int32		lineno;
	int32		type;			/* PLpgSQL_stmt_type, -1 when never seen */
	/* where it sits, from the function's statement tree (kept by a reset) */
	uint32		list;			/* its statement list, 1.., 0 = none */
	uint32		parent;			/* stmtid of the statement owning that list */
	uint16		pos;			/* index in that list (saturates) */
	uint8		seqflags;		/* PGS_SEQ_* */
	int32		active;			/* open executions (recursion): only the outermost counts in total */
} PgsStmt;

/* nothing but PL/pgSQL's own bookkeeping runs ... */
#define PGS_SEQ_WRAP 0x1		/* between the end of any statement of its list
								 * and this one, the list's first (integer
								 * FOR, LOOP: the next iteration) */
#define PGS_SEQ_HEAD 0x2		/* between the start of its parent and this,
								 * the first of the list run first */
#define PGS_SEQ_TAIL 0x4		/* between the end of a statement of one of
								 * its lists and its own end */

typedef struct PgsFunc
{
	PgsFuncKey	key;			/* hash key: must be first */
	PgsCounters counters;		/* self: minus called functions */
	int32		nstmts;			/* statements are stmts[1..nstmts] */
	int32		active;			/* open profiled activations (recursion) */
	PgsStmt    *stmts;
	/* what the shared tables already have, of the function and per statement */
	PgsCounters merged;
	PgsCounters *merged_stmts;	/* [0..nstmts], like stmts */
	int32		kind;			/* PgsFuncKind */
	char	   *signature;
	char	   *source;			/* NULL when unknown */
	uint64		seq;			/* creation order, newest version wins */
	int32		shared_slot;	/* cached index into the shared table */
	uint32		shared_generation;
	int32		snap_index;		/* scratch while a snapshot is built */
} PgsFunc;

/*
 * Call graph as a trie: one node per distinct call stack.  fn == NULL marks
 * the folded frame that stands for everything deeper than
 * pgscope.max_stack_depth.
 */
typedef struct PgsCgNode
{
	PgsFunc    *fn;
	struct PgsCgNode *parent;
	struct PgsCgNode *child;
	struct PgsCgNode *sibling;
	uint64		hash;			/* of the whole path, for the shared table */
	int32		depth;
	PgsCounters counters;		/* calls, total, self */
	PgsCounters merged;			/* what the shared tables already have */
	int32		shared_slot;
	uint32		shared_generation;
} PgsCgNode;

/* ---------- snapshot: what SQL reads, from either store (nanoseconds) ---------- */

typedef struct PgsSnapStmt
{
	int32		lineno;
	int32		type;
	PgsCounters counters;
} PgsSnapStmt;

typedef struct PgsSnapFunc
{
	PgsFuncKey	key;
	int32		kind;
	const char *signature;
	const char *source;
	uint64		seq;
	PgsCounters counters;
	int32		nstmts;
	PgsSnapStmt *stmts;			/* [1..nstmts] */
} PgsSnapFunc;

typedef struct PgsSnapCg
{
	int32		depth;
	int32	   *frames;			/* index into the snapshot's funcs, -1 = folded marker,
								 * -2 = unknown */
	PgsCounters counters;
} PgsSnapCg;

typedef struct PgsSnapshot
{
	int			nfuncs;
	PgsSnapFunc *funcs;
	int			ncg;
	PgsSnapCg  *cg;
} PgsSnapshot;

/* ---------- plugin.c: the executor hooks ---------- */

extern PGS_INTERNAL bool pgs_session_enabled;
extern PGS_INTERNAL int	pgs_max_stack_depth;
extern PGS_INTERNAL bool pgs_loaded_at_startup;

extern PGS_INTERNAL void pgs_plugin_init(void);
extern PGS_INTERNAL void pgs_refresh_active(void);
extern PGS_INTERNAL void pgs_local_reset(void);
extern PGS_INTERNAL bool pgs_plugin_slot_owned(void);
extern PGS_INTERNAL bool pgs_plugin_chained(void);
extern PGS_INTERNAL uint64 pgs_callbacks_seen(void);
extern PGS_INTERNAL void pgs_merge_local(bool force);

/* ---------- frames.c: the frame stack published for samplers (plstack.h) ---------- */

#include "plstack.h"

/* a lease's option bit (outside the executor's INSTRUMENT_* bits): publish the frame stack */
#define PGS_LEASE_FRAMES (1 << 30)

extern PGDLLEXPORT struct pgs_plstack pgscope_plstack;
extern PGS_INTERNAL bool pgs_publish;	/* a tracer holds a 'frames' lease */
extern PGS_INTERNAL void pgs_publish_call(PLpgSQL_execstate *estate, PLpgSQL_function *func,
										  void (*plpgsql_callback) (void *));
extern PGS_INTERNAL void pgs_publish_return(PLpgSQL_execstate *estate);
extern PGS_INTERNAL void pgs_publish_reset(void);

/* ---------- local.c: the backend-local profile store ---------- */

extern PGS_INTERNAL void pgs_local_init(void);
extern PGS_INTERNAL PgsFunc *pgs_local_function(PLpgSQL_function *func,
												const char *do_source);
extern PGS_INTERNAL PgsCgNode *pgs_local_cg_child(PgsCgNode *parent, PgsFunc *fn);
extern PGS_INTERNAL void pgs_local_clear(bool in_place);
extern PGS_INTERNAL void pgs_local_mark_merged(void);
extern PGS_INTERNAL void pgs_func_mark_merged(PgsFunc *fn);
extern PGS_INTERNAL uint64 pgs_local_calls(void);
extern PGS_INTERNAL PgsSnapshot *pgs_local_snapshot(void);
extern PGS_INTERNAL int64 pgs_func_id(const PgsFuncKey *key);

/* iteration over the local profile for the merge in shmem.c */
typedef void (*pgs_func_visitor) (PgsFunc *fn, void *arg);
typedef void (*pgs_cg_visitor) (PgsCgNode *node, void *arg);
extern PGS_INTERNAL void pgs_local_foreach(pgs_func_visitor fv, pgs_cg_visitor cv, void *arg);

/* ---------- stmttree.c: a function's statement tree ---------- */

extern PGS_INTERNAL void pgs_number_statements(PgsFunc *fn, PLpgSQL_function *func);

/* ---------- shmem.c: shared tables and instance-wide activation ---------- */

extern PGS_INTERNAL int	pgs_max_functions;
extern PGS_INTERNAL int	pgs_max_statements;
extern PGS_INTERNAL int	pgs_max_callgraphs;
extern PGS_INTERNAL int	pgs_max_source_bytes;
extern PGS_INTERNAL int	pgs_max_global_seconds;

/*
 * Instance-wide and per-pid activation, at the start of the shared header.
 * Read without a lock on every call (each field is one aligned word),
 * written under the header spinlock.
 */
typedef struct PgsActivation
{
	bool		global_on;
	int			pid;
	int64		global_expires;	/* TimestampTz, 0 = never */
	int64		pid_expires;
	int			collect_interval;
	uint32		generation;		/* bumped by a shared reset */
	uint32		instrument_any;	/* options some tracer's lease asks for, 0: none (shmem.c) */
} PgsActivation;

extern PGS_INTERNAL PgsActivation *pgs_activation;	/* NULL without preload */

/* The per-call test; only when it says maybe are the expiry times checked. */
static inline bool
pgs_shared_may_want_me(void)
{
	return pgs_activation != NULL &&
		(pgs_activation->global_on || pgs_activation->pid == MyProcPid);
}

extern PGS_INTERNAL void pgs_shmem_init(void);
/* the instrument options of the live leases (pgscope_instrument) for a statement of database db */
extern PGS_INTERNAL int pgs_shared_instrument_options(Oid db);
#define PGS_MAX_LEASES 8
/* a lease: false when every slot holds another owner's live lease */
extern PGS_INTERNAL bool pgs_shared_set_lease(int owner, int options, Oid db, int64 usecs);
extern PGS_INTERNAL bool pgs_shared_available(void);
extern PGS_INTERNAL bool pgs_shared_wants_me(void);
extern PGS_INTERNAL void pgs_shared_merge(void);
extern PGS_INTERNAL void pgs_shared_reset(void);
extern PGS_INTERNAL PgsSnapshot *pgs_shared_snapshot(void);

typedef struct PgsSharedStatus
{
	PgsActivation act;			/* a copy, taken under the spinlock */
	bool		functions_overflow;
	bool		statements_overflow;
	bool		callgraph_overflow;
	bool		source_overflow;
	int			nfuncs;
	int			nstmts;
	int			ncg;
} PgsSharedStatus;

extern PGS_INTERNAL void pgs_shared_status(PgsSharedStatus *st);
extern PGS_INTERNAL void pgs_shared_set_global(bool on, int64 expire_usecs);
extern PGS_INTERNAL void pgs_shared_set_pid(int pid, int64 expire_usecs);
extern PGS_INTERNAL void pgs_shared_set_interval(int seconds);
extern PGS_INTERNAL int	pgs_shared_collect_interval(void);

/* ---------- helpers (sqlapi.c) ---------- */

extern PGS_INTERNAL const char *pgs_stmt_typename(int type);
extern PGS_INTERNAL const char *pgs_kind_name(int kind);

#endif							/* PGSCOPE_H */
