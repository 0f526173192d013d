/*
 * locks.h - what the lock tracer's BPF program and its user side share.
 */
#ifndef PGSCOPE_LOCKS_H
#define PGSCOPE_LOCKS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PGS_LK_WAIT_START 1		/* a heavyweight lock wait began */
#define PGS_LK_WAIT_END 2		/* ... and ended */
#define PGS_LK_DEADLOCK 3		/* this backend found a deadlock */
#define PGS_LK_ROW 4			/* heap_lock_tuple returned */
#define PGS_LK_ACQUIRE 5		/* LockAcquireExtended returned (--all) */
#define PGS_LK_RELEASE 6		/* LockRelease called (--all) */
#define PGS_LK_RELEASE_ALL 7	/* LockReleaseAll called: transaction end (--all) */

struct pgs_lock_event
{
	__u32		kind;
	__u32		pid;
	__u64		ts_ns;			/* CLOCK_MONOTONIC */
	__u64		duration_ns;	/* WAIT_END, ROW */
	__u32		field1;			/* LOCKTAG */
	__u32		field2;
	__u32		field3;
	__u16		field4;
	__u8		type;
	__u8		method;
	__s32		mode;			/* LOCKMODE, or LockTupleMode for ROW */
	__s32		result;			/* ROW: TM_Result; ACQUIRE: LockAcquireResult */
	__u32		relid;			/* ROW */
	__u32		database;		/* ROW: the backend's database (MyDatabaseId) */
	__u32		block;			/* ROW: ctid */
	__u16		offset;
	__u8		wait_policy;	/* ROW: LockWaitPolicy */
	__u8		pad;
};

#endif
