// SPDX-License-Identifier: GPL-2.0
/*
 * profile.bpf.c - on-CPU samples of a cluster's processes (a perf software
 * clock event per CPU at --hz), counted in the kernel per process, user
 * stack, kernel stack and the query the backend runs: debug_query_string,
 * read from the backend's memory at the sample (its text hashed, the text
 * kept once per hash).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "profile.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define E2BIG 7					/* (errno.h is not for BPF programs) */

/*
 * Runtime addresses in the traced processes, 0: unknown: debug_query_string
 * (a const char *), MyDatabaseId, my_wait_event_info (a uint32 *).
 */
const volatile __u64 query_ptr_addr = 0;
const volatile __u64 database_addr = 0;
const volatile __u64 wait_event_addr = 0;
/* -d: only backends of this database (its oid), 0: all processes */
const volatile __u32 only_database = 0;

/* off-CPU time: per (process, stacks, query, frames, wait event), nanoseconds */
PGS_MAP(offcpu, BPF_MAP_TYPE_HASH, 65536, struct pgs_prof_key, __u64);

/* a thread off the CPU: since when, and what it left with */
struct off_start
{
	__u64		at;
	struct pgs_prof_key key;
};

PGS_MAP(offstarts, BPF_MAP_TYPE_HASH, 16384, __u32, struct off_start);

/*
 * Where each process's pgscope.so publishes its PL/pgSQL frames
 * (pgscope_plstack), found by user space in its mappings; key 0: the
 * postmaster's, which every backend forked since shares when pgscope is
 * preloaded (a backend is read a second after it starts at worst).
 */
PGS_MAP(plstack_addr, BPF_MAP_TYPE_HASH, 16384, __u32, __u64);

PGS_MAP(plstacks, BPF_MAP_TYPE_HASH, 16384, __u64, struct pgs_prof_plstack);

/* room too large for the stack: slot 0 for samples (which may interrupt a switch), 1 for switches */
struct scratch
{
	struct pgs_prof_text text;	/* debug_query_string's first bytes */
	struct pgs_plstack in;		/* pgscope_plstack as read */
	struct pgs_prof_plstack out;	/* its frames as kept */
};

PGS_MAP(scratch, BPF_MAP_TYPE_PERCPU_ARRAY, 2, __u32, struct scratch);

struct
{
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__uint(value_size, PGS_PROF_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

PGS_MAP(counts, BPF_MAP_TYPE_HASH, 65536, struct pgs_prof_key, __u64);

PGS_MAP(texts, BPF_MAP_TYPE_HASH, 8192, __u64, struct pgs_prof_text);

PGS_COUNTERS(PGS_PROF_COUNTERS)

/* the hash of the query the process runs now (FNV-1a of its first bytes), 0 when none */
static __always_inline __u64
query_hash(__u32 z)
{
	const char *q = NULL;
	struct scratch *sc;
	struct pgs_prof_text *s;
	__u64		h = 14695981039346656037ULL;
	long		n;

	if (!query_ptr_addr || bpf_probe_read_user(&q, sizeof(q), (const void *) query_ptr_addr) || !q)
		return 0;
	if (!(sc = bpf_map_lookup_elem(&scratch, &z)))
		return 0;
	s = &sc->text;
	n = bpf_probe_read_user_str(s->text, sizeof(s->text), q);
	if (n <= 1)
		return 0;
	for (int i = 0; i < PGS_PROF_QUERY_LEN; i++)
	{
		if (i >= n - 1)
			break;
		h = (h ^ (__u8) s->text[i]) * 1099511628211ULL;
	}
	h |= 1;						/* never 0 */
	if (!bpf_map_lookup_elem(&texts, &h) && bpf_map_update_elem(&texts, &h, s, BPF_NOEXIST) == -E2BIG)
		count(PGS_PROF_NO_TEXT);
	return h;
}

/* the hash of the PL/pgSQL frames the process publishes now (0: none), the frames kept once per hash */
static __always_inline __u64
plstack_hash(__u32 pid, __u32 z)
{
	__u64	   *addr,
				h = 14695981039346656037ULL;
	__u32		d,
				dflt = 0;
	struct scratch *sc;
	struct pgs_plstack *s;
	struct pgs_prof_plstack *o;

	if (!(addr = bpf_map_lookup_elem(&plstack_addr, &pid)) && !(addr = bpf_map_lookup_elem(&plstack_addr, &dflt)))
		return 0;
	if (!(sc = bpf_map_lookup_elem(&scratch, &z)))
		return 0;
	s = &sc->in;
	o = &sc->out;
	/* (a page a process never touched is not there to read: it has published nothing) */
	if (bpf_probe_read_user(s, sizeof(*s), (const void *) *addr))
		return 0;
	if (s->magic != PGS_PLSTACK_MAGIC || s->version != PGS_PLSTACK_VERSION)
	{
		count(PGS_PROF_BAD_PLSTACK);
		return 0;
	}
	d = s->depth < PGS_PLSTACK_MAX ? s->depth : PGS_PLSTACK_MAX;
	if (d == 0 || s->err_stmt_offset > 4096 || s->lineno_offset > 64)
		return 0;
	o->depth = d;
	o->truncated = s->truncated;
	for (int i = 0; i < PGS_PLSTACK_MAX; i++)
	{
		__u64		stmt = 0;
		__s32		line = 0;

		if (i >= d)
		{
			o->frames[i].fn_oid = 0;
			o->frames[i].lineno = 0;
			continue;
		}
		/* the statement the activation runs now: PL/pgSQL keeps it in err_stmt (0: between statements) */
		if (!bpf_probe_read_user(&stmt, sizeof(stmt), (const void *) (s->frames[i].estate + s->err_stmt_offset)) &&
			stmt)
			bpf_probe_read_user(&line, sizeof(line), (const void *) (stmt + s->lineno_offset));
		o->frames[i].fn_oid = s->frames[i].fn_oid;
		o->frames[i].lineno = line;
		h = (h ^ s->frames[i].fn_oid) * 1099511628211ULL;
		h = (h ^ (__u32) line) * 1099511628211ULL;
	}
	h = (h ^ d ^ ((__u64) s->truncated << 32)) | 1;
	count(PGS_PROF_PLSTACKS);
	if (!bpf_map_lookup_elem(&plstacks, &h))
		bpf_map_update_elem(&plstacks, &h, o, BPF_NOEXIST);
	return h;
}

/* the database the current process is connected to (MyDatabaseId), 0: none or unknown */
static __always_inline __u32
current_database(void)
{
	__u32		db = 0;

	if (database_addr)
		bpf_probe_read_user(&db, sizeof(db), (const void *) database_addr);
	return db;
}

SEC("perf_event")
int
on_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pgs_prof_key k = {};
	__u64	   *c,
				zero = 0;

	if (t->tgid == 0 || !traced_task(t))
		return 0;
	k.database = current_database();
	if (only_database && k.database != only_database)
		return 0;
	count(PGS_PROF_SAMPLES);
	k.pid = t->tgid;
	k.kstack = bpf_get_stackid(ctx, &stacks, 0);
	k.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	if (k.ustack < 0)
		count(PGS_PROF_NO_USTACK);
	k.query = query_hash(0);
	k.plstack = plstack_hash(k.pid, 0);
	if ((c = pgs_lookup_or_init(&counts, &k, &zero)))
		__sync_fetch_and_add(c, 1);
	else
		count(PGS_PROF_LOST);	/* the map is full */
	return 0;
}

/*
 * --off-cpu: a traced thread leaving the CPU (the current task: its stacks
 * and memory are at hand) notes what it leaves with and its wait event
 * (read as --breakdown reads it; runnable: preempted); coming back, the
 * time away is added to that key.
 */
SEC("tp_btf/sched_switch")
int
BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64		now = bpf_ktime_get_ns();
	__u32		tid;
	struct off_start *st;

	if (prev->tgid && traced_task(prev) && (!only_database || current_database() == only_database))
	{
		struct off_start o = {.at = now};

		tid = prev->pid;
		o.key.pid = prev->tgid;
		o.key.kstack = bpf_get_stackid(ctx, &stacks, 0);
		o.key.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
		o.key.query = query_hash(1);
		o.key.plstack = plstack_hash(o.key.pid, 1);
		o.key.database = current_database();
		if (preempt || prev->__state == 0)
			o.key.wait = PGS_PROF_RUNQUEUE;
		else
			o.key.wait = pgs_wait_event(wait_event_addr);
		if (bpf_map_update_elem(&offstarts, &tid, &o, BPF_ANY))
			count(PGS_PROF_OFF_LOST);
	}
	tid = next->pid;
	if ((st = bpf_map_lookup_elem(&offstarts, &tid)))
	{
		__u64		d = now - st->at,
					zero = 0,
				   *c;

		count(PGS_PROF_SWITCHES);
		if ((c = pgs_lookup_or_init(&offcpu, &st->key, &zero)))
			__sync_fetch_and_add(c, d);
		else
			count(PGS_PROF_OFF_LOST);	/* the map is full */
		bpf_map_delete_elem(&offstarts, &tid);
	}
	return 0;
}
