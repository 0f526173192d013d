/*
 * plstack.h - the PL/pgSQL frame stack the extension publishes for samplers
 * (pgscope profile), version 1.  A documented, versioned layout: the tracer
 * finds the exported symbol pgscope_plstack through pgscope.so's .dynsym and
 * the backend's mappings and reads it at each sample.
 *
 * frames[0] is the outermost activation; depth frames are valid (frames past
 * PGS_PLSTACK_MAX are not stored: truncated counts them).  A frame is the
 * activation (its PLpgSQL_execstate, which lives on the backend's stack)
 * and the function's oid (0: a DO block).  The line is not written per
 * statement: PL/pgSQL itself keeps the statement it runs in the execstate's
 * err_stmt, and a sampler reads it there, at the offsets the extension was
 * compiled with (err_stmt_offset in the execstate, lineno_offset in the
 * statement).  The stack is rebuilt at each call from PL/pgSQL's error
 * context chain (the live activations), popped at each return, and kept
 * only while a tracer holds a 'frames' lease (pgscope_instrument).  The
 * backend writes it itself: a sample, which interrupts that backend, sees
 * it between two whole updates (depth is written after the frames).
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
	__u64		estate;			/* the activation's PLpgSQL_execstate * */
	__u32		fn_oid;
	__u32		pad;
};

struct pgs_plstack
{
	__u32		magic;
	__u32		version;
	__u32		depth;
	__u32		truncated;		/* outer activations beyond PGS_PLSTACK_MAX, not stored */
	__u32		err_stmt_offset;	/* offsetof(PLpgSQL_execstate, err_stmt) */
	__u32		lineno_offset;	/* offsetof(PLpgSQL_stmt, lineno) */
	struct pgs_plframe frames[PGS_PLSTACK_MAX];
};

#endif
