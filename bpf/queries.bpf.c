// SPDX-License-Identifier: GPL-2.0
/*
 * queries.bpf.c - one event per finished statement of the traced
 * PostgreSQL backends, from the client protocol itself: a statement starts
 * when a backend receives a Query ('Q'), Parse ('P') or Bind ('B') message
 * on its socket and ends when it has sent ReadyForQuery ('Z').  The socket
 * tracepoints (proto.bpf.h) see both protocols on a stock, stripped binary
 * and cost far less than a uprobe hit per statement.  With split on, the USDT probes of
 * Debian's --enable-dtrace build add the parse/plan/execute times.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "queries.h"

char LICENSE[] SEC("license") = "GPL";

#include "filter.bpf.h"
#include "proto.bpf.h"

/* set before load: the verifier prunes what they switch off */
const volatile __u64 min_ns = 0;
const volatile __u32 capture_len = 1024;
const volatile __u64 myprocport_addr = 0;	/* &MyProcPort in the server's address space */
const volatile __u32 off_database_name = 0;
const volatile __u32 off_user_name = 0;
const volatile __u64 my_wait_event_info_addr = 0;	/* &my_wait_event_info (a uint32 *) */
const volatile bool breakdown = false;
const volatile __u64 pgbufferusage_addr = 0;	/* &pgBufferUsage */
const volatile __u64 pgwalusage_addr = 0;	/* &pgWalUsage */
const volatile __u32 off_blks_hit = 0;
const volatile __u32 off_blks_read = 0;
const volatile __u32 off_wal_records = 0;
const volatile __u32 off_wal_bytes = 0;

/*
 * The backend's own cumulative counters (instrument.h), read at the start
 * and the end of a statement: its buffer and WAL use without a probe per
 * buffer or record.  sign = -1 at the start, +1 at the end.
 */
static __always_inline void
usage_counters(struct pgs_query_event *ev, bool end)
{
	__u64		v[4] = {};

	if (pgbufferusage_addr)
	{
		bpf_probe_read_user(&v[0], 8, (void *) (pgbufferusage_addr + off_blks_hit));
		bpf_probe_read_user(&v[1], 8, (void *) (pgbufferusage_addr + off_blks_read));
	}
	if (pgwalusage_addr)
	{
		bpf_probe_read_user(&v[2], 8, (void *) (pgwalusage_addr + off_wal_records));
		bpf_probe_read_user(&v[3], 8, (void *) (pgwalusage_addr + off_wal_bytes));
	}
	if (end)
	{
		ev->blks_hit = v[0] - ev->blks_hit;
		ev->blks_read = v[1] - ev->blks_read;
		ev->wal_records = v[2] - ev->wal_records;
		ev->wal_bytes = v[3] - ev->wal_bytes;
	}
	else
	{
		ev->blks_hit = v[0];
		ev->blks_read = v[1];
		ev->wal_records = v[2];
		ev->wal_bytes = v[3];
	}
}

/* the event is built in place while the statement runs, then sent as is */
struct backend
{
	__u64		start_ns;
	__u64		phase_start;
	__u64		on_start;		/* breakdown: on CPU since */
	__u64		off_start;		/* breakdown: off CPU since */
	__u32		off_class;
	__u32		active;
	__u32		named;			/* database and user were read */
	struct pgs_query_event ev;
};

/* per-backend state in task storage: no hash lookups, freed with the task */
struct
{
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct backend);
} backends SEC(".maps");

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

static __always_inline void
count(__u32 idx)
{
	__u64	   *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		(*c)++;
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
		bpf_probe_read_user_str(b->ev.database, sizeof(b->ev.database), (void *) p);
	if (!bpf_probe_read_user(&p, sizeof(p), (void *) (port + off_user_name)) && p)
		bpf_probe_read_user_str(b->ev.user, sizeof(b->ev.user), (void *) p);
}

/* a socket read returned: the first message of a request starts a statement */
SEC("tp_btf/sock_recv_length")
int
BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	__u32		tgid;
	struct task_struct *task;
	struct backend *b;
	__u64		buf;
	__u8		type = 0;
	__u64		len;
	__u32		restart;

	/* most calls of a waiting backend return EAGAIN: leave at once */
	if (ret < 5 || (flags & PGS_MSG_PEEK))
		return 0;
	task = bpf_get_current_task_btf();
	if (!traced_task(task))
		return 0;
	b = bpf_task_storage_get(&backends, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!b)
		return 0;
	tgid = task->tgid;
	buf = syscall_buf(task, PGS_NR_RECVFROM);
	if (!buf)
		return 0;
	len = (__u64) ret < capture_len ? (__u64) ret : capture_len;
	/* a bound the verifier sees (a mask would turn 4096 into 0) */
	if (len > PGS_MAX_REQ)
		len = PGS_MAX_REQ;
	barrier_var(len);
	/*
	 * An idle backend's next request is a new statement: read it in one go
	 * (its first byte says what it is).  A running statement's buffer must
	 * not be overwritten, so then only the type byte is read.
	 */
	if (!b->active)
	{
		if (bpf_probe_read_user(b->ev.req, len, (void *) buf))
			return 0;
		type = b->ev.req[0];
	}
	else if (bpf_probe_read_user(&type, 1, (void *) buf))
		return 0;
	if (!starts_statement(type))
		return 0;

	/* a named Parse teaches user space the statement's text, whatever its duration */
	if (type == 'P')
	{
		__u8		first_name = 0;

		bpf_probe_read_user(&first_name, 1, (void *) (buf + 5));
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
				bpf_probe_read_user(e->req, len, (void *) buf);
				bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
			}
		}
	}

	/*
	 * More messages of a running statement (extended protocol, pipelining)
	 * continue it; only a new simple Query, which a client sends after
	 * ReadyForQuery, restarts a statement whose end was not seen.
	 */
	if (b->active && type != 'Q')
		return 0;
	restart = b->active;
	b->active = 1;
	b->ev.kind = PGS_EV_STATEMENT;
	b->ev.pid = tgid;
	b->ev.flags = ret > len ? PGS_F_TRUNCATED : 0;
	b->ev.parse_ns = b->ev.plan_ns = b->ev.exec_ns = 0;
	b->ev.cpu_ns = 0;
	__builtin_memset(b->ev.off_ns, 0, sizeof(b->ev.off_ns));
	b->off_start = 0;
	b->ev.req_len = len;
	if (restart)
		bpf_probe_read_user(b->ev.req, len, (void *) buf);	/* not read above */
	if (!b->named)
		read_names(b);
	if (breakdown)
		usage_counters(&b->ev, false);
	b->start_ns = bpf_ktime_get_ns();
	b->on_start = breakdown ? b->start_ns : 0;
	return 0;
}

/* a socket write returned: ReadyForQuery at the end of what was sent ends the statement */
SEC("tp_btf/sock_send_length")
int
BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct backend *b;
	__u64		buf;
	__u64		now,
				dur;
	__u32		len;
	bool		ready;

	if (ret < 6 || !traced_task(task))
		return 0;
	b = bpf_task_storage_get(&backends, task, 0, 0);
	if (!b || !b->active)
		return 0;
	buf = syscall_buf(task, PGS_NR_SENDTO);
	if (!buf)
		return 0;
	/*
	 * The server flushes an ErrorResponse at once: 'E', int32 length, and
	 * always the severity field 'S' first, which tells it from row data
	 * that happens to start a send with the byte 'E'.  ReadyForQuery is the
	 * last message of the last send.
	 */
	if (sent_error_or_ready(buf, ret, &ready))
		b->ev.flags |= PGS_F_ERROR;
	if (!ready)
		return 0;
	now = bpf_ktime_get_ns();
	dur = now - b->start_ns;
	b->active = 0;
	if (breakdown)
	{
		if (b->on_start)
			b->ev.cpu_ns += now - b->on_start;
		b->on_start = 0;
		b->ev.flags |= PGS_F_BREAKDOWN;
		usage_counters(&b->ev, true);
	}
	count(1);
	if (dur < min_ns)
		return 0;
	b->ev.end_ns = now;
	b->ev.duration_ns = dur;
	/* only as much of the request as was captured travels */
	len = b->ev.req_len;
	if (len > PGS_MAX_REQ)
		len = PGS_MAX_REQ;
	/* no wakeup per statement: user space drains the buffer on a timer */
	if (bpf_ringbuf_output(&events, &b->ev, offsetof(struct pgs_query_event, req) + len, BPF_RB_NO_WAKEUP))
		count(0);
	return 0;
}

/* ---- optional: parse/plan/execute times from the USDT probes ---- */

static __always_inline void
phase_start(void)
{
	struct backend *b = bpf_task_storage_get(&backends, bpf_get_current_task_btf(), 0, 0);

	if (b && b->active)
		b->phase_start = bpf_ktime_get_ns();
}

static __always_inline void
phase_done(int which)
{
	struct backend *b = bpf_task_storage_get(&backends, bpf_get_current_task_btf(), 0, 0);
	__u64		d;

	if (!b || !b->active || !b->phase_start)
		return;
	d = bpf_ktime_get_ns() - b->phase_start;
	b->phase_start = 0;
	b->ev.flags |= PGS_F_SPLIT;
	if (which == 0)
		b->ev.parse_ns += d;
	else if (which == 1)
		b->ev.plan_ns += d;
	else
		b->ev.exec_ns += d;
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

/* ---- optional: on-CPU and off-CPU time by wait event class ---- */

static __always_inline __u32
wait_class_slot(__u32 wait_event_info)
{
	switch (wait_event_info >> 24)
	{
		case 0x01: return 1;	/* LWLock */
		case 0x03: return 2;	/* Lock */
		case 0x04: return 3;	/* BufferPin */
		case 0x05: return 4;	/* Activity */
		case 0x06: return 5;	/* Client */
		case 0x07: return 6;	/* Extension */
		case 0x08: return 7;	/* IPC */
		case 0x09: return 8;	/* Timeout */
		case 0x0A: return 9;	/* IO */
	}
	return 0;
}

/*
 * At a context switch the backend leaving the CPU is the current task, so
 * its wait-event word (PGPROC.wait_event_info, reached through the exported
 * pointer my_wait_event_info) can be read from its own memory.
 */
SEC("tp_btf/sched_switch")
int
BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct backend *b;
	__u64		now = bpf_ktime_get_ns();

	b = bpf_task_storage_get(&backends, prev, 0, 0);
	if (b && b->active && b->on_start)
	{
		__u64		p = 0;
		__u32		wei = 0;

		b->ev.cpu_ns += now - b->on_start;
		b->on_start = 0;
		if (!preempt && my_wait_event_info_addr && !bpf_probe_read_user(&p, sizeof(p), (void *) my_wait_event_info_addr) && p)
			bpf_probe_read_user(&wei, sizeof(wei), (void *) p);
		/* still runnable: waiting for a CPU, whatever the wait event says */
		b->off_class = (preempt || prev->__state == 0) ? PGS_RUNQUEUE : wait_class_slot(wei);
		b->off_start = now;
	}
	b = bpf_task_storage_get(&backends, next, 0, 0);
	if (b && b->active && b->off_start)
	{
		__u32		slot = b->off_class < PGS_WAIT_CLASSES ? b->off_class : 0;

		b->ev.off_ns[slot] += now - b->off_start;
		b->off_start = 0;
		b->on_start = now;
	}
	return 0;
}
