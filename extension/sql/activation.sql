-- Session on/off takes effect at the next statement; disabling keeps data.
CREATE FUNCTION toggler() RETURNS int LANGUAGE plpgsql AS $$
DECLARE x int := 0;
BEGIN
  x := x + 1;
  PERFORM pgscope_enable(false);
  x := x + 1;
  x := x + 1;
  PERFORM pgscope_enable(true);
  x := x + 1;
  RETURN x;
END $$;
CREATE FUNCTION simple() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
SELECT pgscope_reset();
SET pgscope.enabled = on;
SELECT simple();
SET pgscope.enabled = off;
SELECT simple();
-- data survives being switched off, and more calls while off add nothing
SELECT calls FROM pgscope_functions() WHERE signature = 'public.simple()';
SELECT pl_profiler_set_enabled_local(true);
SELECT pl_profiler_get_enabled_local();
SELECT simple();
SELECT toggler();
SELECT pl_profiler_set_enabled_local(false);
SELECT calls FROM pgscope_functions() WHERE signature = 'public.simple()';
SELECT line_number, exec_count FROM pgscope_statements()
 WHERE signature = 'public.toggler()' AND stmt_type = 'assign' ORDER BY line_number;
-- switched on while the function runs: it is picked up at the next statement
CREATE FUNCTION late() RETURNS int LANGUAGE plpgsql AS $$
DECLARE x int := 0;
BEGIN
  PERFORM pgscope_enable(true);
  x := x + 1;
  RETURN x;
END $$;
SELECT pgscope_reset();
SELECT late();
SELECT pgscope_enable(false);
SELECT signature, calls FROM pgscope_functions() ORDER BY 1;
SELECT line_number, stmt_type, exec_count FROM pgscope_statements() ORDER BY stmtid;
-- reset clears the session's data; reset from inside a running function is safe
SELECT pgscope_enable(true);
CREATE FUNCTION resetter() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM simple();
  PERFORM pgscope_reset();
  RETURN simple();
END $$;
SELECT resetter();
SELECT pgscope_enable(false);
SELECT signature, calls FROM pgscope_functions() WHERE calls > 0 ORDER BY 1;
SELECT pgscope_reset();
SELECT count(*) FROM pgscope_functions();
