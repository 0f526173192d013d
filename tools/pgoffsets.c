/*
 * pgoffsets.c - build-time tool, compiled once per installed
 * postgresql-server-dev-N: prints the offsets of the PostgreSQL struct
 * fields the BPF programs read, as one row of the table in
 * build/pg_offsets.h (designated initializers, so a field a major lacks
 * can simply be left out).  No offset is ever written by hand.
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
#include "utils/backend_status.h"
#include "utils/rel.h"

/* postgres.h maps printf to the server's own; this tool has plain libc */
#undef printf

#define OFF(field, type, member) printf(", ." #field " = %zu", offsetof(type, member))

int
main(void)
{
	printf("\t{.major = %d", PG_VERSION_NUM / 10000);
	OFF(port_database_name, Port, database_name);
	OFF(port_user_name, Port, user_name);
	OFF(port_ssl_in_use, Port, ssl_in_use);
	OFF(relation_rd_id, RelationData, rd_id);
	OFF(heaptuple_t_self, HeapTupleData, t_self);
	OFF(locktag_field1, LOCKTAG, locktag_field1);
	OFF(locktag_field2, LOCKTAG, locktag_field2);
	OFF(locktag_field3, LOCKTAG, locktag_field3);
	OFF(locktag_field4, LOCKTAG, locktag_field4);
	OFF(locktag_type, LOCKTAG, locktag_type);
	OFF(locktag_method, LOCKTAG, locktag_lockmethodid);
	OFF(bufusage_shared_hit, BufferUsage, shared_blks_hit);
	OFF(bufusage_shared_read, BufferUsage, shared_blks_read);
	OFF(walusage_records, WalUsage, wal_records);
	OFF(walusage_bytes, WalUsage, wal_bytes);
	OFF(xlogrecdata_data, XLogRecData, data);
	OFF(xlogrecord_tot_len, XLogRecord, xl_tot_len);
	OFF(xlogrecord_info, XLogRecord, xl_info);
	OFF(xlogrecord_rmid, XLogRecord, xl_rmid);
	OFF(ckpt_bufs_written, CheckpointStatsData, ckpt_bufs_written);
	OFF(ckpt_segs_added, CheckpointStatsData, ckpt_segs_added);
	OFF(ckpt_segs_removed, CheckpointStatsData, ckpt_segs_removed);
	OFF(ckpt_segs_recycled, CheckpointStatsData, ckpt_segs_recycled);
	OFF(beentry_activity_raw, PgBackendStatus, st_activity_raw);
	printf("},\n");
	return 0;
}
