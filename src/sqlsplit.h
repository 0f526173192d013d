/*
 * sqlsplit.h - splits an SQL script into statements the way psql does for
 * plain SQL: semicolons end statements except inside quotes ('...', E'...',
 * "..."), dollar quotes ($$...$$, $tag$...$tag$), comments (-- and nested
 * C-style blocks) and parentheses.
 */
#ifndef PGSCOPE_SQLSPLIT_H
#define PGSCOPE_SQLSPLIT_H

#include <stddef.h>

typedef struct PgsStmtSpan
{
	size_t		start;			/* byte offset of the statement's first character */
	size_t		len;
	int			line;			/* 1-based line of start */
} PgsStmtSpan;

/*
 * Returns the number of statements (empty ones skipped) and a malloc'd array
 * in *spans.  An unterminated quote or comment is reported through
 * *unterminated (its 1-based line), 0 otherwise; the rest is then one
 * statement.
 */
int pgs_split_sql(const char *sql, size_t len, PgsStmtSpan **spans, int *unterminated);

/* 1-based line and column of byte offset off */
void pgs_sql_position(const char *sql, size_t off, int *line, int *col);

#endif
