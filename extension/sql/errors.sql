-- Handled exceptions count the raising statement (time and an error count);
-- unhandled errors unwind every frame: no stale frames, no lost totals.
CREATE FUNCTION boom(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF n > 0 THEN
    RETURN 10 / (n - n);
  END IF;
  RETURN 0;
END $$;
CREATE FUNCTION catcher() RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int := 0;
BEGIN
  BEGIN
    r := boom(1);
  EXCEPTION WHEN division_by_zero THEN
    r := -1;
  END;
  RETURN r;
END $$;
CREATE FUNCTION other() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 7; END $$;
SELECT pgscope_reset();
SELECT pgscope_enable(true);
SELECT catcher();
SELECT boom(1);
SELECT other();
SELECT catcher();
SELECT pgscope_enable(false);
SELECT signature, calls, errors FROM pgscope_functions() ORDER BY signature;
SELECT signature, line_number, stmt_type, exec_count, error_count
  FROM pgscope_statements() WHERE error_count > 0 OR stmt_type = 'assign' ORDER BY signature, stmtid;
-- after the unhandled error, other() starts a fresh stack
SELECT array_to_string(stack, ' > ') AS stack, calls FROM pgscope_callgraph() ORDER BY 1;
-- the raising statement's time was counted (it did run)
SELECT total_ns > 0 AS timed FROM pgscope_statements()
 WHERE signature = 'public.boom(integer)' AND line_number = 4;
-- an error inside a nested call in a transaction block, then ROLLBACK
BEGIN;
SELECT pgscope_enable(true);
SELECT catcher();
SELECT boom(2);
ROLLBACK;
SELECT pgscope_enable(true);
SELECT other();
SELECT pgscope_enable(false);
SELECT array_to_string(stack, ' > ') AS stack, calls FROM pgscope_callgraph() ORDER BY 1;
