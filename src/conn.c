/*
 * conn.c - connecting, querying and the checks that turn "function does not
 * exist" into "run CREATE EXTENSION pgscope".
 */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

bool
pgs_conn_opt(PgsConnOpts *o, int opt, const char *arg)
{
	switch (opt)
	{
		case 'h':
			o->host = arg;
			return true;
		case 'p':
			{
				/* libpq takes a list for several hosts: every entry a port */
				const char *p = arg;

				do
				{
					char	   *end;
					long		v = strtol(p, &end, 10);

					if (end == p || v < 1 || v > 65535 || (*end != ',' && *end != '\0'))
						pgs_usage("-p takes a port number from 1 to 65535, not \"%s\"", arg);
					p = *end == ',' ? end + 1 : end;
				} while (*p);
			}
			o->port = arg;
			return true;
		case 'U':
			o->user = arg;
			return true;
		case 'd':
			o->dbname = arg;
			return true;
	}
	return false;
}

static void
first_line(char *s)
{
	char	   *nl = strchr(s, '\n');

	if (nl)
		*nl = '\0';
}

unsigned long long pgs_parallel_worker_calls = 0;

/* server NOTICE/WARNING lines go to stderr, prefixed, never silently lost */
static void
notice_to_stderr(void *arg, const char *message)
{
	char		line[2048];
	const char *p = strstr(message, "pgscope: ");
	unsigned long long calls;

	(void) arg;
	/* the extension's count of calls in parallel workers, which a session profile lacks */
	if (p && sscanf(p, "pgscope: %llu PL/pgSQL calls ran in a parallel worker", &calls) == 1)
		pgs_parallel_worker_calls += calls;
	snprintf(line, sizeof(line), "%s", message);
	first_line(line);
	fprintf(stderr, "%s: server: %s\n", pgs_cmd, line);
}

PGconn *
pgs_connect(const PgsConnOpts *o)
{
	const char *keys[8];
	const char *vals[8];
	/* dbname first: with expand_dbname a conninfo or URI there sets the rest */
	const char *given[][2] = {{"dbname", o->dbname}, {"host", o->host}, {"port", o->port}, {"user", o->user}};
	int			n = 0;
	PGconn	   *c;

	for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++)
		if (given[i][1])
		{
			keys[n] = given[i][0];
			vals[n++] = given[i][1];
		}
	keys[n] = "application_name";
	vals[n++] = "pgscope";
	keys[n] = NULL;
	vals[n] = NULL;

	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL)
		pgs_die("cannot connect to server: out of memory");
	if (PQstatus(c) != CONNECTION_OK)
	{
		char	   *msg = pgs_xstrdup(PQerrorMessage(c));

		/* libpq puts the useful part after "connection to server ... failed: " */
		first_line(msg);
		PQfinish(c);
		pgs_die("cannot connect to server: %s", msg);
	}
	PQsetNoticeProcessor(c, notice_to_stderr, NULL);
	return c;
}

/*
 * Waits for the next result of what was sent on c, polling the socket so that
 * a signal (pgs_stop) is seen at once: the running statement is cancelled,
 * and if the server does not answer the cancel within 10 s, waiting ends
 * with *interrupted set and NULL.  NULL without *interrupted: no more results.
 */
bool		pgs_query_uncancelled = false;

PGresult *
pgs_next_result(PGconn *c, bool *interrupted)
{
	bool		cancel_sent = false;
	struct timespec t0 = {0},
				now;

	*interrupted = false;
	while (PQisBusy(c))
	{
		struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};

		if (pgs_stop_pending() && !cancel_sent && !pgs_query_uncancelled)
		{
			PGcancel   *cn = PQgetCancel(c);
			char		errbuf[256];

			if (cn)
			{
				PQcancel(cn, errbuf, sizeof(errbuf));
				PQfreeCancel(cn);
			}
			cancel_sent = true;
			clock_gettime(CLOCK_MONOTONIC, &t0);
		}
		if (cancel_sent)
		{
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - t0.tv_sec >= 10)
			{
				*interrupted = true;
				return NULL;
			}
		}
		if (pfd.fd < 0)
			break;
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(c))
			break;
	}
	return PQgetResult(c);
}

PGresult *
pgs_query(PGconn *c, const char *sql, int nparams, const char *const *params,
		  char *err, size_t errlen)
{
	PGresult   *r = NULL,
			   *next;
	ExecStatusType st;
	bool		interrupted = false;

	if (PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		/* the last result is the one that counts; COPY is not used through here */
		while ((next = pgs_next_result(c, &interrupted)) != NULL)
		{
			st = PQresultStatus(next);
			PQclear(r);
			r = next;
			if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
				break;
		}
	}
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	if (err)
	{
		const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;

		if (interrupted)
			snprintf(err, errlen, "interrupted, and the server did not answer the cancel request");
		else if (pgs_stop_pending() && msg && r && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
				 strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014") == 0)
			snprintf(err, errlen, "interrupted");
		else if (msg == NULL)
		{
			char	   *m = pgs_xstrdup(PQerrorMessage(c));

			first_line(m);
			snprintf(err, errlen, "%s", *m ? m : "lost connection to server");
			free(m);
		}
		else if (hint)
			snprintf(err, errlen, "%s (hint: %s)", msg, hint);
		else
			snprintf(err, errlen, "%s", msg);
	}
	PQclear(r);
	return NULL;
}

PGresult *
pgs_query_or_die(PGconn *c, const char *what, const char *sql, int nparams,
				 const char *const *params)
{
	char		err[2048];
	PGresult   *r = pgs_query(c, sql, nparams, params, err, sizeof(err));

	if (r == NULL)
		pgs_die("cannot %s: %s", what, err);
	return r;
}

void
pgs_require_extension(PGconn *c)
{
	PGresult   *r = pgs_query_or_die(c, "look up the pgscope extension",
									 "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgscope'",
									 0, NULL);
	bool		present = PQntuples(r) == 1;

	PQclear(r);
	if (!present)
		pgs_die("the pgscope extension is not installed in database \"%s\": run CREATE EXTENSION pgscope;",
				PQdb(c));
}

void
pgs_require_shared(PGconn *c)
{
	PGresult   *r = pgs_query_or_die(c, "read pgscope's status",
									 "SELECT shared_available FROM pgscope_status()", 0, NULL);
	bool		ok = strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	if (!ok)
		pgs_die("pgscope is not loaded at server start: add pgscope to shared_preload_libraries in postgresql.conf and restart the server");
}
