/*
 * sqlsplit.h - splits an SQL script into statements the way psql does for
 * plain SQL: semicolons end statements except inside literals, quoted
 * identifiers, comments, parentheses and the BEGIN ATOMIC ... END body of a
 * CREATE FUNCTION or PROCEDURE.  It also tells which statements control
 * transactions and which copy from standard input or to standard output; a
 * COPY ... FROM STDIN in a script is followed by its data, up to a line "\.",
 * as in psql.  Linear in the input: one statement at a time, ready to run
 * before the rest is read.
 */
#ifndef PGSCOPE_SQLSPLIT_H
#define PGSCOPE_SQLSPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "sqllex.h"

typedef enum PgsStmtKind
{
	PGS_STMT_OTHER,
	PGS_STMT_TXN,				/* BEGIN, START, COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION, ... */
	PGS_STMT_COPY_IN,			/* COPY ... FROM STDIN */
	PGS_STMT_COPY_OUT			/* COPY ... TO STDOUT */
} PgsStmtKind;

typedef struct PgsStmtSpan
{
	size_t		start;			/* byte offset of the statement's first token */
	size_t		len;			/* up to and including its semicolon */
	int			line;			/* 1-based line of start */
	PgsStmtKind kind;
	/* COPY FROM STDIN of a script: the data lines that follow it, without "\." */
	bool		has_data;
	size_t		data_start;
	size_t		data_len;
} PgsStmtSpan;

typedef struct PgsSplitter
{
	PgsLexer	lx;
	bool		inline_copy_data;	/* COPY FROM STDIN reads the lines that follow */
	int			unterminated;	/* line of an unterminated literal or comment, 0 if none */
	int			nul_line;		/* line of the first NUL byte, 0 if none */
} PgsSplitter;

void pgs_split_init(PgsSplitter *sp, const char *sql, size_t len, bool inline_copy_data);

/*
 * The next non-empty statement (empty ones, ";" alone or comments only, are
 * skipped); false at the end.  An unterminated literal or comment makes the
 * rest one statement and sets sp->unterminated.
 */
bool pgs_split_next(PgsSplitter *sp, PgsStmtSpan *out);

/* 1-based line and column of byte offset off (one scan from the start: for error messages) */
void pgs_sql_position(const char *sql, size_t off, int *line, int *col);

#endif
