/*
 * sqlsplit.c - the statement splitter behind "pgscope plprof run -f".
 */
#include "sqlsplit.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static bool
ident_char(char c)
{
	return isalnum((unsigned char) c) || c == '_' || (unsigned char) c >= 0x80;
}

/* length of a dollar-quote tag starting at p ("$$" or "$tag$"), 0 if none */
static size_t
dollar_tag(const char *p, const char *end)
{
	const char *q = p + 1;

	if (q < end && *q == '$')
		return 2;
	if (q >= end || !(isalpha((unsigned char) *q) || *q == '_' || (unsigned char) *q >= 0x80))
		return 0;
	while (q < end && (ident_char(*q)) && *q != '$')
		q++;
	if (q < end && *q == '$')
		return (size_t) (q - p) + 1;
	return 0;
}

static bool
only_blank(const char *s, size_t n)
{
	/* a statement of whitespace and comments only is skipped */
	size_t		i = 0;

	while (i < n)
	{
		if (isspace((unsigned char) s[i]))
			i++;
		else if (s[i] == '-' && i + 1 < n && s[i + 1] == '-')
		{
			while (i < n && s[i] != '\n')
				i++;
		}
		else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*')
		{
			int			depth = 1;

			i += 2;
			while (i < n && depth > 0)
			{
				if (s[i] == '/' && i + 1 < n && s[i + 1] == '*')
					depth++, i += 2;
				else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/')
					depth--, i += 2;
				else
					i++;
			}
		}
		else
			return false;
	}
	return true;
}

void
pgs_sql_position(const char *sql, size_t off, int *line, int *col)
{
	int			l = 1,
				c = 1;

	for (size_t i = 0; i < off && sql[i]; i++)
	{
		if (sql[i] == '\n')
			l++, c = 1;
		else if (((unsigned char) sql[i] & 0xC0) != 0x80)
			c++;
	}
	*line = l;
	*col = c;
}

int
pgs_split_sql(const char *sql, size_t len, PgsStmtSpan **spans, int *unterminated)
{
	const char *p = sql,
			   *end = sql + len;
	size_t		stmt_start = 0;
	int			paren = 0,
				n = 0,
				cap = 16;
	PgsStmtSpan *out = pgs_xmalloc(sizeof(PgsStmtSpan) * cap);

	*unterminated = 0;

#define EMIT(endoff) \
	do { \
		size_t s_ = stmt_start, e_ = (endoff); \
		while (s_ < e_ && isspace((unsigned char) sql[s_])) s_++; \
		if (!only_blank(sql + s_, e_ - s_)) \
		{ \
			int l_, c_; \
			if (n == cap) { cap *= 2; out = realloc(out, sizeof(PgsStmtSpan) * cap); \
				if (!out) pgs_die("cannot allocate memory for statements"); } \
			pgs_sql_position(sql, s_, &l_, &c_); \
			out[n].start = s_; out[n].len = e_ - s_; out[n].line = l_; n++; \
		} \
	} while (0)

	while (p < end)
	{
		char		ch = *p;

		if (ch == '-' && p + 1 < end && p[1] == '-')
		{
			while (p < end && *p != '\n')
				p++;
		}
		else if (ch == '/' && p + 1 < end && p[1] == '*')
		{
			const char *open = p;
			int			depth = 1;

			p += 2;
			while (p < end && depth > 0)
			{
				if (*p == '/' && p + 1 < end && p[1] == '*')
					depth++, p += 2;
				else if (*p == '*' && p + 1 < end && p[1] == '/')
					depth--, p += 2;
				else
					p++;
			}
			if (depth > 0 && !*unterminated)
			{
				int			c;

				pgs_sql_position(sql, open - sql, unterminated, &c);
			}
		}
		else if (ch == '\'' || ch == '"')
		{
			const char *open = p;
			/* E'...' allows backslash escapes */
			bool		backslash = ch == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
				(p - 1 == sql || !ident_char(p[-2]));

			p++;
			while (p < end)
			{
				if (backslash && *p == '\\' && p + 1 < end)
					p += 2;
				else if (*p == ch && p + 1 < end && p[1] == ch)
					p += 2;
				else if (*p == ch)
					break;
				else
					p++;
			}
			if (p >= end && !*unterminated)
			{
				int			c;

				pgs_sql_position(sql, open - sql, unterminated, &c);
			}
			p++;
		}
		else if (ch == '$' && (p == sql || !ident_char(p[-1])) && dollar_tag(p, end) > 0)
		{
			size_t		tl = dollar_tag(p, end);
			const char *open = p,
					   *q = p + tl;

			while (q < end && !(*q == '$' && (size_t) (end - q) >= tl && memcmp(q, open, tl) == 0))
				q++;
			if (q >= end)
			{
				if (!*unterminated)
				{
					int			c;

					pgs_sql_position(sql, open - sql, unterminated, &c);
				}
				p = end;
			}
			else
				p = q + tl;
		}
		else if (ch == '(')
			paren++, p++;
		else if (ch == ')')
		{
			if (paren > 0)
				paren--;
			p++;
		}
		else if (ch == ';' && paren == 0)
		{
			EMIT((size_t) (p - sql) + 1);
			p++;
			stmt_start = (size_t) (p - sql);
		}
		else
			p++;
	}
	EMIT(len);
#undef EMIT
	*spans = out;
	return n;
}
