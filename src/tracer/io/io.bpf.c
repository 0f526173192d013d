// SPDX-License-Identifier: GPL-2.0
/*
 * io.bpf.c - shared-buffer hits and reads per relation and fork (USDT
 * buffer__read__start/done), the latency of the reads and writes that
 * reach the storage manager (smgr__md__read/write__start/done), and per
 * backend the bytes of read/write syscalls and fsyncs (uprobes on the
 * exported pg_fsync and pg_fdatasync), aggregated in the kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "io.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct task_state
{
	__u32		decided;
	__u32		ignored;
	__u64		md_start;
	__u64		fsync_start;
	__u64		aio_start;		/* an asynchronous IO performed by this process (18): since */
	__u64		aio_ioh;		/* and its handle */
};

PGS_TASK_STATE(struct task_state)

PGS_MAP(relations, BPF_MAP_TYPE_PERCPU_HASH, 16384, struct pgs_io_key, struct pgs_io_stats);

PGS_MAP(backends, BPF_MAP_TYPE_PERCPU_HASH, 8192, __u32, struct pgs_io_backend);

PGS_MAP(zero, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, struct pgs_io_stats);

/* the agent's: every relation's reads and writes together (no relation key: four probe arguments fewer a read) */
const volatile bool by_relation = true;
PGS_MAP(totals, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, struct pgs_io_stats);

/* probe args: fork, then spc, db, rel from argument first (2: after a block; 1: without) */
static __always_inline struct pgs_io_stats *
relation_at(struct pt_regs *ctx, int first)
{
	struct pgs_io_key k = {};
	struct pgs_io_stats *v;
	long		a;
	__u32		z = 0;

	bpf_usdt_arg(ctx, 0, &a);
	k.fork = a;
	bpf_usdt_arg(ctx, first, &a);
	k.spc = a;
	bpf_usdt_arg(ctx, first + 1, &a);
	k.db = a;
	bpf_usdt_arg(ctx, first + 2, &a);
	k.relnode = a;
	v = bpf_map_lookup_elem(&zero, &z);
	if (!v)
		return NULL;
	return pgs_lookup_or_init(&relations, &k, v);
}

#define relation_of(ctx) relation_at((ctx), 2)

/*
 * buffer__read__done(fork, block, spc, db, rel, backend, isExtend, found)
 * up to PostgreSQL 16; from 17 (fork, block, spc, db, rel, backend, found),
 * extensions having their own probe (on_buffer_extend_done).
 */
SEC("usdt")
int
BPF_USDT(on_buffer_done)
{
	struct pgs_io_stats *v;
	long		ext = 0,
				found = 0;

	if (!state())
		return 0;
	v = relation_of(ctx);
	if (!v)
		return 0;
	if (bpf_usdt_arg_cnt(ctx) >= 8)
	{
		bpf_usdt_arg(ctx, 6, &ext);
		bpf_usdt_arg(ctx, 7, &found);
	}
	else
		bpf_usdt_arg(ctx, 6, &found);
	if (ext)
		v->extends++;
	else if (found)
		v->hits++;
	else
		v->reads++;
	return 0;
}

/* buffer__extend__done(fork, spc, db, rel, backend, extended_by, first_block), PostgreSQL 17 on */
SEC("usdt")
int
BPF_USDT(on_buffer_extend_done)
{
	struct pgs_io_stats *v;
	long		by = 0;

	if (!state())
		return 0;
	v = relation_at(ctx, 1);
	if (!v)
		return 0;
	bpf_usdt_arg(ctx, 5, &by);
	v->extends += by;
	return 0;
}

static __always_inline void
md_start(void)
{
	struct task_state *s = state();

	if (s)
		s->md_start = bpf_ktime_get_ns();
}

SEC("usdt")
int
BPF_USDT(on_md_read_start)
{
	md_start();
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_md_write_start)
{
	md_start();
	return 0;
}

/* a read or write of d ns (bytes: what a read brought) into v */
static __always_inline void
add_io(struct pgs_io_stats *v, __u64 d, bool write, long bytes)
{
	__u32		slot = pgs_log2_us_slot(d, PGS_IO_SLOTS);

	if (write)
	{
		v->md_writes++;
		v->write_ns += d;
		v->write_hist[slot]++;
	}
	else
	{
		v->md_reads++;
		v->md_read_bytes += bytes > 0 ? bytes : 0;
		v->read_ns += d;
		v->read_hist[slot]++;
	}
}

static __always_inline void
md_done(struct pt_regs *ctx, bool write)
{
	struct task_state *s = state();
	struct pgs_io_stats *v;
	__u64		d;
	__u32		z = 0;
	long		bytes = 0;

	if (!s || !(d = pgs_span_end(&s->md_start)) ||
		!(v = by_relation ? relation_of(ctx) : bpf_map_lookup_elem(&totals, &z)))
		return;
	if (!write)
		bpf_usdt_arg(ctx, 6, &bytes);	/* smgr__md__read__done(..., bytes done, bytes requested) */
	add_io(v, d, write, bytes);
}

SEC("usdt")
int
BPF_USDT(on_md_read_done)
{
	md_done(ctx, false);
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_md_write_done)
{
	md_done(ctx, true);
	return 0;
}

/*
 * PostgreSQL 18's asynchronous reads, which the smgr probes do not see: an
 * IO worker (or a backend, when an IO must run synchronously) performs one
 * in pgaio_io_perform_synchronously(ioh), which ends by handing its result
 * to pgaio_io_process_completion(ioh, result).  Both are exported: the
 * span between them is the system call.  (io_uring's IOs complete through
 * the kernel without the first: not timed.)  Offsets from the server's
 * headers (aio_internal.h).
 */
const volatile __u32 off_aio_op = 0;
const volatile __u32 off_aio_target = 0;
const volatile __u32 off_aio_rlocator = 0;
const volatile __u32 off_aio_fork = 0;
const volatile __u32 aio_readv = 0;
const volatile __u32 aio_writev = 0;
const volatile __u32 aio_tid_smgr = 0;

/* void pgaio_io_perform_synchronously(PgAioHandle *ioh) */
SEC("uprobe")
int
BPF_KPROBE(on_aio_perform, void *ioh)
{
	struct task_state *s = state();

	if (s)
	{
		s->aio_start = bpf_ktime_get_ns();
		s->aio_ioh = (__u64) ioh;
	}
	return 0;
}

/* the relation of an smgr target, as the smgr probes key it */
static __always_inline struct pgs_io_stats *
aio_relation(__u64 ioh)
{
	struct pgs_io_key k = {};
	__u32		loc[3] = {};	/* RelFileLocator: spcOid, dbOid, relNumber */
	__u8		target = 0,
				fork = 0;
	__u32		z = 0;
	struct pgs_io_stats *zero_v;

	if (bpf_probe_read_user(&target, 1, (void *) (ioh + off_aio_target)) || target != aio_tid_smgr ||
		bpf_probe_read_user(loc, sizeof(loc), (void *) (ioh + off_aio_rlocator)) ||
		bpf_probe_read_user(&fork, 1, (void *) (ioh + off_aio_fork)) ||
		!(zero_v = bpf_map_lookup_elem(&zero, &z)))
		return NULL;
	k.fork = fork;
	k.spc = loc[0];
	k.db = loc[1];
	k.relnode = loc[2];
	return pgs_lookup_or_init(&relations, &k, zero_v);
}

/* void pgaio_io_process_completion(PgAioHandle *ioh, int result) */
SEC("uprobe")
int
BPF_KPROBE(on_aio_complete, void *ioh, int result)
{
	struct task_state *s = state();
	struct pgs_io_stats *v;
	__u8		op = 0;
	__u64		d;
	__u32		z = 0;

	if (!s || !s->aio_ioh || s->aio_ioh != (__u64) ioh)
		return 0;
	s->aio_ioh = 0;
	if (!(d = pgs_span_end(&s->aio_start)) || bpf_probe_read_user(&op, 1, (void *) ((__u64) ioh + off_aio_op)) ||
		(op != aio_readv && op != aio_writev))
		return 0;
	v = by_relation ? aio_relation((__u64) ioh) : bpf_map_lookup_elem(&totals, &z);
	if (v)
		add_io(v, d, op == aio_writev, result);
	return 0;
}

static __always_inline struct pgs_io_backend *
backend_of(void)
{
	__u32		pid = bpf_get_current_pid_tgid() >> 32;
	struct pgs_io_backend z = {};

	return pgs_lookup_or_init(&backends, &pid, &z);
}

static __always_inline void
syscall_bytes(long ret, bool write)
{
	struct pgs_io_backend *b;

	if (ret <= 0 || !state())
		return;
	b = backend_of();
	if (!b)
		return;
	if (write)
		b->write_bytes += ret;
	else
		b->read_bytes += ret;
}

SEC("tracepoint/syscalls/sys_exit_pread64")
int
on_pread(struct trace_event_raw_sys_exit *ctx)
{
	syscall_bytes(ctx->ret, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int
on_read(struct trace_event_raw_sys_exit *ctx)
{
	syscall_bytes(ctx->ret, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int
on_pwrite(struct trace_event_raw_sys_exit *ctx)
{
	syscall_bytes(ctx->ret, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int
on_write(struct trace_event_raw_sys_exit *ctx)
{
	syscall_bytes(ctx->ret, true);
	return 0;
}

SEC("uprobe")
int
BPF_KPROBE(on_fsync)
{
	struct task_state *s = state();

	if (s)
		s->fsync_start = bpf_ktime_get_ns();
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_fsync_ret)
{
	struct task_state *s = state();
	struct pgs_io_backend *b;
	__u64		d;

	if (!s || !(d = pgs_span_end(&s->fsync_start)) || !(b = backend_of()))
		return 0;
	b->fsyncs++;
	b->fsync_ns += d;
	return 0;
}
