-- Bad input: a clear ERROR with a hint, never a crash.
\set VERBOSITY default
SELECT pgscope_enable(NULL);
SELECT pl_profiler_set_enabled_global(NULL);
SELECT pl_profiler_set_enabled_pid(NULL);
SELECT pgscope_enable_pid(-5);
SELECT pl_profiler_set_collect_interval(-1);
SELECT pl_profiler_set_collect_interval(NULL);
SELECT pgscope_enable_global(true, '-1 hour');
SELECT pgscope_reset(NULL);
SELECT * FROM pgscope_functions(NULL);
SELECT * FROM pl_profiler_funcs_source(NULL);
SELECT * FROM pl_profiler_funcs_source(ARRAY[NULL]::oid[]);
SELECT * FROM pl_profiler_funcs_source(ARRAY[4294967295]::oid[]);
SELECT * FROM pl_profiler_funcs_source(ARRAY[[1,2],[3,4]]::oid[]);
SELECT * FROM pl_profiler_funcs_source(array_fill(1::oid, ARRAY[200000]));
SELECT pl_profiler_get_stack(NULL);
SELECT pl_profiler_get_stack(ARRAY[4294967295]::oid[]);
SELECT pl_profiler_get_stack(ARRAY[0]::oid[]);
SELECT pl_profiler_get_stack('{}');
-- a tracer's instrumentation lease (pgscope plans --analyze)
SELECT pgscope_instrument(NULL, 'rows');
SELECT pgscope_instrument(1, NULL);
SELECT pgscope_instrument(0, 'rows');
SELECT pgscope_instrument(1, 'bogus');
SELECT pgscope_instrument(1, 'rows', '0');
SELECT pgscope_instrument(1, 'rows', NULL);
SELECT pgscope_instrument(1, 'rows', '2 hours');
SELECT pgscope_instrument(1, 'rows', '300000 years');
SELECT pgscope_instrument(1, 'rows', '1 second', 'nosuchdb');
-- eight tracers at most: a ninth finds no slot, until one ends its lease
SELECT count(*) FILTER (WHERE pgscope_instrument(o, 'rows', '1 minute')) AS leases FROM generate_series(1, 8) o;
SELECT pgscope_instrument(9, 'rows', '1 minute');
SELECT pgscope_instrument(8, 'off');
SELECT pgscope_instrument(9, 'timing', '1 minute', current_database());
SELECT count(*) FILTER (WHERE NOT pgscope_instrument(o, 'off')) AS ended FROM generate_series(1, 9) o;
-- the server is still here
SELECT 1 AS alive;
