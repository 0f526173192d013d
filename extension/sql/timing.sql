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
-- Work PL/pgSQL does between two statements is the enclosing statement's:
-- a WHILE condition (also the last, failing one), a FOR-over-query's fetch
-- of the next rows, an IF condition right after a sibling ended, an integer
-- FOR's bounds, a block's variable initialisers.
-- (A sibling or an integer FOR's next iteration may reuse the tick its
-- predecessor ended at; none of these may.)
CREATE FUNCTION gaps() RETURNS int LANGUAGE plpgsql AS $$
DECLARE x int := 0; r record;
BEGIN
  WHILE (SELECT count(*) FROM pg_sleep(0.01)) = 1 AND x < 5 LOOP
    x := x + 1;
  END LOOP;
  FOR r IN SELECT pg_sleep(0.004) FROM generate_series(1, 20) LOOP
    x := x + 1;
  END LOOP;
  x := 0;
  IF (SELECT count(*) FROM pg_sleep(0.05)) = 1 THEN
    x := 1;
  END IF;
  x := 2;
  FOR i IN 1..(SELECT count(*) FROM pg_sleep(0.05))::int LOOP
    x := x + 1;
  END LOOP;
  DECLARE y int := (SELECT count(*) FROM pg_sleep(0.05));
  BEGIN
    x := y;
  END;
  RETURN x;
END $$;
SELECT pgscope_reset();
SELECT pgscope_enable(true);
SELECT gaps();
SELECT pgscope_enable(false);
SELECT line_number, stmt_type, exec_count,
       self_ns >= CASE line_number WHEN 4 THEN 59000000 WHEN 7 THEN 79000000 WHEN 11 THEN 50000000
                                   WHEN 15 THEN 50000000 WHEN 19 THEN 50000000 ELSE 0 END AS enclosing_has_gap,
       total_ns < CASE WHEN stmt_type = 'assign' THEN 2000000 ELSE 1e15 END AS body_has_none
  FROM pgscope_statements() WHERE signature = 'public.gaps()' ORDER BY line_number;
