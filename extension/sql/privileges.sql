-- Instance-wide switches, shared reset and other users' data need privileges.
CREATE ROLE pgscope_tester;
SET ROLE pgscope_tester;
SELECT pgscope_enable_global(true);
SELECT pl_profiler_set_enabled_global(true);
SELECT pgscope_enable_pid(1);
SELECT pl_profiler_set_collect_interval(1);
SELECT pgscope_reset(true);
SELECT count(*) FROM pgscope_functions(true);
-- the session's own profile is always available
SELECT pgscope_enable(true);
SELECT pgscope_enable(false);
SELECT count(*) >= 0 AS ok FROM pgscope_functions(false);
RESET ROLE;
GRANT pgscope_admin TO pgscope_tester;
SET ROLE pgscope_tester;
SELECT pgscope_enable_global(true, '1 minute');
SELECT pgscope_enable_global(false);
SELECT count(*) >= 0 AS ok FROM pgscope_functions(true);
RESET ROLE;
REVOKE pgscope_admin FROM pgscope_tester;
GRANT pg_read_all_stats TO pgscope_tester;
SET ROLE pgscope_tester;
SELECT count(*) >= 0 AS can_read FROM pgscope_functions(true);
SELECT pgscope_reset(true);
RESET ROLE;
DROP ROLE pgscope_tester;
