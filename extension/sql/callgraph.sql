-- Call stacks, recursion (inclusive totals only at the outermost level) and
-- depth folding (pgscope.max_stack_depth = 20 in the test cluster).
CREATE FUNCTION leaf() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
CREATE FUNCTION mid() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN leaf() + leaf(); END $$;
CREATE FUNCTION top() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN mid() + leaf(); END $$;
CREATE FUNCTION rec(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF n <= 1 THEN RETURN 1; END IF;
  PERFORM pg_sleep(0.001);
  RETURN rec(n - 1) + 1;
END $$;
SELECT pgscope_reset();
SELECT pgscope_enable(true);
SELECT top();
SELECT top();
SELECT rec(5);
SELECT pgscope_enable(false);
SELECT array_to_string(stack, ' > ') AS stack, calls, children_ns + self_ns = total_ns AS parts_add_up
  FROM pgscope_callgraph() WHERE stack[1] <> 'public.rec(integer)' ORDER BY 1;
SELECT array_length(stack, 1) AS depth, calls FROM pgscope_callgraph()
 WHERE stack[1] = 'public.rec(integer)' ORDER BY 1;
-- recursion: inclusive total of rec counts the outermost activation only, so
-- it equals the depth-1 stack's total, not the sum over all levels
SELECT f.calls, f.total_ns = c.total_ns AS total_is_outermost,
       f.total_ns < (SELECT sum(total_ns) FROM pgscope_callgraph() WHERE stack[1] = 'public.rec(integer)') AS not_summed
  FROM pgscope_functions() f, pgscope_callgraph() c
 WHERE f.signature = 'public.rec(integer)' AND c.stack = ARRAY['public.rec(integer)'];
-- self times over all stacks add up to the functions' self times
-- (each sum is converted from ticks separately: allow a few ns of rounding)
SELECT abs((SELECT sum(self_ns) FROM pgscope_callgraph()) - (SELECT sum(self_ns) FROM pgscope_functions())) < 100 AS self_consistent;
-- deeper than pgscope.max_stack_depth: folded into one marker frame, nothing lost
SELECT pgscope_reset();
SELECT pgscope_enable(true);
SELECT rec(50);
SELECT pgscope_enable(false);
SELECT max(array_length(stack, 1)) AS max_depth, sum(calls) AS calls FROM pgscope_callgraph();
SELECT stack[21] AS marker, calls FROM pgscope_callgraph() WHERE array_length(stack, 1) = 21;
SELECT calls FROM pgscope_functions() WHERE signature = 'public.rec(integer)';
-- far deeper than plprofiler's fixed 200 frames, also when an error unwinds it all
CREATE FUNCTION deep(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF n = 0 THEN RETURN 1 / n; END IF;
  RETURN deep(n - 1) + 1;
END $$;
SELECT pgscope_reset();
SELECT pgscope_enable(true);
\set VERBOSITY terse
SELECT deep(300);
\set VERBOSITY default
SELECT pgscope_enable(false);
SELECT calls, errors FROM pgscope_functions() WHERE signature = 'public.deep(integer)';
SELECT max(array_length(stack, 1)) AS max_depth, sum(calls) AS calls FROM pgscope_callgraph();
