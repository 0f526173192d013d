#!/usr/bin/env bash
# 8 backends call profiled functions for several seconds with instance-wide
# profiling on; afterwards the shared totals equal the calls made.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_cluster "shared_preload_libraries = 'pgscope'"
q "CREATE EXTENSION pgscope"
q "CREATE FUNCTION leaf(n int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN n + 1; END \$\$"
q "CREATE FUNCTION work(n int) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE s int := 0;
BEGIN
  FOR i IN 1..n LOOP
    s := s + leaf(i);
  END LOOP;
  RETURN s;
END \$\$"
q "SELECT pgscope_enable_global(true, '10 minutes')" >/dev/null
echo "SELECT work(5);" >"$PGDIR/bench.sql"
pgbench -n -c 8 -j 2 -T 4 -f "$PGDIR/bench.sql" postgres >"$PGDIR/pgbench.out" 2>&1 ||
  { cat "$PGDIR/pgbench.out"; fail "pgbench"; }
q "SELECT pgscope_enable_global(false)" >/dev/null
tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$PGDIR/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$PGDIR/pgbench.out")
[ -n "$tx" ] && [ "$tx" -gt 100 ] || fail "pgbench ran too few transactions: '$tx'"
expect_eq "${failed:-0}" 0 "no failed transactions"
expect_eq "$(q "SELECT calls FROM pgscope_functions(true) WHERE signature = 'public.work(integer)'")" "$tx" \
  "shared calls of work() = $tx transactions"
expect_eq "$(q "SELECT calls FROM pgscope_functions(true) WHERE signature = 'public.leaf(integer)'")" "$((tx * 5))" \
  "shared calls of leaf() = 5 x transactions"
expect_eq "$(q "SELECT calls FROM pgscope_callgraph(true) WHERE stack = ARRAY['public.work(integer)','public.leaf(integer)']")" "$((tx * 5))" \
  "shared call graph work > leaf"
expect_eq "$(q "SELECT exec_count FROM pgscope_statements(true) WHERE signature = 'public.work(integer)' AND stmt_type = 'assign' AND line_number = 5")" "$((tx * 5))" \
  "shared statement counts"
expect_eq "$(q "SELECT functions_overflow OR statements_overflow OR callgraph_overflow FROM pgscope_status()")" f "no overflow"

# a session connected (and idle, with the plugin slot parked) before
# instance-wide profiling was switched on is picked up at its next query
q "SELECT pgscope_reset(true)" >/dev/null
psql -X -qAt -v ON_ERROR_STOP=1 -c "SELECT leaf(1)" -c "SELECT pg_sleep(1.5)" -c "SELECT leaf(2)" \
  >/dev/null 2>&1 &
early=$!
sleep 0.5
q "SELECT pgscope_enable_global(true, '10 minutes')" >/dev/null
wait "$early" || true
q "SELECT pgscope_enable_global(false)" >/dev/null
expect_eq "$(q "SELECT calls FROM pgscope_functions(true) WHERE signature = 'public.leaf(integer)'")" 1 \
  "an already-connected session is profiled after the switch, not before"
