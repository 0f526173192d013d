/*
 * pgoffsets.c - build-time tool, compiled once per installed
 * postgresql-server-dev-N: prints the offsets of the PostgreSQL struct
 * fields the BPF programs read, as one row of the table in
 * build/pg_offsets.h.  No offset is ever written by hand.
 */
#include "postgres.h"

#include <stddef.h>
#include <stdio.h>

#include "access/htup.h"
#include "access/xlogrecord.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "executor/instrument.h"
#include "libpq/libpq-be.h"
#include "storage/lock.h"
#include "utils/rel.h"

/* postgres.h maps printf to the server's own; this tool has plain libc */
#undef printf

int
main(void)
{
	printf("\t{%d, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu, %zu},\n", PG_VERSION_NUM / 10000,
		   offsetof(Port, database_name), offsetof(Port, user_name),
		   offsetof(RelationData, rd_id), offsetof(HeapTupleData, t_self),
		   offsetof(LOCKTAG, locktag_field1), offsetof(LOCKTAG, locktag_field2),
		   offsetof(LOCKTAG, locktag_field3), offsetof(LOCKTAG, locktag_field4),
		   offsetof(LOCKTAG, locktag_type), offsetof(LOCKTAG, locktag_lockmethodid),
		   offsetof(BufferUsage, shared_blks_hit), offsetof(BufferUsage, shared_blks_read),
		   offsetof(WalUsage, wal_records), offsetof(WalUsage, wal_bytes),
		   offsetof(XLogRecData, data), offsetof(XLogRecord, xl_tot_len),
		   offsetof(XLogRecord, xl_info), offsetof(XLogRecord, xl_rmid),
		   offsetof(CheckpointStatsData, ckpt_bufs_written), offsetof(CheckpointStatsData, ckpt_segs_added),
		   offsetof(CheckpointStatsData, ckpt_segs_removed), offsetof(CheckpointStatsData, ckpt_segs_recycled));
	return 0;
}
