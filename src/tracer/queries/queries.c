/*
 * queries.c - "pgscope queries": one line per finished statement of a
 * running PostgreSQL server, both protocols, with its database, user,
 * duration, error flag and text; --min-ms filters in the kernel.
 */
#include "tracer_cmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stmt_source.h"
#include "tracer.h"
#include "util.h"

typedef struct QueriesCtx
{
	const char *database;
	bool		json;
	uint64_t	shown;
	PgsBuf		line;
	PgsStmtSourceOpts so;		/* what the statement source attaches */
	double		min_ms;
	long		query_len;
} QueriesCtx;

static const char usage_text[] =
	"usage: pgscope queries [--pid PID | -D DATADIR | --bin PATH] [--min-ms MS] [-d DATABASE]\n"
	"                       [--json] [--duration SEC] [--query-len BYTES] [--split] [--breakdown]\n"
	"                       [--exact-pipelines]\n"
	"  one line per statement the server executes (simple, extended and prepared protocol,\n"
	"  pipelines, batches, multi-statement queries, TLS connections): time, pid, database,\n"
	"  user, duration, error flag, text; --split adds parse/plan/execute times from the server's\n"
	"  USDT probes (costs more); --breakdown splits each statement's time into on-CPU and\n"
	"  off-CPU by wait event class; --exact-pipelines attaches the executor probes to every\n"
	"  backend at once, so that even a backend's first pipeline is timed statement by statement\n"
	"  (every statement then pays for two probe hits); needs root or CAP_BPF+CAP_PERFMON\n";

/* one statement as a JSON line into b */
static void
statement_json(PgsBuf *b, const PgsStatement *s, const char *iso)
{
	pgs_buf_printf(b, "{\"time\":\"%s\",\"pid\":%u,\"server_pid\":%u,\"database\":", iso, s->pid,
				   s->server_pid);
	pgs_buf_json_string(b, s->database);
	pgs_buf_puts(b, ",\"user\":");
	pgs_buf_json_string(b, s->user);
	/* a statement of a batch has no time of its own: the batch's is given as such, never as its */
	if (s->batch)
		pgs_buf_printf(b, ",\"duration_ms\":null,\"batch_ms\":%.3f,\"batch_size\":%u",
					   s->duration_ns / 1e6, s->batch_size);
	else
		pgs_buf_printf(b, ",\"duration_ms\":%.3f", s->duration_ns / 1e6);
	if (s->split)
		pgs_buf_printf(b, ",\"parse_ms\":%.3f,\"plan_ms\":%.3f,\"execute_ms\":%.3f",
					   s->parse_ns / 1e6, s->plan_ns / 1e6, s->exec_ns / 1e6);
	if (s->breakdown)
	{
		pgs_buf_printf(b, ",\"breakdown_ms\":{\"CPU\":%.3f", s->cpu_ns / 1e6);
		for (int i = 0; i < PGS_WAIT_CLASSES; i++)
			if (s->off_ns[i])
				pgs_buf_printf(b, ",\"%s\":%.3f", pgs_wait_class_names[i], s->off_ns[i] / 1e6);
		pgs_buf_printf(b, "},\"shared_blks_hit\":%llu,\"shared_blks_read\":%llu,\"wal_records\":%llu,\"wal_bytes\":%llu",
					   (unsigned long long) s->blks_hit, (unsigned long long) s->blks_read,
					   (unsigned long long) s->wal_records, (unsigned long long) s->wal_bytes);
	}
	if (s->error && s->sqlstate[0])
		pgs_buf_printf(b, ",\"sqlstate\":\"%s\"", s->sqlstate);
	/* more rows of an earlier line's statement (its portal was suspended): not a statement of its own */
	if (s->continues)
		pgs_buf_puts(b, ",\"continues\":true");
	pgs_buf_printf(b, ",\"error\":%s,\"protocol\":\"%s\",\"tls\":%s,\"pipelined\":%s,\"truncated\":%s,"
				   "\"text_source\":\"%s\",\"query\":",
				   s->error ? "true" : "false", pgs_protocol_names[s->protocol], s->tls ? "true" : "false",
				   s->executor || s->batch ? "true" : "false", s->truncated ? "true" : "false",
				   s->text_unknown ? "unknown" : s->text_from_activity ? "pg_stat_activity" : "protocol");
	pgs_buf_json_string(b, s->text);
	pgs_buf_puts(b, "}\n");
}

/* --breakdown's column: "cpu 1.2 Timeout 200.1 | hit 3 read 0 wal 0 B" (each off-CPU class that took time) */
static void
breakdown_column(PgsBuf *b, const PgsStatement *s)
{
	PgsBuf		bd;

	pgs_buf_init(&bd);
	pgs_buf_printf(&bd, "cpu %.1f", s->cpu_ns / 1e6);
	for (int i = 0; i < PGS_WAIT_CLASSES; i++)
		if (s->off_ns[i] >= 50000)
			pgs_buf_printf(&bd, " %s %.1f", pgs_wait_class_names[i], s->off_ns[i] / 1e6);
	pgs_buf_printf(&bd, " | hit %llu read %llu wal %llu B", (unsigned long long) s->blks_hit,
				   (unsigned long long) s->blks_read, (unsigned long long) s->wal_bytes);
	pgs_buf_printf(b, " %-60s", bd.data);
	pgs_buf_free(&bd);
}

/* one statement as a line of the table into b */
static void
statement_line(PgsBuf *b, const PgsStatement *s, const QueriesCtx *q, const char *hms)
{
	pgs_buf_printf(b, "%-12s %7u %-12.12s %-12.12s ", hms, s->pid,
				   s->database[0] ? s->database : "?", s->user[0] ? s->user : "?");
	if (s->batch)
		pgs_buf_printf(b, "%11s", "(batch)");
	else
		pgs_buf_printf(b, "%11.3f", s->duration_ns / 1e6);
	if (q->so.split && s->split)
		pgs_buf_printf(b, " %9.3f %9.3f %9.3f", s->parse_ns / 1e6, s->plan_ns / 1e6, s->exec_ns / 1e6);
	else if (q->so.split)
		pgs_buf_printf(b, " %9s %9s %9s", "-", "-", "-");
	if (q->so.breakdown)
		breakdown_column(b, s);
	pgs_buf_printf(b, " %s ", s->error ? "E" : " ");
	if (s->batch)
		pgs_buf_printf(b, "[one of %u statements of one read, %.3f ms together] ", s->batch_size,
					   s->duration_ns / 1e6);
	if (s->continues)
		pgs_buf_puts(b, "[more rows of its portal, suspended: the same statement] ");
	for (const char *p = s->text; *p; p++)
		pgs_buf_append(b, (*p == '\n' || *p == '\r' || *p == '\t') ? " " : p, 1);
	if (s->truncated)
		pgs_buf_puts(b, "...");
	pgs_buf_puts(b, "\n");
}

static void
print_statement(const PgsStatement *s, void *arg)
{
	QueriesCtx *q = arg;
	char		hms[32],
				iso[48];

	if (q->database && strcmp(q->database, s->database) != 0)
		return;
	pgs_mono_to_clock(s->end_ns - s->duration_ns, hms, sizeof(hms), iso, sizeof(iso));
	q->line.len = 0;
	q->line.data[0] = '\0';
	if (q->json)
		statement_json(&q->line, s, iso);
	else
		statement_line(&q->line, s, q, hms);
	if (pgs_emit(q->line.data, q->line.len) && !s->continues)
		q->shown++;
}

static const PgsOptSpec opts[] = {
	PGS_OPT_NUMBER("min-ms", 0, PGS_ARG_DOUBLE, QueriesCtx, min_ms, 0, 1e9, "milliseconds (0 or more)"),
	PGS_OPT_NUMBER("query-len", 0, PGS_ARG_LONG, QueriesCtx, query_len, 64, 4095, "bytes from 64 to 4095"),
	PGS_OPT_FLAG("split", QueriesCtx, so.split),
	PGS_OPT_FLAG("breakdown", QueriesCtx, so.breakdown),
	PGS_OPT_FLAG("exact-pipelines", QueriesCtx, so.exact_pipelines),
	PGS_OPT_END
};

static const PgsCommand queries_command =
	{"pgscope queries", usage_text, opts, PGS_CMD_DATABASE};

static void
print_header(const QueriesCtx *q)
{
	printf("%-12s %7s %-12s %-12s %11s", "TIME", "PID", "DATABASE", "USER", "MS");
	if (q->so.split)
		printf(" %9s %9s %9s", "PARSE", "PLAN", "EXECUTE");
	if (q->so.breakdown)
		printf(" %-60s", "BREAKDOWN (ms) | BUFFERS, WAL");
	printf(" E QUERY\n");
	fflush(stdout);
}

int
cmd_queries(int argc, char **argv)
{
	PgsTracing	tr;
	QueriesCtx	q = {.query_len = 1024};
	PgsStmtSourceStats st;
	int			rc;

	pgs_command_start(&queries_command, &q, argc, argv, &tr);
	if (!tr.t.offsets)
		pgs_err("no struct offsets for PostgreSQL %d (install postgresql-server-dev-%d and rebuild): database and user names unavailable",
				tr.t.major, tr.t.major);
	q.so.min_ns = (uint64_t) (q.min_ms * 1e6);
	/* the captured request also holds the message header and, for Parse, a name */
	q.so.capture_len = (uint32_t) q.query_len + 1;
	q.so.duration = tr.to.duration;
	q.database = tr.database;
	q.json = tr.to.json;
	pgs_buf_init(&q.line);
	if (!q.json)
		print_header(&q);
	pgs_catch_signals();
	rc = pgs_stmt_source_run(&tr.t, &q.so, print_statement, NULL, &q, &st);
	if (rc == 0 || pgs_target_gone)
		fprintf(stderr, "%s: %llu statements ended, %llu shown, %llu events lost%s\n", pgs_cmd,
				(unsigned long long) st.seen, (unsigned long long) q.shown, (unsigned long long) st.lost,
				pgs_output_closed ? " (standard output was closed: stopped)" : "");
	pgs_stmt_source_report(&st);
	pgs_buf_free(&q.line);
	return rc;
}
