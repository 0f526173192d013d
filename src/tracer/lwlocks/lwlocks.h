/*
 * lwlocks.h - what the LWLock tracer's BPF program and its user side share.
 */
#ifndef PGSCOPE_LWLOCKS_H
#define PGSCOPE_LWLOCKS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_LW_NAME 32
#define PGS_LW_SLOTS 32			/* log2 histogram of wait time in microseconds */

struct pgs_lw_key
{
	__u64		tranche;		/* address of the tranche name in the server */
	__u32		mode;			/* LW_EXCLUSIVE, LW_SHARED, LW_WAIT_UNTIL_FREE */
	__u32		pad;
};

struct pgs_lw_stats
{
	char		name[PGS_LW_NAME];
	__u64		acquisitions;
	__u64		waits;
	__u64		total_ns;
	__u64		max_ns;
	__u64		hist[PGS_LW_SLOTS];
};

#endif
