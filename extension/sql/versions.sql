-- CREATE OR REPLACE starts a new profile; old and new never mix.
CREATE FUNCTION ver() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN 1;
END $$;
SELECT pgscope_reset();
SELECT pgscope_enable(true);
SELECT ver();
SELECT ver();
CREATE OR REPLACE FUNCTION ver() RETURNS int LANGUAGE plpgsql AS $$
DECLARE a int := 2;
BEGIN
  a := a + 1;
  RETURN a;
END $$;
SELECT ver();
SELECT pgscope_enable(false);
SELECT calls, is_current, is_latest, source LIKE '%a := a + 1%' AS new_source
  FROM pgscope_functions() WHERE signature = 'public.ver()' ORDER BY calls;
-- the compatibility view shows the current version only, with its own lines
SELECT line_number, exec_count FROM pl_profiler_linestats_local()
 WHERE func_oid = 'ver'::regproc ORDER BY line_number;
-- a dropped function keeps its profile and source
DROP FUNCTION ver();
SELECT calls, is_current, is_latest FROM pgscope_functions() WHERE signature = 'public.ver()' ORDER BY calls;
SELECT count(*) > 0 AS source_kept FROM pgscope_lines()
 WHERE signature = 'public.ver()' AND source LIKE '%RETURN a;%';
