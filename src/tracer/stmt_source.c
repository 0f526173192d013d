/*
 * stmt_source.c - open, set rodata, load, attach, poll, destroy: the one
 * place the statement tracer's BPF object is driven (after libbpf-tools'
 * flow, with its boilerplate written once).
 */
#include "stmt_source.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queries.h"
#include "queries.skel.h"
#include "util.h"

const char *const pgs_wait_class_names[PGS_WAIT_CLASSES] = {
	"NoWaitEvent", "LWLock", "Lock", "BufferPin", "Activity", "Client", "Extension", "IPC", "Timeout", "IO",
	"Runqueue"
};

typedef struct PollCtx
{
	pgs_stmt_cb cb;
	void	   *arg;
	PgsStmtSourceStats *stats;
} PollCtx;

static int
libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char		line[1024];

	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* memlock limits are harmless where the kernel accounts BPF memory to cgroups */
	if (strstr(line, "memlock") || strstr(line, "RLIMIT"))
		return 0;
	line[strcspn(line, "\n")] = '\0';
	fprintf(stderr, "%s: libbpf: %s\n", pgs_cmd, line);
	return 0;
}

static int
on_event(void *ctx, void *data, size_t size)
{
	PollCtx    *pc = ctx;
	const struct pgs_query_event *e = data;
	PgsStatement s;
	char		db[PGS_NAME_LEN + 1],
				user[PGS_NAME_LEN + 1];
	char	   *text;
	size_t		len;

	if (size < offsetof(struct pgs_query_event, req))
		return 0;
	len = e->req_len;
	if (len > size - offsetof(struct pgs_query_event, req))
		len = size - offsetof(struct pgs_query_event, req);
	if (e->kind == PGS_EV_PARSE)
	{
		pgs_proto_learn(e->pid, e->req, len);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	memcpy(db, e->database, PGS_NAME_LEN);
	db[PGS_NAME_LEN] = '\0';
	memcpy(user, e->user, PGS_NAME_LEN);
	user[PGS_NAME_LEN] = '\0';
	if (e->req[0] == 'P')
		pgs_proto_learn(e->pid, e->req, len);
	if (!pgs_proto_executes(e->req, len, e->flags & PGS_F_TRUNCATED))
	{
		/* PQprepare's round trip: no execution to report (pg_stat_statements agrees) */
		pc->stats->prepares++;
		return 0;
	}
	text = pgs_proto_text(e->pid, e->req, len, &s.protocol, &s.truncated);
	if (s.truncated || (e->flags & PGS_F_TRUNCATED))
	{
		s.truncated = true;
		pgs_utf8_trim(text);
	}
	s.pid = e->pid;
	s.end_ns = e->end_ns;
	s.duration_ns = e->duration_ns;
	s.parse_ns = e->parse_ns;
	s.plan_ns = e->plan_ns;
	s.exec_ns = e->exec_ns;
	s.split = e->flags & PGS_F_SPLIT;
	s.breakdown = e->flags & PGS_F_BREAKDOWN;
	s.cpu_ns = e->cpu_ns;
	memcpy(s.off_ns, e->off_ns, sizeof(s.off_ns));
	s.blks_hit = e->blks_hit;
	s.blks_read = e->blks_read;
	s.wal_records = e->wal_records;
	s.wal_bytes = e->wal_bytes;
	s.error = e->flags & PGS_F_ERROR;
	s.database = db;
	s.user = user;
	s.text = text;
	pc->stats->delivered++;
	pc->cb(&s, pc->arg);
	free(text);
	return 0;
}

static uint64_t
read_counter(struct queries_bpf *skel, uint32_t idx)
{
	int			ncpu = libbpf_num_possible_cpus();
	uint64_t   *vals,
				sum = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc(ncpu, sizeof(uint64_t));
	if (vals && bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &idx, vals) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

static int
attach_usdt(const PgsTarget *t, struct bpf_program *prog, const char *probe, struct bpf_link **link)
{
	/* pid -1: every process of the binary, so backends forked later are traced too */
	*link = bpf_program__attach_usdt(prog, t->backend ? t->backend : -1, t->bin,
									 "postgresql", probe, NULL);
	return *link ? 0 : -errno;
}

int
pgs_stmt_source_run(const PgsTarget *t, const PgsStmtSourceOpts *o, pgs_stmt_cb cb,
					pgs_tick_cb tick, void *arg, PgsStmtSourceStats *stats)
{
	struct queries_bpf *skel = NULL;
	struct ring_buffer *rb = NULL;
	struct bpf_link *links[3] = {0};
	struct bpf_link *usdt_links[6] = {0};
	PollCtx		pc = {cb, arg, stats};
	int			rc = EXIT_RUNTIME;
	double		start,
				next_tick;
	int			err;
	struct bpf_program *usdt_progs[6];

	memset(stats, 0, sizeof(*stats));
	libbpf_set_print(libbpf_print);
	PGS_SKEL_OPEN(queries, skel, t);
	skel->rodata->min_ns = o->min_ns;
	skel->rodata->capture_len = o->capture_len;
	if (t->myprocport && t->offsets)
	{
		skel->rodata->myprocport_addr = t->myprocport;
		skel->rodata->off_database_name = t->offsets->port_database_name;
		skel->rodata->off_user_name = t->offsets->port_user_name;
	}
	usdt_progs[0] = skel->progs.on_parse_start;
	usdt_progs[1] = skel->progs.on_parse_done;
	usdt_progs[2] = skel->progs.on_plan_start;
	usdt_progs[3] = skel->progs.on_plan_done;
	usdt_progs[4] = skel->progs.on_execute_start;
	usdt_progs[5] = skel->progs.on_execute_done;
	for (int i = 0; i < 6; i++)
		bpf_program__set_autoload(usdt_progs[i], o->split);
	bpf_program__set_autoload(skel->progs.on_switch, o->breakdown);
	skel->rodata->breakdown = o->breakdown;
	skel->rodata->my_wait_event_info_addr = t->my_wait_event_info;
	if (t->offsets)
	{
		skel->rodata->pgbufferusage_addr = t->pgbufferusage;
		skel->rodata->pgwalusage_addr = t->pgwalusage;
		skel->rodata->off_blks_hit = t->offsets->bufusage_shared_hit;
		skel->rodata->off_blks_read = t->offsets->bufusage_shared_read;
		skel->rodata->off_wal_records = t->offsets->walusage_records;
		skel->rodata->off_wal_bytes = t->offsets->walusage_bytes;
	}
	if (o->breakdown && !t->my_wait_event_info)
		pgs_err("wait event classes unavailable: %s does not export my_wait_event_info; off-CPU time is reported unclassified",
				t->bin);

	PGS_SKEL_LOAD(queries, skel);
	links[0] = bpf_program__attach(skel->progs.on_recv);
	links[1] = links[0] ? bpf_program__attach(skel->progs.on_send) : NULL;
	if (links[1] == NULL)
	{
		pgs_err("cannot attach to the socket tracepoints sock:sock_recv_length/sock_send_length (Linux 6.6 or later): %s", strerror(errno));
		goto cleanup;
	}
	if (o->breakdown && (links[2] = bpf_program__attach(skel->progs.on_switch)) == NULL)
	{
		pgs_err("cannot attach to sched:sched_switch for --breakdown: %s", strerror(errno));
		goto cleanup;
	}
	if (o->split)
	{
		static const char *const probes[6] = {
			"query__parse__start", "query__parse__done", "query__plan__start",
			"query__plan__done", "query__execute__start", "query__execute__done"
		};

		for (int i = 0; i < 6; i++)
		{
			err = attach_usdt(t, usdt_progs[i], probes[i], &usdt_links[i]);
			if (err)
			{
				/* the rest keeps working: statements are still traced */
				pgs_err("parse/plan/execute split unavailable: %s has no USDT probe postgresql:%s (%s); tracing statements without it",
						t->bin, probes[i], strerror(-err));
				break;
			}
		}
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, &pc, NULL);
	if (rb == NULL)
	{
		pgs_err("cannot open the ring buffer: %s", strerror(errno));
		goto cleanup;
	}

	if (t->postmaster)
		fprintf(stderr, "%s: tracing %s %d (PostgreSQL %d, %s)%s\n", pgs_cmd, t->backend ? "backend" : "the cluster of postmaster",
				t->backend ? t->backend : t->postmaster, t->major, t->bin,
				t->myprocport && t->offsets ? "" : "; database and user names unavailable");
	else
		fprintf(stderr, "%s: tracing every process of %s (PostgreSQL %d)\n", pgs_cmd, t->bin, t->major);
	fflush(stderr);

	start = pgs_now();
	next_tick = start + o->tick_seconds;
	while (!pgs_stop && !pgs_duration_over(start, o->duration))
	{
		/* events do not wake us (BPF_RB_NO_WAKEUP): sleep, then drain */
		err = ring_buffer__poll(rb, 50);
		if (err >= 0 || err == -EINTR)
			err = ring_buffer__consume(rb);
		if (err < 0 && err != -EINTR)
		{
			pgs_err("cannot read events: %s", strerror(-err));
			goto cleanup;
		}
		if (tick && o->tick_seconds > 0 && pgs_now() >= next_tick)
		{
			tick(arg);
			next_tick += o->tick_seconds;
		}
	}
	pgs_ack_stop();			/* what follows (names, summary) must not be cancelled */
	/* what is already in the buffer still counts */
	ring_buffer__consume(rb);
	stats->seen = read_counter(skel, 1) - stats->prepares;
	stats->lost = read_counter(skel, 0);
	rc = pgs_tracer_status();

cleanup:
	ring_buffer__free(rb);
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(links[i]);
	for (int i = 0; i < 6; i++)
		bpf_link__destroy(usdt_links[i]);
	queries_bpf__destroy(skel);
	return rc;
}
