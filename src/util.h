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

/*
 * A signal interrupts the server wait it arrives in (pgs_next_result cancels
 * the statement); once the command has seen it and winds down, it calls
 * pgs_ack_stop() so that its clean-up queries run; a further signal
 * interrupts those too.
 */
void pgs_ack_stop(void);
bool pgs_stop_pending(void);

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
 * Writes data to path whole or not at all; "-" or NULL writes stdout.  A
 * regular file (or none) is replaced by a new file renamed into place, with
 * the old one's mode and owner (refused when they cannot be kept); a
 * character device or FIFO is written straight through; a symlink, a
 * directory, a block device or a socket is refused.  Returns 0 or -errno
 * (pgs_output_strerror() says it in words).
 */
int pgs_write_file(const char *path, const char *data, size_t len);

/* 0 when pgs_write_file(path) can be expected to work (checked before long work), or -errno */
int pgs_output_check(const char *path);
const char *pgs_output_strerror(int rc);

/*
 * Runs argv[0] (searched in PATH) with in as its standard input and collects
 * its standard output into out.  0 when it exited with status 0, else -1.
 */
int pgs_pipe_through(const char *const *argv, const char *in, size_t inlen, PgsBuf *out);

void *pgs_xmalloc(size_t n);

/* array with room for element n (doubling *cap as needed); exits when memory runs out */
void *pgs_grow(void *array, size_t *cap, size_t n, size_t elem_size);
char *pgs_xstrdup(const char *s);



/* appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD */
void pgs_buf_json_string(PgsBuf *b, const char *s);

/* is s valid UTF-8? */
bool pgs_utf8_valid(const char *s);

/* cuts s (in place) before an incomplete UTF-8 sequence at its end */
void pgs_utf8_trim(char *s);
#endif
