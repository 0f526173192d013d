/*
 * queries.h - what the statement tracer's BPF program and its user side
 * share: the event layout (fixed-width types only) and limits.
 */
#ifndef PGSCOPE_QUERIES_H
#define PGSCOPE_QUERIES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_MAX_REQ 4096		/* bytes of the request captured, at most */
#define PGS_NAME_LEN 64			/* NAMEDATALEN */

/* event kinds */
#define PGS_EV_STATEMENT 1		/* a finished statement */
#define PGS_EV_PARSE 2			/* a named prepared statement's Parse message */

/* flags */
#define PGS_F_ERROR 0x1			/* an ErrorResponse was sent */
#define PGS_F_TRUNCATED 0x2		/* the request was longer than captured */
#define PGS_F_SPLIT 0x4			/* parse/plan/execute times are valid */
#define PGS_F_BREAKDOWN 0x8		/* on/off-CPU times are valid */

/*
 * Off-CPU time by the wait event class the backend advertised when it was
 * switched out: 0 none (sleeping without a wait event), then PostgreSQL's
 * classes in the order of their class bytes (utils/wait_event.h), then
 * PGS_RUNQUEUE: preempted while still runnable, i.e. waiting for a CPU.
 */
#define PGS_WAIT_CLASSES 11
#define PGS_RUNQUEUE 10

struct pgs_query_event
{
	__u32		kind;
	__u32		pid;
	__u64		end_ns;			/* CLOCK_MONOTONIC at the end */
	__u64		duration_ns;
	__u64		parse_ns;
	__u64		plan_ns;
	__u64		exec_ns;
	__u64		cpu_ns;			/* on-CPU (with breakdown) */
	__u64		blks_hit;		/* shared buffers (with breakdown): at start, then the delta */
	__u64		blks_read;
	__u64		wal_records;	/* WAL (with breakdown): at start, then the delta */
	__u64		wal_bytes;
	__u64		off_ns[PGS_WAIT_CLASSES];	/* off-CPU by wait class */
	__u32		flags;
	__u32		req_len;		/* bytes in req */
	char		database[PGS_NAME_LEN];
	char		user[PGS_NAME_LEN];
	/* the first bytes of the protocol request: 'Q' + text, or 'P'/'B'... */
	char		req[PGS_MAX_REQ];
};

#endif
