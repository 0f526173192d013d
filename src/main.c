/*
 * main.c - the pgscope command: one binary, one table of subcommands.  The
 * PL/pgSQL profiler's commands live under "plprof"; the eBPF tracer's
 * commands join this table as they are built.
 */
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "demo.h"
#include "plprof.h"
#include "agent.h"
#include "tracer_cmds.h"
#include "util.h"

#ifndef PGSCOPE_VERSION
#define PGSCOPE_VERSION "0.1"
#endif

static const struct
{
	const char *name;
	int			(*fn) (int argc, char **argv);
	const char *help;
}			commands[] = {
	{"plprof", cmd_plprof, "PL/pgSQL profiler: run, monitor, save, list, show, delete, report, export, import"},
	{"demo", cmd_demo, "profile a TPC-B-style workload on a throwaway cluster, before and after an index"},
	{"targets", cmd_targets, "eBPF: list the running PostgreSQL servers one can trace"},
	{"queries", cmd_queries, "eBPF: one line per finished statement of a running server"},
	{"latency", cmd_latency, "eBPF: statement latency histograms and per-query percentiles"},
	{"locks", cmd_locks, "eBPF: heavyweight lock waits with holders, deadlocks, row locks, wait-for graph"},
	{"lwlocks", cmd_lwlocks, "eBPF: LWLock waits per tranche and mode for the whole cluster"},
	{"wal", cmd_wal, "eBPF: WAL records by resource manager and type, per backend, flushes, checkpoints"},
	{"io", cmd_io, "eBPF: buffer hits and reads, read/write latency per relation; syscall bytes and fsyncs per backend"},
	{"agent", cmd_agent, "eBPF: an always-on agent serving Prometheus metrics of every cluster's statements"},
	{"net", cmd_net, "eBPF: client traffic per backend: bytes, requests, serving vs waiting for the client"},
	{"plans", cmd_plans, "eBPF: the plan each slow statement ran with, as EXPLAIN prints it; --analyze: actual rows"},
	{"profile", cmd_profile, "eBPF: CPU flame graphs of the cluster, each stack under its query"},
	/* the tests' fixture (and the demo's machinery): works, but not listed as a user command */
	{"cluster", cmd_cluster, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: pgscope COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help)
			fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "  version  print the version\n\n\"pgscope COMMAND --help\" tells more.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2)
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
	{
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
	{
		printf("pgscope %s\n", PGSCOPE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	pgs_usage("unknown command \"%s\" (see pgscope --help)", argv[1]);
}
