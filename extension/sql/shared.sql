-- Instance-wide profiling: merged at transaction end, per database.
CREATE FUNCTION sh(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN n + 1;
END $$;
CREATE FUNCTION sh_outer() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN sh(1) + sh(2);
END $$;
SELECT pgscope_reset(true);
SELECT pgscope_reset(false);
SELECT pgscope_enable_global(true, '10 minutes');
SELECT global_enabled, global_expires > now() AS expires_later FROM pgscope_status();
SELECT sh_outer();
SELECT sh_outer();
BEGIN;
SELECT sh(5);
-- not merged before the transaction ends
SELECT count(*) FROM pgscope_functions(true) WHERE signature = 'public.sh(integer)';
COMMIT;
SELECT pgscope_enable_global(false);
SELECT sh(9);
SELECT signature, calls FROM pgscope_functions(true) ORDER BY 1;
SELECT array_to_string(stack, ' > ') AS stack, calls FROM pgscope_callgraph(true) ORDER BY 1;
SELECT line_number, exec_count FROM pgscope_lines(true) WHERE signature = 'public.sh(integer)' ORDER BY 1;
-- compat readers of the shared tables
SELECT cardinality(pl_profiler_func_oids_shared()) AS nfuncs;
SELECT regexp_replace(array_to_string(pl_profiler_get_stack(stack), ';'), 'oid=[0-9]+', 'oid=N', 'g') AS stack, call_count FROM pl_profiler_callgraph_shared() ORDER BY 2, 1;
SELECT count(*) FROM pl_profiler_linestats_shared() WHERE exec_count > 0;
-- per-pid activation, with expiry
SELECT pgscope_enable_pid(pg_backend_pid(), '10 minutes') = pg_backend_pid() AS pid_set;
SELECT pl_profiler_get_enabled_pid() = pg_backend_pid() AS pid_enabled;
SELECT sh(1);
SELECT pl_profiler_set_enabled_pid(0);
SELECT sh(1);
SELECT calls FROM pgscope_functions(true) WHERE signature = 'public.sh(integer)';
-- expiry: a client that dies cannot leave instance-wide profiling on
SELECT pgscope_enable_global(true, '1 second');
SELECT pg_sleep(1.2);
SELECT sh(1);
SELECT global_enabled FROM pgscope_status();
SELECT pl_profiler_get_enabled_global();
SELECT calls FROM pgscope_functions(true) WHERE signature = 'public.sh(integer)';
SELECT pl_profiler_set_enabled_global(false);
-- explicit collect merges session data
SELECT pgscope_enable(true);
SELECT sh(3);
SELECT pgscope_enable(false);
SELECT pl_profiler_collect_data();
SELECT calls FROM pgscope_functions(true) WHERE signature = 'public.sh(integer)';
-- collect interval
SELECT pl_profiler_set_collect_interval(5), pl_profiler_get_collect_interval();
SELECT pl_profiler_set_collect_interval(0);
SELECT pl_profiler_reset_shared();
SELECT count(*) FROM pgscope_functions(true);
SELECT shared_functions, functions_overflow, statements_overflow, callgraph_overflow FROM pgscope_status();
