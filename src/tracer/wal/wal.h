/*
 * wal.h - what the WAL tracer's BPF program and its user side share.
 */
#ifndef PGSCOPE_WAL_H
#define PGSCOPE_WAL_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_WAL_SLOTS 32

struct pgs_wal_key
{
	__u8		rmid;
	__u8		info;			/* record type: xl_info without the XLR_INFO_MASK bits */
	__u16		pad;
	__u32		pid;			/* 0 in the per-record-type map */
};

struct pgs_wal_stats
{
	__u64		records;
	__u64		bytes;
};

struct pgs_flush_stats
{
	__u64		count;
	__u64		total_ns;
	__u64		max_ns;
	__u64		hist[PGS_WAL_SLOTS];	/* log2 microseconds */
};

#define PGS_WAL_EV_CHECKPOINT_START 1
#define PGS_WAL_EV_CHECKPOINT_DONE 2

struct pgs_wal_event
{
	__u32		kind;
	__u32		pid;
	__u64		ts_ns;
	__s32		args[5];		/* start: flags; done: buffers written, NBuffers, segments added/removed/recycled */
	__u32		pad;
};

#endif
