/*
 * conn.h - libpq connections the way psql users expect them: -h -p -U -d
 * (a name, a conninfo string or a URI), the PG* variables and ~/.pgpass;
 * queries whose errors come back as one readable line.
 */
#ifndef PGSCOPE_CONN_H
#define PGSCOPE_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct PgsConnOpts
{
	const char *host;
	const char *port;
	const char *user;
	const char *dbname;
} PgsConnOpts;

/* getopt_long entries and handling for -h -p -U -d; returns true if opt was one */
#define PGS_CONN_LONGOPTS \
	{"host", required_argument, NULL, 'h'}, \
	{"port", required_argument, NULL, 'p'}, \
	{"username", required_argument, NULL, 'U'}, \
	{"dbname", required_argument, NULL, 'd'}
#define PGS_CONN_SHORTOPTS "h:p:U:d:"
bool pgs_conn_opt(PgsConnOpts *o, int opt, const char *arg);

/* PL/pgSQL calls that parallel workers reported as missing from the session profile (NOTICEs) */
extern unsigned long long pgs_parallel_worker_calls;

/* connects or exits with status 1 and one line saying why */
PGconn *pgs_connect(const PgsConnOpts *o);

/*
 * Runs sql with text parameters.  On failure returns NULL and fills err
 * (message, plus the server's hint) unless err is NULL.
 */
PGresult *pgs_query(PGconn *c, const char *sql, int nparams, const char *const *params,
					char *err, size_t errlen);

/*
 * Set around short lookups that carry their own bound (a statement_timeout)
 * and must finish even after Ctrl-C: a tracer names what it already saw.
 */
extern bool pgs_query_uncancelled;

/*
 * The next result of what was sent on c, waiting in a way that a signal
 * (pgs_stop) cancels the running statement; NULL when there is none, or
 * with *interrupted when the server ignored the cancel for 10 s.
 */
PGresult *pgs_next_result(PGconn *c, bool *interrupted);

/* the same, exiting with status 1: "cannot <what>: <server message>" */
PGresult *pgs_query_or_die(PGconn *c, const char *what, const char *sql, int nparams,
						   const char *const *params);

/* exits with a clear message unless the pgscope extension is in this database */
void pgs_require_extension(PGconn *c);

/* exits unless the server has pgscope in shared_preload_libraries */
void pgs_require_shared(PGconn *c);

#endif
