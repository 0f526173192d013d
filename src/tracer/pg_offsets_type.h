/*
 * pg_offsets_type.h - one row per PostgreSQL major version of the struct
 * offsets the tracer reads; the rows are generated into build/pg_offsets.h
 * by tools/pgoffsets.c from the installed server headers.
 */
#ifndef PGSCOPE_PG_OFFSETS_TYPE_H
#define PGSCOPE_PG_OFFSETS_TYPE_H

typedef struct PgsPgOffsets
{
	int			major;
	unsigned long port_database_name;
	unsigned long port_user_name;
	unsigned long port_ssl_in_use;	/* Port.ssl_in_use */
	unsigned long relation_rd_id;	/* RelationData.rd_id */
	unsigned long heaptuple_t_self;	/* HeapTupleData.t_self */
	unsigned long locktag_field1;
	unsigned long locktag_field2;
	unsigned long locktag_field3;
	unsigned long locktag_field4;
	unsigned long locktag_type;
	unsigned long locktag_method;
	unsigned long bufusage_shared_hit;	/* BufferUsage (pgBufferUsage) */
	unsigned long bufusage_shared_read;
	unsigned long walusage_records;	/* WalUsage (pgWalUsage) */
	unsigned long walusage_bytes;
	unsigned long xlogrecdata_data;	/* XLogRecData.data */
	unsigned long xlogrecord_tot_len;
	unsigned long xlogrecord_info;
	unsigned long xlogrecord_rmid;
	unsigned long ckpt_bufs_written;	/* CheckpointStatsData (CheckpointStats) */
	unsigned long ckpt_segs_added;
	unsigned long ckpt_segs_removed;
	unsigned long ckpt_segs_recycled;
	unsigned long beentry_activity_raw;	/* PgBackendStatus.st_activity_raw (MyBEEntry) */
} PgsPgOffsets;

#endif
