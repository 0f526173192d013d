// SPDX-License-Identifier: GPL-2.0
/*
 * queries.bpf.c - one event per statement the traced PostgreSQL backends
 * execute, counted and timed the way the server executes them.
 *
 * Input is the client protocol: what each backend reads from its socket
 * (sock:sock_recv_length, tp_btf) or, for TLS connections, what the
 * server's own be_tls_read() returns in plain text (uprobe/uretprobe: only
 * TLS connections pay for them).  Every read is cut into messages (types
 * and lengths, across reads), and counts the statements it brings: one per
 * Execute, one per simple Query.
 *
 * A read that brings one statement, the common case, is timed by socket
 * events alone, for the cost of a few tracepoint hits: it starts with the
 * read and ends with the send whose last message is ReadyForQuery, or, in a
 * pipeline without Sync, at the backend's next read attempt (it asks for
 * more only when it is done).  A read that brings several statements (a
 * pipeline, a batch, a simple Query with several statements) cannot be
 * delimited from the socket: the backend answers them in one send.  Such a
 * backend gets the executor's own USDT probes (query__execute__start/done
 * in PortalRun, query__start, transaction__abort), attached by user space
 * to that process only (the kernel raises their semaphores in it alone) and
 * listed in the map "probed"; its later multi-statement reads are timed
 * statement by statement.  Its first one, which ran before, is sent whole
 * (PGS_EV_BATCH): its statements are counted and named, and timed as a
 * batch.
 *
 * Bytes that are not protocol messages are counted as undecodable and
 * skipped up to the next ReadyForQuery, never guessed at.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "queries.h"

char LICENSE[] SEC("license") = "GPL";

#include "filter.bpf.h"
#include "helpers.bpf.h"
#include "proto.bpf.h"
#include "nettotals.bpf.h"

/* set before load: the verifier prunes what they switch off */
const volatile __u64 min_ns = 0;
const volatile __u32 capture_len = 1024;
const volatile __u64 myprocport_addr = 0;	/* &MyProcPort in the server's address space */
const volatile __u32 off_database_name = 0;
const volatile __u64 application_name_addr = 0;	/* &application_name (a GUC's char *) */
const volatile __u32 read_appname = 0;	/* each statement carries application_name (the agent's spans) */
const volatile __u32 off_user_name = 0;
const volatile __u64 mybeentry_addr = 0;	/* &MyBEEntry */
const volatile __u32 off_activity_raw = 0;	/* PgBackendStatus.st_activity_raw */
const volatile __u64 my_wait_event_info_addr = 0;	/* &my_wait_event_info (a uint32 *) */
const volatile bool breakdown = false;
const volatile bool split = false;
const volatile __u64 pgbufferusage_addr = 0;	/* &pgBufferUsage */
const volatile __u64 pgwalusage_addr = 0;	/* &pgWalUsage */
const volatile __u32 off_blks_hit = 0;
const volatile __u32 off_blks_read = 0;
const volatile __u32 off_wal_records = 0;
const volatile __u32 off_wal_bytes = 0;
const volatile bool all_probed = false;	/* the executor probes are on in every backend */
const volatile bool keep_net = false;	/* each backend's client traffic too (nettotals.bpf.h) */

#define PGS_MAX_MSGS 2048		/* messages walked in one read (a read is at most 8 KB) */
#define PGS_CHUNK 512			/* a read's first bytes, read in one go (most requests whole), and the
								 * walks' copy of a read or send to take message headers from */

/*
 * Two 8-byte members of a struct at user address base (offsets a and b): one
 * read of the span between them when it is at most 32 bytes (BufferUsage's
 * hit and read counters, WalUsage's records and bytes), else two.
 */
static __always_inline void
read_pair(__u64 base, __u32 a, __u32 b, __u64 *va, __u64 *vb)
{
	__u64		w[4] = {};
	__u32		lo = a < b ? a : b,
				size = (a < b ? b : a) + 8 - lo;

	if (size <= sizeof(w) && (a - lo) % 8 == 0 && (b - lo) % 8 == 0)
	{
		bpf_probe_read_user(w, size & 63, (void *) (base + lo));
		*va = w[((a - lo) / 8) & 3];
		*vb = w[((b - lo) / 8) & 3];
		return;
	}
	bpf_probe_read_user(va, 8, (void *) (base + a));
	bpf_probe_read_user(vb, 8, (void *) (base + b));
}

/*
 * The backend's own cumulative counters (instrument.h), read at the start
 * and the end of a statement: its buffer and WAL use without a probe per
 * buffer or record.
 */
static __always_inline void
usage_counters(struct pgs_query_event *ev, bool end)
{
	__u64		v[4] = {};

	if (pgbufferusage_addr)
		read_pair(pgbufferusage_addr, off_blks_hit, off_blks_read, &v[0], &v[1]);
	if (pgwalusage_addr)
		read_pair(pgwalusage_addr, off_wal_records, off_wal_bytes, &v[2], &v[3]);
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
	__u64		unit_start;		/* the open statement's start, 0: none */
	__u64		last_wait_ns;	/* a read that found nothing since the last one that brought data */
	__u64		phase_start;	/* --split */
	__u64		parse_at;		/* the first start of each phase, for the event */
	__u64		plan_at;
	__u64		exec_at;
	__u64		pend_parse;
	__u64		pend_plan;
	__u64		pend_exec;
	__u64		tls_buf;		/* be_tls_read's buffer, from its entry to its return */
	__u32		named;			/* database and user were read */
	__u64		multi_mark;		/* multi mode: the next statement's start (the last one's end, less waits) */
	__u64		begun;			/* a statement's first messages came at (less waits), its Execute not yet */
	__u32		multi;			/* several statements in the last read, timed by the executor probes */
	__u32		batch;			/* several statements in the last read, no probes: timed together */
	__u32		batch_units;
	__u32		batch_done;		/* statements of the batch answered as done */
	__u64		quiet_buf;		/* a batch's read whose bytes go to user space only if it is slow */
	__u32		quiet_n;		/* (0: none, or they went at once) */
	__u32		quiet_batches;	/* batches counted in the kernel only since the last batch event */
	__u32		stream;			/* since a batch, every read goes to user space, up to ReadyForQuery */
	__u32		depth;			/* PortalRun nesting (EXECUTE of a prepared statement) */
	__u32		qindex;			/* which Query of the read runs (query__start) */
	__u32		unit_index;		/* which statement of that Query */
	__u32		skip;			/* bytes of a message that continue in later reads */
	__u32		hdr_have;		/* bytes of a message header split across reads */
	__u32		read_seq;		/* reads that brought data */
	__u32		lead;			/* the statement of a header completed by this read */
	__u8		hdr[16];
	__u32		tls;			/* its traffic is seen through be_tls_read/write */
	__u32		gss;			/* GSSAPI-encrypted: not traced */
	__u32		ssl_requested;	/* SSLRequest sent, answer pending */
	__u32		gss_requested;
	__u32		desync;			/* undecodable bytes: skip to the next ReadyForQuery */
	/*
	 * An ErrorResponse was sent: in the extended protocol the server then
	 * discards every message up to the next Sync (its Executes are no
	 * executions); cleared by that Sync, or by ReadyForQuery (a simple
	 * Query's error, which skips nothing).
	 */
	__u32		ign_sync;
	/*
	 * Statements ended (the backend read again) whose answers are still in
	 * its output buffer: a pipeline without Flush or Sync.  Their
	 * CommandCompletes lead the next send, before a batch's own.
	 */
	__u32		unanswered;
	__u32		unit_sent;		/* a send since the open statement began may have held its answer */
	/*
	 * A read of several Sync groups (or simple Queries) is answered a group
	 * at a time, each with its ReadyForQuery, and the backend reads no more
	 * before the last: a batch or pipeline that ended at a ReadyForQuery may
	 * go on without a read.  When it did (tail_at), from tail_multi's
	 * executor probes or as a batch's next group; a read, or a read that
	 * finds nothing, ends that.
	 */
	__u64		tail_at;
	__u32		tail_multi;
	__u32		tail_batch;		/* a batch ended at its error: its ReadyForQuery may yet begin a tail */
	/*
	 * A portal's rows fetched in round trips (JDBC's fetch size: an Execute
	 * with a row limit, answered PortalSuspended): the last read's last
	 * Execute's portal (its name's first 8 bytes) and whether it had a
	 * limit, and the portal the last round trip left suspended.  An Execute
	 * of that portal continues its statement (PGS_F_CONTINUES).
	 */
	__u64		exec_key;
	__u32		exec_limited;
	__u32		susp;
	__u64		susp_key;
	struct net_state net;		/* keep_net */
	/*
	 * A copy of up to PGS_CHUNK bytes of a read or a send: the read's head
	 * (read_head: its first byte is chunk[0] while chunk_have is not 0, up to
	 * the walk), from which the walks take message headers too
	 * (chunk_bytes): one read of the backend's memory for a pipeline's
	 * dozens of messages, not one each.  The task's own, not a per-CPU
	 * buffer: programs are preemptible.
	 */
	__u8		chunk[PGS_CHUNK * 2 + 8];
	/*
	 * It holds the bytes [chunk_base, chunk_base + chunk_have) of the walk's
	 * read or send (read_head sets them for a read; output's walks start
	 * from chunk_have = 0).  Here, not in the walk's stack: the verifier
	 * would follow their values from step to step.
	 */
	__u32		chunk_base;
	__u32		chunk_have;
	struct pgs_query_event ev;
};

/*
 * --breakdown's clock of the open statement, per backend, in a hash map
 * rather than task storage: sched_switch can run while another BPF program
 * holds this CPU's task-storage lock (programs are preemptible), and task
 * storage then answers NULL; a switch-in lost that way lost the rest of a
 * statement's time (seen: 18.7 of 248.9 ms accounted).  Hash lookups take
 * no lock.
 */
struct breakdown_clock
{
	__u64		on_start;		/* on CPU since */
	__u64		off_start;		/* off CPU since */
	__u32		off_class;
	__u32		open;			/* a statement is being timed */
	__u64		cpu_ns;
	__u64		off_ns[PGS_WAIT_CLASSES];
	__u64		wei_addr;		/* where the backend's wait event word is (wait_event_of) */
	__u64		wei_task;		/* the start time of the process that wei_addr is of */
};

PGS_MAP(clocks, BPF_MAP_TYPE_LRU_HASH, 16384, __u32, struct breakdown_clock);

/* per-backend state in task storage: no hash lookups, freed with the task */
struct
{
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct backend);
} backends SEC(".maps");

/* backends user space attached the executor probes to */
PGS_MAP(probed, BPF_MAP_TYPE_HASH, 65536, __u32, __u32);

struct
{
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
} events SEC(".maps");

PGS_MAP(counters, BPF_MAP_TYPE_PERCPU_ARRAY, PGS_NCOUNTERS, __u32, __u64);

static __always_inline void
count_n(__u32 idx, __u64 n)
{
	__u64	   *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += n;
}

#define count(idx) count_n((idx), 1)

/* database and user of this backend, from MyProcPort (offsets from the server headers) */
static __noinline void
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

/* the statement's text as pg_stat_activity has it (MyBEEntry->st_activity_raw) */
static __noinline void
read_activity(struct backend *b)
{
	__u64		be = 0,
				p = 0;
	long		n;

	b->ev.text_len = 0;
	if (!mybeentry_addr || !off_activity_raw)
		return;
	if (bpf_probe_read_user(&be, sizeof(be), (void *) mybeentry_addr) || !be ||
		bpf_probe_read_user(&p, sizeof(p), (void *) (be + off_activity_raw)) || !p)
		return;
	n = bpf_probe_read_user_str(b->ev.text, sizeof(b->ev.text), (void *) p);
	if (n > 0)
	{
		b->ev.text_len = n - 1;
		b->ev.flags |= PGS_F_ACTIVITY;
	}
}

/*
 * The statement event out, packed (PGS_F_PACKED): the fixed part, then the
 * text_len bytes of the activity text, then the len bytes of the read's
 * messages right after them, written straight into a ring-buffer record of
 * that size (a dynptr: no staging copy, and no per-CPU staging buffer that a
 * preempting program could overwrite).  What goes into the ring buffer is
 * written into memory the cache has not seen, so its size is its cost: a
 * fixed layout's empty text (1 KB) cost some 2.5 us a statement here.
 */
static __noinline void
emit(struct backend *b, __u32 req_len)
{
	struct bpf_dynptr rec;
	__u64		tl = b->ev.text_len,
				len = req_len;
	__u32		head = offsetof(struct pgs_query_event, text),
				flags = b->ev.flags | PGS_F_PACKED,
				tl32,
				len32;

	if (tl > PGS_MAX_TEXT)
		tl = PGS_MAX_TEXT;
	if (len > PGS_MAX_REQ)
		len = PGS_MAX_REQ;
	tl32 = (__u32) tl;
	len32 = (__u32) len;
	if (bpf_ringbuf_reserve_dynptr(&events, head + tl32 + len32, 0, &rec))
	{
		bpf_ringbuf_discard_dynptr(&rec, 0);
		count(PGS_C_LOST);
	}
	else
	{
		/*
		 * The record's own lengths and flag, not the backend's (later
		 * statements of a read use its req_len): set for the copy and put
		 * back, one write of the fixed part instead of four.  (Only this
		 * task's programs touch its storage, and none can run inside this.)
		 */
		__u32		keep_flags = b->ev.flags,
					keep_tl = b->ev.text_len,
					keep_len = b->ev.req_len;

		b->ev.flags = flags;
		b->ev.text_len = tl32;
		b->ev.req_len = len32;
		bpf_dynptr_write(&rec, 0, &b->ev, head, 0);
		b->ev.flags = keep_flags;
		b->ev.text_len = keep_tl;
		b->ev.req_len = keep_len;
		barrier_var(tl);
		if (tl > 0 && tl <= PGS_MAX_TEXT)
			bpf_dynptr_write(&rec, head, b->ev.text, tl, 0);
		barrier_var(tl);
		barrier_var(len);
		if (tl <= PGS_MAX_TEXT && len > 0 && len <= PGS_MAX_REQ)
			bpf_dynptr_write(&rec, head + tl, b->ev.req, len, 0);
		/* no wakeup per statement: user space drains the buffer on a timer */
		bpf_ringbuf_submit_dynptr(&rec, BPF_RB_NO_WAKEUP);
	}
	b->ev.sqlstate[0] = '\0';		/* an error's code is its statement's alone */
}

/* ---------- statements ---------- */

static __noinline void
start_unit(struct backend *b, __u32 tgid, __u64 now, __u32 flags)
{
	b->ev.kind = PGS_EV_STATEMENT;
	b->ev.pid = tgid;
	b->unit_sent = 0;
	if (!b->ev.server_pid)
		b->ev.server_pid = pgs_ns_tgid(bpf_get_current_task_btf());
	b->ev.flags = flags | (b->tls ? PGS_F_TLS : 0);
	b->ev.cpu_ns = 0;
	__builtin_memset(b->ev.off_ns, 0, sizeof(b->ev.off_ns));
	if (!b->named)
		read_names(b);
	if (read_appname)
	{
		/*
		 * Only a W3C traceparent ("00-" and 52 more characters) matters to
		 * the spans: its first 8 bytes are looked at, and only such a name
		 * is copied (a shorter string whose 8 bytes cross into an unmapped
		 * page fails the read, and is no traceparent either).
		 */
		__u64		p = 0;
		char		first[8] = {};

		b->ev.appname[0] = '\0';
		if (application_name_addr && !bpf_probe_read_user(&p, sizeof(p), (void *) application_name_addr) && p &&
			!bpf_probe_read_user(first, sizeof(first), (void *) p) && first[0] == '0' && first[1] == '0' &&
			first[2] == '-')
			bpf_probe_read_user_str(b->ev.appname, sizeof(b->ev.appname), (void *) p);
	}
	if (breakdown)
	{
		struct breakdown_clock *c = bpf_map_lookup_elem(&clocks, &tgid);

		usage_counters(&b->ev, false);
		if (c)
		{
			/*
			 * Reset in place (an LRU map's update costs several lookups'
			 * time, once a statement): closed first and opened last, so
			 * that a switch that preempts this sees a clock either closed
			 * or whole.
			 */
			PGS_WRITE_ONCE(c->open, 0);
			PGS_BARRIER();
			c->off_start = 0;
			c->off_class = 0;
			c->cpu_ns = 0;
			__builtin_memset(c->off_ns, 0, sizeof(c->off_ns));
			c->on_start = now;
			PGS_BARRIER();
			PGS_WRITE_ONCE(c->open, 1);
		}
		else
		{
			struct breakdown_clock z = {.on_start = now, .open = 1};

			bpf_map_update_elem(&clocks, &tgid, &z, BPF_ANY);
		}
	}
	b->unit_start = now;
}

/* the open statement ended at end: count it, and send it when it took long enough */
static __noinline void
end_unit(struct backend *b, __u64 end, __u32 flags)
{
	__u64		dur;
	__u32		len;

	if (!b->unit_start)
		return;
	dur = end > b->unit_start ? end - b->unit_start : 0;
	b->ev.flags |= flags;
	if (breakdown)
	{
		__u32		tgid = b->ev.pid;
		struct breakdown_clock *c = bpf_map_lookup_elem(&clocks, &tgid);

		if (c && c->open)
		{
			if (c->on_start && end > c->on_start)
				c->cpu_ns += end - c->on_start;
			/* ended before it was switched back in (end is a past moment): that wait is its last */
			if (c->off_start && end > c->off_start)
			{
				__u32		slot = c->off_class < PGS_WAIT_CLASSES ? c->off_class : 0;

				c->off_ns[slot] += end - c->off_start;
			}
			c->open = 0;
			b->ev.cpu_ns = c->cpu_ns;
			__builtin_memcpy(b->ev.off_ns, c->off_ns, sizeof(b->ev.off_ns));
			b->ev.flags |= PGS_F_BREAKDOWN;
		}
		usage_counters(&b->ev, true);
	}
	if (split)
	{
		b->ev.parse_ns = b->pend_parse;
		b->ev.plan_ns = b->pend_plan;
		b->ev.exec_ns = b->pend_exec;
		b->ev.parse_at = b->parse_at;
		b->ev.plan_at = b->plan_at;
		b->ev.exec_at = b->exec_at;
		if (b->pend_parse || b->pend_plan || b->pend_exec)
			b->ev.flags |= PGS_F_SPLIT;
		b->pend_parse = b->pend_plan = b->pend_exec = 0;
		b->parse_at = b->plan_at = b->exec_at = 0;
	}
	b->unit_start = 0;
	/* PGS_C_ENDED, or PGS_C_CONTINUED for a suspended portal's later round trip (no branch) */
	count_n(PGS_C_ENDED + ((b->ev.flags / PGS_F_CONTINUES) & 1) * (PGS_C_CONTINUED - PGS_C_ENDED), 1);
	if (dur < min_ns)
	{
		b->ev.sqlstate[0] = '\0';
		return;
	}
	b->ev.end_ns = end;
	b->ev.duration_ns = dur;
	/*
	 * The text: a statement timed by the executor probes, or one whose read
	 * held no Parse or Query (a prepared statement's Bind/Execute), also
	 * gets the text the backend reports in pg_stat_activity.
	 */
	b->ev.text_len = 0;
	if ((b->ev.flags & PGS_F_EXECUTOR) || (b->ev.req[0] != PGS_FE_QUERY && b->ev.req[0] != PGS_FE_PARSE))
		read_activity(b);
	/* the executor's statements take their text from the backend, but a simple Query's is split */
	len = (b->ev.flags & PGS_F_EXECUTOR) && b->ev.req[0] != PGS_FE_QUERY ? 0 : b->ev.req_len;
	emit(b, len);
}

/*
 * Several statements in one read.  With the executor probes on in this
 * backend they time each statement; without, the read is one batch, sent
 * whole when it ends, and user space switches the probes on for next time.
 */
static __noinline void send_read(struct backend *b, __u32 tgid, __u64 buf, __u32 n, __u32 first_off);

static __always_inline void
several(struct backend *b, __u32 tgid, __u32 units, __u64 now, __u64 buf, __u32 n, __u32 first_off, bool quiet)
{
	if (b->batch)
	{
		b->batch_units += units;
		return;
	}
	if (b->multi || all_probed || bpf_map_lookup_elem(&probed, &tgid))
	{
		if (!b->multi)
		{
			b->multi_mark = now;
			b->multi = 1;
			b->depth = 0;
			b->qindex = 0;
			b->unit_index = 0;
			count(PGS_C_MULTI);
		}
		return;
	}
	b->batch = 1;
	b->batch_units = units;
	b->batch_done = 0;
	b->ev.group = 0;
	b->stream = 1;
	b->ev.read_seq = b->read_seq;
	b->quiet_n = 0;
	if (quiet)
	{
		/* its bytes stay where they are until its ReadyForQuery: they go to user space then, if it was slow */
		b->quiet_buf = buf;
		b->quiet_n = n;
	}
	else
		send_read(b, tgid, buf, n, first_off | 0x80000000);
	start_unit(b, tgid, now, b->ev.flags & PGS_F_TRUNCATED);
}

/*
 * The batch is over at end: it goes to user space, but for a quiet one (see
 * read_statements) that took less than min_ns without an error, which is
 * counted here alone: user space would count it and show none of it.
 */
static __noinline void
end_batch(struct backend *b, __u64 end)
{
	__u64		dur = end > b->unit_start ? end - b->unit_start : 0;

	b->batch = 0;
	b->unit_start = 0;
	count(PGS_C_BATCH);
	if (b->quiet_n)
	{
		__u64		buf = b->quiet_buf;
		__u32		n = b->quiet_n;

		b->quiet_n = 0;
		if (dur < min_ns && !(b->ev.flags & PGS_F_ERROR))
		{
			count_n(PGS_C_QUIET, b->batch_units);
			b->quiet_batches++;
			return;
		}
		/* the read's bytes are still in the backend's buffer: no read came since */
		send_read(b, b->ev.pid, buf, n, 0x80000000);
	}
	b->ev.kind = PGS_EV_BATCH;
	b->ev.unit = b->batch_units;
	b->ev.done = b->batch_done;
	b->ev.end_ns = end;
	b->ev.duration_ns = dur;
	b->ev.quiet = b->quiet_batches;
	b->quiet_batches = 0;
	b->ev.text_len = 0;
	/* its bytes went to user space as it came, or just now (PGS_EV_READ, same read_seq) */
	emit(b, 0);
	b->ev.kind = PGS_EV_STATEMENT;
}

/* whatever of the last read is still open ended at end */
static __always_inline void
end_read(struct backend *b, __u64 end, __u32 flags)
{
	if (b->batch)
		end_batch(b, end);
	else if (!b->multi)
		end_unit(b, end, flags);
}

/* ---------- decoding reads ---------- */

/* a read or send that a walk takes message headers from, through b->chunk */
struct chunked
{
	struct backend *b;
	__u64		buf;
	__u32		n;				/* its bytes */
};

/*
 * The len (at most 8) bytes at c->buf + off into h[8], from b's copy,
 * which is refilled from off on (up to PGS_CHUNK bytes) when they are not
 * in it.  Nonzero: not readable.  Out of line: its branches end at its
 * return, so the verifier does not walk the rest of a walk once for each.
 */
static __noinline int
chunk_bytes(struct chunked *c, __u32 off, __u8 *h, __u32 len)
{
	struct backend *b = c->b;
	__u32		rel,
				sz;

	if (!b || len > 8)
		return -1;
	if (off < b->chunk_base || off + len > b->chunk_base + b->chunk_have)
	{
		sz = c->n - off;
		if (off > c->n || sz < len)
			return -1;
		if (sz > PGS_CHUNK)
			sz = PGS_CHUNK;
		barrier_var(sz);
		sz &= PGS_CHUNK * 2 - 1;	/* (changes nothing: for the verifier) */
		if (bpf_probe_read_user(b->chunk, sz, (void *) (c->buf + off)))
		{
			b->chunk_have = 0;
			return -1;
		}
		b->chunk_base = off;
		b->chunk_have = sz;
	}
	rel = off - b->chunk_base;
	barrier_var(rel);
	rel &= PGS_CHUNK * 2 - 1;	/* (below chunk_have <= PGS_CHUNK already) */
	__builtin_memcpy(h, &b->chunk[rel], 8);
	return 0;
}

static __always_inline bool
known_type(__u8 t)
{
	/* frontend messages (protocol 3.0) */
	switch (t)
	{
		case PGS_FE_QUERY: case PGS_FE_PARSE: case PGS_FE_BIND: case PGS_FE_EXECUTE: case PGS_FE_DESCRIBE: case PGS_FE_CLOSE: case PGS_FE_SYNC: case PGS_FE_FLUSH:
		case PGS_FE_FUNCTION_CALL: case PGS_FE_TERMINATE: case PGS_FE_COPY_DATA: case PGS_FE_COPY_DONE: case PGS_FE_COPY_FAIL: case PGS_FE_PASSWORD:
			return true;
	}
	return false;
}

struct walk
{
	struct chunked c;			/* the read (first: send_parse and the callbacks take buf, n from it) */
	__u32		off;			/* the next message */
	__u32		units;			/* Execute and Query messages */
	__u32		q_off;			/* the first Query: its offset and length */
	__u32		q_len;
	__u32		bad;
	__u32		skip;			/* bytes of the last message beyond the read */
	__u32		part;			/* bytes of a header cut by the end of the read */
	__u32		tgid;
	__u32		binds;			/* Parse or Bind messages */
	__u32		exec_off;		/* the last Execute (its offset, 0: none, and length field) */
	__u32		exec_len;
	__u32		syncs;			/* Sync messages */
	__u8		last;			/* the type of the last whole message */
};

/* a named Parse teaches user space the statement's text, whatever its duration */
static __always_inline void
send_parse(struct walk *w, __u32 off)
{
	struct pgs_query_event *e;
	__u8		name[8] = {};
	__u64		len;

	/* (its name's first byte: from the walk's copy, like the headers) */
	if (chunk_bytes(&w->c, off + 5, name, 1) || !name[0])
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
	{
		count(PGS_C_LOST);
		return;
	}
	len = w->c.n - off;
	if (len > capture_len)
		len = capture_len;
	if (len > PGS_MAX_REQ)
		len = PGS_MAX_REQ;
	barrier_var(len);
	e->kind = PGS_EV_PARSE;
	e->pid = w->tgid;
	e->req_len = len;
	e->flags = 0;
	if (bpf_probe_read_user(e->req, len, (void *) (w->c.buf + off)))
		e->req_len = 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/*
 * After an error the server discards messages up to a Sync: whether a
 * message of this type is one of those (a Sync ends the skipping).
 */
static __always_inline bool
skipped_to_sync(struct backend *b, __u8 type)
{
	if (!b->ign_sync)
		return false;
	if (type == PGS_FE_SYNC)
		b->ign_sync = 0;
	return true;
}

/* what one message means here; len is its length field (4 + body) */
static __always_inline void
take_message(struct walk *w, __u8 type, __u32 off, __u32 len)
{
	struct backend *b = w->c.b;

	/* Syncs, counted without a branch (the verifier would walk the rest once for each way) */
	w->syncs += ((__u32) (type ^ PGS_FE_SYNC) - 1) >> 31;
	/* (no statements, no texts) */
	if (b && skipped_to_sync(b, type))
		return;
	if (type == PGS_FE_EXECUTE)
	{
		w->units++;
		w->exec_off = off + 1;	/* (+1: 0 is none; an offset in the read can be 0) */
		w->exec_len = len;
	}
	else if (type == PGS_FE_QUERY)
	{
		w->units++;
		if (!w->q_len)
		{
			w->q_off = off;
			w->q_len = len + 1;
		}
	}
	else if (type == PGS_FE_PARSE || type == PGS_FE_BIND)
	{
		w->binds++;
		if (type == PGS_FE_PARSE && off + 6 <= w->c.n)
			send_parse(w, off);
	}
}

static long
walk_one(__u32 i, struct walk *w)
{
	__u8		h[8] = {};
	__u32		len;

	if (w->off >= w->c.n)
		return 1;
	if (w->c.n - w->off < 5)
	{
		w->part = w->c.n - w->off;
		return 1;
	}
	if (chunk_bytes(&w->c, w->off, h, 5))
	{
		w->bad = 1;
		return 1;
	}
	len = pgs_be32(&h[1]);
	if (!known_type(h[0]) || len < 4 || len > 0x40000000)
	{
		w->bad = 1;
		return 1;
	}
	take_message(w, h[0], w->off, len);
	w->last = h[0];
	if ((__u64) w->off + 1 + len > w->c.n)
	{
		w->skip = w->off + 1 + len - w->c.n;
		w->off = w->c.n;
		return 1;
	}
	w->off += 1 + len;
	return 0;
}

/* is there a ';' before the last 3 bytes of the simple Query's text?  (then it may hold several statements) */
struct semi_scan
{
	struct backend *b;
	__u32		from;
	__u32		to;
	__u32		found;
};

/* whether the 8 bytes v, of which the text has left (the rest are past its end), hold a ';' */
static __always_inline bool
semi_in_word(__u64 v, __u32 left)
{
	__u64		x;

	if (left < 8)
		v |= ~0ULL << (8 * left);	/* bytes past the end: 0xff, never ';' */
	x = v ^ 0x3b3b3b3b3b3b3b3bULL;
	return (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
}

static long
semi_one(__u32 i, struct semi_scan *s)
{
	/* eight bytes at a time: a query of 60 bytes is 8 steps, not 60 */
	__u32		at = s->from + i * 8;

	if (at >= s->to || at >= PGS_MAX_REQ - 8)
		return 1;
	barrier_var(at);			/* the compiler would drop the mask the verifier needs */
	at &= PGS_MAX_REQ - 1;
	if (at > PGS_MAX_REQ - 8)
		return 1;
	if (semi_in_word(*(__u64 *) &s->b->ev.req[at], s->to - at))
	{
		s->found = 1;
		return 1;
	}
	return 0;
}

/*
 * The same scan of a text within the first PGS_CHUNK bytes (pgbench's, an
 * ORM's SELECT by key) in a plain loop: no callback call per step.  -1:
 * longer, not looked at.
 */
static __always_inline int
semi_short(struct backend *b, __u32 from, __u32 to)
{
	if (to > PGS_CHUNK)
		return -1;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < PGS_CHUNK / 8; i++)
	{
		__u32		at = from + i * 8;

		if (at >= to)
			return 0;
		barrier_var(at);
		at &= PGS_CHUNK - 1;	/* (below to <= PGS_CHUNK already: for the verifier) */
		if (semi_in_word(*(__u64 *) &b->ev.req[at], to - at))
			return 1;
	}
	return 0;
}

/*
 * The start of a connection: packets without a type byte (their first byte
 * is the high byte of a length).  SSLRequest and GSSENCRequest are answered
 * with one byte, which tells whether encryption follows.
 */
static __noinline void
startup_packet(struct backend *b, __u64 buf, __u32 n)
{
	__u8		p[8] = {};
	__u32		code;

	if (n < 8 || bpf_probe_read_user(p, sizeof(p), (void *) buf))
		return;
	code = pgs_be32(&p[4]);
	if (code == 80877103)
		b->ssl_requested = 1;
	else if (code == 80877104)
		b->gss_requested = 1;
	/* 196608: StartupMessage (3.0); 80877102: CancelRequest; nothing to time */
}

static __noinline void
send_read(struct backend *b, __u32 tgid, __u64 buf, __u32 n, __u32 first_off)
{
	/* (also the bytes of a batch's read, as they come: the batch's event follows at its end) */
	struct pgs_query_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64		len = n;

	if (!e)
	{
		count(PGS_C_LOST);
		return;
	}
	if (len > PGS_MAX_REQ)
		len = PGS_MAX_REQ;
	barrier_var(len);
	e->kind = PGS_EV_READ;
	e->pid = tgid;
	e->flags = (n > len ? PGS_F_TRUNCATED : 0) | (first_off & 0x80000000 ? PGS_F_BATCH_START : 0);
	e->req_off = first_off & 0x7fffffff;
	e->read_seq = b->read_seq;
	e->lead = b->lead;
	e->req_len = bpf_probe_read_user(e->req, len, (void *) buf) ? 0 : len;
	/* without --min-ms a batch's start wakes user space: it attaches the probes for the next one */
	bpf_ringbuf_submit(e, (e->flags & PGS_F_BATCH_START) && min_ns == 0 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* a statement is open, or its time has begun: the backend's waits for input matter */
static __always_inline bool
timing(struct backend *b)
{
	return b->unit_start || b->multi || b->begun;
}

/*
 * The backend waited for these bytes (a read found nothing first): the wait
 * is nobody's time.  What was begun before it (a pipeline's next statement,
 * a statement whose Execute comes later) goes on after it, so its start
 * moves by the wait; a statement open through it (one read's, a batch) ends
 * where the wait began, which end_read takes from last_wait_ns.
 */
static __always_inline void
idle(struct backend *b, __u64 now)
{
	__u64		waited;

	if (!b->last_wait_ns || now <= b->last_wait_ns)
		return;
	waited = now - b->last_wait_ns;
	if (b->multi)
		b->multi_mark = b->multi_mark && b->multi_mark <= b->last_wait_ns ? b->multi_mark + waited : now;
	if (b->begun)
		b->begun = b->begun <= b->last_wait_ns ? b->begun + waited : now;
	if (!b->unit_start || b->multi)
		b->last_wait_ns = 0;
}

/*
 * A message header cut in two by the last read: completed from this one
 * and its message skipped (w->off), or w->bad; true when even this read did
 * not complete it.
 */
static __noinline bool
complete_header(struct backend *b, struct walk *w)
{
	__u32		have = b->hdr_have,
				n = w->c.n,
				need,
				sz,
				mlen;

	barrier_var(have);			/* masks the verifier needs, which the compiler would drop */
	have &= 7;
	need = 5 - have;
	sz = need > n ? n : need;
	barrier_var(sz);
	sz &= 7;
	if (bpf_probe_read_user(&b->hdr[have], sz, (void *) w->c.buf))
		w->bad = 1;
	else if (need > n)
	{
		b->hdr_have += n;
		if (b->stream)
			send_read(b, w->tgid, w->c.buf, n, n);
		return true;
	}
	b->hdr_have = 0;
	mlen = pgs_be32(&b->hdr[1]);
	if (w->bad || !known_type(b->hdr[0]) || mlen < 4 || mlen > 0x40000000)
	{
		w->bad = 1;
		return false;
	}
	if (!skipped_to_sync(b, b->hdr[0]) && (b->hdr[0] == PGS_FE_EXECUTE || b->hdr[0] == PGS_FE_QUERY))
	{
		w->units++;				/* its text went with the earlier read */
		b->lead = 1;
	}
	w->off = need + mlen - 4;
	if (w->off > n)
	{
		b->skip = w->off - n;
		w->off = n;
	}
	return false;
}

/* not protocol messages as we know them: say so, and wait for a request boundary */
static __always_inline void
lost_track(struct backend *b)
{
	count(PGS_C_UNDECODABLE);
	b->desync = 1;
	b->unit_start = 0;
	b->begun = 0;
	b->skip = 0;
	b->hdr_have = 0;
}

/* the start of a header the end of the read cut: kept for the next read to complete */
static __always_inline void
keep_header_part(struct backend *b, struct walk *w)
{
	__u32		part = w->part > 4 ? 4 : w->part;

	b->hdr_have = part;
	barrier_var(part);
	part &= 7;
	bpf_probe_read_user(b->hdr, part, (void *) (w->c.buf + w->off));
}

/*
 * The read's last Execute: its portal (the name's first 8 bytes, for
 * comparing) and whether it has a row limit, into b->exec_key and
 * b->exec_limited; a statement of its own (read_statements started it) that
 * executes the suspended portal continues that portal's statement.
 */
static __noinline void
last_execute(struct backend *b, struct walk *w)
{
	__u8		name[8] = {},
				rows[8] = {};
	__u32		off = w->exec_off - 1,
				body = w->exec_len - 4;	/* portal name, its NUL, the row limit */
	__u64		key,
				zero;

	b->exec_key = 0;
	b->exec_limited = 0;
	if (!w->exec_off || body < 5 || (__u64) off + 1 + w->exec_len > w->c.n)
		return;
	/* (straight from the read, not through chunk_bytes: a call of it per site costs the verifier a walk) */
	if (bpf_probe_read_user(name, 8, (void *) (w->c.buf + off + 5)) ||
		bpf_probe_read_user(rows, 4, (void *) (w->c.buf + off + 1 + w->exec_len - 4)))
		return;
	/*
	 * The name's bytes up to its NUL, without a branch per byte (the
	 * verifier would walk each combination): the lowest byte flagged zero
	 * is the first zero byte, and the mask keeps the bytes below it.
	 */
	__builtin_memcpy(&key, name, 8);
	zero = (key - 0x0101010101010101ULL) & ~key & 0x8080808080808080ULL;
	if (zero)
		key &= ((zero & -zero) >> 7) - 1;
	b->exec_key = key;
	b->exec_limited = (rows[0] | rows[1] | rows[2] | rows[3]) != 0;
	if (b->susp && key == b->susp_key && w->units == 1 && !w->q_len && b->unit_start && !b->multi && !b->batch)
		b->ev.flags |= PGS_F_CONTINUES;
}

/*
 * A read with at least one statement to execute: the one before ends, and
 * this one's is timed here, or by the executor probes when it holds several.
 */
__noinline int
read_statements(struct backend *b, struct walk *w, __u32 first_off, __u64 now)
{
	bool		several_q = false;
	__u64		len;

	if (!b || !w)
		return 0;
	/* what the previous read brought is over: the backend asked for more when it was done */
	if (b->unit_start)
	{
		/* (not flushed since: its CommandComplete goes out with what comes next) */
		if (!b->batch && !b->multi && !b->unit_sent)
			b->unanswered++;
		end_read(b, b->last_wait_ns ? b->last_wait_ns : now, 0);
	}
	b->last_wait_ns = 0;
	/* a statement whose first messages came in an earlier read began then */
	if (b->begun && b->begun <= now)
		now = b->begun;
	b->begun = 0;

	/* the messages travel with the statement: its text for user space (all of a read of several) */
	len = w->units >= 2 ? w->c.n : (w->c.n < capture_len ? w->c.n : capture_len);
	if (len > PGS_MAX_REQ)
		len = PGS_MAX_REQ;
	barrier_var(len);
	if (b->multi)
	{
		/* a pipeline goes on: the executor probes time what this read brought */
		several(b, w->tgid, w->units, now, w->c.buf, w->c.n, first_off, false);
		return 0;
	}
	if (b->chunk_base == 0 && len <= b->chunk_have)
		b->ev.req_len = bpf_probe_read_kernel(b->ev.req, len, b->chunk) ? 0 : len;
	else
		b->ev.req_len = bpf_probe_read_user(b->ev.req, len, (void *) w->c.buf) ? 0 : len;
	b->ev.req_off = first_off;
	b->ev.read_seq = b->read_seq;
	b->ev.lead = b->lead;
	if (w->units == 1 && w->q_len && w->q_off == 0)
	{
		struct semi_scan s = {.b = b, .from = 5, .to = w->q_len > 4 ? w->q_len - 4 : 0};
		int			found;

		if (s.to > b->ev.req_len)
			s.to = b->ev.req_len;
		if ((found = semi_short(b, s.from, s.to)) < 0)
		{
			bpf_loop(PGS_MAX_REQ / 8, semi_one, &s, 0);
			found = s.found;
		}
		several_q = found;		/* perhaps several statements: let the executor count them */
	}
	if (w->units >= 2 || several_q)
	{
		/*
		 * With min_ns, a batch that is this read alone, up to its only Sync, is
		 * quiet: its bytes wait in the backend's buffer (nothing reads over
		 * them before its ReadyForQuery) to go to user space only if it is
		 * slow or fails.  Not a simple Query: user space counts those.
		 */
		bool		quiet = min_ns && !w->q_len && first_off == 0 && !w->skip && !w->part &&
			w->last == PGS_FE_SYNC && w->syncs == 1 && !b->lead && !b->stream;

		b->ev.flags = w->c.n > len ? PGS_F_TRUNCATED : 0;
		several(b, w->tgid, w->units, now, w->c.buf, w->c.n, first_off, quiet);
		return 0;
	}
	start_unit(b, w->tgid, now, w->c.n > len ? PGS_F_TRUNCATED : 0);
	return 0;
}

/*
 * The first bytes of a read (most often its whole request), read once for
 * input()'s first-byte test, the capture and keep_net's request start,
 * instead of a read of the backend's memory for each.  Out of line: its
 * branch ends at the return, so the verifier walks the decoder once, not
 * twice.  Call before input().
 */
static __noinline void
read_head(struct backend *b, __u64 buf, __u32 n)
{
	__u32		len = n < PGS_CHUNK ? n : PGS_CHUNK;

	barrier_var(len);
	/* (len is at most PGS_CHUNK already: the mask is for the verifier, which may see the unbounded n) */
	if (len == 0 || bpf_probe_read_user(b->chunk, len & (PGS_CHUNK * 2 - 1), (void *) buf))
		len = 0;
	b->chunk_base = 0;
	b->chunk_have = len;
}

/* bytes the backend read: plain from its socket, or the plain text of a TLS record */
__noinline int
input(struct backend *b, __u32 tgid, __u64 buf, __u32 n, __u64 now)
{
	/* (its headers come from the chunk, which read_head filled with the read's head) */
	struct walk w = {.c = {.b = b, .buf = buf, .n = n}, .tgid = tgid};
	__u32		first_off;
	__u8		first;

	if (!b || b->desync || n == 0)
		return 0;
	first = b->chunk_have ? b->chunk[0] : 0;
	/* a read during a quiet batch may have overwritten its bytes: user space will say they were lost */
	b->quiet_n = 0;
	b->tail_at = 0;
	b->read_seq++;
	b->lead = 0;
	idle(b, now);
	/* the rest of a message begun in an earlier read */
	if (b->skip)
	{
		if (b->skip >= n)
		{
			b->skip -= n;
			if (b->stream)
				send_read(b, tgid, buf, n, n);
			return 0;
		}
		w.off = b->skip;
		b->skip = 0;
	}
	else if (b->hdr_have && b->hdr_have < 5)
	{
		if (complete_header(b, &w))
			return 0;
	}
	else if (!b->unit_start && !b->multi && !b->batch &&
			 (b->chunk_have || !bpf_probe_read_user(&first, 1, (void *) buf)) && first == 0)
	{
		/* no message type at a request's start: a packet of the connection's start */
		startup_packet(b, buf, n);
		return 0;
	}
	else if (first >= 0x14 && first <= 0x17)
	{
		/* a TLS record on the socket: this connection is read through be_tls_read */
		b->tls = 1;
		return 0;
	}
	first_off = w.off;
	/* the most common read, one whole simple Query, from its header in the chunk; else the walk */
	if (w.off == 0 && first == PGS_FE_QUERY && !b->ign_sync && b->chunk_base == 0 && b->chunk_have >= 5 &&
		n == 1 + pgs_be32(&b->chunk[1]) &&
		n >= 5)
	{
		w.units = 1;
		w.q_len = n;
		w.last = PGS_FE_QUERY;
		w.off = n;
	}
	else if (!w.bad)
		bpf_loop(PGS_MAX_MSGS, walk_one, &w, 0);
	if (w.bad || (w.off < n && !w.part))
	{
		lost_track(b);
		return 0;
	}
	if (w.part)
		keep_header_part(b, &w);
	b->skip = w.skip;
	if (w.units == 0)
	{
		/* a read that prepares or binds for a later one: its texts go to user space */
		if (w.binds || b->stream)
			send_read(b, tgid, buf, n, first_off);
		/* and its statement's time begins here (the Execute comes later) */
		if (!b->begun && !b->unit_start && !b->multi && !b->batch)
			b->begun = now;
		b->last_wait_ns = 0;
		return 0;
	}
	/*
	 * A read whose request goes on in the next one (no Sync, Flush or Query
	 * last) may bind what the next read executes: its texts go to user
	 * space whatever becomes of its own statement.
	 */
	if ((w.binds && (w.skip || w.part || (w.last != PGS_FE_SYNC && w.last != PGS_FE_FLUSH && w.last != PGS_FE_QUERY))) ||
		(b->stream && w.units < 2))
		send_read(b, tgid, buf, n, first_off);
	read_statements(b, &w, first_off, now);
	/* (last: the verifier walks what follows a call once per state it returns in) */
	last_execute(b, &w);
	return 0;
}

/* an ErrorResponse anywhere among the messages of a send (a pipeline's answers come together) */
struct send_walk
{
	struct chunked c;			/* the send */
	__u32		off;
	__u32		error;
	__u32		done;			/* CommandComplete, PortalSuspended, EmptyQueryResponse before the error */
};

/*
 * The SQLSTATE of the ErrorResponse at addr: its 'C' field (after the
 * severities 'S' and 'V', whose length depends on the server's language).
 */
static __noinline void
sqlstate_at(struct backend *b, __u64 addr)
{
	__u8		m[96] = {};
	bool		start = true;

	if (bpf_probe_read_user(m, sizeof(m), (void *) addr) || m[0] != PGS_BE_ERROR)
		return;
	for (int i = 5; i < 90; i++)
	{
		if (start)
		{
			if (m[i] == 'C')
			{
				for (int k = 0; k < 5; k++)
					b->ev.sqlstate[k] = (char) m[i + 1 + k];
				b->ev.sqlstate[5] = '\0';
				return;
			}
			if (m[i] == 0)
				return;
			start = false;
		}
		else if (m[i] == 0)
			start = true;
	}
}

static long
send_one(__u32 i, struct send_walk *w)
{
	__u8		h[8] = {};
	__u32		len;

	if (w->off + 6 > w->c.n || chunk_bytes(&w->c, w->off, h, 6))
		return 1;
	len = pgs_be32(&h[1]);
	if (len < 4)
		return 1;
	if (h[0] == PGS_BE_ERROR && h[5] == PGS_ERR_FIELD_SEVERITY)
	{
		w->error = 1;
		return 1;				/* at w->off */
	}
	if (h[0] == PGS_BE_COMMAND_COMPLETE || h[0] == PGS_BE_PORTAL_SUSPENDED || h[0] == PGS_BE_EMPTY_QUERY)
		w->done++;
	w->off += 1 + len;
	return 0;
}

/*
 * sent_error_or_ready out of line: its copy of a short send (256 bytes of
 * stack) is not in output()'s frame, which the verifier adds to those of
 * the calls output() makes (at most 512 bytes in all).
 */
static __noinline bool
error_or_ready(__u64 buf, __u32 n, bool *ready)
{
	return sent_error_or_ready(buf, n, ready);
}

/*
 * A round trip's answer, ending with ReadyForQuery, after an Execute with a
 * row limit or while a portal is suspended: PortalSuspended just before it
 * leaves the Execute's portal suspended; its completion, or the end of the
 * transaction (status 'I': portals are dropped), ends that.
 */
static __noinline void
portal_state(struct backend *b, __u64 buf, __u32 n)
{
	__u8		t[16] = {};

	if (n < 11 || bpf_probe_read_user(t, 11, (void *) (buf + n - 11)))
	{
		b->susp = 0;
		return;
	}
	/* PortalSuspended ('s', length 4), then ReadyForQuery ('Z', length 5, the status) */
	if (b->exec_limited && t[0] == PGS_BE_PORTAL_SUSPENDED && t[1] == 0 && t[2] == 0 && t[3] == 0 && t[4] == 4)
	{
		b->susp = 1;
		b->susp_key = b->exec_key;
	}
	else if ((b->exec_limited && b->exec_key == b->susp_key) || t[10] == 'I')
		b->susp = 0;
}

/* the server's one-byte answer at buf to an SSLRequest or GSSENCRequest: whether encryption follows */
static __always_inline void
encryption_answer(struct backend *b, __u64 buf)
{
	__u8		a = 0;

	bpf_probe_read_user(&a, 1, (void *) buf);
	if (a == PGS_BE_SSL_YES && b->ssl_requested)
		b->tls = 1;
	if (a == PGS_BE_GSS_YES && b->gss_requested)
	{
		b->gss = 1;
		count(PGS_C_GSSAPI);
	}
	b->ssl_requested = b->gss_requested = 0;
}

/* the probe-timed statements of a read go on with its next Sync group, from its last ReadyForQuery */
static __always_inline void
probed_tail(struct backend *b)
{
	b->multi = 1;
	b->multi_mark = b->tail_at;
	b->tail_at = 0;
}

/*
 * The backend answers its last read's next Sync group (or simple Query)
 * without having read: it began when the one before ended, at tail_at.
 * Executor-timed statements go on (the probes time them); a batch's next
 * group is a batch event of its own (PGS_EV_BATCH's group).
 */
static __noinline void
next_group(struct backend *b, __u32 tgid)
{
	__u64		at = b->tail_at;

	if (b->tail_multi)
	{
		probed_tail(b);
		return;
	}
	b->tail_at = 0;
	b->batch = 1;
	b->batch_units = 0;			/* (user space knows the group's statements from the read's bytes) */
	b->batch_done = 0;
	b->ev.group++;
	b->stream = 1;
	start_unit(b, tgid, at, b->ev.flags & PGS_F_TRUNCATED);
}

/*
 * n bytes the backend sent: an ErrorResponse flags the open statement,
 * ReadyForQuery ends it and the request; a one-byte answer to SSLRequest or
 * GSSENCRequest says whether encryption follows.  Returns whether they end
 * with ReadyForQuery, -1 when it did not look.
 */
static __noinline int
output(struct backend *b, __u32 tgid, __u64 buf, __u32 n, __u64 now)
{
	bool		ready,
				error;
	__u32		err_off = 0,	/* where the ErrorResponse starts */
				walk = 0;

	if (n == 1 && (b->ssl_requested || b->gss_requested))
	{
		encryption_answer(b, buf);
		return 0;
	}
	if (n < 6 || (!b->unit_start && !b->multi && !b->batch && !b->desync && !b->begun && !b->ign_sync && !b->tail_at))
		return -1;
	if (b->tail_at && !b->unit_start && !b->multi && !b->batch)
		next_group(b, tgid);
	error = error_or_ready(buf, n, &ready);
	/*
	 * Messages to walk for an ErrorResponse: a batch's, to count too how many
	 * statements the server got through before it; a pipeline's the probes
	 * time; and a short send of a statement's (an error is flushed in a send
	 * of its own but for what was buffered before it, a RowDescription).
	 * The server flushes an ErrorResponse at once (send_message_to_frontend),
	 * so a send holds one only as its last message, and one that ends with
	 * ReadyForQuery holds none: not walked.  (Its CommandCompletes are not
	 * counted then; batch_done matters only up to an error.)
	 */
	if (!ready)
		walk = b->batch ? ((b->ev.flags & PGS_F_ERROR) ? 0 : 2048) :
			error ? 0 : b->multi ? 512 : (n <= 1024 && b->unit_start) ? 64 : 0;
	if (walk)
	{
		struct send_walk sw = {.c = {.b = b, .buf = buf, .n = n}};

		b->chunk_have = 0;		/* (a fresh copy: the send's) */
		bpf_loop(walk, send_one, &sw, 0);
		error = sw.error;
		err_off = sw.off;
		if (b->batch)
		{
			/* the answers of statements ended before the batch come first: not its own */
			__u32		theirs = sw.done < b->unanswered ? sw.done : b->unanswered;

			b->unanswered -= theirs;
			b->batch_done += sw.done - theirs;
			if (error)
				b->ev.flags |= PGS_F_ERROR;
		}
		else if (sw.done > b->unanswered)
			b->unit_sent = 1;
	}
	else if (n < 8192)
		b->unit_sent = 1;
	/* a send flushes all the backend had buffered (but for a long answer's output buffer's worth) */
	if (n < 8192)
		b->unanswered = 0;
	if (error)
		sqlstate_at(b, buf + err_off);
	if (error && b->unit_start && !b->multi)
		b->ev.flags |= PGS_F_ERROR;
	if (error && b->multi && !b->unit_start)
	{
		/* an error before the executor got the statement (parse, plan, bind): one statement, failed */
		b->ev.unit = (b->qindex << 16) | (b->unit_index & 0xffff);
		start_unit(b, tgid, b->multi_mark ? b->multi_mark : now, PGS_F_EXECUTOR | (b->ev.flags & PGS_F_TRUNCATED));
		end_unit(b, now, PGS_F_ERROR);
		b->unit_index++;
		b->multi_mark = now;
	}
	if (error)
	{
		/*
		 * The statement, or the batch, ends with its error, not when the
		 * client has seen it and sent its Sync; what the server reads up to
		 * that Sync it discards.
		 */
		b->ign_sync = 1;
		if (!ready && b->unit_start && !b->multi)
		{
			b->tail_batch = b->batch;
			end_read(b, now, PGS_F_ERROR);
		}
	}
	if (!ready)
		return 0;
	b->ign_sync = 0;
	if (b->exec_limited || b->susp)
		portal_state(b, buf, n);
	b->desync = 0;
	b->skip = 0;
	b->hdr_have = 0;
	b->stream = 0;
	b->begun = 0;
	/* the read may hold more Sync groups, answered without a read (tail_at) */
	b->tail_at = b->batch || b->multi || b->tail_batch ? now : 0;
	b->tail_multi = b->multi;
	b->tail_batch = 0;
	/* an open statement ends here (one timed by the probes only if an error escaped them) */
	if (b->multi)
		end_unit(b, now, PGS_F_ERROR);
	else
		end_read(b, now, 0);
	b->multi = 0;
	return 1;
}

/* end of input: whatever the last read brought ended when the backend asked for more */
static __always_inline void
closed(struct backend *b)
{
	if (!b->multi)
		end_read(b, b->last_wait_ns, 0);
	b->stream = 0;
}

static __always_inline struct backend *
backend_of(struct task_struct *task, bool create)
{
	if (!traced_task(task))
		return NULL;
	return bpf_task_storage_get(&backends, task, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/*
 * keep_net's part of a read and of a send, out of line: a function call's
 * branches end at its return, so the verifier need not walk the decoder
 * once for each of them.
 */
static __noinline void
net_recv_part(struct backend *b, int ret, __u64 now)
{
	net_received(&b->net, ret, b->chunk_have ? b->chunk[0] : 0, now);
}

/* keep_net's part of a TLS read (its plain text's first byte), out of line as above */
static __noinline void
tls_request_read(struct backend *b, __u64 now)
{
	net_request(&b->net, b->chunk_have ? b->chunk[0] : 0, now);
	net_publish(&b->net);
}

static __noinline void
net_send_part(struct backend *b, __u64 buf, int ret, int ready, __u64 now)
{
	net_socket(&b->net, buf, ret, true, ready, now);
}

/* ---------- plain connections: the socket tracepoints ---------- */

SEC("tp_btf/sock_recv_length")
int
BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	struct task_struct *task;
	struct backend *b;
	__u64		buf,
				now;

	if (flags & PGS_MSG_PEEK)
		return 0;
	task = bpf_get_current_task_btf();
	if (ret <= 0)
	{
		b = backend_of(task, false);
		if (!b)
			return 0;
		/* the connection's end: its last reads' bytes are published (net_received) */
		if (keep_net && ret != -11 && ret != -4)
			net_publish(&b->net);
		/* the backend asks for more: what it read is all answered */
		b->tail_at = 0;
		if (!timing(b))
			return 0;
		/* a read that found nothing: the backend is done with what it had (TLS: its record layer's read) */
		if (!b->last_wait_ns)
			b->last_wait_ns = bpf_ktime_get_ns();
		/* the client closed or reset the connection (in a pipeline, perhaps): what ran is over (TLS: tls_read) */
		if (!b->tls && (ret == 0 || (ret != -11 && ret != -4)))	/* but EAGAIN, EINTR */
			closed(b);
		return 0;
	}
	b = backend_of(task, true);
	if (!b)
		return 0;
	/* (a TLS connection's socket bytes are records: counted, read in plain text at be_tls_read) */
	if (b->tls || b->gss)
	{
		if (keep_net)
		{
			b->chunk_have = 0;	/* (records, not messages: no first byte) */
			net_recv_part(b, ret, bpf_ktime_get_ns());
		}
		return 0;
	}
	if (!(buf = syscall_buf(task, PGS_NR_RECVFROM)))
		return 0;
	now = bpf_ktime_get_ns();
	read_head(b, buf, ret);
	if (keep_net)
		net_recv_part(b, ret, now);
	input(b, task->tgid, buf, ret, now);
	return 0;
}

SEC("tp_btf/sock_send_length")
int
BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct backend *b;
	__u64		buf,
				now;
	int			ready = -1;

	if (ret <= 0)
		return 0;
	b = backend_of(task, false);
	if (!b)
		return 0;
	/* sends outside a statement matter to keep_net alone */
	if (!keep_net && (b->tls || b->gss ||
					  (ret > 1 && !b->unit_start && !b->multi && !b->batch && !b->desync && !b->begun && !b->ign_sync &&
					   !b->tail_at)))
		return 0;
	buf = syscall_buf(task, PGS_NR_SENDTO);
	if (!buf)
		return 0;
	now = bpf_ktime_get_ns();
	if (!b->tls && !b->gss)
		ready = output(b, task->tgid, buf, ret, now);
	if (keep_net)
		net_send_part(b, buf, ret, ready, now);
	return 0;
}

/* ---------- TLS connections: the server's plain text, before encryption ---------- */

/*
 * What a TLS read returned (ret bytes of plain text at buf; < 0: nothing
 * yet, EAGAIN): from the uprobe in secure_read just past its call of
 * be_tls_read (on_tls_read_done, pgs_tls_read_site), else be_tls_read's
 * entry and return
 */
static __always_inline void
tls_read(struct backend *b, struct task_struct *task, __u64 buf, long ret)
{
	if (ret <= 0)
	{
		b->tail_at = 0;
		if (timing(b) && !b->last_wait_ns)
			b->last_wait_ns = bpf_ktime_get_ns();
		if (ret == 0 && timing(b))
			closed(b);
	}
	else
	{
		__u64		now = bpf_ktime_get_ns();

		read_head(b, buf, (__u32) ret);
		if (keep_net)
			tls_request_read(b, now);
		input(b, task->tgid, buf, ret, now);
	}
}

/* the register that holds secure_read's buffer at on_tls_read_done (its encoding number) */
const volatile __u32 tls_ptr_reg = 0;

/* secure_read past "call be_tls_read; test; js": rax the result, tls_ptr_reg the buffer */
SEC("uprobe")
int
BPF_KPROBE(on_tls_read_done)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct backend *b = backend_of(task, true);
	__u64		buf;

	if (!b)
		return 0;
	if (!(buf = pgs_saved_reg(ctx, tls_ptr_reg)))
		return 0;
	b->tls = 1;
	tls_read(b, task, buf, (long) PT_REGS_RC(ctx));
	return 0;
}

/* ssize_t be_tls_read(Port *port, void *ptr, size_t len, int *waitfor): where on_tls_read_done cannot be */
SEC("uprobe")
int
BPF_KPROBE(on_tls_read, void *port, void *ptr)
{
	struct backend *b = backend_of(bpf_get_current_task_btf(), true);

	if (b)
	{
		b->tls = 1;
		b->tls_buf = (__u64) ptr;
	}
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_tls_read_ret, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct backend *b = backend_of(task, false);

	if (!b || !b->tls_buf)
		return 0;
	tls_read(b, task, b->tls_buf, ret);
	b->tls_buf = 0;
	return 0;
}

/* keep_net's part of a TLS write, out of line: the verifier counts the stack of output()'s calls on top */
static __noinline void
tls_answer_sent(struct backend *b, __u64 buf, __u64 len, int ready, __u64 now)
{
	net_answer_sent(&b->net, buf, len, ready, now);
	net_publish(&b->net);
}

/* ssize_t be_tls_write(Port *port, void *ptr, size_t len, int *waitfor) */
SEC("uprobe")
int
BPF_KPROBE(on_tls_write, void *port, void *ptr, __u64 len)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct backend *b = backend_of(task, true);
	__u64		now;
	int			ready;

	if (!b || len == 0)
		return 0;
	b->tls = 1;
	now = bpf_ktime_get_ns();
	ready = output(b, task->tgid, (__u64) ptr, len > 0x7fffffff ? 0x7fffffff : len, now);
	if (keep_net)
		tls_answer_sent(b, (__u64) ptr, len, ready, now);
	return 0;
}

/* ---------- the executor probes: raised only for multi-statement reads (or by --split) ---------- */

static __always_inline struct backend *
executor_backend(void)
{
	struct backend *b = bpf_task_storage_get(&backends, bpf_get_current_task_btf(), 0, 0);

	/* the next Sync group (or Query) of a read of several, which the probes timed */
	if (b && b->tail_at && b->tail_multi && !b->multi)
		probed_tail(b);
	return b;
}

SEC("usdt")
int
BPF_USDT(on_query_start)
{
	struct backend *b = executor_backend();

	/* a simple Query begins: its statements are counted from 0 */
	if (b && b->multi)
	{
		if (b->unit_index || b->depth)
			b->qindex++;
		b->unit_index = 0;
		b->depth = 0;
	}
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_execute_start)
{
	struct backend *b = executor_backend();
	__u64		now;

	if (!b)
		return 0;
	now = bpf_ktime_get_ns();
	if (split)
		b->phase_start = now;
	if (!b->multi || b->depth++ > 0)
		return 0;
	b->ev.unit = (b->qindex << 16) | (b->unit_index & 0xffff);
	/*
	 * The statement's messages began when the one before it ended (or the
	 * read came): its Parse and Bind, then PortalRun, as the server logs them.
	 */
	start_unit(b, bpf_get_current_pid_tgid() >> 32, b->multi_mark && b->multi_mark <= now ? b->multi_mark : now,
			   PGS_F_EXECUTOR | (b->ev.flags & PGS_F_TRUNCATED));
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_execute_done)
{
	struct backend *b = executor_backend();
	__u64		now;

	if (!b)
		return 0;
	now = bpf_ktime_get_ns();
	if (split && b->phase_start)
	{
		b->pend_exec += now - b->phase_start;
		if (!b->exec_at)
			b->exec_at = b->phase_start;
		b->phase_start = 0;
	}
	if (!b->multi || b->depth == 0 || --b->depth > 0)
		return 0;
	end_unit(b, now, 0);
	b->unit_index++;
	b->multi_mark = now;
	return 0;
}

SEC("usdt")
int
BPF_USDT(on_abort)
{
	struct backend *b = executor_backend();

	/* an error left PortalRun without its done probe: the statement failed here */
	if (b && b->multi && b->unit_start)
	{
		b->multi_mark = bpf_ktime_get_ns();
		end_unit(b, b->multi_mark, PGS_F_ERROR);
		b->unit_index++;
		b->depth = 0;
	}
	return 0;
}

/* ---- --split: parse and plan times from the USDT probes ---- */

static __always_inline void
phase_start(void)
{
	struct backend *b = executor_backend();

	if (b && (b->unit_start || b->multi))
		b->phase_start = bpf_ktime_get_ns();
}

static __always_inline void
phase_done(int which)
{
	struct backend *b = executor_backend();
	__u64		d;

	if (!b || !b->phase_start)
		return;
	d = bpf_ktime_get_ns() - b->phase_start;
	if (which == 0)
	{
		b->pend_parse += d;
		if (!b->parse_at)
			b->parse_at = b->phase_start;
	}
	else
	{
		b->pend_plan += d;
		if (!b->plan_at)
			b->plan_at = b->phase_start;
	}
	b->phase_start = 0;
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
 * The wait event of the backend task, which is leaving the CPU: the word
 * my_wait_event_info points to, the pointer read once per process (it is
 * set to its PGPROC's word before the backend's first statement and kept
 * until its exit) and remembered with the process's start time, so that a
 * later backend with the same pid reads its own.
 */
static __always_inline __u32
wait_event_of(struct breakdown_clock *c, struct task_struct *task)
{
	__u32		wei = 0;

	if (!my_wait_event_info_addr)
		return 0;
	if (!c->wei_addr || c->wei_task != task->start_time)
	{
		c->wei_addr = 0;
		bpf_probe_read_user(&c->wei_addr, sizeof(c->wei_addr), (const void *) my_wait_event_info_addr);
		c->wei_task = task->start_time;
	}
	if (c->wei_addr)
		bpf_probe_read_user(&wei, sizeof(wei), (const void *) c->wei_addr);
	return wei;
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
	__u64		now = 0;
	__u32		pid;
	struct breakdown_clock *c;

	/* (every switch of the machine comes here: the clock is read only for a traced backend's) */
	if (traced_task(prev) && (pid = prev->tgid, c = bpf_map_lookup_elem(&clocks, &pid)) && c->open && c->on_start)
	{
		/* still runnable: waiting for a CPU, whatever the wait event says */
		bool		runq = preempt || prev->__state == 0;

		now = bpf_ktime_get_ns();
		c->cpu_ns += now - c->on_start;
		c->on_start = 0;
		c->off_class = runq ? PGS_RUNQUEUE : wait_class_slot(wait_event_of(c, prev));
		c->off_start = now;
	}
	if (traced_task(next) && (pid = next->tgid, c = bpf_map_lookup_elem(&clocks, &pid)) && c->open && c->off_start)
	{
		__u32		slot = c->off_class < PGS_WAIT_CLASSES ? c->off_class : 0;

		if (!now)
			now = bpf_ktime_get_ns();
		c->off_ns[slot] += now - c->off_start;
		c->off_start = 0;
		c->on_start = now;
	}
	return 0;
}
