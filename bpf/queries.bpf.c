// SPDX-License-Identifier: GPL-2.0
/*
 * queries.bpf.c - one event per finished statement of the traced
 * PostgreSQL backends, from the client protocol itself: a statement starts
 * when a backend receives a Query ('Q'), Parse ('P') or Bind ('B') message
 * on its socket and ends when it sends ReadyForQuery ('Z').  Syscall
 * tracepoints see both protocols on a stock, stripped binary and cost far
 * less than a uprobe hit per statement.  With split on, the USDT probes of
 * Debian's --enable-dtrace build add the parse/plan/execute times.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "queries.h"

char LICENSE[] SEC("license") = "GPL";

/* set before load: the verifier prunes what they switch off */
const volatile __u32 filter_ppid = 0;	/* postmaster: its backends only */
const volatile __u32 filter_pid = 0;	/* one backend only */
const volatile __u64 min_ns = 0;
const volatile __u32 capture_len = 1024;
const volatile __u64 myprocport_addr = 0;	/* &MyProcPort in the server's address space */
const volatile __u32 off_database_name = 0;
const volatile __u32 off_user_name = 0;

struct backend
{
	__u64		start_ns;
	__u64		phase_start;
	__u64		parse_ns;
	__u64		plan_ns;
	__u64		exec_ns;
	__u32		flags;
	__u32		active;
	__u32		named;			/* database and user were read */
	__u32		req_len;
	char		database[PGS_NAME_LEN];
	char		user[PGS_NAME_LEN];
	char		req[PGS_MAX_REQ];
};

struct
{
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct recv_args
{
	__u64		buf;
};

struct
{
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct recv_args);
} recvs SEC(".maps");

struct
{
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
} events SEC(".maps");

/* [0] events lost to a full ring buffer, [1] statements seen */
struct
{
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* a zeroed backend to start from (too large for the BPF stack) */
struct
{
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct backend);
} zero SEC(".maps");

static __always_inline void
count(__u32 idx)
{
	__u64	   *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		(*c)++;
}

static __always_inline bool
traced(__u32 tgid)
{
	if (filter_pid)
		return tgid == filter_pid;
	if (filter_ppid)
	{
		struct task_struct *t = (struct task_struct *) bpf_get_current_task();

		return BPF_CORE_READ(t, real_parent, tgid) == filter_ppid;
	}
	{
		char		comm[16];

		bpf_get_current_comm(comm, sizeof(comm));
		return comm[0] == 'p' && comm[1] == 'o' && comm[2] == 's' && comm[3] == 't' &&
			comm[4] == 'g' && comm[5] == 'r' && comm[6] == 'e' && comm[7] == 's' && comm[8] == 0;
	}
}

/* database and user of this backend, from MyProcPort (offsets from the server headers) */
static __always_inline void
read_names(struct backend *b)
{
	__u64		port = 0,
				p = 0;

	b->named = 1;
	if (!myprocport_addr)
		return;
	if (bpf_probe_read_user(&port, sizeof(port), (void *) myprocport_addr) || !port)
	{
		b->named = 0;			/* not set up yet: try again at the next statement */
		return;
	}
	if (!bpf_probe_read_user(&p, sizeof(p), (void *) (port + off_database_name)) && p)
		bpf_probe_read_user_str(b->database, sizeof(b->database), (void *) p);
	if (!bpf_probe_read_user(&p, sizeof(p), (void *) (port + off_user_name)) && p)
		bpf_probe_read_user_str(b->user, sizeof(b->user), (void *) p);
}

static __always_inline struct backend *
backend_of(__u32 tgid)
{
	struct backend *b = bpf_map_lookup_elem(&backends, &tgid);
	__u32		z = 0;

	if (b)
		return b;
	b = bpf_map_lookup_elem(&zero, &z);
	if (!b)
		return NULL;
	bpf_map_update_elem(&backends, &tgid, b, BPF_NOEXIST);
	return bpf_map_lookup_elem(&backends, &tgid);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int
on_recv_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32		tgid = bpf_get_current_pid_tgid() >> 32;
	struct recv_args a;

	if (!traced(tgid))
		return 0;
	a.buf = ctx->args[1];
	bpf_map_update_elem(&recvs, &tgid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int
on_recv_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32		tgid = bpf_get_current_pid_tgid() >> 32;
	struct recv_args *a = bpf_map_lookup_elem(&recvs, &tgid);
	struct backend *b;
	long		ret = ctx->ret;
	__u8		type = 0;
	__u32		len;

	if (!a)
		return 0;
	if (ret <= 0 || bpf_probe_read_user(&type, 1, (void *) a->buf) ||
		(type != 'Q' && type != 'P' && type != 'B'))
		goto out;
	b = backend_of(tgid);
	if (!b)
		goto out;
	len = ret < capture_len ? ret : capture_len;
	len &= PGS_MAX_REQ - 1;

	/* a named Parse teaches user space the statement's text, whatever its duration */
	if (type == 'P')
	{
		__u8		first_name = 0;

		bpf_probe_read_user(&first_name, 1, (void *) (a->buf + 5));
		if (first_name)
		{
			struct pgs_query_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

			if (!e)
				count(0);
			else
			{
				e->kind = PGS_EV_PARSE;
				e->pid = tgid;
				e->req_len = len;
				e->flags = ret > len ? PGS_F_TRUNCATED : 0;
				bpf_probe_read_user(e->req, len, (void *) a->buf);
				bpf_ringbuf_submit(e, 0);
			}
		}
	}
	/*
	 * More messages of a running statement (extended protocol, pipelining)
	 * continue it; only a new simple Query, which a client sends after
	 * ReadyForQuery, restarts a statement whose end was not seen.
	 */
	if (b->active && type != 'Q')
		goto out;
	b->active = 1;
	b->flags = ret > len ? PGS_F_TRUNCATED : 0;
	b->parse_ns = b->plan_ns = b->exec_ns = 0;
	b->req_len = len;
	bpf_probe_read_user(b->req, len, (void *) a->buf);
	if (!b->named)
		read_names(b);
	b->start_ns = bpf_ktime_get_ns();
out:
	bpf_map_delete_elem(&recvs, &tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int
on_send(struct trace_event_raw_sys_enter *ctx)
{
	__u32		tgid = bpf_get_current_pid_tgid() >> 32;
	struct backend *b;
	__u64		buf = ctx->args[1];
	__u64		n = ctx->args[2];
	__u8		tail[6] = {};
	__u8		head[6] = {};
	__u64		now,
				dur;
	__u32		len;
	struct pgs_query_event *e;

	b = bpf_map_lookup_elem(&backends, &tgid);
	if (!b || !b->active || n < 6)
		return 0;
	/*
	 * The server flushes an ErrorResponse at once: 'E', int32 length, and
	 * always the severity field 'S' first, which tells it from row data
	 * that happens to start a send with the byte 'E'.
	 */
	if (!bpf_probe_read_user(head, sizeof(head), (void *) buf) && head[0] == 'E' && head[5] == 'S')
		b->flags |= PGS_F_ERROR;
	/* ReadyForQuery is the last message of the last send: 'Z', int32 5, status */
	if (bpf_probe_read_user(tail, sizeof(tail), (void *) (buf + n - 6)) ||
		tail[0] != 'Z' || tail[1] != 0 || tail[2] != 0 || tail[3] != 0 || tail[4] != 5)
		return 0;
	now = bpf_ktime_get_ns();
	dur = now - b->start_ns;
	b->active = 0;
	count(1);
	if (dur < min_ns)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
	{
		count(0);
		return 0;
	}
	e->kind = PGS_EV_STATEMENT;
	e->pid = tgid;
	e->end_ns = now;
	e->duration_ns = dur;
	e->parse_ns = b->parse_ns;
	e->plan_ns = b->plan_ns;
	e->exec_ns = b->exec_ns;
	e->flags = b->flags;
	len = b->req_len & (PGS_MAX_REQ - 1);
	e->req_len = len;
	__builtin_memcpy(e->database, b->database, sizeof(e->database));
	__builtin_memcpy(e->user, b->user, sizeof(e->user));
	bpf_probe_read_kernel(e->req, len, b->req);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int
on_exit(void *ctx)
{
	__u64		id = bpf_get_current_pid_tgid();
	__u32		tgid = id >> 32;

	if ((__u32) id == tgid)
	{
		bpf_map_delete_elem(&backends, &tgid);
		bpf_map_delete_elem(&recvs, &tgid);
	}
	return 0;
}

/* ---- optional: parse/plan/execute times from the USDT probes ---- */

static __always_inline void
phase_start(void)
{
	__u32		tgid = bpf_get_current_pid_tgid() >> 32;
	struct backend *b = bpf_map_lookup_elem(&backends, &tgid);

	if (b && b->active)
		b->phase_start = bpf_ktime_get_ns();
}

static __always_inline void
phase_done(int which)
{
	__u32		tgid = bpf_get_current_pid_tgid() >> 32;
	struct backend *b = bpf_map_lookup_elem(&backends, &tgid);
	__u64		d;

	if (!b || !b->active || !b->phase_start)
		return;
	d = bpf_ktime_get_ns() - b->phase_start;
	b->phase_start = 0;
	b->flags |= PGS_F_SPLIT;
	if (which == 0)
		b->parse_ns += d;
	else if (which == 1)
		b->plan_ns += d;
	else
		b->exec_ns += d;
}

SEC("usdt")
int
BPF_USDT(on_parse_start)
{
	phase_start();
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_parse_done)
{
	phase_done(0);
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_plan_start)
{
	phase_start();
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_plan_done)
{
	phase_done(1);
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_execute_start)
{
	phase_start();
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_execute_done)
{
	phase_done(2);
	return 0;
}
