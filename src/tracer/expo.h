/*
 * expo.h - Prometheus text exposition gathered from many parts (every
 * tracer of every cluster the agent follows): samples are filed under their
 * metric family, declared with its type and help at first use, and written
 * family by family, each with its HELP and TYPE once.  A tracer describes
 * what it adds to the agent with a PgsAgentPart.
 */
#ifndef PGSCOPE_EXPO_H
#define PGSCOPE_EXPO_H

#include <stdint.h>

#include "tracer.h"
#include "util.h"

typedef struct PgsExpo PgsExpo;

PgsExpo *pgs_expo_new(void);
void pgs_expo_free(PgsExpo *e);

/* a label pair appended to b (a comma first unless b is empty), its value escaped */
void pgs_expo_label(PgsBuf *b, const char *key, const char *value);

/* one sample: name{labels} v (labels without braces, "" for none) */
void pgs_expo_sample(PgsExpo *e, const char *name, const char *type, const char *help, const char *labels, double v);

/* a histogram: counts per bucket (not cumulative) with upper bounds le, total observations (+Inf), their sum */
void pgs_expo_hist(PgsExpo *e, const char *name, const char *help, const char *labels, const double *le,
				   const uint64_t *counts, int nbuckets, uint64_t total, double sum);

/*
 * A histogram from log2 microsecond slots (slot i: [2^i, 2^(i+1)) us, slot 0
 * also below 1 us): buckets le = 2^(i+1) us in seconds, +Inf, _sum, _count.
 */
void pgs_expo_log2_hist(PgsExpo *e, const char *name, const char *help, const char *labels,
						const uint64_t *slots, int nslots, double sum_seconds);

/* every family, in the order they first appeared, appended to out */
void pgs_expo_write(PgsExpo *e, PgsBuf *out);

/* a wait of one backend that a statement's span shows as an event */
typedef struct PgsWaitEvent
{
	uint64_t	start_ns;		/* CLOCK_MONOTONIC */
	uint64_t	duration_ns;
	const char *name;			/* the event's: "pgscope.lock_wait" */
	const char *type;			/* "transactionid" */
	const char *mode;			/* "ShareLock" */
	char		object[96];		/* what was waited for, by number: "transaction 1234" */
} PgsWaitEvent;

/* what a tracer adds to the agent, per cluster: attached by open, read into e by render */
typedef struct PgsAgentPart
{
	const char *name;			/* "wal" */
	void	   *(*open) (const PgsTarget *t);	/* NULL: not attached (said) */
	void		(*render) (void *part, const char *labels, PgsExpo *e);	/* labels: the cluster's */
	void		(*close) (void *part);
	/* NULL, or: the waits of pid that ended within [from_ns, to_ns], at most max, into out; their count */
	int			(*waits) (void *part, uint32_t pid, uint64_t from_ns, uint64_t to_ns, PgsWaitEvent *out, int max);
} PgsAgentPart;

/* the net part over the statement tracer's own map of client traffic (PgsStmtSourceOpts.net), for pgs_net_part */
void	   *pgs_net_part_over(int map_fd);

extern const PgsAgentPart pgs_wal_part,
			pgs_lwlocks_part,
			pgs_locks_part,
			pgs_net_part,
			pgs_io_part;

#endif
