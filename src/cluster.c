/*
 * cluster.c - the one implementation of throwaway clusters, used by
 * "pgscope demo" and, through "pgscope cluster", by the test harness.
 */
#include "cluster.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* in a child: standard output and error appended to logpath */
static void
output_to(const char *logpath)
{
	int			fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd >= 0)
	{
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
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
		output_to(logpath);
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

/* ---------- root mode: a Debian root's server, run as in a container ---------- */

/* the postgres user of the root, from its own /etc/passwd (not the host's) */
static int
root_user(const char *root, uid_t *uid, gid_t *gid)
{
	char		path[PATH_MAX + 16],
				line[512];
	FILE	   *f;
	int			rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f))
	{
		unsigned	u,
					g;

		if (strncmp(line, "postgres:", 9) == 0 && sscanf(line, "postgres:%*[^:]:%u:%u:", &u, &g) == 2)
		{
			*uid = u;
			*gid = g;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* the root's server binaries: /usr/lib/postgresql/N/bin of its only N */
static int
root_bindir(const char *root, char *out, size_t len)
{
	char		path[PATH_MAX + 32];
	DIR		   *d;
	struct dirent *e;
	int			n = 0;

	snprintf(path, sizeof(path), "%s/usr/lib/postgresql", root);
	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
		{
			snprintf(out, len, "/usr/lib/postgresql/%s/bin", e->d_name);
			n++;
		}
	closedir(d);
	return n == 1 ? 0 : -ENOENT;
}

/* the path inside the root of a host path below it */
static const char *
in_root(const PgsCluster *c, const char *host_path)
{
	size_t		n = strlen(c->root);

	return c->root[0] && strncmp(host_path, c->root, n) == 0 ? host_path + n : host_path;
}

/* Runs argv (paths inside the root) chrooted, as the root's postgres user; exit status or -errno. */
static int
run_in_root(const char *root, char *const argv[], const char *logpath)
{
	uid_t		uid;
	gid_t		gid;
	pid_t		pid;
	int			status;

	if (root_user(root, &uid, &gid) != 0)
		return -ENOENT;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
	{
		output_to(logpath);
		if (chroot(root) != 0 || chdir("/") != 0 || setgroups(0, NULL) != 0 ||
			setgid(gid) != 0 || setuid(uid) != 0)
		{
			fprintf(stderr, "cannot enter %s as its postgres user: %s\n", root, strerror(errno));
			_exit(127);
		}
		execv(argv[0], argv);
		fprintf(stderr, "cannot run %s in %s: %s\n", argv[0], root, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* the container's init: pid 1 of its namespace, forwarding shutdown signals to the postmaster */
static volatile pid_t init_child = 0;

static void
init_forward(int sig)
{
	if (init_child > 0)
		kill(init_child, sig);
}

static _Noreturn void
container_init(const PgsCluster *c, uid_t uid, gid_t gid, const char *log)
{
	char		proc[PATH_MAX + 8],
				shm[PATH_MAX + 16],
				postgres[PATH_MAX + 16],
				port[16],
				data[PATH_MAX + 8];
	int			status;
	struct sigaction sa;

	prctl(PR_SET_NAME, "pgscope-init");
	snprintf(proc, sizeof(proc), "%s/proc", c->root);
	snprintf(shm, sizeof(shm), "%s/dev/shm", c->root);
	snprintf(postgres, sizeof(postgres), "%s/postgres", c->bindir);
	snprintf(port, sizeof(port), "%d", c->port);
	snprintf(data, sizeof(data), "%s/data", in_root(c, c->dir));
	/* nothing mounted here leaks to the host; the namespace's own /proc and /dev/shm */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
		mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0 ||
		chroot(c->root) != 0 || chdir("/") != 0)
		_exit(126);
	init_child = fork();
	if (init_child == 0)
	{
		int			fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		char	   *argv[] = {postgres, "-D", data, "-p", port, NULL};

		if (fd >= 0)
		{
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		setsid();
		if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
			_exit(127);
		execv(postgres, argv);
		_exit(127);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = init_forward;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	for (;;)
	{
		pid_t		w = wait(&status);

		if (w == init_child)
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		if (w < 0 && errno == ECHILD)
			_exit(0);
	}
}

/* the host pid of the container's postmaster: its init's only child */
static int
container_postmaster(int init_pid)
{
	char		path[64];
	FILE	   *f;
	int			pid = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", init_pid, init_pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

/*
 * Starts the root's server in new pid and mount namespaces: a first child
 * unshares them and forks the namespace's pid 1 (container_init), whose
 * host pid comes back through a pipe.  0 once the server accepts
 * connections (postmaster.pid says "ready"), or -errno.
 */
static int
container_start(PgsCluster *c, const char *log)
{
	uid_t		uid;
	gid_t		gid;
	int			pfd[2],
				status;
	pid_t		a;
	char		pidfile[PATH_MAX + 32];

	if (root_user(c->root, &uid, &gid) != 0 || pipe(pfd) != 0)
		return -ENOENT;
	a = fork();
	if (a < 0)
		return -errno;
	if (a == 0)
	{
		pid_t		b;

		close(pfd[0]);
		/* the container outlives this command: it must not hold its caller's output open */
		{
			int			devnull = open("/dev/null", O_RDWR);

			if (devnull >= 0)
			{
				dup2(devnull, STDIN_FILENO);
				dup2(devnull, STDOUT_FILENO);
				dup2(devnull, STDERR_FILENO);
				if (devnull > STDERR_FILENO)
					close(devnull);
			}
		}
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0)
			_exit(125);
		b = fork();
		if (b == 0)
		{
			close(pfd[1]);
			container_init(c, uid, gid, log);
		}
		if (write(pfd[1], &b, sizeof(b)) != sizeof(b))
			_exit(125);
		_exit(b > 0 ? 0 : 125);
	}
	close(pfd[1]);
	c->init_pid = 0;
	if (read(pfd[0], &c->init_pid, sizeof(c->init_pid)) != sizeof(c->init_pid))
		c->init_pid = 0;
	close(pfd[0]);
	while (waitpid(a, &status, 0) < 0 && errno == EINTR)
		;
	if (c->init_pid <= 0)
		return -ECHILD;
	snprintf(pidfile, sizeof(pidfile), "%s/data/postmaster.pid", c->dir);
	for (int i = 0; i < 600; i++)
	{
		char		line[128];
		FILE	   *f = fopen(pidfile, "r");
		bool		ready = false;

		if (f)
		{
			for (int l = 1; fgets(line, sizeof(line), f); l++)
				if (l == 8 && strncmp(line, "ready", 5) == 0)
					ready = true;
			fclose(f);
		}
		if (ready)
			return 0;
		if (kill(c->init_pid, 0) != 0)
			return -EIO;		/* the server exited: see its log */
		{
			struct timespec ts = {0, 100 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	return -ETIMEDOUT;
}

/* fast shutdown through the container's init, then harder; 0 once it is gone */
static int
container_stop(PgsCluster *c)
{
	static const int sigs[] = {SIGINT, SIGQUIT, SIGKILL};

	if (c->init_pid <= 0)
		return 0;
	for (int s = 0; s < 3; s++)
	{
		if (kill(c->init_pid, sigs[s]) != 0 && errno == ESRCH)
			return 0;
		for (int i = 0; i < 300; i++)
		{
			struct timespec ts = {0, 100 * 1000 * 1000};

			/* the init was forked by a child that exited: the host's init reaps it */
			if (kill(c->init_pid, 0) != 0)
				return 0;
			nanosleep(&ts, NULL);
		}
	}
	return -EIO;
}

/* DIR/NAME holding one line */
static void
write_line(const char *dir, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* the file name in directory dir, opened in mode */
static FILE *
open_in(const char *dir, const char *name, const char *mode)
{
	char		path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fopen(path, mode);
}

static void
write_line(const char *dir, const char *name, const char *fmt, ...)
{
	FILE	   *f = open_in(dir, name, "w");
	va_list		ap;

	if (f == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static bool
read_line(const char *dir, const char *name, char *out, size_t len)
{
	FILE	   *f = open_in(dir, name, "r");
	bool		ok;

	if (f == NULL)
		return false;
	ok = fgets(out, (int) len, f) != NULL;
	fclose(f);
	if (ok)
		out[strcspn(out, "\n")] = '\0';
	return ok;
}

/* postmaster.hostpid: the postmaster as the host sees it (the tests and pgscope --pid take that) */
static void
record_hostpid(PgsCluster *c)
{
	int			pid = 0;

	if (c->root[0])
		pid = container_postmaster(c->init_pid);
	else
	{
		char		line[64];
		char		sub[PATH_MAX + 8];

		snprintf(sub, sizeof(sub), "%s/data", c->dir);
		if (read_line(sub, "postmaster.pid", line, sizeof(line)))
			pid = atoi(line);
	}
	if (pid > 0)
		write_line(c->dir, "postmaster.hostpid", "%d", pid);
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
	if (read_line(dir, "root", c->root, sizeof(c->root)))
	{
		char		pid[32];

		if (root_bindir(c->root, c->bindir, sizeof(c->bindir)) != 0)
			return -ENOENT;
		if (read_line(dir, "init.pid", pid, sizeof(pid)))
			c->init_pid = atoi(pid);
	}
	else if (find_bindir(c->bindir, sizeof(c->bindir)) != 0)
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

/* where the server binaries are: the root's (PGSCOPE_ROOT) or this system's */
static int
cluster_bindir(PgsCluster *c)
{
	if (getenv("PGSCOPE_ROOT") && *getenv("PGSCOPE_ROOT"))
	{
		if (realpath(getenv("PGSCOPE_ROOT"), c->root) == NULL ||
			root_bindir(c->root, c->bindir, sizeof(c->bindir)) != 0)
		{
			pgs_err("cannot start a cluster in the root %s: no PostgreSQL server there (scripts/roots.sh builds roots)",
					getenv("PGSCOPE_ROOT"));
			return -ENOENT;
		}
	}
	else if (find_bindir(c->bindir, sizeof(c->bindir)) != 0)
	{
		pgs_err("cannot start a cluster: initdb not found (install postgresql-15, or set PGBIN)");
		return -ENOENT;
	}
	return 0;
}

/* the cluster's directory (dir, or a new temporary one in the root), owned by the server's user */
static int
cluster_dir(PgsCluster *c, const char *dir)
{
	if (dir == NULL)
	{
		if (strlen(c->root) + 32 > sizeof(c->dir))
			return -ENAMETOOLONG;
		memcpy(c->dir, c->root, strlen(c->root));
		strcpy(c->dir + strlen(c->root), "/tmp/pgscope-cluster.XXXXXX");
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
	if (c->root[0])
	{
		uid_t		uid;
		gid_t		gid;
		char		real[PATH_MAX];

		/* the server sees only its root: the cluster lives inside it */
		if (realpath(c->dir, real) == NULL || strncmp(real, c->root, strlen(c->root)) != 0 ||
			real[strlen(c->root)] != '/')
		{
			pgs_err("cannot start a cluster in %s: it must be inside the root %s", c->dir, c->root);
			return -EINVAL;
		}
		snprintf(c->dir, sizeof(c->dir), "%s", real);
		if (root_user(c->root, &uid, &gid) != 0 || chown(c->dir, uid, gid) != 0)
		{
			pgs_err("cannot hand %s to the postgres user of %s", c->dir, c->root);
			return -EPERM;
		}
		write_line(c->dir, "root", "%s", c->root);
	}
	else if (geteuid() == 0)
	{
		struct passwd *pw = getpwnam("postgres");

		if (pw == NULL || chown(c->dir, pw->pw_uid, pw->pw_gid) != 0)
		{
			pgs_err("cannot hand %s to the postgres OS user (the server refuses to run as root)", c->dir);
			return -EPERM;
		}
	}
	return 0;
}

/* initdb into data, then our settings (loopback only, the cluster's own socket directory) and conf */
static int
cluster_initdb(PgsCluster *c, const char *data, const char *const *conf, int nconf)
{
	char		initdb[PATH_MAX + 8],
				rdata[PATH_MAX + 8],
				initlog[PATH_MAX + 16],
				confpath[PATH_MAX + 32];
	char	   *argv[] = {initdb, "-D", rdata, "-U", "postgres", "--auth=trust", "-E", "UTF8",
	"--locale=C.UTF-8", NULL};
	FILE	   *f;

	snprintf(initlog, sizeof(initlog), "%s/initdb.log", c->dir);
	snprintf(initdb, sizeof(initdb), "%s/initdb", c->bindir);
	snprintf(rdata, sizeof(rdata), "%s", in_root(c, data));
	if ((c->root[0] ? run_in_root(c->root, argv, initlog) : run_as_postgres(argv, initlog)) != 0)
	{
		pgs_err("cannot initdb %s: see %s", data, initlog);
		return -EIO;
	}
	snprintf(confpath, sizeof(confpath), "%s/postgresql.conf", data);
	f = fopen(confpath, "a");
	if (f == NULL)
	{
		pgs_err("cannot open %s: %s", confpath, strerror(errno));
		return -errno;
	}
	fprintf(f, "\n# pgscope throwaway cluster\nlisten_addresses = '127.0.0.1'\n"
			"unix_socket_directories = '%s'\nfsync = off\nmax_connections = 40\n", in_root(c, c->dir));
	for (int i = 0; i < nconf; i++)
		fprintf(f, "%s\n", conf[i]);
	fclose(f);
	return 0;
}

/* the server of a root, as a container, on a free port (another one if that one was taken meanwhile) */
static int
cluster_run_container(PgsCluster *c, const char *log)
{
	for (int attempt = 0; attempt < 5; attempt++)
	{
		int			rc;

		c->port = free_port();
		if (c->port < 0)
			continue;
		rc = container_start(c, in_root(c, log));
		if (rc == 0)
		{
			c->running = true;
			write_line(c->dir, "init.pid", "%d", c->init_pid);
			write_line(c->dir, "port", "%d", c->port);
			record_hostpid(c);
			return 0;
		}
		container_stop(c);
		if (rc != -EIO)
			break;
	}
	return -EIO;
}

/* this system's server through pg_ctl, on a free port (another one if that one was taken meanwhile) */
static int
cluster_run_pg_ctl(PgsCluster *c, const char *data, const char *log)
{
	char		pg_ctl[PATH_MAX + 8],
				opts[64],
				initlog[PATH_MAX + 16];
	char	   *argv[] = {pg_ctl, "-D", (char *) data, "-o", opts, "-l", (char *) log, "-w", "-t", "60", "start", NULL};

	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", c->bindir);
	snprintf(initlog, sizeof(initlog), "%s/initdb.log", c->dir);
	for (int attempt = 0; attempt < 5; attempt++)
	{
		c->port = free_port();
		if (c->port < 0)
			continue;
		snprintf(opts, sizeof(opts), "-p %d", c->port);
		if (run_as_postgres(argv, initlog) == 0)
		{
			c->running = true;
			write_line(c->dir, "port", "%d", c->port);
			record_hostpid(c);
			return 0;
		}
	}
	return -EIO;
}

int
pgs_cluster_start(PgsCluster *c, const char *dir, const char *const *conf, int nconf)
{
	char		data[PATH_MAX + 8],
				log[PATH_MAX + 16];
	int			rc;

	memset(c, 0, sizeof(*c));
	if ((rc = cluster_bindir(c)) != 0 || (rc = cluster_dir(c, dir)) != 0)
		return rc;
	snprintf(data, sizeof(data), "%s/data", c->dir);
	snprintf(log, sizeof(log), "%s/server.log", c->dir);
	if ((rc = cluster_initdb(c, data, conf, nconf)) != 0)
		return rc;
	if ((c->root[0] ? cluster_run_container(c, log) : cluster_run_pg_ctl(c, data, log)) == 0)
		return 0;
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
	if (c->root[0])
	{
		if (container_stop(c) != 0)
		{
			pgs_err("cannot stop the server in %s", data);
			rc = -EIO;
		}
	}
	else if (access(pidfile, F_OK) == 0)
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
		if (c.root[0])
		{
			snprintf(log, sizeof(log), "%s/server.log", c.dir);
			if (container_stop(&c) != 0 || container_start(&c, in_root(&c, log)) != 0)
				pgs_die("cannot restart the server in %s: see %s", c.dir, log);
			write_line(c.dir, "init.pid", "%d", c.init_pid);
			record_hostpid(&c);
			return 0;
		}
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
		record_hostpid(&c);
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
