// SPDX-License-Identifier: GPL-2.0
/*
 * locks.bpf.c - heavyweight lock waits (USDT lock__wait__start/done of
 * Debian's --enable-dtrace build), deadlocks (deadlock__found), row locks
 * (uprobe on the exported heap_lock_tuple) and, with --all, every
 * acquisition and release (uprobes on LockAcquireExtended and LockRelease).
 * Struct offsets come from the server headers, set before load.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "locks.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 mydatabaseid_addr = 0;	/* &MyDatabaseId in the server */
const volatile __u32 off_rd_id = 0;
const volatile __u32 off_t_self = 0;
const volatile __u32 off_tag_field1 = 0;
const volatile __u32 off_tag_field2 = 0;
const volatile __u32 off_tag_field3 = 0;
const volatile __u32 off_tag_field4 = 0;
const volatile __u32 off_tag_type = 0;
const volatile __u32 off_tag_method = 0;

struct task_state
{
	__u64		wait_start;
	struct pgs_lock_event row;	/* heap_lock_tuple in progress */
	struct pgs_lock_event acq;	/* LockAcquireExtended in progress */
	__u64		row_start;
	__u32		ignored;
	__u32		decided;
};

PGS_TASK_STATE(struct task_state)

struct
{
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* [0] events lost */
PGS_MAP(counters, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, __u64);

/*
 * No wakeup per event: on a busy server every wakeup of the tracer takes a
 * CPU from the backends; user space drains the buffer on a timer instead.
 * A deadlock still wakes it at once.
 */
static __always_inline void
emit(struct pgs_lock_event *e)
{
	if (bpf_ringbuf_output(&events, e, sizeof(*e), e->kind == PGS_LK_DEADLOCK ? 0 : BPF_RB_NO_WAKEUP))
	{
		__u32		z = 0;
		__u64	   *c = bpf_map_lookup_elem(&counters, &z);

		if (c)
			(*c)++;
	}
}

static __always_inline void
wait_event(struct pt_regs *ctx, __u32 kind, struct task_state *s)
{
	struct pgs_lock_event e = {};
	long		v;
	__u64		now = bpf_ktime_get_ns();

	e.kind = kind;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ts_ns = now;
	bpf_usdt_arg(ctx, 0, &v);
	e.field1 = v;
	bpf_usdt_arg(ctx, 1, &v);
	e.field2 = v;
	bpf_usdt_arg(ctx, 2, &v);
	e.field3 = v;
	bpf_usdt_arg(ctx, 3, &v);
	e.field4 = v;
	bpf_usdt_arg(ctx, 4, &v);
	e.type = v;
	bpf_usdt_arg(ctx, 5, &v);
	e.mode = v;
	if (kind == PGS_LK_WAIT_START)
		s->wait_start = now;
	else
	{
		e.duration_ns = s->wait_start ? now - s->wait_start : 0;
		s->wait_start = 0;
	}
	emit(&e);
}

SEC("usdt")
int
BPF_USDT(on_wait_start)
{
	struct task_state *s = state();

	if (s)
		wait_event(ctx, PGS_LK_WAIT_START, s);
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_wait_done)
{
	struct task_state *s = state();

	if (s)
		wait_event(ctx, PGS_LK_WAIT_END, s);
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_deadlock)
{
	struct pgs_lock_event e = {};

	if (!state())
		return 0;
	e.kind = PGS_LK_DEADLOCK;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ts_ns = bpf_ktime_get_ns();
	emit(&e);
	return 0;
}

/* heap_lock_tuple(Relation relation, HeapTuple tuple, CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, ...) */
SEC("uprobe")
int
BPF_KPROBE(on_lock_tuple, void *relation, void *tuple, __u32 cid, int mode, int wait_policy)
{
	struct task_state *s = state();
	__u16		bi[2] = {};

	if (!s)
		return 0;
	__builtin_memset(&s->row, 0, sizeof(s->row));
	s->row.kind = PGS_LK_ROW;
	s->row.pid = bpf_get_current_pid_tgid() >> 32;
	s->row.mode = mode;
	s->row.wait_policy = wait_policy;
	bpf_probe_read_user(&s->row.relid, sizeof(s->row.relid), relation + off_rd_id);
	/* ItemPointerData: BlockIdData {uint16 hi, lo}, OffsetNumber */
	bpf_probe_read_user(bi, sizeof(bi), tuple + off_t_self);
	bpf_probe_read_user(&s->row.offset, sizeof(s->row.offset), tuple + off_t_self + 4);
	s->row.block = ((__u32) bi[0] << 16) | bi[1];
	if (mydatabaseid_addr)
		bpf_probe_read_user(&s->row.database, sizeof(s->row.database), (void *) mydatabaseid_addr);
	s->row_start = bpf_ktime_get_ns();
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_lock_tuple_ret, int result)
{
	struct task_state *s = state();
	__u64		now = bpf_ktime_get_ns();

	if (!s || !s->row_start)
		return 0;
	s->row.result = result;
	s->row.ts_ns = now;
	s->row.duration_ns = now - s->row_start;
	s->row_start = 0;
	emit(&s->row);
	return 0;
}

static __always_inline void
read_tag(struct pgs_lock_event *e, void *tag)
{
	bpf_probe_read_user(&e->field1, 4, tag + off_tag_field1);
	bpf_probe_read_user(&e->field2, 4, tag + off_tag_field2);
	bpf_probe_read_user(&e->field3, 4, tag + off_tag_field3);
	bpf_probe_read_user(&e->field4, 2, tag + off_tag_field4);
	bpf_probe_read_user(&e->type, 1, tag + off_tag_type);
	bpf_probe_read_user(&e->method, 1, tag + off_tag_method);
}

/* LockAcquireExtended(const LOCKTAG *locktag, LOCKMODE lockmode, ...) */
SEC("uprobe")
int
BPF_KPROBE(on_acquire, void *tag, int mode)
{
	struct task_state *s = state();

	if (!s)
		return 0;
	__builtin_memset(&s->acq, 0, sizeof(s->acq));
	s->acq.kind = PGS_LK_ACQUIRE;
	s->acq.pid = bpf_get_current_pid_tgid() >> 32;
	s->acq.mode = mode;
	read_tag(&s->acq, tag);
	s->acq.ts_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_acquire_ret, int result)
{
	struct task_state *s = state();

	if (!s || !s->acq.kind)
		return 0;
	s->acq.result = result;
	s->acq.duration_ns = bpf_ktime_get_ns() - s->acq.ts_ns;
	emit(&s->acq);
	s->acq.kind = 0;
	return 0;
}

/* LockRelease(const LOCKTAG *locktag, LOCKMODE lockmode, bool sessionLock) */
SEC("uprobe")
int
BPF_KPROBE(on_release, void *tag, int mode)
{
	struct pgs_lock_event e = {};

	if (!state())
		return 0;
	e.kind = PGS_LK_RELEASE;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ts_ns = bpf_ktime_get_ns();
	e.mode = mode;
	read_tag(&e, tag);
	emit(&e);
	return 0;
}

/* LockReleaseAll(LOCKMETHODID lockmethodid, bool allLocks): a transaction's locks go at once */
SEC("uprobe")
int
BPF_KPROBE(on_release_all, int method, int all)
{
	struct pgs_lock_event e = {};

	if (!state())
		return 0;
	e.kind = PGS_LK_RELEASE_ALL;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ts_ns = bpf_ktime_get_ns();
	e.method = method;
	e.result = all;
	emit(&e);
	return 0;
}
