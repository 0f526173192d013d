-- Loaded per session, without shared_preload_libraries: LOAD and
-- session_preload_libraries work; on/off never latches; shared-only features
-- explain themselves.
LOAD 'pgscope';
CREATE EXTENSION pgscope;
SELECT loaded_at_startup, shared_available, plugin_slot_owned FROM pgscope_status();
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
SELECT f();
SELECT pgscope_enable(true);
SELECT f();
SELECT pgscope_enable(false);
SELECT f();
SELECT pgscope_enable(true);
SELECT f();
SELECT pgscope_enable(false);
SELECT calls FROM pgscope_functions();
SELECT pl_profiler_get_enabled_global(), pl_profiler_get_enabled_pid();
\set VERBOSITY default
SELECT pgscope_enable_global(true);
SELECT count(*) FROM pgscope_functions(true);
SELECT pl_profiler_collect_data();
SELECT pl_profiler_reset_shared();
\set VERBOSITY terse
-- session_preload_libraries with pgscope.enabled in the connection options
\c "dbname=contrib_regression options='-c session_preload_libraries=pgscope -c pgscope.enabled=on'"
SELECT f();
SELECT signature, calls FROM pgscope_functions();
