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
void pgs_hist_print(FILE *f, const PgsHist *h, const char *unit_label);
void pgs_hist_json(PgsBuf *b, const PgsHist *h);

#endif
