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

/* LockTagType (storage/lock.h), the same numbers in every supported major */
enum pgs_locktag
{
	PGS_LOCKTAG_RELATION = 0,	/* field1 db, field2 rel */
	PGS_LOCKTAG_RELATION_EXTEND = 1,
	PGS_LOCKTAG_DATABASE_FROZEN_IDS = 2,	/* field1 db */
	PGS_LOCKTAG_PAGE = 3,		/* db, rel, field3 block */
	PGS_LOCKTAG_TUPLE = 4,		/* db, rel, block, field4 offset */
	PGS_LOCKTAG_TRANSACTION = 5,	/* field1 xid */
	PGS_LOCKTAG_VIRTUALTRANSACTION = 6, /* field1 proc number, field2 local xid */
	PGS_LOCKTAG_SPECULATIVE_TOKEN = 7,	/* field1 xid, field2 token */
	PGS_LOCKTAG_OBJECT = 8,		/* db, classid, objid, field4 objsubid */
	PGS_LOCKTAG_USERLOCK = 9,
	PGS_LOCKTAG_ADVISORY = 10,	/* db, key hi, key lo, field4: 1 int8 key, 2 two int4 */
	PGS_LOCKTAG_APPLY_TRANSACTION = 11,
	PGS_LOCKTAG_COUNT
};

/* lock methods (storage/lock.h) */
#define PGS_DEFAULT_LOCKMETHOD 1
#define PGS_USER_LOCKMETHOD 2	/* advisory locks */
#define PGS_ADVISORY_TWO_INT4 2 /* field4 of an advisory tag */

/* LockWaitPolicy (nodes/lockoptions.h) and TM_Result (access/tableam.h): how many there are */
#define PGS_WAIT_POLICY_COUNT 3 /* LockWaitBlock, LockWaitSkip, LockWaitError */
#define PGS_TM_RESULT_COUNT 7	/* TM_Ok ... TM_WouldBlock */

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
