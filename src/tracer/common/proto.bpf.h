/*
 * proto.bpf.h - the client protocol as the BPF programs see it, in one place:
 * a request starts a statement when its first message is a Query, Parse or
 * Bind, and a statement ends with the send whose last message is
 * ReadyForQuery ('Z', int32 5, status).
 */
#ifndef PGSCOPE_PROTO_BPF_H
#define PGSCOPE_PROTO_BPF_H

#include "pgwire.h"

static __always_inline bool
starts_statement(__u8 type)
{
	return type == PGS_FE_QUERY || type == PGS_FE_PARSE || type == PGS_FE_BIND;
}

/* n bytes at buf end with ReadyForQuery */
static __always_inline bool
ends_with_ready(__u64 buf, __u64 n)
{
	__u8		tail[6] = {};

	if (n < 6 || bpf_probe_read_user(tail, sizeof(tail), (void *) (buf + n - 6)))
		return false;
	return tail[0] == PGS_BE_READY && tail[1] == 0 && tail[2] == 0 && tail[3] == 0 && tail[4] == 5;
}

/* the big-endian 32-bit integer at p (a message's length, a startup packet's code) */
static __always_inline __u32
pgs_be32(const __u8 *p)
{
	return ((__u32) p[0] << 24) | ((__u32) p[1] << 16) | ((__u32) p[2] << 8) | p[3];
}

/*
 * Of the n bytes sent from buf: whether they start with an ErrorResponse
 * (returned) and whether they end with ReadyForQuery (*ready).  A short
 * send, the common case, is read in one go.
 */
#define PGS_SMALL_SEND 128
static __always_inline bool
sent_error_or_ready(__u64 buf, __u32 n, bool *ready)
{
	__u8		head[6] = {};

	*ready = false;
	if (n < 6)
		return false;
	if (n <= PGS_SMALL_SEND)
	{
		/*
		 * Twice the size: the verifier sees the mask, not the test, which
		 * the barrier keeps the compiler from optimising the mask away with.
		 */
		__u8		all[PGS_SMALL_SEND * 2] = {};
		__u32		t = n - 6,
					sz = n;

		barrier_var(sz);
		if (bpf_probe_read_user(all, sz & (PGS_SMALL_SEND * 2 - 1), (void *) buf))
			return false;
		barrier_var(t);
		t &= PGS_SMALL_SEND - 1;	/* t < n <= PGS_SMALL_SEND: changes nothing */
		*ready = all[t] == PGS_BE_READY && all[t + 1] == 0 && all[t + 2] == 0 && all[t + 3] == 0 && all[t + 4] == 5;
		return all[0] == PGS_BE_ERROR && all[5] == PGS_ERR_FIELD_SEVERITY;
	}
	*ready = ends_with_ready(buf, n);
	return !bpf_probe_read_user(head, sizeof(head), (void *) buf) && head[0] == PGS_BE_ERROR && head[5] == PGS_ERR_FIELD_SEVERITY;
}

/*
 * The socket tracepoints sock:sock_recv_length and sock:sock_send_length
 * fire after each socket read or write with its byte count.  Unlike syscall
 * tracepoints, which switch every task on the machine to the slow syscall
 * path while anything is attached to them, they cost nothing but the
 * program run on socket traffic.  The user buffer is the second argument of
 * the syscall the task is in, read from its saved user registers; only
 * recvfrom/sendto (what recv()/send() are on Linux) are taken.
 */
#if defined(__TARGET_ARCH_x86)
#define PGS_NR_RECVFROM 45
#define PGS_NR_SENDTO 44
#elif defined(__TARGET_ARCH_arm64)
#define PGS_NR_RECVFROM 207
#define PGS_NR_SENDTO 206
#else
#error "unsupported architecture: add its recvfrom and sendto syscall numbers"
#endif
#define PGS_MSG_PEEK 2

/* the buffer of the current task's recvfrom/sendto (nr), or 0 when it is in another call */
static __always_inline __u64
syscall_buf(struct task_struct *task, long nr)
{
	/* a trusted pointer in tp_btf programs: plain loads, no probe reads */
	struct pt_regs *regs = (struct pt_regs *) bpf_task_pt_regs(task);

#if defined(__TARGET_ARCH_x86)
	if ((long) regs->orig_ax != nr)
		return 0;
	return regs->si;
#else
	if (regs->syscallno != nr)
		return 0;
	return regs->regs[1];
#endif
}

#endif
