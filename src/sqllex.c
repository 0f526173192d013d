/*
 * sqllex.c - the SQL lexer shared by the workload splitter and the query
 * normaliser.  It follows PostgreSQL's scan.l with standard_conforming_strings
 * on (the default since 9.1): backslashes escape only in E'...' literals.
 */
#include "sqllex.h"

#include <string.h>

static bool
ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
ident_cont(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool
digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

void
pgs_lex_init(PgsLexer *lx, const char *s, size_t len)
{
	lx->s = s;
	lx->len = len;
	lx->pos = 0;
	lx->line = 1;
}

/* length of the dollar-quote tag at p ("$$" or "$tag$"), 0 if none */
static size_t
dollar_tag(const char *p, const char *end)
{
	const char *q = p + 1;

	if (q < end && *q == '$')
		return 2;
	if (q >= end || !ident_start((unsigned char) *q))
		return 0;
	while (q < end && *q != '$' && ident_cont((unsigned char) *q))
		q++;
	return (q < end && *q == '$') ? (size_t) (q - p) + 1 : 0;
}

/* end of a quoted run opened at p (a quote character q), or end when unterminated */
static const char *
quoted_end(const char *p, const char *end, char q, bool backslash, bool *unterminated)
{
	p++;
	while (p < end)
	{
		if (backslash && *p == '\\' && p + 1 < end)
			p += 2;
		else if (*p == q && p + 1 < end && p[1] == q)
			p += 2;
		else if (*p == q)
			return p + 1;
		else
			p++;
	}
	*unterminated = true;
	return end;
}

/* the end of a block comment opened before e (slash star): they nest */
static const char *
block_comment_end(const char *e, const char *end, bool *unterminated)
{
	int			depth = 1;

	while (e < end && depth > 0)
	{
		if (*e == '/' && e + 1 < end && e[1] == '*')
			depth++, e += 2;
		else if (*e == '*' && e + 1 < end && e[1] == '/')
			depth--, e += 2;
		else
			e++;
	}
	*unterminated = depth > 0;
	return e;
}

/* a quoted token at p ('...', "...", E'...', B'...', X'...', N'...', U&'...', U&"..."): its end, NULL if none */
static const char *
quoted_token(const char *p, const char *end, PgsToken *t)
{
	unsigned char c = (unsigned char) *p;
	const char *e = p + 1;

	if (c == '\'' || c == '"')
	{
		t->kind = c == '\'' ? PGS_TOK_STRING : PGS_TOK_QIDENT;
		return quoted_end(p, end, (char) c, false, &t->unterminated);
	}
	if (c && e < end && *e == '\'' && strchr("EeBbXxNn", c))
	{
		t->kind = PGS_TOK_STRING;
		return quoted_end(e, end, '\'', c == 'E' || c == 'e', &t->unterminated);
	}
	if ((c == 'U' || c == 'u') && e + 1 < end && *e == '&' && (e[1] == '\'' || e[1] == '"'))
	{
		t->kind = e[1] == '\'' ? PGS_TOK_STRING : PGS_TOK_QIDENT;
		return quoted_end(e + 1, end, e[1], false, &t->unterminated);
	}
	return NULL;
}

/* the end of a dollar-quoted string whose tag (tl bytes) starts at p */
static const char *
dollar_end(const char *p, const char *end, size_t tl, bool *unterminated)
{
	const char *q = p + tl;

	while (q < end && !(*q == '$' && (size_t) (end - q) >= tl && memcmp(q, p, tl) == 0))
		q++;
	if (q >= end)
	{
		*unterminated = true;
		return end;
	}
	return q + tl;
}

/* the end of a number at p: 42, 4.2, .5, 1e-3, 0x1F, 1_000 (PostgreSQL 16) */
static const char *
number_end(const char *p, const char *end)
{
	const char *e = p + 1;

	while (e < end)
	{
		if ((*e == '+' || *e == '-') && (e[-1] == 'e' || e[-1] == 'E') &&
			!(p[0] == '0' && e - p >= 2 && (p[1] == 'x' || p[1] == 'X')))
			e++;
		else if (digit((unsigned char) *e) || ident_start((unsigned char) *e) ||
				 (*e == '.' && !(e + 1 < end && e[1] == '.')))
			e++;
		else
			break;
	}
	return e;
}

static bool
space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void
pgs_lex_next(PgsLexer *lx, PgsToken *t)
{
	const char *s = lx->s,
			   *end = s + lx->len,
			   *p = s + lx->pos,
			   *e,
			   *q;
	unsigned char c;
	size_t		tl;

	t->start = lx->pos;
	t->line = lx->line;
	t->unterminated = false;
	if (p >= end)
	{
		t->kind = PGS_TOK_END;
		t->len = 0;
		return;
	}
	c = (unsigned char) *p;
	e = p + 1;
	if (space(c))
	{
		t->kind = PGS_TOK_SPACE;
		while (e < end && space((unsigned char) *e))
			e++;
	}
	else if (c == '-' && e < end && *e == '-')
	{
		t->kind = PGS_TOK_COMMENT;
		while (e < end && *e != '\n' && *e != '\r')
			e++;
	}
	else if (c == '/' && e < end && *e == '*')
	{
		t->kind = PGS_TOK_COMMENT;
		e = block_comment_end(e + 1, end, &t->unterminated);
	}
	else if ((q = quoted_token(p, end, t)) != NULL)
		e = q;
	else if (c == '$' && e < end && digit((unsigned char) *e))
	{
		t->kind = PGS_TOK_PARAM;
		while (e < end && digit((unsigned char) *e))
			e++;
	}
	else if (c == '$' && (tl = dollar_tag(p, end)) > 0)
	{
		t->kind = PGS_TOK_STRING;
		e = dollar_end(p, end, tl, &t->unterminated);
	}
	else if (ident_start(c))
	{
		t->kind = PGS_TOK_IDENT;
		while (e < end && ident_cont((unsigned char) *e))
			e++;
	}
	else if (digit(c) || (c == '.' && e < end && digit((unsigned char) *e)))
	{
		t->kind = PGS_TOK_NUMBER;
		e = number_end(p, end);
	}
	else
		t->kind = c == ';' ? PGS_TOK_SEMI : c == '(' ? PGS_TOK_LPAREN : c == ')' ? PGS_TOK_RPAREN : PGS_TOK_OTHER;

	t->len = (size_t) (e - p);
	for (const char *n = p; (n = memchr(n, '\n', (size_t) (e - n))) != NULL; n++)
		lx->line++;
	lx->pos += t->len;
}

bool
pgs_tok_is(const PgsLexer *lx, const PgsToken *t, const char *word)
{
	size_t		n = strlen(word);

	if (t->kind != PGS_TOK_IDENT || t->len != n)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		a = lx->s[t->start + i];

		if (a >= 'A' && a <= 'Z')
			a += 'a' - 'A';
		if (a != word[i])
			return false;
	}
	return true;
}
