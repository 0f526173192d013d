/*
 * cluster.h - throwaway PostgreSQL clusters for the demo and the tests:
 * initdb in a directory, loopback only, a free port, the socket inside the
 * directory, trust authentication for the user "postgres".  As root the
 * server programs run as the postgres OS user (the server refuses root).
 * With PGSCOPE_ROOT=DIR (a root of scripts/roots.sh), the cluster lives
 * inside that root and its server runs there as in a container.  Either
 * way DIR/postmaster.hostpid holds the postmaster's pid as the host sees it.
 */
#ifndef PGSCOPE_CLUSTER_H
#define PGSCOPE_CLUSTER_H

#include <limits.h>
#include <stdbool.h>

typedef struct PgsCluster
{
	char		dir[PATH_MAX];
	char		bindir[PATH_MAX];	/* as the server sees it (inside root, in root mode) */
	int			port;
	bool		running;
	/*
	 * Root mode (PGSCOPE_ROOT set at start, remembered in DIR/root): the
	 * server of a Debian root made by scripts/roots.sh, run as a container
	 * runtime runs it: chrooted, in its own pid and mount namespaces, under
	 * a small init (init_pid, a host pid) that forwards signals and reaps.
	 */
	char		root[PATH_MAX];	/* "" on the host */
	int			init_pid;
} PgsCluster;

/*
 * Creates and starts a cluster in dir (created if missing; NULL: a new
 * temporary directory) with extra postgresql.conf lines.  0 or -errno; on
 * failure a message went to stderr and nothing is left running.
 */
int pgs_cluster_start(PgsCluster *c, const char *dir, const char *const *conf, int nconf);

/* Stops a cluster (fast, then immediate) and, if remove, deletes its directory. */
int pgs_cluster_stop(PgsCluster *c, bool remove);

/* Reads dir/port back; 0 or -errno. */
int pgs_cluster_load(PgsCluster *c, const char *dir);

/* "pgscope cluster start|stop DIR [conf...]" */
int cmd_cluster(int argc, char **argv);

#endif
