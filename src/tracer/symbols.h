/*
 * symbols.h - names for the addresses of a stack: user addresses through
 * the process's mappings and each mapped file's symbols (.symtab, else
 * .dynsym, and the .symtab of a debug file found by build id), kernel
 * addresses through /proc/kallsyms.  An address no symbol covers is named
 * by its file and offset ("postgres+0x1a2b3c"), never by a neighbour.
 */
#ifndef PGSCOPE_SYMBOLS_H
#define PGSCOPE_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct PgsSyms PgsSyms;

PgsSyms *pgs_syms_new(void);
void pgs_syms_free(PgsSyms *s);

/* reads the executable mappings of pid (once; again when forced); false when it cannot (gone) */
bool pgs_syms_read_process(PgsSyms *s, int pid, bool force);
/* whether pid's mappings have been read */
bool pgs_syms_have_process(PgsSyms *s, int pid);
/* pid, not read in time (it exited), is named through like's mappings (a backend: its postmaster's) */
void pgs_syms_alias(PgsSyms *s, int pid, int like);

/*
 * The name of user address ip of pid into buf (caller: ip is a return
 * address, the call is just before it); "[unknown]" when no mapping holds it.
 */
const char *pgs_syms_user(PgsSyms *s, int pid, uint64_t ip, bool caller, char *buf, size_t len);
/*
 * An object some mapped library exports (set before any process is read):
 * its runtime address in pid, 0 when none of pid's files exports it.
 */
void pgs_syms_want_object(PgsSyms *s, const char *name);
uint64_t pgs_syms_object_address(PgsSyms *s, int pid);

/* the kernel function holding ip, "[unknown]" when none */
const char *pgs_syms_kernel(PgsSyms *s, uint64_t ip, char *buf, size_t len);

#endif
