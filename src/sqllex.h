/*
 * sqllex.h - the one SQL lexer of the pgscope binary.  It cuts text into the
 * tokens PostgreSQL's scanner distinguishes where it matters to us: quoted
 * literals of every kind ('...', E'...', B'...', X'...', N'...', U&'...',
 * $tag$...$tag$), quoted identifiers, comments (-- and nested C style),
 * numbers, identifiers and keywords, $n parameters, semicolons and
 * parentheses.  The workload splitter (sqlsplit.c) and the tracer's query
 * normaliser (tracer/proto.c) are both built on it, so they agree on where a
 * string or a comment ends.  It never allocates and runs in linear time; line
 * numbers are counted as it goes.
 */
#ifndef PGSCOPE_SQLLEX_H
#define PGSCOPE_SQLLEX_H

#include <stdbool.h>
#include <stddef.h>

typedef enum PgsTokKind
{
	PGS_TOK_END,				/* no more input */
	PGS_TOK_SPACE,
	PGS_TOK_COMMENT,
	PGS_TOK_STRING,				/* any quoted or dollar-quoted literal */
	PGS_TOK_QIDENT,				/* "quoted identifier" (also U&"...") */
	PGS_TOK_NUMBER,
	PGS_TOK_IDENT,				/* identifiers and keywords */
	PGS_TOK_PARAM,				/* $1 */
	PGS_TOK_SEMI,
	PGS_TOK_LPAREN,
	PGS_TOK_RPAREN,
	PGS_TOK_OTHER				/* operators and punctuation, one character each */
} PgsTokKind;

typedef struct PgsToken
{
	PgsTokKind	kind;
	size_t		start;			/* byte offset in the input */
	size_t		len;
	int			line;			/* 1-based line of its first byte */
	bool		unterminated;	/* a literal, identifier or comment that ran to the end */
} PgsToken;

typedef struct PgsLexer
{
	const char *s;
	size_t		len;
	size_t		pos;
	int			line;
} PgsLexer;

void pgs_lex_init(PgsLexer *lx, const char *s, size_t len);

/* the next token; kind PGS_TOK_END at the end of the input */
void pgs_lex_next(PgsLexer *lx, PgsToken *t);

/* does an identifier token spell word (ASCII, case-insensitive)? */
bool pgs_tok_is(const PgsLexer *lx, const PgsToken *t, const char *word);

#endif
