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
-- the server is still here
SELECT 1 AS alive;
