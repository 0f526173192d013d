/*
 * pgscope.c
 *		Module entry point: configuration parameters, the clock and the
 *		conversion of counters to nanoseconds, and the wiring of the executor
 *		hooks (plugin.c) and shared tables (shmem.c).
 *
 * Loaded three ways: from shared_preload_libraries (shared tables,
 * instance-wide and per-pid activation), from session_preload_libraries or
 * LOAD (session profiling only), or implicitly when an SQL function of the
 * extension is first called.
 */
#include "postgres.h"

#include <math.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "pgscope.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

bool		pgs_use_tsc = false;
bool		pgs_loaded_at_startup = false;

uint64
pgs_clock_ns_out_of_line(void)
{
	return pgs_clock_ns();
}

static uint64 anchor_ticks;
static uint64 anchor_ns;
static double ns_per_tick = 0.0;

/*
 * The TSC is used only where the kernel says it is invariant and is its own
 * clocksource (so it is synchronised across CPUs); anything else falls back
 * to CLOCK_MONOTONIC.
 */
static bool
tsc_is_reliable(void)
{
#if PGS_HAVE_TSC
	FILE	   *f;
	char		buf[64] = {0};
	bool		ok = false;

	f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) != NULL && strncmp(buf, "tsc", 3) == 0)
		ok = true;
	fclose(f);
	return ok;
#else
	return false;
#endif
}

void
pgs_clock_init(void)
{
	pgs_use_tsc = tsc_is_reliable();
	anchor_ticks = pgs_ticks();
	anchor_ns = pgs_clock_ns();
}

/*
 * Ticks are converted with a ratio measured against CLOCK_MONOTONIC over at
 * least 20 ms since the module was loaded (relative error below 1e-5).  The
 * ratio is fixed once taken, so converted sums never go backwards.
 */
uint64
pgs_ticks_to_ns(uint64 ticks)
{
	if (!pgs_use_tsc)
		return ticks;
	if (unlikely(ns_per_tick == 0.0))
	{
		uint64		t,
					n;

		for (;;)
		{
			t = pgs_ticks();
			n = pgs_clock_ns();
			if (n - anchor_ns >= 20000000)
				break;
			pg_usleep(1000);
		}
		ns_per_tick = (double) (n - anchor_ns) / (double) (t - anchor_ticks);
	}
	return (uint64) llround((double) ticks * ns_per_tick);
}

/* Counters of the local profile in nanoseconds, for a snapshot. */
PgsCounters
pgs_counters_ns(const PgsCounters *ticks)
{
	PgsCounters ns = *ticks;

	ns.total = pgs_ticks_to_ns(ticks->total);
	ns.self = pgs_ticks_to_ns(ticks->self);
	ns.max = pgs_ticks_to_ns(ticks->max);
	return ns;
}

/*
 * What cur gained since merged, in nanoseconds, for pgs_counters_add() into a
 * shared entry; its max is cur's own, which that keeps if it is larger.  Both
 * sides are converted before subtracting, so however many merges it takes, a
 * shared sum is the conversion of the local one: no rounding accumulates.
 */
PgsCounters
pgs_counters_since_ns(const PgsCounters *cur, const PgsCounters *merged)
{
	PgsCounters delta;

	delta.calls = cur->calls - merged->calls;
	delta.errors = cur->errors - merged->errors;
	delta.total = pgs_ticks_to_ns(cur->total) - pgs_ticks_to_ns(merged->total);
	delta.self = pgs_ticks_to_ns(cur->self) - pgs_ticks_to_ns(merged->self);
	delta.max = pgs_ticks_to_ns(cur->max);
	return delta;
}

static void
assign_enabled(bool newval, void *extra)
{
	pgs_session_enabled = newval;
	/* plugin.c installs its statement hooks when profiling is on */
	pgs_refresh_active();
}

/* the integer settings that exist only when loaded at server start */
typedef struct IntSetting
{
	const char *name;
	const char *desc;
	int		   *var;
	int			boot,
				min,
				max;
	GucContext	context;
	int			flags;
} IntSetting;

static const IntSetting startup_settings[] = {
	{"pgscope.max_functions", "Function versions the shared tables hold.",
	&pgs_max_functions, 2000, 10, 1000000, PGC_POSTMASTER, 0},
	{"pgscope.max_statements", "Statements the shared tables hold (plprofiler's max_lines).",
	&pgs_max_statements, 200000, 10, 100000000, PGC_POSTMASTER, 0},
	{"pgscope.max_callgraphs", "Distinct call stacks the shared tables hold.",
	&pgs_max_callgraphs, 20000, 10, 10000000, PGC_POSTMASTER, 0},
	{"pgscope.max_source_bytes", "Bytes of function source and signatures kept in shared memory.",
	&pgs_max_source_bytes, 4 * 1024 * 1024, 1024, INT_MAX / 2, PGC_POSTMASTER, GUC_UNIT_BYTE},
	{"pgscope.max_global_seconds",
		"Instance-wide or per-pid profiling switches itself off after this long unless an expiry is given (0: never).",
	&pgs_max_global_seconds, 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S},
};

void
_PG_init(void)
{
	pgs_loaded_at_startup = process_shared_preload_libraries_in_progress;

	pgs_clock_init();

	DefineCustomBoolVariable("pgscope.enabled",
							 "Profiles PL/pgSQL in this session.",
							 "Takes effect at the next statement; switching it off keeps the data collected.",
							 &pgs_session_enabled, false, PGC_USERSET, 0,
							 NULL, assign_enabled, NULL);
	/*
	 * The table sizes shape shared memory, so they exist only when loaded
	 * at server start: PostgreSQL refuses PGC_POSTMASTER variables later.
	 * Loaded into a session, the call-graph depth is a superuser setting.
	 */
	DefineCustomIntVariable("pgscope.max_stack_depth",
							"Call-graph depth kept; deeper frames are folded into one marker frame.",
							NULL, &pgs_max_stack_depth, 100, 2, 1000,
							pgs_loaded_at_startup ? PGC_POSTMASTER : PGC_SUSET,
							0, NULL, NULL, NULL);
	if (pgs_loaded_at_startup)
		for (int i = 0; i < lengthof(startup_settings); i++)
		{
			const IntSetting *v = &startup_settings[i];

			DefineCustomIntVariable(v->name, v->desc, NULL, v->var, v->boot, v->min, v->max,
									v->context, v->flags, NULL, NULL, NULL);
		}
	MarkGUCPrefixReserved("pgscope");

	if (pgs_loaded_at_startup)
		pgs_shmem_init();
	pgs_plugin_init();
}
