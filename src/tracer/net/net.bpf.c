// SPDX-License-Identifier: GPL-2.0
/*
 * net.bpf.c - per backend: bytes and calls on the client socket, and the
 * time spent serving requests (a request to ReadyForQuery) against the time
 * spent waiting for the client (ReadyForQuery to the next request), from the
 * socket tracepoints (see proto.bpf.h).  Bytes are what crossed the socket
 * (for TLS, the encrypted records); requests and ReadyForQuery of TLS
 * connections are read in plain text at the server's be_tls_read/be_tls_write.
 * A request is a round trip: a pipeline of many statements is one.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "net.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"
#include "proto.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct task_state
{
	__u64		tls_buf;		/* be_tls_read's buffer, entry to return */
	__u64		serving_since;
	__u64		idle_since;
	struct pgs_net_backend n;
};

struct
{
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} tasks SEC(".maps");

/* copied out of task storage for user space, per backend pid */
PGS_MAP(backends, BPF_MAP_TYPE_HASH, 8192, __u32, struct pgs_net_backend);

/* the backend's totals into its entry, for user space */
static __always_inline void
publish(struct task_state *s)
{
	__u32		pid = bpf_get_current_pid_tgid() >> 32;

	pgs_map_put(&backends, &pid, &s->n, sizeof(s->n));
}

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

/* bytes the backend read (plain, or TLS plain text): the first message of a request starts serving */
static __always_inline void
request_read(struct task_state *s, __u64 buf)
{
	__u8		type = 0;
	__u64		now;

	if (s->serving_since || bpf_probe_read_user(&type, 1, (void *) buf) || !starts_statement(type))
		return;
	now = bpf_ktime_get_ns();
	if (s->idle_since)
		s->n.client_ns += now - s->idle_since;
	s->idle_since = 0;
	s->serving_since = now;
	s->n.requests++;
}

/* bytes the backend sent: ReadyForQuery at their end closes the request */
static __always_inline void
answer_sent(struct task_state *s, __u64 buf, __u64 n)
{
	if (s->serving_since && ends_with_ready(buf, n))
	{
		__u64		now = bpf_ktime_get_ns();

		s->n.serving_ns += now - s->serving_since;
		s->serving_since = 0;
		s->idle_since = now;
	}
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
	s->n.bytes_in += ret;
	s->n.recvs++;
	/* a TLS record starts with 0x14..0x17, never a message type: requests come from be_tls_read */
	request_read(s, buf);
	publish(s);
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
	s->n.bytes_out += ret;
	s->n.sends++;
	answer_sent(s, buf, ret);
	publish(s);
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

/* ssize_t be_tls_read(Port *port, void *ptr, size_t len, int *waitfor) */
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
		request_read(s, s->tls_buf);
		publish(s);
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
		answer_sent(s, (__u64) ptr, len);
		publish(s);
	}
	return 0;
}
