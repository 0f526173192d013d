/*
 * stmt_source.h - the statement tracer as a source of finished statements:
 * loads and attaches bpf/queries.bpf.c for a target, polls its ring buffer,
 * decodes each event and hands it to a callback.  "pgscope queries" prints
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
	bool		truncated;
	PgsProtocol protocol;
	const char *database;
	const char *user;
	const char *text;
} PgsStatement;

typedef struct PgsStmtSourceOpts
{
	uint64_t	min_ns;			/* shorter statements are dropped in the kernel */
	uint32_t	capture_len;	/* request bytes captured */
	bool		split;			/* attach the parse/plan/execute USDT probes */
	bool		breakdown;		/* attach sched_switch for on/off-CPU times */
	double		duration;		/* seconds, < 0 until a signal */
	double		tick_seconds;	/* call tick this often (0: never) */
} PgsStmtSourceOpts;

typedef struct PgsStmtSourceStats
{
	uint64_t	seen;			/* statements the kernel saw end */
	uint64_t	delivered;		/* events decoded */
	uint64_t	prepares;		/* round trips that only prepared a statement */
	uint64_t	lost;			/* events the ring buffer had no room for */
} PgsStmtSourceStats;

/* names of the off-CPU slots: "" for slot 0 (no wait event) */
extern const char *const pgs_wait_class_names[PGS_WAIT_CLASSES];

typedef void (*pgs_stmt_cb) (const PgsStatement *s, void *arg);
typedef void (*pgs_tick_cb) (void *arg);

/* 0 when it ran (until duration or a signal), 1 on a runtime failure (already said) */
int pgs_stmt_source_run(const PgsTarget *t, const PgsStmtSourceOpts *o, pgs_stmt_cb cb,
						pgs_tick_cb tick, void *arg, PgsStmtSourceStats *stats);

#endif
