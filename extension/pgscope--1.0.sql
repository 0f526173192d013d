-- pgscope 1.0: PL/pgSQL profiler.  Released install scripts are never edited;
-- changes go into pgscope--1.0--1.1.sql and onward.
\echo Use "CREATE EXTENSION pgscope" to load this file. \quit

-- Members of this role may switch instance-wide and per-pid profiling, change
-- the collect interval, reset and read the shared tables.  Roles are global to
-- the cluster, so a second database's CREATE EXTENSION reuses it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgscope_admin') THEN
    CREATE ROLE pgscope_admin NOLOGIN;
  END IF;
END
$$;

-- ---------------------------------------------------------------- native API
-- Times are nanoseconds.  shared => false reads this session's profile,
-- shared => true the instance-wide one (current database).

CREATE FUNCTION pgscope_functions(shared boolean DEFAULT false,
    OUT func_id bigint, OUT func_oid oid, OUT signature text, OUT kind text,
    OUT is_current boolean, OUT is_latest boolean, OUT calls bigint, OUT errors bigint,
    OUT total_ns bigint, OUT self_ns bigint, OUT max_ns bigint, OUT source text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'pgscope_functions' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_statements(shared boolean DEFAULT false,
    OUT func_id bigint, OUT func_oid oid, OUT signature text, OUT stmtid int,
    OUT line_number int, OUT stmt_type text, OUT exec_count bigint, OUT error_count bigint,
    OUT total_ns bigint, OUT self_ns bigint, OUT max_ns bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'pgscope_statements' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_lines(shared boolean DEFAULT false,
    OUT func_id bigint, OUT func_oid oid, OUT signature text, OUT is_latest boolean,
    OUT kind text, OUT line_number int, OUT source text, OUT statements int,
    OUT exec_count bigint, OUT error_count bigint, OUT total_ns bigint,
    OUT self_ns bigint, OUT max_ns bigint, OUT is_current boolean)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'pgscope_lines' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_callgraph(shared boolean DEFAULT false,
    OUT stack text[], OUT func_ids bigint[], OUT func_oids oid[], OUT calls bigint,
    OUT total_ns bigint, OUT children_ns bigint, OUT self_ns bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'pgscope_callgraph' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_status(
    OUT loaded_at_startup boolean, OUT session_enabled boolean, OUT global_enabled boolean,
    OUT global_expires timestamptz, OUT enabled_pid int, OUT pid_expires timestamptz,
    OUT collect_interval int, OUT plugin_slot_owned boolean, OUT chained_plugin boolean,
    OUT callbacks_seen bigint, OUT functions_overflow boolean, OUT statements_overflow boolean,
    OUT callgraph_overflow boolean, OUT source_overflow boolean, OUT shared_functions int,
    OUT shared_statements int, OUT shared_callgraphs int, OUT shared_available boolean)
RETURNS record AS 'MODULE_PATHNAME', 'pgscope_status' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_enable(enabled boolean DEFAULT true) RETURNS boolean
AS 'MODULE_PATHNAME', 'pgscope_enable' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_enable_global(enabled boolean DEFAULT true, expire_after interval DEFAULT NULL)
RETURNS boolean AS 'MODULE_PATHNAME', 'pgscope_enable_global' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_enable_pid(pid int, expire_after interval DEFAULT NULL) RETURNS int
AS 'MODULE_PATHNAME', 'pgscope_enable_pid' LANGUAGE C VOLATILE;

-- pgscope plans --analyze on a kernel that refuses bpf_probe_write_user: the tracer (owner: its pid)
-- leases instrumentation ('rows', 'timing' or 'off') of the statements that start in database
-- (NULL: every database) before the lease ends, renewing it every second
CREATE FUNCTION pgscope_instrument(owner int, options text, lease interval DEFAULT '5 seconds',
    database name DEFAULT NULL) RETURNS boolean
AS 'MODULE_PATHNAME', 'pgscope_instrument' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_set_collect_interval(seconds int) RETURNS int
AS 'MODULE_PATHNAME', 'pgscope_set_collect_interval' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_reset(shared boolean DEFAULT false) RETURNS void
AS 'MODULE_PATHNAME', 'pgscope_reset' LANGUAGE C VOLATILE;

CREATE FUNCTION pgscope_collect() RETURNS int
AS 'MODULE_PATHNAME', 'pgscope_collect' LANGUAGE C VOLATILE;

-- ------------------------------------------------ plprofiler 4.2 compatibility
-- Same names, arguments and OUT columns; times in microseconds rounded from
-- exact sums.  Where a function has several versions (CREATE OR REPLACE),
-- these show the current one (or the newest profiled, if it was dropped):
-- the native API shows them all.  Return types plprofiler declared wrongly
-- (pid and interval functions) are int4 here.

CREATE FUNCTION pl_profiler_linestats_local(
    OUT func_oid oid, OUT line_number int8, OUT exec_count int8,
    OUT total_time int8, OUT longest_time int8)
RETURNS SETOF record LANGUAGE sql VOLATILE AS $$
  SELECT func_oid, line_number::int8, exec_count, round(total_ns / 1000.0)::int8,
         round(max_ns / 1000.0)::int8
    FROM @extschema@.pgscope_lines(false) WHERE is_latest AND kind <> 'do'
$$;

CREATE FUNCTION pl_profiler_linestats_shared(
    OUT func_oid oid, OUT line_number int8, OUT exec_count int8,
    OUT total_time int8, OUT longest_time int8)
RETURNS SETOF record LANGUAGE sql VOLATILE AS $$
  SELECT func_oid, line_number::int8, exec_count, round(total_ns / 1000.0)::int8,
         round(max_ns / 1000.0)::int8
    FROM @extschema@.pgscope_lines(true) WHERE is_latest AND kind <> 'do'
$$;

CREATE FUNCTION pl_profiler_callgraph_local(
    OUT stack oid[], OUT call_count int8, OUT us_total int8,
    OUT us_children int8, OUT us_self int8)
RETURNS SETOF record LANGUAGE sql VOLATILE AS $$
  SELECT func_oids, sum(calls)::int8, round(sum(total_ns) / 1000.0)::int8,
         round(sum(children_ns) / 1000.0)::int8, round(sum(self_ns) / 1000.0)::int8
    FROM @extschema@.pgscope_callgraph(false) GROUP BY func_oids
$$;

CREATE FUNCTION pl_profiler_callgraph_shared(
    OUT stack oid[], OUT call_count int8, OUT us_total int8,
    OUT us_children int8, OUT us_self int8)
RETURNS SETOF record LANGUAGE sql VOLATILE AS $$
  SELECT func_oids, sum(calls)::int8, round(sum(total_ns) / 1000.0)::int8,
         round(sum(children_ns) / 1000.0)::int8, round(sum(self_ns) / 1000.0)::int8
    FROM @extschema@.pgscope_callgraph(true) GROUP BY func_oids
$$;

CREATE FUNCTION pl_profiler_func_oids_local() RETURNS oid[] LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(array_agg(DISTINCT func_oid ORDER BY func_oid), '{}')
    FROM @extschema@.pgscope_functions(false) WHERE kind <> 'do'
$$;

CREATE FUNCTION pl_profiler_func_oids_shared() RETURNS oid[] LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(array_agg(DISTINCT func_oid ORDER BY func_oid), '{}')
    FROM @extschema@.pgscope_functions(true) WHERE kind <> 'do'
$$;

CREATE FUNCTION pl_profiler_funcs_source(func_oids oid[],
    OUT func_oid oid, OUT line_number int8, OUT source text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'pgscope_funcs_source' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_get_stack(stack oid[]) RETURNS text[]
AS 'MODULE_PATHNAME', 'pgscope_get_stack' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_collect_data() RETURNS int4
AS 'MODULE_PATHNAME', 'pgscope_collect' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_reset_local() RETURNS void LANGUAGE sql VOLATILE AS $$
  SELECT @extschema@.pgscope_reset(false)
$$;

CREATE FUNCTION pl_profiler_reset_shared() RETURNS void LANGUAGE sql VOLATILE AS $$
  SELECT @extschema@.pgscope_reset(true)
$$;

CREATE FUNCTION pl_profiler_set_enabled_local(enabled bool) RETURNS bool
AS 'MODULE_PATHNAME', 'pgscope_enable' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_get_enabled_local() RETURNS bool LANGUAGE sql VOLATILE AS $$
  SELECT current_setting('pgscope.enabled')::bool
$$;

CREATE FUNCTION pl_profiler_set_enabled_global(enabled bool) RETURNS bool
AS 'MODULE_PATHNAME', 'pgscope_enable_global' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_get_enabled_global() RETURNS bool
AS 'MODULE_PATHNAME', 'pgscope_get_enabled_global' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_set_enabled_pid(pid int4) RETURNS int4
AS 'MODULE_PATHNAME', 'pgscope_enable_pid' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_get_enabled_pid() RETURNS int4
AS 'MODULE_PATHNAME', 'pgscope_get_enabled_pid' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_set_collect_interval(seconds int4) RETURNS int4
AS 'MODULE_PATHNAME', 'pgscope_set_collect_interval' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_get_collect_interval() RETURNS int4
AS 'MODULE_PATHNAME', 'pgscope_get_collect_interval' LANGUAGE C VOLATILE;

CREATE FUNCTION pl_profiler_callgraph_overflow() RETURNS bool LANGUAGE sql VOLATILE AS $$
  SELECT callgraph_overflow FROM @extschema@.pgscope_status()
$$;

CREATE FUNCTION pl_profiler_functions_overflow() RETURNS bool LANGUAGE sql VOLATILE AS $$
  SELECT functions_overflow FROM @extschema@.pgscope_status()
$$;

CREATE FUNCTION pl_profiler_lines_overflow() RETURNS bool LANGUAGE sql VOLATILE AS $$
  SELECT statements_overflow FROM @extschema@.pgscope_status()
$$;

CREATE FUNCTION pl_profiler_version() RETURNS int4 LANGUAGE sql IMMUTABLE AS $$ SELECT 40200 $$;

CREATE FUNCTION pl_profiler_versionstr() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '4.2' $$;

-- ------------------------------------------------------------ saved datasets
-- A dataset is one profile document (the JSON that pgscope_profile() builds):
-- function signatures, kinds, source, per-line and per-statement figures and
-- the call graph, so it survives the functions being dropped.  Written by
-- superusers and pgscope_admin members (through the pgscope command line).

CREATE TABLE pgscope_dataset (
    name     text PRIMARY KEY CHECK (name <> ''),
    created  timestamptz NOT NULL DEFAULT now(),
    profile  jsonb NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('pgscope_dataset', '');
REVOKE ALL ON pgscope_dataset FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgscope_dataset TO pgscope_admin;

-- The profile as one JSON document (format "pgscope-profile", version 1).
-- meta carries what the caller knows (title, command, ...); database, server
-- version, scope, time and overflow flags are added here.
CREATE FUNCTION pgscope_profile(shared boolean DEFAULT false, meta jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
  WITH f AS (SELECT * FROM @extschema@.pgscope_functions(shared)),
       l AS (SELECT * FROM @extschema@.pgscope_lines(shared)),
       s AS (SELECT * FROM @extschema@.pgscope_statements(shared)),
       c AS (SELECT * FROM @extschema@.pgscope_callgraph(shared)),
       st AS (SELECT * FROM @extschema@.pgscope_status())
  SELECT jsonb_build_object(
    'format', 'pgscope-profile',
    'version', 1,
    'meta', jsonb_build_object(
        'database', current_database(),
        'server_version', current_setting('server_version'),
        'scope', CASE WHEN shared THEN 'shared' ELSE 'session' END,
        'collected_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'functions_overflow', (SELECT functions_overflow FROM st) AND shared,
        'statements_overflow', (SELECT statements_overflow FROM st) AND shared,
        'callgraph_overflow', (SELECT callgraph_overflow FROM st) AND shared,
        'source_overflow', (SELECT source_overflow FROM st) AND shared) || coalesce(meta, '{}'),
    'functions', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'func_id', f.func_id, 'func_oid', f.func_oid, 'signature', f.signature, 'kind', f.kind,
        'is_current', f.is_current, 'calls', f.calls, 'errors', f.errors,
        'total_ns', f.total_ns, 'self_ns', f.self_ns, 'max_ns', f.max_ns,
        'lines', coalesce((SELECT jsonb_agg(jsonb_build_object(
              'line', l.line_number, 'source', l.source, 'statements', l.statements,
              'exec_count', l.exec_count, 'error_count', l.error_count,
              'total_ns', l.total_ns, 'self_ns', l.self_ns, 'max_ns', l.max_ns) ORDER BY l.line_number)
            FROM l WHERE l.func_id = f.func_id), '[]'),
        'statements', coalesce((SELECT jsonb_agg(jsonb_build_object(
              'stmtid', s.stmtid, 'line', s.line_number, 'type', s.stmt_type,
              'exec_count', s.exec_count, 'error_count', s.error_count,
              'total_ns', s.total_ns, 'self_ns', s.self_ns, 'max_ns', s.max_ns) ORDER BY s.stmtid)
            FROM s WHERE s.func_id = f.func_id), '[]'))
        ORDER BY f.self_ns DESC, f.func_id) FROM f), '[]'),
    'callgraph', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'stack', c.stack, 'func_ids', c.func_ids, 'calls', c.calls, 'total_ns', c.total_ns,
        'children_ns', c.children_ns, 'self_ns', c.self_ns) ORDER BY c.stack) FROM c), '[]'))
$$;

-- Checks a document before it is stored (import and save share it).
CREATE FUNCTION pgscope_check_profile(doc jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF doc IS NULL OR jsonb_typeof(doc) <> 'object' OR doc->>'format' IS DISTINCT FROM 'pgscope-profile' THEN
    RAISE EXCEPTION 'not a pgscope profile document'
      USING HINT = 'Import files written by "pgscope plprof export".';
  END IF;
  IF (doc->>'version')::int IS DISTINCT FROM 1 THEN
    RAISE EXCEPTION 'unsupported pgscope profile version %', doc->>'version'
      USING HINT = 'This pgscope reads version 1 documents.';
  END IF;
  IF jsonb_typeof(doc->'functions') IS DISTINCT FROM 'array' OR jsonb_typeof(doc->'callgraph') IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'pgscope profile document lacks "functions" or "callgraph" arrays'
      USING HINT = 'The file may be truncated; export it again.';
  END IF;
  RETURN doc;
END $$;
