/*
 * symbols.c - user and kernel addresses to names (see symbols.h).
 *
 * A file's functions are the STT_FUNC symbols of its .symtab (kept in a
 * debug build or a debug file: /usr/lib/debug/.build-id/xx/rest.debug),
 * else of its .dynsym (what a stripped library exports), sorted by
 * address; an address falls in a function only within its st_size.  The
 * address in the file is found through the mapping (its file offset) and
 * the PT_LOAD segment that holds that offset.  An address no symbol covers
 * (a static function of a stripped binary) is named by the start of the
 * function that holds it, from the unwind tables every binary keeps
 * (.eh_frame_hdr's sorted table and each FDE's range), so one function is
 * one frame; "file+0xVADDR" of the address itself when not even those say.
 */
#include "symbols.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracer.h"
#include "util.h"

typedef struct Sym
{
	uint64_t	addr;
	uint64_t	size;
	const char *name;			/* into the file's names */
} Sym;

typedef struct Range
{
	uint64_t	start,
				len;
} Range;

typedef struct Seg
{
	uint64_t	offset,
				vaddr,
				filesz;
} Seg;

typedef struct SymFile
{
	char	   *path;			/* as the process sees it */
	char	   *base;			/* its last component */
	Sym		   *syms;
	size_t		nsyms;
	Seg			segs[16];
	int			nsegs;
	char	   *names;			/* every name, NUL-separated */
	uint64_t	object;			/* st_value of the exported object wanted (pgs_syms_want_object), 0: none */
	Range	   *fdes;			/* functions' ranges from the unwind tables, sorted */
	size_t		nfdes;
	struct SymFile *next;
} SymFile;

typedef struct Map
{
	uint64_t	start,
				end,
				offset;
	SymFile    *file;
} Map;

typedef struct Proc
{
	int			pid;
	int			like;			/* > 0: named through that process's mappings */
	Map		   *maps;
	size_t		nmaps;
	struct Proc *next;
} Proc;

typedef struct KSym
{
	uint64_t	addr;
	char	   *name;
} KSym;

struct PgsSyms
{
	SymFile    *files;
	Proc	   *procs;
	KSym	   *ksyms;
	size_t		nksyms;
	bool		ksyms_read;
	const char *object;			/* an exported object whose address is asked */
};

PgsSyms *
pgs_syms_new(void)
{
	PgsSyms    *s = pgs_xmalloc(sizeof(PgsSyms));

	memset(s, 0, sizeof(*s));
	return s;
}

static void
free_procs(Proc *p)
{
	while (p)
	{
		Proc	   *next = p->next;

		free(p->maps);
		free(p);
		p = next;
	}
}

void
pgs_syms_free(PgsSyms *s)
{
	if (s == NULL)
		return;
	for (SymFile *f = s->files, *next; f; f = next)
	{
		next = f->next;
		free(f->path);
		free(f->syms);
		free(f->names);
		free(f->fdes);
		free(f);
	}
	free_procs(s->procs);
	for (size_t i = 0; i < s->nksyms; i++)
		free(s->ksyms[i].name);
	free(s->ksyms);
	free(s);
}

/* ---------- one file's functions ---------- */

typedef struct Collect
{
	Sym		   *syms;
	size_t		n,
				cap;
	PgsBuf		names;
	size_t	   *name_at;		/* offsets into names, turned into pointers at the end */
} Collect;

/* a function symbol into the collection */
static bool
collect_one(const PgsElfSym *sym, void *arg)
{
	Collect    *c = arg;
	size_t		cap = c->cap;

	if (sym->type != STT_FUNC || sym->value == 0)
		return false;
	c->syms = pgs_grow(c->syms, &c->cap, c->n, sizeof(Sym));
	c->name_at = pgs_grow(c->name_at, &cap, c->n, sizeof(size_t));
	c->syms[c->n] = (Sym) {sym->value, sym->size, NULL};
	c->name_at[c->n++] = c->names.len;
	pgs_buf_append(&c->names, sym->name, strlen(sym->name) + 1);
	return false;
}

/* the STT_FUNC symbols of the section of type (SHT_SYMTAB or SHT_DYNSYM) of e; how many */
static size_t
collect_syms(Elf *e, Elf64_Word type, Collect *c)
{
	size_t		before = c->n;

	pgs_elf_each_symbol(e, type, collect_one, c);
	return c->n - before;
}

typedef struct ObjectSearch
{
	const char *name;
	uint64_t	value;
} ObjectSearch;

static bool
object_named(const PgsElfSym *sym, void *arg)
{
	ObjectSearch *os = arg;

	if (sym->type != STT_OBJECT || strcmp(sym->name, os->name) != 0)
		return false;
	os->value = sym->value;
	return true;
}

/* the st_value of the object named name in e's .dynsym, 0 when it exports none */
static uint64_t
exported_object(Elf *e, const char *name)
{
	ObjectSearch os = {name, 0};

	if (name)
		pgs_elf_each_symbol(e, SHT_DYNSYM, object_named, &os);
	return os.value;
}

/* the data of e's section named name, its address and size; NULL when it has none */
static Elf_Data *
section_named(Elf *e, const char *name, uint64_t *addr, size_t *size)
{
	Elf_Scn    *scn = NULL;
	size_t		shstrndx;

	if (elf_getshdrstrndx(e, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(e, scn)) != NULL)
	{
		GElf_Shdr	sh;
		const char *n;
		Elf_Data   *d;

		if (gelf_getshdr(scn, &sh) && (n = elf_strptr(e, shstrndx, sh.sh_name)) && strcmp(n, name) == 0 &&
			sh.sh_type != SHT_NOBITS && (d = elf_getdata(scn, NULL)) != NULL && d->d_buf)
		{
			*addr = sh.sh_addr;
			*size = d->d_size;
			return d;
		}
	}
	return NULL;
}

/*
 * The functions' ranges from the unwind tables: .eh_frame_hdr's table
 * (version 1, its entries datarel sdata4, as the GNU and LLVM linkers write
 * it) gives each function's start and its FDE, whose pc_begin (pcrel sdata4)
 * must agree before its pc_range (4 bytes) is taken; any other layout: none.
 */
static void
collect_fdes(Elf *e, SymFile *f)
{
	uint64_t	haddr,
				faddr;
	size_t		hsz,
				fsz;
	Elf_Data   *h = section_named(e, ".eh_frame_hdr", &haddr, &hsz),
			   *fr = section_named(e, ".eh_frame", &faddr, &fsz);
	const uint8_t *hp;
	uint32_t	count;

	if (h == NULL || fr == NULL || hsz < 12)
		return;
	hp = h->d_buf;
	/* version 1; eh_frame_ptr 4 bytes; the count udata4; the table datarel sdata4 */
	if (hp[0] != 1 || (hp[1] & 0x0f) != 0x0b || hp[2] != 0x03 || hp[3] != 0x3b)
		return;
	memcpy(&count, hp + 8, 4);
	if (count == 0 || 12 + (uint64_t) count * 8 > hsz)
		return;
	f->fdes = pgs_xmalloc(count * sizeof(Range));
	for (uint32_t i = 0; i < count; i++)
	{
		int32_t		loc,
					fde,
					pcb;
		uint32_t	length,
					range;
		uint64_t	start,
					at;

		memcpy(&loc, hp + 12 + (size_t) i * 8, 4);
		memcpy(&fde, hp + 16 + (size_t) i * 8, 4);
		start = haddr + (int64_t) loc;
		at = haddr + (int64_t) fde;
		if (at < faddr || at - faddr + 16 > fsz)
			continue;
		memcpy(&length, (const uint8_t *) fr->d_buf + (at - faddr), 4);
		memcpy(&pcb, (const uint8_t *) fr->d_buf + (at - faddr) + 8, 4);
		memcpy(&range, (const uint8_t *) fr->d_buf + (at - faddr) + 12, 4);
		if (length == 0xffffffff || at + 8 + (int64_t) pcb != start)
		{
			/* not the encoding read here: no ranges rather than wrong ones */
			free(f->fdes);
			f->fdes = NULL;
			f->nfdes = 0;
			return;
		}
		f->fdes[f->nfdes++] = (Range) {start, range};
	}
}

typedef struct Hex
{
	char	   *hex;
	size_t		len;
} Hex;

static bool
build_id_note(const char *desc, size_t descsz, void *arg)
{
	Hex		   *h = arg;

	for (size_t i = 0; i < descsz && 2 * i + 3 <= h->len; i++)
		snprintf(h->hex + 2 * i, 3, "%02x", (unsigned char) desc[i]);
	return true;
}

/* the build id of e as hex, "" when it has none */
static void
build_id(Elf *e, char *hex, size_t len)
{
	hex[0] = '\0';
	pgs_elf_each_note(e, "GNU", NT_GNU_BUILD_ID, build_id_note, &(Hex) {hex, len});
}

/* the functions of the debug file of build id hex (in the root prefix), if one is installed; how many */
static size_t
collect_debug_file(const char *root, const char *hex, Collect *c)
{
	char		path[PATH_MAX];
	int			fd;
	Elf		   *e;
	size_t		n = 0;

	if (strlen(hex) < 4)
		return 0;
	snprintf(path, sizeof(path), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", root, hex, hex + 2);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if ((e = elf_begin(fd, ELF_C_READ, NULL)) != NULL)
	{
		n = collect_syms(e, SHT_SYMTAB, c);
		elf_end(e);
	}
	close(fd);
	return n;
}

static int
sym_cmp(const void *a, const void *b)
{
	const Sym  *x = a,
			   *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr ? 1 : (x->size > y->size) - (x->size < y->size);
}

/* reads the file (opened at seen, named path, root: the prefix it lives under) */
static SymFile *
load_file(PgsSyms *s, const char *path, const char *seen, const char *root)
{
	SymFile    *f = pgs_xmalloc(sizeof(SymFile));
	Collect		c = {0};
	int			fd = open(seen, O_RDONLY | O_CLOEXEC);
	Elf		   *e = NULL;
	size_t		nph = 0;
	char		hex[130];

	memset(f, 0, sizeof(*f));
	f->path = pgs_xstrdup(path);
	f->base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
	pgs_buf_init(&c.names);
	elf_version(EV_CURRENT);
	if (fd >= 0 && (e = elf_begin(fd, ELF_C_READ, NULL)) != NULL && elf_kind(e) == ELF_K_ELF &&
		elf_getphdrnum(e, &nph) == 0)
	{
		for (size_t i = 0; i < nph && f->nsegs < 16; i++)
		{
			GElf_Phdr	ph;

			if (gelf_getphdr(e, (int) i, &ph) && ph.p_type == PT_LOAD)
				f->segs[f->nsegs++] = (Seg) {ph.p_offset, ph.p_vaddr, ph.p_filesz};
		}
		build_id(e, hex, sizeof(hex));
		f->object = exported_object(e, s->object);
		collect_fdes(e, f);
		/* a debug file's full table, else the file's own .symtab, else what it exports */
		if (collect_debug_file(root, hex, &c) == 0 && collect_syms(e, SHT_SYMTAB, &c) == 0)
			collect_syms(e, SHT_DYNSYM, &c);
	}
	if (e)
		elf_end(e);
	if (fd >= 0)
		close(fd);
	f->names = c.names.data;
	for (size_t i = 0; i < c.n; i++)
		c.syms[i].name = f->names + c.name_at[i];
	free(c.name_at);
	qsort(c.syms, c.n, sizeof(Sym), sym_cmp);
	f->syms = c.syms;
	f->nsyms = c.n;
	f->next = s->files;
	s->files = f;
	return f;
}

/* whether path is the file of inode ino */
static bool
is_inode(const char *path, unsigned long ino)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_ino == ino;
}

/*
 * The file of a mapping as /proc/PID/maps names it: a path from our root
 * when the process's root is below ours (a chroot), from its own root
 * otherwise (a container): whichever holds the mapping's inode.
 */
static SymFile *
file_of(PgsSyms *s, int pid, const char *path, unsigned long ino)
{
	char		seen[PATH_MAX + 64],
				root[PATH_MAX] = "";

	for (SymFile *f = s->files; f; f = f->next)
		if (strcmp(f->path, path) == 0)
			return f;
	snprintf(seen, sizeof(seen), "%s", path);
	if (!is_inode(seen, ino))
	{
		pgs_proc_visible_path(pid, path, seen, sizeof(seen));
		if (strcmp(seen, path) != 0 && strlen(seen) > strlen(path))
			snprintf(root, sizeof(root), "%.*s", (int) (strlen(seen) - strlen(path)), seen);
		if (!is_inode(seen, ino))
			snprintf(seen, sizeof(seen), "/proc/%d/root%s", pid, path);
	}
	else if (pgs_proc_visible_path(pid, "/", root, sizeof(root)), strcmp(root, "/") == 0)
		root[0] = '\0';		/* our own root: the debug files are ours */
	else
		root[strlen(root) - 1] = '\0';	/* the process's root: its debug files */
	return load_file(s, path, seen, root);
}

/* ---------- processes ---------- */

static Proc *
proc_of(PgsSyms *s, int pid)
{
	for (Proc *p = s->procs; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

bool
pgs_syms_have_process(PgsSyms *s, int pid)
{
	return proc_of(s, pid) != NULL;
}

bool
pgs_syms_read_process(PgsSyms *s, int pid, bool force)
{
	char		path[64],
				line[PATH_MAX + 256];
	FILE	   *fp;
	Proc	   *p = proc_of(s, pid);
	size_t		cap = 0;

	if (p && !force)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if ((fp = fopen(path, "re")) == NULL)
		return false;
	if (p == NULL)
	{
		p = pgs_xmalloc(sizeof(Proc));
		memset(p, 0, sizeof(*p));
		p->pid = pid;
		p->next = s->procs;
		s->procs = p;
	}
	p->like = 0;
	p->nmaps = 0;
	cap = 0;
	free(p->maps);
	p->maps = NULL;
	while (fgets(line, sizeof(line), fp))
	{
		unsigned long long start,
					end,
					off;
		unsigned long ino;
		char		perms[8],
					file[PATH_MAX];

		file[0] = '\0';
		if (sscanf(line, "%llx-%llx %7s %llx %*s %lu %4095[^\n]", &start, &end, perms, &off, &ino, file) < 5 ||
			perms[2] != 'x' || file[0] != '/')
			continue;
		p->maps = pgs_grow(p->maps, &cap, p->nmaps, sizeof(Map));
		p->maps[p->nmaps++] = (Map) {start, end, off, file_of(s, pid, file, ino)};
	}
	fclose(fp);
	return true;
}

void
pgs_syms_alias(PgsSyms *s, int pid, int like)
{
	Proc	   *p = pgs_xmalloc(sizeof(Proc));

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->like = like;
	p->next = s->procs;
	s->procs = p;
}

/*
 * Of n elements of size bytes sorted by the uint64_t at key_off, how many
 * have a key at or below v (the index after the last of them).
 */
static size_t
count_up_to(const void *base, size_t n, size_t size, size_t key_off, uint64_t v)
{
	size_t		lo = 0,
				hi = n;

	while (lo < hi)
	{
		size_t		mid = (lo + hi) / 2;
		uint64_t	key;

		memcpy(&key, (const char *) base + mid * size + key_off, sizeof(key));
		if (key <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* the function of f covering vaddr, NULL when none does */
static const Sym *
covering(const SymFile *f, uint64_t vaddr)
{
	/* after the last symbol starting at or below vaddr */
	size_t		lo = count_up_to(f->syms, f->nsyms, sizeof(Sym), offsetof(Sym, addr), vaddr);

	/* the nearest few below (aliases share an address; a short function may follow a long one's start) */
	for (size_t i = lo; i > 0 && lo - i < 8; i--)
	{
		const Sym  *y = &f->syms[i - 1];

		if (vaddr < y->addr + (y->size ? y->size : 1))
			return y;
	}
	return NULL;
}

/* the unwind tables' function holding vaddr, NULL when none does */
static const Range *
fde_of(const SymFile *f, uint64_t vaddr)
{
	size_t		lo = count_up_to(f->fdes, f->nfdes, sizeof(Range), offsetof(Range, start), vaddr);

	return lo > 0 && vaddr < f->fdes[lo - 1].start + f->fdes[lo - 1].len ? &f->fdes[lo - 1] : NULL;
}

const char *
pgs_syms_user(PgsSyms *s, int pid, uint64_t ip, bool caller, char *buf, size_t len)
{
	Proc	   *p = proc_of(s, pid);
	uint64_t	at = caller && ip > 0 ? ip - 1 : ip;

	if (p && p->like > 0)
		p = proc_of(s, p->like);
	for (size_t i = 0; p && i < p->nmaps; i++)
	{
		const Map  *m = &p->maps[i];
		uint64_t	off = at - m->start + m->offset,
					vaddr = off;
		const Sym  *y;
		const Range *r;

		if (at < m->start || at >= m->end)
			continue;
		for (int g = 0; g < m->file->nsegs; g++)
			if (off >= m->file->segs[g].offset && off < m->file->segs[g].offset + m->file->segs[g].filesz)
				vaddr = off - m->file->segs[g].offset + m->file->segs[g].vaddr;
		if ((y = covering(m->file, vaddr)) != NULL)
			snprintf(buf, len, "%s", y->name);
		else if ((r = fde_of(m->file, vaddr)) != NULL)
			snprintf(buf, len, "%s+0x%llx", m->file->base, (unsigned long long) r->start);
		else
			snprintf(buf, len, "%s+0x%llx", m->file->base, (unsigned long long) vaddr);
		return buf;
	}
	snprintf(buf, len, "[unknown]");
	return buf;
}

void
pgs_syms_want_object(PgsSyms *s, const char *name)
{
	s->object = name;
}

/* the load bias of a mapping: runtime address = bias + link-time address */
static uint64_t
bias_of(const Map *m)
{
	for (int g = 0; g < m->file->nsegs; g++)
		if (m->offset >= m->file->segs[g].offset && m->offset < m->file->segs[g].offset + m->file->segs[g].filesz)
			return m->start - (m->file->segs[g].vaddr + (m->offset - m->file->segs[g].offset));
	return m->start - m->offset;
}

uint64_t
pgs_syms_object_address(PgsSyms *s, int pid)
{
	Proc	   *p = proc_of(s, pid);

	for (size_t i = 0; p && p->like == 0 && i < p->nmaps; i++)
		if (p->maps[i].file->object)
			return bias_of(&p->maps[i]) + p->maps[i].file->object;
	return 0;
}

/* ---------- the kernel ---------- */

static int
ksym_cmp(const void *a, const void *b)
{
	const KSym *x = a,
			   *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

static void
read_kallsyms(PgsSyms *s)
{
	FILE	   *fp = fopen("/proc/kallsyms", "re");
	char		line[512];
	size_t		cap = 0;

	s->ksyms_read = true;
	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp))
	{
		unsigned long long addr;
		char		type,
					name[256];

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || addr == 0 ||
			(type != 't' && type != 'T' && type != 'w' && type != 'W'))
			continue;
		s->ksyms = pgs_grow(s->ksyms, &cap, s->nksyms, sizeof(KSym));
		s->ksyms[s->nksyms++] = (KSym) {addr, pgs_xstrdup(name)};
	}
	fclose(fp);
	qsort(s->ksyms, s->nksyms, sizeof(KSym), ksym_cmp);
}

const char *
pgs_syms_kernel(PgsSyms *s, uint64_t ip, char *buf, size_t len)
{
	size_t		lo;

	if (!s->ksyms_read)
		read_kallsyms(s);
	lo = count_up_to(s->ksyms, s->nksyms, sizeof(KSym), offsetof(KSym, addr), ip);
	snprintf(buf, len, "%s", lo > 0 ? s->ksyms[lo - 1].name : "[unknown]");
	return buf;
}
