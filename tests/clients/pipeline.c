/*
 * pipeline.c - a libpq client in pipeline mode, for the statement tracer's
 * tests: PIPELINES pipelines of STATEMENTS statements each (PQsendQueryParams
 * on the unnamed statement, one PQpipelineSync per pipeline), every tenth a
 * pg_sleep(0.002), then one pipeline whose third of five statements fails
 * when it executes (division by a parameter that is 0).  Each statement
 * carries a marker alias the test counts by.
 *
 * PIPELINES 0: instead, STATEMENTS round trips each with a 300 KB parameter
 * (a Bind far longer than a read); PIPELINES -1: STATEMENTS statements sent
 * in pipeline mode and flushed, then the connection is dropped before Sync.
 *
 * usage: pipeline CONNINFO PIPELINES STATEMENTS MARKER [VARIANT]
 * (the aliases are MARKER_plus, MARKER_sleep and MARKER_fail; aliases do not
 * make statements different to pg_stat_statements, so VARIANT adds that many
 * "+ 1" to each expression: runs with different variants are told apart)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

static int
drain(PGconn *c, int expect, int *errors)
{
	int			got = 0;

	/* one result set per statement, a NULL after each, then the sync */
	for (;;)
	{
		PGresult   *r = PQgetResult(c);

		if (r == NULL)
			continue;
		switch (PQresultStatus(r))
		{
			case PGRES_PIPELINE_SYNC:
				PQclear(r);
				return got == expect ? 0 : -1;
			case PGRES_FATAL_ERROR:
				(*errors)++;
				got++;
				break;
			case PGRES_PIPELINE_ABORTED:
				got++;
				break;
			default:
				got++;
		}
		PQclear(r);
	}
}

int
main(int argc, char **argv)
{
	PGconn	   *c;
	int			pipelines,
				statements,
				errors = 0;
	char		q_plus[512],
				q_sleep[512],
				q_fail[512],
				more[256] = "";

	if (argc != 5 && argc != 6)
	{
		fprintf(stderr, "usage: pipeline CONNINFO PIPELINES STATEMENTS MARKER [VARIANT]\n");
		return 2;
	}
	for (int v = argc == 6 ? atoi(argv[5]) : 0; v > 0 && strlen(more) + 5 < sizeof(more); v--)
		strcat(more, " + 1");
	snprintf(q_plus, sizeof(q_plus), "SELECT $1::int + 1%s AS %s_plus", more, argv[4]);
	snprintf(q_sleep, sizeof(q_sleep), "SELECT pg_sleep(0.005), $1::int%s AS %s_sleep", more, argv[4]);
	snprintf(q_fail, sizeof(q_fail), "SELECT 10 / $1::int%s AS %s_fail", more, argv[4]);
	pipelines = atoi(argv[2]);
	statements = atoi(argv[3]);
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "pipeline: %s", PQerrorMessage(c));
		return 1;
	}
	if (pipelines == 0)
	{
		/* long Binds: the parameter spans some 40 reads of the server */
		char	   *big = malloc(300 * 1024 + 1),
					q[256];
		const char *params[1] = {big};

		memset(big, 'x', 300 * 1024);
		big[300 * 1024] = '\0';
		snprintf(q, sizeof(q), "SELECT length($1::text) AS %s", argv[4]);
		for (int s = 0; s < statements; s++)
		{
			PGresult   *r = PQexecParams(c, q, 1, NULL, params, NULL, NULL, 0);

			if (PQresultStatus(r) != PGRES_TUPLES_OK)
			{
				fprintf(stderr, "pipeline: %s", PQerrorMessage(c));
				return 1;
			}
			PQclear(r);
		}
		PQfinish(c);
		free(big);
		return 0;
	}
	if (!PQenterPipelineMode(c))
	{
		fprintf(stderr, "pipeline: cannot enter pipeline mode: %s", PQerrorMessage(c));
		return 1;
	}
	if (pipelines < 0)
	{
		/* a client that goes away in the middle of a pipeline */
		for (int s = 0; s < statements; s++)
		{
			const char *params[1] = {"1"};

			PQsendQueryParams(c, q_plus, 1, NULL, params, NULL, NULL, 0);
		}
		PQflush(c);
		PQsendFlushRequest(c);
		PQflush(c);
		return 0;				/* no Sync, no Terminate: the socket closes with the process */
	}
	for (int p = 0; p < pipelines; p++)
	{
		for (int s = 0; s < statements; s++)
		{
			char		v[32];
			const char *params[1] = {v};
			int			ok;

			snprintf(v, sizeof(v), "%d", p * statements + s);
			if (s % 10 == 9)
				ok = PQsendQueryParams(c, q_sleep, 1, NULL, params, NULL, NULL, 0);
			else
				ok = PQsendQueryParams(c, q_plus, 1, NULL, params, NULL, NULL, 0);
			if (!ok)
			{
				fprintf(stderr, "pipeline: %s", PQerrorMessage(c));
				return 1;
			}
		}
		if (!PQpipelineSync(c) || drain(c, statements, &errors) != 0)
		{
			fprintf(stderr, "pipeline: pipeline %d: %s", p, PQerrorMessage(c));
			return 1;
		}
	}
	/* a statement prepared in one write, bound and executed in the next */
	{
		size_t		cap = 5000 * 12 + 512,
					len;
		char	   *q_split = malloc(cap);
		const char *params[1] = {"1"};

		len = (size_t) snprintf(q_split, cap, "SELECT x%s AS %s_split FROM (VALUES (1)", more, argv[4]);
		for (int r = 2; r <= 5000; r++)
			len += (size_t) snprintf(q_split + len, cap - len, ",(%d)", r);
		snprintf(q_split + len, cap - len, ") v(x) ORDER BY x DESC LIMIT 1");
		PQsendQueryParams(c, q_plus, 1, NULL, params, NULL, NULL, 0);
		PQsendQueryParams(c, q_plus, 1, NULL, params, NULL, NULL, 0);
		PQsendPrepare(c, "split", q_split, 0, NULL);
		if (PQflush(c) != 0)
		{
			fprintf(stderr, "pipeline: %s", PQerrorMessage(c));
			return 1;
		}
		usleep(50 * 1000);
		PQsendQueryPrepared(c, "split", 0, NULL, NULL, NULL, 0);
		PQsendQueryParams(c, q_plus, 1, NULL, params, NULL, NULL, 0);
		if (!PQpipelineSync(c) || drain(c, 5, &errors) != 0 || errors != 0)
		{
			fprintf(stderr, "pipeline: the split pipeline: %s", PQerrorMessage(c));
			return 1;
		}
		free(q_split);
	}
	/* a pipeline whose third statement fails as it runs: the last two are skipped */
	for (int s = 0; s < 5; s++)
	{
		const char *params[1] = {s == 2 ? "0" : "1"};

		PQsendQueryParams(c, q_fail, 1, NULL, params, NULL, NULL, 0);
	}
	if (!PQpipelineSync(c) || drain(c, 5, &errors) != 0 || errors != 1)
	{
		fprintf(stderr, "pipeline: the failing pipeline: %d errors: %s", errors, PQerrorMessage(c));
		return 1;
	}
	PQexitPipelineMode(c);
	PQfinish(c);
	return 0;
}
