/*
 * io.c - "pgscope io": shared-buffer hits and reads per relation and fork
 * (names resolved from relfilenodes over libpq), extends, read and write
 * latency of the storage manager with log2 histograms (--hist), and per
 * backend the bytes of read/write syscalls and fsyncs; --by relation
 * (default) or backend.  Buffer use per statement: "pgscope queries
 * --breakdown".
 */
#include "tracer_cmds.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expo.h"
#include "hist.h"
#include "io.h"
#include "io.skel.h"
#include "names.h"
#include "proto.h"
#include "stmt_source.h"
#include "tracer.h"
#include "util.h"

static const char *const forks[] = {"main", "fsm", "vm", "init"};

typedef struct IoRow
{
	struct pgs_io_key key;
	struct pgs_io_stats s;
} IoRow;

static int
cmp_rows(const void *a, const void *b)
{
	const IoRow *x = a,
			   *y = b;
	uint64_t	ax = x->s.reads + x->s.hits,
				by = y->s.reads + y->s.hits;

	if (x->s.reads != y->s.reads)
		return x->s.reads < y->s.reads ? 1 : -1;
	/* (18: no buffer counts, its reads asynchronous) */
	if (x->s.md_reads != y->s.md_reads)
		return x->s.md_reads < y->s.md_reads ? 1 : -1;
	return ax < by ? 1 : ax > by ? -1 : 0;
}

/* the per-CPU values vals of one entry, added into *s */
static void
add_cpus(struct pgs_io_stats *s, const struct pgs_io_stats *vals, int ncpu)
{
	for (int i = 0; i < ncpu; i++)
	{
		s->hits += vals[i].hits;
		s->reads += vals[i].reads;
		s->extends += vals[i].extends;
		s->md_reads += vals[i].md_reads;
		s->md_read_bytes += vals[i].md_read_bytes;
		s->read_ns += vals[i].read_ns;
		s->md_writes += vals[i].md_writes;
		s->write_ns += vals[i].write_ns;
		for (int j = 0; j < PGS_IO_SLOTS; j++)
		{
			s->read_hist[j] += vals[i].read_hist[j];
			s->write_hist[j] += vals[i].write_hist[j];
		}
	}
}

static void
fill_row(PgsRows *rows, const void *k, const void *v, int ncpu)
{
	IoRow	   *r = pgs_rows_add(rows);

	memcpy(&r->key, k, sizeof(r->key));
	add_cpus(&r->s, v, ncpu);
}

static void
to_hist(PgsHist *h, const __u64 *slots, uint64_t count, uint64_t sum)
{
	memset(h, 0, sizeof(*h));
	for (int i = 0; i < PGS_IO_SLOTS && i < PGS_HIST_SLOTS; i++)
		h->slots[i] = slots[i];
	h->count = count;
	h->sum_ns = sum;
}

static void
print_relations(struct io_bpf *skel, PgsNames *names, bool json, bool hist, unsigned only_db)
{
	size_t		n;
	IoRow	   *rows = pgs_map_rows(bpf_map__fd(skel->maps.relations), sizeof(struct pgs_io_key),
									sizeof(struct pgs_io_stats), sizeof(IoRow), fill_row, cmp_rows, &n);
	PgsBuf		b;

	pgs_buf_init(&b);
	if (!json)
		printf("\n%-40s %-5s %10s %10s %8s %9s %10s %9s %10s\n", "RELATION", "FORK", "HITS", "READS", "EXTENDS",
			   "MD_READS", "READ_MS", "MD_WRITES", "WRITE_MS");
	for (size_t i = 0; i < n; i++)
	{
		const IoRow *r = &rows[i];
		const char *name;
		const char *fork = r->key.fork < 4 ? forks[r->key.fork] : "?";

		if (only_db && r->key.db != only_db)
			continue;
		name = pgs_names_filenode(names, r->key.spc, r->key.db, r->key.relnode);
		if (json)
		{
			PgsHist		h;

			b.len = 0;
			pgs_buf_puts(&b, "{\"relation\":");
			pgs_buf_json_string(&b, name);
			pgs_buf_printf(&b, ",\"database\":%u,\"relfilenode\":%u,\"fork\":\"%s\",\"hits\":%llu,\"reads\":%llu,"
						   "\"extends\":%llu,\"md_reads\":%llu,\"md_read_bytes\":%llu,\"read_ms\":%.3f,\"md_writes\":%llu,\"write_ms\":%.3f,"
						   "\"read_histogram\":", r->key.db, r->key.relnode, fork,
						   (unsigned long long) r->s.hits, (unsigned long long) r->s.reads,
						   (unsigned long long) r->s.extends, (unsigned long long) r->s.md_reads,
						   (unsigned long long) r->s.md_read_bytes, r->s.read_ns / 1e6,
						   (unsigned long long) r->s.md_writes, r->s.write_ns / 1e6);
			to_hist(&h, r->s.read_hist, r->s.md_reads, r->s.read_ns);
			pgs_hist_json(&b, &h);
			pgs_buf_puts(&b, ",\"write_histogram\":");
			to_hist(&h, r->s.write_hist, r->s.md_writes, r->s.write_ns);
			pgs_hist_json(&b, &h);
			pgs_buf_puts(&b, "}\n");
			fputs(b.data, stdout);
		}
		else
			printf("%-40.40s %-5s %10llu %10llu %8llu %9llu %10.3f %9llu %10.3f\n", name, fork,
				   (unsigned long long) r->s.hits, (unsigned long long) r->s.reads,
				   (unsigned long long) r->s.extends, (unsigned long long) r->s.md_reads, r->s.read_ns / 1e6,
				   (unsigned long long) r->s.md_writes, r->s.write_ns / 1e6);
	}
	if (hist && !json)
		for (size_t i = 0; i < n; i++)
		{
			PgsHist		h;
			const char *name;

			if (only_db && rows[i].key.db != only_db)
				continue;
			name = pgs_names_filenode(names, rows[i].key.spc, rows[i].key.db, rows[i].key.relnode);

			if (rows[i].s.md_reads)
			{
				printf("\nreads of %s (%s)\n", name, rows[i].key.fork < 4 ? forks[rows[i].key.fork] : "?");
				to_hist(&h, rows[i].s.read_hist, rows[i].s.md_reads, rows[i].s.read_ns);
				pgs_hist_print(stdout, &h, "usecs");
			}
			if (rows[i].s.md_writes)
			{
				printf("\nwrites of %s (%s)\n", name, rows[i].key.fork < 4 ? forks[rows[i].key.fork] : "?");
				to_hist(&h, rows[i].s.write_hist, rows[i].s.md_writes, rows[i].s.write_ns);
				pgs_hist_print(stdout, &h, "usecs");
			}
		}
	pgs_buf_free(&b);
	free(rows);
	fflush(stdout);
}

static void
print_backend(const void *k, const void *v, int ncpu, void *arg)
{
	const struct pgs_io_backend *vals = v;
	bool		json = *(bool *) arg;
	struct pgs_io_backend t = {0};
	uint32_t	pid = *(const uint32_t *) k;

	for (int i = 0; i < ncpu; i++)
	{
		t.read_bytes += vals[i].read_bytes;
		t.write_bytes += vals[i].write_bytes;
		t.fsyncs += vals[i].fsyncs;
		t.fsync_ns += vals[i].fsync_ns;
	}
	if (json)
		printf("{\"pid\":%u,\"read_bytes\":%llu,\"write_bytes\":%llu,\"fsyncs\":%llu,\"fsync_ms\":%.3f}\n", pid,
			   (unsigned long long) t.read_bytes, (unsigned long long) t.write_bytes,
			   (unsigned long long) t.fsyncs, t.fsync_ns / 1e6);
	else
		printf("%8u %14llu %14llu %8llu %10.3f\n", pid, (unsigned long long) t.read_bytes,
			   (unsigned long long) t.write_bytes, (unsigned long long) t.fsyncs, t.fsync_ns / 1e6);
}

static void
print_backends(struct io_bpf *skel, bool json)
{
	if (!json)
		printf("\n%8s %14s %14s %8s %10s\n", "PID", "READ_BYTES", "WRITE_BYTES", "FSYNCS", "FSYNC_MS");
	pgs_map_foreach(bpf_map__fd(skel->maps.backends), sizeof(uint32_t), sizeof(struct pgs_io_backend), true,
					print_backend, &json);
	fflush(stdout);
}

/* ---------- --by query: buffer use per normalized query ---------- */

typedef struct QueryIo
{
	char	   *query;
	uint64_t	calls,
				hits,
				reads;
	struct QueryIo *next;
} QueryIo;

typedef struct ByQuery
{
	QueryIo    *list;
	const char *database;
} ByQuery;

/* the row of query (malloc'd: kept by a new row, freed when the row exists) */
static QueryIo *
query_row(ByQuery *bq, char *query)
{
	QueryIo    *q;

	for (q = bq->list; q; q = q->next)
		if (strcmp(q->query, query) == 0)
		{
			free(query);
			return q;
		}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		pgs_die("out of memory");
	q->query = query;
	q->next = bq->list;
	bq->list = q;
	return q;
}

static void
on_statement(const PgsStatement *s, void *arg)
{
	ByQuery    *bq = arg;
	QueryIo    *q;

	if (bq->database && strcmp(bq->database, s->database) != 0)
		return;
	q = query_row(bq, pgs_normalize_query(s->text));
	/* (more rows of a suspended portal: the same call, its buffers too) */
	if (!s->continues)
		q->calls++;
	if (s->batch)
	{
		/* a batch's buffers are the batch's: one row for them, not a share per statement */
		if (s->batch_index > 0)
			return;
		q = query_row(bq, pgs_xstrdup("(statements of batches: their buffers together)"));
	}
	q->hits += s->blks_hit;
	q->reads += s->blks_read;
}

/* the statement tracer with its per-statement buffer counters, summed per query */
static int
io_by_query(const PgsTarget *t, double duration, bool json, const char *database)
{
	PgsStmtSourceOpts so = {.capture_len = 1025, .duration = duration, .breakdown = true};
	PgsStmtSourceStats st;
	ByQuery		bq = {NULL, database};
	PgsBuf		b;
	int			rc;

	pgs_catch_signals();
	rc = pgs_stmt_source_run(t, &so, on_statement, NULL, &bq, &st);
	if (rc != 0)
		return rc;
	pgs_buf_init(&b);
	if (!json)
		printf("\n%10s %12s %12s  %s\n", "CALLS", "HITS", "READS", "QUERY");
	for (QueryIo *q = bq.list; q; q = q->next)
	{
		if (json)
		{
			b.len = 0;
			pgs_buf_puts(&b, "{\"query\":");
			pgs_buf_json_string(&b, q->query);
			pgs_buf_printf(&b, ",\"calls\":%llu,\"hits\":%llu,\"reads\":%llu}\n", (unsigned long long) q->calls,
						   (unsigned long long) q->hits, (unsigned long long) q->reads);
			fputs(b.data, stdout);
		}
		else
			printf("%10llu %12llu %12llu  %.120s\n", (unsigned long long) q->calls, (unsigned long long) q->hits,
				   (unsigned long long) q->reads, q->query);
	}
	pgs_buf_free(&b);
	fflush(stdout);
	return 0;
}

static const char usage_text[] =
	"usage: pgscope io [--pid PID | -D DATADIR | --bin PATH] [--by relation|backend|query] [--hist]\n"
	"                  [-d DATABASE] [-U USER] [--dbname DB] [--json] [--duration SEC]\n"
	"  shared-buffer hits and reads, extends, read and write latency per relation and fork;\n"
	"  per backend the bytes of read/write syscalls and fsyncs; buffers per statement:\n"
	"  pgscope queries --breakdown; needs root or CAP_BPF+CAP_PERFMON\n";

/* --by's words, in order */
enum
{
	BY_RELATION = 1,
	BY_BACKEND,
	BY_QUERY
};

typedef struct IoOpts
{
	int			by;				/* BY_*, 0: not given (by relation) */
	bool		hist;
} IoOpts;

static const PgsOptSpec opts[] = {
	PGS_OPT_CHOICE("by", IoOpts, by, "relation, backend or query", "relation|backend|query"),
	PGS_OPT_FLAG("hist", IoOpts, hist),
	PGS_OPT_END
};

static const PgsCommand io_command =
	{"pgscope io", usage_text, opts, PGS_CMD_NAMES | PGS_CMD_DATABASE};

/* the buffer probes, which libbpf may not read on 18 (the per-backend half needs none: it keeps working) */
static void
attach_buffers(struct io_bpf *skel, const PgsTarget *t)
{
	PgsUsdt		u;

	if (!(skel->links.on_buffer_done = pgs_attach_probe(skel->progs.on_buffer_done, t, "buffer__read__done")))
	{
		if (pgs_usdt_find(t->bin, "postgresql", "buffer__read__done", &u) == 0)
			pgs_err("buffer hits and reads per relation unavailable: libbpf cannot read the arguments of "
					"postgresql:buffer__read__done in %s (PostgreSQL 18 passes one RIP-relative)", t->bin);
		else
			pgs_err("buffer hits and reads per relation unavailable: %s has no USDT probe "
					"postgresql:buffer__read__done (a build without --enable-dtrace)", t->bin);
	}
	/* PostgreSQL 17 on: relation extensions have their own probe (absent before: nothing to say) */
	if (pgs_usdt_find(t->bin, "postgresql", "buffer__extend__done", &u) == 0)
		skel->links.on_buffer_extend_done = pgs_attach_probe(skel->progs.on_buffer_extend_done, t, "buffer__extend__done");
}

/*
 * The program attached, with what could be (what could not is said); the
 * agent's (latency) leaves out the buffer probes, hit on every buffer a
 * statement touches, and the syscall tracepoints.
 */
static struct io_bpf *
attach(const PgsTarget *t, bool latency)
{
	struct io_bpf *skel;

	PGS_SKEL_OPEN(io, skel, t);
	skel->rodata->by_relation = !latency;
	if (t->offsets && t->offsets->aio_op)
	{
		skel->rodata->off_aio_op = t->offsets->aio_op;
		skel->rodata->off_aio_target = t->offsets->aio_target;
		skel->rodata->off_aio_rlocator = t->offsets->aio_target_rlocator;
		skel->rodata->off_aio_fork = t->offsets->aio_target_fork;
		skel->rodata->aio_readv = t->offsets->aio_op_readv;
		skel->rodata->aio_writev = t->offsets->aio_op_writev;
		skel->rodata->aio_tid_smgr = t->offsets->aio_tid_smgr;
	}
	PGS_SKEL_LOAD(io, skel);
	if (!latency)
		attach_buffers(skel, t);
	if (!(skel->links.on_md_read_start = pgs_attach_probe(skel->progs.on_md_read_start, t, "smgr__md__read__start")) ||
		!(skel->links.on_md_read_done = pgs_attach_probe(skel->progs.on_md_read_done, t, "smgr__md__read__done")) ||
		!(skel->links.on_md_write_start = pgs_attach_probe(skel->progs.on_md_write_start, t, "smgr__md__write__start")) ||
		!(skel->links.on_md_write_done = pgs_attach_probe(skel->progs.on_md_write_done, t, "smgr__md__write__done")))
		pgs_err("read/write latency unavailable: no USDT probes postgresql:smgr__md__read/write__start/done in %s", t->bin);
	/* 18's asynchronous reads, performed by IO workers out of the smgr probes' sight */
	if (t->offsets && t->offsets->aio_op &&
		(!(skel->links.on_aio_perform = pgs_attach_func(skel->progs.on_aio_perform, t, "pgaio_io_perform_synchronously", false)) ||
		 !(skel->links.on_aio_complete = pgs_attach_func(skel->progs.on_aio_complete, t, "pgaio_io_process_completion", false))))
		pgs_err("asynchronous reads unseen: %s does not export pgaio_io_perform_synchronously/pgaio_io_process_completion",
				t->bin);
	if (!latency && (!(skel->links.on_pread = bpf_program__attach(skel->progs.on_pread)) ||
		!(skel->links.on_read = bpf_program__attach(skel->progs.on_read)) ||
		!(skel->links.on_pwrite = bpf_program__attach(skel->progs.on_pwrite)) ||
		!(skel->links.on_write = bpf_program__attach(skel->progs.on_write))))
		pgs_err("syscall bytes unavailable: cannot attach to the read/write syscall tracepoints");
	if (!(skel->links.on_fsync = pgs_attach_func(skel->progs.on_fsync, t, "pg_fsync", false)) ||
		!(skel->links.on_fsync_ret = pgs_attach_func(skel->progs.on_fsync_ret, t, "pg_fsync", true)))
		pgs_err("fsyncs unavailable: %s does not export pg_fsync", t->bin);
	PGS_SKEL_ATTACHED(io, skel);
}

int
cmd_io(int argc, char **argv)
{
	PgsTracing	tr;
	IoOpts		o = {0};
	PgsLoop		loop = {0};
	struct io_bpf *skel;
	PgsNames   *names;
	unsigned	only_db = 0;

	pgs_command_start(&io_command, &o, argc, argv, &tr);
	if (o.by == BY_QUERY)
		return io_by_query(&tr.t, tr.to.duration, tr.to.json, tr.database);
	if ((skel = attach(&tr.t, false)) == NULL)
		return EXIT_RUNTIME;
	names = pgs_names_open(&tr.t, tr.user, tr.dbname);
	if (tr.database)
		only_db = pgs_database_oid(names, tr.database);
	loop.what = "IO";
	pgs_tracer_loop(&loop, &tr.t, tr.to.duration);
	if (o.by != BY_BACKEND)
		print_relations(skel, names, tr.to.json, o.hist, only_db);
	print_backends(skel, tr.to.json);
	PGS_SKEL_DESTROY(io, skel);
	pgs_names_close(names);
	return pgs_tracer_status();
}

/* ---------- what the agent exports: read and write latency, bytes read ---------- */

static void *
part_open(const PgsTarget *t)
{
	return attach(t, true);
}

/* the agent's totals: every relation's reads and writes in one entry (by_relation off) */
static void
part_render(void *p, const char *labels, PgsExpo *e)
{
	struct io_bpf *skel = p;
	struct pgs_io_stats sums,
			   *vals = pgs_xmalloc(sizeof(struct pgs_io_stats) * (size_t) libbpf_num_possible_cpus());
	__u32		z = 0;

	memset(&sums, 0, sizeof(sums));
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.totals), &z, vals) == 0)
		add_cpus(&sums, vals, libbpf_num_possible_cpus());
	free(vals);
	pgs_expo_log2_hist(e, "pgscope_io_read_seconds", "Relation reads (smgr): their latency.", labels,
					   (const uint64_t *) sums.read_hist, PGS_IO_SLOTS, sums.read_ns / 1e9);
	pgs_expo_log2_hist(e, "pgscope_io_write_seconds", "Relation writes (smgr): their latency.", labels,
					   (const uint64_t *) sums.write_hist, PGS_IO_SLOTS, sums.write_ns / 1e9);
	pgs_expo_sample(e, "pgscope_io_read_bytes_total", "counter", "Bytes of relations read (smgr).", labels,
					(double) sums.md_read_bytes);
}

static void
part_close(void *p)
{
	PGS_SKEL_DESTROY(io, (struct io_bpf *) p);
}

const PgsAgentPart pgs_io_part = {"io", part_open, part_render, part_close, NULL};
