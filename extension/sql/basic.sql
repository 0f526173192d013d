-- Counts, lines, statement types and self/total consistency.
CREATE EXTENSION pgscope;
SELECT pl_profiler_version(), pl_profiler_versionstr();

CREATE FUNCTION inc(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE x int := 0;
BEGIN
  FOR i IN 1..n LOOP
    x := x + 1;
  END LOOP;
  IF x > 5 THEN x := x * 2; ELSE x := -x; END IF;
  RETURN x;
END $$;
CREATE FUNCTION caller() RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
  PERFORM inc(10);
  r := inc(3);
  RETURN r;
END $$;

-- nothing is recorded while profiling is off
SELECT caller();
SELECT count(*) FROM pgscope_functions();

SELECT pgscope_enable(true);
SELECT caller();
SELECT inc(100);
SELECT pgscope_enable(false);

SELECT signature, kind, calls, errors, is_current, is_latest FROM pgscope_functions() ORDER BY signature;
SELECT signature, stmtid, line_number, stmt_type, exec_count, error_count
  FROM pgscope_statements() ORDER BY signature, stmtid;
-- every source line is listed, line 0 holds the function totals
SELECT signature, line_number, statements, exec_count, source
  FROM pgscope_lines() ORDER BY signature, line_number;
-- self never exceeds total; a function's total covers its statements
SELECT signature, bool_and(self_ns <= total_ns) AS self_le_total, bool_and(max_ns <= total_ns) AS max_le_total
  FROM pgscope_lines() GROUP BY signature ORDER BY 1;
SELECT f.signature, f.total_ns >= s.total_ns AS covers_body
  FROM pgscope_functions() f JOIN pgscope_statements() s USING (func_id)
 WHERE s.stmt_type = 'block' ORDER BY 1;
-- a statement's self time excludes what it called: PERFORM inc(10) is mostly inc's time
SELECT s.self_ns < s.total_ns AS perform_self_excludes_callee
  FROM pgscope_statements() s WHERE s.signature = 'public.caller()' AND s.stmt_type = 'perform';
-- statement self times add up within the function's own time (minus call overhead; how much of it they
-- are depends on the machine's load, once under half on a loaded one: not a check)
SELECT f.signature, st.s <= f.self_ns AS within, st.s > 0 AS counted
  FROM pgscope_functions() f,
       LATERAL (SELECT sum(self_ns) AS s FROM pgscope_statements() s WHERE s.func_id = f.func_id) st
 WHERE f.signature = 'public.inc(integer)';
