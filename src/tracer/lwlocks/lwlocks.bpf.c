// SPDX-License-Identifier: GPL-2.0
/*
 * lwlocks.bpf.c - LWLock waits of a whole cluster, aggregated in the kernel
 * per tranche and mode (count, total, max, log2 histogram), from the USDT
 * probes lwlock__wait__start/done (all three call sites each: LWLockAcquire,
 * LWLockAcquireOrWait, LWLockWaitForVar); lwlock__acquire counts
 * acquisitions when asked (it fires on every acquisition: costly).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "lwlocks.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct task_state
{
	__u64		wait_start;
	__u32		ignored;
	__u32		decided;
};

PGS_TASK_STATE(struct task_state)

/* per CPU, so concurrent backends never contend on a counter */
PGS_MAP(stats, BPF_MAP_TYPE_PERCPU_HASH, 4096, struct pgs_lw_key, struct pgs_lw_stats);

PGS_MAP(zero, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, struct pgs_lw_stats);

static __always_inline struct pgs_lw_stats *
stats_of(struct pt_regs *ctx)
{
	struct pgs_lw_key key = {};
	struct pgs_lw_stats *v;
	long		name,
				mode;
	__u32		z = 0;

	bpf_usdt_arg(ctx, 0, &name);
	bpf_usdt_arg(ctx, 1, &mode);
	key.tranche = name;
	key.mode = mode;
	v = bpf_map_lookup_elem(&stats, &key);
	if (v)
		return v;
	/* first sight of this tranche: its name is read once */
	v = bpf_map_lookup_elem(&zero, &z);
	if (!v)
		return NULL;
	bpf_probe_read_user_str(v->name, sizeof(v->name), (void *) name);
	bpf_map_update_elem(&stats, &key, v, BPF_NOEXIST);
	__builtin_memset(v->name, 0, sizeof(v->name));
	return bpf_map_lookup_elem(&stats, &key);
}

SEC("usdt")
int
BPF_USDT(on_wait_start)
{
	struct task_state *s = state();

	if (s)
		s->wait_start = bpf_ktime_get_ns();
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_wait_done)
{
	struct task_state *s = state();
	struct pgs_lw_stats *v;
	__u64		d;

	if (!s || !(d = pgs_span_end(&s->wait_start)) || !(v = stats_of(ctx)))
		return 0;
	PGS_TIMING_ADD(v, waits, d, PGS_LW_SLOTS);
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_acquire)
{
	struct pgs_lw_stats *v;

	if (!state())
		return 0;
	v = stats_of(ctx);
	if (v)
		v->acquisitions++;
	return 0;
}
