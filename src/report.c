/*
 * report.c - the HTML report is the embedded template with the embedded CSS
 * and JS and the profile document inlined; the browser does the layout.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "util.h"

extern const char pgs_report_html[];
extern const char pgs_report_css[];
extern const char pgs_report_js[];

int
pgs_parse_format(const char *s)
{
	if (strcmp(s, "html") == 0)
		return PGS_FORMAT_HTML;
	if (strcmp(s, "folded") == 0)
		return PGS_FORMAT_FOLDED;
	if (strcmp(s, "json") == 0)
		return PGS_FORMAT_JSON;
	return -1;
}

/* s with the characters HTML gives a meaning written as entities */
static void
append_html_escaped(PgsBuf *b, const char *s)
{
	for (; *s; s++)
	{
		const char *entity = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : NULL;

		if (entity)
			pgs_buf_puts(b, entity);
		else
			pgs_buf_append(b, s, 1);
	}
}

/*
 * JSON inside <script>: '<' only occurs inside JSON strings, where \u003c
 * means the same, so "</script>" in a function's source cannot end the block.
 */
static void
append_script_json(PgsBuf *b, const char *json)
{
	for (const char *s = json; *s; s++)
	{
		if (*s == '<')
			pgs_buf_puts(b, "\\u003c");
		else
			pgs_buf_append(b, s, 1);
	}
}

static void
render_html(PgsBuf *out, const char *doc, const char *title, int top)
{
	const char *t = pgs_report_html;

	while (*t)
	{
		const char *next = t + strcspn(t, "/P");

		pgs_buf_append(out, t, next - t);
		t = next;
		if (*t == '\0')
			break;
		if (strncmp(t, "/*PGSCOPE_CSS*/", 15) == 0)
		{
			pgs_buf_puts(out, pgs_report_css);
			t += 15;
		}
		else if (strncmp(t, "/*PGSCOPE_JS*/", 14) == 0)
		{
			pgs_buf_puts(out, pgs_report_js);
			t += 14;
		}
		else if (strncmp(t, "PGSCOPE_DATA", 12) == 0)
		{
			append_script_json(out, doc);
			t += 12;
		}
		else if (strncmp(t, "PGSCOPE_TOP", 11) == 0)
		{
			pgs_buf_printf(out, "%d", top > 0 ? top : 20);
			t += 11;
		}
		else if (strncmp(t, "PGSCOPE_TITLE", 13) == 0)
		{
			append_html_escaped(out, title);
			t += 13;
		}
		else
		{
			pgs_buf_append(out, t, 1);
			t++;
		}
	}
}

static int
render_folded(PGconn *c, PgsBuf *out, const char *doc)
{
	/* one "frame;frame;frame value" line per stack, value = self time in µs */
	const char *sql =
		"SELECT (SELECT string_agg(replace(x, ';', ':'), ';' ORDER BY o) "
		"          FROM jsonb_array_elements_text(e->'stack') WITH ORDINALITY AS s(x, o)) "
		"       || ' ' || round((e->>'self_ns')::numeric / 1000)::bigint "
		"  FROM jsonb_array_elements($1::jsonb->'callgraph') e "
		" ORDER BY 1";
	const char *params[1] = {doc};
	char		err[2048];
	PGresult   *r = pgs_query(c, sql, 1, params, err, sizeof(err));

	if (r == NULL)
	{
		pgs_err("cannot compute folded stacks: %s", err);
		return -EIO;
	}
	for (int i = 0; i < PQntuples(r); i++)
	{
		pgs_buf_puts(out, PQgetvalue(r, i, 0));
		pgs_buf_puts(out, "\n");
	}
	PQclear(r);
	return 0;
}

int
pgs_write_report(PGconn *c, const char *doc, PgsFormat fmt, const char *title, int top,
				 const char *path)
{
	PgsBuf		out;
	int			rc = 0;

	pgs_buf_init(&out);
	if (fmt == PGS_FORMAT_HTML)
		render_html(&out, doc, title ? title : "pgscope PL/pgSQL profile", top);
	else if (fmt == PGS_FORMAT_FOLDED)
		rc = render_folded(c, &out, doc);
	else
	{
		pgs_buf_puts(&out, doc);
		pgs_buf_puts(&out, "\n");
	}
	if (rc == 0)
	{
		rc = pgs_write_file(path, out.data, out.len);
		if (rc != 0)
			pgs_err("cannot write %s: %s", path ? path : "standard output", pgs_output_strerror(rc));
	}
	pgs_buf_free(&out);
	return rc;
}
