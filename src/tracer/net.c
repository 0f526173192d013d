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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
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
	struct Who *next;
} Who;

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
			return w;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		pgs_die("out of memory");
	w->pid = pid;
	snprintf(p, sizeof(p), "%u", pid);
	if (c)
		r = pgs_query(c, "SELECT coalesce(host(client_addr) || ':' || client_port, 'local socket'), coalesce(datname, ''), "
					  "coalesce(usename, ''), coalesce(application_name, '') FROM pg_stat_activity WHERE pid = $1::int",
					  1, params, NULL, 0);
	if (r && PQntuples(r) == 1)
	{
		w->client = pgs_xstrdup(PQgetvalue(r, 0, 0));
		w->database = pgs_xstrdup(PQgetvalue(r, 0, 1));
		w->user = pgs_xstrdup(PQgetvalue(r, 0, 2));
		w->application = pgs_xstrdup(PQgetvalue(r, 0, 3));
	}
	else
	{
		w->client = pgs_xstrdup("?");
		w->database = pgs_xstrdup("?");
		w->user = pgs_xstrdup("?");
		w->application = pgs_xstrdup("");
	}
	PQclear(r);
	w->next = *list;
	*list = w;
	return w;
}

/* learns who every backend in the map is while it is still connected */
static void
learn(struct net_bpf *skel, Who **list, PgsNames *names)
{
	int			fd = bpf_map__fd(skel->maps.backends);
	uint32_t	key,
				next;
	int			err = bpf_map_get_next_key(fd, NULL, &next);

	while (err == 0)
	{
		key = next;
		who_of(list, names, key);
		err = bpf_map_get_next_key(fd, &key, &next);
	}
}

typedef struct LearnCtx
{
	struct net_bpf *skel;
	Who		  **who;
	PgsNames   *names;
} LearnCtx;

static void
learn_tick(void *arg)
{
	LearnCtx   *l = arg;

	learn(l->skel, l->who, l->names);
}

static void
report(struct net_bpf *skel, Who **list, PgsNames *names, bool json, const char *only_database)
{
	int			fd = bpf_map__fd(skel->maps.backends);
	uint32_t	key,
				next;
	int			err = bpf_map_get_next_key(fd, NULL, &next);
	PgsBuf		b;

	pgs_buf_init(&b);
	if (!json)
		printf("%8s %-22s %-12s %-12s %12s %12s %8s %8s %9s %12s %14s\n", "PID", "CLIENT", "DATABASE", "USER",
			   "BYTES_IN", "BYTES_OUT", "RECVS", "SENDS", "REQUESTS", "SERVING_MS", "CLIENT_WAIT_MS");
	while (err == 0)
	{
		struct pgs_net_backend v;

		key = next;
		if (bpf_map_lookup_elem(fd, &key, &v) == 0)
		{
			Who		   *w = who_of(list, names, key);

			if (only_database && strcmp(w->database, only_database) != 0)
				;
			else if (json)
			{
				b.len = 0;
				pgs_buf_printf(&b, "{\"pid\":%u,\"client\":", key);
				pgs_buf_json_string(&b, w->client);
				pgs_buf_puts(&b, ",\"database\":");
				pgs_buf_json_string(&b, w->database);
				pgs_buf_puts(&b, ",\"user\":");
				pgs_buf_json_string(&b, w->user);
				pgs_buf_puts(&b, ",\"application\":");
				pgs_buf_json_string(&b, w->application);
				pgs_buf_printf(&b, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"recvs\":%llu,\"sends\":%llu,\"requests\":%llu,"
							   "\"serving_ms\":%.3f,\"client_wait_ms\":%.3f}\n",
							   (unsigned long long) v.bytes_in, (unsigned long long) v.bytes_out,
							   (unsigned long long) v.recvs, (unsigned long long) v.sends,
							   (unsigned long long) v.requests, v.serving_ns / 1e6, v.client_ns / 1e6);
				fputs(b.data, stdout);
			}
			else
				printf("%8u %-22.22s %-12.12s %-12.12s %12llu %12llu %8llu %8llu %9llu %12.3f %14.3f\n", key, w->client,
					   w->database, w->user, (unsigned long long) v.bytes_in, (unsigned long long) v.bytes_out,
					   (unsigned long long) v.recvs, (unsigned long long) v.sends, (unsigned long long) v.requests,
					   v.serving_ns / 1e6, v.client_ns / 1e6);
		}
		err = bpf_map_get_next_key(fd, &key, &next);
	}
	pgs_buf_free(&b);
	fflush(stdout);
}

static const char usage_text[] =
	"usage: pgscope net [--pid PID | -D DATADIR | --bin PATH] [-d DATABASE] [-U USER] [--dbname DB] [--json]\n"
	"                   [--duration SEC]\n"
	"  per backend and client: bytes and calls on the client socket, requests, time serving them and\n"
	"  time waiting for the client; needs root or CAP_BPF+CAP_PERFMON\n";

int
cmd_net(int argc, char **argv)
{
	static const struct option opts[] = {
		PGS_TARGET_LONGOPTS,
		{"username", required_argument, NULL, 'U'},
		{"dbname", required_argument, NULL, 2001},
		{"help", no_argument, NULL, 2002},
		{"database", required_argument, NULL, 'd'},
		{NULL, 0, NULL, 0}
	};
	PgsTargetOpts to = {.duration = -1};
	PgsTarget	t;
	const char *user = NULL,
			   *dbname = NULL,
			   *only_database = NULL;
	struct net_bpf *skel = NULL;
	struct bpf_link *links[3] = {0};
	PgsNames   *names = NULL;
	Who		   *who = NULL;
	int			opt,
				err,
				rc = EXIT_RUNTIME;
	LearnCtx	learn_ctx;

	pgs_cmd = "pgscope net";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "p:D:U:d:", opts, NULL)) != -1)
	{
		if (opt == 'p')
			opt = 1002;
		if (pgs_target_opt(&to, opt, optarg))
			continue;
		switch (opt)
		{
			case 'U':
				user = optarg;
				break;
			case 'd':
				only_database = optarg;
				break;
			case 2001:
				dbname = optarg;
				break;
			case 2002:
				fputs(usage_text, stdout);
				return 0;
			default:
				pgs_bad_option(argv, optind, optopt, "net");
		}
	}
	if (optind < argc)
		pgs_usage("unexpected argument \"%s\" (see pgscope net --help)", argv[optind]);
	pgs_require_bpf_privileges();
	pgs_resolve_target(&t, &to);

	skel = net_bpf__open();
	if (skel == NULL)
	{
		pgs_err("cannot open the BPF program: %s", strerror(errno));
		goto cleanup;
	}
	skel->rodata->filter_pid = t.backend;
	skel->rodata->filter_ppid = t.backend ? 0 : t.postmaster;
	err = net_bpf__load(skel);
	if (err)
	{
		pgs_err("cannot load the BPF program: %s", strerror(-err));
		goto cleanup;
	}
	err = pgs_ensure_tracefs();
	if (err)
	{
		pgs_err("cannot mount tracefs at /sys/kernel/tracing: %s", strerror(-err));
		goto cleanup;
	}
	links[0] = bpf_program__attach(skel->progs.on_recv);
	links[1] = links[0] ? bpf_program__attach(skel->progs.on_send_enter) : NULL;
	links[2] = links[1] ? bpf_program__attach(skel->progs.on_send_exit) : NULL;
	if (!links[2])
	{
		pgs_err("cannot attach to the syscall tracepoints: %s", strerror(errno));
		goto cleanup;
	}
	names = pgs_names_open(&t, user, dbname);
	fprintf(stderr, "%s: tracing client traffic of %s %d (PostgreSQL %d)\n", pgs_cmd,
			t.backend ? "backend" : "the cluster of postmaster", t.backend ? t.backend : t.postmaster, t.major);
	fflush(stderr);
	pgs_catch_signals();
	/* who the backends are is learnt while they are connected */
	learn_ctx.skel = skel;
	learn_ctx.who = &who;
	learn_ctx.names = names;
	pgs_tracer_wait(to.duration, 0.2, learn_tick, &learn_ctx);
	report(skel, &who, names, to.json, only_database);
	rc = 0;

cleanup:
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(links[i]);
	net_bpf__destroy(skel);
	pgs_names_close(names);
	return rc;
}
