/*
 * lwlocks.c - "pgscope lwlocks": LWLock waits of the whole cluster per
 * tranche and mode (waits, total and max wait, log2 histograms; with
 * --acquisitions also how often each was taken), aggregated in the kernel
 * by lwlocks.bpf.c and printed every interval or at the end.
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expo.h"
#include "hist.h"
#include "lwlocks.h"
#include "lwlocks.skel.h"
#include "tracer.h"
#include "util.h"

static const char *const lw_modes[] = {"exclusive", "shared", "wait-until-free"};

typedef struct Row
{
	char		name[PGS_LW_NAME + 1];
	uint32_t	mode;
	uint64_t	acquisitions;
	PgsHist		hist;
} Row;

typedef struct LwOpts
{
	bool		json;
	bool		acquisitions;
	bool		show_hist;
} LwOpts;

static int
cmp_rows(const void *a, const void *b)
{
	const Row  *x = a,
			   *y = b;

	if (x->hist.sum_ns != y->hist.sum_ns)
		return x->hist.sum_ns < y->hist.sum_ns ? 1 : -1;
	return x->acquisitions < y->acquisitions ? 1 : x->acquisitions > y->acquisitions ? -1 : 0;
}

/* sums one entry's per-CPU values into the row of its tranche name and mode */
static void
fill_row(PgsRows *rows, const void *k, const void *v, int ncpu)
{
	const struct pgs_lw_key *key = k;
	const struct pgs_lw_stats *vals = v;
	Row		   *all = rows->rows,
			   *r = NULL;
	char		name[PGS_LW_NAME + 1] = "";

	for (int i = 0; i < ncpu; i++)
		if (vals[i].name[0])
			memcpy(name, vals[i].name, PGS_LW_NAME);
	if (!name[0])
		snprintf(name, sizeof(name), "tranche@%llx", (unsigned long long) key->tranche);
	for (size_t i = 0; i < rows->n; i++)
		if (all[i].mode == key->mode && strcmp(all[i].name, name) == 0)
			r = &all[i];
	if (r == NULL)
	{
		r = pgs_rows_add(rows);
		memcpy(r->name, name, sizeof(r->name));
		r->mode = key->mode;
	}
	for (int i = 0; i < ncpu; i++)
	{
		r->acquisitions += vals[i].acquisitions;
		r->hist.count += vals[i].waits;
		r->hist.sum_ns += vals[i].total_ns;
		if (vals[i].max_ns > r->hist.max_ns)
			r->hist.max_ns = vals[i].max_ns;
		for (int s = 0; s < PGS_LW_SLOTS && s < PGS_HIST_SLOTS; s++)
			r->hist.slots[s] += vals[i].hist[s];
	}
}

/* tranches of the same name and mode merged, most waited first */
static Row *
collect(struct lwlocks_bpf *skel, size_t *nrows)
{
	return pgs_map_rows(bpf_map__fd(skel->maps.stats), sizeof(struct pgs_lw_key), sizeof(struct pgs_lw_stats),
						sizeof(Row), fill_row, cmp_rows, nrows);
}

static void
print_rows(const Row *rows, size_t n, const LwOpts *o, const char *when)
{
	PgsBuf		b;

	pgs_buf_init(&b);
	if (o->json)
	{
		for (size_t i = 0; i < n; i++)
		{
			const Row  *r = &rows[i];

			b.len = 0;
			pgs_buf_printf(&b, "{\"time\":\"%s\",\"tranche\":", when);
			pgs_buf_json_string(&b, r->name);
			pgs_buf_printf(&b, ",\"mode\":\"%s\",", r->mode < 3 ? lw_modes[r->mode] : "?");
			if (o->acquisitions)
				pgs_buf_printf(&b, "\"acquisitions\":%llu,", (unsigned long long) r->acquisitions);
			pgs_buf_printf(&b, "\"waits\":%llu,\"total_wait_ms\":%.3f,\"max_wait_ms\":%.3f,\"histogram\":",
						   (unsigned long long) r->hist.count, r->hist.sum_ns / 1e6, r->hist.max_ns / 1e6);
			pgs_hist_json(&b, &r->hist);
			pgs_buf_puts(&b, "}\n");
			fputs(b.data, stdout);
		}
	}
	else
	{
		printf("\n%s\n%-28s %-16s", when, "TRANCHE", "MODE");
		if (o->acquisitions)
			printf(" %14s", "ACQUISITIONS");
		printf(" %10s %12s %12s\n", "WAITS", "TOTAL_MS", "MAX_MS");
		for (size_t i = 0; i < n; i++)
		{
			const Row  *r = &rows[i];

			printf("%-28s %-16s", r->name, r->mode < 3 ? lw_modes[r->mode] : "?");
			if (o->acquisitions)
				printf(" %14llu", (unsigned long long) r->acquisitions);
			printf(" %10llu %12.3f %12.3f\n", (unsigned long long) r->hist.count, r->hist.sum_ns / 1e6,
				   r->hist.max_ns / 1e6);
		}
		if (o->show_hist)
			for (size_t i = 0; i < n; i++)
				if (rows[i].hist.count)
				{
					printf("\n%s (%s) wait times\n", rows[i].name, rows[i].mode < 3 ? lw_modes[rows[i].mode] : "?");
					pgs_hist_print(stdout, &rows[i].hist, "usecs");
				}
	}
	fflush(stdout);
	pgs_buf_free(&b);
}

/* the command's state: its options, and the program once attached */
typedef struct Lw
{
	LwOpts		o;
	double		interval;		/* -i */
	struct lwlocks_bpf *skel;
} Lw;

/* every -i seconds: the cumulative table so far */
static void
print_tick(void *arg)
{
	Lw		   *lw = arg;
	size_t		n;
	Row		   *rows = collect(lw->skel, &n);
	char		hms[32],
				iso[48];

	pgs_mono_to_clock((uint64_t) (pgs_now() * 1e9), hms, sizeof(hms), iso, sizeof(iso));
	print_rows(rows, n, &lw->o, lw->o.json ? iso : hms);
	free(rows);
}

static const char usage_text[] =
	"usage: pgscope lwlocks [--pid PID | -D DATADIR | --bin PATH] [-i SEC] [--acquisitions] [--hist]\n"
	"                       [--json] [--duration SEC]\n"
	"  LWLock waits of the whole cluster per tranche and mode: waits, total and max wait, log2\n"
	"  histograms (--hist); --acquisitions also counts every acquisition (costly); prints every\n"
	"  -i seconds (cumulative) or at the end; needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsOptSpec opts[] = {
	PGS_OPT_NUMBER("interval", 'i', PGS_ARG_DOUBLE, Lw, interval, 0.1, 86400, "seconds from 0.1 to 86400"),
	PGS_OPT_FLAG("acquisitions", Lw, o.acquisitions),
	PGS_OPT_FLAG("hist", Lw, o.show_hist),
	PGS_OPT_END
};

static const PgsCommand lwlocks_command =
	{"pgscope lwlocks", usage_text, opts, 0};

/* the program attached: NULL when LWLock waits cannot be traced (said) */
static struct lwlocks_bpf *
attach(const PgsTarget *t, bool acquisitions)
{
	struct lwlocks_bpf *skel;

	PGS_SKEL_OPEN(lwlocks, skel, t);
	bpf_program__set_autoload(skel->progs.on_acquire, acquisitions);
	PGS_SKEL_LOAD(lwlocks, skel);
	if (!(skel->links.on_wait_start = pgs_attach_probe(skel->progs.on_wait_start, t, "lwlock__wait__start")) ||
		!(skel->links.on_wait_done = pgs_attach_probe(skel->progs.on_wait_done, t, "lwlock__wait__done")))
	{
		pgs_err("LWLock waits unavailable: %s has no USDT probes postgresql:lwlock__wait__start/done (a build without --enable-dtrace)", t->bin);
		goto cleanup;
	}
	if (acquisitions && !(skel->links.on_acquire = pgs_attach_probe(skel->progs.on_acquire, t, "lwlock__acquire")))
		pgs_err("acquisition counts unavailable: no USDT probe postgresql:lwlock__acquire in %s", t->bin);
	PGS_SKEL_ATTACHED(lwlocks, skel);
}

int
cmd_lwlocks(int argc, char **argv)
{
	PgsTracing	tr;
	Lw			lw = {0};
	PgsLoop		loop = {.tick = print_tick, .arg = &lw};
	size_t		n;
	Row		   *rows;
	char		hms[32],
				iso[48];
	uint64_t	waits = 0;

	pgs_command_start(&lwlocks_command, &lw, argc, argv, &tr);
	lw.o.json = tr.to.json;
	if ((lw.skel = attach(&tr.t, lw.o.acquisitions)) == NULL)
		return EXIT_RUNTIME;
	loop.what = "LWLock waits";
	loop.tick_seconds = lw.interval;
	pgs_tracer_loop(&loop, &tr.t, tr.to.duration);
	rows = collect(lw.skel, &n);
	pgs_mono_to_clock((uint64_t) (pgs_now() * 1e9), hms, sizeof(hms), iso, sizeof(iso));
	print_rows(rows, n, &lw.o, lw.o.json ? iso : "totals");
	for (size_t i = 0; i < n; i++)
		waits += rows[i].hist.count;
	fprintf(stderr, "%s: %llu LWLock waits in %zu tranche/mode pairs\n", pgs_cmd, (unsigned long long) waits, n);
	free(rows);
	PGS_SKEL_DESTROY(lwlocks, lw.skel);
	return pgs_tracer_status();
}

/* ---------- what the agent exports: waits and wait time per tranche ---------- */

static void *
part_open(const PgsTarget *t)
{
	return attach(t, false);
}

static void
part_render(void *p, const char *labels, PgsExpo *e)
{
	size_t		n;
	Row		   *rows = collect(p, &n);

	for (size_t i = 0; i < n; i++)
	{
		PgsBuf		l;

		pgs_buf_init(&l);
		pgs_buf_puts(&l, labels);
		pgs_expo_label(&l, "tranche", rows[i].name);
		pgs_expo_label(&l, "mode", rows[i].mode < 3 ? lw_modes[rows[i].mode] : "?");
		pgs_expo_sample(e, "pgscope_lwlock_waits_total", "counter", "LWLock waits, by tranche and mode.", l.data,
						(double) rows[i].hist.count);
		pgs_expo_sample(e, "pgscope_lwlock_wait_seconds_total", "counter", "Time spent waiting for LWLocks, by tranche and mode.",
						l.data, rows[i].hist.sum_ns / 1e9);
		pgs_buf_free(&l);
	}
	free(rows);
}

static void
part_close(void *p)
{
	PGS_SKEL_DESTROY(lwlocks, (struct lwlocks_bpf *) p);
}

const PgsAgentPart pgs_lwlocks_part = {"lwlocks", part_open, part_render, part_close, NULL};
