// SPDX-License-Identifier: GPL-2.0
/*
 * net.bpf.c - per backend: bytes and calls on the client socket, requests,
 * the time serving them and the time waiting for the client
 * (nettotals.bpf.h), from the socket tracepoints (see proto.bpf.h) and, for
 * TLS connections, the server's be_tls_read/be_tls_write.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "filter.bpf.h"
#include "helpers.bpf.h"
#include "proto.bpf.h"
#include "nettotals.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct task_state
{
	__u64		tls_buf;		/* be_tls_read's buffer, entry to return */
	struct net_state net;
};

struct
{
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} tasks SEC(".maps");

/* a traced backend's state and the buffer of its recvfrom/sendto (nr), or NULL */
static __always_inline struct task_state *
backend(long nr, __u64 *buf)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (!traced_task(task))
		return NULL;
	*buf = syscall_buf(task, nr);
	if (!*buf)
		return NULL;
	return bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* a socket read of a traced backend's recv() (proto.bpf.h) */
SEC("tp_btf/sock_recv_length")
int
BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	struct task_state *s;
	__u64		buf = 0;

	if (ret <= 0 || (flags & PGS_MSG_PEEK) || !(s = backend(PGS_NR_RECVFROM, &buf)))
		return 0;
	net_socket(&s->net, buf, ret, false, -1, 0);
	return 0;
}

/* a socket write of a traced backend's send() */
SEC("tp_btf/sock_send_length")
int
BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	struct task_state *s;
	__u64		buf = 0;

	if (ret <= 0 || !(s = backend(PGS_NR_SENDTO, &buf)))
		return 0;
	net_socket(&s->net, buf, ret, true, -1, 0);
	return 0;
}
static __always_inline struct task_state *
tls_backend(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (!traced_task(task))
		return NULL;
	return bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* the register that holds secure_read's buffer at on_tls_read_done (its encoding number) */
const volatile __u32 tls_ptr_reg = 0;

/* secure_read past "call be_tls_read; test; js" (pgs_tls_read_site): rax the result, tls_ptr_reg the buffer */
SEC("uprobe")
int
BPF_KPROBE(on_tls_read_done)
{
	struct task_state *s;
	__u64		buf;

	if ((long) PT_REGS_RC(ctx) <= 0 || !(s = tls_backend()))
		return 0;
	if (!(buf = pgs_saved_reg(ctx, tls_ptr_reg)))
		return 0;
	net_request_read(&s->net, buf, 0);
	net_publish(&s->net);
	return 0;
}

/* ssize_t be_tls_read(Port *port, void *ptr, size_t len, int *waitfor): where on_tls_read_done cannot be */
SEC("uprobe")
int
BPF_KPROBE(on_tls_read, void *port, void *ptr)
{
	struct task_state *s = tls_backend();

	if (s)
		s->tls_buf = (__u64) ptr;
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_tls_read_ret, long ret)
{
	struct task_state *s = tls_backend();

	if (!s || !s->tls_buf)
		return 0;
	if (ret > 0)
	{
		net_request_read(&s->net, s->tls_buf, 0);
		net_publish(&s->net);
	}
	s->tls_buf = 0;
	return 0;
}

/* ssize_t be_tls_write(Port *port, void *ptr, size_t len, int *waitfor) */
SEC("uprobe")
int
BPF_KPROBE(on_tls_write, void *port, void *ptr, __u64 len)
{
	struct task_state *s = tls_backend();

	if (s && len > 0)
	{
		net_answer_sent(&s->net, (__u64) ptr, len, -1, 0);
		net_publish(&s->net);
	}
	return 0;
}
