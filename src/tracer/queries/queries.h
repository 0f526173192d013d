/*
 * queries.h - what the statement tracer's BPF program and its user side
 * share: the event layout (fixed-width types only), flags, counters and
 * limits.
 */
#ifndef PGSCOPE_QUERIES_H
#define PGSCOPE_QUERIES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_MAX_REQ 8192		/* bytes of a read captured, at most (the server reads 8 KB at a time) */
#define PGS_MAX_TEXT 1024		/* bytes of a statement's text read from the backend */
#define PGS_NAME_LEN 64			/* NAMEDATALEN */

/* event kinds */
#define PGS_EV_STATEMENT 1		/* a finished statement */
#define PGS_EV_PARSE 2			/* a named prepared statement's Parse message */
#define PGS_EV_BATCH 3			/* a read of several statements that ran before the executor probes were on */
#define PGS_EV_READ 4			/* a read that prepared or bound without executing (for the next batch's texts) */

/* flags */
#define PGS_F_ERROR 0x1			/* it raised an error */
#define PGS_F_TRUNCATED 0x2		/* the request was longer than captured */
#define PGS_F_SPLIT 0x4			/* parse/plan/execute times are valid */
#define PGS_F_BREAKDOWN 0x8		/* on/off-CPU times are valid */
#define PGS_F_EXECUTOR 0x10		/* timed by the executor's probes (several statements in one read) */
#define PGS_F_ACTIVITY 0x20		/* text[] holds the backend's pg_stat_activity text */
#define PGS_F_TLS 0x40			/* seen through the server's TLS calls */
#define PGS_F_BATCH_START 0x80	/* PGS_EV_READ: this read starts a batch (the backend wants the probes) */
#define PGS_F_PACKED 0x100		/* the request's bytes follow the text's text_len bytes, not at req */
#define PGS_F_CONTINUES 0x200	/* an Execute that fetches more rows of a portal an earlier Execute with a
								 * row limit left suspended: the same statement to the server, not counted
								 * as one (PGS_C_CONTINUED) */

/* counters (a per-CPU array) */
#define PGS_C_LOST 0			/* events the ring buffer had no room for */
#define PGS_C_ENDED 1			/* statements that ended */
#define PGS_C_UNDECODABLE 2		/* reads whose bytes were not protocol messages: skipped to the next ReadyForQuery */
#define PGS_C_GSSAPI 3			/* connections encrypted with GSSAPI: not traced */
#define PGS_C_MULTI 4			/* reads with several statements timed by the executor probes */
#define PGS_C_BATCH 5			/* reads with several statements before the probes were on */
#define PGS_C_QUIET 6			/* statements of such reads that ended faster than min_ns, error-free:
								 * counted here, never sent (their batch is in PGS_C_BATCH) */
#define PGS_C_CONTINUED 7		/* PGS_F_CONTINUES round trips (not in PGS_C_ENDED) */
#define PGS_NCOUNTERS 8

/* the executor probes, attached to the backends that send several statements in one go */
#define PGS_PROBE_QUERY_START 0	/* query__start: a simple Query begins */
#define PGS_PROBE_EXEC_START 1	/* query__execute__start: PortalRun begins */
#define PGS_PROBE_EXEC_DONE 2	/* query__execute__done */
#define PGS_PROBE_ABORT 3		/* transaction__abort: an error ended the statement */
#define PGS_NPROBES 4

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
	__u32		unit;			/* PGS_F_EXECUTOR: Query message << 16 | statement of it (0-based);
								 * PGS_EV_BATCH: the Execute and Query messages of the read */
	__u32		text_len;		/* bytes in text */
	__u32		req_len;		/* bytes in req */
	__u32		req_off;		/* where the first whole message of req starts (a read may begin
								 * with the rest of a message) */
	__u32		read_seq;		/* the backend's reads, counted: consecutive batches are consecutive */
	char		sqlstate[8];	/* PGS_F_ERROR: the ErrorResponse's code (5 characters), "" unknown */
	__u32		lead;			/* PGS_EV_BATCH: statements whose message began in the previous read */
	__u32		done;			/* PGS_EV_BATCH: statements the server answered as done (CommandComplete,
								 * PortalSuspended, EmptyQueryResponse) */
	__u32		server_pid;		/* pid in the server's own namespace (a container's), 0: unknown */
	__u32		quiet;			/* PGS_EV_BATCH: the backend's batches before this one that were
								 * counted in the kernel only (PGS_C_QUIET), since its last batch event */
	__u32		group;			/* PGS_EV_BATCH: which Sync group (or simple Query) of the read it answered
								 * (0: the first; the server answers each with its ReadyForQuery) */
	char		database[PGS_NAME_LEN];
	char		user[PGS_NAME_LEN];
	char		appname[PGS_NAME_LEN];	/* application_name as the statement started (read_appname), when it
										 * begins like a traceparent ("00-"), else "" */
	__u64		parse_at;		/* --split: when its first parse, plan and execution began (0: none) */
	__u64		plan_at;
	__u64		exec_at;
	char		text[PGS_MAX_TEXT];	/* PGS_F_ACTIVITY: the statement's text as the backend reports it */
	/* the messages of the read that brought the statement: 'Q' + text, or 'P'/'B'/'E'... */
	char		req[PGS_MAX_REQ];
};

#endif
