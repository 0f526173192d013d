/*
 * net.c - "pgscope net": per backend (with its client address, database,
 * user and application, looked up over libpq when the backend is first
 * seen) the bytes and calls on the client socket, the requests, and the
 * time spent serving them against the time spent waiting for the client.
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "expo.h"
#include "names.h"
#include "net.h"
#include "net.skel.h"
#include "tracer.h"
#include "util.h"

typedef struct Who
{
	uint32_t	pid;
	char	   *client;
	char	   *database;
	char	   *user;
	char	   *application;
	bool		known;		/* found in pg_stat_activity */
	int			asked;		/* times it was not (yet) there */
	struct Who *next;
} Who;

static void
set_who(Who *w, const char *client, const char *database, const char *user, const char *application)
{
	free(w->client);
	free(w->database);
	free(w->user);
	free(w->application);
	w->client = pgs_xstrdup(client);
	w->database = pgs_xstrdup(database);
	w->user = pgs_xstrdup(user);
	w->application = pgs_xstrdup(application);
}

/*
 * Who a backend is. A backend is in the map from its startup packet on but in
 * pg_stat_activity only once authenticated: a miss is asked again later.
 */
static Who *
who_of(Who **list, PgsNames *names, uint32_t pid)
{
	Who		   *w;
	char		p[16];
	const char *params[1] = {p};
	PGresult   *r = NULL;
	PGconn	   *c = pgs_names_conn(names);

	for (w = *list; w; w = w->next)
		if (w->pid == pid)
			break;
	if (w == NULL)
	{
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			pgs_die("out of memory");
		w->pid = pid;
		set_who(w, "?", "?", "?", "");
		w->next = *list;
		*list = w;
	}
	if (w->known || c == NULL || w->asked >= 10)
		return w;
	w->asked++;
	snprintf(p, sizeof(p), "%d", pgs_server_pid((int) pid));	/* the server's own pid, in a container too */
	r = pgs_query(c, "SELECT coalesce(host(client_addr) || ':' || client_port, 'local socket'), coalesce(datname, ''), "
				  "coalesce(usename, ''), coalesce(application_name, '') FROM pg_stat_activity WHERE pid = $1::int",
				  1, params, NULL, 0);
	if (r && PQntuples(r) == 1)
	{
		set_who(w, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
		w->known = true;
	}
	PQclear(r);
	return w;
}

typedef struct NetCtx
{
	Who		  **who;
	PgsNames   *names;
	bool		json;
	const char *only_database;
	PgsBuf		b;
	struct net_bpf *skel;
} NetCtx;

/* learns who a backend is while it is still connected */
static void
learn_one(const void *k, const void *v, int n, void *arg)
{
	NetCtx	   *c = arg;

	who_of(c->who, c->names, *(const uint32_t *) k);
}

/* who the backends are is learnt while they are connected */
static void
learn_every(void *arg)
{
	NetCtx	   *c = arg;

	pgs_map_foreach(bpf_map__fd(c->skel->maps.net_totals), sizeof(uint32_t), sizeof(struct pgs_net_backend), false,
					learn_one, c);
}

static void
report_one(const void *k, const void *vp, int n, void *arg)
{
	NetCtx	   *c = arg;
	uint32_t	pid = *(const uint32_t *) k;
	const struct pgs_net_backend *v = vp;
	Who		   *w = who_of(c->who, c->names, pid);
	PgsBuf	   *b = &c->b;

	if (c->only_database && strcmp(w->database, c->only_database) != 0)
		return;
	if (c->json)
	{
		b->len = 0;
		pgs_buf_printf(b, "{\"pid\":%u,\"client\":", pid);
		pgs_buf_json_string(b, w->client);
		pgs_buf_puts(b, ",\"database\":");
		pgs_buf_json_string(b, w->database);
		pgs_buf_puts(b, ",\"user\":");
		pgs_buf_json_string(b, w->user);
		pgs_buf_puts(b, ",\"application\":");
		pgs_buf_json_string(b, w->application);
		pgs_buf_printf(b, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"recvs\":%llu,\"sends\":%llu,\"requests\":%llu,"
					   "\"serving_ms\":%.3f,\"client_wait_ms\":%.3f}\n",
					   (unsigned long long) v->bytes_in, (unsigned long long) v->bytes_out,
					   (unsigned long long) v->recvs, (unsigned long long) v->sends,
					   (unsigned long long) v->requests, v->serving_ns / 1e6, v->client_ns / 1e6);
		fputs(b->data, stdout);
	}
	else
		printf("%8u %-22.22s %-12.12s %-12.12s %12llu %12llu %8llu %8llu %9llu %12.3f %14.3f\n", pid, w->client,
			   w->database, w->user, (unsigned long long) v->bytes_in, (unsigned long long) v->bytes_out,
			   (unsigned long long) v->recvs, (unsigned long long) v->sends, (unsigned long long) v->requests,
			   v->serving_ns / 1e6, v->client_ns / 1e6);
}

static const char usage_text[] =
	"usage: pgscope net [--pid PID | -D DATADIR | --bin PATH] [-d DATABASE] [-U USER] [--dbname DB] [--json]\n"
	"                   [--duration SEC]\n"
	"  per backend and client: bytes and calls on the client socket, requests, time serving them and\n"
	"  time waiting for the client; needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsCommand net_command =
	{"pgscope net", usage_text, NULL, PGS_CMD_NAMES | PGS_CMD_DATABASE};

/* the program attached: NULL when the socket tracepoints cannot be had (said) */
static struct net_bpf *
attach(const PgsTarget *t)
{
	struct net_bpf *skel;
	PgsTlsReadSite site;

	PGS_SKEL_OPEN(net, skel, t);
	if (pgs_tls_read_choose(t, &site, skel->progs.on_tls_read_done, skel->progs.on_tls_read,
							skel->progs.on_tls_read_ret))
		skel->rodata->tls_ptr_reg = (uint32_t) site.ptr_reg;
	PGS_SKEL_LOAD(net, skel);
	if (!(skel->links.on_recv = bpf_program__attach(skel->progs.on_recv)) ||
		!(skel->links.on_send = bpf_program__attach(skel->progs.on_send)))
	{
		pgs_err("cannot attach to the socket tracepoints sock:sock_recv_length/sock_send_length (Linux 6.6 or later): %s",
				strerror(errno));
		goto cleanup;
	}
	/* TLS connections' requests in plain text; only they pay for these uprobes */
	if (!pgs_attach_tls_read(t, &site, skel->progs.on_tls_read_done, &skel->links.on_tls_read_done,
							 skel->progs.on_tls_read, &skel->links.on_tls_read, skel->progs.on_tls_read_ret,
							 &skel->links.on_tls_read_ret) ||
		!(skel->links.on_tls_write = pgs_attach_func(skel->progs.on_tls_write, t, "be_tls_write", false)))
		pgs_err("requests of TLS connections are not seen: %s does not export be_tls_read/be_tls_write", t->bin);
	PGS_SKEL_ATTACHED(net, skel);
}

int
cmd_net(int argc, char **argv)
{
	PgsTracing	tr;
	Who		   *who = NULL;
	NetCtx		c = {.who = &who};
	PgsLoop		loop = {.tick_seconds = 0.2, .tick = learn_every, .arg = &c};

	pgs_command_start(&net_command, NULL, argc, argv, &tr);
	if ((c.skel = attach(&tr.t)) == NULL)
		return EXIT_RUNTIME;
	c.names = pgs_names_open(&tr.t, tr.user, tr.dbname);
	c.json = tr.to.json;
	c.only_database = tr.database;
	pgs_buf_init(&c.b);
	loop.what = "client traffic";
	pgs_tracer_loop(&loop, &tr.t, tr.to.duration);
	if (!c.json)
		printf("%8s %-22s %-12s %-12s %12s %12s %8s %8s %9s %12s %14s\n", "PID", "CLIENT", "DATABASE", "USER",
			   "BYTES_IN", "BYTES_OUT", "RECVS", "SENDS", "REQUESTS", "SERVING_MS", "CLIENT_WAIT_MS");
	pgs_map_foreach(bpf_map__fd(c.skel->maps.net_totals), sizeof(uint32_t), sizeof(struct pgs_net_backend), false,
					report_one, &c);
	fflush(stdout);
	pgs_buf_free(&c.b);
	PGS_SKEL_DESTROY(net, c.skel);
	pgs_names_close(c.names);
	return pgs_tracer_status();
}

/* ---------- what the agent exports: client bytes and requests, kept across backends that exited ---------- */

typedef struct NetPart
{
	struct net_bpf *skel;		/* NULL: the totals are the statement tracer's (pgs_net_part_over) */
	int			fd;				/* the map of per-backend totals */
	struct pgs_net_backend retired;	/* what backends that exited had, their entries dropped */
	struct pgs_net_backend sum;	/* the last render's total */
} NetPart;

static NetPart *
net_part(struct net_bpf *skel, int fd)
{
	NetPart    *np = pgs_xmalloc(sizeof(NetPart));

	memset(np, 0, sizeof(*np));
	np->skel = skel;
	np->fd = fd;
	return np;
}

static void *
part_open(const PgsTarget *t)
{
	struct net_bpf *skel = attach(t);

	return skel ? net_part(skel, bpf_map__fd(skel->maps.net_totals)) : NULL;
}

void *
pgs_net_part_over(int map_fd)
{
	return net_part(NULL, map_fd);
}

static void
add_backend(struct pgs_net_backend *to, const struct pgs_net_backend *v)
{
	to->bytes_in += v->bytes_in;
	to->bytes_out += v->bytes_out;
	to->requests += v->requests;
	to->serving_ns += v->serving_ns;
	to->client_ns += v->client_ns;
}

static void
sum_one(const void *k, const void *v, int n, void *arg)
{
	NetPart    *np = arg;

	add_backend(&np->sum, v);
	if (!pgs_process_alive((int) *(const uint32_t *) k))
	{
		add_backend(&np->retired, v);
		bpf_map_delete_elem(np->fd, k);
	}
}

static void
part_render(void *p, const char *labels, PgsExpo *e)
{
	NetPart    *np = p;

	np->sum = np->retired;
	pgs_map_foreach(np->fd, sizeof(uint32_t), sizeof(struct pgs_net_backend), false, sum_one, np);
	pgs_expo_sample(e, "pgscope_network_receive_bytes_total", "counter", "Bytes the backends received from their clients.",
					labels, (double) np->sum.bytes_in);
	pgs_expo_sample(e, "pgscope_network_transmit_bytes_total", "counter", "Bytes the backends sent to their clients.",
					labels, (double) np->sum.bytes_out);
	pgs_expo_sample(e, "pgscope_client_requests_total", "counter", "Requests (round trips) clients made.",
					labels, (double) np->sum.requests);
	pgs_expo_sample(e, "pgscope_client_wait_seconds_total", "counter",
					"Time backends waited for their clients between a reply and the next request.", labels,
					np->sum.client_ns / 1e9);
}

static void
part_close(void *p)
{
	NetPart    *np = p;

	if (np->skel)
		PGS_SKEL_DESTROY(net, np->skel);
	free(np);
}

const PgsAgentPart pgs_net_part = {"net", part_open, part_render, part_close, NULL};
