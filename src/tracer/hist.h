/*
 * hist.h - log2 latency histograms: one way to fill them and one way to print
 * them (text bars or a JSON array), for every tracer that shows latencies.
 */
#ifndef PGSCOPE_HIST_H
#define PGSCOPE_HIST_H

#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define PGS_HIST_SLOTS 40

typedef struct PgsHist
{
	uint64_t	slots[PGS_HIST_SLOTS];	/* slot i: [2^i, 2^(i+1)) microseconds; slot 0 also < 1 */
	uint64_t	count;
	uint64_t	sum_ns;
	uint64_t	max_ns;
} PgsHist;

void pgs_hist_add(PgsHist *h, uint64_t ns);
/* the slot of ns in a PgsHist (and in any array of PGS_HIST_SLOTS laid out alike) */
int pgs_hist_slot(uint64_t ns);

/*
 * Percentiles in bounded memory: the exact values of the first
 * PGS_Q_EXACT samples, then a log-linear histogram of PGS_Q_SUB buckets
 * per power of two from 1 us to 2^42 ns (73 min), whose percentiles are
 * within 1/PGS_Q_SUB (3%) of the true value.  At most 4 KiB a sketch.
 */
#define PGS_Q_EXACT 64
#define PGS_Q_SUB 32
#define PGS_Q_MIN_SHIFT 10
#define PGS_Q_OCTAVES 32
#define PGS_Q_BUCKETS (PGS_Q_OCTAVES * PGS_Q_SUB)

typedef struct PgsQuantiles
{
	uint64_t	n;
	uint64_t   *exact;			/* the samples while n <= PGS_Q_EXACT */
	size_t		exact_cap;
	uint32_t   *buckets;		/* PGS_Q_BUCKETS once n > PGS_Q_EXACT */
	uint64_t	min_ns;
	uint64_t	max_ns;
} PgsQuantiles;

void pgs_q_add(PgsQuantiles *q, uint64_t ns);
/* nearest-rank percentile p (0-100); 0 when empty */
uint64_t pgs_q_percentile(PgsQuantiles *q, double p);
void pgs_q_free(PgsQuantiles *q);
void pgs_hist_print(FILE *f, const PgsHist *h, const char *unit_label);
void pgs_hist_json(PgsBuf *b, const PgsHist *h);

#endif
