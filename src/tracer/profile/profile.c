/*
 * profile.c - "pgscope profile": on-CPU samples of a cluster's processes
 * (or of one backend) at --hz, each stack under the query the backend was
 * running, with its native frames named through the mapped files' symbols
 * and the kernel's; written as folded stacks (flamegraph.pl, speedscope),
 * JSON, or the HTML flame graph of the PL/pgSQL report.
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "names.h"
#include "profile.h"
#include "profile.skel.h"
#include "proto.h"
#include "report.h"
#include "symbols.h"
#include "tracer.h"
#include "util.h"

#define MAX_CPUS 1024
#define FRAME_LEN 512

typedef struct Prof
{
	double		hz;
	bool		off_cpu;		/* off-CPU time too: every count in microseconds */
	int			format;			/* 1 folded, 2 json, 3 html (0: folded) */
	const char *output;
	struct profile_bpf *skel;
	int			ncpus;
	int			perf_fds[MAX_CPUS];
	struct bpf_link *links[MAX_CPUS];
	PgsSyms    *syms;
	PgsNames   *names;
	bool		lease;			/* the 'frames' lease is held */
	bool		lease_said;		/* its failure was said */
	const PgsTarget *t;
	double		started,
				seconds;		/* sampled for */
	struct Title
	{
		int			pid;
		char		title[64];	/* "checkpointer", "autovacuum worker" */
	}		   *titles;
	size_t		ntitles,
				cap_titles;
} Prof;

/* one stack's line and its count: samples, or with --off-cpu microseconds */
typedef struct Line
{
	char	   *stack;			/* frames joined by ';' */
	char	   *kinds;			/* a letter a frame: q query or process, p PL/pgSQL, w wait or [CPU], n native */
	uint64_t	samples;
} Line;

/* a stack being named: its frames and their kinds */
typedef struct Stack
{
	PgsBuf		frames;
	PgsBuf		kinds;
} Stack;

typedef struct Lines
{
	Line	   *v;
	size_t		n,
				cap;
	uint64_t	total;
} Lines;

static const char usage_text[] =
	"usage: pgscope profile [--pid PID | -D DATADIR | --bin PATH] [--duration SEC] [--hz N]\n"
	"                       [-d DATABASE] [--off-cpu] [--format folded|json|html] [-o FILE]\n"
	"  samples the cluster's processes on CPU (or the one backend of --pid; -d: the backends of\n"
	"  DATABASE) N times a second (default\n"
	"  99) with their user and kernel stacks, each under the query the backend was running; at the\n"
	"  end (--duration or Ctrl-C) writes folded stacks (default; flamegraph.pl and speedscope read\n"
	"  them), JSON, or the HTML flame graph (needs -o FILE) to FILE or standard output.  Backends\n"
	"  with the pgscope extension loaded add their PL/pgSQL frames (function:line) under the query,\n"
	"  through a lease the tracer holds over the connection of -U/--dbname (pgscope preloaded and\n"
	"  created there; superuser or pgscope_admin).  --off-cpu adds the time off the CPU, under the\n"
	"  wait event it was spent in ([Lock:transactionid], [Timeout:PgSleep] (before 17: [Timeout#2]),\n"
	"  [Runqueue]) beside [CPU]; every count is then in microseconds.  Needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsOptSpec opts[] = {
	PGS_OPT_NUMBER("hz", 0, PGS_ARG_DOUBLE, Prof, hz, 1, 1000, "samples a second, from 1 to 1000"),
	PGS_OPT_CHOICE("format", Prof, format, "folded, json or html", "folded|json|html"),
	PGS_OPT_FLAG("off-cpu", Prof, off_cpu),
	{"output", 'o', PGS_ARG_OUTPUT, offsetof(Prof, output), 0, 0, NULL, NULL},
	PGS_OPT_END
};

static const PgsCommand profile_command =
	{"pgscope profile", usage_text, opts, PGS_CMD_NAMES | PGS_CMD_DATABASE};

/* ---------- attaching: a software clock event per CPU ---------- */

/* no more samples: the events closed (the maps stay for reading) */
static void
stop_sampling(Prof *p)
{
	if (p->skel)
	{
		bpf_link__destroy(p->skel->links.on_switch);
		p->skel->links.on_switch = NULL;
	}
	for (int i = 0; i < p->ncpus; i++)
	{
		bpf_link__destroy(p->links[i]);
		if (p->perf_fds[i] >= 0)
			close(p->perf_fds[i]);
	}
	p->ncpus = 0;
}

static void
detach_all(Prof *p)
{
	stop_sampling(p);
	PGS_SKEL_DESTROY(profile, p->skel);
	p->skel = NULL;
}

/* 0, or -1 (said); only_db: -d's oid, 0: all */
static int
attach(Prof *p, const PgsTarget *t, uint32_t only_db)
{
	struct perf_event_attr a = {.size = sizeof(a), .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_CPU_CLOCK,
	.freq = 1, .sample_freq = (uint64_t) p->hz};
	int			ncpus = libbpf_num_possible_cpus(),
				opened = 0;
	struct profile_bpf *skel;

	PGS_SKEL_OPEN(profile, skel, t);
	skel->rodata->query_ptr_addr = t->debug_query_string;
	skel->rodata->database_addr = t->mydatabaseid;
	skel->rodata->wait_event_addr = t->my_wait_event_info;
	skel->rodata->only_database = only_db;
	bpf_program__set_autoload(skel->progs.on_switch, p->off_cpu);
	PGS_SKEL_LOAD(profile, skel);
	p->skel = skel;
	if (p->off_cpu && (skel->links.on_switch = bpf_program__attach(skel->progs.on_switch)) == NULL)
	{
		pgs_err("cannot attach to sched_switch for --off-cpu: %s", strerror(errno));
		goto cleanup;
	}
	for (int cpu = 0; cpu < ncpus && cpu < MAX_CPUS; cpu++)
	{
		int			fd = (int) syscall(__NR_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

		p->perf_fds[p->ncpus] = fd;
		p->links[p->ncpus++] = NULL;
		if (fd < 0)
		{
			if (errno == ENODEV)	/* an offline CPU */
				continue;
			pgs_err("cannot open a CPU clock event on CPU %d: %s", cpu, strerror(errno));
			detach_all(p);
			return -1;
		}
		if ((p->links[p->ncpus - 1] = bpf_program__attach_perf_event(skel->progs.on_sample, fd)) == NULL)
		{
			pgs_err("cannot attach the sampler on CPU %d: %s", cpu, strerror(errno));
			detach_all(p);
			return -1;
		}
		opened++;
	}
	return opened > 0 ? 0 : (pgs_err("no CPU to sample"), detach_all(p), -1);

cleanup:
	PGS_SKEL_DESTROY(profile, skel);
	return -1;
}

/* ---------- while sampling: each process's mappings and title, read while it lives ---------- */

static const char *
title_of(const Prof *p, int pid)
{
	for (size_t i = 0; i < p->ntitles; i++)
		if (p->titles[i].pid == pid)
			return p->titles[i].title;
	return NULL;
}

/* what a process is, from its title ("postgres: checkpointer", "postgres: 16/main: walwriter") */
static void
note_title(Prof *p, int pid)
{
	char		path[64],
				buf[256];
	FILE	   *f;
	size_t		n;
	const char *t = buf;

	if (title_of(p, pid))
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == ' ')	/* (a title is padded with spaces) */
		buf[--n] = '\0';
	if (strncmp(t, "postgres: ", 10) == 0)
		t += 10;
	/* a cluster name first ("16/main: checkpointer"): skipped */
	if (strchr(t, ':') && strchr(t, ':') < t + strcspn(t, " "))
		t = strchr(t, ':') + 2 <= buf + n ? strchr(t, ':') + 2 : t;
	p->titles = pgs_grow(p->titles, &p->cap_titles, p->ntitles, sizeof(struct Title));
	p->titles[p->ntitles].pid = pid;
	/* a backend's title is "user database host state": it is a backend; others are what they say */
	snprintf(p->titles[p->ntitles].title, sizeof(p->titles[0].title), "%.63s",
			 strstr(t, "(") || strstr(t, "[local]") ? "backend" : t);
	p->ntitles++;
}

/* a process's mappings (again: libraries loaded since), its title, where it publishes its PL/pgSQL frames */
static void
read_process(Prof *p, int pid)
{
	uint64_t	addr;
	uint32_t	key = (uint32_t) pid;

	if (!pgs_syms_read_process(p->syms, pid, true))
		return;
	note_title(p, pid);
	if (p->skel && (addr = pgs_syms_object_address(p->syms, pid)) != 0)
		bpf_map_update_elem(bpf_map__fd(p->skel->maps.plstack_addr), &key, &addr, BPF_ANY);
}

/* the postmaster's pgscope_plstack, if pgscope is preloaded: the backends forked later have it there too */
static void
read_postmaster(Prof *p)
{
	uint64_t	addr;
	uint32_t	key = 0;

	if (pgs_syms_read_process(p->syms, p->t->postmaster, false) &&
		(addr = pgs_syms_object_address(p->syms, p->t->postmaster)) != 0)
		bpf_map_update_elem(bpf_map__fd(p->skel->maps.plstack_addr), &key, &addr, BPF_ANY);
}

/* the extension's 'frames' lease: taken, renewed every second, ended (what "off" does) */
static void
frames_lease(Prof *p, const char *what)
{
	const char *err = pgs_names_lease(p->names, what, NULL);

	if (err == NULL)
	{
		p->lease = strcmp(what, "off") != 0;
		p->lease_said = false;
	}
	else if (!p->lease_said && strcmp(what, "off") != 0)
	{
		pgs_err("no PL/pgSQL frames: %s", err);
		p->lease_said = true;
	}
	else if (strcmp(what, "off") == 0)
		pgs_err("cannot end the frames lease (%s): it lapses within 5 seconds", err);
}

static void
every_second(void *arg)
{
	Prof	   *p = arg;
	char		path[64];
	FILE	   *f;
	int			pid;

	if (p->lease || !p->lease_said)
		frames_lease(p, "frames");
	if (p->t->backend)
	{
		read_process(p, p->t->backend);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", p->t->postmaster, p->t->postmaster);
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fscanf(f, "%d", &pid) == 1)
		read_process(p, pid);
	fclose(f);
}

/* ---------- the stacks, named ---------- */

/* a frame for the folded format: no ';' (the separator) and no line breaks */
static void
put_frame(Stack *st, char kind, const char *name, const char *suffix)
{
	PgsBuf	   *b = &st->frames;

	pgs_buf_append(&st->kinds, &kind, 1);
	if (b->len > 0)
		pgs_buf_puts(b, ";");
	for (const char *c = name; *c; c++)
		pgs_buf_append(b, *c == ';' ? ":" : *c == '\n' || *c == '\r' || *c == '\t' ? " " : c, 1);
	pgs_buf_puts(b, suffix);
}

/* the query frame: the normalized text, or what the process is when it ran none */
static void
query_frame(Prof *p, Stack *b, const struct pgs_prof_key *k)
{
	struct pgs_prof_text text;
	char		frame[FRAME_LEN];
	const char *title;

	if (k->query && bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.texts), &k->query, &text) == 0)
	{
		char	   *norm;

		text.text[sizeof(text.text) - 1] = '\0';
		norm = pgs_normalize_query(text.text);
		snprintf(frame, sizeof(frame), "%s%s", norm ? norm : text.text,
				 strlen(text.text) >= sizeof(text.text) - 1 ? "…" : "");
		free(norm);
	}
	else if (k->query)
		snprintf(frame, sizeof(frame), "[query text not kept]");
	else if ((title = title_of(p, (int) k->pid)) != NULL)
		snprintf(frame, sizeof(frame), "[%s%s]", title, strcmp(title, "backend") == 0 ? ": no query" : "");
	else
		snprintf(frame, sizeof(frame), "[process %u]", k->pid);
	put_frame(b, 'q', frame, "");
}

/* the PL/pgSQL frames of the sample, outermost first: "function(args):line" */
static void
plpgsql_frames(Prof *p, Stack *b, const struct pgs_prof_key *k)
{
	struct pgs_prof_plstack st;
	char		frame[FRAME_LEN];

	if (k->plstack == 0 || bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.plstacks), &k->plstack, &st) != 0)
		return;
	if (st.truncated)
	{
		snprintf(frame, sizeof(frame), "[%u outer PL/pgSQL frames not kept]", st.truncated);
		put_frame(b, 'p', frame, "");
	}
	for (uint32_t i = 0; i < st.depth && i < PGS_PLSTACK_MAX; i++)
	{
		char		oid[32];
		const char *fn = oid;

		snprintf(oid, sizeof(oid), st.frames[i].fn_oid ? "function %u" : "DO block", st.frames[i].fn_oid);
		if (st.frames[i].fn_oid && pgs_names_conn(p->names))
			fn = pgs_names_of(p->names, PGS_NAME_FUNCTION, k->database, st.frames[i].fn_oid);
		/* (line 0: between statements, as at the start and end of a call) */
		if (st.frames[i].lineno > 0)
			snprintf(frame, sizeof(frame), "%s:%d", fn, st.frames[i].lineno);
		else
			snprintf(frame, sizeof(frame), "%s", fn);
		put_frame(b, 'p', frame, "");
	}
}

static void
stack_frames(Prof *p, Stack *b, const struct pgs_prof_key *k)
{
	uint64_t	ips[PGS_PROF_STACK_DEPTH];
	char		name[FRAME_LEN];
	int			fd = bpf_map__fd(p->skel->maps.stacks),
				n;

	if (k->ustack >= 0 && bpf_map_lookup_elem(fd, &k->ustack, ips) == 0)
	{
		for (n = 0; n < PGS_PROF_STACK_DEPTH && ips[n]; n++)
			;
		for (int i = n - 1; i >= 0; i--)
			put_frame(b, 'n', pgs_syms_user(p->syms, (int) k->pid, ips[i], i > 0, name, sizeof(name)), "");
	}
	else
		put_frame(b, 'n', "[no user stack]", "");
	if (k->kstack >= 0 && bpf_map_lookup_elem(fd, &k->kstack, ips) == 0)
	{
		for (n = 0; n < PGS_PROF_STACK_DEPTH && ips[n]; n++)
			;
		for (int i = n - 1; i >= 0; i--)
			put_frame(b, 'n', pgs_syms_kernel(p->syms, ips[i], name, sizeof(name)), "_[k]");
	}
}

static int
line_cmp(const void *a, const void *b)
{
	return strcmp(((const Line *) a)->stack, ((const Line *) b)->stack);
}

/*
 * The wait an off-CPU period was spent in, as pg_stat_activity names it:
 * class and event (a lock's by its type; others by the server's own list
 * where it has one, 17 and later, else by number within the class)
 */
static void
wait_frame(PgsNames *names, uint32_t wei, char *buf, size_t len)
{
	uint32_t	cls = wei >> 24;
	const char *class = cls < PGS_WAIT_CLASS_BYTES ? pgs_wait_types[cls] : NULL;

	if (wei == PGS_PROF_RUNQUEUE)
		snprintf(buf, len, "[Runqueue]");
	else if (wei == 0)
		snprintf(buf, len, "[off-CPU: no wait event]");
	else if (cls == PGS_WAIT_CLASS_LOCK && (wei & 0xFFFF) < PGS_LOCKTAG_NAMES)
		snprintf(buf, len, "[Lock:%s]", pgs_locktag_names[wei & 0xFFFF]);
	else if (class && pgs_names_wait_event(names, wei))
		snprintf(buf, len, "[%s:%s]", class, pgs_names_wait_event(names, wei));
	else if (class)
		snprintf(buf, len, "[%s#%u]", class, wei & 0xFFFF);
	else
		snprintf(buf, len, "[wait 0x%08x]", wei);
}

/* the stacks of one map: samples (counts) or nanoseconds off the CPU (offcpu) */
static void
collect_map(Prof *p, int fd, bool off, Lines *l)
{
	struct pgs_prof_key k,
				next,
			   *prev = NULL;
	char		frame[96];

	while (bpf_map_get_next_key(fd, prev, &next) == 0)
	{
		uint64_t	v;
		Stack		b;

		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v) != 0)
			continue;
		if (!pgs_syms_have_process(p->syms, (int) k.pid))
			pgs_syms_alias(p->syms, (int) k.pid, p->t->postmaster);	/* gone before it was read */
		pgs_buf_init(&b.frames);
		pgs_buf_init(&b.kinds);
		query_frame(p, &b, &k);
		plpgsql_frames(p, &b, &k);
		if (p->off_cpu)
		{
			if (off)
				wait_frame(p->names, k.wait, frame, sizeof(frame));
			else
				snprintf(frame, sizeof(frame), "[CPU]");
			put_frame(&b, 'w', frame, "");
		}
		stack_frames(p, &b, &k);
		/* with --off-cpu, all in microseconds */
		v = !p->off_cpu ? v : off ? v / 1000 : (uint64_t) (v * 1e6 / p->hz);
		l->v = pgs_grow(l->v, &l->cap, l->n, sizeof(Line));
		l->v[l->n++] = (Line) {b.frames.data, b.kinds.data, v};
		l->total += v;
	}
}

/* every stack named, equal ones merged, sorted by their frames */
static void
collect(Prof *p, Lines *l)
{
	size_t		n = 0;

	memset(l, 0, sizeof(*l));
	collect_map(p, bpf_map__fd(p->skel->maps.counts), false, l);
	if (p->off_cpu)
		collect_map(p, bpf_map__fd(p->skel->maps.offcpu), true, l);
	qsort(l->v, l->n, sizeof(Line), line_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (n > 0 && strcmp(l->v[n - 1].stack, l->v[i].stack) == 0)
		{
			l->v[n - 1].samples += l->v[i].samples;
			free(l->v[i].stack);
			free(l->v[i].kinds);
		}
		else
			l->v[n++] = l->v[i];
	l->n = n;
}

/* ---------- output ---------- */

static void
json_stack(PgsBuf *out, const char *stack)
{
	char	   *copy = pgs_xstrdup(stack),
			   *save = NULL;
	bool		first = true;

	pgs_buf_puts(out, "[");
	for (char *f = strtok_r(copy, ";", &save); f; f = strtok_r(NULL, ";", &save), first = false)
	{
		if (!first)
			pgs_buf_puts(out, ",");
		pgs_buf_json_string(out, f);
	}
	pgs_buf_puts(out, "]");
	free(copy);
}

/* folded lines, or a JSON document: ours, or the PL/pgSQL report's (its call graph in sampled time) */
static void
render(Prof *p, const Lines *l, PgsBuf *out)
{
	const Line *lines = l->v;
	size_t		n = l->n;
	uint64_t	total = l->total;
	double		secs = p->seconds,
				ns_per = p->off_cpu ? 1000 : 1e9 / p->hz;

	if (p->format <= 1)
	{
		for (size_t i = 0; i < n; i++)
			pgs_buf_printf(out, "%s %llu\n", lines[i].stack, (unsigned long long) lines[i].samples);
		return;
	}
	if (p->format == 2)
		pgs_buf_printf(out, "{\"format\":\"pgscope-cpu-profile\",\"version\":1,\"hz\":%g,\"seconds\":%.3f,"
					   "\"postmaster\":%d,\"unit\":\"%s\",\"total\":%llu,\"stacks\":[", p->hz, secs,
					   p->t->postmaster, p->off_cpu ? "microseconds" : "samples", (unsigned long long) total);
	else
		pgs_buf_printf(out, "{\"format\":\"pgscope-profile\",\"version\":1,\"meta\":{\"scope\":\"%s at %g Hz "
					   "of postmaster %d's processes in %.1f s\",\"command\":\"pgscope profile\"},"
					   "\"functions\":[],\"callgraph\":[", p->off_cpu ? "CPU samples and off-CPU time" : "CPU samples",
					   p->hz, p->t->postmaster, secs);
	for (size_t i = 0; i < n; i++)
	{
		pgs_buf_puts(out, i ? ",{\"stack\":" : "{\"stack\":");
		json_stack(out, lines[i].stack);
		pgs_buf_printf(out, ",\"kinds\":\"%s\"", lines[i].kinds);
		if (p->format == 2)
			pgs_buf_printf(out, ",\"%s\":%llu}", p->off_cpu ? "microseconds" : "samples",
						   (unsigned long long) lines[i].samples);
		else
			pgs_buf_printf(out, ",\"calls\":%llu,\"self_ns\":%.0f,\"total_ns\":%.0f}",
						   (unsigned long long) lines[i].samples, lines[i].samples * ns_per, lines[i].samples * ns_per);
	}
	pgs_buf_puts(out, "]}\n");
}

static int
finish(Prof *p)
{
	uint64_t	c[PGS_PROF_COUNTERS];
	Lines		l;
	PgsBuf		out;
	int			rc;

	for (uint32_t i = 0; i < PGS_PROF_COUNTERS; i++)
		c[i] = pgs_percpu_sum(bpf_map__fd(p->skel->maps.counters), i);
	collect(p, &l);
	pgs_buf_init(&out);
	render(p, &l, &out);
	if (p->format == 3)
		rc = pgs_write_report(NULL, out.data, PGS_FORMAT_HTML, "pgscope CPU profile", 20, p->output);
	else if ((rc = pgs_write_file(p->output ? p->output : "-", out.data, out.len)) != 0)
		pgs_err("cannot write %s: %s", p->output ? p->output : "standard output", pgs_output_strerror(rc));
	fprintf(stderr, "%s: %llu samples in %zu stacks; %llu with PL/pgSQL frames, %llu without a user stack, "
			"%llu lost (map full)", pgs_cmd, (unsigned long long) c[PGS_PROF_SAMPLES], l.n,
			(unsigned long long) c[PGS_PROF_PLSTACKS], (unsigned long long) c[PGS_PROF_NO_USTACK],
			(unsigned long long) c[PGS_PROF_LOST]);
	if (p->off_cpu)
		fprintf(stderr, "; %llu off-CPU periods, %llu lost", (unsigned long long) c[PGS_PROF_SWITCHES],
				(unsigned long long) c[PGS_PROF_OFF_LOST]);
	fprintf(stderr, "%s%s\n", c[PGS_PROF_NO_TEXT] ? "; some query texts not kept" : "",
			c[PGS_PROF_BAD_PLSTACK] ? "; some PL/pgSQL stacks unreadable (another pgscope version?)" : "");
	for (size_t i = 0; i < l.n; i++)
	{
		free(l.v[i].stack);
		free(l.v[i].kinds);
	}
	free(l.v);
	pgs_buf_free(&out);
	return rc == 0 ? 0 : EXIT_RUNTIME;
}

int
cmd_profile(int argc, char **argv)
{
	PgsTracing	tr;
	Prof		p = {.hz = 99};
	PgsLoop		loop = {.what = "CPU samples", .tick_seconds = 1, .tick = every_second, .arg = &p};
	int			rc;

	pgs_command_start(&profile_command, &p, argc, argv, &tr);
	if (p.format == 3 && p.output == NULL)
		pgs_usage("--format html needs -o FILE");
	p.t = &tr.t;
	p.syms = pgs_syms_new();
	pgs_syms_want_object(p.syms, PGS_PLSTACK_SYMBOL);
	p.names = pgs_names_open(&tr.t, tr.user, tr.dbname);
	if (tr.t.debug_query_string == 0)
		pgs_err("%s exports no debug_query_string: samples are not grouped by query", tr.t.bin);
	if (tr.database && tr.t.mydatabaseid == 0)
		pgs_die("-d needs MyDatabaseId, which %s does not export", tr.t.bin);
	if (attach(&p, &tr.t, tr.database ? pgs_database_oid(p.names, tr.database) : 0) != 0)
	{
		pgs_names_close(p.names);
		return EXIT_RUNTIME;
	}
	p.started = pgs_now();
	read_postmaster(&p);
	every_second(&p);
	pgs_tracer_loop(&loop, &tr.t, tr.to.duration);
	stop_sampling(&p);
	p.seconds = pgs_now() - p.started;
	if (p.lease)
		frames_lease(&p, "off");
	p.lease_said = true;		/* (no lease again at the last reading) */
	every_second(&p);
	rc = finish(&p);
	detach_all(&p);
	pgs_names_close(p.names);
	pgs_syms_free(p.syms);
	free(p.titles);
	return rc ? rc : pgs_tracer_status();
}
