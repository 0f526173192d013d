/*
 * plprof.c - "pgscope plprof": profiling runs and monitoring windows of the
 * PL/pgSQL profiler extension, saved datasets (save, list, show, delete,
 * export, import) and reports.  All profile data travels as one JSON document
 * built by the extension's pgscope_profile(), so a live profile, a saved
 * dataset and an exported file render alike.
 */
#include "plprof.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "report.h"
#include "sqlsplit.h"
#include "util.h"

typedef struct PlprofOpts
{
	PgsConnOpts conn;
	const char *output;
	const char *save;
	const char *title;
	const char *name;
	const char *command_sql;
	const char *file;
	PgsFormat	format;
	long		top;
	bool		rollback;
	bool		all;
	long		pid;
	double		duration;
	long		interval;
	bool		shared;
	bool		replace;
	bool		dry_run;
	char	   *cmdline;
} PlprofOpts;

enum
{
	OPT_SAVE = 1000, OPT_TITLE, OPT_ROLLBACK, OPT_FORMAT, OPT_TOP, OPT_PID, OPT_ALL,
	OPT_DURATION, OPT_INTERVAL, OPT_NAME, OPT_SHARED, OPT_REPLACE, OPT_DRY_RUN
};

static const struct option long_opts[] = {
	PGS_CONN_LONGOPTS,
	{"command", required_argument, NULL, 'c'},
	{"file", required_argument, NULL, 'f'},
	{"output", required_argument, NULL, 'o'},
	{"save", required_argument, NULL, OPT_SAVE},
	{"title", required_argument, NULL, OPT_TITLE},
	{"rollback", no_argument, NULL, OPT_ROLLBACK},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"top", required_argument, NULL, OPT_TOP},
	{"pid", required_argument, NULL, OPT_PID},
	{"all", no_argument, NULL, OPT_ALL},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"name", required_argument, NULL, OPT_NAME},
	{"shared", no_argument, NULL, OPT_SHARED},
	{"replace", no_argument, NULL, OPT_REPLACE},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"help", no_argument, NULL, '?'},
	{NULL, 0, NULL, 0}
};

static const char usage_text[] =
	"usage: pgscope plprof COMMAND [options] [-h HOST] [-p PORT] [-U USER] [-d DBNAME|CONNINFO|URI]\n"
	"\n"
	"  run (-c SQL | -f FILE) [--rollback] [--dry-run]\n"
	"                                         run a workload in this session, profile it, write the report\n"
	"  monitor (--pid N | --all) --duration SEC [--interval SEC]\n"
	"                                         profile other sessions for a while (needs preload)\n"
	"  save NAME                              save the instance-wide profile as a dataset\n"
	"  list                                   list saved datasets\n"
	"  show NAME                              print a dataset's summary\n"
	"  delete NAME                            delete a dataset\n"
	"  report (--name NAME | --shared)        write the report of a dataset or of the shared profile\n"
	"  export NAME [-o FILE]                  write a dataset as JSON\n"
	"  import FILE [--name NAME] [--replace]  store a JSON export as a dataset\n"
	"\n"
	"report options (run, monitor, report): -o FILE (default: standard output),\n"
	"  --format html|folded|json, --title TEXT, --top N (functions detailed, default 20),\n"
	"  --save NAME (run, monitor)\n";

/* dataset names: printable, valid UTF-8, at most 200 bytes (they are shown and indexed) */
static void
check_name(const char *name, const char *what)
{
	size_t		n = strlen(name);
	char	   *copy;

	if (n == 0)
		pgs_usage("%s must not be empty", what);
	if (n > 200)
		pgs_usage("%s is %zu bytes long: dataset names are at most 200 bytes", what, n);
	for (const unsigned char *p = (const unsigned char *) name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			pgs_usage("%s contains a control character (byte 0x%02x): use printable characters", what, *p);
	copy = pgs_xstrdup(name);
	pgs_utf8_trim(copy);
	if (strlen(copy) != n || !pgs_utf8_valid(name))
		pgs_usage("%s is not valid UTF-8", what);
	free(copy);
}

/* one of the options plprof's commands take (but the connection's); false: not one of them */
static bool
plprof_option(PlprofOpts *o, int opt, const char *arg)
{
	switch (opt)
	{
		case 'c':
			o->command_sql = arg;
			return true;
		case 'f':
			o->file = arg;
			return true;
		case 'o':
			o->output = arg;
			return true;
		case OPT_SAVE:
			check_name(arg, "the --save name");
			o->save = arg;
			return true;
		case OPT_TITLE:
			o->title = arg;
			return true;
		case OPT_ROLLBACK:
			o->rollback = true;
			return true;
		case OPT_FORMAT:
			if ((int) (o->format = pgs_parse_format(arg)) < 0)
				pgs_usage("unknown --format \"%s\": use html, folded or json", arg);
			return true;
		case OPT_TOP:
			if (!pgs_parse_long(arg, 1, 100000, &o->top))
				pgs_usage("--top takes a whole number from 1 to 100000, not \"%s\"", arg);
			return true;
		case OPT_PID:
			if (!pgs_parse_long(arg, 1, 2147483647L, &o->pid))
				pgs_usage("--pid takes a backend's process id, not \"%s\"", arg);
			return true;
		case OPT_ALL:
			o->all = true;
			return true;
		case OPT_DURATION:
			if (!pgs_parse_double(arg, 0.1, 7 * 86400, &o->duration))
				pgs_usage("--duration takes seconds from 0.1 to 604800, not \"%s\"", arg);
			return true;
		case OPT_INTERVAL:
			if (!pgs_parse_long(arg, 0, 86400, &o->interval))
				pgs_usage("--interval takes whole seconds from 0 to 86400, not \"%s\"", arg);
			return true;
		case OPT_NAME:
			check_name(arg, "the --name name");
			o->name = arg;
			return true;
		case OPT_SHARED:
			o->shared = true;
			return true;
		case OPT_REPLACE:
			o->replace = true;
			return true;
		case OPT_DRY_RUN:
			o->dry_run = true;
			return true;
	}
	return false;
}

/* the command line, recorded in the profile's metadata: whole, never cut inside a character */
static char *
command_line(int argc, char **argv)
{
	PgsBuf		cmdline;

	pgs_buf_init(&cmdline);
	pgs_buf_puts(&cmdline, "pgscope plprof");
	for (int i = 0; i < argc; i++)
	{
		pgs_buf_puts(&cmdline, " ");
		pgs_buf_puts(&cmdline, argv[i]);
	}
	return cmdline.data;
}

static void
parse_opts(int argc, char **argv, PlprofOpts *o, const char *cmd, const char *allowed)
{
	int			opt;

	pgs_cmd = cmd;
	memset(o, 0, sizeof(*o));
	o->format = PGS_FORMAT_HTML;
	o->top = 20;
	o->interval = -1;
	o->duration = -1;
	o->cmdline = command_line(argc, argv);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, PGS_CONN_SHORTOPTS "c:f:o:", long_opts, NULL)) != -1)
	{
		const char *name = NULL;

		for (const struct option *lo = long_opts; lo->name; lo++)
			if (lo->val == opt)
				name = lo->name;
		if (opt != '?' && opt != ':' && name && !strchr("hpUd", opt) && strstr(allowed, name) == NULL)
			pgs_usage("option --%s does not apply to \"%s\" (see pgscope plprof --help)", name, argv[0]);
		if (pgs_conn_opt(&o->conn, opt, optarg) || plprof_option(o, opt, optarg))
			continue;
		if (optopt && strchr(PGS_CONN_SHORTOPTS "cfo", optopt))
			pgs_usage("option -%c needs a value", optopt);
		if (strcmp(argv[optind - 1], "--help") == 0)
		{
			fputs(usage_text, stdout);
			exit(0);
		}
		pgs_usage("unknown option \"%s\" (see pgscope plprof --help)", argv[optind - 1]);
	}
	/* before any work: a run or a monitoring window must not end in "cannot write" */
	if (o->output)
	{
		int			rc = pgs_output_check(o->output);

		if (rc != 0)
			pgs_die("cannot write %s: %s", o->output, pgs_output_strerror(rc));
	}
}

/* a connection to the server of o's options, where the extension is installed (else exits 1) */
static PGconn *
connect_profiler(PlprofOpts *o)
{
	PGconn	   *c = pgs_connect(&o->conn);

	pgs_require_extension(c);
	return c;
}

/* prints s with control characters escaped, so a stored name cannot drive the terminal */
static void
print_escaped(const char *s, int width)
{
	PgsBuf		b;

	pgs_buf_init(&b);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			pgs_buf_printf(&b, "\\x%02x", *p);
		else
			pgs_buf_append(&b, (const char *) p, 1);
	}
	printf("%-*s", width, b.data);
	pgs_buf_free(&b);
}

/* the single positional argument NAME (or FILE) a command takes */
static const char *
positional(int argc, char **argv, const char *what)
{
	if (optind >= argc)
		pgs_usage("\"%s\" needs %s", argv[0], what);
	if (optind + 1 < argc)
		pgs_usage("unexpected argument \"%s\"", argv[optind + 1]);
	if (!*argv[optind])
		pgs_usage("%s must not be empty", what);
	return argv[optind];
}

static void
no_positional(int argc, char **argv)
{
	if (optind < argc)
		pgs_usage("unexpected argument \"%s\" (see pgscope plprof --help)", argv[optind]);
}

/* ---------- profile documents ---------- */

static char *
fetch_profile(PGconn *c, bool shared, const PlprofOpts *o)
{
	char		workers[32];
	const char *params[4] = {shared ? "true" : "false", o->title, o->cmdline, NULL};
	PGresult   *r;
	char	   *doc;

	if (!shared && pgs_parallel_worker_calls > 0)
	{
		snprintf(workers, sizeof(workers), "%llu", pgs_parallel_worker_calls);
		params[3] = workers;
	}
	r = pgs_query_or_die(c, "read the profile",
						 "SELECT pgscope_profile($1::boolean, jsonb_strip_nulls(jsonb_build_object("
						 "'title', $2::text, 'command', $3::text, 'parallel_worker_calls', $4::bigint)))::text",
						 4, params);
	doc = pgs_xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return doc;
}

static char *
fetch_dataset(PGconn *c, const char *name)
{
	const char *params[1] = {name};
	PGresult   *r = pgs_query_or_die(c, "read the dataset",
									 "SELECT (jsonb_build_object('dataset', jsonb_build_object('name', name, 'created', created))"
									 "        || profile)::text FROM pgscope_dataset WHERE name = $1",
									 1, params);
	char	   *doc;

	if (PQntuples(r) == 0)
		pgs_die("unknown dataset \"%s\" (pgscope plprof list shows the saved ones)", name);
	doc = pgs_xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return doc;
}

static void
save_dataset(PGconn *c, const char *name, const char *doc, bool replace)
{
	const char *params[2] = {name, doc};
	char		err[2048];
	PGresult   *r;

	r = pgs_query(c, replace ?
				  "INSERT INTO pgscope_dataset (name, profile) VALUES ($1, pgscope_check_profile($2::jsonb)) "
				  "ON CONFLICT (name) DO UPDATE SET profile = EXCLUDED.profile, created = now()" :
				  "INSERT INTO pgscope_dataset (name, profile) VALUES ($1, pgscope_check_profile($2::jsonb))",
				  2, params, err, sizeof(err));
	if (r == NULL)
	{
		if (strstr(err, "duplicate key"))
			pgs_die("cannot save dataset \"%s\": a dataset of that name exists (delete it first)", name);
		pgs_die("cannot save dataset \"%s\": %s", name, err);
	}
	PQclear(r);
	fprintf(stderr, "%s: saved dataset \"%s\"\n", pgs_cmd, name);
}

static int
emit(PGconn *c, const char *doc, const PlprofOpts *o)
{
	int			rc = pgs_write_report(c, doc, o->format, o->title, (int) o->top, o->output);

	if (rc == 0 && o->output && strcmp(o->output, "-") != 0)
		fprintf(stderr, "%s: report written to %s\n", pgs_cmd, o->output);
	return rc == 0 ? 0 : EXIT_RUNTIME;
}

/* ---------- run ---------- */

/* byte offset in text of the 1-based character position the server reports */
static size_t
char_to_byte(const char *text, size_t len, long pos)
{
	size_t		i = 0;

	for (long chars = 1; i < len && chars < pos; i++)
		if (((unsigned char) text[i + 1] & 0xC0) != 0x80)
			chars++;
	return i;
}

/* a workload as given: -c SQL, -f FILE or -f - */
typedef struct Workload
{
	char	   *sql;
	size_t		len;
	const char *name;			/* for messages: the file or "-c" */
	bool		inline_data;	/* COPY FROM STDIN data follows in the script */
	bool		copy_from_stdin;	/* -c with COPY FROM STDIN: our standard input */
	int			nstmts;
} Workload;

/*
 * Reads the workload and checks all of it before anything runs: one linear
 * pass of the splitter.  What cannot run as asked is refused here, while
 * nothing has touched the server.
 */
static void
load_workload(const PlprofOpts *o, Workload *w)
{
	PgsSplitter sp;
	PgsStmtSpan span;
	bool		report_on_stdout = o->output == NULL || strcmp(o->output, "-") == 0;

	memset(w, 0, sizeof(*w));
	if (o->file)
	{
		w->sql = pgs_read_file(o->file, &w->len);
		if (w->sql == NULL)
			pgs_die("cannot read %s: %s", o->file, strerror(errno));
		w->name = o->file;
		w->inline_data = true;
	}
	else
	{
		w->sql = pgs_xstrdup(o->command_sql);
		w->len = strlen(w->sql);
		w->name = "-c";
	}
	pgs_split_init(&sp, w->sql, w->len, w->inline_data);
	if (sp.nul_line)
		pgs_die("cannot run %s: line %d holds a NUL byte, which no SQL statement can contain (remove it)",
				w->name, sp.nul_line);
	while (pgs_split_next(&sp, &span))
	{
		w->nstmts++;
		if (o->rollback && span.kind == PGS_STMT_TXN)
			pgs_die("cannot run %s with --rollback: statement %d at line %d ends or starts a transaction, "
					"which would commit or escape the rollback (remove it, or run without --rollback)",
					w->name, w->nstmts, span.line);
		if (span.kind == PGS_STMT_COPY_OUT && report_on_stdout && !o->dry_run)
			pgs_die("cannot run %s: statement %d at line %d copies to standard output, where the report goes "
					"(give -o FILE for the report)", w->name, w->nstmts, span.line);
		if (span.kind == PGS_STMT_COPY_IN && !w->inline_data)
			w->copy_from_stdin = true;
	}
	if (sp.unterminated)
		pgs_die("cannot run %s: unterminated quote, dollar quote or comment starting at line %d",
				w->name, sp.unterminated);
	if (w->nstmts == 0)
		pgs_usage("the workload in %s has no SQL statement", w->name);
}

/* COPY ... TO STDOUT: the rows go to our standard output */
static bool
copy_out(PGconn *c)
{
	char	   *buf;
	int			n;
	bool		ok = true,
				cancelled = false;

	for (;;)
	{
		n = PQgetCopyData(c, &buf, 1);
		if (n > 0)
		{
			if (ok && fwrite(buf, 1, (size_t) n, stdout) != (size_t) n)
			{
				pgs_err("cannot write the COPY rows to standard output: %s", strerror(errno));
				ok = false;		/* the wait below cancels the COPY */
			}
			PQfreemem(buf);
			continue;
		}
		if (n < 0)
			break;
		/* nothing yet: wait for the socket, or cancel on a signal */
		{
			struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};

			if ((!ok || pgs_stop_pending()) && !cancelled)
			{
				PGcancel   *cn = PQgetCancel(c);
				char		e[256];

				if (cn)
					PQcancel(cn, e, sizeof(e)), PQfreeCancel(cn);
				cancelled = true;
			}
			if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
				break;
			if (!PQconsumeInput(c))
				break;
		}
	}
	fflush(stdout);
	return ok;
}

/* COPY ... FROM STDIN: the data lines of the script, or our standard input */
static bool
copy_in(PGconn *c, const Workload *w, const PgsStmtSpan *span)
{
	bool		ok = true;

	if (span->has_data)
	{
		if (span->data_len > 0 && PQputCopyData(c, w->sql + span->data_start, (int) span->data_len) != 1)
			ok = false;
	}
	else
	{
		char		chunk[65536];
		ssize_t		n;

		while (!pgs_stop && (n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0)
		{
			if (n < 0)
			{
				if (errno == EINTR)
					continue;
				pgs_err("cannot read the COPY data from standard input: %s", strerror(errno));
				ok = false;
				break;
			}
			if (PQputCopyData(c, chunk, (int) n) != 1)
			{
				ok = false;
				break;
			}
		}
	}
	if (pgs_stop)
		ok = false;
	PQputCopyEnd(c, ok ? NULL : "pgscope: the COPY data could not be sent");
	return ok;
}

/* runs one statement; NULL when it succeeded, else its failed result (or NULL result: see *lost) */
static PGresult *
run_statement(PGconn *c, const Workload *w, const PgsStmtSpan *span, bool *interrupted)
{
	char	   *stmt = strndup(w->sql + span->start, span->len);
	PGresult   *res,
			   *failed = NULL;

	*interrupted = false;
	if (stmt == NULL)
		pgs_die("cannot allocate memory for a statement");
	if (!PQsendQuery(c, stmt))
	{
		free(stmt);
		return PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
	}
	free(stmt);
	while ((res = pgs_next_result(c, interrupted)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_COPY_OUT)
			copy_out(c);
		else if (st == PGRES_COPY_IN)
			copy_in(c, w, span);
		else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY && failed == NULL)
		{
			failed = res;
			continue;
		}
		PQclear(res);
	}
	if (*interrupted && failed == NULL)
		failed = PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
	return failed;
}

static void
report_failure(PGconn *c, const Workload *w, const PgsStmtSpan *span, int i, PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
	int			line,
				col;
	long		p;

	if (pgs_stop)
	{
		pgs_err("interrupted during statement %d at line %d of %s", i, span->line, w->name);
		return;
	}
	if (pos && pgs_parse_long(pos, 1, 1L << 30, &p))
		pgs_sql_position(w->sql, span->start + char_to_byte(w->sql + span->start, span->len, p), &line, &col);
	else
		pgs_sql_position(w->sql, span->start, &line, &col);
	pgs_err("statement %d failed at line %d, column %d of %s: %s: %s", i, line, col,
			w->name, sev ? sev : "ERROR", msg ? msg : PQerrorMessage(c));
}

/* --save NAME: can this role save, and is the name free?  Asked before the workload runs */
static void
check_save(PGconn *c, const char *name)
{
	const char *params[1] = {name};
	PGresult   *r = pgs_query_or_die(c, "check the dataset table",
									 "SELECT has_table_privilege('pgscope_dataset', 'SELECT, INSERT')", 0, NULL);
	bool		may = strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	if (!may)
		pgs_die("cannot save dataset \"%s\": permission denied for table pgscope_dataset "
				"(saving needs membership in pgscope_admin; nothing was run)", name);
	r = pgs_query_or_die(c, "check the dataset table", "SELECT 1 FROM pgscope_dataset WHERE name = $1", 1, params);
	if (PQntuples(r) > 0)
		pgs_die("cannot save dataset \"%s\": a dataset of that name exists (delete it first; nothing was run)", name);
	PQclear(r);
}

static void
dry_run(const Workload *w)
{
	PgsSplitter sp;
	PgsStmtSpan span;
	static const char *const kinds[] = {"", " (transaction control)", " (COPY FROM STDIN)", " (COPY TO STDOUT)"};

	pgs_split_init(&sp, w->sql, w->len, w->inline_data);
	for (int i = 1; pgs_split_next(&sp, &span); i++)
	{
		int			n = span.len > 60 ? 60 : (int) span.len;

		printf("%d\tline %d%s\t", i, span.line, kinds[span.kind]);
		for (int k = 0; k < n; k++)
		{
			char		ch = w->sql[span.start + k];

			putchar(ch == '\n' || ch == '\t' || ch == '\r' ? ' ' : ch);
		}
		printf("%s\n", span.len > 60 ? "..." : "");
	}
	printf("%d statements\n", w->nstmts);
}

/* the workload's statements one by one, until one fails or a signal comes: 1 when one failed */
static int
run_workload(PGconn *c, Workload *w, const PlprofOpts *o)
{
	PgsSplitter sp;
	PgsStmtSpan span;
	int			i = 0;

	pgs_split_init(&sp, w->sql, w->len, w->inline_data);
	while (!pgs_stop && pgs_split_next(&sp, &span))
	{
		bool		interrupted;
		PGresult   *res = run_statement(c, w, &span, &interrupted);

		i++;
		if (interrupted)
			pgs_die("interrupted during statement %d at line %d of %s, and the server did not answer the cancel request",
					i, span.line, w->name);
		if (res)
		{
			report_failure(c, w, &span, i, res);
			PQclear(res);
			return 1;
		}
		if (o->rollback && PQtransactionStatus(c) != PQTRANS_INTRANS)
		{
			/* cannot happen after load_workload's check; never carry on outside the transaction */
			pgs_err("statement %d at line %d of %s ended the transaction that --rollback holds open; stopping",
					i, span.line, w->name);
			return 1;
		}
	}
	return 0;
}

static int
cmd_run(int argc, char **argv)
{
	PlprofOpts	o;
	Workload	w;
	int			failed;
	PGconn	   *c;
	char	   *doc;

	parse_opts(argc, argv, &o, "pgscope plprof run", "command file output save title rollback format top dry-run");
	no_positional(argc, argv);
	if ((o.command_sql == NULL) == (o.file == NULL))
		pgs_usage("give the workload as either -c SQL or -f FILE");
	load_workload(&o, &w);
	if (o.dry_run)
	{
		dry_run(&w);
		free(w.sql);
		return 0;
	}

	pgs_catch_signals();
	c = connect_profiler(&o);
	if (o.save)
		check_save(c, o.save);
	PQclear(pgs_query_or_die(c, "start profiling", "SELECT pgscope_reset(false), pgscope_enable(true)", 0, NULL));
	if (o.rollback)
		PQclear(pgs_query_or_die(c, "begin the transaction", "BEGIN", 0, NULL));

	failed = run_workload(c, &w, &o);
	pgs_ack_stop();
	if (PQstatus(c) != CONNECTION_OK)
		pgs_die("lost the connection to the server during the workload; the session's profile is gone with it");

	/* a workload that left a transaction open or failed inside one */
	if (PQtransactionStatus(c) != PQTRANS_IDLE)
	{
		if (!o.rollback)
			pgs_err("the workload left a transaction open: rolling it back");
		PQclear(pgs_query_or_die(c, "roll back", "ROLLBACK", 0, NULL));
	}
	PQclear(pgs_query_or_die(c, "stop profiling", "SELECT pgscope_enable(false)", 0, NULL));
	doc = fetch_profile(c, false, &o);
	if (o.save)
		save_dataset(c, o.save, doc, false);
	if (emit(c, doc, &o) != 0)
		failed = 1;
	PQfinish(c);
	free(doc);
	free(w.sql);
	if (pgs_stop)
		return 128 + pgs_stop_signal;
	return failed ? EXIT_RUNTIME : 0;
}

/* ---------- monitor ---------- */

/* switch the profiling this monitor started off again; true when done */
static bool
monitor_switch_off(PGconn *c, const PlprofOpts *o, long old_interval)
{
	char		err[2048];
	char		iv[32];
	const char *params[1] = {iv};
	PGresult   *r;

	r = pgs_query(c, o->all ? "SELECT pgscope_enable_global(false)" : "SELECT pgscope_enable_pid(0)",
				  0, NULL, err, sizeof(err));
	if (r == NULL)
		return false;
	PQclear(r);
	if (old_interval >= 0)
	{
		snprintf(iv, sizeof(iv), "%ld", old_interval);
		r = pgs_query(c, "SELECT pgscope_set_collect_interval($1::int)", 1, params, err, sizeof(err));
		if (r)
			PQclear(r);
	}
	return true;
}

/*
 * One monitoring window per server: a second one would reset the first's
 * data and switch its profiling off.  The claim is this session's name (seen
 * in every database) and an advisory lock (closing the race in one
 * database); both end with the connection.
 */
static void
claim_monitor(PGconn *c)
{
	PGresult   *r;

	PQclear(pgs_query_or_die(c, "name the session", "SET application_name = 'pgscope plprof monitor'", 0, NULL));
	r = pgs_query_or_die(c, "look for another monitor",
						 "SELECT pg_try_advisory_lock(1885565805, 1), "
						 "       (SELECT string_agg(pid::text, ', ') FROM pg_stat_activity "
						 "         WHERE application_name = 'pgscope plprof monitor' AND pid <> pg_backend_pid())",
						 0, NULL);
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0 || !PQgetisnull(r, 0, 1))
		pgs_die("another pgscope plprof monitor is running on this server (backend %s): two windows would reset "
				"and switch off each other's profiling; wait for it to end", PQgetisnull(r, 0, 1) ? "in this database" : PQgetvalue(r, 0, 1));
	PQclear(r);
}

/* --pid's backend exists; --interval set (the old interval in *old_interval, to be put back) */
static void
monitor_prepare(PGconn *c, const PlprofOpts *o, const char *pidbuf, long *old_interval)
{
	PGresult   *r;

	if (o->pid)
	{
		const char *params[1] = {pidbuf};

		r = pgs_query_or_die(c, "look up the backend",
							 "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int", 1, params);
		if (PQntuples(r) == 0)
			pgs_die("no backend with pid %ld in this server (see pg_stat_activity)", o->pid);
		PQclear(r);
	}
	if (o->interval >= 0)
	{
		char		iv[32];
		const char *params[1] = {iv};

		r = pgs_query_or_die(c, "read the collect interval", "SELECT collect_interval FROM pgscope_status()", 0, NULL);
		*old_interval = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
		snprintf(iv, sizeof(iv), "%ld", o->interval);
		PQclear(pgs_query_or_die(c, "set the collect interval",
								 "SELECT pgscope_set_collect_interval($1::int)", 1, params));
	}
}

/* profiling on, for one backend or all, expiring by itself after expire seconds */
static void
monitor_enable(PGconn *c, const PlprofOpts *o, const char *pidbuf, const char *expire, long old_interval)
{
	const char *params[2] = {o->all ? "true" : pidbuf, expire};
	char		err[2048];
	PGresult   *r;

	r = pgs_query(c, o->all ?
				  "SELECT pgscope_enable_global($1::boolean, make_interval(secs => $2::float8))" :
				  "SELECT pgscope_enable_pid($1::int, make_interval(secs => $2::float8))",
				  2, params, err, sizeof(err));
	if (r == NULL)
	{
		monitor_switch_off(c, o, old_interval);
		pgs_die("cannot enable profiling: %s", err);
	}
	PQclear(r);
}

/*
 * The monitoring window, until --duration or a signal: once a second, is the
 * server still there and how much was seen.  False when the connection was
 * lost (and profiling switched off after reconnecting).
 */
static bool
monitor_window(PGconn *c, const PlprofOpts *o, const char *expire, long old_interval, double *elapsed)
{
	struct timespec t0,
				now;
	int			last_shown = -1;
	bool		tty = isatty(STDERR_FILENO);
	PGresult   *r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	*elapsed = 0;
	while (!pgs_stop && *elapsed < o->duration)
	{
		struct timespec ts = {0, 100 * 1000 * 1000};

		nanosleep(&ts, NULL);	/* EINTR on a signal: the loop condition sees pgs_stop */
		clock_gettime(CLOCK_MONOTONIC, &now);
		*elapsed = (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
		if ((int) *elapsed == last_shown)
			continue;
		last_shown = (int) *elapsed;
		r = pgs_query(c, "SELECT shared_functions, shared_callgraphs FROM pgscope_status()", 0, NULL, NULL, 0);
		if (r == NULL && PQstatus(c) != CONNECTION_OK)
		{
			PQreset(c);
			if (PQstatus(c) != CONNECTION_OK || !monitor_switch_off(c, o, old_interval))
				pgs_die("lost the connection to the server: profiling switches itself off within %s s (its expiry)",
						expire);
			pgs_err("lost the connection to the server after %.1f s; reconnected and switched profiling off",
					*elapsed);
			if (tty)
				fputc('\n', stderr);
			return false;
		}
		if (r && tty)
			fprintf(stderr, "\r%s: %3d/%.0f s, %s functions, %s call stacks so far ", pgs_cmd, last_shown,
					o->duration, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		PQclear(r);
	}
	if (tty)
		fputc('\n', stderr);
	return true;
}

static int
cmd_monitor(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	char		pidbuf[32],
				expire[32];
	long		old_interval = -1;
	double		elapsed;
	bool		lost;
	char	   *doc;
	int			rc;

	parse_opts(argc, argv, &o, "pgscope plprof monitor", "pid all duration interval output save title format top");
	no_positional(argc, argv);
	if (o.all == (o.pid != 0))
		pgs_usage("give either --pid N or --all");
	if (o.duration < 0)
		pgs_usage("--duration SEC is required");
	c = connect_profiler(&o);
	pgs_require_shared(c);
	claim_monitor(c);
	snprintf(pidbuf, sizeof(pidbuf), "%ld", o.pid);
	monitor_prepare(c, &o, pidbuf, &old_interval);
	/* the server switches it off by itself shortly after the window, should we die */
	snprintf(expire, sizeof(expire), "%.0f", o.duration + 30);
	PQclear(pgs_query_or_die(c, "reset the shared profile", "SELECT pgscope_reset(true)", 0, NULL));
	pgs_catch_signals();
	monitor_enable(c, &o, pidbuf, expire, old_interval);
	fprintf(stderr, "%s: profiling %s for %.1f s (Ctrl-C stops early)\n", pgs_cmd,
			o.all ? "every backend" : "one backend", o.duration);
	lost = !monitor_window(c, &o, expire, old_interval, &elapsed);
	pgs_ack_stop();
	if (!monitor_switch_off(c, &o, old_interval))
	{
		PQreset(c);
		if (PQstatus(c) != CONNECTION_OK || !monitor_switch_off(c, &o, old_interval))
			pgs_die("cannot switch profiling off: %s; it expires by itself within %s s", PQerrorMessage(c), expire);
	}
	if (pgs_stop)
		fprintf(stderr, "%s: stopped after %.1f s; profiling is off\n", pgs_cmd, elapsed);
	doc = fetch_profile(c, true, &o);
	if (o.save)
		save_dataset(c, o.save, doc, false);
	rc = emit(c, doc, &o);
	free(doc);
	PQfinish(c);
	/* the report holds what was collected, but the window was cut short */
	return lost ? EXIT_RUNTIME : rc;
}

/* ---------- datasets ---------- */

static int
cmd_save(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	char	   *doc;
	const char *name;

	parse_opts(argc, argv, &o, "pgscope plprof save", "title replace");
	name = positional(argc, argv, "a dataset NAME");
	check_name(name, "the dataset NAME");
	c = connect_profiler(&o);
	pgs_require_shared(c);
	doc = fetch_profile(c, true, &o);
	save_dataset(c, name, doc, o.replace);
	free(doc);
	PQfinish(c);
	return 0;
}

static int
cmd_list(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	PGresult   *r;

	parse_opts(argc, argv, &o, "pgscope plprof list", "");
	no_positional(argc, argv);
	c = connect_profiler(&o);
	r = pgs_query_or_die(c, "list datasets",
						 "SELECT name, to_char(created, 'YYYY-MM-DD HH24:MI:SS'), "
						 "       jsonb_array_length(profile->'functions'), "
						 "       coalesce(profile->'meta'->>'scope', ''), coalesce(profile->'meta'->>'title', '') "
						 "  FROM pgscope_dataset ORDER BY created, name", 0, NULL);
	printf("%-24s %-19s %9s %-8s %s\n", "name", "created", "functions", "scope", "title");
	for (int i = 0; i < PQntuples(r); i++)
	{
		print_escaped(PQgetvalue(r, i, 0), 24);
		printf(" %-19s %9s ", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		print_escaped(PQgetvalue(r, i, 3), 8);
		putchar(' ');
		print_escaped(PQgetvalue(r, i, 4), 0);
		putchar('\n');
	}
	PQclear(r);
	PQfinish(c);
	return 0;
}

static int
cmd_show(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	PGresult   *r;
	const char *name;
	const char *params[2];
	char		top[32];

	parse_opts(argc, argv, &o, "pgscope plprof show", "top");
	name = positional(argc, argv, "a dataset NAME");
	c = connect_profiler(&o);
	snprintf(top, sizeof(top), "%ld", o.top);
	params[0] = name;
	params[1] = top;
	/* a dataset need not have metadata (an imported minimal document): existence is its own question */
	r = pgs_query_or_die(c, "read the dataset",
						 "SELECT m.key, m.value FROM pgscope_dataset d "
						 "  LEFT JOIN LATERAL jsonb_each_text(CASE jsonb_typeof(d.profile->'meta') WHEN 'object' "
						 "                                    THEN d.profile->'meta' END) m ON true "
						 " WHERE d.name = $1 ORDER BY m.key", 1, params);
	if (PQntuples(r) == 0)
		pgs_die("unknown dataset \"%s\" (pgscope plprof list shows the saved ones)", name);
	printf("dataset ");
	print_escaped(name, 0);
	putchar('\n');
	for (int i = 0; i < PQntuples(r); i++)
	{
		if (PQgetisnull(r, i, 0))
			continue;
		printf("  ");
		print_escaped(PQgetvalue(r, i, 0), 20);
		putchar(' ');
		print_escaped(PQgetvalue(r, i, 1), 0);
		putchar('\n');
	}
	PQclear(r);
	r = pgs_query_or_die(c, "read the dataset",
						 "SELECT f->>'signature', f->>'calls', round((f->>'total_ns')::numeric / 1e6, 3), "
						 "       round((f->>'self_ns')::numeric / 1e6, 3), "
						 "       round(100 * (f->>'self_ns')::numeric / nullif(sum((f->>'self_ns')::numeric) OVER (), 0), 1) "
						 "  FROM pgscope_dataset d, jsonb_array_elements(d.profile->'functions') f "
						 " WHERE d.name = $1 ORDER BY (f->>'self_ns')::bigint DESC LIMIT $2::int",
						 2, params);
	printf("\n%12s %14s %14s %7s  %s\n", "calls", "total ms", "self ms", "self %", "function");
	for (int i = 0; i < PQntuples(r); i++)
	{
		printf("%12s %14s %14s %7s  ", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
			   PQgetvalue(r, i, 4));
		print_escaped(PQgetvalue(r, i, 0), 0);
		putchar('\n');
	}
	PQclear(r);
	PQfinish(c);
	return 0;
}

static int
cmd_delete(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	PGresult   *r;
	const char *name;
	const char *params[1];
	bool		found;

	parse_opts(argc, argv, &o, "pgscope plprof delete", "");
	name = positional(argc, argv, "a dataset NAME");
	params[0] = name;
	c = connect_profiler(&o);
	r = pgs_query_or_die(c, "delete the dataset", "DELETE FROM pgscope_dataset WHERE name = $1 RETURNING 1", 1, params);
	found = PQntuples(r) > 0;
	PQclear(r);
	PQfinish(c);
	if (!found)
		pgs_die("unknown dataset \"%s\" (pgscope plprof list shows the saved ones)", name);
	fprintf(stderr, "%s: deleted dataset \"%s\"\n", pgs_cmd, name);
	return 0;
}

static int
cmd_report(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	char	   *doc;
	int			rc;

	parse_opts(argc, argv, &o, "pgscope plprof report", "name shared output title format top");
	no_positional(argc, argv);
	if ((o.name == NULL) == !o.shared)
		pgs_usage("give either --name NAME (a saved dataset) or --shared (the instance-wide profile now)");
	c = connect_profiler(&o);
	if (o.shared)
	{
		pgs_require_shared(c);
		doc = fetch_profile(c, true, &o);
	}
	else
		doc = fetch_dataset(c, o.name);
	rc = emit(c, doc, &o);
	free(doc);
	PQfinish(c);
	return rc;
}

static int
cmd_export(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	char	   *doc;
	int			rc;

	parse_opts(argc, argv, &o, "pgscope plprof export", "output");
	o.name = positional(argc, argv, "a dataset NAME");
	o.format = PGS_FORMAT_JSON;
	c = connect_profiler(&o);
	doc = fetch_dataset(c, o.name);
	rc = emit(c, doc, &o);
	free(doc);
	PQfinish(c);
	return rc;
}

/*
 * A document to import: read whole, but never more than a dataset can hold
 * (jsonb stops at 256 MiB), and it must look like a JSON object; a signal
 * stops the reading.
 */
#define PGS_MAX_DOCUMENT ((size_t) 256 << 20)

static char *
read_document(const char *file, size_t *len)
{
	int			fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
	PgsBuf		b;
	char		chunk[65536];
	ssize_t		n;
	size_t		i;

	if (fd < 0)
		pgs_die("cannot read %s: %s", file, strerror(errno));
	pgs_buf_init(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0)
	{
		if (pgs_stop)
			pgs_die("interrupted while reading %s; nothing was imported", file);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			pgs_die("cannot read %s: %s", file, strerror(errno));
		}
		if (b.len + (size_t) n > PGS_MAX_DOCUMENT)
			pgs_die("cannot import %s: it is larger than 256 MiB, more than a dataset can hold", file);
		pgs_buf_append(&b, chunk, (size_t) n);
		/* not even the start of a JSON object: no need to read the rest */
		for (i = 0; i < b.len && strchr(" \t\r\n", b.data[i]) && b.data[i]; i++)
			;
		if (i < b.len && b.data[i] != '{')
			pgs_die("cannot import %s: it is not a JSON document (pgscope plprof export writes one)", file);
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (b.len == 0)
		pgs_die("cannot import %s: the file is empty", file);
	if (memchr(b.data, '\0', b.len))
		pgs_die("cannot import %s: it holds a NUL byte, which no JSON document can contain", file);
	*len = b.len;
	return b.data;
}

static int
cmd_import(int argc, char **argv)
{
	PlprofOpts	o;
	PGconn	   *c;
	PGresult   *r;
	char	   *doc;
	const char *file;
	const char *params[3];
	char		err[2048];
	size_t		len;

	parse_opts(argc, argv, &o, "pgscope plprof import", "name replace");
	file = positional(argc, argv, "a FILE to import (- for standard input)");
	pgs_catch_signals();
	doc = read_document(file, &len);
	c = connect_profiler(&o);
	if (o.name == NULL)
	{
		/* the document's own name must make a good dataset name too */
		const char *p1[1] = {doc};

		r = pgs_query(c, "SELECT $1::jsonb->'dataset'->>'name'", 1, p1, err, sizeof(err));
		if (r == NULL)
			pgs_die("cannot import %s: %s", file, err);
		if (!PQgetisnull(r, 0, 0))
			check_name(PQgetvalue(r, 0, 0), "the name in the document");
		PQclear(r);
	}
	params[0] = doc;
	params[1] = o.name;
	params[2] = o.replace ? "true" : "false";
	r = pgs_query(c,
				  "WITH d AS (SELECT $1::jsonb AS d), "
				  "     v AS (SELECT coalesce($2::text, d->'dataset'->>'name') AS name, "
				  "                  coalesce((d->'dataset'->>'created')::timestamptz, now()) AS created, "
				  "                  pgscope_check_profile(d - 'dataset') AS profile FROM d) "
				  "INSERT INTO pgscope_dataset (name, created, profile) "
				  "SELECT name, created, profile FROM v "
				  "ON CONFLICT (name) DO UPDATE SET created = EXCLUDED.created, profile = EXCLUDED.profile "
				  "  WHERE $3::boolean "
				  "RETURNING name",
				  3, params, err, sizeof(err));
	if (r == NULL)
	{
		if (strstr(err, "null value in column \"name\""))
			pgs_die("cannot import %s: the file names no dataset: give --name NAME", file);
		pgs_die("cannot import %s: %s", file, err);
	}
	if (PQntuples(r) == 0)
		pgs_die("cannot import %s: a dataset of that name exists (use --replace or --name NEW)", file);
	fprintf(stderr, "%s: imported dataset \"%s\"\n", pgs_cmd, PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	free(doc);
	return 0;
}

int
cmd_plprof_run_argv(int argc, char **argv)
{
	return cmd_run(argc, argv);
}

int
cmd_plprof(int argc, char **argv)
{
	static const struct
	{
		const char *name;
		int			(*fn) (int, char **);
	}			cmds[] = {
		{"run", cmd_run}, {"monitor", cmd_monitor}, {"save", cmd_save}, {"list", cmd_list},
		{"show", cmd_show}, {"delete", cmd_delete}, {"report", cmd_report},
		{"export", cmd_export}, {"import", cmd_import},
	};

	pgs_cmd = "pgscope plprof";
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
	{
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	pgs_usage("unknown command \"%s\" (see pgscope plprof --help)", argv[1]);
}
