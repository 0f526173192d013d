/*
 * stmt_source.h - the statement tracer as a source of finished statements:
 * loads and attaches queries.bpf.c for a target (socket tracepoints,
 * the TLS calls, the executor probes it switches on per backend), polls
 * its ring buffer, decodes each event and hands it to a callback.  "pgscope queries" prints
 * them, "pgscope latency" aggregates them.
 */
#ifndef PGSCOPE_STMT_SOURCE_H
#define PGSCOPE_STMT_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"
#include "queries.h"
#include "tracer.h"

typedef struct PgsStatement
{
	uint32_t	pid;
	uint32_t	server_pid;		/* pid as the server knows it (differs in a container) */
	uint64_t	end_ns;			/* CLOCK_MONOTONIC */
	uint64_t	duration_ns;
	uint64_t	parse_ns;
	uint64_t	plan_ns;
	uint64_t	exec_ns;
	bool		split;			/* parse/plan/exec are valid */
	bool		breakdown;		/* cpu_ns and off_ns are valid */
	uint64_t	cpu_ns;
	uint64_t	off_ns[PGS_WAIT_CLASSES];
	uint64_t	blks_hit;
	uint64_t	blks_read;
	uint64_t	wal_records;
	uint64_t	wal_bytes;
	bool		error;
	char		sqlstate[6];	/* error: its SQLSTATE, "" when unknown */
	bool		truncated;
	bool		executor;		/* one of several statements of a read, timed by the executor's probes */
	bool		batch;			/* one of several statements of a read that ran before the probes were
								 * on: duration_ns is the whole batch's */
	uint32_t	batch_size;
	uint32_t	batch_index;	/* 0 for the first statement of a batch */
	bool		tls;			/* over a TLS connection */
	bool		continues;		/* more rows of the portal an earlier statement's Execute with a row limit
								 * left suspended (JDBC's fetch size): that statement's, not one of its own */
	bool		text_from_activity;	/* the text is what pg_stat_activity showed */
	bool		text_unknown;	/* no text could be had: text says why */
	PgsProtocol protocol;
	const char *database;
	const char *user;
	const char *text;
	char		appname[64];	/* application_name as it started (PgsStmtSourceOpts.appname), else "" */
	uint64_t	parse_at;		/* split: CLOCK_MONOTONIC of each phase's first start, 0: none */
	uint64_t	plan_at;
	uint64_t	exec_at;
} PgsStatement;

typedef struct PgsStmtSourceOpts
{
	uint64_t	min_ns;			/* shorter statements are dropped in the kernel */
	uint32_t	capture_len;	/* request bytes captured */
	bool		split;			/* attach the parse/plan/execute USDT probes */
	bool		breakdown;		/* attach sched_switch for on/off-CPU times */
	bool		appname;		/* each statement carries application_name */
	bool		exact_pipelines;	/* the executor probes in every backend from the start */
	bool		net;			/* each backend's client traffic too (pgs_stmt_source_net_map) */
	bool		no_usage;		/* no buffer and WAL counts per statement with breakdown (4 reads fewer) */
	double		duration;		/* seconds, < 0 until a signal */
	double		tick_seconds;	/* call tick this often (0: never) */
} PgsStmtSourceOpts;

typedef struct PgsStmtSourceStats
{
	uint64_t	seen;			/* statements the kernel saw end */
	uint64_t	delivered;		/* events decoded */
	uint64_t	lost;			/* events the ring buffer had no room for */
	uint64_t	undecodable;	/* reads that were not protocol messages (skipped to the next ReadyForQuery) */
	uint64_t	gssapi;			/* connections encrypted with GSSAPI: not traced */
	uint64_t	multi;			/* reads with several statements, timed by the executor probes */
	uint64_t	batches;		/* reads with several statements before the probes were on */
	uint64_t	batch_statements;	/* their statements, timed together */
	uint64_t	batch_seen;		/* statements from batch events (with those alone in theirs) */
	uint64_t	batch_singles;	/* "batches" of one statement after all (a ';' in a literal) */
	uint64_t	quiet;			/* statements of batches faster than --min-ms, counted in the kernel only */
	uint64_t	probed;			/* backends the executor probes were attached to */
	uint64_t	continued;		/* round trips that fetched more rows of a suspended portal (not in seen) */
} PgsStmtSourceStats;

/* names of the off-CPU slots: "" for slot 0 (no wait event) */
extern const char *const pgs_wait_class_names[PGS_WAIT_CLASSES];

typedef void (*pgs_stmt_cb) (const PgsStatement *s, void *arg);
typedef void (*pgs_tick_cb) (void *arg);

/* the summary's lines on what was not traced or not decodable, to stderr (nothing when all was) */
void pgs_stmt_source_report(const PgsStmtSourceStats *stats);

/*
 * A source driven by its caller (the agent: several at once): open loads
 * and attaches for t (which must outlive it), NULL when it cannot (said);
 * poll waits up to timeout_ms, drains its events into cb, and drops the
 * probes of backends that exited; stats reads the kernel's counters too.
 */
typedef struct PgsStmtSource PgsStmtSource;
PgsStmtSource *pgs_stmt_source_open(const PgsTarget *t, const PgsStmtSourceOpts *o, pgs_stmt_cb cb, void *arg);
int pgs_stmt_source_poll(PgsStmtSource *src, int timeout_ms);
void pgs_stmt_source_stats(PgsStmtSource *src, PgsStmtSourceStats *stats);
void pgs_stmt_source_close(PgsStmtSource *src);
/* the run time of its programs (0 unless kernel.bpf_stats_enabled is on) */
uint64_t pgs_stmt_source_run_ns(PgsStmtSource *src);

/* with PgsStmtSourceOpts.net: the map of each backend's client traffic (pid -> struct pgs_net_backend), else -1 */
int pgs_stmt_source_net_map(PgsStmtSource *src);

/* the same, until duration or a signal: 0 when it ran, 1 on a runtime failure (already said) */
int pgs_stmt_source_run(const PgsTarget *t, const PgsStmtSourceOpts *o, pgs_stmt_cb cb,
						pgs_tick_cb tick, void *arg, PgsStmtSourceStats *stats);

#endif
