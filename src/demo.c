/*
 * demo.c - "pgscope demo": the profiler's story in one command.  A throwaway
 * cluster, a TPC-B-style PL/pgSQL workload whose account lookups scan a whole
 * index, a profiled run, the missing index, a second profiled run, and what
 * changed.  The cluster is stopped on every way out.
 */
#include "demo.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "conn.h"
#include "plprof.h"
#include "util.h"

extern const char pgs_demo_schema[];
extern const char pgs_demo_workload[];

static PgsCluster demo_cluster;
static bool demo_started = false;

static void
stop_demo_cluster(void)
{
	if (demo_started)
	{
		demo_started = false;
		pgs_cluster_stop(&demo_cluster, true);
	}
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* profiles the workload into dataset name and report path; returns seconds taken */
static double
profile_run(const char *conninfo, const char *name, const char *path, const char *title)
{
	char	   *argv[] = {"run", "-d", (char *) conninfo, "-c", (char *) pgs_demo_workload,
		"-o", (char *) path, "--save", (char *) name, "--title", (char *) title, NULL};
	double		t0 = now_s();
	int			rc = cmd_plprof_run_argv(sizeof(argv) / sizeof(argv[0]) - 1, argv);

	pgs_cmd = "pgscope demo";
	if (rc != 0)
		pgs_die("the profiled run \"%s\" failed", name);
	return now_s() - t0;
}

/*
 * Where the entry point's time goes: the callee of the top-level function
 * with the largest inclusive time, and its share of the entry point's time.
 */
static void
hottest_callee(PGconn *c, const char *name, char *sig, size_t siglen, double *share)
{
	const char *params[1] = {name};
	PGresult   *r = pgs_query_or_die(c, "read the dataset",
									 "SELECT e->'stack'->>1, 100 * (e->>'total_ns')::numeric / nullif(("
									 "         SELECT sum((x->>'total_ns')::numeric) FROM jsonb_array_elements(d.profile->'callgraph') x "
									 "          WHERE jsonb_array_length(x->'stack') = 1), 0) "
									 "  FROM pgscope_dataset d, jsonb_array_elements(d.profile->'callgraph') e "
									 " WHERE d.name = $1 AND jsonb_array_length(e->'stack') = 2 "
									 " ORDER BY (e->>'total_ns')::bigint DESC LIMIT 1",
									 1, params);

	if (PQntuples(r) == 0)
		pgs_die("the dataset \"%s\" has no call stacks", name);
	snprintf(sig, siglen, "%s", PQgetvalue(r, 0, 0));
	*share = atof(PQgetvalue(r, 0, 1));
	PQclear(r);
}

/* --out DIR (the reports' directory, returned) and --pg-major N (the root's server for N) */
static const char *
demo_options(int argc, char **argv)
{
	const char *outdir = "pgscope-demo";

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			outdir = argv[++i];
		else if (strcmp(argv[i], "--pg-major") == 0 && i + 1 < argc)
		{
			/* another major's stock server: the Debian root scripts/roots.sh built for it */
			long		m;
			char		root[64];

			if (!pgs_parse_long(argv[++i], 10, 99, &m))
				pgs_usage("--pg-major takes a PostgreSQL major version such as 17, not \"%s\"", argv[i]);
			snprintf(root, sizeof(root), "/var/cache/pgscope/roots/%ld", m);
			if (m != 15 && access(root, F_OK) != 0)
				pgs_die("no server for PostgreSQL %ld here: scripts/roots.sh %ld builds one (in %s)", m, m, root);
			if (m != 15)
				setenv("PGSCOPE_ROOT", root, 1);
		}
		else if (strcmp(argv[i], "--help") == 0)
		{
			printf("usage: pgscope demo [--out DIR] [--pg-major N]   (reports go to DIR, default ./pgscope-demo;\n"
				   "       --pg-major runs it on the stock server of scripts/roots.sh's root for N)\n");
			exit(0);
		}
		else
			pgs_usage("unknown argument \"%s\" (usage: pgscope demo [--out DIR] [--pg-major N])", argv[i]);
	}
	return outdir;
}

/* the throwaway cluster with pgscope preloaded, its schema created: a connection to it */
static PGconn *
demo_start(char *conninfo, size_t len)
{
	const char *conf[] = {"shared_preload_libraries = 'pgscope'"};
	PgsConnOpts o = {0};
	PGconn	   *c;
	PGresult   *r;

	printf("demo: starting a throwaway PostgreSQL cluster with pgscope preloaded\n");
	fflush(stdout);
	if (pgs_cluster_start(&demo_cluster, NULL, conf, 1) != 0)
	{
		pgs_cluster_stop(&demo_cluster, true);
		pgs_die("cannot start the demo cluster");
	}
	demo_started = true;
	snprintf(conninfo, len, "host=127.0.0.1 port=%d user=postgres dbname=postgres", demo_cluster.port);
	o.dbname = conninfo;
	c = pgs_connect(&o);
	printf("demo: creating 300,000 accounts without an index on aid, and the tpcb() functions\n");
	fflush(stdout);
	r = PQexec(c, pgs_demo_schema);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		pgs_die("cannot create the demo schema: %s", PQerrorMessage(c));
	PQclear(r);
	if (pgs_stop)
		pgs_die("interrupted");
	return c;
}

int
cmd_demo(int argc, char **argv)
{
	const char *outdir;
	char		conninfo[PATH_MAX + 64],
				before[PATH_MAX + 16],
				after[PATH_MAX + 16],
				abs_out[PATH_MAX];
	char		top_before[512],
				top_after[512];
	double		share_before,
				share_after,
				t_before,
				t_after;
	PGconn	   *c;

	pgs_cmd = "pgscope demo";
	outdir = demo_options(argc, argv);
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
		pgs_die("cannot create %s: %s", outdir, strerror(errno));
	if (realpath(outdir, abs_out) == NULL)
		pgs_die("cannot resolve %s: %s", outdir, strerror(errno));
	snprintf(before, sizeof(before), "%s/before.html", abs_out);
	snprintf(after, sizeof(after), "%s/after.html", abs_out);
	pgs_catch_signals();
	atexit(stop_demo_cluster);
	c = demo_start(conninfo, sizeof(conninfo));
	printf("demo: profiling 300 tpcb() calls\n");
	fflush(stdout);
	t_before = profile_run(conninfo, "before", before, "TPC-B before the index on aid");
	hottest_callee(c, "before", top_before, sizeof(top_before), &share_before);
	if (pgs_stop)
		pgs_die("interrupted");
	printf("demo: adding the missing index: CREATE INDEX ON pgbench_accounts (aid)\n");
	fflush(stdout);
	PQclear(pgs_query_or_die(c, "create the index", "CREATE INDEX ON pgbench_accounts (aid)", 0, NULL));
	PQclear(pgs_query_or_die(c, "analyze", "ANALYZE pgbench_accounts", 0, NULL));
	printf("demo: profiling the same 300 calls again\n");
	fflush(stdout);
	t_after = profile_run(conninfo, "after", after, "TPC-B after the index on aid");
	hottest_callee(c, "after", top_after, sizeof(top_after), &share_after);
	PQfinish(c);
	printf("\n");
	printf("before the index: %7.2f s; tpcb() spends %5.1f%% of its time in %s\n", t_before, share_before, top_before);
	printf("after the index:  %7.2f s; tpcb() spends %5.1f%% of its time in %s\n", t_after, share_after, top_after);
	printf("the index made the workload %.1fx faster\n", t_after > 0 ? t_before / t_after : 0.0);
	printf("reports:\n  %s\n  %s\n", before, after);
	stop_demo_cluster();
	return 0;
}
