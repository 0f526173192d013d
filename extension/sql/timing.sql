-- Exact accumulation: nothing is rounded per statement (plprofiler lost 99%
-- of a million tiny statements).  Checked with explicit tolerances.
CREATE FUNCTION spin(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE x int := 0;
BEGIN
  FOR i IN 1..n LOOP
    x := x + 1;
  END LOOP;
  RETURN x;
END $$;
CREATE FUNCTION sleeper() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.05);
END $$;
SELECT pgscope_reset();
SELECT pgscope_enable(true);
SELECT spin(200000);
SELECT sleeper();
SELECT pgscope_enable(false);
-- the assignment's statements account for a real share of the function (not ~1%)
SELECT s.exec_count,
       s.total_ns::float8 / f.total_ns BETWEEN 0.15 AND 1.0 AS share_ok,
       s.total_ns > s.exec_count AS above_one_ns_each
  FROM pgscope_statements() s JOIN pgscope_functions() f USING (func_id)
 WHERE s.signature = 'public.spin(integer)' AND s.stmt_type = 'assign' AND s.line_number = 5;
-- wall-clock time: pg_sleep(0.05) is 50 ms (+ scheduling slack); a call of a
-- non-PL/pgSQL function is the statement's own time
SELECT total_ns BETWEEN 50000000 AND 90000000 AS sleep_50ms,
       self_ns > 0.95 * total_ns AS perform_self
  FROM pgscope_statements() WHERE signature = 'public.sleeper()' AND stmt_type = 'perform';
-- plprofiler-compatible microseconds are rounded from the exact sums
SELECT l.total_time = round(n.total_ns / 1000.0) AS us_rounded
  FROM pl_profiler_linestats_local() l
  JOIN pgscope_lines() n ON n.func_oid = l.func_oid AND n.line_number = l.line_number
 WHERE n.signature = 'public.spin(integer)' AND l.line_number = 5;
