/*
 * util.h - helpers every pgscope subcommand shares: the one error format,
 * strict number parsing, files written whole or not at all, and the
 * signal flag the wait loops poll.
 */
#ifndef PGSCOPE_UTIL_H
#define PGSCOPE_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* the subcommand named in messages: "pgscope plprof run: cannot ..." */
extern const char *pgs_cmd;

/* set by SIGINT/SIGTERM once pgs_catch_signals() ran */
extern volatile sig_atomic_t pgs_stop;
extern volatile sig_atomic_t pgs_stop_signal;

/* called from the signal handler when set (must be async-signal-safe) */
extern void (*volatile pgs_on_signal) (void);

void pgs_catch_signals(void);

/* "pgscope <cmd>: <message>" on stderr, one line */
void pgs_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* the same, then exit with status 2 (usage) or 1 (runtime) */
_Noreturn void pgs_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void pgs_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* whole-string integer parsing; false when s is not a number in [min, max] */
bool pgs_parse_long(const char *s, long min, long max, long *out);
bool pgs_parse_double(const char *s, double min, double max, double *out);

/* growable string */
typedef struct PgsBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} PgsBuf;

void pgs_buf_init(PgsBuf *b);
void pgs_buf_append(PgsBuf *b, const char *s, size_t n);
void pgs_buf_puts(PgsBuf *b, const char *s);
void pgs_buf_printf(PgsBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pgs_buf_free(PgsBuf *b);

/* reads a whole file (or stdin for "-"); NULL with errno set on failure */
char *pgs_read_file(const char *path, size_t *len);

/*
 * Writes data to path through a temporary file in the same directory and a
 * rename, so a reader never sees half a file; "-" or NULL writes stdout.
 * Returns 0 or -errno.
 */
int pgs_write_file(const char *path, const char *data, size_t len);

void *pgs_xmalloc(size_t n);

/* array with room for element n (doubling *cap as needed); exits when memory runs out */
void *pgs_grow(void *array, size_t *cap, size_t n, size_t elem_size);
char *pgs_xstrdup(const char *s);



/* appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD */
void pgs_buf_json_string(PgsBuf *b, const char *s);

/* cuts s (in place) before an incomplete UTF-8 sequence at its end */
void pgs_utf8_trim(char *s);
#endif
