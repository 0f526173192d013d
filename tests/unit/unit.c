/*
 * unit.c - unit tests of the binary's pure functions: the SQL lexer and
 * splitter, the query normaliser, JSON escaping, protocol decoding and the
 * latency histograms, where a function's uprobe goes.  A small runner of our own: each CHECK prints "ok" or
 * "FAIL" with what differed; tests/run.sh counts the lines into its
 * "N passed, N failed".  Exit status: the number of failures (capped).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqllex.h"
#include "sqlsplit.h"
#include "util.h"
#include "hist.h"
#include "proto.h"
#include "tracer.h"

static int	failures;
static int	checks;

static void
report(bool ok, const char *name, const char *fmt, ...)
{
	checks++;
	if (ok)
	{
		printf("ok unit: %s\n", name);
		return;
	}
	failures++;
	printf("FAIL unit: %s: ", name);
	{
		va_list		ap;

		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
}

static void
check_str(const char *name, const char *got, const char *want)
{
	bool		ok = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);

	report(ok, name, "got [%s], want [%s]", got ? got : "(null)", want ? want : "(null)");
}

static void
check_int(const char *name, long long got, long long want)
{
	report(got == want, name, "got %lld, want %lld", got, want);
}

/* ---------- the normaliser ---------- */

static void
norm(const char *name, const char *in, const char *want)
{
	char	   *got = pgs_normalize_query(in);

	check_str(name, got, want);
	free(got);
}

static void
test_normalize(void)
{
	norm("normalize: numbers", "SELECT 1, 2.5, 1e10, .5", "SELECT $1, $2, $3, $4");
	norm("normalize: white space folded", "  select\n\t a ,b   from t  ", "select a ,b from t");
	norm("normalize: strings, doubled quotes, E'' escapes", "SELECT 'a''b', E'x\\'y', 3",
		 "SELECT $1, $2, $3");
	norm("normalize: dollar quotes are one constant", "SELECT $$it's$$, $q$a;'b$q$, 2", "SELECT $1, $2, $3");
	norm("normalize: comments dropped, quotes inside them ignored",
		 "SELECT /* it's */ 1 -- 'x\n, 2", "SELECT $1 , $2");
	norm("normalize: digits in identifiers stay", "SELECT t1.c2 FROM t1 WHERE \"x1\" = 7",
		 "SELECT t1.c2 FROM t1 WHERE \"x1\" = $1");
	norm("normalize: parameters renumbered in order", "UPDATE t SET a = $3 WHERE b = 5 AND c = $1",
		 "UPDATE t SET a = $1 WHERE b = $2 AND c = $3");
	norm("normalize: unary minus joins its constant", "SELECT -5, a-5, a - 5, (-1), 2 - -3 WHERE x = -1 AND y-1 = 1",
		 "SELECT $1, a-$2, a - $3, ($4), $5 - $6 WHERE x = $7 AND y-$8 = $9");
	norm("normalize: typed literal", "SELECT interval '1 day'", "SELECT interval $1");
	norm("normalize: empty", "", "");
	norm("normalize: unterminated string", "SELECT 'abc", "SELECT $1");
}

/* ---------- shapes: a cache key for the normaliser ---------- */

static uint64_t
shape(const char *q)
{
	return pgs_query_shape(q, strlen(q));
}

typedef struct Drawn
{
	char	   *text;
	uint64_t	shape;
} Drawn;

static int
by_shape(const void *a, const void *b)
{
	uint64_t	x = ((const Drawn *) a)->shape,
				y = ((const Drawn *) b)->shape;

	return x < y ? -1 : x > y;
}

/*
 * The property the agent relies on: texts of one (nonzero) shape normalize
 * to one text.  Checked on named pairs, then on 60,000 texts drawn from
 * fragments that stress the lexer's edges (numbers with points, exponents
 * and radix prefixes, prefixed and escaped strings, comments, dollar quotes,
 * identifiers with digits), grouped by shape.
 */
static void
test_shape(void)
{
	static const char *const frag[] = {
		"SELECT", " ", "1", "23", "'a'", "''", "'x''y'", "-", "x1", "$1", "$2", ".", "e", "E", "\"q1\"", "\"q2\"",
		"(", ")", ",", "--", "/*", "*/", "0x", "\\", "'", "$$", "\n", "5", "_", "a", "$", "&", "U", "::", "*", "\"",
	};
	enum { NFRAG = sizeof(frag) / sizeof(frag[0]), NTEXTS = 60000 };
	Drawn	   *drawn = calloc(NTEXTS, sizeof(Drawn));
	unsigned	seed = 7;
	int			bad = 0,
				shaped = 0;

	check_int("shape: integers of any value share one",
			  shape("SELECT a FROM t WHERE id = 12345") == shape("SELECT a FROM t WHERE id = 7"), 1);
	check_int("shape: plain strings share one", shape("SELECT 'abc', 'it''s'") == shape("SELECT 'x', ''"), 1);
	check_int("shape: not a number missing", shape("SELECT 1") == shape("SELECT "), 0);
	check_int("shape: digits in identifiers count", shape("SELECT c1 FROM t1") == shape("SELECT c2 FROM t1"), 0);
	check_int("shape: parameters count", shape("SELECT $1") == shape("SELECT $2"), 0);
	check_int("shape: white space counts", shape("SELECT 1") == shape("SELECT  1"), 0);
	check_int("shape: a comment gives none", shape("SELECT 1 /* 2 */"), 0);
	check_int("shape: a fraction gives none", shape("SELECT 1.5"), 0);
	check_int("shape: a radix prefix gives none", shape("SELECT 0x1F"), 0);
	check_int("shape: an escape string gives none", shape("SELECT E'a\\'b'"), 0);
	check_int("shape: a dollar quote gives none", shape("SELECT $q$ 1 $q$"), 0);
	for (int i = 0; i < NTEXTS; i++)
	{
		char		buf[256] = "";
		int			nf = 1 + (int) (rand_r(&seed) % 9);

		for (int f = 0; f < nf; f++)
			strcat(buf, frag[rand_r(&seed) % NFRAG]);
		drawn[i].text = strdup(buf);
		drawn[i].shape = shape(buf);
		shaped += drawn[i].shape != 0;
	}
	/* sorted by shape: each text's normal form against the first of its shape's */
	qsort(drawn, NTEXTS, sizeof(drawn[0]), by_shape);
	for (int i = 0, first = 0; i < NTEXTS && bad < 3; i++)
	{
		char	   *nf,
				   *ni;

		if (i > 0 && drawn[i].shape != drawn[i - 1].shape)
			first = i;
		if (!drawn[i].shape || i == first)
			continue;
		nf = pgs_normalize_query(drawn[first].text);
		ni = pgs_normalize_query(drawn[i].text);
		if (strcmp(nf, ni) != 0)
		{
			report(false, "shape: one shape, one normal form", "[%s] -> [%s] but [%s] -> [%s]", drawn[first].text, nf,
				   drawn[i].text, ni);
			bad++;
		}
		free(nf);
		free(ni);
	}
	if (!bad)
		report(true, "shape: one shape, one normal form", "");
	check_int("shape: most drawn texts have one", shaped > NTEXTS / 4, 1);
	for (int i = 0; i < NTEXTS; i++)
		free(drawn[i].text);
	free(drawn);
}

/* ---------- the lexer and the splitter ---------- */

static void
split(const char *name, const char *sql, bool inline_copy, const char *want)
{
	PgsSplitter sp;
	PgsStmtSpan span;
	PgsBuf		b;

	pgs_buf_init(&b);
	pgs_split_init(&sp, sql, strlen(sql), inline_copy);
	while (pgs_split_next(&sp, &span))
	{
		pgs_buf_printf(&b, "%s[%.*s]%d", b.len ? " " : "", (int) span.len, sql + span.start, span.line);
		if (span.kind == PGS_STMT_TXN)
			pgs_buf_puts(&b, "T");
		else if (span.kind == PGS_STMT_COPY_IN)
			pgs_buf_puts(&b, "I");
		else if (span.kind == PGS_STMT_COPY_OUT)
			pgs_buf_puts(&b, "O");
		if (span.has_data)
			pgs_buf_printf(&b, "{%.*s}", (int) span.data_len, sql + span.data_start);
	}
	if (sp.unterminated)
		pgs_buf_printf(&b, " unterminated@%d", sp.unterminated);
	check_str(name, b.data ? b.data : "", want);
	pgs_buf_free(&b);
}

static void
test_split(void)
{
	split("split: two statements, lines", "select 1;\nselect 2", false, "[select 1;]1 [select 2]2");
	split("split: empty statements skipped", ";; -- c\n;select 1;", false, "[select 1;]2");
	split("split: semicolons in literals, identifiers, comments, parentheses",
		  "select ';', \";\" /* ; */, $x$;$x$, (select 1; ) -- ;\n;", false,
		  "[select ';', \";\" /* ; */, $x$;$x$, (select 1; ) -- ;\n;]1");
	split("split: BEGIN ATOMIC body", "create function f() returns int begin atomic select 1; select 2; end; select 3;",
		  false, "[create function f() returns int begin atomic select 1; select 2; end;]1 [select 3;]1");
	split("split: transaction control", "begin; commit; rollback; select 1;", false,
		  "[begin;]1T [commit;]1T [rollback;]1T [select 1;]1");
	split("split: COPY FROM STDIN takes its data up to \\.", "copy t from stdin;\n1\n2\n\\.\nselect 1;", true,
		  "[copy t from stdin;]1I{1\n2\n} [select 1;]5");
	split("split: COPY TO STDOUT", "copy t to stdout;", false, "[copy t to stdout;]1O");
	split("split: unterminated literal", "select 1;\nselect 'abc", false, "[select 1;]1 [select 'abc]2 unterminated@2");
}

static void
test_lexer(void)
{
	const char *s = "U&'d\\0061' e'\\'x' B'01' \"a\"\"b\" $1 -- c\n/* a /* nested */ b */ x";
	PgsLexer	lx;
	PgsToken	t;
	PgsBuf		b;

	pgs_buf_init(&b);
	pgs_lex_init(&lx, s, strlen(s));
	for (pgs_lex_next(&lx, &t); t.kind != PGS_TOK_END; pgs_lex_next(&lx, &t))
		if (t.kind != PGS_TOK_SPACE)
			pgs_buf_printf(&b, "%s%d:%d", b.len ? " " : "", (int) t.kind, t.line);
	/* STRING x3, QIDENT, PARAM, COMMENT, COMMENT (line 2), IDENT (line 2) */
	check_str("lexer: literal kinds, nested comments, lines", b.data,
			  "3:1 3:1 3:1 4:1 7:1 2:1 2:2 6:2");
	pgs_buf_free(&b);
}

/* ---------- JSON escaping ---------- */

static void
json(const char *name, const char *in, const char *want)
{
	PgsBuf		b;

	pgs_buf_init(&b);
	pgs_buf_json_string(&b, in);
	check_str(name, b.data, want);
	pgs_buf_free(&b);
}

static void
test_json(void)
{
	json("json: quotes and backslashes", "a\"b\\c", "\"a\\\"b\\\\c\"");
	json("json: control characters", "x\ny\tz\r\x01", "\"x\\ny\\tz\\r\\u0001\"");
	json("json: UTF-8 kept", "caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\"");
	json("json: invalid UTF-8 replaced", "a\xff" "b\xc3", "\"a\\ufffdb\\ufffd\"");
	json("json: empty", "", "\"\"");
}

/* ---------- protocol decoding ---------- */

typedef struct Msg
{
	char		d[4096];
	size_t		len;
} Msg;

static void
put(Msg *m, const void *p, size_t n)
{
	memcpy(m->d + m->len, p, n);
	m->len += n;
}

static void
put_str(Msg *m, const char *s)
{
	put(m, s, strlen(s) + 1);
}

static void
put_u32(Msg *m, uint32_t v)
{
	unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};

	put(m, b, 4);
}

static void
put_u16(Msg *m, uint16_t v)
{
	unsigned char b[2] = {v >> 8, v};

	put(m, b, 2);
}

/* starts message type at m's end; end_msg fills its length */
static size_t
begin_msg(Msg *m, char type)
{
	size_t		at = m->len;

	put(m, &type, 1);
	put_u32(m, 0);
	return at;
}

static void
end_msg(Msg *m, size_t at)
{
	uint32_t	l = (uint32_t) (m->len - at - 1);
	unsigned char *p = (unsigned char *) m->d + at + 1;

	p[0] = l >> 24;
	p[1] = l >> 16;
	p[2] = l >> 8;
	p[3] = l;
}

static void
parse_msg(Msg *m, const char *stmt, const char *text)
{
	size_t		at = begin_msg(m, 'P');

	put_str(m, stmt);
	put_str(m, text);
	put_u16(m, 0);
	end_msg(m, at);
}

static void
bind_msg(Msg *m, const char *portal, const char *stmt, const char *param)
{
	size_t		at = begin_msg(m, 'B');

	put_str(m, portal);
	put_str(m, stmt);
	put_u16(m, 0);
	put_u16(m, 1);
	put_u32(m, (uint32_t) strlen(param));
	put(m, param, strlen(param));
	put_u16(m, 0);
	end_msg(m, at);
}

static void
exec_msg(Msg *m, const char *portal)
{
	size_t		at = begin_msg(m, 'E');

	put_str(m, portal);
	put_u32(m, 0);
	end_msg(m, at);
}

static void
sync_msg(Msg *m)
{
	end_msg(m, begin_msg(m, 'S'));
}

static void
query_msg(Msg *m, const char *text)
{
	size_t		at = begin_msg(m, 'Q');

	put_str(m, text);
	end_msg(m, at);
}

/* feeds m in pieces of `step` bytes; the texts joined by " | " */
static char *
feed(PgsProtoStream *st, const Msg *m, size_t step, bool *ok)
{
	PgsTexts	t = {0};
	PgsBuf		b;

	*ok = true;
	for (size_t pos = 0; pos < m->len; pos += step)
		*ok &= pgs_stream_feed(st, m->d + pos, pos + step <= m->len ? step : m->len - pos, &t);
	pgs_buf_init(&b);
	pgs_buf_puts(&b, "");
	for (size_t i = 0; i < t.n; i++)
		pgs_buf_printf(&b, "%s%s", i ? " | " : "", t.text[i]);
	pgs_texts_free(&t);
	return b.data;
}

static void
test_proto(void)
{
	Msg			m = {0};
	PgsProtocol proto;
	bool		trunc,
				ok;
	char	   *t;
	size_t		steps[] = {1, 3, 7, 4096};

	/* a simple Query, whole and cut at the capture length */
	query_msg(&m, "SELECT 1; SELECT 2");
	t = pgs_proto_text(1, m.d, m.len, &proto, &trunc);
	check_str("proto: a Query's text", t, "SELECT 1; SELECT 2");
	check_int("proto: a Query is the simple protocol", proto, PGS_PROTO_SIMPLE);
	free(t);
	t = pgs_proto_text(1, m.d, 12, &proto, &trunc);
	check_str("proto: a Query cut at the capture", t, "SELECT ");
	check_int("proto: ... and flagged truncated", trunc, 1);
	free(t);
	t = pgs_proto_query_statement(m.d, m.len, 0, 1, &trunc);
	check_str("proto: the second statement of a Query", t, "SELECT 2");
	free(t);
	t = pgs_proto_query_statement(m.d, m.len, 0, 2, &trunc);
	check_str("proto: no third statement", t, NULL);
	free(t);

	/* a named Parse learnt, then a Bind of it */
	m.len = 0;
	parse_msg(&m, "s1", "SELECT $1::int");
	pgs_proto_learn(2, m.d, m.len);
	m.len = 0;
	bind_msg(&m, "", "s1", "42");
	t = pgs_proto_text(2, m.d, m.len, &proto, &trunc);
	check_str("proto: a Bind of a learnt statement", t, "SELECT $1::int");
	check_int("proto: ... is the prepared protocol", proto, PGS_PROTO_PREPARED);
	free(t);
	t = pgs_proto_text(3, m.d, m.len, &proto, &trunc);
	check_str("proto: another backend's statement is not known", t, NULL);
	free(t);

	/* a pipeline across reads of every size: two unnamed statements, a named one, a Query */
	m.len = 0;
	parse_msg(&m, "", "SELECT 'a'");
	bind_msg(&m, "", "", "x");
	exec_msg(&m, "");
	parse_msg(&m, "", "SELECT 'b'");
	bind_msg(&m, "p", "", "y");
	exec_msg(&m, "p");
	parse_msg(&m, "n", "SELECT 'c'");
	bind_msg(&m, "", "n", "z");
	exec_msg(&m, "");
	sync_msg(&m);
	query_msg(&m, "SELECT 'd'; SELECT 'e'");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
	{
		PgsProtoStream *st = pgs_stream_new(10 + (uint32_t) i);
		char		name[64];

		t = feed(st, &m, steps[i], &ok);
		snprintf(name, sizeof(name), "proto: a pipeline fed %zu bytes at a time", steps[i]);
		check_str(name, t, "SELECT 'a' | SELECT 'b' | SELECT 'c' | SELECT 'd' | SELECT 'e'");
		free(t);
		pgs_stream_free(st);
	}

	/* each statement's Sync group: the server answers a Sync, and each Query, with a ReadyForQuery */
	{
		PgsProtoStream *st = pgs_stream_new(30);
		PgsTexts	tx = {0};
		PgsBuf		b;

		query_msg(&m, "SELECT 'f'");
		sync_msg(&m);
		exec_msg(&m, "p");
		ok = pgs_stream_feed(st, m.d, m.len, &tx);
		pgs_buf_init(&b);
		pgs_buf_puts(&b, "");
		for (size_t i = 0; i < tx.n; i++)
			pgs_buf_printf(&b, "%s%u", i ? " " : "", tx.group[i]);
		check_str("proto: the Sync groups of a read's statements", b.data, "0 0 0 1 1 2 4");
		free(b.data);
		pgs_texts_free(&tx);
		/* counted from each read's start */
		m.len = 0;
		exec_msg(&m, "p");
		ok &= pgs_stream_feed(st, m.d, m.len, &tx);
		check_int("proto: groups count from the read's start", (int) (tx.n == 1 && tx.group[0] == 0 && ok), 1);
		pgs_texts_free(&tx);
		pgs_stream_free(st);
	}

	/* an Execute of a portal bound before tracing began */
	{
		PgsProtoStream *st = pgs_stream_new(20);

		m.len = 0;
		exec_msg(&m, "old");
		t = feed(st, &m, m.len, &ok);
		check_str("proto: an Execute of an unknown portal says so", t,
				  "(text unknown: its statement was prepared before tracing began)");
		free(t);
		/* bytes that are no message: refused, the stream starts afresh */
		memcpy(m.d, "Q\0\0\0\1", 5);
		m.len = 5;
		t = feed(st, &m, m.len, &ok);
		check_int("proto: a length below 4 is not a message", ok, 0);
		free(t);
		pgs_stream_free(st);
	}
}

/* ---------- histograms ---------- */

static void
test_hist(void)
{
	PgsHist		h = {0};
	PgsQuantiles q = {0};
	uint64_t	p50,
				p99;

	pgs_hist_add(&h, 0);
	pgs_hist_add(&h, 1999);		/* 1 us */
	pgs_hist_add(&h, 2000);		/* 2 us: [2, 4) */
	pgs_hist_add(&h, 3999);
	pgs_hist_add(&h, 1024 * 1000);	/* 1024 us: slot 10 */
	pgs_hist_add(&h, UINT64_MAX / 2);	/* beyond the last slot */
	check_int("hist: < 2 us in slot 0", h.slots[0], 2);
	check_int("hist: [2, 4) us in slot 1", h.slots[1], 2);
	check_int("hist: 1024 us in slot 10", h.slots[10], 1);
	check_int("hist: huge values in the last slot", h.slots[PGS_HIST_SLOTS - 1], 1);
	check_int("hist: count", h.count, 6);

	/* exact while few */
	for (uint64_t i = 1; i <= 50; i++)
		pgs_q_add(&q, i * 1000);
	check_int("quantiles: exact p50 of 1..50 us", pgs_q_percentile(&q, 50), 25000);
	check_int("quantiles: exact max", pgs_q_percentile(&q, 100), 50000);
	pgs_q_free(&q);
	memset(&q, 0, sizeof(q));
	/* within 1/32 once sketched */
	for (uint64_t i = 1; i <= 100000; i++)
		pgs_q_add(&q, i * 1000);
	p50 = pgs_q_percentile(&q, 50);
	p99 = pgs_q_percentile(&q, 99);
	report(p50 >= 50000000ull * 31 / 32 && p50 <= 50000000ull * 33 / 32, "quantiles: sketched p50 within 3%",
		   "p50 %llu ns for 50 ms", (unsigned long long) p50);
	report(p99 >= 99000000ull * 31 / 32 && p99 <= 99000000ull * 33 / 32, "quantiles: sketched p99 within 3%",
		   "p99 %llu ns for 99 ms", (unsigned long long) p99);
	check_int("quantiles: max exact", pgs_q_percentile(&q, 100), 100000000);
	pgs_q_free(&q);
	memset(&q, 0, sizeof(q));
	check_int("quantiles: empty is 0", pgs_q_percentile(&q, 99), 0);
}

/* ---------- where a function's uprobe goes ---------- */

/* two functions of this binary's .symtab, one after the other: 6 bytes, then one that starts with endbr64 */
__asm__(".text\n"
		".globl unit_plain_fn\n.type unit_plain_fn, @function\n"
		"unit_plain_fn: push %rbp\n mov %rsp, %rbp\n pop %rbp\n ret\n"
		".size unit_plain_fn, . - unit_plain_fn\n"
		".globl unit_cet_fn\n.type unit_cet_fn, @function\n"
		"unit_cet_fn: .byte 0xf3, 0x0f, 0x1e, 0xfa\n push %rbp\n mov %rsp, %rbp\n pop %rbp\n ret\n"
		".size unit_cet_fn, . - unit_cet_fn\n");

/* the byte at file offset off of path, -1 when it cannot be read */
static int
byte_at(const char *path, uint64_t off)
{
	FILE	   *f = fopen(path, "rb");
	int			c = -1;

	if (f && fseek(f, (long) off, SEEK_SET) == 0)
		c = fgetc(f);
	if (f)
		fclose(f);
	return c;
}

static void
test_func_offset(void)
{
	char		self[4096];
	ssize_t		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	uint64_t	plain = 0,
				cet = 0,
				none = 0;

	self[n > 0 ? n : 0] = '\0';
	check_int("uprobe offset: a function of .symtab is found", pgs_func_offset(self, "unit_plain_fn", &plain), 0);
	check_int("uprobe offset: push %rbp at the entry", byte_at(self, plain), 0x55);
	check_int("uprobe offset: found after endbr64", pgs_func_offset(self, "unit_cet_fn", &cet), 0);
	check_int("uprobe offset: past the endbr64 (entry + 4)", (long long) (cet - plain), 6 + 4);
	check_int("uprobe offset: push %rbp past the endbr64", byte_at(self, cet), 0x55);
	check_int("uprobe offset: a missing function", pgs_func_offset(self, "unit_no_such_fn", &none), -ENOENT);
}

/*
 * secure_read's shape (pgs_call_result_site): a callee, and callers that keep their buffer (rsi) in
 * r14 across the call, test its result and loop on a negative one; then a nop (good: the site is past
 * the js, at byte 26), an xor (no nop: the js itself, at 24), r14 overwritten before the call, and no
 * prologue that filled r14 from rsi (neither: not that shape)
 */
#define UNIT_CALLER(name, prologue, before, after) \
	".globl " name "\n.type " name ", @function\n" name ":\n push %rbp\n mov %rsp, %rbp\n push %r14\n" prologue \
	" push %rbx\n1: mov %r14, %rsi\n" before " call unit_read_fn\n mov %rax, %rbx\n test %rbx, %rbx\n js 1b\n" after \
	" pop %rbx\n pop %r14\n pop %rbp\n ret\n.size " name ", . - " name "\n"
__asm__(".text\n.globl unit_read_fn\n.type unit_read_fn, @function\nunit_read_fn: xor %eax, %eax\n ret\n"
		".size unit_read_fn, . - unit_read_fn\n"
		UNIT_CALLER("unit_caller_nop", " mov %rsi, %r14\n", "", " nopl (%rax)\n")
		UNIT_CALLER("unit_caller_xor", " mov %rsi, %r14\n", "", " xor %edi, %edi\n")
		UNIT_CALLER("unit_caller_clobber", " mov %rsi, %r14\n", " mov %rax, %r14\n", " nopl (%rax)\n")
		UNIT_CALLER("unit_caller_noprologue", " mov %rdi, %r14\n", "", " nopl (%rax)\n"));

static void
test_call_result_site(void)
{
	char		self[4096];
	ssize_t		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	uint64_t	at = 0;
	PgsTlsReadSite site;

	self[n > 0 ? n : 0] = '\0';
	pgs_func_offset(self, "unit_caller_nop", &at);
	check_int("TLS read site: found", pgs_call_result_site(self, "unit_caller_nop", "unit_read_fn", &site), 0);
	check_int("TLS read site: past the js, on the nop", (long long) (site.offset - at), 26);
	check_int("TLS read site: the buffer in r14", site.ptr_reg, 14);
	check_int("TLS read site: only reads with data reach it", site.all_reads, false);
	pgs_func_offset(self, "unit_caller_xor", &at);
	check_int("TLS read site: no nop past the js: found", pgs_call_result_site(self, "unit_caller_xor", "unit_read_fn", &site), 0);
	check_int("TLS read site: no nop past the js: on the js", (long long) (site.offset - at), 24);
	check_int("TLS read site: on the js every read reaches it", site.all_reads, true);
	check_int("TLS read site: the buffer's register overwritten before the call",
			  pgs_call_result_site(self, "unit_caller_clobber", "unit_read_fn", &site), -ENOEXEC);
	check_int("TLS read site: no prologue filled the register from rsi",
			  pgs_call_result_site(self, "unit_caller_noprologue", "unit_read_fn", &site), -ENOEXEC);
	check_int("TLS read site: a caller that does not call it",
			  pgs_call_result_site(self, "unit_plain_fn", "unit_read_fn", &site), -ENOEXEC);
}

int
main(void)
{
	pgs_cmd = "unit";
	test_lexer();
	test_split();
	test_normalize();
	test_shape();
	test_json();
	test_proto();
	test_hist();
	test_func_offset();
	test_call_result_site();
	printf("%d checks, %d failed\n", checks, failures);
	return failures > 100 ? 100 : failures;
}
