/*
 * util.c - error reporting, strict number parsing, atomic file output and
 * the signal flag shared by every pgscope subcommand.
 */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *pgs_cmd = "pgscope";
volatile sig_atomic_t pgs_stop = 0;
volatile sig_atomic_t pgs_stop_signal = 0;
volatile sig_atomic_t pgs_signals = 0;
sig_atomic_t pgs_signals_acked = 0;
void		(*volatile pgs_on_signal) (void) = NULL;

static void
on_signal(int sig)
{
	pgs_stop = 1;
	pgs_stop_signal = sig;
	pgs_signals++;
	if (pgs_on_signal)
		pgs_on_signal();
}

void
pgs_ack_stop(void)
{
	pgs_signals_acked = pgs_signals;
}

bool
pgs_stop_pending(void)
{
	return pgs_signals != pgs_signals_acked;
}

void
pgs_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a blocking wait returns EINTR and the loop checks pgs_stop */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a closed terminal: wind down as cleanly as for Ctrl-C */
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void
vmsg(const char *fmt, va_list ap)
{
	char	   *line = NULL;

	if (vasprintf(&line, fmt, ap) < 0)
	{
		fprintf(stderr, "%s: %s\n", pgs_cmd, fmt);
		return;
	}
	/* one line: server messages may carry newlines */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "%s: %s\n", pgs_cmd, line);
	free(line);
}

void
pgs_err(const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void
pgs_usage(const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(EXIT_USAGE);
}

void
pgs_die(const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(EXIT_RUNTIME);
}

bool
pgs_parse_long(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool
pgs_parse_double(const char *s, double min, double max, double *out)
{
	char	   *end;
	double		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

void *
pgs_xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		pgs_die("cannot allocate %zu bytes: out of memory", n);
	return p;
}

void *
pgs_grow(void *array, size_t *cap, size_t n, size_t elem_size)
{
	if (n < *cap)
		return array;
	*cap = *cap ? *cap * 2 : 64;
	array = realloc(array, *cap * elem_size);
	if (array == NULL)
		pgs_die("cannot allocate %zu bytes: out of memory", *cap * elem_size);
	return array;
}

char *
pgs_xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(pgs_xmalloc(n), s, n);
}

void
pgs_buf_init(PgsBuf *b)
{
	b->cap = 256;
	b->len = 0;
	b->data = pgs_xmalloc(b->cap);
	b->data[0] = '\0';
}

void
pgs_buf_append(PgsBuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		while (b->len + n + 1 > b->cap)
			b->cap *= 2;
		b->data = realloc(b->data, b->cap);
		if (b->data == NULL)
			pgs_die("cannot allocate %zu bytes: out of memory", b->cap);
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
pgs_buf_puts(PgsBuf *b, const char *s)
{
	pgs_buf_append(b, s, strlen(s));
}

void
pgs_buf_printf(PgsBuf *b, const char *fmt, ...)
{
	va_list		ap;
	int			n;
	char		small[512];

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < (int) sizeof(small))
	{
		pgs_buf_append(b, small, n);
		return;
	}
	{
		char	   *big = pgs_xmalloc(n + 1);

		va_start(ap, fmt);
		vsnprintf(big, n + 1, fmt, ap);
		va_end(ap);
		pgs_buf_append(b, big, n);
		free(big);
	}
}

void
pgs_buf_free(PgsBuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
pgs_read_file(const char *path, size_t *len)
{
	FILE	   *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	PgsBuf		b;
	char		chunk[65536];
	size_t		n;

	if (f == NULL)
		return NULL;
	pgs_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		pgs_buf_append(&b, chunk, n);
	if (ferror(f))
	{
		int			e = errno;

		if (f != stdin)
			fclose(f);
		pgs_buf_free(&b);
		errno = e ? e : EIO;
		return NULL;
	}
	if (f != stdin)
		fclose(f);
	if (len)
		*len = b.len;
	return b.data;
}

/* what is at path now, and whether writing there is something we do */
static int
output_target(const char *path, struct stat *st, bool *exists)
{
	*exists = false;
	if (lstat(path, st) != 0)
	{
		if (errno == ENOENT)
			return 0;
		return -errno;
	}
	*exists = true;
	if (S_ISLNK(st->st_mode))
		return -ELOOP;			/* never replace a symlink, never write through one */
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	if (S_ISREG(st->st_mode) || S_ISCHR(st->st_mode) || S_ISFIFO(st->st_mode))
		return 0;
	return -EINVAL;				/* block devices, sockets */
}

const char *
pgs_output_strerror(int rc)
{
	switch (-rc)
	{
		case ELOOP:
			return "it is a symbolic link (give the path it points to)";
		case EINVAL:
			return "it is neither a regular file, a character device nor a FIFO";
		case EPERM:
			return "it belongs to another user (pgscope keeps owners; remove it or write elsewhere)";
		default:
			return strerror(-rc);
	}
}

int
pgs_output_check(const char *path)
{
	struct stat st;
	bool		exists;
	int			rc;
	char	   *dir;

	if (path == NULL || strcmp(path, "-") == 0)
		return 0;
	rc = output_target(path, &st, &exists);
	if (rc != 0)
		return rc;
	if (exists)
		return access(path, W_OK) == 0 ? 0 : -errno;
	dir = pgs_xstrdup(path);
	rc = access(dirname(dir), W_OK | X_OK) == 0 ? 0 : -errno;
	free(dir);
	return rc;
}

static int
write_all(int fd, const char *data, size_t len)
{
	size_t		off = 0;

	while (off < len)
	{
		ssize_t		w = write(fd, data + off, len - off);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t) w;
	}
	return 0;
}

/* a device or FIFO: written straight through, never replaced */
static int
write_through(const char *path, const char *data, size_t len)
{
	int			fd = open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	int			rc;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
	{
		close(fd);
		return -EAGAIN;			/* it changed under us: the caller looks again */
	}
	rc = write_all(fd, data, len);
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/*
 * The new file is unnamed (O_TMPFILE) until it is complete, so a killed
 * pgscope leaves nothing; only where the file system cannot make unnamed
 * files, and for the instant between naming and renaming, it is
 * ".NAME.pgscope.PID" beside the target.  One left by a pgscope that died
 * (its pid gone) is removed by the next write to the same target.
 */
static void
remove_stale_temps(const char *dir, const char *base)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	size_t		bl = strlen(base);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		const char *n = e->d_name;
		long		pid;

		if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, ".pgscope.", 9) != 0)
			continue;
		if (!pgs_parse_long(n + 1 + bl + 9, 1, INT_MAX, &pid))
			continue;
		if (kill((pid_t) pid, 0) == 0 || errno != ESRCH)
			continue;
		unlinkat(dirfd(d), n, 0);
	}
	closedir(d);
}

/* a new file in dir for base's contents: unnamed (O_TMPFILE) where the file system can, else named *tmp */
static int
open_temp(const char *dir, const char *base, bool exists, char **tmp)
{
	int			fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666),
				rc;

	if (fd >= 0)
		return fd;
	if (asprintf(tmp, "%s/.%s.pgscope.%ld", dir, base, (long) getpid()) < 0)
	{
		*tmp = NULL;
		return -ENOMEM;
	}
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		rc = -errno;
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	if (!exists)
	{
		mode_t		um = umask(0);

		umask(um);
		if (fchmod(fd, 0666 & ~um) != 0)
		{
			rc = -errno;
			close(fd);
			unlink(*tmp);
			free(*tmp);
			*tmp = NULL;
			return rc;
		}
	}
	return fd;
}

/* the replaced file's owner and mode, on its successor */
static int
keep_owner(int fd, const struct stat *st)
{
	if ((st->st_uid != geteuid() || st->st_gid != getegid()) && fchown(fd, st->st_uid, st->st_gid) != 0)
		return -EPERM;
	if (fchmod(fd, st->st_mode & 07777) != 0)
		return -errno;
	return 0;
}

/* the unnamed file fd gets a name in dir only now, *tmp, to be renamed over the target */
static int
name_temp(int fd, const char *dir, const char *base, char **tmp)
{
	char		proc[64];
	int			rc;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (asprintf(tmp, "%s/.%s.pgscope.%ld", dir, base, (long) getpid()) < 0)
	{
		*tmp = NULL;
		return -ENOMEM;
	}
	unlink(*tmp);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, *tmp, AT_SYMLINK_FOLLOW) != 0)
	{
		rc = -errno;
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	return 0;
}

/* a regular file (or none) at path: a new inode with data renamed into place, the old mode and owner kept */
static int
replace_file(const char *path, const struct stat *st, bool exists, const char *data, size_t len)
{
	char	   *dircopy = pgs_xstrdup(path),
			   *basecopy = pgs_xstrdup(path),
			   *tmp = NULL;
	const char *dir = dirname(dircopy),
			   *base = basename(basecopy);
	int			fd,
				rc;

	remove_stale_temps(dir, base);
	if ((fd = rc = open_temp(dir, base, exists, &tmp)) < 0)
		goto cleanup;
	if ((exists && (rc = keep_owner(fd, st)) != 0) || (rc = write_all(fd, data, len)) != 0)
		goto cleanup;
	if (fsync(fd) != 0)
	{
		rc = -errno;
		goto cleanup;
	}
	if (tmp == NULL && (rc = name_temp(fd, dir, base, &tmp)) != 0)
		goto cleanup;
	rc = close(fd) != 0 ? -errno : 0;
	fd = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0)
	{
		free(tmp);
		tmp = NULL;
	}
cleanup:
	if (fd >= 0)
		close(fd);
	if (tmp)
	{
		unlink(tmp);
		free(tmp);
	}
	free(dircopy);
	free(basecopy);
	return rc;
}

int
pgs_write_file(const char *path, const char *data, size_t len)
{
	struct stat st;
	bool		exists;
	int			rc;

	if (path == NULL || strcmp(path, "-") == 0)
	{
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
			return -errno;
		return 0;
	}
	for (int tries = 0;; tries++)
	{
		rc = output_target(path, &st, &exists);
		if (rc != 0)
			return rc;
		if (!exists || S_ISREG(st.st_mode))
			break;
		rc = write_through(path, data, len);
		if (rc != -EAGAIN || tries > 3)
			return rc;
	}
	if (exists && access(path, W_OK) != 0)
		return -errno;
	return replace_file(path, &st, exists, data, len);
}

int
pgs_pipe_through(const char *const *argv, const char *in, size_t inlen, PgsBuf *out)
{
	char		tmpl[] = "/tmp/pgscope-pipe.XXXXXX";
	int			infd = mkstemp(tmpl),
				pfd[2],
				status;
	pid_t		pid;
	char		chunk[65536];
	ssize_t		n;

	/* the input goes through an unlinked file: no deadlock between a full pipe each way */
	if (infd < 0)
		return -1;
	unlink(tmpl);
	if (write_all(infd, in, inlen) != 0 || lseek(infd, 0, SEEK_SET) != 0 || pipe(pfd) != 0)
	{
		close(infd);
		return -1;
	}
	pid = fork();
	if (pid == 0)
	{
		dup2(infd, 0);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execvp(argv[0], (char *const *) argv);
		_exit(127);
	}
	close(infd);
	close(pfd[1]);
	if (pid < 0)
	{
		close(pfd[0]);
		return -1;
	}
	while ((n = read(pfd[0], chunk, sizeof(chunk))) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		pgs_buf_append(out, chunk, (size_t) n);
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* length of the valid UTF-8 sequence at s, 0 if invalid */
static int
utf8_len(const unsigned char *s)
{
	int			n;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0 && s[0] >= 0xC2)
		n = 2;
	else if ((s[0] & 0xF0) == 0xE0)
		n = 3;
	else if ((s[0] & 0xF8) == 0xF0 && s[0] <= 0xF4)
		n = 4;
	else
		return 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

bool
pgs_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	while (*p)
	{
		int			n = utf8_len(p);

		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

void
pgs_buf_json_string(PgsBuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	pgs_buf_append(b, "\"", 1);
	while (*p)
	{
		int			n = utf8_len(p);

		if (n == 0)
		{
			pgs_buf_puts(b, "\\ufffd");
			p++;
		}
		else if (n > 1)
		{
			pgs_buf_append(b, (const char *) p, n);
			p += n;
		}
		else
		{
			switch (*p)
			{
				case '"':
					pgs_buf_puts(b, "\\\"");
					break;
				case '\\':
					pgs_buf_puts(b, "\\\\");
					break;
				case '\n':
					pgs_buf_puts(b, "\\n");
					break;
				case '\r':
					pgs_buf_puts(b, "\\r");
					break;
				case '\t':
					pgs_buf_puts(b, "\\t");
					break;
				default:
					if (*p < 0x20)
						pgs_buf_printf(b, "\\u%04x", *p);
					else
						pgs_buf_append(b, (const char *) p, 1);
			}
			p++;
		}
	}
	pgs_buf_append(b, "\"", 1);
}

void
pgs_utf8_trim(char *s)
{
	size_t		n = strlen(s);
	size_t		i = n;

	/* back up over continuation bytes to the last lead byte */
	while (i > 0 && ((unsigned char) s[i - 1] & 0xC0) == 0x80 && n - i < 3)
		i--;
	if (i > 0 && ((unsigned char) s[i - 1] & 0x80))
	{
		if (utf8_len((const unsigned char *) s + i - 1) == 0)
			s[i - 1] = '\0';
	}
}
