/*
 * names.c - libpq lookups for the tracers, cached for the life of a trace.
 */
#include "names.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "locks.h"
#include "util.h"

typedef struct NameCache
{
	PgsNameKind	kind;
	unsigned	spc,
				db,
				oid;
	char	   *name;
	struct NameCache *next;
} NameCache;

typedef struct DbConn
{
	unsigned	db;
	PGconn	   *conn;
	struct DbConn *next;
} DbConn;

/* a wait event's name as pg_stat_activity shows it */
typedef struct WaitName
{
	uint32_t	wei;			/* class byte << 24 | number within the class */
	char	   *name;
} WaitName;

struct PgsNames
{
	PGconn	   *conn;
	char		conninfo[1024];
	DbConn	   *dbconns;
	NameCache  *names;
	WaitName   *waits;			/* pgs_names_wait_event's table, once asked */
	int			nwaits;
	bool		waits_loaded;
};

char *
pgs_names_fetch1(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult   *r;
	char	   *v = NULL;

	if (c == NULL)
		return NULL;
	/* a Ctrl-C while the events are read must not cancel their names (statement_timeout bounds them) */
	pgs_query_uncancelled = true;
	r = pgs_query(c, sql, nparams, params, NULL, 0);
	pgs_query_uncancelled = false;
	if (r && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = pgs_xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

PgsNames *
pgs_names_open(const PgsTarget *t, const char *user, const char *dbname)
{
	PgsNames   *n = calloc(1, sizeof(PgsNames));
	char		path[PATH_MAX + 32],
				line[PATH_MAX];
	char		port[32] = "",
				sockdir[PATH_MAX] = "";
	FILE	   *f;

	if (n == NULL)
		pgs_die("out of memory");
	if (!t->postmaster)
		return n;
	/* through /proc: the data directory and socket as this process sees them, in a container too */
	snprintf(path, sizeof(path), "/proc/%d/cwd/postmaster.pid", t->postmaster);
	f = fopen(path, "r");
	if (f == NULL)
		return n;
	for (int i = 1; fgets(line, sizeof(line), f); i++)
	{
		line[strcspn(line, "\n")] = '\0';
		if (i == 4)
			snprintf(port, sizeof(port), "%.31s", line);
		else if (i == 5 && *line)
			pgs_proc_visible_path(t->postmaster, line, sockdir, sizeof(sockdir));
	}
	fclose(f);
	snprintf(n->conninfo, sizeof(n->conninfo), "host='%s' port='%s' user='%s' dbname='%s' application_name=pgscope "
			 "options='-c statement_timeout=5000'",
			 *sockdir ? sockdir : "localhost", port, user ? user : "postgres", dbname ? dbname : "postgres");
	n->conn = PQconnectdb(n->conninfo);
	if (PQstatus(n->conn) != CONNECTION_OK)
	{
		char	   *msg = pgs_xstrdup(PQerrorMessage(n->conn));

		msg[strcspn(msg, "\n")] = '\0';
		pgs_err("cannot connect to the traced server for names (%s); tracing without them (give -U)", msg);
		free(msg);
		PQfinish(n->conn);
		n->conn = NULL;
	}
	return n;
}

void
pgs_names_close(PgsNames *n)
{
	if (n == NULL)
		return;
	for (DbConn *d = n->dbconns; d; d = d->next)
		if (d->conn && d->conn != n->conn)
			PQfinish(d->conn);
	if (n->conn)
		PQfinish(n->conn);
}

PGconn *
pgs_names_conn(PgsNames *n)
{
	return n->conn;
}

PGconn *
pgs_names_conn_for_db(PgsNames *n, unsigned db)
{
	DbConn	   *d;
	char		oid[16];
	const char *params[1] = {oid};
	char	   *datname;

	if (n->conn == NULL || db == 0)
		return n->conn;
	for (d = n->dbconns; d; d = d->next)
		if (d->db == db)
			return d->conn;
	snprintf(oid, sizeof(oid), "%u", db);
	datname = pgs_names_fetch1(n->conn, "SELECT datname FROM pg_database WHERE oid = $1::oid", 1, params);
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		pgs_die("out of memory");
	d->db = db;
	if (datname && strcmp(datname, PQdb(n->conn)) == 0)
		d->conn = n->conn;
	else if (datname)
	{
		/* the second dbname overrides the one inside the conninfo */
		const char *keys[] = {"dbname", "dbname", NULL};
		const char *vals[] = {n->conninfo, datname, NULL};

		d->conn = PQconnectdbParams(keys, vals, 1);
		if (PQstatus(d->conn) != CONNECTION_OK)
		{
			PQfinish(d->conn);
			d->conn = NULL;
		}
	}
	free(datname);
	d->next = n->dbconns;
	n->dbconns = d;
	return d->conn;
}

static const char *
cached_name(PgsNames *n, PgsNameKind kind, unsigned spc, unsigned db, unsigned oid)
{
	NameCache  *c;
	char		a[16],
				b[16],
				buf[96];
	const char *params[2] = {a, b};
	PGconn	   *conn;

	for (c = n->names; c; c = c->next)
		if (c->kind == kind && c->spc == spc && c->db == db && c->oid == oid)
			return c->name;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		pgs_die("out of memory");
	c->kind = kind;
	c->spc = spc;
	c->db = db;
	c->oid = oid;
	conn = pgs_names_conn_for_db(n, db);
	if (kind != PGS_NAME_FILENODE)
	{
		static const char *const sql[] = {
			[PGS_NAME_RELATION] = "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
			"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
			[PGS_NAME_RELNAME] = "SELECT relname FROM pg_class WHERE oid = $1::oid",
			[PGS_NAME_SCHEMA] = "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
			[PGS_NAME_FUNCTION] = "SELECT oid::regprocedure::text FROM pg_proc WHERE oid = $1::oid"
		};

		snprintf(a, sizeof(a), "%u", oid);
		c->name = pgs_names_fetch1(conn, sql[kind], 1, params);
	}
	else
	{
		/* a relfilenode in the database's default tablespace is written with spc 0 */
		snprintf(a, sizeof(a), "%u", spc);
		snprintf(b, sizeof(b), "%u", oid);
		c->name = pgs_names_fetch1(conn, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
								   "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
								   "WHERE c.oid = pg_filenode_relation(CASE WHEN $1::oid = "
								   "(SELECT dattablespace FROM pg_database WHERE datname = current_database()) "
								   "THEN 0 ELSE $1::oid END, $2::oid)", 2, params);
	}
	if (c->name == NULL)
	{
		snprintf(buf, sizeof(buf), "%s %u of database %u", kind == PGS_NAME_FILENODE ? "relfilenode" : kind == PGS_NAME_FUNCTION ? "function" : "relation",
				 oid, db);
		c->name = pgs_xstrdup(buf);
	}
	c->next = n->names;
	n->names = c;
	return c->name;
}

const char *
pgs_names_of(PgsNames *n, PgsNameKind kind, unsigned db, unsigned oid)
{
	return cached_name(n, kind, 0, db, oid);
}

const char *
pgs_names_lease(PgsNames *n, const char *what, const char *database)
{
	static char err[512];
	PGconn	   *conn = pgs_names_conn(n);
	char		owner[16];
	const char *params[3] = {owner, what, database};
	PGresult   *res;

	if (conn == NULL)
		return "no connection to the server";
	snprintf(owner, sizeof(owner), "%d", (int) getpid());
	res = PQexecParams(conn, "SELECT pgscope_instrument($1::int, $2, '5 seconds', $3::name)", 3, NULL, params,
					   NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		PQclear(res);
		return NULL;
	}
	snprintf(err, sizeof(err), "%s", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(conn));
	err[strcspn(err, "\n")] = 0;
	if (PQresultErrorField(res, PG_DIAG_SQLSTATE) &&
		strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42883") == 0)
		snprintf(err, sizeof(err), "database %s has no pgscope_instrument(): CREATE EXTENSION pgscope there "
				 "(with pgscope in shared_preload_libraries), or name one that has it with --dbname", PQdb(conn));
	PQclear(res);
	return err;
}

int
pgs_names_backends(PgsNames *n, int postmaster, int *pids, int max)
{
	int			k = 0;

	if (n == NULL)
		return 0;
	if (n->conn && k < max)
		pids[k++] = pgs_host_pid(postmaster, PQbackendPID(n->conn));
	for (DbConn *d = n->dbconns; d && k < max; d = d->next)
		if (d->conn)
			pids[k++] = pgs_host_pid(postmaster, PQbackendPID(d->conn));
	return k;
}

const char *
pgs_names_filenode(PgsNames *n, unsigned spc, unsigned db, unsigned relnode)
{
	return cached_name(n, PGS_NAME_FILENODE, spc, db, relnode);
}

unsigned
pgs_database_oid(PgsNames *n, const char *database)
{
	const char *params[1] = {database};
	char	   *oid = pgs_names_fetch1(pgs_names_conn(n), "SELECT oid FROM pg_database WHERE datname = $1", 1, params);
	unsigned	v;

	if (oid == NULL)
		pgs_usage("no database \"%s\" in the traced server (or it cannot be asked)", database);
	v = (unsigned) strtoul(oid, NULL, 10);
	free(oid);
	return v;
}

_Static_assert(PGS_LOCKTAG_NAMES == PGS_LOCKTAG_COUNT, "a name for every lock tag type");

/* pg_locks' names of the lock tag types (locks.h) */
const char *const pgs_locktag_names[PGS_LOCKTAG_NAMES] = {
	[PGS_LOCKTAG_RELATION] = "relation", [PGS_LOCKTAG_RELATION_EXTEND] = "extend",
	[PGS_LOCKTAG_DATABASE_FROZEN_IDS] = "frozenid", [PGS_LOCKTAG_PAGE] = "page", [PGS_LOCKTAG_TUPLE] = "tuple",
	[PGS_LOCKTAG_TRANSACTION] = "transactionid", [PGS_LOCKTAG_VIRTUALTRANSACTION] = "virtualxid",
	[PGS_LOCKTAG_SPECULATIVE_TOKEN] = "spectoken", [PGS_LOCKTAG_OBJECT] = "object",
	[PGS_LOCKTAG_USERLOCK] = "userlock", [PGS_LOCKTAG_ADVISORY] = "advisory",
	[PGS_LOCKTAG_APPLY_TRANSACTION] = "applytransaction"
};

const char *const pgs_wait_types[PGS_WAIT_CLASS_BYTES] = {
	[PGS_WAIT_CLASS_LWLOCK] = "LWLock", [PGS_WAIT_CLASS_LOCK] = "Lock", [0x04] = "BufferPin", [0x05] = "Activity",
	[0x06] = "Client", [PGS_WAIT_CLASS_EXTENSION] = "Extension", [0x08] = "IPC", [0x09] = "Timeout", [0x0A] = "IO"
};

/*
 * The server's wait events, numbered: pg_get_wait_events() (17 and later)
 * lists each class's built-in events in the order their enum has them (both
 * are generated from one list by generate-wait_event_types.pl), so the n-th
 * row of a type is its event number n.  LWLock and Lock are numbered
 * otherwise (tranches, lock tag types); Extension's and InjectionPoint's
 * custom events follow their built-in ones in an order of their own, so of
 * Extension only the built-in first is taken.  Before 17 there is no such
 * list: the table stays empty.
 */
static void
load_waits(PgsNames *n)
{
	uint32_t	next[PGS_WAIT_CLASS_BYTES] = {0};
	PGconn	   *conn = pgs_names_conn(n);
	PGresult   *r;

	n->waits_loaded = true;
	if (conn == NULL || PQserverVersion(conn) < 170000)
		return;
	pgs_query_uncancelled = true;
	r = pgs_query(conn, "SELECT type, name FROM pg_get_wait_events() WITH ORDINALITY AS w(type, name, description, ord) "
				  "ORDER BY ord", 0, NULL, NULL, 0);
	pgs_query_uncancelled = false;
	if (r == NULL)
		return;
	n->waits = calloc(PQntuples(r) + 1, sizeof(WaitName));
	if (n->waits == NULL)
		pgs_die("out of memory");
	for (int i = 0; i < PQntuples(r); i++)
		for (uint32_t c = 0; c < PGS_WAIT_CLASS_BYTES; c++)
			if (c != PGS_WAIT_CLASS_LWLOCK && c != PGS_WAIT_CLASS_LOCK && pgs_wait_types[c] &&
				strcmp(PQgetvalue(r, i, 0), pgs_wait_types[c]) == 0)
			{
				if (c != PGS_WAIT_CLASS_EXTENSION || next[c] == 0)
				{
					n->waits[n->nwaits].wei = c << 24 | next[c];
					n->waits[n->nwaits++].name = pgs_xstrdup(PQgetvalue(r, i, 1));
				}
				next[c]++;
				break;
			}
	PQclear(r);
}

const char *
pgs_names_wait_event(PgsNames *n, uint32_t wei)
{
	if (n == NULL)
		return NULL;
	if (!n->waits_loaded)
		load_waits(n);
	for (int i = 0; i < n->nwaits; i++)
		if (n->waits[i].wei == wei)
			return n->waits[i].name;
	return NULL;
}
