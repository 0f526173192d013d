-- plprofiler 4.2 API: same names, arguments and columns, callable unqualified.
SELECT p.proname, pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result
  FROM pg_proc p WHERE p.proname LIKE 'pl\_profiler\_%' ORDER BY 1;
CREATE FUNCTION cmp_a(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN cmp_b(n) + 1;
END $$;
CREATE FUNCTION cmp_b(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN n * 2;
END $$;
SELECT pl_profiler_reset_local();
SELECT pl_profiler_set_enabled_local(true);
SELECT cmp_a(1);
SELECT cmp_a(2);
SELECT pl_profiler_set_enabled_local(false);
SELECT pl_profiler_get_enabled_local();
-- the client's line query: linestats joined with source
SELECT S.func_oid::regproc AS func, L.line_number, L.exec_count, S.source
  FROM pl_profiler_linestats_local() L
  JOIN pl_profiler_funcs_source(pl_profiler_func_oids_local()) S USING (func_oid, line_number)
 ORDER BY 1, 2;
-- the client's flame-graph input
SELECT regexp_replace(array_to_string(pl_profiler_get_stack(stack), ';'), 'oid=[0-9]+', 'oid=N', 'g') AS stack, call_count,
       us_total >= us_self AS ok
  FROM pl_profiler_callgraph_local() ORDER BY 1;
SELECT pl_profiler_callgraph_overflow(), pl_profiler_functions_overflow(), pl_profiler_lines_overflow();
SELECT pl_profiler_get_enabled_global(), pl_profiler_get_enabled_pid(), pl_profiler_get_collect_interval();
