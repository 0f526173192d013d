/*
 * io.h - what the IO tracer's BPF program and its user side share.
 */
#ifndef PGSCOPE_IO_H
#define PGSCOPE_IO_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_IO_SLOTS 32

struct pgs_io_key
{
	__u32		spc;
	__u32		db;
	__u32		relnode;		/* relfilenode, not the relation's oid */
	__u32		fork;
};

struct pgs_io_stats
{
	__u64		hits;			/* found in shared buffers */
	__u64		reads;			/* not found: read from the kernel */
	__u64		extends;
	__u64		md_reads;		/* smgr reads (from PostgreSQL 17, one may read several blocks) */
	__u64		md_read_bytes;	/* what they read */
	__u64		read_ns;
	__u64		md_writes;
	__u64		write_ns;
	__u64		read_hist[PGS_IO_SLOTS];	/* log2 microseconds */
	__u64		write_hist[PGS_IO_SLOTS];
};

struct pgs_io_backend
{
	__u64		read_bytes;		/* read/pread64 syscalls */
	__u64		write_bytes;	/* write/pwrite64 syscalls */
	__u64		fsyncs;
	__u64		fsync_ns;
};

#endif
