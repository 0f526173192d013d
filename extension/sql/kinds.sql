-- Everything PL/pgSQL runs: procedures with COMMIT/ROLLBACK, row and
-- statement triggers, event triggers and DO blocks.
CREATE TABLE t (id int);
CREATE TABLE audit (n int);
CREATE PROCEDURE batch(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO t VALUES (i);
    IF i % 2 = 0 THEN
      COMMIT;
    ELSE
      ROLLBACK;
    END IF;
  END LOOP;
END $$;
CREATE FUNCTION row_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.id := NEW.id * 10;
  RETURN NEW;
END $$;
CREATE FUNCTION stmt_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit VALUES (1);
  RETURN NULL;
END $$;
CREATE TRIGGER t_row BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION row_trg();
CREATE TRIGGER t_stmt AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION stmt_trg();
CREATE FUNCTION ddl_trg() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1;
END $$;
CREATE EVENT TRIGGER pgscope_evt ON ddl_command_end EXECUTE FUNCTION ddl_trg();

SELECT pgscope_reset();
SELECT pgscope_enable(true);
CALL batch(4);
CREATE TABLE t2 (x int);
DO $$
DECLARE s int := 0;
BEGIN
  FOR i IN 1..3 LOOP
    s := s + i;
  END LOOP;
END $$;
DO $$
DECLARE s int := 0;
BEGIN
  FOR i IN 1..3 LOOP
    s := s + i;
  END LOOP;
END $$;
SELECT pgscope_enable(false);
DROP EVENT TRIGGER pgscope_evt;
SELECT count(*) AS rows_kept FROM t;
SELECT kind, regexp_replace(signature, '[0-9a-f]{16}$', '<hash>') AS signature, calls, errors
  FROM pgscope_functions() ORDER BY kind, signature;
SELECT stmt_type, line_number, exec_count FROM pgscope_statements()
 WHERE signature = 'public.batch(integer)' ORDER BY stmtid;
-- the DO block has its source and per-line counts; both runs add up
SELECT line_number, exec_count, source FROM pgscope_lines() WHERE kind = 'do' ORDER BY line_number;
-- the trigger runs inside the procedure's INSERT: its stack shows it
SELECT array_to_string(stack, ' > ') AS stack, calls FROM pgscope_callgraph()
 WHERE array_length(stack, 1) > 1 ORDER BY 1;
