/*
 * pgoffsets.c - build-time tool, compiled once per installed
 * postgresql-server-dev-N: prints the offsets of the PostgreSQL struct
 * fields the BPF programs read, as one row of the table in
 * build/pg_offsets.h.  No offset is ever written by hand.
 */
#include "postgres.h"

#include <stddef.h>
#include <stdio.h>

#include "libpq/libpq-be.h"

/* postgres.h maps printf to the server's own; this tool has plain libc */
#undef printf

int
main(void)
{
	printf("\t{%d, %zu, %zu},\n", PG_VERSION_NUM / 10000,
		   offsetof(Port, database_name), offsetof(Port, user_name));
	return 0;
}
