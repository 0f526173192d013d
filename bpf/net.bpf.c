// SPDX-License-Identifier: GPL-2.0
/*
 * net.bpf.c - per backend: bytes and calls on the client socket, and the
 * time spent serving requests (a request to ReadyForQuery) against the time
 * spent waiting for the client (ReadyForQuery to the next request), from the
 * recvfrom/sendto syscall tracepoints.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "net.h"
#include "filter.bpf.h"
#include "proto.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct task_state
{
	__u32		decided;
	__u32		ignored;
	__u64		serving_since;
	__u64		idle_since;
	__u64		send_buf;
	__u64		send_len;
	struct pgs_net_backend n;
};

PGS_TASK_STATE(struct task_state)

/* copied out of task storage for user space, per backend pid */
struct
{
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pgs_net_backend);
} backends SEC(".maps");

static __always_inline void
publish(struct task_state *s)
{
	__u32		pid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_update_elem(&backends, &pid, &s->n, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int
on_recv(struct trace_event_raw_sys_exit *ctx)
{
	long		ret = ctx->ret;
	struct task_state *s;
	__u64		buf;
	__u8		type = 0;
	__u64		now;

	if (ret <= 0)
		return 0;
	s = state();
	if (!s)
		return 0;
	s->n.bytes_in += ret;
	s->n.recvs++;
	buf = PT_REGS_PARM2_CORE_SYSCALL((struct pt_regs *) bpf_task_pt_regs(bpf_get_current_task_btf()));
	if (!s->serving_since && !bpf_probe_read_user(&type, 1, (void *) buf) && starts_statement(type))
	{
		now = bpf_ktime_get_ns();
		if (s->idle_since)
			s->n.client_ns += now - s->idle_since;
		s->idle_since = 0;
		s->serving_since = now;
		s->n.requests++;
	}
	publish(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int
on_send_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct task_state *s = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);

	if (!s || s->ignored)
		return 0;
	s->send_buf = ctx->args[1];
	s->send_len = ctx->args[2];
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int
on_send_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct task_state *s = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
	long		ret = ctx->ret;

	if (!s || s->ignored || ret <= 0)
		return 0;
	s->n.bytes_out += ret;
	s->n.sends++;
	if (s->serving_since && ends_with_ready(s->send_buf, s->send_len))
	{
		__u64		now = bpf_ktime_get_ns();

		s->n.serving_ns += now - s->serving_since;
		s->serving_since = 0;
		s->idle_since = now;
	}
	publish(s);
	return 0;
}
