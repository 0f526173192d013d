/*
 * sqlsplit.c - the statement splitter behind "pgscope plprof run", on the
 * shared lexer (sqllex.c).  Statement kinds are read from the first tokens:
 * what matters is whether running the statement could end the transaction
 * that "--rollback" holds open, and whether it copies through the client.
 */
#include "sqlsplit.h"

#include <string.h>

void
pgs_split_init(PgsSplitter *sp, const char *sql, size_t len, bool inline_copy_data)
{
	pgs_lex_init(&sp->lx, sql, len);
	sp->inline_copy_data = inline_copy_data;
	sp->unterminated = 0;
	{
		const char *nul = memchr(sql, '\0', len);

		sp->nul_line = 0;
		if (nul)
		{
			int			c;

			pgs_sql_position(sql, (size_t) (nul - sql), &sp->nul_line, &c);
			if (sp->nul_line == 0)
				sp->nul_line = 1;
		}
	}
}

void
pgs_sql_position(const char *sql, size_t off, int *line, int *col)
{
	int			l = 1,
				c = 1;

	for (size_t i = 0; i < off; i++)
	{
		if (sql[i] == '\n')
			l++, c = 1;
		else if (((unsigned char) sql[i] & 0xC0) != 0x80)
			c++;
	}
	*line = l;
	*col = c;
}

/* what a statement's first words make of it; words[] holds up to 4 identifiers */
static PgsStmtKind
txn_kind(const PgsLexer *lx, const PgsToken *w, int n)
{
	static const char *const txn[] = {"begin", "start", "commit", "end", "rollback", "abort", NULL};

	if (n == 0)
		return PGS_STMT_OTHER;
	/* ROLLBACK TO [SAVEPOINT] stays inside the transaction */
	if ((pgs_tok_is(lx, &w[0], "rollback") || pgs_tok_is(lx, &w[0], "abort")) && n > 1 &&
		pgs_tok_is(lx, &w[1], "to"))
		return PGS_STMT_OTHER;
	if ((pgs_tok_is(lx, &w[0], "rollback") || pgs_tok_is(lx, &w[0], "abort")) && n > 2 &&
		(pgs_tok_is(lx, &w[1], "work") || pgs_tok_is(lx, &w[1], "transaction")) && pgs_tok_is(lx, &w[2], "to"))
		return PGS_STMT_OTHER;
	for (int i = 0; txn[i]; i++)
		if (pgs_tok_is(lx, &w[0], txn[i]))
			return PGS_STMT_TXN;
	if (pgs_tok_is(lx, &w[0], "prepare") && n > 1 && pgs_tok_is(lx, &w[1], "transaction"))
		return PGS_STMT_TXN;
	return PGS_STMT_OTHER;
}

/* after the ";" of a COPY FROM STDIN: the rest of its line, then data up to a line "\." */
static void
take_copy_data(PgsSplitter *sp, PgsStmtSpan *out)
{
	const char *s = sp->lx.s,
			   *end = s + sp->lx.len,
			   *p = s + sp->lx.pos,
			   *nl = memchr(p, '\n', (size_t) (end - p));
	const char *data,
			   *line;

	data = nl ? nl + 1 : end;
	if (nl)
		sp->lx.line++;
	line = data;
	while (line < end)
	{
		const char *eol = memchr(line, '\n', (size_t) (end - line));
		size_t		ll = eol ? (size_t) (eol - line) : (size_t) (end - line);

		if ((ll == 2 || (ll == 3 && line[2] == '\r')) && line[0] == '\\' && line[1] == '.')
		{
			out->data_len = (size_t) (line - data);
			sp->lx.pos = eol ? (size_t) (eol + 1 - s) : sp->lx.len;
			if (eol)
				sp->lx.line++;
			goto done;
		}
		if (!eol)
			break;
		line = eol + 1;
		sp->lx.line++;
	}
	/* no "\.": the data runs to the end, as psql reads it */
	out->data_len = (size_t) (end - data);
	sp->lx.pos = sp->lx.len;
done:
	out->has_data = true;
	out->data_start = (size_t) (data - s);
}

bool
pgs_split_next(PgsSplitter *sp, PgsStmtSpan *out)
{
	PgsLexer   *lx = &sp->lx;
	PgsToken	t,
				words[4];
	int			nwords = 0,
				paren = 0,
				atomic = 0;
	bool		started = false,
				is_routine = false,
				copy_stdin = false,
				copy_stdout = false,
				after_from = false,
				after_to = false;

	memset(out, 0, sizeof(*out));
	for (;;)
	{
		pgs_lex_next(lx, &t);
		if (t.unterminated && !sp->unterminated)
			sp->unterminated = t.line;
		if (t.kind == PGS_TOK_END)
			break;
		if (t.kind == PGS_TOK_SPACE || t.kind == PGS_TOK_COMMENT)
			continue;
		if (t.kind == PGS_TOK_SEMI && paren == 0 && atomic == 0)
		{
			if (!started)
				continue;		/* ";" alone */
			out->len = t.start + 1 - out->start;
			break;
		}
		if (!started)
		{
			started = true;
			out->start = t.start;
			out->line = t.line;
		}
		if (t.kind == PGS_TOK_IDENT && nwords < 4)
			words[nwords++] = t;
		if (t.kind == PGS_TOK_LPAREN)
			paren++;
		else if (t.kind == PGS_TOK_RPAREN && paren > 0)
			paren--;
		else if (t.kind == PGS_TOK_IDENT && paren == 0)
		{
			/* psql's rule: in CREATE FUNCTION/PROCEDURE, BEGIN (ATOMIC) and CASE nest until END */
			if (nwords >= 2 && !is_routine && pgs_tok_is(lx, &words[0], "create"))
				for (int i = 1; i < nwords; i++)
					if (pgs_tok_is(lx, &words[i], "function") || pgs_tok_is(lx, &words[i], "procedure"))
						is_routine = true;
			if (is_routine && (pgs_tok_is(lx, &t, "begin") || (atomic > 0 && pgs_tok_is(lx, &t, "case"))))
				atomic++;
			else if (is_routine && atomic > 0 && pgs_tok_is(lx, &t, "end"))
				atomic--;
			if (nwords >= 1 && pgs_tok_is(lx, &words[0], "copy"))
			{
				if (after_from && pgs_tok_is(lx, &t, "stdin"))
					copy_stdin = true;
				if (after_to && pgs_tok_is(lx, &t, "stdout"))
					copy_stdout = true;
				after_from = pgs_tok_is(lx, &t, "from");
				after_to = pgs_tok_is(lx, &t, "to");
				continue;
			}
		}
		after_from = after_to = false;
	}
	if (!started)
		return false;
	if (out->len == 0)
		out->len = lx->pos - out->start;
	out->kind = copy_stdin ? PGS_STMT_COPY_IN : copy_stdout ? PGS_STMT_COPY_OUT : txn_kind(lx, words, nwords);
	if (copy_stdin && sp->inline_copy_data && !sp->unterminated)
		take_copy_data(sp, out);
	return true;
}
