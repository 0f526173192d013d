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
} PgsPgOffsets;

#endif
