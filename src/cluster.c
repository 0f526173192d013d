/*
 * cluster.c - the one implementation of throwaway clusters, used by
 * "pgscope demo" and, through "pgscope cluster", by the test harness.
 */
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static int
find_bindir(char *out, size_t len)
{
	const char *env = getenv("PGBIN");
	FILE	   *p;
	char		buf[PATH_MAX] = {0};
	char		probe[PATH_MAX + 16];

	if (env && *env)
	{
		snprintf(out, len, "%s", env);
		return 0;
	}
	p = popen("pg_config --bindir 2>/dev/null", "r");
	if (p)
	{
		if (fgets(buf, sizeof(buf), p))
			buf[strcspn(buf, "\n")] = '\0';
		pclose(p);
	}
	snprintf(probe, sizeof(probe), "%s/initdb", buf);
	if (buf[0] && access(probe, X_OK) == 0)
	{
		snprintf(out, len, "%s", buf);
		return 0;
	}
	if (access("/usr/lib/postgresql/15/bin/initdb", X_OK) == 0)
	{
		snprintf(out, len, "/usr/lib/postgresql/15/bin");
		return 0;
	}
	return -ENOENT;
}

/* Runs argv (as postgres when we are root) with output appended to logpath; exit status or -errno. */
static int
run_as_postgres(char *const argv[], const char *logpath)
{
	pid_t		pid = fork();
	int			status;

	if (pid < 0)
		return -errno;
	if (pid == 0)
	{
		int			fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0)
		{
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		if (geteuid() == 0)
		{
			struct passwd *pw = getpwnam("postgres");

			if (pw == NULL || initgroups("postgres", pw->pw_gid) != 0 ||
				setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			{
				fprintf(stderr, "cannot switch to the postgres OS user\n");
				_exit(127);
			}
		}
		execv(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int
free_port(void)
{
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	socklen_t	alen = sizeof(a);
	int			port = -1;

	if (s < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *) &a, sizeof(a)) == 0 &&
		getsockname(s, (struct sockaddr *) &a, &alen) == 0)
		port = ntohs(a.sin_port);
	close(s);
	return port > 0 ? port : -EADDRNOTAVAIL;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void
tail_log(const char *path)
{
	char		cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "tail -n 5 '%s' >&2", path);
	if (system(cmd) != 0)
		return;
}

int
pgs_cluster_load(PgsCluster *c, const char *dir)
{
	char		path[PATH_MAX + 8];
	FILE	   *f;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	if (find_bindir(c->bindir, sizeof(c->bindir)) != 0)
		return -ENOENT;
	/* a cluster whose start failed has no port file: it can still be stopped */
	snprintf(path, sizeof(path), "%s/port", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	if (fscanf(f, "%d", &c->port) != 1)
		c->port = 0;
	fclose(f);
	c->running = c->port > 0;
	return 0;
}

int
pgs_cluster_start(PgsCluster *c, const char *dir, const char *const *conf, int nconf)
{
	char		data[PATH_MAX + 8],
				log[PATH_MAX + 16],
				initlog[PATH_MAX + 16],
				confpath[PATH_MAX + 32],
				portfile[PATH_MAX + 8],
				opts[64];
	FILE	   *f;
	int			rc;

	memset(c, 0, sizeof(*c));
	if (find_bindir(c->bindir, sizeof(c->bindir)) != 0)
	{
		pgs_err("cannot start a cluster: initdb not found (install postgresql-15, or set PGBIN)");
		return -ENOENT;
	}
	if (dir == NULL)
	{
		snprintf(c->dir, sizeof(c->dir), "/tmp/pgscope-cluster.XXXXXX");
		if (mkdtemp(c->dir) == NULL)
		{
			pgs_err("cannot create a temporary directory: %s", strerror(errno));
			return -errno;
		}
	}
	else
	{
		snprintf(c->dir, sizeof(c->dir), "%s", dir);
		if (mkdir(c->dir, 0700) != 0 && errno != EEXIST)
		{
			pgs_err("cannot create %s: %s", c->dir, strerror(errno));
			return -errno;
		}
	}
	if (geteuid() == 0)
	{
		struct passwd *pw = getpwnam("postgres");

		if (pw == NULL || chown(c->dir, pw->pw_uid, pw->pw_gid) != 0)
		{
			pgs_err("cannot hand %s to the postgres OS user (the server refuses to run as root)", c->dir);
			return -EPERM;
		}
	}
	snprintf(data, sizeof(data), "%s/data", c->dir);
	snprintf(log, sizeof(log), "%s/server.log", c->dir);
	snprintf(initlog, sizeof(initlog), "%s/initdb.log", c->dir);
	{
		char		initdb[PATH_MAX + 8];
		char	   *argv[] = {initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C.UTF-8", NULL};

		snprintf(initdb, sizeof(initdb), "%s/initdb", c->bindir);
		rc = run_as_postgres(argv, initlog);
		if (rc != 0)
		{
			pgs_err("cannot initdb %s: see %s", data, initlog);
			return -EIO;
		}
	}
	snprintf(confpath, sizeof(confpath), "%s/postgresql.conf", data);
	f = fopen(confpath, "a");
	if (f == NULL)
	{
		pgs_err("cannot open %s: %s", confpath, strerror(errno));
		return -errno;
	}
	fprintf(f, "\n# pgscope throwaway cluster\nlisten_addresses = '127.0.0.1'\n"
			"unix_socket_directories = '%s'\nfsync = off\nmax_connections = 40\n", c->dir);
	for (int i = 0; i < nconf; i++)
		fprintf(f, "%s\n", conf[i]);
	fclose(f);

	for (int attempt = 0; attempt < 5; attempt++)
	{
		char		pg_ctl[PATH_MAX + 8];
		char	   *argv[] = {pg_ctl, "-D", data, "-o", opts, "-l", log, "-w", "-t", "60", "start", NULL};

		c->port = free_port();
		if (c->port < 0)
			continue;
		snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", c->bindir);
		snprintf(opts, sizeof(opts), "-p %d", c->port);
		if (run_as_postgres(argv, initlog) == 0)
		{
			c->running = true;
			snprintf(portfile, sizeof(portfile), "%s/port", c->dir);
			f = fopen(portfile, "w");
			if (f)
			{
				fprintf(f, "%d\n", c->port);
				fclose(f);
			}
			return 0;
		}
	}
	pgs_err("cannot start a server in %s: see %s", c->dir, log);
	tail_log(log);
	return -EIO;
}

/*
 * Only a directory this file made is ever removed: a directory holding
 * data/PG_VERSION, or initdb.log or port from a start that failed.
 */
static bool
is_cluster_dir(const char *dir)
{
	struct stat st;
	char		p[PATH_MAX + 32];

	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return false;
	snprintf(p, sizeof(p), "%s/data/PG_VERSION", dir);
	if (access(p, F_OK) == 0)
		return true;
	snprintf(p, sizeof(p), "%s/initdb.log", dir);
	if (access(p, F_OK) == 0)
		return true;
	snprintf(p, sizeof(p), "%s/port", dir);
	return access(p, F_OK) == 0;
}

int
pgs_cluster_stop(PgsCluster *c, bool remove)
{
	char		data[PATH_MAX + 8],
				log[PATH_MAX + 16],
				pidfile[PATH_MAX + 32],
				pg_ctl[PATH_MAX + 8];
	int			rc = 0;

	snprintf(data, sizeof(data), "%s/data", c->dir);
	snprintf(log, sizeof(log), "%s/initdb.log", c->dir);
	snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", data);
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", c->bindir);
	if (access(pidfile, F_OK) == 0)
	{
		char	   *fast[] = {pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "stop", NULL};
		char	   *imm[] = {pg_ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL};

		if (run_as_postgres(fast, log) != 0 && run_as_postgres(imm, log) != 0)
		{
			pgs_err("cannot stop the server in %s", data);
			rc = -EIO;
		}
	}
	c->running = false;
	if (remove && rc == 0 && c->dir[0] && is_cluster_dir(c->dir))
		nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

int
cmd_cluster(int argc, char **argv)
{
	PgsCluster	c;

	pgs_cmd = "pgscope cluster";
	if (argc < 3 || (strcmp(argv[1], "start") != 0 && strcmp(argv[1], "stop") != 0 &&
					 strcmp(argv[1], "restart") != 0))
		pgs_usage("usage: pgscope cluster start DIR [postgresql.conf line ...] | restart DIR | stop DIR");
	if (strcmp(argv[1], "restart") == 0)
	{
		char		data[PATH_MAX + 8],
					log[PATH_MAX + 16],
					initlog[PATH_MAX + 16],
					pg_ctl[PATH_MAX + 8],
					opts[64];

		if (!is_cluster_dir(argv[2]) || pgs_cluster_load(&c, argv[2]) != 0 || c.port <= 0)
			pgs_usage("%s is not a running throwaway cluster", argv[2]);
		snprintf(data, sizeof(data), "%s/data", c.dir);
		snprintf(log, sizeof(log), "%s/server.log", c.dir);
		snprintf(initlog, sizeof(initlog), "%s/initdb.log", c.dir);
		snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", c.bindir);
		snprintf(opts, sizeof(opts), "-p %d", c.port);
		{
			char	   *av[] = {pg_ctl, "-D", data, "-o", opts, "-l", log, "-w", "-t", "60", "-m", "fast", "restart", NULL};

			if (run_as_postgres(av, initlog) != 0)
				pgs_die("cannot restart the server in %s: see %s", c.dir, log);
		}
		return 0;
	}
	if (strcmp(argv[1], "start") == 0)
	{
		if (pgs_cluster_start(&c, argv[2], (const char *const *) argv + 3, argc - 3) != 0)
		{
			pgs_cluster_stop(&c, false);
			return EXIT_RUNTIME;
		}
		printf("%d\n", c.port);
		return 0;
	}
	if (access(argv[2], F_OK) != 0)
		return 0;				/* nothing there: already stopped and removed */
	if (!is_cluster_dir(argv[2]))
		pgs_usage("%s is not a throwaway cluster directory (no data/PG_VERSION, initdb.log or port file): not touching it",
				  argv[2]);
	if (pgs_cluster_load(&c, argv[2]) == -ENOENT)
		pgs_die("cannot stop %s: pg_ctl not found (set PGBIN)", argv[2]);
	return pgs_cluster_stop(&c, true) == 0 ? 0 : EXIT_RUNTIME;
}
