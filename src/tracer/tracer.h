/*
 * tracer.h - what every eBPF tracer subcommand shares: the privilege check,
 * finding the PostgreSQL server to trace and what its stripped binary
 * exposes (.dynsym globals, USDT probes, the struct offsets generated from
 * the server headers), the target options, and the poll loop.
 */
#ifndef PGSCOPE_TRACER_H
#define PGSCOPE_TRACER_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_offsets_type.h"

typedef struct PgsTarget
{
	char		bin[PATH_MAX];	/* the server binary, resolved */
	int			postmaster;		/* traced cluster's postmaster, 0: every postgres process */
	int			backend;		/* a single traced backend, 0: all */
	int			major;			/* PostgreSQL major version */
	uint64_t	myprocport;		/* runtime address of MyProcPort, 0: unknown */
	uint64_t	mydatabaseid;	/* runtime address of MyDatabaseId, 0: unknown */
	uint64_t	my_wait_event_info;	/* runtime address of my_wait_event_info, 0: unknown */
	uint64_t	pgbufferusage;	/* runtime address of pgBufferUsage, 0: unknown */
	uint64_t	pgwalusage;		/* runtime address of pgWalUsage, 0: unknown */
	uint64_t	checkpointstats;	/* runtime address of CheckpointStats, 0: unknown */
	uint64_t	nbuffers;		/* runtime address of NBuffers, 0: unknown */
	uint64_t	mybeentry;		/* runtime address of MyBEEntry, 0: unknown */
	uint64_t	activeportal;	/* runtime address of ActivePortal, 0: unknown */
	uint64_t	parallelworkernumber;	/* runtime address of ParallelWorkerNumber, 0: unknown */
	uint64_t	application_name;	/* runtime address of application_name (a char *), 0: unknown */
	uint64_t	debug_query_string;	/* runtime address of debug_query_string (a const char *), 0: unknown */
	uint64_t	load_shift;		/* runtime address minus link-time address (PIE) */
	const PgsPgOffsets *offsets;	/* NULL: no table for this version */
	char		datadir[PATH_MAX];
} PgsTarget;

typedef struct PgsTargetOpts
{
	const char *bin;
	long		pid;
	const char *datadir;
	double		duration;		/* seconds, < 0: until Ctrl-C */
	bool		json;
} PgsTargetOpts;

/* long options without a letter: the target's, --help, --dbname (a command's own: PGS_OPT_OWN + index) */
enum
{
	PGS_OPT_BIN = 1001,
	PGS_OPT_PID,
	PGS_OPT_DURATION,
	PGS_OPT_JSON,
	PGS_OPT_HELP,
	PGS_OPT_DBNAME,
	PGS_OPT_OWN = 1100			/* a command's own options count from here */
};

/* handles --bin, --pid (-p), -D, --duration, --json; true if opt was one of them */
bool pgs_target_opt(PgsTargetOpts *o, int opt, const char *arg);

/*
 * Exits 1 unless we are root or hold CAP_BPF and CAP_PERFMON, and unless
 * tracefs, through which tracepoints are found and which a fresh system may
 * not have mounted, is there (it is mounted at /sys/kernel/tracing if not).
 */
void pgs_tracer_prepare(void);

/* after pgs_tracer_prepare: whether we hold CAP_SYS_ADMIN (root), which writing into a backend needs */
bool pgs_tracer_sys_admin(void);

/*
 * Finds the server from --bin, --pid or -D (or the only running one) and
 * reads what the binary exposes; exits 2 on bad input (not PostgreSQL, no
 * such process) and 1 when nothing runs.
 */
void pgs_resolve_target(PgsTarget *t, const PgsTargetOpts *o);

/*
 * For a process that watches servers come and go (the agent), without
 * exiting: the running postmasters' host pids (up to max, their number);
 * a target for one of them (NULL, or why not, in why); the postmaster of
 * a data directory (0: not running, -1: no postmaster.pid); whether pid
 * lives (a zombie does not).
 */
int pgs_list_postmasters(int *pids, int max);
const char *pgs_target_of_postmaster(PgsTarget *t, int pid, char *why, size_t len);
int pgs_datadir_postmaster(const char *datadir);
bool pgs_process_alive(int pid);

/*
 * Every tracer drives its skeleton the same way (open, set rodata, load,
 * attach, poll, destroy) with one "cleanup:" label; these are its first and
 * third steps, and PGS_SKEL_ATTACHED the end of a function that returns the
 * attached skeleton (destroyed, NULL, where a step above went to cleanup).
 * PGS_SKEL_OPEN also sets the process filter of filter.bpf.h.
 */
#define PGS_SKEL_OPEN(name, skel, t) \
	do { \
		(skel) = name##_bpf__open(); \
		if ((skel) == NULL) \
		{ \
			pgs_err("cannot open the BPF program: %s", strerror(errno)); \
			goto cleanup; \
		} \
		(skel)->rodata->filter_pid = (t)->backend; \
		(skel)->rodata->filter_ppid = (t)->backend ? 0 : (t)->postmaster; \
	} while (0)

#define PGS_SKEL_LOAD(name, skel) \
	do { \
		int			load_err_ = name##_bpf__load(skel); \
		if (load_err_) \
		{ \
			pgs_err("cannot load the BPF program: %s", strerror(-load_err_)); \
			goto cleanup; \
		} \
	} while (0)

#define PGS_SKEL_ATTACHED(name, skel) \
	return (skel); \
cleanup: \
	PGS_SKEL_DESTROY(name, skel); \
	return NULL

/*
 * The skeleton's links detached all at once (pgs_skel_detach), then the
 * skeleton destroyed: a uprobe's detach waits for a grace period, some
 * 0.1-0.2 s here, and the agent's 27 in a row took 4 s after SIGTERM.
 */
struct bpf_object_skeleton;
void pgs_skel_detach(struct bpf_object_skeleton *s);
#define PGS_SKEL_DESTROY(name, skel) \
	do { \
		if ((skel) != NULL) \
			pgs_skel_detach((skel)->skeleton); \
		name##_bpf__destroy(skel); \
	} while (0)

/*
 * A USDT probe of the binary, from its .note.stapsdt: the file offsets of
 * its call sites (where a uprobe goes) and the link-time address of its
 * semaphore (0: none; add PgsTarget.load_shift for the runtime address).
 */
#define PGS_USDT_MAX_SITES 8
typedef struct PgsUsdt
{
	int			nsites;
	uint64_t	site_offsets[PGS_USDT_MAX_SITES];
	uint64_t	semaphore;
	uint64_t	semaphore_offset;	/* its file offset (a uprobe's ref_ctr_offset), 0: none */
} PgsUsdt;

/* 0, or -ENOENT when the binary has no such probe */
int pgs_usdt_find(const char *bin, const char *provider, const char *name, PgsUsdt *out);

/*
 * The file offset where a uprobe or uretprobe on function func of bin goes
 * (.dynsym, else .symtab): its entry, or just past the endbr64 that starts
 * it (-fcf-protection builds: Debian's PostgreSQL 17 and 18).  The kernel
 * emulates a push or a nop under a uprobe but executes an endbr64 out of line
 * with a single-step trap: 16.5 us a hit on this project's VM against 1.0 us
 * on the push after it.  The stack is untouched there, so a uretprobe still
 * finds the return address (x86-64 binaries; others: the entry).  0,
 * -ENOENT when bin has no such function.
 */
int pgs_func_offset(const char *bin, const char *func, uint64_t *off);

/*
 * Where a TLS connection's read has its plain text, with one uprobe that
 * only reads with data reach: secure_read just past its call of
 * be_tls_read, "test" of the result and "js" to the wait for more (x86-64
 * code as GCC builds it for Debian's 15, 17 and 18, recognised byte by
 * byte), when a nop is there, which the kernel emulates (else the js, which
 * every read reaches: all_reads).  There rax holds the result, ptr_reg (a
 * register a call preserves, by its encoding number: 3 rbx, 5 rbp, 12-15
 * r12-r15) the buffer, as secure_read's prologue and the moves before the
 * call both say.  Instead of a uprobe and a uretprobe on be_tls_read: one
 * trap fewer for every read with data, two for every read that finds none.
 * 0; -ENOEXEC when the code is not that shape (the caller falls back to
 * be_tls_read), -ENOENT when a function is missing.
 * pgs_call_result_site: the same for any caller and callee (tests).
 */
typedef struct PgsTlsReadSite
{
	uint64_t	offset;			/* file offset of the uprobe */
	int			ptr_reg;
	bool		all_reads;		/* on the js: reads that found nothing come too */
} PgsTlsReadSite;
int pgs_tls_read_site(const char *bin, PgsTlsReadSite *site);
int pgs_call_result_site(const char *bin, const char *caller, const char *callee, PgsTlsReadSite *site);

/*
 * Calls fn(desc, descsz, arg) for each note of type from owner ("GNU",
 * "stapsdt") in e's note sections until fn returns true; whether one did.
 */
typedef struct Elf Elf;
bool pgs_elf_each_note(Elf *e, const char *owner, uint32_t type,
					   bool (*fn) (const char *desc, size_t descsz, void *arg), void *arg);

/* a symbol as pgs_elf_each_symbol gives it */
typedef struct PgsElfSym
{
	const char *name;
	unsigned	type;			/* STT_FUNC, STT_OBJECT, ... */
	uint64_t	value,
				size;
} PgsElfSym;

/*
 * Calls fn with each defined, named symbol of e's sections of type
 * (SHT_SYMTAB or SHT_DYNSYM) until it returns true; whether one did.
 */
bool pgs_elf_each_symbol(Elf *e, uint32_t type, bool (*fn) (const PgsElfSym *sym, void *arg), void *arg);

/*
 * A path as process pid sees it, made reachable from here: unchanged when
 * pid shares our root and mount namespace, else prefixed with its root
 * (a chroot's directory, or /proc/PID/root for a container).
 */
void pgs_proc_visible_path(int pid, const char *path, char *out, size_t len);

/*
 * Pids of a server in a container: the tracer sees the host's, the server
 * (pg_stat_activity, pg_locks) its own.  pgs_server_pid gives the server's
 * for a host pid (itself outside a container); pgs_host_pid the host's for
 * the server's pid of one of postmaster's backends (0 when none has it).
 */
int pgs_server_pid(int host_pid);
int pgs_host_pid(int postmaster, int server_pid);

/* wall-clock "HH:MM:SS.mmm" (and ISO 8601 for JSON) of a CLOCK_MONOTONIC time */
void pgs_mono_to_clock(uint64_t mono_ns, char *hms, size_t hmslen, char *iso, size_t isolen);

/* ---------- a tracer command: its options, then what it attaches, then how it prints ---------- */

/* what a command takes beyond the target options and --help */
#define PGS_CMD_NAMES		0x1	/* -U USER, --dbname DB: how the server is asked for names */
#define PGS_CMD_DATABASE	0x2	/* -d DATABASE: only that database */
#define PGS_CMD_OFFSETS		0x4	/* it cannot work without the struct offsets of the server's version */

/* a command's own option, described: pgs_command_start parses it into the command's state */
typedef enum PgsArgKind
{
	PGS_ARG_FLAG,				/* bool, true when given */
	PGS_ARG_DOUBLE,				/* double within min..max */
	PGS_ARG_LONG,				/* long within min..max */
	PGS_ARG_CHOICE,				/* int: the word's number in choices from 1 (0: not given) */
	PGS_ARG_CHOICE_OPT,			/* the same, its word optional (--name=word): 1 without one */
	PGS_ARG_OUTPUT				/* const char *: a path we will write, checked before anything is traced */
} PgsArgKind;

typedef struct PgsOptSpec
{
	const char *name;			/* "min-ms": --min-ms; NULL ends a list */
	char		letter;			/* 'i': -i too (and its name in errors), 0: none */
	PgsArgKind	kind;
	size_t		offset;			/* where in the command's state (offsetof) */
	double		min,
				max;			/* a number's range */
	const char *what;			/* what it takes, in its usage error: "milliseconds (0 or more)" */
	const char *choices;		/* a choice's words: "query|database|user" */
} PgsOptSpec;

/* entries of a PgsOptSpec list: option NAME (with LETTER, or 0) into field F of the command's state S */
#define PGS_OPT_FLAG(name, s, f) {(name), 0, PGS_ARG_FLAG, offsetof(s, f), 0, 0, NULL, NULL}
#define PGS_OPT_NUMBER(name, letter, kind, s, f, lo, hi, what) {(name), (letter), (kind), offsetof(s, f), (lo), (hi), (what), NULL}
#define PGS_OPT_CHOICE(name, s, f, what, choices) {(name), 0, PGS_ARG_CHOICE, offsetof(s, f), 0, 0, (what), (choices)}
#define PGS_OPT_CHOICE_OPT(name, s, f, what, choices) {(name), 0, PGS_ARG_CHOICE_OPT, offsetof(s, f), 0, 0, (what), (choices)}
#define PGS_OPT_OUTPUT(name, s, f) {(name), 0, PGS_ARG_OUTPUT, offsetof(s, f), 0, 0, NULL, NULL}
#define PGS_OPT_END {NULL, 0, PGS_ARG_FLAG, 0, 0, 0, NULL, NULL}

/* a tracer command, written {cmd, usage, opts, flags} */
typedef struct PgsCommand
{
	const char *cmd;			/* "pgscope wal" */
	const char *usage;			/* what --help prints */
	const PgsOptSpec *opts;		/* its own options, NULL: none */
	unsigned	flags;			/* PGS_CMD_* */
} PgsCommand;

typedef struct PgsTracing
{
	PgsTargetOpts to;
	PgsTarget	t;
	const char *user;			/* -U */
	const char *dbname;			/* --dbname */
	const char *database;		/* -d */
} PgsTracing;

/*
 * The start every tracer command shares: parses argv (the target options,
 * --help, -U/--dbname/-d as c's flags say, then c's own into self),
 * checks our privileges and finds the target.  Exits 0 after --help, 2 on a
 * usage error, 1 when there is nothing to trace.
 */
void pgs_command_start(const PgsCommand *c, void *self, int argc, char **argv, PgsTracing *tr);

/* "pgscope X: tracing WHAT of the cluster of postmaster N (PostgreSQL M)EXTRA", to stderr */
void pgs_tracing_says(const PgsTarget *t, const char *what, const char *extra);

/*
 * Attaches prog to the traced processes of t's binary: a uprobe on the
 * exported function func (ret: a uretprobe; at pgs_func_offset), or the USDT probe
 * postgresql:name.  The link goes to the skeleton's links (skel->links.x),
 * which its destroy frees; NULL when it cannot be (errno).
 */
struct bpf_program;
struct bpf_link *pgs_attach_func(struct bpf_program *prog, const PgsTarget *t, const char *func, bool ret);
/*
 * A TLS read's plain text: before the skeleton's load, pgs_tls_read_choose
 * finds pgs_tls_read_site in t's binary and keeps the program for it (done)
 * or, when it is not found, those for be_tls_read's entry and return;
 * true: the site (the caller sets its rodata tls_ptr_reg to site->ptr_reg);
 * PGSCOPE_TLS_READ=be_tls_read in the environment forces the fallback.
 * After the load pgs_attach_tls_read attaches what was kept, each to its
 * link (the skeleton's); false when it cannot (errno).
 */
bool pgs_tls_read_choose(const PgsTarget *t, PgsTlsReadSite *site, struct bpf_program *done,
						 struct bpf_program *entry, struct bpf_program *ret);
bool pgs_attach_tls_read(const PgsTarget *t, const PgsTlsReadSite *site, struct bpf_program *done,
						 struct bpf_link **done_link, struct bpf_program *entry, struct bpf_link **entry_link,
						 struct bpf_program *ret, struct bpf_link **ret_link);

struct bpf_link *pgs_attach_probe(struct bpf_program *prog, const PgsTarget *t, const char *name);

/* the sum over the CPUs of entry key of a per-CPU array of __u64 */
uint64_t pgs_percpu_sum(int fd, uint32_t key);

/*
 * The loop of every tracer, until duration seconds passed (< 0: on), a
 * signal came or the target went away.  With what set it first says
 * "tracing WHAT of ..." (and note) and starts catching signals; every
 * poll_ms (default 50) it
 * drains rb (NULL: nothing to drain, it sleeps), calls every(arg) (which
 * may return the next round's wait in ms, 0: poll_ms) and, every
 * tick_seconds, tick(arg).  Then it acknowledges the stop (what follows
 * must not be cancelled) and drains what is left.  0, or EXIT_RUNTIME when
 * the events could not be read (said).
 */
struct ring_buffer;
typedef struct PgsLoop
{
	const char *what;			/* "WAL": what the "tracing" line names, NULL: the caller says */
	const char *note;			/* what that line adds, NULL: nothing */
	struct ring_buffer *rb;
	int			poll_ms;
	int			(*every) (void *arg);
	double		tick_seconds;
	void		(*tick) (void *arg);
	void	   *arg;
} PgsLoop;
int pgs_tracer_loop(const PgsLoop *l, const PgsTarget *t, double duration);

/*
 * Calls cb(key, values, nvalues, arg) for every entry of BPF hash map fd:
 * for a per-CPU map (percpu) values holds one value per possible CPU, to be
 * summed by the caller; otherwise one value.
 */
typedef void (*pgs_map_cb) (const void *key, const void *values, int nvalues, void *arg);
void pgs_map_foreach(int fd, size_t key_size, size_t value_size, bool percpu, pgs_map_cb cb, void *arg);

/*
 * Rows of row_size made from a per-CPU map's entries: fill(rows, key,
 * values, ncpu) adds a row with pgs_rows_add (or sums into one it already
 * has); the rows come back sorted by cmp, their number in *n.
 */
typedef struct PgsRows
{
	void	   *rows;
	size_t		n,
				cap,
				row_size;
} PgsRows;
typedef void (*pgs_row_fill) (PgsRows *rows, const void *key, const void *values, int ncpu);
void	   *pgs_map_rows(int fd, size_t key_size, size_t value_size, size_t row_size, pgs_row_fill fill,
						 int (*cmp) (const void *, const void *), size_t *n);
/* a new zeroed row at the end */
void	   *pgs_rows_add(PgsRows *rows);

/* the usage error for the option getopt could not take: unknown, or missing its value (exits 2) */
_Noreturn void pgs_bad_option(char **argv, int optind, bool missing, const char *cmd);
/* the usage error for an argument left after the options (exits 2) */
void pgs_no_more_args(int argc, char **argv, int optind, const char *cmd);

/*
 * The poll loops' stop test: true once duration seconds passed since start
 * (duration < 0: never), or the traced server or backend exited
 * (pgs_target_gone: its pid), or standard output was closed
 * (pgs_output_closed: a reader such as "| head" went away).
 */
bool pgs_duration_over(double start, double duration);
extern int	pgs_target_gone;
extern bool pgs_output_closed;

/* a tracer's exit status after its loop: 1 when the target went away, else 0 */
int pgs_tracer_status(void);

/* writes s to stdout at once; false (and pgs_output_closed) when the reader is gone */
bool pgs_emit(const char *s, size_t n);
double pgs_now(void);

#endif
