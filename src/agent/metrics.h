/*
 * metrics.h - what the agent keeps between scrapes: bounded aggregates of
 * the statements of every attached cluster, and their Prometheus text
 * exposition.  Fed by the tracer loop, read by the HTTP thread: every call
 * takes the lock.
 */
#ifndef PGSCOPE_AGENT_METRICS_H
#define PGSCOPE_AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stmt_source.h"
#include "util.h"

/* upper bounds: cardinality and memory stay bounded whatever the workload */
#define PGS_AGENT_MAX_SERIES	1000	/* (cluster, database, user) triples; more go to "other" */
#define PGS_AGENT_MAX_QUERIES	5000	/* normalized texts tracked as candidates for the top N */
#define PGS_AGENT_QUERY_TEXT	1024	/* bytes of a normalized text kept */

typedef struct PgsAgentMetrics PgsAgentMetrics;

/* the agent's own figures, refreshed by the tracer loop before a scrape is rendered */
typedef struct PgsAgentSelf
{
	int			targets;		/* clusters attached now */
	uint64_t	attaches;		/* attaches since start */
	uint64_t	attach_failures;
	uint64_t	events_lost;	/* ring buffer full, over every source since start */
	uint64_t	undecodable;	/* reads skipped to the next ReadyForQuery */
	uint64_t	bpf_run_ns;		/* the programs' run time (kernel.bpf_stats_enabled), 0: unknown */
	bool		bpf_stats;		/* whether bpf_run_ns is measured */
	bool		otlp;			/* spans are sent: the figures below */
	uint64_t	spans_exported,
				spans_dropped,
				span_failures,
				spans_queued,
				bad_traceparent;
} PgsAgentSelf;

PgsAgentMetrics *pgs_agent_metrics_new(int top);
void pgs_agent_metrics_free(PgsAgentMetrics *m);

/* one finished statement of the cluster in data directory cluster */
void pgs_agent_metrics_add(PgsAgentMetrics *m, const char *cluster, const PgsStatement *s);
/* how many queries get series of their own */
void pgs_agent_metrics_set_top(PgsAgentMetrics *m, int top);
/* the other tracers' families (expo.h), served after the statements' */
void pgs_agent_metrics_set_extra(PgsAgentMetrics *m, const PgsBuf *text);
void pgs_agent_metrics_set_self(PgsAgentMetrics *m, const PgsAgentSelf *self);

/* the exposition (text format 0.0.4) into out */
void pgs_agent_metrics_render(PgsAgentMetrics *m, PgsBuf *out);

/* the stable id of a normalized text: 16 hex digits of its 64-bit FNV-1a hash */
void pgs_agent_queryid(const char *normalized, char out[17]);

#endif
