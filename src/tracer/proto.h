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
 * *truncated is set when the text was cut at the capture length.
 */
char *pgs_proto_text(uint32_t pid, const char *req, size_t len, PgsProtocol *proto, bool *truncated);

/*
 * Whether a captured request executes anything (a Query or an Execute
 * message).  A round trip that only Parses (PQprepare) is not a statement
 * execution; when the capture was cut before the end, the answer is yes.
 */
bool pgs_proto_executes(const char *req, size_t len, bool cut);

/* literals replaced by $1, $2, ... and white space folded (malloc'd) */
char *pgs_normalize_query(const char *q);

#endif
