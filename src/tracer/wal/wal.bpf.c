// SPDX-License-Identifier: GPL-2.0
/*
 * wal.bpf.c - WAL records by resource manager and record type and per
 * backend, with their bytes (uprobe on the exported XLogInsertRecord: the
 * record header is the first XLogRecData; counted when it returns a
 * position, as PostgreSQL counts its own WalUsage), flush waits (XLogFlush)
 * and checkpoints (USDT checkpoint__start/done).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "wal.h"
#include "filter.bpf.h"
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 off_rdata_data = 0;
const volatile __u32 off_tot_len = 0;
const volatile __u32 off_info = 0;
const volatile __u32 off_rmid = 0;
const volatile __u64 mydatabaseid_addr = 0;	/* &MyDatabaseId, for filter_db */
const volatile __u32 filter_db = 0;			/* 0: every database */
const volatile __u64 checkpointstats_addr = 0;
const volatile __u64 nbuffers_addr = 0;
const volatile __u32 off_bufs_written = 0;
const volatile __u32 off_segs_added = 0;
const volatile __u32 off_segs_removed = 0;
const volatile __u32 off_segs_recycled = 0;

struct task_state
{
	__u32		decided;
	__u32		ignored;
	__u32		tot_len;
	__u8		rmid;
	__u8		info;
	__u8		pending;
	__u8		pad;
	__u64		flush_start;
};

PGS_TASK_STATE(struct task_state)

PGS_MAP(records, BPF_MAP_TYPE_PERCPU_HASH, 8192, struct pgs_wal_key, struct pgs_wal_stats);

PGS_MAP(flushes, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, struct pgs_flush_stats);

struct
{
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline void
add(struct pgs_wal_key *k, __u32 bytes)
{
	struct pgs_wal_stats z = {};
	struct pgs_wal_stats *v = pgs_lookup_or_init(&records, k, &z);

	if (!v)
		return;
	v->records++;
	v->bytes += bytes;
}

/* XLogInsertRecord(XLogRecData *rdata, XLogRecPtr fpw_lsn, uint8 flags, int num_fpi, bool topxid_included) */
SEC("uprobe")
int
BPF_KPROBE(on_insert, void *rdata)
{
	struct task_state *s = state();
	__u64		hdr = 0;

	if (!s)
		return 0;
	s->pending = 0;
	if (filter_db)
	{
		__u32		db = 0;

		/* a backend writes WAL for its own database (and shared catalogs) */
		if (bpf_probe_read_user(&db, sizeof(db), (void *) mydatabaseid_addr) || db != filter_db)
			return 0;
	}
	if (bpf_probe_read_user(&hdr, sizeof(hdr), rdata + off_rdata_data) || !hdr)
		return 0;
	bpf_probe_read_user(&s->tot_len, 4, (void *) (hdr + off_tot_len));
	bpf_probe_read_user(&s->info, 1, (void *) (hdr + off_info));
	bpf_probe_read_user(&s->rmid, 1, (void *) (hdr + off_rmid));
	s->pending = 1;
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_insert_ret, __u64 end_lsn)
{
	struct task_state *s = state();
	struct pgs_wal_key k = {};

	/* InvalidXLogRecPtr: the caller recomputes the record and inserts again */
	if (!s || !s->pending || end_lsn == 0)
		return 0;
	s->pending = 0;
	k.rmid = s->rmid;
	k.info = s->info & 0xF0;	/* XLR_INFO_MASK bits are flags, not the type */
	add(&k, s->tot_len);
	k.rmid = 0xFF;				/* per backend: every record of it */
	k.info = 0;
	k.pid = bpf_get_current_pid_tgid() >> 32;
	add(&k, s->tot_len);
	return 0;
}

SEC("uprobe")
int
BPF_KPROBE(on_flush)
{
	struct task_state *s = state();

	if (s)
		s->flush_start = bpf_ktime_get_ns();
	return 0;
}

SEC("uretprobe")
int
BPF_KRETPROBE(on_flush_ret)
{
	struct task_state *s = state();
	__u32		z = 0;
	struct pgs_flush_stats *f;
	__u64		d;

	if (!s || !(d = pgs_span_end(&s->flush_start)) || !(f = bpf_map_lookup_elem(&flushes, &z)))
		return 0;
	PGS_TIMING_ADD(f, count, d, PGS_WAL_SLOTS);
	return 0;
}

static __always_inline void
checkpoint_event(struct pt_regs *ctx, __u32 kind, int nargs)
{
	struct pgs_wal_event e = {};
	long		v;

	if (!state())
		return;
	e.kind = kind;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ts_ns = bpf_ktime_get_ns();
	for (int i = 0; i < 5; i++)
	{
		if (i >= nargs)
			break;
		if (!bpf_usdt_arg(ctx, i, &v))
			e.args[i] = v;
	}
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
}

SEC("usdt")
int
BPF_USDT(on_checkpoint_start)
{
	checkpoint_event(ctx, PGS_WAL_EV_CHECKPOINT_START, 1);
	return 0;
}

/*
 * The end of a checkpoint: CreateCheckPoint returns.  (Its USDT probe
 * checkpoint__done takes RIP-relative memory operands that libbpf 1.1
 * cannot decode, so the numbers are read from CheckpointStats instead.)
 */
SEC("uretprobe")
int
BPF_KRETPROBE(on_checkpoint_ret)
{
	struct pgs_wal_event e = {};

	if (!state())
		return 0;
	e.kind = PGS_WAL_EV_CHECKPOINT_DONE;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ts_ns = bpf_ktime_get_ns();
	if (checkpointstats_addr)
	{
		bpf_probe_read_user(&e.args[0], 4, (void *) (checkpointstats_addr + off_bufs_written));
		bpf_probe_read_user(&e.args[2], 4, (void *) (checkpointstats_addr + off_segs_added));
		bpf_probe_read_user(&e.args[3], 4, (void *) (checkpointstats_addr + off_segs_removed));
		bpf_probe_read_user(&e.args[4], 4, (void *) (checkpointstats_addr + off_segs_recycled));
	}
	if (nbuffers_addr)
		bpf_probe_read_user(&e.args[1], 4, (void *) nbuffers_addr);
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	return 0;
}
