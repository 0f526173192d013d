/*
 * otlp.h - the agent's OpenTelemetry traces: one span per statement kept by
 * head sampling (errors and slow statements always), as OTLP/HTTP JSON,
 * batched by a thread of its own through a bounded queue with retry and
 * backoff; the tracer never waits on the network, and what the queue cannot
 * hold is counted as dropped.
 */
#ifndef PGSCOPE_AGENT_OTLP_H
#define PGSCOPE_AGENT_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "expo.h"
#include "stmt_source.h"

#define PGS_OTLP_QUEUE 8192		/* spans waiting for the exporter at most */
#define PGS_OTLP_BATCH 512		/* spans per request at most */

typedef struct PgsOtlp PgsOtlp;

typedef struct PgsOtlpOpts
{
	const char *url;			/* http://HOST:PORT[/v1/traces] */
	double		sample_ratio;	/* 0..1 of the statements without a sampled parent */
	double		slow_ms;		/* statements this slow are always kept */
	bool		raw_query;		/* db.query.text as sent, not normalized */
} PgsOtlpOpts;

typedef struct PgsOtlpStats
{
	uint64_t	exported;		/* spans the receiver accepted */
	uint64_t	dropped;		/* spans lost: queue full, or the receiver refused them for good */
	uint64_t	failures;		/* requests that failed (retried) */
	uint64_t	bad_traceparent;	/* traceparent comments that were malformed (ignored) */
	uint64_t	queued;			/* waiting now */
} PgsOtlpStats;

/* whether url is one we can post to (http://HOST:PORT[/PATH]); a usage check */
bool pgs_otlp_url_ok(const char *url);

/* starts the exporter thread; NULL with why */
PgsOtlp *pgs_otlp_start(const PgsOtlpOpts *o, char *why, size_t len);
/* the waits a kept span shows as events (PgsAgentPart.waits over a cluster's parts) */
typedef int (*PgsOtlpWaits) (void *arg, uint32_t pid, uint64_t from_ns, uint64_t to_ns, PgsWaitEvent *out, int max);

#define PGS_OTLP_MAX_WAITS 32	/* wait events per span at most (the last ones) */

/*
 * One finished statement of the server at server_port (0: unknown); waits
 * (NULL: none) is asked for the waits within a span that is kept.  Never
 * blocks on the network.
 */
void pgs_otlp_statement(PgsOtlp *x, const PgsStatement *s, int server_port, PgsOtlpWaits waits, void *arg);
void pgs_otlp_stats(PgsOtlp *x, PgsOtlpStats *st);
/* the counters of from added to to's (queued: from's alone is not added) */
void pgs_otlp_stats_add(PgsOtlpStats *to, const PgsOtlpStats *from);
/* sends what is queued (for up to 3 s), then stops the thread; its last counters into last (NULL: not wanted) */
void pgs_otlp_stop(PgsOtlp *x, PgsOtlpStats *last);

/*
 * A W3C traceparent in a sqlcommenter comment at the start or the end of the
 * statement (traceparent='00-<32 hex>-<16 hex>-<2 hex>'): 1 and its parts
 * (lowercase hex, NUL-terminated), 0 when there is none, -1 when one is
 * there but malformed.
 */
int pgs_traceparent(const char *text, char trace_id[33], char span_id[17], unsigned *flags);
/* the same from an application_name that is one (00-...: 55 characters), as Npgsql sets it; 0 for other names */
int pgs_traceparent_appname(const char *appname, char trace_id[33], char span_id[17], unsigned *flags);

#endif
