/*
 * proto.h - turns the first bytes of a client request, as the statement
 * tracer captured them, into the statement's text: a simple Query carries
 * it, a Parse names it, a Bind refers to a prepared statement whose Parse
 * was seen earlier.  Also the query normalizer for per-query statistics.
 */
#ifndef PGSCOPE_PROTO_H
#define PGSCOPE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum PgsProtocol
{
	PGS_PROTO_SIMPLE,
	PGS_PROTO_EXTENDED,
	PGS_PROTO_PREPARED
} PgsProtocol;

extern const char *const pgs_protocol_names[];

/* remembers a named Parse of backend pid (req = the captured bytes) */
void pgs_proto_learn(uint32_t pid, const char *req, size_t len);

/*
 * The statement text of a captured request, malloc'd, and its protocol;
 * *truncated is set when the text was cut at the capture length.  NULL when
 * the request names a prepared statement whose Parse was not seen.
 */
char *pgs_proto_text(uint32_t pid, const char *req, size_t len, PgsProtocol *proto, bool *truncated);

/*
 * The text of statement `unit` (0-based) of the `qindex`-th simple Query
 * message in a captured read, malloc'd; NULL when that Query or statement
 * is not in what was captured.  (A simple Query may hold several
 * statements: the server executes them one by one.)
 */
char *pgs_proto_query_statement(const char *req, size_t len, unsigned qindex, unsigned unit, bool *truncated);

/*
 * The statements a read of several messages executes, in order (one per
 * Execute, one per statement of each simple Query): their texts, malloc'd,
 * in *texts; messages beyond the captured bytes (messages counted by the
 * kernel) get a text that says so.  Returns how many.
 */
size_t pgs_proto_batch(uint32_t pid, const char *req, size_t len, unsigned messages, char ***texts);

/* statement `unit` (0-based) of SQL text, malloc'd; NULL when it has fewer */
char *pgs_sql_statement(const char *text, unsigned unit);

/* literals replaced by $1, $2, ... and white space folded (malloc'd) */
char *pgs_normalize_query(const char *q);

#endif
