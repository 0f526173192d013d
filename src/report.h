/*
 * report.h - turns a profile document (JSON, format "pgscope-profile") into
 * what a person reads: the self-contained HTML report, folded stacks for
 * flame-graph tools, or the JSON itself.
 */
#ifndef PGSCOPE_REPORT_H
#define PGSCOPE_REPORT_H

#include <libpq-fe.h>

typedef enum PgsFormat
{
	PGS_FORMAT_HTML,
	PGS_FORMAT_FOLDED,
	PGS_FORMAT_JSON
} PgsFormat;

/* parses "html", "folded" or "json"; -1 otherwise */
int pgs_parse_format(const char *s);

/*
 * Writes doc (JSON text) in the format to path ("-" or NULL: stdout),
 * whole or not at all.  The server connection computes the folded stacks.
 * 0 or -errno; on failure a message went to stderr.
 */
int pgs_write_report(PGconn *c, const char *doc, PgsFormat fmt, const char *title, int top,
					 const char *path);

#endif
