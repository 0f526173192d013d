/*
 * plstack.h - the PL/pgSQL frame stack the extension publishes for samplers
 * (pgscope profile), version 1.  A documented, versioned layout: the tracer
 * finds the exported symbol pgscope_plstack through pgscope.so's .dynsym and
 * the backend's mappings and reads it at each sample.
 *
 * frames[0] is the outermost activation; depth frames are valid (frames past
 * PGS_PLSTACK_MAX are not stored: truncated counts them).  Each frame is the
 * function's oid (0: a DO block) and the line of the statement it runs now.
 * The stack is kept only while a tracer holds a 'frames' lease
 * (pgscope_instrument), and is written by the backend itself: a sample,
 * which interrupts that backend, sees it between two whole updates (depth
 * is written after the frame it makes valid).
 */
#ifndef PGSCOPE_PLSTACK_H
#define PGSCOPE_PLSTACK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_PLSTACK_SYMBOL "pgscope_plstack"
#define PGS_PLSTACK_MAGIC 0x4b545350	/* "PSTK" */
#define PGS_PLSTACK_VERSION 1
#define PGS_PLSTACK_MAX 32

struct pgs_plframe
{
	__u64		estate;			/* the activation (PLpgSQL_execstate *): tells recursive calls apart */
	__u32		fn_oid;
	__s32		lineno;
};

struct pgs_plstack
{
	__u32		magic;
	__u32		version;
	__u32		depth;
	__u32		truncated;		/* activations deeper than PGS_PLSTACK_MAX, not stored */
	struct pgs_plframe frames[PGS_PLSTACK_MAX];
};

#endif
