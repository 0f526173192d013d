/*
 * proto.c - protocol decoding for the statement tracer (PostgreSQL frontend/
 * backend protocol 3.0: 'Q' len text; 'P' len name text ...; 'B' len portal
 * name ...) and query normalization.
 */
#include "proto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire.h"
#include "sqllex.h"
#include "sqlsplit.h"
#include "util.h"

const char *const pgs_protocol_names[] = {"simple", "extended", "prepared"};

/* prepared statements seen: (pid, name) -> text, chained hash */
typedef struct Prepared
{
	uint32_t	pid;
	char	   *name;
	char	   *text;
	struct Prepared *next;
} Prepared;

#define NBUCKETS 4096
static Prepared *buckets[NBUCKETS];

static unsigned
bucket_of(uint32_t pid, const char *name)
{
	unsigned	h = pid * 2654435761u;

	for (; *name; name++)
		h = (h ^ (unsigned char) *name) * 16777619u;
	return h % NBUCKETS;
}

/* a C string at off within len bytes; NULL when it runs past the end */
static const char *
cstring_at(const char *req, size_t len, size_t off, size_t *next)
{
	const char *nul;

	if (off >= len)
		return NULL;
	nul = memchr(req + off, '\0', len - off);
	if (nul == NULL)
		return NULL;
	*next = (size_t) (nul - req) + 1;
	return req + off;
}

/* the text from off to NUL or end; truncated when no NUL was captured */
static char *
text_at(const char *req, size_t len, size_t off, bool *truncated)
{
	const char *nul;
	size_t		n;
	char	   *s;

	if (off >= len)
	{
		*truncated = true;
		return pgs_xstrdup("");
	}
	nul = memchr(req + off, '\0', len - off);
	n = nul ? (size_t) (nul - (req + off)) : len - off;
	*truncated = nul == NULL;
	s = pgs_xmalloc(n + 1);
	memcpy(s, req + off, n);
	s[n] = '\0';
	return s;
}

void
pgs_proto_learn(uint32_t pid, const char *req, size_t len)
{
	size_t		next;
	const char *name;
	bool		trunc;
	Prepared   *p;
	unsigned	b;

	/* only named statements: the unnamed one changes with every Parse, not all of which are seen */
	if (len < 6 || req[0] != PGS_FE_PARSE || (name = cstring_at(req, len, 5, &next)) == NULL || !*name)
		return;
	b = bucket_of(pid, name);
	for (p = buckets[b]; p; p = p->next)
		if (p->pid == pid && strcmp(p->name, name) == 0)
			break;
	if (p == NULL)
	{
		p = pgs_xmalloc(sizeof(*p));
		p->pid = pid;
		p->name = pgs_xstrdup(name);
		p->next = buckets[b];
		buckets[b] = p;
	}
	else
		free(p->text);
	p->text = text_at(req, len, next, &trunc);
}

char *
pgs_proto_text(uint32_t pid, const char *req, size_t len, PgsProtocol *proto, bool *truncated)
{
	size_t		next,
				next2;
	const char *name;

	*truncated = false;
	*proto = PGS_PROTO_EXTENDED;
	if (len < 5)
		return NULL;			/* no whole message captured: the caller has other sources */
	*proto = PGS_PROTO_SIMPLE;
	switch (req[0])
	{
		case PGS_FE_QUERY:
			return text_at(req, len, 5, truncated);
		case PGS_FE_PARSE:
			name = cstring_at(req, len, 5, &next);
			if (name == NULL)
				return text_at(req, len, 5, truncated);
			*proto = *name ? PGS_PROTO_PREPARED : PGS_PROTO_EXTENDED;
			return text_at(req, len, next, truncated);
		case PGS_FE_BIND:
			*proto = PGS_PROTO_PREPARED;
			if (cstring_at(req, len, 5, &next) && (name = cstring_at(req, len, next, &next2)) != NULL)
			{
				for (Prepared *p = buckets[bucket_of(pid, name)]; p; p = p->next)
					if (p->pid == pid && strcmp(p->name, name) == 0)
						return pgs_xstrdup(p->text);
				if (!*name)
					*proto = PGS_PROTO_EXTENDED;
				return NULL;
			}
			return NULL;
	}
	/* an Execute of a portal bound earlier, or no message we know */
	*proto = PGS_PROTO_EXTENDED;
	return NULL;
}

char *
pgs_sql_statement(const char *text, unsigned unit)
{
	PgsSplitter sp;
	PgsStmtSpan span;
	unsigned	i = 0;

	pgs_split_init(&sp, text, strlen(text), false);
	while (pgs_split_next(&sp, &span))
	{
		if (i++ == unit)
		{
			size_t		n = span.len;

			/* the server's text of a statement has no terminating semicolon */
			while (n > 0 && (text[span.start + n - 1] == ';' || isspace((unsigned char) text[span.start + n - 1])))
				n--;
			return strndup(text + span.start, n);
		}
	}
	return NULL;
}

static const char *
learned_text(uint32_t pid, const char *name)
{
	for (Prepared *p = buckets[bucket_of(pid, name)]; p; p = p->next)
		if (p->pid == pid && strcmp(p->name, name) == 0)
			return p->text;
	return NULL;
}


/*
 * A backend's messages decoded across reads: the head of each message (up
 * to STREAM_HEAD bytes: names and texts; a long Bind's parameters are
 * skipped) is collected until the message is whole, then decoded.
 */
#define STREAM_HEAD (8192 + 64)

typedef struct Portal
{
	char	   *name;
	char	   *text;			/* NULL: unknown */
} Portal;

struct PgsProtoStream
{
	uint32_t	pid;
	char		head[STREAM_HEAD];
	size_t		head_len;
	uint64_t	msg_total;		/* 1 + length of the message being collected, 0: header incomplete */
	uint64_t	consumed;
	char	   *unnamed;		/* the unnamed statement's text */
	Portal	   *portals;
	size_t		nportals,
				pcap;
	bool		saw_query;		/* the last feed decoded a simple Query */
	uint32_t	group;			/* Syncs and Queries whole in the read being fed */
};

PgsProtoStream *
pgs_stream_new(uint32_t pid)
{
	PgsProtoStream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		pgs_die("out of memory");
	st->pid = pid;
	return st;
}

void
pgs_stream_reset(PgsProtoStream *st)
{
	st->head_len = 0;
	st->msg_total = st->consumed = 0;
}

bool
pgs_stream_saw_query(const PgsProtoStream *st)
{
	return st->saw_query;
}

void
pgs_stream_free(PgsProtoStream *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nportals; i++)
	{
		free(st->portals[i].name);
		free(st->portals[i].text);
	}
	free(st->portals);
	free(st->unnamed);
	free(st);
}

static void
push_text(PgsProtoStream *st, PgsTexts *out, char *text)
{
	size_t		cap = out->cap;

	out->group = pgs_grow(out->group, &cap, out->n, sizeof(uint32_t));
	out->text = pgs_grow(out->text, &out->cap, out->n, sizeof(char *));
	out->group[out->n] = st->group;
	out->text[out->n++] = text;
}

void
pgs_texts_free(PgsTexts *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->text[i]);
	free(t->text);
	free(t->group);
	memset(t, 0, sizeof(*t));
}

static Portal *
portal_of(PgsProtoStream *st, const char *name, bool create)
{
	for (size_t i = 0; i < st->nportals; i++)
		if (strcmp(st->portals[i].name, name) == 0)
			return &st->portals[i];
	if (!create)
		return NULL;
	st->portals = pgs_grow(st->portals, &st->pcap, st->nportals, sizeof(Portal));
	st->portals[st->nportals].name = pgs_xstrdup(name);
	st->portals[st->nportals].text = NULL;
	return &st->portals[st->nportals++];
}

/* one whole message (its head, len bytes of it) */
static void
stream_message(PgsProtoStream *st, const char *m, size_t len, PgsTexts *out)
{
	size_t		next,
				next2;
	const char *name,
			   *stmt;
	bool		trunc;
	Portal	   *p;

	switch (m[0])
	{
		case PGS_FE_PARSE:
			if ((name = cstring_at(m, len, 5, &next)) == NULL)
				break;
			if (*name)
				pgs_proto_learn(st->pid, m, len);
			else
			{
				free(st->unnamed);
				st->unnamed = text_at(m, len, next, &trunc);
			}
			break;
		case PGS_FE_BIND:
			if ((name = cstring_at(m, len, 5, &next)) == NULL || (stmt = cstring_at(m, len, next, &next2)) == NULL)
				break;
			p = portal_of(st, name, true);
			free(p->text);
			if (*stmt)
				p->text = learned_text(st->pid, stmt) ? pgs_xstrdup(learned_text(st->pid, stmt)) : NULL;
			else
				p->text = st->unnamed ? pgs_xstrdup(st->unnamed) : NULL;
			break;
		case PGS_FE_EXECUTE:
			name = cstring_at(m, len, 5, &next);
			p = name ? portal_of(st, name, false) : NULL;
			push_text(st, out, pgs_xstrdup(p && p->text ? p->text :
												 "(text unknown: its statement was prepared before tracing began)"));
			break;
		case PGS_FE_QUERY:
			{
				char	   *q = text_at(m, len, 5, &trunc),
						   *one;

				st->saw_query = true;
				for (unsigned u = 0; (one = pgs_sql_statement(q, u)) != NULL; u++)
					push_text(st, out, one);
				free(q);
				st->group++;
			}
			break;
		case PGS_FE_SYNC:
			st->group++;
			break;
	}
}

bool
pgs_stream_feed(PgsProtoStream *st, const char *data, size_t len, PgsTexts *out)
{
	size_t		pos = 0;

	st->saw_query = false;
	st->group = 0;
	while (pos < len)
	{
		uint64_t	take;

		if (st->msg_total == 0)
		{
			size_t		want = 5 - st->head_len,
						t = want < len - pos ? want : len - pos;
			const unsigned char *h = (const unsigned char *) st->head;
			uint32_t	mlen;

			memcpy(st->head + st->head_len, data + pos, t);
			st->head_len += t;
			pos += t;
			if (st->head_len < 5)
				break;
			mlen = ((uint32_t) h[1] << 24) | ((uint32_t) h[2] << 16) | ((uint32_t) h[3] << 8) | h[4];
			if (mlen < 4)
			{
				pgs_stream_reset(st);
				return false;	/* not a message boundary: the caller starts afresh */
			}
			st->msg_total = 1 + (uint64_t) mlen;
			st->consumed = 5;
		}
		take = st->msg_total - st->consumed;
		if (take > len - pos)
			take = len - pos;
		if (st->head_len < STREAM_HEAD)
		{
			size_t		room = STREAM_HEAD - st->head_len,
						c = take < room ? (size_t) take : room;

			memcpy(st->head + st->head_len, data + pos, c);
			st->head_len += c;
		}
		st->consumed += take;
		pos += take;
		if (st->consumed == st->msg_total)
		{
			stream_message(st, st->head, st->head_len, out);
			st->head_len = 0;
			st->msg_total = st->consumed = 0;
		}
	}
	return true;
}

char *
pgs_proto_query_statement(const char *req, size_t len, unsigned qindex, unsigned unit, bool *truncated)
{
	size_t		pos = 0;
	unsigned	q = 0;

	*truncated = false;
	while (pos + 5 <= len)
	{
		const unsigned char *m = (const unsigned char *) req + pos;
		uint32_t	mlen = ((uint32_t) m[1] << 24) | ((uint32_t) m[2] << 16) | ((uint32_t) m[3] << 8) | m[4];

		if (mlen < 4)
			return NULL;
		if (m[0] == PGS_FE_QUERY && q++ == qindex)
		{
			char	   *text = text_at(req, len, pos + 5, truncated),
					   *stmt = pgs_sql_statement(text, unit);

			free(text);
			return stmt;
		}
		pos += 1 + (size_t) mlen;
	}
	return NULL;
}

/*
 * Keywords after which a minus is unary (SELECT -1, WHERE x = ... AND -1):
 * an identifier that is not one of them ends an operand.
 */
static bool
is_operator_keyword(const PgsLexer *lx, const PgsToken *t)
{
#define W(w) {w, sizeof(w) - 1}
	static const struct
	{
		const char *word;
		size_t		len;
	}			words[] = {W("select"), W("where"), W("and"), W("or"), W("not"), W("when"), W("then"), W("else"),
		W("in"), W("is"), W("by"), W("limit"), W("offset"), W("set"), W("on"), W("between"), W("returning"),
		W("having"), W("values"), W("return"), W("case"), W("like"), W("ilike"), W("similar"), W("any"),
		W("all"), W("some"), W("distinct"), W("from"), W("array")};
#undef W

	/* (every identifier of every statement comes here: the length sorts out most words at once) */
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (words[i].len == t->len && pgs_tok_is(lx, t, words[i].word))
			return true;
	return false;
}

char *
pgs_normalize_query(const char *q)
{
	PgsBuf		b;
	PgsLexer	lx;
	PgsToken	t;
	int			param = 0;
	bool		space = false,
				unary_next = true,	/* a minus here would be unary */
				prev_unary_minus = false;	/* the last token was one */

	pgs_buf_init(&b);
	pgs_lex_init(&lx, q, strlen(q));
	for (pgs_lex_next(&lx, &t); t.kind != PGS_TOK_END; pgs_lex_next(&lx, &t))
	{
		if (t.kind == PGS_TOK_SPACE || t.kind == PGS_TOK_COMMENT)
		{
			space = b.len > 0;
			continue;
		}
		if (space)
			pgs_buf_puts(&b, " ");
		space = false;
		switch (t.kind)
		{
			case PGS_TOK_NUMBER:
				/* a unary minus belongs to the constant, as pg_stat_statements has it */
				if (prev_unary_minus && b.len > 0 && b.data[b.len - 1] == '-')
					b.data[--b.len] = '\0';
				pgs_buf_printf(&b, "$%d", ++param);
				break;
			case PGS_TOK_STRING:
			case PGS_TOK_PARAM:
				pgs_buf_printf(&b, "$%d", ++param);
				break;
			default:
				pgs_buf_append(&b, q + t.start, t.len);
				break;
		}
		prev_unary_minus = t.kind == PGS_TOK_OTHER && q[t.start] == '-' && unary_next;
		/* after an operand a minus is binary; after an operator, a parenthesis or a keyword, unary */
		unary_next = !(t.kind == PGS_TOK_NUMBER || t.kind == PGS_TOK_STRING || t.kind == PGS_TOK_PARAM ||
					   t.kind == PGS_TOK_QIDENT || t.kind == PGS_TOK_RPAREN ||
					   (t.kind == PGS_TOK_OTHER && q[t.start] == ']') ||
					   (t.kind == PGS_TOK_IDENT && !is_operator_keyword(&lx, &t)));
	}
	return b.data;
}

static bool
shape_ident(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
		c >= 0x80;
}

/* the shape's hash: bytes gathered 8 at a time into a word, one multiply a word */
typedef struct ShapeHash
{
	uint64_t	h,
				word;
	unsigned	nword;
} ShapeHash;

static inline void
shape_word(ShapeHash *sh, uint64_t w)
{
	sh->h = (sh->h ^ w) * 0x9e3779b97f4a7c15ULL;
	sh->h ^= sh->h >> 29;
}

static void
shape_feed(ShapeHash *sh, const unsigned char *p, size_t n)
{
	for (; n > 0 && sh->nword > 0; p++, n--)
	{
		sh->word |= (uint64_t) *p << (8 * sh->nword);
		if (++sh->nword == 8)
		{
			shape_word(sh, sh->word);
			sh->word = 0;
			sh->nword = 0;
		}
	}
	for (; n >= 8; p += 8, n -= 8)
	{
		uint64_t	w;

		memcpy(&w, p, 8);
		shape_word(sh, w);
	}
	for (; n > 0; p++, n--)
		sh->word |= (uint64_t) *p << (8 * sh->nword++);
}

/*
 * Every byte of q goes into the hash as it is, but for two kinds of
 * constants, which the normalizer replaces whatever their value and which
 * the lexer cuts alike whatever their digits: a run of digits that starts
 * no identifier, parameter or fraction and is followed by none (an
 * integer), and a '...' string with no prefix (E'', B'', U&'') and no
 * backslash.  Each goes in as one marker byte.  Anything whose cut could
 * depend on its characters gives up (0): comments (the normalizer drops
 * them), dollar quotes, numbers with a point, an exponent or a radix
 * prefix, unterminated quotes.  White space is kept: texts that differ only
 * in it share a normalized text, not a shape, which costs a miss, not a
 * wrong answer.  The bytes between those that need a look (a table) go in
 * whole.
 */
uint64_t
pgs_query_shape(const char *q, size_t len)
{
	static const unsigned char mark[2] = {1, 2};
	static bool look[256];
	const unsigned char *p = (const unsigned char *) q,
			   *end = p + len;
	ShapeHash	sh = {14695981039346656037ULL, 0, 0};

	if (!look['\''])
	{
		for (const char *c = "'\"-/$0123456789\1\2"; *c; c++)
			look[(unsigned char) *c] = true;
	}
	while (p < end)
	{
		const unsigned char *run = p;
		unsigned char c,
					prev,
					next;

		while (p < end && !look[*p])
			p++;
		shape_feed(&sh, run, (size_t) (p - run));
		if (p >= end)
			break;
		/* the byte before, as written: after a constant skipped, its last byte (a quote, a digit) */
		c = *p;
		prev = p > (const unsigned char *) q ? p[-1] : ' ';
		next = p + 1 < end ? p[1] : 0;
		if (c == '\'')
		{
			if (shape_ident(prev))
				return 0;
			for (p++;; p++)
			{
				if (p >= end || *p == '\\')
					return 0;
				if (*p == '\'' && !(p + 1 < end && p[1] == '\''))
					break;
				if (*p == '\'')
					p++;
			}
			p++;
			shape_feed(&sh, &mark[0], 1);
		}
		else if (c >= '0' && c <= '9' && !shape_ident(prev) && prev != '.')
		{
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p < end && (shape_ident(*p) || *p == '.'))
				return 0;
			shape_feed(&sh, &mark[1], 1);
		}
		else if (c == '"')
		{
			/* a quoted identifier, digits and all */
			run = p++;
			while (p < end && *p != '"')
				p++;
			if (p >= end)
				return 0;
			p++;
			shape_feed(&sh, run, (size_t) (p - run));
		}
		else if ((c == '-' && next == '-') || (c == '/' && next == '*') ||
				 (c == '$' && (next == '$' || (shape_ident(next) && !(next >= '0' && next <= '9')))) ||
				 c == 1 || c == 2)
			return 0;
		else
			shape_feed(&sh, p++, 1);
	}
	shape_word(&sh, sh.word ^ ((uint64_t) sh.nword << 59));
	return sh.h ? sh.h : 1;
}
