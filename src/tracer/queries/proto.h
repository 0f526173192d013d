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
 * A backend's client messages, decoded across its reads (messages may
 * straddle reads), for reads of several statements: the texts of the
 * statements each read executes (one per Execute, one per statement of a
 * simple Query), from the Parse and Bind messages seen before them.
 */
typedef struct PgsProtoStream PgsProtoStream;

PgsProtoStream *pgs_stream_new(uint32_t pid);
void pgs_stream_free(PgsProtoStream *st);
/* forgets a message half collected (the next read does not follow this one) */
void pgs_stream_reset(PgsProtoStream *st);
/*
 * Statements' texts (malloc'd strings), n of them (cap allocated), each with
 * its Sync group: how many Syncs and simple Queries of its read were whole
 * before it (the server answers each group with a ReadyForQuery).
 */
typedef struct PgsTexts
{
	char	  **text;
	uint32_t   *group;
	size_t		n,
				cap;
} PgsTexts;

void pgs_texts_free(PgsTexts *t);
/*
 * Feeds one read from its first byte: the texts of the statements whose
 * Execute or Query completed in it are appended to *out, their groups
 * counted from this read's start.  False when the bytes are not messages
 * where a message should start (the stream was reset).
 */
bool pgs_stream_feed(PgsProtoStream *st, const char *data, size_t len, PgsTexts *out);
/* whether the last feed decoded a simple Query (else its statements were Executes) */
bool pgs_stream_saw_query(const PgsProtoStream *st);

/* statement `unit` (0-based) of SQL text, malloc'd; NULL when it has fewer */
char *pgs_sql_statement(const char *text, unsigned unit);

/* literals replaced by $1, $2, ... and white space folded (malloc'd) */
char *pgs_normalize_query(const char *q);

/*
 * A hash of q's shape (q's len bytes with its integer constants and plain
 * string literals left out); texts of one shape normalize alike, so a cache
 * of normalized texts keyed by it saves the lexer.  0: q holds something the
 * shape does not take apart with certainty (then normalize it).
 */
uint64_t pgs_query_shape(const char *q, size_t len);

#endif
