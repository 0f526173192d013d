/*
 * tracer.c - target discovery and the facts of a stripped PostgreSQL binary.
 *
 * A postmaster is a process whose executable is a PostgreSQL server binary
 * (its .dynsym exports PostgresMain) and whose parent's is not; backends are
 * its children (forked, never exec'd, so one address computed from the
 * postmaster's mappings holds in every backend).
 */
#include "tracer.h"

#include <ctype.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pg_offsets.h"
#include "tracer_cmds.h"
#include "util.h"

bool
pgs_target_opt(PgsTargetOpts *o, int opt, const char *arg)
{
	switch (opt)
	{
		case PGS_OPT_BIN:
			o->bin = arg;
			return true;
		case 'p':
		case PGS_OPT_PID:
			if (!pgs_parse_long(arg, 1, 4194304, &o->pid))
				pgs_usage("--pid takes a process id, not \"%s\"", arg);
			return true;
		case 'D':
			o->datadir = arg;
			return true;
		case PGS_OPT_DURATION:
			if (!pgs_parse_double(arg, 0.1, 31 * 86400, &o->duration))
				pgs_usage("--duration takes seconds from 0.1 on, not \"%s\"", arg);
			return true;
		case PGS_OPT_JSON:
			o->json = true;
			return true;
	}
	return false;
}


static int
ensure_tracefs(void)
{
	if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
		access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0)
		return -errno;
	return 0;
}

static bool have_sys_admin = false;

bool
pgs_tracer_sys_admin(void)
{
	return have_sys_admin;
}

void
pgs_tracer_prepare(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	bool		bpf,
				perfmon,
				sysadmin;
	int			err;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		pgs_die("cannot read this process's capabilities: %s", strerror(errno));
	sysadmin = data[0].effective & (1u << CAP_SYS_ADMIN);
	have_sys_admin = sysadmin;
	bpf = data[CAP_TO_INDEX(CAP_BPF)].effective & CAP_TO_MASK(CAP_BPF);
	perfmon = data[CAP_TO_INDEX(CAP_PERFMON)].effective & CAP_TO_MASK(CAP_PERFMON);
	if (!(sysadmin || (bpf && perfmon)))
		pgs_die("tracing needs root, or the capabilities CAP_BPF and CAP_PERFMON (missing:%s%s): run it with sudo",
				bpf || sysadmin ? "" : " CAP_BPF", perfmon || sysadmin ? "" : " CAP_PERFMON");
	{
		/* a uprobe link is a file descriptor, and backends with executor probes take eight each */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
		{
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if ((err = ensure_tracefs()) != 0)
		pgs_die("cannot mount tracefs at /sys/kernel/tracing (tracepoints are found through it): %s", strerror(-err));
}

/* the process whose exit ends tracing (pgs_duration_over) */
static int	watch_pid = 0;
static bool watch_is_backend = false;

/* ---------- ELF: .dynsym of the server binary ---------- */

/* the exported globals the tracers read, and where each lands in PgsTarget */
static const struct
{
	const char *name;
	size_t		target_off;
}			exported_globals[] = {
	{"MyProcPort", offsetof(PgsTarget, myprocport)},
	{"MyDatabaseId", offsetof(PgsTarget, mydatabaseid)},
	{"my_wait_event_info", offsetof(PgsTarget, my_wait_event_info)},
	{"pgBufferUsage", offsetof(PgsTarget, pgbufferusage)},
	{"pgWalUsage", offsetof(PgsTarget, pgwalusage)},
	{"CheckpointStats", offsetof(PgsTarget, checkpointstats)},
	{"NBuffers", offsetof(PgsTarget, nbuffers)},
	{"MyBEEntry", offsetof(PgsTarget, mybeentry)},
	{"ActivePortal", offsetof(PgsTarget, activeportal)},
	{"ParallelWorkerNumber", offsetof(PgsTarget, parallelworkernumber)},
	{"application_name", offsetof(PgsTarget, application_name)},
	{"debug_query_string", offsetof(PgsTarget, debug_query_string)},
};
#define PGS_NGLOBALS (sizeof(exported_globals) / sizeof(exported_globals[0]))

typedef struct BinFacts
{
	bool		is_postgres;	/* exports PostgresMain */
	uint64_t	globals[PGS_NGLOBALS];	/* st_value of each of exported_globals, 0: absent */
	uint64_t	load_vaddr;		/* lowest PT_LOAD p_vaddr */
	bool		pie;
} BinFacts;

/* a symbol of the server's .dynsym: is it one BinFacts records */
static bool
bin_fact(const PgsElfSym *sym, void *arg)
{
	BinFacts   *f = arg;

	if (strcmp(sym->name, "PostgresMain") == 0)
		f->is_postgres = true;
	for (size_t g = 0; g < PGS_NGLOBALS; g++)
		if (strcmp(sym->name, exported_globals[g].name) == 0)
			f->globals[g] = sym->value;
	return false;
}

static int
read_bin_facts(const char *path, BinFacts *f)
{
	int			fd = open(path, O_RDONLY);
	Elf		   *e;
	GElf_Ehdr	eh;
	size_t		nph;

	memset(f, 0, sizeof(*f));
	f->load_vaddr = UINT64_MAX;
	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (e == NULL || elf_kind(e) != ELF_K_ELF || gelf_getehdr(e, &eh) == NULL)
	{
		if (e)
			elf_end(e);
		close(fd);
		return -ENOEXEC;
	}
	f->pie = eh.e_type == ET_DYN;
	if (elf_getphdrnum(e, &nph) == 0)
	{
		for (size_t i = 0; i < nph; i++)
		{
			GElf_Phdr	ph;

			if (gelf_getphdr(e, (int) i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < f->load_vaddr)
				f->load_vaddr = ph.p_vaddr & ~(uint64_t) 0xfff;
		}
	}
	pgs_elf_each_symbol(e, SHT_DYNSYM, bin_fact, f);
	elf_end(e);
	close(fd);
	if (f->load_vaddr == UINT64_MAX)
		f->load_vaddr = 0;
	return 0;
}

/* ---------- USDT notes ---------- */

/* the file offset of vaddr in a loadable segment (code: an executable one, by its memory size) */
static bool
file_offset(Elf *e, size_t nph, uint64_t vaddr, bool code, uint64_t *off)
{
	for (size_t i = 0; i < nph; i++)
	{
		GElf_Phdr	ph;

		if (gelf_getphdr(e, (int) i, &ph) && ph.p_type == PT_LOAD && (!code || (ph.p_flags & PF_X)) &&
			vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + (code ? ph.p_memsz : ph.p_filesz))
		{
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			return true;
		}
	}
	return false;
}

/* prelinked binaries move the sites: .stapsdt.base says by how much */
static uint64_t
stapsdt_base_of(Elf *e, size_t shstrndx)
{
	Elf_Scn    *scn = NULL;

	while ((scn = elf_nextscn(e, scn)) != NULL)
	{
		GElf_Shdr	sh;
		const char *sname;

		if (gelf_getshdr(scn, &sh) && (sname = elf_strptr(e, shstrndx, sh.sh_name)) &&
			strcmp(sname, ".stapsdt.base") == 0)
			return sh.sh_addr;
	}
	return 0;
}

/* one stapsdt note (desc of descsz bytes): when it is provider:name, its site and semaphore go to out */
static bool
take_note(Elf *e, size_t nph, uint64_t stapsdt_base, const char *desc, size_t descsz,
		  const char *provider, const char *name, PgsUsdt *out)
{
	uint64_t	pc,
				base,
				sema,
				off;
	const char *prov = desc + 24,
			   *pname;

	if (descsz < 3 * 8 + 3)
		return false;
	memcpy(&pc, desc, 8);
	memcpy(&base, desc + 8, 8);
	memcpy(&sema, desc + 16, 8);
	pname = prov + strnlen(prov, descsz - 24) + 1;
	if (pname >= desc + descsz || strcmp(prov, provider) != 0 || strcmp(pname, name) != 0)
		return false;
	if (stapsdt_base && base)
		pc += stapsdt_base - base;
	if (out->nsites < PGS_USDT_MAX_SITES && file_offset(e, nph, pc, true, &off))
		out->site_offsets[out->nsites++] = off;
	out->semaphore = sema;
	out->semaphore_offset = sema && file_offset(e, nph, sema, false, &off) ? off : 0;
	return true;
}

bool
pgs_elf_each_note(Elf *e, const char *owner, uint32_t type, bool (*fn) (const char *desc, size_t descsz, void *arg),
				  void *arg)
{
	Elf_Scn    *scn = NULL;
	size_t		ownerlen = strlen(owner) + 1;

	while ((scn = elf_nextscn(e, scn)) != NULL)
	{
		GElf_Shdr	sh;
		Elf_Data   *d;
		GElf_Nhdr	nh;
		size_t		off = 0,
					name_off,
					desc_off;

		if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_NOTE || (d = elf_getdata(scn, NULL)) == NULL)
			continue;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0)
			if (nh.n_type == type && nh.n_namesz == ownerlen &&
				memcmp((const char *) d->d_buf + name_off, owner, ownerlen) == 0 &&
				fn((const char *) d->d_buf + desc_off, nh.n_descsz, arg))
				return true;
	}
	return false;
}

bool
pgs_elf_each_symbol(Elf *e, uint32_t type, bool (*fn) (const PgsElfSym *sym, void *arg), void *arg)
{
	Elf_Scn    *scn = NULL;

	while ((scn = elf_nextscn(e, scn)) != NULL)
	{
		GElf_Shdr	sh;
		Elf_Data   *d;

		if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != type || sh.sh_entsize == 0 ||
			(d = elf_getdata(scn, NULL)) == NULL)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++)
		{
			GElf_Sym	sym;
			const char *name;

			if (gelf_getsym(d, (int) i, &sym) == NULL || sym.st_shndx == SHN_UNDEF ||
				(name = elf_strptr(e, sh.sh_link, sym.st_name)) == NULL || name[0] == '\0')
				continue;
			if (fn(&(PgsElfSym) {name, GELF_ST_TYPE(sym.st_info), sym.st_value, sym.st_size}, arg))
				return true;
		}
	}
	return false;
}

/* what pgs_usdt_find looks for, and where the sites go */
typedef struct UsdtSearch
{
	Elf		   *e;
	size_t		nph;
	uint64_t	stapsdt_base;
	const char *provider,
			   *name;
	PgsUsdt    *out;
} UsdtSearch;

static bool
usdt_note(const char *desc, size_t descsz, void *arg)
{
	UsdtSearch *u = arg;

	take_note(u->e, u->nph, u->stapsdt_base, desc, descsz, u->provider, u->name, u->out);
	return false;				/* every site of the probe */
}

int
pgs_usdt_find(const char *bin, const char *provider, const char *name, PgsUsdt *out)
{
	int			fd = open(bin, O_RDONLY);
	Elf		   *e;
	size_t		shstrndx,
				nph;
	uint64_t	stapsdt_base;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (e == NULL || elf_getshdrstrndx(e, &shstrndx) != 0 || elf_getphdrnum(e, &nph) != 0)
	{
		if (e)
			elf_end(e);
		close(fd);
		return -ENOEXEC;
	}
	stapsdt_base = stapsdt_base_of(e, shstrndx);
	pgs_elf_each_note(e, "stapsdt", 3, usdt_note,
					  &(UsdtSearch) {e, nph, stapsdt_base, provider, name, out});
	elf_end(e);
	close(fd);
	return out->nsites > 0 ? 0 : -ENOENT;
}

/* ---------- function entries ---------- */

/* what pgs_func_offset looks for: a function's link-time address */
typedef struct FuncSearch
{
	const char *name;
	uint64_t	vaddr,
				size;
} FuncSearch;

static bool
func_named(const PgsElfSym *sym, void *arg)
{
	FuncSearch *f = arg;

	if (sym->type != STT_FUNC || strcmp(sym->name, f->name) != 0)
		return false;
	f->vaddr = sym->value;
	f->size = sym->size;
	return true;
}

/* f's function in e (.dynsym, else .symtab) */
static bool
find_func(Elf *e, FuncSearch *f)
{
	return pgs_elf_each_symbol(e, SHT_DYNSYM, func_named, f) || pgs_elf_each_symbol(e, SHT_SYMTAB, func_named, f);
}

/* whether e is x86-64 code (what the byte patterns below are) */
static bool
x86_64(Elf *e)
{
	GElf_Ehdr	eh;

	return gelf_getehdr(e, &eh) != NULL && eh.e_machine == EM_X86_64;
}

/* bin as an ELF file with its program headers' count, its descriptor in *fd; NULL: *rc says why */
static Elf *
open_elf(const char *bin, int *fd, size_t *nph, int *rc)
{
	Elf		   *e;

	if ((*fd = open(bin, O_RDONLY)) < 0)
	{
		*rc = -errno;
		return NULL;
	}
	elf_version(EV_CURRENT);
	e = elf_begin(*fd, ELF_C_READ, NULL);
	if (e == NULL || elf_kind(e) != ELF_K_ELF || elf_getphdrnum(e, nph) != 0)
	{
		if (e)
			elf_end(e);
		close(*fd);
		*rc = -ENOEXEC;
		return NULL;
	}
	return e;
}

int
pgs_func_offset(const char *bin, const char *func, uint64_t *off)
{
	static const unsigned char endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
	int			fd,
				rc;
	size_t		nph;
	Elf		   *e = open_elf(bin, &fd, &nph, &rc);
	FuncSearch	f = {func, 0, 0};
	unsigned char first[4];

	if (e == NULL)
		return rc;
	rc = -ENOENT;
	if (find_func(e, &f) && file_offset(e, nph, f.vaddr, true, off))
	{
		rc = 0;
		if (x86_64(e) && pread(fd, first, sizeof(first), (off_t) *off) == (ssize_t) sizeof(first) &&
			memcmp(first, endbr64, sizeof(first)) == 0)
			*off += sizeof(first);
	}
	elf_end(e);
	close(fd);
	return rc;
}

/* ---------- where secure_read has what be_tls_read read ---------- */

/* an x86-64 REX prefix with W (64-bit operands) */
static bool
rex_w(unsigned char b)
{
	return (b & 0xf8) == 0x48;
}

/* the registers a call preserves (x86-64 System V), by their encoding numbers */
static bool
callee_saved(int r)
{
	return r == 3 || r == 5 || (r >= 12 && r <= 15);
}

/*
 * In code (secure_read's bytes, n of them), just past its only call of
 * be_tls_read at code[c]: "mov %rax,%rX" (optional), "test %rX,%rX" and "js",
 * after which be_tls_read's result is still in rax; the offset past the js
 * (the js's in js), or 0 when the code is not that.
 */
static size_t
past_sign_test(const unsigned char *code, size_t n, size_t c, size_t *js)
{
	size_t		j = c + 5;
	int			tested = 0;		/* rax */

	if (j + 3 <= n && rex_w(code[j]) && !(code[j] & 4) && code[j + 1] == 0x89 && (code[j + 2] & 0xf8) == 0xc0)
	{
		tested = (code[j + 2] & 7) | ((code[j] & 1) << 3);
		j += 3;
	}
	if (j + 3 > n || !rex_w(code[j]) || code[j + 1] != 0x85 || (code[j + 2] & 0xc0) != 0xc0 ||
		((code[j + 2] & 7) | ((code[j] & 1) << 3)) != tested ||
		(((code[j + 2] >> 3) & 7) | ((code[j] & 4) << 1)) != tested)
		return 0;
	j += 3;
	*js = j;
	if (j + 2 <= n && code[j] == 0x78)
		return j + 2;			/* js rel8 */
	if (j + 6 <= n && code[j] == 0x0f && code[j + 1] == 0x88)
		return j + 6;			/* js rel32 */
	return 0;
}

/*
 * The register that holds the buffer (rsi, secure_read's second argument)
 * at the call at code[c]: the source of the last "mov %rX,%rsi" of the
 * register moves just before the call, one that no later move overwrites,
 * that the call preserves and that the function's prologue (before its
 * first call) filled from rsi; -1 when there is no such register.
 */
static int
buffer_register(const unsigned char *code, size_t c, int result)
{
	unsigned	written = 0;	/* registers the moves after it write */
	int			reg = -1;

	for (size_t k = c; k >= 3 && rex_w(code[k - 3]) && code[k - 2] == 0x89 && (code[k - 1] & 0xc0) == 0xc0; k -= 3)
	{
		int			dst = (code[k - 1] & 7) | ((code[k - 3] & 1) << 3),
					src = ((code[k - 1] >> 3) & 7) | ((code[k - 3] & 4) << 1);

		if (dst == 6)
		{
			reg = (written & (1u << src)) ? -1 : src;
			break;
		}
		written |= 1u << dst;
	}
	if (reg < 0 || !callee_saved(reg) || reg == result)
		return -1;
	/* "mov %rsi,%rX" before the first call */
	for (size_t k = 0; k + 3 <= c && code[k] != 0xe8; k++)
		if (code[k] == (0x48 | (reg >> 3)) && code[k + 1] == 0x89 && code[k + 2] == (0xf0 | (reg & 7)))
			return reg;
	return -1;
}

/* whether code[0..n) starts with a nop (prefixes 66/2e, then 90 or 0f 1f), which the kernel emulates under a uprobe */
static bool
is_nop(const unsigned char *code, size_t n)
{
	size_t		i = 0;

	while (i < n && (code[i] == 0x66 || code[i] == 0x2e))
		i++;
	return (i < n && code[i] == 0x90) || (i + 1 < n && code[i] == 0x0f && code[i + 1] == 0x1f);
}

int
pgs_tls_read_site(const char *bin, PgsTlsReadSite *site)
{
	return pgs_call_result_site(bin, "secure_read", "be_tls_read", site);
}

int
pgs_call_result_site(const char *bin, const char *caller, const char *callee, PgsTlsReadSite *site)
{
	int			fd,
				rc;
	size_t		nph,
				calls = 0,
				call = 0,
				past,
				js = 0;
	Elf		   *e = open_elf(bin, &fd, &nph, &rc);
	FuncSearch	sr = {caller, 0, 0},
				tls = {callee, 0, 0};
	uint64_t	off;
	unsigned char code[2048];
	ssize_t		n;

	memset(site, 0, sizeof(*site));
	if (e == NULL)
		return rc;
	rc = -ENOENT;
	if (!find_func(e, &sr) || !find_func(e, &tls) || sr.size == 0 || !file_offset(e, nph, sr.vaddr, true, &off))
		goto out;
	rc = -ENOEXEC;				/* from here: not code this knows (nor a caller longer than it reads) */
	if (!x86_64(e) || sr.size > sizeof(code))
		goto out;
	n = pread(fd, code, sr.size, (off_t) off);
	for (ssize_t i = 0; i + 5 <= n; i++)
	{
		int32_t		rel;

		memcpy(&rel, code + i + 1, 4);
		if (code[i] == 0xe8 && sr.vaddr + (uint64_t) i + 5 + (uint64_t) (int64_t) rel == tls.vaddr)
		{
			calls++;
			call = (size_t) i;
		}
	}
	if (calls == 1 && (past = past_sign_test(code, (size_t) n, call, &js)) > 0)
	{
		int			result = 0;

		/* the register the result was moved to, when it was (past_sign_test's optional move) */
		if (rex_w(code[call + 5]) && code[call + 6] == 0x89)
			result = (code[call + 7] & 7) | ((code[call + 5] & 1) << 3);
		if ((site->ptr_reg = buffer_register(code, call, result)) >= 0)
		{
			/* past the js when that is a nop; else the js itself (a branch: emulated too), which every read reaches */
			site->all_reads = !is_nop(code + past, (size_t) n - past);
			site->offset = off + (site->all_reads ? js : past);
			rc = 0;
		}
	}
out:
	elf_end(e);
	close(fd);
	return rc;
}

/* ---------- processes ---------- */

void
pgs_proc_visible_path(int pid, const char *path, char *out, size_t len)
{
	char		link[64],
				root[PATH_MAX],
				ns_self[64] = "",
				ns_pid[64] = "";
	ssize_t		n;

	snprintf(link, sizeof(link), "/proc/%d/root", pid);
	n = readlink(link, root, sizeof(root) - 1);
	root[n > 0 ? n : 0] = '\0';
	if (readlink("/proc/self/ns/mnt", ns_self, sizeof(ns_self) - 1) < 0)
		ns_self[0] = '\0';
	snprintf(link, sizeof(link), "/proc/%d/ns/mnt", pid);
	if (readlink(link, ns_pid, sizeof(ns_pid) - 1) < 0)
		ns_pid[0] = '\0';
	if (strcmp(ns_self, ns_pid) != 0)
		snprintf(out, len, "/proc/%d/root%s", pid, path);	/* another mount namespace */
	else if (n > 1)
		snprintf(out, len, "%s%s", root, path);	/* a chroot */
	else
		snprintf(out, len, "%s", path);
}

static bool
proc_exe(int pid, char *out, size_t len)
{
	char		link[64];
	ssize_t		n;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, out, len - 1);
	if (n < 0)
		return false;
	out[n] = '\0';
	/* a container's binary, named as its mount namespace sees it: reach it through its root */
	if (access(out, F_OK) != 0 && n < PATH_MAX - 64)
	{
		char		inside[PATH_MAX];

		memcpy(inside, out, (size_t) n + 1);
		pgs_proc_visible_path(pid, inside, out, len);
	}
	return true;
}

/*
 * The first line of /proc/PID/FILE that starts with prefix ("": the first
 * line), newline removed, into buf; false when the process or line is gone.
 */
static bool
proc_line(int pid, const char *file, const char *prefix, char *buf, size_t len)
{
	char		path[64];
	FILE	   *f;
	bool		found = false;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	while (!found && fgets(buf, (int) len, f))
		found = strncmp(buf, prefix, strlen(prefix)) == 0;
	fclose(f);
	if (found)
		buf[strcspn(buf, "\n")] = '\0';
	return found;
}

/* /proc/PID/stat from its state field on ("S 1234 ..."), NULL when gone */
static const char *
proc_stat_fields(int pid, char *buf, size_t len)
{
	char	   *p;

	if (!proc_line(pid, "stat", "", buf, len))
		return NULL;
	p = strrchr(buf, ')');		/* the command before it may hold spaces and parentheses */
	return p && p[1] == ' ' ? p + 2 : NULL;
}

static int
proc_ppid(int pid)
{
	char		buf[512];
	const char *fields = proc_stat_fields(pid, buf, sizeof(buf));
	int			ppid = 0;

	if (fields == NULL)
		return -1;
	sscanf(fields, "%*c %d", &ppid);
	return ppid;
}

/* false once pid has exited (a zombie counts as exited) */
static bool
proc_alive(int pid)
{
	char		buf[512];
	const char *fields = proc_stat_fields(pid, buf, sizeof(buf));

	return fields && fields[0] != 'Z' && fields[0] != 'X';
}

/* /proc/PID/comm, which everyone may read */
static bool
proc_is_named(int pid, const char *name)
{
	char		comm[64];

	return proc_line(pid, "comm", "", comm, sizeof(comm)) && strcmp(comm, name) == 0;
}

static bool
is_postgres_exe(const char *exe)
{
	static char cached[PATH_MAX];
	static bool cached_result;
	BinFacts	f;

	if (strcmp(exe, cached) == 0)
		return cached_result;
	snprintf(cached, sizeof(cached), "%s", exe);
	cached_result = read_bin_facts(exe, &f) == 0 && f.is_postgres;
	return cached_result;
}

static bool
is_postmaster(int pid, char *exe, size_t len)
{
	char		pexe[PATH_MAX];
	int			ppid;

	if (!proc_exe(pid, exe, len) || !is_postgres_exe(exe))
		return false;
	ppid = proc_ppid(pid);
	return ppid <= 0 || !proc_exe(ppid, pexe, sizeof(pexe)) || !is_postgres_exe(pexe);
}

static uint64_t
load_base(int pid, const char *bin)
{
	char		path[64],
				line[PATH_MAX + 256];
	FILE	   *f;
	uint64_t	base = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
	{
		unsigned long start,
					off;
		char		file[PATH_MAX] = "";

		if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &start, &off, file) == 3 &&
			off == 0 && strcmp(file, bin) == 0)
		{
			base = start;
			break;
		}
	}
	fclose(f);
	return base;
}

/*
 * The major version of a server binary, read from its own version string
 * ("PostgreSQL 17.12 (Debian 17.12-0+deb13u1) on x86_64-pc-linux-gnu, ...")
 * rather than by running it: a container's binary may not run here (another
 * libc).  0 when no such string is found.
 */
static int
server_major(const char *bin)
{
	int			fd = open(bin, O_RDONLY);
	struct stat st;
	const char *m,
			   *p,
			   *end;
	int			major = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || st.st_size <= 0)
	{
		close(fd);
		return 0;
	}
	m = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return 0;
	end = m + st.st_size;
	for (p = m; major == 0 && (p = memmem(p, (size_t) (end - p), "PostgreSQL ", 11)) != NULL; p += 11)
	{
		const char *q = p + 11;
		int			v = 0;

		if (p > m && p[-1] != '\0')
			continue;			/* the start of a string */
		while (q < end && *q >= '0' && *q <= '9' && v < 1000)
			v = v * 10 + (*q++ - '0');
		if (v < 10 || q >= end || *q != '.')
			continue;
		q++;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q + 2 < end && *q == ' ' && (q[1] == '(' || (q[1] == 'o' && q[2] == 'n')))
			major = v;
	}
	munmap((void *) m, (size_t) st.st_size);
	return major;
}

#define MAX_SERVERS 256

/*
 * The running postmasters (up to max) into pids: their number, -1 when /proc
 * cannot be read; hidden (when not NULL) counts the postgres processes whose
 * executable we may not read (another user's: a server could hide there).
 */
static int
scan_postmasters(int *pids, int max, int *hidden)
{
	DIR		   *d = opendir("/proc");
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < max)
	{
		char		exe[PATH_MAX];
		int			pid;

		if (!isdigit((unsigned char) de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		if (is_postmaster(pid, exe, sizeof(exe)))
			pids[n++] = pid;
		/* only a link we may not read hides a server; backends are not postmasters */
		else if (hidden && !proc_exe(pid, exe, sizeof(exe)) && errno == EACCES && proc_is_named(pid, "postgres"))
			(*hidden)++;
	}
	closedir(d);
	return n;
}

static void
list_postmasters(char *msg, size_t len, int *count, int *first)
{
	int			pids[64];
	size_t		off = 0;

	*count = pgs_list_postmasters(pids, 64);
	*first = *count > 0 ? pids[0] : 0;
	msg[0] = '\0';
	for (int i = 0; i < *count && off < len; i++)
		off += snprintf(msg + off, len - off, "%s%d", i > 0 ? ", " : "", pids[i]);
}

int
pgs_server_pid(int host_pid)
{
	char		line[256];
	char	   *last;
	int			inner;

	/* NSpid: the pid in each namespace from the host's down to the process's own */
	if (!proc_line(host_pid, "status", "NSpid:", line, sizeof(line)))
		return host_pid;
	last = strrchr(line, '\t');
	inner = last ? atoi(last + 1) : 0;
	return inner > 0 ? inner : host_pid;
}

int
pgs_host_pid(int postmaster, int server_pid)
{
	char		path[96];
	FILE	   *f;
	int			child,
				found = 0;

	if (postmaster <= 0 || pgs_server_pid(postmaster) == postmaster)
		return server_pid;		/* the server shares our pid namespace */
	if (server_pid == pgs_server_pid(postmaster))
		return postmaster;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", postmaster, postmaster);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (!found && fscanf(f, "%d", &child) == 1)
		if (pgs_server_pid(child) == server_pid)
			found = child;
	fclose(f);
	return found;
}

/* the pid in pid's own namespace ("-" when it is the host's) */
static void
ns_pid_of(int pid, char *out, size_t len)
{
	int			inner = pgs_server_pid(pid);

	if (inner != pid)
		snprintf(out, len, "%d", inner);
	else
		snprintf(out, len, "-");
}

/* "pgscope targets": the running servers one could trace */
/* one row of pgscope targets: postmaster pid running exe (a server in a container: its pid there too) */
static void
print_target(int pid, const char *exe)
{
	char		cwd[PATH_MAX],
				link[64],
				nspid[32],
				vcwd[PATH_MAX],
				vexe[PATH_MAX];
	ssize_t		len;

	/* the postmaster works in its data directory */
	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	len = readlink(link, cwd, sizeof(cwd) - 1);
	cwd[len > 0 ? len : 0] = '\0';
	/* a server in a container: its paths as the host reaches them */
	ns_pid_of(pid, nspid, sizeof(nspid));
	if (access(exe, F_OK) == 0)
		snprintf(vexe, sizeof(vexe), "%s", exe);
	else
		pgs_proc_visible_path(pid, exe, vexe, sizeof(vexe));
	if (len > 0 && access(cwd, F_OK) != 0)
		pgs_proc_visible_path(pid, cwd, vcwd, sizeof(vcwd));
	else
		snprintf(vcwd, sizeof(vcwd), "%s", len > 0 ? cwd : "?");
	printf("%8d %8s %7d  %-40s %s\n", pid, nspid, server_major(vexe), vcwd, vexe);
}

int
cmd_targets(int argc, char **argv)
{
	int			pids[MAX_SERVERS],
				n,
				hidden = 0;

	pgs_cmd = "pgscope targets";
	if (argc > 1)
	{
		if (strcmp(argv[1], "--help") == 0)
		{
			printf("usage: pgscope targets   (running PostgreSQL servers: postmaster pid, version, data directory, binary)\n");
			return 0;
		}
		pgs_usage("unexpected argument \"%s\"", argv[1]);
	}
	if ((n = scan_postmasters(pids, MAX_SERVERS, &hidden)) < 0)
		pgs_die("cannot read /proc: %s", strerror(errno));
	printf("%8s %8s %7s  %-40s %s\n", "PID", "NS PID", "VERSION", "DATA DIRECTORY", "BINARY");
	for (int i = 0; i < n; i++)
	{
		char		exe[PATH_MAX];

		if (proc_exe(pids[i], exe, sizeof(exe)))
			print_target(pids[i], exe);
	}
	if (hidden > 0)
	{
		pgs_err("%d postgres processes belong to other users and cannot be inspected without root "
				"(or CAP_SYS_PTRACE): run pgscope targets with sudo", hidden);
		return EXIT_RUNTIME;
	}
	if (n == 0)
		fprintf(stderr, "%s: no running PostgreSQL server found\n", pgs_cmd);
	return 0;
}

/* does process pid work in directory dir (its cwd is dir)? */
static bool
works_in(int pid, const char *dir)
{
	char		link[64];
	struct stat a,
				b;

	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	return pid > 0 && stat(link, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* the postmaster working in data directory dir, by the host's pids; 0 if none */
static int
postmaster_of(const char *dir)
{
	DIR		   *d = opendir("/proc");
	struct dirent *de;
	int			found = 0;

	if (d == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL)
	{
		char		exe[PATH_MAX];
		int			pid;

		if (!isdigit((unsigned char) de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		if (works_in(pid, dir) && is_postmaster(pid, exe, sizeof(exe)))
			found = pid;
	}
	closedir(d);
	return found;
}

int
pgs_datadir_postmaster(const char *datadir)
{
	char		path[PATH_MAX + 32];
	FILE	   *pf;
	int			pid = 0;

	snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
	pf = fopen(path, "r");
	if (pf == NULL)
		return -1;
	if (fscanf(pf, "%d", &pid) != 1)
		pid = -1;
	fclose(pf);
	/* in a container postmaster.pid has the pid of its namespace: find the host's */
	if (pid > 0 && !works_in(pid, datadir))
		pid = postmaster_of(datadir);
	return pid;
}

/* the postmaster of -D's data directory, by the host's pid; exits 2 when none runs there */
static int
datadir_postmaster(const char *datadir)
{
	int			pid = pgs_datadir_postmaster(datadir);

	if (pid < 0)
		pgs_usage("no running server in %s (cannot read %s/postmaster.pid)", datadir, datadir);
	if (pid == 0)
		pgs_usage("the server of %s is not running", datadir);
	return pid;
}

/* process pid as the target: a postmaster, or a backend (its parent a server too) */
static void
target_process(PgsTarget *t, int pid, const char *bin)
{
	char		exe[PATH_MAX],
				pexe[PATH_MAX];
	int			ppid;

	if (!proc_exe(pid, exe, sizeof(exe)))
		pgs_usage("no process %d (or it is not ours to trace)", pid);
	if (!is_postgres_exe(exe))
		pgs_usage("process %d (%s) is not a PostgreSQL server", pid, exe);
	ppid = proc_ppid(pid);
	if (ppid > 0 && proc_exe(ppid, pexe, sizeof(pexe)) && is_postgres_exe(pexe))
	{
		t->backend = pid;
		t->postmaster = ppid;
	}
	else
		t->postmaster = pid;
	snprintf(t->bin, sizeof(t->bin), "%s", exe);
	if (bin)
	{
		char		want[PATH_MAX];

		if (realpath(bin, want) == NULL || strcmp(want, exe) != 0)
			pgs_usage("process %d runs %s, not %s", pid, exe, bin);
	}
}

/* with neither --pid, -D nor --bin: the only running server */
static void
target_only_server(PgsTarget *t)
{
	char		list[512];
	int			n,
				first;

	list_postmasters(list, sizeof(list), &n, &first);
	if (n == 0)
		pgs_die("no running PostgreSQL server found: start one, or give --pid, -D or --bin");
	if (n > 1)
		pgs_usage("%d PostgreSQL servers are running (postmaster pids %s): choose one with --pid or -D", n, list);
	t->postmaster = first;
	if (!proc_exe(first, t->bin, sizeof(t->bin)))
		pgs_die("cannot read the executable of process %d", first);
}

/* what the binary is: its version, its offsets table, its exported globals at their runtime addresses; NULL or why not */
static const char *
binary_facts(PgsTarget *t, char *why, size_t len)
{
	BinFacts	f;

	if (read_bin_facts(t->bin, &f) != 0)
		return snprintf(why, len, "%s is not an ELF executable", t->bin), why;
	if (!f.is_postgres)
		return snprintf(why, len, "%s is not a PostgreSQL server binary (it does not export PostgresMain)", t->bin), why;
	t->major = server_major(t->bin);
	if (t->major == 0)
		return snprintf(why, len, "cannot tell which PostgreSQL version %s is", t->bin), why;
	for (size_t i = 0; i < sizeof(pgs_pg_offsets) / sizeof(pgs_pg_offsets[0]); i++)
		if (pgs_pg_offsets[i].major == t->major)
			t->offsets = &pgs_pg_offsets[i];
	if (t->postmaster)
	{
		/* backends are forked, not exec'd: the postmaster's layout holds in all of them */
		uint64_t	base = f.pie ? load_base(t->postmaster, t->bin) : 0;
		uint64_t	shift = f.pie ? base - f.load_vaddr : 0;

		t->load_shift = shift;
		if (!f.pie || base)
		{
			for (size_t g = 0; g < PGS_NGLOBALS; g++)
			{
				uint64_t	v = f.globals[g];

				*(uint64_t *) ((char *) t + exported_globals[g].target_off) = v ? v + shift : 0;
			}
		}
	}
	return NULL;
}

static void
target_binary(PgsTarget *t)
{
	char		why[PATH_MAX + 128];

	if (binary_facts(t, why, sizeof(why)) != NULL)
		pgs_usage("%s", why);
}

int
pgs_list_postmasters(int *pids, int max)
{
	int			n = scan_postmasters(pids, max, NULL);

	return n < 0 ? 0 : n;
}

const char *
pgs_target_of_postmaster(PgsTarget *t, int pid, char *why, size_t len)
{
	char		cwd[64];
	ssize_t		n;

	memset(t, 0, sizeof(*t));
	if (!is_postmaster(pid, t->bin, sizeof(t->bin)))
		return snprintf(why, len, "process %d is not a PostgreSQL postmaster (any more)", pid), why;
	t->postmaster = pid;
	snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", pid);
	if ((n = readlink(cwd, t->datadir, sizeof(t->datadir) - 1)) > 0)
		t->datadir[n] = '\0';
	return binary_facts(t, why, len);
}

bool
pgs_process_alive(int pid)
{
	return proc_alive(pid);
}

void
pgs_resolve_target(PgsTarget *t, const PgsTargetOpts *o)
{
	int			pid = (int) o->pid;

	memset(t, 0, sizeof(*t));
	if (o->datadir && o->pid)
		pgs_usage("give either --pid or -D, not both");
	if (o->datadir)
	{
		pid = datadir_postmaster(o->datadir);
		snprintf(t->datadir, sizeof(t->datadir), "%s", o->datadir);
	}
	if (pid)
		target_process(t, pid, o->bin);
	else if (o->bin)
	{
		if (realpath(o->bin, t->bin) == NULL)
			pgs_usage("cannot find %s: %s", o->bin, strerror(errno));
	}
	else
		target_only_server(t);
	watch_pid = t->backend ? t->backend : t->postmaster;
	watch_is_backend = t->backend != 0;
	target_binary(t);
}

void
pgs_map_foreach(int fd, size_t key_size, size_t value_size, bool percpu, pgs_map_cb cb, void *arg)
{
	int			n = percpu ? libbpf_num_possible_cpus() : 1;
	/* the kernel lays per-CPU values out 8-byte aligned */
	size_t		stride = percpu ? (value_size + 7) / 8 * 8 : value_size;
	char	   *key = pgs_xmalloc(key_size),
			   *next = pgs_xmalloc(key_size),
			   *vals = pgs_xmalloc(stride * (n > 0 ? n : 1));
	int			err = bpf_map_get_next_key(fd, NULL, next);

	while (err == 0)
	{
		memcpy(key, next, key_size);
		if (bpf_map_lookup_elem(fd, key, vals) == 0)
			cb(key, vals, n, arg);
		err = bpf_map_get_next_key(fd, key, next);
	}
	free(key);
	free(next);
	free(vals);
}

void *
pgs_rows_add(PgsRows *rows)
{
	char	   *r;

	rows->rows = pgs_grow(rows->rows, &rows->cap, rows->n, rows->row_size);
	r = (char *) rows->rows + rows->n++ * rows->row_size;
	memset(r, 0, rows->row_size);
	return r;
}

typedef struct RowsCtx
{
	PgsRows		rows;
	pgs_row_fill fill;
} RowsCtx;

static void
fill_one(const void *key, const void *values, int ncpu, void *arg)
{
	RowsCtx    *c = arg;

	c->fill(&c->rows, key, values, ncpu);
}

void *
pgs_map_rows(int fd, size_t key_size, size_t value_size, size_t row_size, pgs_row_fill fill,
			 int (*cmp) (const void *, const void *), size_t *n)
{
	RowsCtx		c = {{NULL, 0, 0, row_size}, fill};

	pgs_map_foreach(fd, key_size, value_size, true, fill_one, &c);
	if (c.rows.n > 1)
		qsort(c.rows.rows, c.rows.n, row_size, cmp);
	*n = c.rows.n;
	return c.rows.rows;
}

void
pgs_bad_option(char **argv, int optind, bool missing, const char *cmd)
{
	pgs_usage("%s \"%s\" (see pgscope %s --help)", missing ? "option needs a value:" : "unknown option",
			  argv[optind - 1], cmd);
}

void
pgs_no_more_args(int argc, char **argv, int optind, const char *cmd)
{
	if (optind < argc)
		pgs_usage("unexpected argument \"%s\" (see pgscope %s --help)", argv[optind], cmd);
}

double
pgs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int			pgs_target_gone = 0;
bool		pgs_output_closed = false;

bool
pgs_duration_over(double start, double duration)
{
	static double last_check;
	double		now = pgs_now();

	/* a reader that went away (| head): stop like Ctrl-C, the summary goes to stderr */
	if (pgs_output_closed || fflush(stdout) != 0 || ferror(stdout))
	{
		pgs_output_closed = true;
		return true;
	}
	if (watch_pid && now - last_check >= 0.5)
	{
		last_check = now;
		if (!proc_alive(watch_pid))
		{
			pgs_target_gone = watch_pid;
			pgs_err("the traced %s (pid %d) has exited: detaching", watch_is_backend ? "backend" : "server", watch_pid);
			return true;
		}
	}
	return duration >= 0 && now - start >= duration;
}

int
pgs_tracer_status(void)
{
	/* the loop has ended: the summary's name lookups must not be cancelled by the signal that ended it */
	pgs_ack_stop();
	return pgs_target_gone ? EXIT_RUNTIME : 0;
}

bool
pgs_emit(const char *s, size_t n)
{
	if (pgs_output_closed)
		return false;
	if (fwrite(s, 1, n, stdout) != n || fflush(stdout) != 0)
	{
		pgs_output_closed = true;
		return false;
	}
	return true;
}

void
pgs_mono_to_clock(uint64_t mono_ns, char *hms, size_t hmslen, char *iso, size_t isolen)
{
	struct timespec mono,
				real;
	int64_t		offset_ns;
	int64_t		real_ns;
	time_t		secs;
	struct tm	tm;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	offset_ns = ((int64_t) real.tv_sec - mono.tv_sec) * 1000000000LL + (real.tv_nsec - mono.tv_nsec);
	real_ns = (int64_t) mono_ns + offset_ns;
	secs = (time_t) (real_ns / 1000000000LL);
	if (hms)
	{
		localtime_r(&secs, &tm);
		snprintf(hms, hmslen, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
				 (int) (real_ns % 1000000000LL / 1000000));
	}
	if (iso)
	{
		gmtime_r(&secs, &tm);
		snprintf(iso, isolen, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
				 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (real_ns % 1000000000LL / 1000));
	}
}

static void *
destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

void
pgs_skel_detach(struct bpf_object_skeleton *s)
{
	pthread_t	th[64];
	int			n = 0;
	sigset_t	all,
				old;

	if (s == NULL)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < s->prog_cnt; i++)
	{
		/* (entries of the size the skeleton was generated with) */
		struct bpf_prog_skeleton *p = (struct bpf_prog_skeleton *) ((char *) s->progs + (size_t) i * s->prog_skel_sz);
		struct bpf_link *l = p->link ? *p->link : NULL;

		if (l == NULL)
			continue;
		*p->link = NULL;		/* (the skeleton's destroy then has nothing to detach) */
		if (n < 64 && pthread_create(&th[n], NULL, destroy_link, l) == 0)
			n++;
		else
			bpf_link__destroy(l);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}
