/*
 * wal.c - "pgscope wal": WAL records by resource manager and record type,
 * WAL per backend, flush waits and checkpoints of a running server, from
 * wal.bpf.c.  WAL bytes per statement are in "pgscope queries
 * --breakdown".
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "hist.h"
#include "names.h"
#include "tracer.h"
#include "util.h"
#include "wal.h"
#include "wal.skel.h"

/* resource managers in PostgreSQL 15's rmgrlist.h order */
static const char *const rmgr_names[] = {
	"XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace", "MultiXact", "RelMap",
	"Standby", "Heap2", "Heap", "Btree", "Hash", "Gin", "Gist", "Sequence", "SPGist", "BRIN",
	"CommitTs", "ReplicationOrigin", "Generic", "LogicalMessage"
};

/* the record types people meet most; others print as their info byte */
static const char *
record_type(int rmid, int info)
{
	static const char *const xlog[16] = {"CHECKPOINT_SHUTDOWN", "CHECKPOINT_ONLINE", "NOOP", "NEXTOID", "SWITCH",
		"BACKUP_END", "PARAMETER_CHANGE", "RESTORE_POINT", "FPW_CHANGE", "END_OF_RECOVERY", "FPI_FOR_HINT", "FPI",
		NULL, "OVERWRITE_CONTRECORD", NULL, NULL};
	static const char *const xact[8] = {"COMMIT", "PREPARE", "ABORT", "COMMIT_PREPARED", "ABORT_PREPARED",
	"ASSIGNMENT", "INVALIDATIONS", NULL};
	static const char *const heap[8] = {"INSERT", "DELETE", "UPDATE", "TRUNCATE", "HOT_UPDATE", "CONFIRM",
	"LOCK", "INPLACE"};
	static const char *const heap2[8] = {"REWRITE", "PRUNE", "VACUUM", "FREEZE_PAGE", "VISIBLE", "MULTI_INSERT",
	"LOCK_UPDATED", "NEW_CID"};
	static const char *const btree[16] = {"INSERT_LEAF", "INSERT_UPPER", "INSERT_META", "SPLIT_L", "SPLIT_R",
		"INSERT_POST", "DEDUP", "DELETE", "UNLINK_PAGE", "UNLINK_PAGE_META", "NEWROOT", "MARK_PAGE_HALFDEAD",
	"VACUUM", "REUSE_PAGE", "META_CLEANUP", NULL};
	static const char *const standby[4] = {"LOCK", "RUNNING_XACTS", "INVALIDATIONS", NULL};
	static char buf[40];
	const char *n = NULL;

	switch (rmid)
	{
		case 0:
			n = xlog[info >> 4];
			break;
		case 1:
			n = xact[(info & 0x70) >> 4];	/* XLOG_XACT_OPMASK; 0x80 flags extra info */
			break;
		case 8:
			n = (info >> 4) < 4 ? standby[info >> 4] : NULL;
			break;
		case 9:
		case 10:
			n = (rmid == 10 ? heap : heap2)[(info & 0x70) >> 4];
			if (n && (info & 0x80))
			{
				snprintf(buf, sizeof(buf), "%s+INIT_PAGE", n);
				return buf;
			}
			break;
		case 11:
			n = btree[info >> 4];
			break;
	}
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "0x%02X", info);
	return buf;
}

typedef struct WalRow
{
	struct pgs_wal_key key;
	uint64_t	records;
	uint64_t	bytes;
} WalRow;

static int
cmp_bytes(const void *a, const void *b)
{
	const WalRow *x = a,
			   *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

static void
fill_row(PgsRows *rows, const void *k, const void *v, int ncpu)
{
	const struct pgs_wal_stats *vals = v;
	WalRow	   *r = pgs_rows_add(rows);

	memcpy(&r->key, k, sizeof(r->key));
	for (int i = 0; i < ncpu; i++)
	{
		r->records += vals[i].records;
		r->bytes += vals[i].bytes;
	}
}

static void
read_flushes(struct wal_bpf *skel, PgsHist *h)
{
	int			ncpu = libbpf_num_possible_cpus();
	struct pgs_flush_stats *v = calloc(ncpu, sizeof(*v));
	uint32_t	z = 0;

	memset(h, 0, sizeof(*h));
	if (v && bpf_map_lookup_elem(bpf_map__fd(skel->maps.flushes), &z, v) == 0)
		for (int c = 0; c < ncpu; c++)
		{
			h->count += v[c].count;
			h->sum_ns += v[c].total_ns;
			if (v[c].max_ns > h->max_ns)
				h->max_ns = v[c].max_ns;
			for (int s = 0; s < PGS_WAL_SLOTS; s++)
				h->slots[s] += v[c].hist[s];
		}
	free(v);
}

typedef struct WalCtx
{
	bool		json;
	uint64_t	checkpoint_start;
} WalCtx;

static int
on_event(void *ctx, void *data, size_t size)
{
	WalCtx	   *c = ctx;
	const struct pgs_wal_event *e = data;
	char		hms[32],
				iso[48];

	if (size < sizeof(*e))
		return 0;
	pgs_mono_to_clock(e->ts_ns, hms, sizeof(hms), iso, sizeof(iso));
	if (e->kind == PGS_WAL_EV_CHECKPOINT_START)
	{
		c->checkpoint_start = e->ts_ns;
		if (c->json)
			printf("{\"event\":\"checkpoint_start\",\"time\":\"%s\",\"pid\":%u,\"flags\":%d}\n", iso, e->pid, e->args[0]);
		else
			printf("%s checkpoint starts (pid %u, flags 0x%x)\n", hms, e->pid, e->args[0]);
	}
	else
	{
		double		ms = c->checkpoint_start ? (e->ts_ns - c->checkpoint_start) / 1e6 : -1;

		if (c->json)
			printf("{\"event\":\"checkpoint_done\",\"time\":\"%s\",\"pid\":%u,\"buffers_written\":%d,\"shared_buffers\":%d,"
				   "\"segments_added\":%d,\"segments_removed\":%d,\"segments_recycled\":%d,\"duration_ms\":%.3f}\n",
				   iso, e->pid, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], ms);
		else
			printf("%s checkpoint done: %d of %d buffers written, WAL segments +%d -%d recycled %d, %.3f ms\n", hms,
				   e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], ms);
		c->checkpoint_start = 0;
	}
	fflush(stdout);
	return 0;
}

static void
print_summary(struct wal_bpf *skel, WalCtx *c)
{
	size_t		n;
	WalRow	   *rows = pgs_map_rows(bpf_map__fd(skel->maps.records), sizeof(struct pgs_wal_key),
									 sizeof(struct pgs_wal_stats), sizeof(WalRow), fill_row, cmp_bytes, &n);
	PgsHist		fl;
	uint64_t	records = 0,
				bytes = 0;
	PgsBuf		b;

	read_flushes(skel, &fl);
	pgs_buf_init(&b);
	if (!c->json)
		printf("\n%-18s %-22s %10s %14s\n", "RESOURCE MANAGER", "RECORD TYPE", "RECORDS", "BYTES");
	for (size_t i = 0; i < n; i++)
	{
		const struct pgs_wal_key *k = &rows[i].key;
		const char *rm = k->rmid < sizeof(rmgr_names) / sizeof(rmgr_names[0]) ? rmgr_names[k->rmid] : "?";

		if (k->pid)
			continue;
		records += rows[i].records;
		bytes += rows[i].bytes;
		if (c->json)
			printf("{\"event\":\"records\",\"rmgr\":\"%s\",\"type\":\"%s\",\"records\":%llu,\"bytes\":%llu}\n", rm,
				   record_type(k->rmid, k->info), (unsigned long long) rows[i].records, (unsigned long long) rows[i].bytes);
		else
			printf("%-18s %-22s %10llu %14llu\n", rm, record_type(k->rmid, k->info),
				   (unsigned long long) rows[i].records, (unsigned long long) rows[i].bytes);
	}
	if (!c->json)
	{
		printf("%-18s %-22s %10llu %14llu\n", "total", "", (unsigned long long) records, (unsigned long long) bytes);
		printf("\n%8s %10s %14s\n", "PID", "RECORDS", "BYTES");
	}
	for (size_t i = 0; i < n; i++)
	{
		if (!rows[i].key.pid)
			continue;
		if (c->json)
			printf("{\"event\":\"backend\",\"pid\":%u,\"records\":%llu,\"bytes\":%llu}\n", rows[i].key.pid,
				   (unsigned long long) rows[i].records, (unsigned long long) rows[i].bytes);
		else
			printf("%8u %10llu %14llu\n", rows[i].key.pid, (unsigned long long) rows[i].records,
				   (unsigned long long) rows[i].bytes);
	}
	if (c->json)
	{
		printf("{\"event\":\"totals\",\"records\":%llu,\"bytes\":%llu,\"flushes\":%llu,\"flush_total_ms\":%.3f,\"flush_max_ms\":%.3f,\"flush_histogram\":",
			   (unsigned long long) records, (unsigned long long) bytes, (unsigned long long) fl.count,
			   fl.sum_ns / 1e6, fl.max_ns / 1e6);
		pgs_hist_json(&b, &fl);
		printf("%s}\n", b.data);
	}
	else
	{
		printf("\nWAL flushes (XLogFlush): %llu, %.3f ms in all, max %.3f ms\n", (unsigned long long) fl.count,
			   fl.sum_ns / 1e6, fl.max_ns / 1e6);
		if (fl.count)
			pgs_hist_print(stdout, &fl, "usecs");
	}
	fflush(stdout);
	pgs_buf_free(&b);
	free(rows);
}

static const char usage_text[] =
	"usage: pgscope wal [--pid PID | -D DATADIR | --bin PATH] [-d DATABASE] [-U USER] [--json] [--duration SEC]\n"
	"  WAL records and bytes by resource manager and record type and per backend, flush waits,\n"
	"  checkpoints (printed as they happen); WAL per statement: pgscope queries --breakdown;\n"
	"  needs root or CAP_BPF+CAP_PERFMON\n";

static const PgsCommand wal_command =
	{"pgscope wal", usage_text, NULL, PGS_CMD_NAMES | PGS_CMD_DATABASE | PGS_CMD_OFFSETS};

/* the program with the offsets it reads by, attached: NULL when WAL records cannot be traced (said) */
static struct wal_bpf *
attach(const PgsTarget *t, unsigned only_db)
{
	struct wal_bpf *skel;

	PGS_SKEL_OPEN(wal, skel, t);
	skel->rodata->off_rdata_data = t->offsets->xlogrecdata_data;
	skel->rodata->off_tot_len = t->offsets->xlogrecord_tot_len;
	skel->rodata->off_info = t->offsets->xlogrecord_info;
	skel->rodata->off_rmid = t->offsets->xlogrecord_rmid;
	skel->rodata->filter_db = only_db;
	skel->rodata->mydatabaseid_addr = t->mydatabaseid;
	skel->rodata->checkpointstats_addr = t->checkpointstats;
	skel->rodata->nbuffers_addr = t->nbuffers;
	skel->rodata->off_bufs_written = t->offsets->ckpt_bufs_written;
	skel->rodata->off_segs_added = t->offsets->ckpt_segs_added;
	skel->rodata->off_segs_removed = t->offsets->ckpt_segs_removed;
	skel->rodata->off_segs_recycled = t->offsets->ckpt_segs_recycled;
	PGS_SKEL_LOAD(wal, skel);
	if (!(skel->links.on_insert = pgs_attach_func(skel->progs.on_insert, t, "XLogInsertRecord", false)) ||
		!(skel->links.on_insert_ret = pgs_attach_func(skel->progs.on_insert_ret, t, "XLogInsertRecord", true)))
	{
		pgs_err("WAL records unavailable: %s does not export XLogInsertRecord", t->bin);
		goto cleanup;
	}
	if (!(skel->links.on_flush = pgs_attach_func(skel->progs.on_flush, t, "XLogFlush", false)) ||
		!(skel->links.on_flush_ret = pgs_attach_func(skel->progs.on_flush_ret, t, "XLogFlush", true)))
		pgs_err("flush waits unavailable: %s does not export XLogFlush", t->bin);
	if (!(skel->links.on_checkpoint_start = pgs_attach_probe(skel->progs.on_checkpoint_start, t, "checkpoint__start")) ||
		!(skel->links.on_checkpoint_ret = pgs_attach_func(skel->progs.on_checkpoint_ret, t, "CreateCheckPoint", true)))
		pgs_err("checkpoints unavailable: no USDT probe postgresql:checkpoint__start or no exported CreateCheckPoint in %s", t->bin);
	PGS_SKEL_ATTACHED(wal, skel);
}

int
cmd_wal(int argc, char **argv)
{
	PgsTracing	tr;
	WalCtx		c = {0};
	struct wal_bpf *skel;
	unsigned	only_db = 0;
	int			rc = EXIT_RUNTIME;

	pgs_command_start(&wal_command, &c, argc, argv, &tr);
	c.json = tr.to.json;
	if (tr.database)
	{
		PgsNames   *names = pgs_names_open(&tr.t, tr.user, tr.dbname);

		only_db = pgs_database_oid(names, tr.database);
		pgs_names_close(names);
		if (!tr.t.mydatabaseid)
			pgs_usage("-d needs the exported global MyDatabaseId, which %s lacks", tr.t.bin);
	}
	if ((skel = attach(&tr.t, only_db)) == NULL)
		return rc;
	{
		PgsLoop		loop = {.rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, &c, NULL)};

		if (loop.rb == NULL)
			pgs_err("cannot open the ring buffer: %s", strerror(errno));
		else
		{
			loop.what = "WAL";
			if (pgs_tracer_loop(&loop, &tr.t, tr.to.duration) == 0)
			{
				print_summary(skel, &c);
				rc = pgs_tracer_status();
			}
		}
		ring_buffer__free(loop.rb);
	}
	PGS_SKEL_DESTROY(wal, skel);
	return rc;
}

/* ---------- what the agent exports: records and bytes per resource manager, flush waits ---------- */

static void *
part_open(const PgsTarget *t)
{
	if (!t->offsets)
	{
		pgs_err("WAL metrics unavailable: no struct offsets for PostgreSQL %d", t->major);
		return NULL;
	}
	return attach(t, 0);
}

/* sums per resource manager; entries of backends that exited are dropped (the map stays bounded) */
static void
part_render(void *p, const char *labels, PgsExpo *e)
{
	struct wal_bpf *skel = p;
	size_t		n;
	WalRow	   *rows = pgs_map_rows(bpf_map__fd(skel->maps.records), sizeof(struct pgs_wal_key),
									sizeof(struct pgs_wal_stats), sizeof(WalRow), fill_row, cmp_bytes, &n);
	uint64_t	rec[256] = {0},
				bytes[256] = {0};
	PgsHist		fl;

	for (size_t i = 0; i < n; i++)
	{
		if (rows[i].key.pid)
		{
			if (!pgs_process_alive((int) rows[i].key.pid))
				bpf_map_delete_elem(bpf_map__fd(skel->maps.records), &rows[i].key);
			continue;
		}
		rec[rows[i].key.rmid] += rows[i].records;
		bytes[rows[i].key.rmid] += rows[i].bytes;
	}
	for (int rm = 0; rm < 256; rm++)
	{
		PgsBuf		l;
		char		id[16];

		if (!rec[rm])
			continue;
		snprintf(id, sizeof(id), "rmgr_%d", rm);
		pgs_buf_init(&l);
		pgs_buf_puts(&l, labels);
		pgs_expo_label(&l, "rmgr", rm < (int) (sizeof(rmgr_names) / sizeof(rmgr_names[0])) ? rmgr_names[rm] : id);
		pgs_expo_sample(e, "pgscope_wal_records_total", "counter", "WAL records inserted, by resource manager.", l.data, (double) rec[rm]);
		pgs_expo_sample(e, "pgscope_wal_bytes_total", "counter", "WAL bytes inserted (record lengths), by resource manager.", l.data, (double) bytes[rm]);
		pgs_buf_free(&l);
	}
	read_flushes(skel, &fl);
	pgs_expo_log2_hist(e, "pgscope_wal_flush_seconds", "Time backends spent in XLogFlush.", labels, fl.slots,
					   PGS_WAL_SLOTS, fl.sum_ns / 1e9);
	free(rows);
}

static void
part_close(void *p)
{
	PGS_SKEL_DESTROY(wal, (struct wal_bpf *) p);
}

const PgsAgentPart pgs_wal_part = {"wal", part_open, part_render, part_close, NULL};
