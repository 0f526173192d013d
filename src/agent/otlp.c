/*
 * otlp.c - spans of statements to an OTLP/HTTP receiver, as JSON
 * (opentelemetry-proto's JSON mapping: ids in lowercase hex, 64-bit integers
 * as strings, enums as numbers).  The tracer loop encodes a kept statement
 * into the queue; the exporter thread posts batches, retries a failed one
 * with backoff (1 s doubling to 30 s) while new spans wait in the queue,
 * and counts what the full queue or a receiver's definite refusal loses.
 */
#include "otlp.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

struct PgsOtlp
{
	PgsOtlpOpts o;
	char		host[256],
				port[8],
				path[512];
	char		hostname[256];
	int64_t		mono_to_real_ns;	/* add to CLOCK_MONOTONIC for the Unix time */
	pthread_t	thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char	   *queue[PGS_OTLP_QUEUE];	/* encoded spans, a ring */
	size_t		head,
				count;
	bool		stopping;
	bool		failing;		/* the last attempt failed: stopping does not wait for the queue */
	int			busy_fd;		/* the socket of the POST under way, -1: none (stopping shuts it down) */
	PgsOtlpStats st;
};

/* ---------- the traceparent of a sqlcommenter comment ---------- */

static bool
hex_run(const char *p, int n)
{
	bool		nonzero = false;

	for (int i = 0; i < n; i++)
	{
		if (!(isdigit((unsigned char) p[i]) || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
		nonzero |= p[i] != '0';
	}
	return nonzero;
}

/* the comment's text, if text starts or ends with one: [*from, *to) */
static bool
edge_comment(const char *text, const char **from, const char **to)
{
	const char *s = text + strspn(text, " \t\r\n");
	const char *e = text + strlen(text);

	while (e > s && (isspace((unsigned char) e[-1]) || e[-1] == ';'))
		e--;
	if (strncmp(s, "/*", 2) == 0 && (*to = strstr(s + 2, "*/")) != NULL)
	{
		*from = s + 2;
		/* at the end rather, when the first comment says nothing of it */
		if (memmem(*from, (size_t) (*to - *from), "traceparent=", 12))
			return true;
	}
	if (e - s >= 4 && e[-1] == '/' && e[-2] == '*')
	{
		const char *c = e - 2;

		while (c > s && !(c[-1] == '*' && c > s + 1 && c[-2] == '/'))
			c--;
		if (c > s + 1)
		{
			*from = c;
			*to = e - 2;
			return true;
		}
	}
	return false;
}

/* a W3C traceparent value, '00-' 32 '-' 16 '-' 2, at v (avail bytes): 1, or -1 when malformed */
static int
traceparent_value(const char *v, ptrdiff_t avail, char trace_id[33], char span_id[17], unsigned *flags)
{
	if (avail < 55 || strncmp(v, "00-", 3) != 0 || v[35] != '-' || v[52] != '-' || !hex_run(v + 3, 32) ||
		!hex_run(v + 36, 16) || !isxdigit((unsigned char) v[53]) || !isxdigit((unsigned char) v[54]))
		return -1;
	memcpy(trace_id, v + 3, 32);
	trace_id[32] = '\0';
	memcpy(span_id, v + 36, 16);
	span_id[16] = '\0';
	*flags = (unsigned) strtoul((char[3]) {v[53], v[54], '\0'}, NULL, 16);
	return 1;
}

int
pgs_traceparent(const char *text, char trace_id[33], char span_id[17], unsigned *flags)
{
	const char *from,
			   *to,
			   *v;

	if (!edge_comment(text, &from, &to) || (v = memmem(from, (size_t) (to - from), "traceparent=", 12)) == NULL)
		return 0;
	v += 12;
	/* quoted as sqlcommenter quotes it */
	if (to - v < 57 || v[0] != '\'' || v[56] != '\'')
		return -1;
	return traceparent_value(v + 1, 55, trace_id, span_id, flags);
}

int
pgs_traceparent_appname(const char *appname, char trace_id[33], char span_id[17], unsigned *flags)
{
	/* the whole name, as Npgsql and the Collector's receiver set it; other names are names */
	if (strncmp(appname, "00-", 3) != 0)
		return 0;
	if (strlen(appname) != 55)
		return -1;
	return traceparent_value(appname, 55, trace_id, span_id, flags);
}

/* ---------- the span of a statement ---------- */

/*
 * 64 random bits: a splitmix64 sequence per thread, seeded once from the
 * kernel.  Every statement draws a trace id (the sampler decides by it), and
 * a getrandom() call for each cost more than the rest of the decision.
 */
static uint64_t
random64(void)
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;
	uint64_t	z;

	if (!seeded)
	{
		if (getrandom(&state, sizeof(state), 0) != (ssize_t) sizeof(state))
			state = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) &z;
		seeded = true;
	}
	z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* bytes random bytes as lowercase hex (an id: never all zeros) */
static void
random_hex(char *out, int bytes)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t	r = 0;

	for (int i = 0; i < bytes; i++, r >>= 8)
	{
		if (i % 8 == 0)
			r = random64();
		out[2 * i] = hex[(r >> 4) & 15];
		out[2 * i + 1] = hex[r & 15];
	}
	out[2 * bytes] = '\0';
	if (strspn(out, "0") == (size_t) (2 * bytes))
		out[0] = '1';
}

/* the length of the word at p ([A-Za-z0-9_.$"]) */
static size_t
word_len(const char *p)
{
	return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$\"");
}

/* db.operation.name: the statement's first keyword; db.query.summary: it and the first table it names */
static void
summary_of(const char *q, char *op, size_t oplen, char *sum, size_t sumlen)
{
	static const char *const before[] = {"FROM", "INTO", "UPDATE", "JOIN", "TABLE"};
	const char *p = q;
	size_t		n;

	while (*p && (isspace((unsigned char) *p) || *p == '(' || strncmp(p, "/*", 2) == 0))
		p = strncmp(p, "/*", 2) == 0 && strstr(p, "*/") ? strstr(p, "*/") + 2 : p + 1;
	for (n = 0; n < oplen - 1 && isalpha((unsigned char) p[n]); n++)
		op[n] = (char) toupper((unsigned char) p[n]);
	op[n] = '\0';
	snprintf(sum, sumlen, "%s", op[0] ? op : "postgresql");
	while (*p)
	{
		size_t		wl = word_len(p);

		if (*p == '\'')		/* a literal: its words are not names */
		{
			const char *e = strchr(p + 1, '\'');

			p = e ? e + 1 : p + strlen(p);
			continue;
		}
		if (wl == 0)
		{
			p++;
			continue;
		}
		for (int i = 0; i < 5; i++)
			if (wl == strlen(before[i]) && strncasecmp(p, before[i], wl) == 0)
			{
				const char *t = p + wl + strspn(p + wl, " \t\r\n");
				size_t		tl = word_len(t);

				if (tl > 0)
				{
					snprintf(sum + strlen(sum), sumlen - strlen(sum), " %.*s", (int) (tl < 200 ? tl : 200), t);
					return;
				}
			}
		p += wl;
	}
}

static void
attr_str(PgsBuf *b, bool *first, const char *key, const char *v)
{
	pgs_buf_printf(b, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":", *first ? "" : ",", key);
	pgs_buf_json_string(b, v);
	pgs_buf_puts(b, "}}");
	*first = false;
}

static void
attr_int(PgsBuf *b, bool *first, const char *key, long long v)
{
	pgs_buf_printf(b, "%s{\"key\":\"%s\",\"value\":{\"intValue\":\"%lld\"}}", *first ? "" : ",", key, v);
	*first = false;
}

/*
 * The span's events: each wait (a lock wait: when it began, what, in which
 * mode, how long) and the breakdown's classes that took time at the end.
 */
static void
span_events(PgsOtlp *x, PgsBuf *b, const PgsStatement *s, unsigned long long end, const PgsWaitEvent *w, int nw)
{
	bool		first;

	if (nw == 0 && !s->breakdown)
		return;
	pgs_buf_puts(b, ",\"events\":[");
	for (int i = nw - 1; i >= 0; i--)
	{
		first = true;
		pgs_buf_printf(b, "%s{\"timeUnixNano\":\"%llu\",\"name\":\"%s\",\"attributes\":[", i == nw - 1 ? "" : ",",
					   (unsigned long long) ((int64_t) w[i].start_ns + x->mono_to_real_ns), w[i].name);
		attr_str(b, &first, "pgscope.lock.type", w[i].type);
		attr_str(b, &first, "pgscope.lock.mode", w[i].mode);
		attr_str(b, &first, "pgscope.lock.object", w[i].object);
		pgs_buf_printf(b, ",{\"key\":\"pgscope.wait_seconds\",\"value\":{\"doubleValue\":%.9f}}]}",
					   w[i].duration_ns / 1e9);
	}
	if (s->breakdown)
	{
		pgs_buf_printf(b, "%s{\"timeUnixNano\":\"%llu\",\"name\":\"pgscope.breakdown\",\"attributes\":[",
					   nw ? "," : "", end);
		pgs_buf_printf(b, "{\"key\":\"pgscope.cpu_seconds\",\"value\":{\"doubleValue\":%.9f}}", s->cpu_ns / 1e9);
		for (int i = 0; i < PGS_WAIT_CLASSES; i++)
			if (s->off_ns[i])
				pgs_buf_printf(b, ",{\"key\":\"pgscope.wait_seconds.%s\",\"value\":{\"doubleValue\":%.9f}}",
							   pgs_wait_class_names[i], s->off_ns[i] / 1e9);
		pgs_buf_puts(b, "]}");
	}
	pgs_buf_puts(b, "]");
}

/* --split: a phase of the statement as a child span, from its first start for the time all its runs took */
static char *
encode_phase(PgsOtlp *x, const PgsStatement *s, const char *trace_id, const char *parent, unsigned flags,
			 const char *name, uint64_t at, uint64_t ns)
{
	PgsBuf		b;
	char		span_id[17];
	unsigned long long start = (unsigned long long) ((int64_t) at + x->mono_to_real_ns),
				end = (unsigned long long) ((int64_t) s->end_ns + x->mono_to_real_ns);
	bool		first = true;

	random_hex(span_id, 8);
	/* several runs of a phase (a statement planned twice) are summed: never past the statement's end */
	if (start + ns < end)
		end = start + ns;
	pgs_buf_init(&b);
	pgs_buf_printf(&b, "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"%s\",\"flags\":%u,\"name\":\"%s\","
				   "\"kind\":1,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\",\"attributes\":[",
				   trace_id, span_id, parent, (flags & 0xff) | 0x100, name, start, end);
	attr_str(&b, &first, "db.system.name", "postgresql");
	attr_int(&b, &first, "postgresql.backend.pid", s->server_pid);	/* as pg_stat_activity shows it */
	pgs_buf_printf(&b, ",{\"key\":\"pgscope.phase_seconds\",\"value\":{\"doubleValue\":%.9f}}]", ns / 1e9);
	pgs_buf_puts(&b, ",\"status\":{\"code\":0}}");
	return b.data;
}

static char *
encode_span(PgsOtlp *x, const PgsStatement *s, const char *trace_id, const char *parent, unsigned flags,
			int server_port, const PgsWaitEvent *w, int nw, char span_id[17])
{
	PgsBuf		b;
	char		op[32],
				sum[256];
	char	   *norm = x->o.raw_query ? NULL : pgs_normalize_query(s->text);
	const char *text = norm ? norm : s->text;
	unsigned long long end = (unsigned long long) ((int64_t) s->end_ns + x->mono_to_real_ns);
	bool		first = true;

	random_hex(span_id, 8);
	summary_of(s->text, op, sizeof(op), sum, sizeof(sum));
	pgs_buf_init(&b);
	pgs_buf_printf(&b, "{\"traceId\":\"%s\",\"spanId\":\"%s\",", trace_id, span_id);
	if (parent)
		pgs_buf_printf(&b, "\"parentSpanId\":\"%s\",", parent);
	pgs_buf_printf(&b, "\"flags\":%u,\"name\":", (flags & 0xff) | 0x100 | (parent ? 0x200 : 0));
	pgs_buf_json_string(&b, sum);
	pgs_buf_printf(&b, ",\"kind\":2,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\",\"attributes\":[",
				   end - (unsigned long long) s->duration_ns, end);
	attr_str(&b, &first, "db.system.name", "postgresql");
	attr_str(&b, &first, "db.namespace", s->database[0] ? s->database : "unknown");
	attr_str(&b, &first, "db.query.text", s->text_unknown ? "" : text);
	attr_str(&b, &first, "db.query.summary", sum);
	if (op[0])
		attr_str(&b, &first, "db.operation.name", op);
	attr_str(&b, &first, "server.address", x->hostname);
	if (server_port && server_port != 5432)
		attr_int(&b, &first, "server.port", server_port);
	attr_int(&b, &first, "postgresql.backend.pid", s->server_pid);	/* as pg_stat_activity shows it */
	attr_str(&b, &first, "postgresql.user", s->user);
	if (s->error)
	{
		attr_str(&b, &first, "error.type", s->sqlstate[0] ? s->sqlstate : "_OTHER");
		if (s->sqlstate[0])
			attr_str(&b, &first, "db.response.status_code", s->sqlstate);
	}
	pgs_buf_puts(&b, "]");
	span_events(x, &b, s, end, w, nw);
	pgs_buf_printf(&b, ",\"status\":{\"code\":%d}}", s->error ? 2 : 0);
	free(norm);
	return b.data;
}

/* whether a trace whose id ends in the 56 bits r is sampled (as a probability sampler reads the id) */
static bool
sampled(const PgsOtlp *x, uint64_t r)
{
	return x->o.sample_ratio >= 1 || (double) r / (double) (1ULL << 56) < x->o.sample_ratio;
}

/* head sampling of a caller's trace: errors and slow statements always, a sampled parent's always, else by its id */
static bool
keep(const PgsOtlp *x, const PgsStatement *s, unsigned flags, const char *trace_id)
{
	if (s->error || s->duration_ns >= x->o.slow_ms * 1e6 || (flags & 1))
		return true;
	/* a trace is kept or not as a whole */
	return sampled(x, strtoull((char[15]) {trace_id[18], trace_id[19], trace_id[20], trace_id[21], trace_id[22],
		trace_id[23], trace_id[24], trace_id[25], trace_id[26], trace_id[27], trace_id[28], trace_id[29], trace_id[30],
		trace_id[31], 0}, NULL, 16));
}

/* v as 16 lowercase hex digits at out */
static void
hex64(char *out, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--, v >>= 4)
		out[i] = hex[v & 15];
}

void
pgs_otlp_statement(PgsOtlp *x, const PgsStatement *s, int server_port, PgsOtlpWaits waits, void *arg)
{
	PgsWaitEvent w[PGS_OTLP_MAX_WAITS];
	int			nw = 0;
	char		trace_id[33],
				parent[17],
				span_id[17];
	unsigned	flags = 1;
	int			tp = s->text_unknown ? 0 : pgs_traceparent(s->text, trace_id, parent, &flags),
				bad = tp == -1,
				n = 0;
	char	   *spans[4];

	/* the statement's own comment first, else application_name */
	if (tp != 1 && s->appname[0])
	{
		tp = pgs_traceparent_appname(s->appname, trace_id, parent, &flags);
		bad += tp == -1;
	}
	if (bad)
	{
		pthread_mutex_lock(&x->lock);
		x->st.bad_traceparent += (uint64_t) bad;
		pthread_mutex_unlock(&x->lock);
	}
	if (tp != 1)
	{
		/* a trace of its own: sampled on its random id before the id is written out (most are dropped here) */
		uint64_t	hi = random64(),
					lo = random64();

		if (!s->error && s->duration_ns < x->o.slow_ms * 1e6 && !sampled(x, lo & ((1ULL << 56) - 1)))
			return;
		if (!hi && !lo)
			lo = 1;				/* an id is never all zeros */
		hex64(trace_id, hi);
		hex64(trace_id + 16, lo);
		trace_id[32] = '\0';
		flags = 1;
	}
	else if (!keep(x, s, flags, trace_id))
		return;
	if (waits)
		nw = waits(arg, s->pid, s->end_ns - s->duration_ns, s->end_ns, w, PGS_OTLP_MAX_WAITS);
	spans[n++] = encode_span(x, s, trace_id, tp == 1 ? parent : NULL, flags | 1, server_port, w, nw, span_id);
	if (s->split && s->parse_at)
		spans[n++] = encode_phase(x, s, trace_id, span_id, flags | 1, "parse", s->parse_at, s->parse_ns);
	if (s->split && s->plan_at)
		spans[n++] = encode_phase(x, s, trace_id, span_id, flags | 1, "plan", s->plan_at, s->plan_ns);
	if (s->split && s->exec_at)
		spans[n++] = encode_phase(x, s, trace_id, span_id, flags | 1, "execute", s->exec_at, s->exec_ns);
	pthread_mutex_lock(&x->lock);
	for (int i = 0; i < n; i++)
	{
		if (x->count == PGS_OTLP_QUEUE)
		{
			x->st.dropped++;
			free(spans[i]);
			continue;
		}
		x->queue[(x->head + x->count) % PGS_OTLP_QUEUE] = spans[i];
		x->count++;
	}
	if (x->count >= PGS_OTLP_BATCH)
		pthread_cond_signal(&x->wake);
	pthread_mutex_unlock(&x->lock);
}

/* ---------- the exporter thread ---------- */

bool
pgs_otlp_url_ok(const char *url)
{
	const char *h = url + 7,
			   *colon,
			   *slash;

	if (strncmp(url, "http://", 7) != 0)
		return false;
	slash = strchr(h, '/');
	colon = strchr(h, ':');
	if (colon == NULL || (slash && colon > slash) || colon == h)
		return false;
	return atoi(colon + 1) > 0 && atoi(colon + 1) < 65536 &&
		strspn(colon + 1, "0123456789") == (size_t) ((slash ? slash : colon + strlen(colon)) - colon - 1);
}

/* the POST's socket closed (under the lock: pgs_otlp_stop may be shutting it down) */
static void
release(PgsOtlp *x, int fd)
{
	pthread_mutex_lock(&x->lock);
	if (x->busy_fd == fd)
		x->busy_fd = -1;
	close(fd);
	pthread_mutex_unlock(&x->lock);
}

/*
 * A connected socket (2 s to connect), -1 with errno; while it is x->busy_fd
 * pgs_otlp_stop can cut the connection short (its shutdown wakes the poll
 * and the socket calls at once).  post() releases it.
 */
static int
connect_to(PgsOtlp *x, const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM},
			   *res;
	int			fd,
				err = 0;
	socklen_t	len = sizeof(err);
	struct pollfd p;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return errno = EHOSTUNREACH, -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)
		err = errno;
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&x->lock);
	if (x->stopping)
		err = ECANCELED;
	else
		x->busy_fd = fd;
	pthread_mutex_unlock(&x->lock);
	p = (struct pollfd) {.fd = fd, .events = POLLOUT};
	if (!err && (poll(&p, 1, 2000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0))
		err = ETIMEDOUT;
	if (err)
	{
		release(x, fd);
		return errno = err, -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* POSTs body: the HTTP status, or -1 (errno) when no answer came within 5 s */
static int
post(PgsOtlp *x, const char *body, size_t len)
{
	struct timeval tv = {5, 0};
	char		head[1024],
				resp[256];
	int			fd = connect_to(x, x->host, x->port),
				n,
				status = -1;
	ssize_t		r;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n", x->path, x->host, x->port, len);
	if (send(fd, head, (size_t) n, MSG_NOSIGNAL) == n && send(fd, body, len, MSG_NOSIGNAL) == (ssize_t) len &&
		(r = recv(fd, resp, sizeof(resp) - 1, 0)) > 12)
	{
		resp[r] = '\0';
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
	}
	else
		errno = errno ? errno : EPROTO;
	release(x, fd);
	return status;
}

static void
batch_body(PgsOtlp *x, char **spans, size_t n, PgsBuf *b)
{
	b->len = 0;
	pgs_buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"postgresql\"}},"
				 "{\"key\":\"host.name\",\"value\":{\"stringValue\":");
	pgs_buf_json_string(b, x->hostname);
	pgs_buf_puts(b, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"pgscope\"},\"spans\":[");
	for (size_t i = 0; i < n; i++)
	{
		if (i)
			pgs_buf_puts(b, ",");
		pgs_buf_puts(b, spans[i]);
	}
	pgs_buf_puts(b, "]}]}]}");
}

/* one batch out of the queue into spans: its size */
static size_t
take_batch(PgsOtlp *x, char **spans)
{
	size_t		n = 0;

	while (x->count > 0 && n < PGS_OTLP_BATCH)
	{
		spans[n++] = x->queue[x->head];
		x->head = (x->head + 1) % PGS_OTLP_QUEUE;
		x->count--;
	}
	return n;
}

/* sends spans until it succeeds, the receiver refuses them, or the agent stops; the outcome counted */
static void
deliver(PgsOtlp *x, char **spans, size_t n, PgsBuf *body, bool *failing)
{
	double		backoff = 1;

	batch_body(x, spans, n, body);
	for (;;)
	{
		int			status = post(x, body->data, body->len);
		bool		stopping;

		pthread_mutex_lock(&x->lock);
		stopping = x->stopping;
		x->failing = status < 200 || status == 408 || status == 429 || status >= 500;
		if (status >= 200 && status < 300)
			x->st.exported += n;
		else if (status >= 300 && status < 500 && status != 429 && status != 408)
			x->st.dropped += n;		/* refused for good (a redirect is not followed) */
		else
			x->st.failures++;
		pthread_mutex_unlock(&x->lock);
		if (status >= 200 && status < 500 && status != 429 && status != 408)
		{
			if (status >= 300)
				pgs_err("the OTLP receiver %s refused %zu spans: HTTP %d (dropped)", x->o.url, n, status);
			else if (*failing)
				pgs_err("spans reach %s again", x->o.url);
			*failing = status >= 300 && *failing;
			return;
		}
		if (!*failing)
			pgs_err("cannot send spans to %s: %s; retrying with backoff (spans wait in a queue of %d)", x->o.url,
					status < 0 ? strerror(errno) : "the receiver is unavailable", PGS_OTLP_QUEUE);
		*failing = true;
		if (stopping)
		{
			pthread_mutex_lock(&x->lock);
			x->st.dropped += n;
			pthread_mutex_unlock(&x->lock);
			return;
		}
		for (double t = 0; t < backoff && !x->stopping; t += 0.1)
			nanosleep(&(struct timespec) {0, 100 * 1000000L}, NULL);
		backoff = backoff * 2 > 30 ? 30 : backoff * 2;
	}
}

static void *
run(void *arg)
{
	PgsOtlp    *x = arg;
	char	   *spans[PGS_OTLP_BATCH];
	PgsBuf		body;
	bool		failing = false;

	pgs_buf_init(&body);
	for (;;)
	{
		struct timespec until;
		size_t		n;
		bool		stopping;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&x->lock);
		if (!x->stopping && x->count < PGS_OTLP_BATCH)
			pthread_cond_timedwait(&x->wake, &x->lock, &until);
		n = take_batch(x, spans);
		stopping = x->stopping;
		pthread_mutex_unlock(&x->lock);
		if (n > 0)
			deliver(x, spans, n, &body, &failing);
		for (size_t i = 0; i < n; i++)
			free(spans[i]);
		if (stopping && n == 0)
			break;
	}
	pgs_buf_free(&body);
	return NULL;
}

PgsOtlp *
pgs_otlp_start(const PgsOtlpOpts *o, char *why, size_t len)
{
	PgsOtlp    *x;
	const char *h = o->url + 7,
			   *colon = strchr(h, ':'),
			   *slash = strchr(h, '/');
	struct timespec mono,
				real;
	sigset_t	all,
				old;

	if (!pgs_otlp_url_ok(o->url))
		return snprintf(why, len, "\"%s\" is not an http://HOST:PORT[/PATH] URL", o->url), NULL;
	x = pgs_xmalloc(sizeof(PgsOtlp));
	memset(x, 0, sizeof(*x));
	x->o = *o;
	x->busy_fd = -1;
	snprintf(x->host, sizeof(x->host), "%.*s", (int) (colon - h), h);
	snprintf(x->port, sizeof(x->port), "%.*s", (int) ((slash ? slash : colon + strlen(colon)) - colon - 1), colon + 1);
	snprintf(x->path, sizeof(x->path), "%s", slash && slash[1] ? slash : "/v1/traces");
	if (gethostname(x->hostname, sizeof(x->hostname)) != 0)
		snprintf(x->hostname, sizeof(x->hostname), "localhost");
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	x->mono_to_real_ns = (real.tv_sec - mono.tv_sec) * 1000000000LL + (real.tv_nsec - mono.tv_nsec);
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->wake, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&x->thread, NULL, run, x) != 0)
	{
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		free(x);
		return snprintf(why, len, "cannot start the OTLP exporter thread"), NULL;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return x;
}

void
pgs_otlp_stats(PgsOtlp *x, PgsOtlpStats *st)
{
	pthread_mutex_lock(&x->lock);
	*st = x->st;
	st->queued = x->count;
	pthread_mutex_unlock(&x->lock);
}

void
pgs_otlp_stats_add(PgsOtlpStats *to, const PgsOtlpStats *from)
{
	to->exported += from->exported;
	to->dropped += from->dropped;
	to->failures += from->failures;
	to->bad_traceparent += from->bad_traceparent;
}

void
pgs_otlp_stop(PgsOtlp *x, PgsOtlpStats *last)
{
	if (x == NULL)
		return;
	/*
	 * Up to 3 s for the queue to drain into a receiver that takes spans;
	 * then, or at once when it is failing, the thread stops: a POST under
	 * way is cut short, what is left is dropped (counted).
	 */
	for (int i = 0; i < 30; i++)
	{
		bool		wait;

		pthread_mutex_lock(&x->lock);
		wait = x->count > 0 && !x->failing;
		pthread_cond_signal(&x->wake);
		pthread_mutex_unlock(&x->lock);
		if (!wait)
			break;
		nanosleep(&(struct timespec) {0, 100 * 1000000L}, NULL);
	}
	pthread_mutex_lock(&x->lock);
	x->stopping = true;
	if (x->busy_fd >= 0)
		shutdown(x->busy_fd, SHUT_RDWR);
	pthread_cond_signal(&x->wake);
	pthread_mutex_unlock(&x->lock);
	pthread_join(x->thread, NULL);
	while (x->count > 0)
	{
		free(x->queue[x->head]);
		x->head = (x->head + 1) % PGS_OTLP_QUEUE;
		x->count--;
		x->st.dropped++;
	}
	if (last)
		*last = x->st;
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->wake);
	free(x);
}
