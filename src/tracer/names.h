/*
 * names.h - what the tracers learn over libpq from the traced server itself:
 * a connection found through the cluster's postmaster.pid, one connection
 * per database the events name, and cached names of relations (by oid or by
 * relfilenode) that outlive a DROP.
 */
#ifndef PGSCOPE_NAMES_H
#define PGSCOPE_NAMES_H

#include <libpq-fe.h>

#include "tracer.h"

typedef struct PgsNames PgsNames;

/* connects as user (default postgres) to dbname (default postgres); says so and carries on without */
PgsNames *pgs_names_open(const PgsTarget *t, const char *user, const char *dbname);
void pgs_names_close(PgsNames *n);

PGconn *pgs_names_conn(PgsNames *n);	/* NULL when it could not connect */
PGconn *pgs_names_conn_for_db(PgsNames *n, unsigned db);

/* what a name is asked of */
typedef enum PgsNameKind
{
	PGS_NAME_RELATION,			/* "schema.table" of a pg_class oid */
	PGS_NAME_RELNAME,			/* the relation alone, as EXPLAIN's "Relation Name" */
	PGS_NAME_SCHEMA,			/* its schema, as EXPLAIN's "Schema" */
	PGS_NAME_FUNCTION,			/* "schema.func(argtypes)" of a pg_proc oid (the schema when not on the search path) */
	PGS_NAME_FILENODE			/* "schema.table" of a relfilenode (in a tablespace): pgs_names_filenode */
} PgsNameKind;

/* the name of catalog object oid of database db, or a description with the numbers when it cannot be named */
const char *pgs_names_of(PgsNames *n, PgsNameKind kind, unsigned db, unsigned oid);

/*
 * The extension's lease (pgscope_instrument) of the tracer (owner: its pid):
 * what 'rows', 'timing', 'frames' or 'off' for the statements of database
 * (NULL: all) starting in the next 5 seconds.  NULL when set, else why not.
 */
const char *pgs_names_lease(PgsNames *n, const char *what, const char *database);
/* the host pids of our own connections' backends (up to max, their number): a tracer skips their statements */
int pgs_names_backends(PgsNames *n, int postmaster, int *pids, int max);

const char *pgs_names_filenode(PgsNames *n, unsigned spc, unsigned db, unsigned relnode);

/* first column of the first row, malloc'd, or NULL */
char *pgs_names_fetch1(PGconn *c, const char *sql, int nparams, const char *const *params);

/* pg_locks' names of the lock tag types (LockTagType, the same in every supported major) */
#define PGS_LOCKTAG_NAMES 12
extern const char *const pgs_locktag_names[PGS_LOCKTAG_NAMES];

/*
 * pg_stat_activity's wait_event_type of a wait event's class byte
 * (wait_event_info >> 24; the same in every supported major), NULL for none
 * (stmt_source.h's pgs_wait_class_names is by --breakdown's slot instead)
 */
#define PGS_WAIT_CLASS_BYTES 11
#define PGS_WAIT_CLASS_LWLOCK 0x01
#define PGS_WAIT_CLASS_LOCK 0x03
#define PGS_WAIT_CLASS_EXTENSION 0x07
extern const char *const pgs_wait_types[PGS_WAIT_CLASS_BYTES];

/*
 * The name pg_stat_activity gives wait event wei (PGPROC.wait_event_info),
 * from the server's own list of them (17 and later; not LWLock or Lock,
 * which have their own names); NULL when it cannot be had: the caller says
 * the number.
 */
const char *pgs_names_wait_event(PgsNames *n, uint32_t wei);

/* the oid of database (a -d option's), asked of the server; exits 2 when it has none of that name */
unsigned pgs_database_oid(PgsNames *n, const char *database);

#endif
