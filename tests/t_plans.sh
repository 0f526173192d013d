#!/usr/bin/env bash
# pgscope plans on a throwaway cluster: a set of statements (seq and index
# scans, nested loop / hash / merge joins, aggregates, a sort, a subplan, an
# init plan, a CTE, a partitioned table's Append, a prepared statement past its
# fifth execution) runs while the tracer watches; the plan it read from each
# backend has the node types, relations, indexes, estimated rows and costs of
# EXPLAIN (FORMAT JSON) of the same statement in the same session.  The
# prepared statement that flips from custom to generic plans is reported as a
# plan change by --by query; the threshold keeps fast statements out; bad
# options exit 2; nothing stays attached after the tracer ends.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "the tracer tests need root"
start_cluster "shared_preload_libraries = 'pgscope'" "autovacuum = off" "max_parallel_workers_per_gather = 0" \
  "jit = off"
PM=$(pm_pid)
MAJOR=$(pg_major)
q "CREATE DATABASE plandb"
export PGDATABASE=plandb
q "CREATE TABLE t (id int PRIMARY KEY, g int, pad text);
   INSERT INTO t SELECT i, i % 100, repeat('x', 20) FROM generate_series(1, 10000) i;
   CREATE TABLE u (id int PRIMARY KEY, t_id int, w int);
   INSERT INTO u SELECT i, (i * 7) % 10000 + 1, i % 10 FROM generate_series(1, 1000) i;
   CREATE TABLE sk (id int, v int);
   INSERT INTO sk SELECT i, CASE WHEN i % 100 = 0 THEN i ELSE 0 END FROM generate_series(1, 20000) i;
   CREATE INDEX sk_v ON sk (v);
   CREATE TABLE p (k int, v int) PARTITION BY RANGE (k);
   CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (500);
   CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (500) TO (1000);
   INSERT INTO p SELECT i, i % 7 FROM generate_series(0, 999) i;
   CREATE TABLE expl (name text, plan jsonb);
   CREATE TABLE traced (line text);
   CREATE FUNCTION expl(name text, stmt text) RETURNS void LANGUAGE plpgsql AS \$\$
   DECLARE j json;
   BEGIN
     EXECUTE 'EXPLAIN (FORMAT JSON) ' || stmt INTO j;
     INSERT INTO expl VALUES (name, (j::jsonb)->0->'Plan');
   END \$\$;
   -- a plan as lines in EXPLAIN's order: where the node is, then the keys asked of it
   CREATE FUNCTION flat_keys(p jsonb, keys text[]) RETURNS text LANGUAGE sql AS \$\$
     WITH RECURSIVE n(path, node) AS (
       SELECT '', p
       UNION ALL
       SELECT n.path || '.' || lpad(o::text, 3, '0'), c
       FROM n, jsonb_array_elements(n.node->'Plans') WITH ORDINALITY AS e(c, o)
     )
     SELECT string_agg(concat_ws(' | ', path, (SELECT string_agg(node->>k, ' | ' ORDER BY o)
                                               FROM unnest(keys) WITH ORDINALITY AS u(k, o))), E'\n' ORDER BY path)
     FROM n
   \$\$;
   -- what the node is, on what, its estimates
   CREATE FUNCTION flat(p jsonb) RETURNS text LANGUAGE sql AS \$\$
     SELECT flat_keys(p, ARRAY['Node Type', 'Parent Relationship', 'Subplan Name', 'Join Type', 'Strategy',
                               'Partial Mode', 'Operation', 'Scan Direction', 'Relation Name', 'Index Name',
                               'CTE Name', 'Startup Cost', 'Total Cost', 'Plan Rows', 'Plan Width', 'Parallel Aware'])
   \$\$;
   -- and what EXPLAIN ANALYZE counts
   CREATE FUNCTION flat_actual(p jsonb) RETURNS text LANGUAGE sql AS \$\$
     SELECT flat_keys(p, ARRAY['Node Type', 'Relation Name', 'Index Name', 'Actual Rows', 'Actual Loops'])
   \$\$;
   CREATE FUNCTION expl_analyze(name text, stmt text) RETURNS void LANGUAGE plpgsql AS \$\$
   DECLARE j json;
   BEGIN
     EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || stmt INTO j;
     INSERT INTO expl VALUES ('analyze-' || name, (j::jsonb)->0->'Plan');
   END \$\$;"

q "VACUUM ANALYZE"

# bad options: usage errors, before anything is attached
for bad in "--analyze=bogus" "--by x" "--min-ms -1" "--min-ms" "--by"; do
  set +e; "$PGSCOPE" plans --pid "$PM" $bad --duration 1 >/dev/null 2>"$WORK/bad.err"; rc=$?; set -e
  [ "$rc" = 2 ] || { cat "$WORK/bad.err"; fail "plans $bad: exit $rc, expected 2"; }
  [ "$(wc -l <"$WORK/bad.err")" = 1 ] || { cat "$WORK/bad.err"; fail "plans $bad: not one line"; }
done
echo "ok: bad options exit 2 with one line"

start_tracer "$WORK/plans.json" plans --pid "$PM" -d plandb --min-ms 0 --json
start_tracer "$WORK/byquery.json" plans --pid "$PM" -d plandb --min-ms 0 --by query --json
start_tracer "$WORK/slow.txt" plans --pid "$PM" -d plandb --min-ms 300
start_tracer "$WORK/text.txt" plans --pid "$PM" -d plandb --min-ms 0

# each statement marked /*p:NAME*/, run with the settings that force its plan,
# then explained in the same session
cases=(
  "seq||SELECT /*p:seq*/ count(*) FROM t WHERE pad <> 'y'"
  "index||SELECT /*p:index*/ * FROM t WHERE id = 42"
  "backward||SELECT /*p:backward*/ id FROM t WHERE id < 100 ORDER BY id DESC"
  "nestloop|SET enable_hashjoin = off; SET enable_mergejoin = off;|SELECT /*p:nestloop*/ count(*) FROM u JOIN t ON t.id = u.t_id WHERE u.w = 3"
  "hash||SELECT /*p:hash*/ u.w, count(*) FROM t JOIN u ON t.id = u.t_id GROUP BY u.w"
  "merge|SET enable_hashjoin = off; SET enable_nestloop = off;|SELECT /*p:merge*/ count(*) FROM t LEFT JOIN u ON t.id = u.t_id"
  "sortagg|SET enable_hashagg = off;|SELECT /*p:sortagg*/ g, count(*) FROM t GROUP BY g ORDER BY g DESC LIMIT 5"
  "subplan||SELECT /*p:subplan*/ count(*) FROM u WHERE w > (SELECT avg(g) FROM t WHERE t.id = u.t_id)"
  "initplan||SELECT /*p:initplan*/ * FROM u WHERE t_id = (SELECT max(id) FROM t)"
  "cte||WITH /*p:cte*/ c AS MATERIALIZED (SELECT g, count(*) n FROM t GROUP BY g) SELECT a.g FROM c a JOIN c b ON a.g = b.n"
  "append||SELECT /*p:append*/ v, count(*) FROM p WHERE k % 3 = 0 GROUP BY v"
  "insert||INSERT /*p:insert*/ INTO u SELECT id + 5000, id, 0 FROM t WHERE id <= 10"
)
for c in "${cases[@]}"; do
  name=${c%%|*}; rest=${c#*|}; set_sql=${rest%%|*}; stmt=${rest#*|}
  psql -X -qAt -v ON_ERROR_STOP=1 -o /dev/null -c "$set_sql $stmt" \
    -c "$set_sql SELECT expl('$name', \$q\$$stmt\$q\$)" || fail "case $name"
done
# a prepared statement: five custom plans (v = 0 is 99% of sk: a seq scan),
# then the generic plan (an average v: the index)
psql -X -qAt -v ON_ERROR_STOP=1 -o /dev/null \
  -c "PREPARE s(int) AS SELECT /*p:prepared*/ count(*) FROM sk WHERE v = \$1" \
  -c "EXECUTE s(0)" -c "EXECUTE s(0)" -c "EXECUTE s(0)" -c "EXECUTE s(0)" -c "EXECUTE s(0)" \
  -c "SELECT expl('prepared5', 'EXECUTE s(0)')" \
  -c "EXECUTE s(0)" -c "EXECUTE s(0)" \
  -c "SELECT expl('prepared7', 'EXECUTE s(0)')" || fail "prepared statement"
# a plan past the bound of 64 nodes: cut, and it says so
q "SELECT /*p:wide*/ count(*) FROM ($(for i in $(seq 1 80); do printf "SELECT $i AS x UNION ALL "; done) SELECT 0) s"
# slow enough for the 300 ms threshold
q "SELECT /*p:slow*/ pg_sleep(0.4)"
sleep 0.5
stop_tracer "$WORK/plans.json" ", 0 lost$"
stop_tracer "$WORK/byquery.json" ", 0 lost$"
stop_tracer "$WORK/slow.txt" ", 0 lost$"
stop_tracer "$WORK/text.txt" ", 0 lost$"

# the traced plans into the database, compared there
chmod 644 "$WORK/plans.json"
psql -X -qAt -v ON_ERROR_STOP=1 -c "\\copy traced FROM '$WORK/plans.json' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
q "CREATE VIEW tp AS SELECT (l->>'query') query, l->>'plan_origin' origin, substring(l->>'query' from '/\\*p:(\\w+)\\*/') name,
     l->'Plan' plan, row_number() OVER () seq
   FROM (SELECT line::jsonb l FROM traced) s WHERE l->>'query' ~ '/\\*p:' AND l->>'query' !~ 'expl(_analyze)?\\('"
n=$(q "SELECT count(*) FROM tp")
[ "$n" -ge 20 ] || { cat "$WORK/plans.json.err"; fail "only $n marked plans traced"; }
for c in "${cases[@]}"; do
  name=${c%%|*}
  got=$(q "SELECT count(*) FROM tp WHERE name = '$name'")
  expect_eq "$got" 1 "$name: traced once"
  diff <(q "SELECT flat(plan) FROM tp WHERE name = '$name'") <(q "SELECT flat(plan) FROM expl WHERE name = '$name'") \
    || fail "$name: the traced plan differs from EXPLAIN's (< traced, > EXPLAIN)"
  echo "ok: $name: the traced plan is EXPLAIN's"
done
# the node types the set was written for are all there
for node in "Seq Scan" "Index Scan" "Index Only Scan" "Nested Loop" "Hash Join" "Merge Join" "Aggregate" "Sort" \
            "Limit" "CTE Scan" "Append" "ModifyTable"; do
  got=$(q "SELECT count(*) FROM tp WHERE plan::text LIKE '%\"Node Type\": \"$node\"%'")
  [ "$got" -gt 0 ] || fail "no traced plan has a $node node"
done
echo "ok: scans, the three joins, aggregates, sort, limit, CTE scan, Append and ModifyTable all traced"
expect_eq "$(q "SELECT count(*) FROM tp WHERE plan::text LIKE '%\"Parent Relationship\": \"SubPlan\"%' AND name = 'subplan'")" 1 \
  "the correlated subquery is a SubPlan"
expect_eq "$(q "SELECT count(*) FROM tp WHERE plan::text LIKE '%\"Parent Relationship\": \"InitPlan\"%' AND name IN ('initplan', 'cte')")" 2 \
  "the uncorrelated subquery and the CTE are InitPlans"

# the prepared statement: seven executions, custom plans then the generic one
expect_eq "$(q "SELECT count(*) FROM tp WHERE name = 'prepared'")" 7 "seven executions of the prepared statement traced"
expect_eq "$(q "SELECT string_agg(origin, ',' ORDER BY seq) FROM tp WHERE name = 'prepared'")" \
  "custom,custom,custom,custom,custom,generic,generic" "five custom plans, then generic ones"
diff <(q "SELECT flat(plan) FROM tp WHERE name = 'prepared' ORDER BY seq LIMIT 1") \
     <(q "SELECT flat(plan) FROM expl WHERE name = 'prepared5'") >/dev/null \
  && fail "the custom plan for v = 0 is the generic one: no flip to test"
diff <(q "SELECT flat(plan) FROM tp WHERE name = 'prepared' ORDER BY seq DESC LIMIT 1") \
     <(q "SELECT flat(plan) FROM expl WHERE name = 'prepared7'") || fail "the generic plan differs from EXPLAIN EXECUTE's"
echo "ok: the generic plan is EXPLAIN EXECUTE's"
# simple queries have no cached plan
expect_eq "$(q "SELECT origin FROM tp WHERE name = 'seq'")" "not cached" "a simple query's plan is not cached"

# --by query: the flip is a plan change, with both plans; one plan elsewhere
grep '/\*p:prepared\*/' "$WORK/byquery.json" >"$WORK/prep.json" || { cat "$WORK/byquery.json"; fail "no group for the prepared statement"; }
grep -q '"calls": 7, .*"plan_changed": true' "$WORK/prep.json" || { cat "$WORK/prep.json"; fail "the flip is not a plan change"; }
grep -q '"calls": 5, "first": .*"calls": 2, "first": ' "$WORK/prep.json" || { cat "$WORK/prep.json"; fail "not both plans"; }
grep '/\*p:index\*/' "$WORK/byquery.json" | grep -q '"plan_changed": false' || fail "one plan reported as a change"
echo "ok: --by query reports the generic-plan flip with both plans"

# the text format: EXPLAIN's labels
grep -q "Index Scan using t_pkey on t" "$WORK/text.txt" || { cat "$WORK/text.txt"; fail "text: no index scan line"; }
grep -q "Index Scan Backward using t_pkey on t\|Index Only Scan Backward using t_pkey on t" "$WORK/text.txt" \
  || fail "text: no backward scan"
grep -q "Merge Left Join\|Merge Right Join" "$WORK/text.txt" || fail "text: no merge join with its type"
grep -q "CTE Scan on c" "$WORK/text.txt" || fail "text: no CTE scan with its alias"
grep -q "custom plan" "$WORK/text.txt" && grep -q "generic plan" "$WORK/text.txt" || fail "text: no plan origins"
echo "ok: the text format has EXPLAIN's labels"

# the bound
expect_eq "$(q "SELECT count(*) FROM traced WHERE line LIKE '%p:wide%' AND line LIKE '%\"truncated\": \"cut at 64 nodes\"%'")" 1 \
  "a plan of 82 nodes is cut at 64 and says so"
expect_eq "$(q "SELECT count(*) FROM traced WHERE line LIKE '%p:%' AND line NOT LIKE '%p:wide%' AND line NOT LIKE '%\"truncated\": null%'")" 0 "every other plan read whole"

# the threshold: the sleep alone is over 300 ms
grep -q 'p:slow' "$WORK/slow.txt" || { cat "$WORK/slow.txt"; fail "the slow statement is missing"; }
grep -q 'p:index\|p:seq' "$WORK/slow.txt" && fail "fast statements passed the threshold"
echo "ok: --min-ms keeps fast statements out"

# --analyze: without the kernel's bpf_probe_write_user, the extension's lease
# instruments statements; with neither, a clear error
set +e; PGSCOPE_ANALYZE_VIA=extension "$PGSCOPE" plans --pid "$PM" --analyze --duration 1 >/dev/null 2>"$WORK/noext.err"; rc=$?; set -e
[ "$rc" = 1 ] || { cat "$WORK/noext.err"; fail "--analyze without the extension: exit $rc, expected 1"; }
grep -q "CREATE EXTENSION pgscope" "$WORK/noext.err" || { cat "$WORK/noext.err"; fail "--analyze without the extension: no hint"; }
echo "ok: --analyze with no way to instrument: exit 1, saying what to install"
PGDATABASE=postgres q "CREATE EXTENSION pgscope"
q "TRUNCATE traced"
start_tracer "$WORK/plain.json" plans --pid "$PM" -d plandb --min-ms 0 --json
start_tracer "$WORK/analyze.json" plans --pid "$PM" -d plandb --min-ms 0 --json --analyze=rows
grep -q "a cost on each" "$WORK/analyze.json.err" || fail "--analyze does not state its cost at start"
acases=(seq index backward nestloop hash merge sortagg subplan initplan cte append)
for c in "${cases[@]}"; do
  name=${c%%|*}; rest=${c#*|}; set_sql=${rest%%|*}; stmt=${rest#*|}
  [[ " ${acases[*]} " == *" $name "* ]] || continue
  psql -X -qAt -v ON_ERROR_STOP=1 -o /dev/null -c "$set_sql $stmt" \
    -c "$set_sql SELECT expl_analyze('$name', \$q\$$stmt\$q\$)" || fail "analyze case $name"
done
stop_tracer "$WORK/analyze.json" ", 0 lost$"
grep -q ", [1-9][0-9]* instrumented, " "$WORK/analyze.json.err" || { cat "$WORK/analyze.json.err"; fail "nothing instrumented"; }
# after the tracer: statements start uninstrumented
q "SELECT /*p:after*/ count(*) FROM t" >/dev/null
# a killed tracer's lease lapses (5 s)
PGSCOPE_ANALYZE_VIA=extension "$PGSCOPE" plans --pid "$PM" -d plandb --analyze --min-ms 100000 >/dev/null 2>"$WORK/killed.err" &
KP=$!
wait_said "$WORK/killed.err" tracing "$KP"
q "SELECT /*p:killed0*/ count(*) FROM t" >/dev/null
kill -KILL "$KP"; wait "$KP" 2>/dev/null || true
sleep 6
q "SELECT /*p:killed6*/ count(*) FROM t" >/dev/null
sleep 0.3
stop_tracer "$WORK/plain.json" ", 0 lost$"
psql -X -qAt -v ON_ERROR_STOP=1 -c "\\copy traced FROM '$WORK/analyze.json' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
for name in "${acases[@]}"; do
  expect_eq "$(q "SELECT count(*) FROM tp WHERE name = '$name' AND query !~* '^\\s*explain'")" 1 "--analyze: $name traced once"
  diff <(q "SELECT flat_actual(plan) FROM tp WHERE name = '$name' AND query !~* '^\\s*explain'") \
       <(q "SELECT flat_actual(plan) FROM expl WHERE name = 'analyze-$name'") \
    || fail "--analyze: $name: actual rows and loops differ from EXPLAIN ANALYZE's (< traced, > EXPLAIN)"
  echo "ok: --analyze: $name: actual rows and loops are EXPLAIN ANALYZE's"
done
grep -Eq '"Actual Loops": ([2-9]|[1-9][0-9])' "$WORK/analyze.json" || fail "--analyze: no node ran more than one loop"
# the plain tracer read instrumentation where there was some, and none after
grep 'p:seq' "$WORK/plain.json" | grep -v -i '"query": "explain' | grep -q '"Actual Rows"' \
  || fail "a statement started under --analyze was not instrumented"
grep 'p:after' "$WORK/plain.json" | grep -q '"Node Type"' || fail "the statement after --analyze was not traced"
grep 'p:after' "$WORK/plain.json" | grep -q '"Actual Rows"' && fail "a statement after --analyze ended was instrumented"
echo "ok: statements after --analyze ends are not instrumented"
grep 'p:killed0' "$WORK/plain.json" | grep -q '"Actual Rows"' || fail "the lease did not instrument"
grep 'p:killed6' "$WORK/plain.json" | grep -q '"Node Type"' || fail "the statement after the lease was not traced"
grep 'p:killed6' "$WORK/plain.json" | grep -q '"Actual Rows"' && fail "a killed tracer's lease did not lapse"
echo "ok: a killed tracer's lease lapses within 5 seconds"

# nothing left attached
if command -v bpftool >/dev/null; then
  bpftool prog show | grep -q 'on_executor_' && fail "plans programs left attached"
  echo "ok: no plans program left attached"
fi
