/*
 * util.c - error reporting, strict number parsing, atomic file output and
 * the signal flag shared by every pgscope subcommand.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *pgs_cmd = "pgscope";
volatile sig_atomic_t pgs_stop = 0;
volatile sig_atomic_t pgs_stop_signal = 0;
void		(*volatile pgs_on_signal) (void) = NULL;

static void
on_signal(int sig)
{
	pgs_stop = 1;
	pgs_stop_signal = sig;
	if (pgs_on_signal)
		pgs_on_signal();
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
	signal(SIGPIPE, SIG_IGN);
}

static void
vmsg(const char *fmt, va_list ap)
{
	char		line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* one line: server messages may carry newlines */
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	fprintf(stderr, "%s: %s\n", pgs_cmd, line);
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

int
pgs_write_file(const char *path, const char *data, size_t len)
{
	char	   *tmp;
	int			fd;
	size_t		off = 0;

	if (path == NULL || strcmp(path, "-") == 0)
	{
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
			return -errno;
		return 0;
	}
	if (asprintf(&tmp, "%s.tmp.%ld", path, (long) getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
	{
		int			e = errno;

		free(tmp);
		return -e;
	}
	while (off < len)
	{
		ssize_t		w = write(fd, data + off, len - off);

		if (w < 0)
		{
			int			e = errno;

			if (e == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			free(tmp);
			return -e;
		}
		off += (size_t) w;
	}
	{
		int			rc = fsync(fd);
		int			e = errno;

		if (close(fd) != 0 && rc == 0)
			rc = -1, e = errno;
		if (rc == 0 && rename(tmp, path) != 0)
			rc = -1, e = errno;
		if (rc != 0)
		{
			unlink(tmp);
			free(tmp);
			return -e;
		}
	}
	free(tmp);
	return 0;
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
