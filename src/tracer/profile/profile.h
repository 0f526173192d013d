/*
 * profile.h - what the CPU profiler's BPF program and its user side share:
 * samples counted in the kernel per (process, user stack, kernel stack,
 * query), the query texts by their hash.
 */
#ifndef PGSCOPE_PROFILE_H
#define PGSCOPE_PROFILE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_PROF_QUERY_LEN 256	/* bytes of debug_query_string hashed and kept */
#define PGS_PROF_STACK_DEPTH 127	/* frames per stack (the kernel's PERF_MAX_STACK_DEPTH) */

#include "../../../extension/src/plstack.h"

struct pgs_prof_key
{
	__u32		pid;			/* the process (tgid) */
	__s32		ustack;			/* stack ids in "stacks", < 0: none (-EFAULT, -EEXIST: map full) */
	__s32		kstack;
	__u32		database;		/* MyDatabaseId: where the PL/pgSQL functions' oids are */
	__u64		query;			/* hash of the query being run (0: none) */
	__u64		plstack;		/* hash of the PL/pgSQL frames published (0: none) */
	__u32		wait;			/* off-CPU: the wait event (wait_event_info), PGS_PROF_RUNQUEUE: runnable */
	__u32		pad;
};

#define PGS_PROF_RUNQUEUE 0xFFFFFFFF	/* off the CPU but runnable: preempted, waiting for a CPU */

/* the PL/pgSQL frames of a sample, outermost first (plstack.h without the activations) */
struct pgs_prof_plstack
{
	__u32		depth;			/* frames stored */
	__u32		truncated;		/* deeper activations not stored */
	struct
	{
		__u32		fn_oid;
		__s32		lineno;
	}			frames[PGS_PLSTACK_MAX];
};

struct pgs_prof_text
{
	char		text[PGS_PROF_QUERY_LEN];
};

/* counters: indexes of the per-CPU array "counters" */
enum
{
	PGS_PROF_SAMPLES,			/* samples of traced processes */
	PGS_PROF_LOST,				/* samples the counts map had no room for */
	PGS_PROF_NO_USTACK,			/* samples without a user stack */
	PGS_PROF_NO_TEXT,			/* query texts the texts map had no room for */
	PGS_PROF_PLSTACKS,			/* samples with PL/pgSQL frames */
	PGS_PROF_BAD_PLSTACK,		/* published stacks unreadable or of another layout version */
	PGS_PROF_SWITCHES,			/* off-CPU periods counted */
	PGS_PROF_OFF_LOST,			/* off-CPU periods the maps had no room for */
	PGS_PROF_COUNTERS
};

#endif
