#!/usr/bin/env bash
# Tiny shared tables: overflow flags get set, one LOG line each, the
# application sees no ERROR, the server stays up and keeps what fitted.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_cluster "shared_preload_libraries = 'pgscope'" "pgscope.max_functions = 10" \
  "pgscope.max_statements = 30" "pgscope.max_callgraphs = 10" "pgscope.max_source_bytes = 1024"
q "CREATE EXTENSION pgscope"
pad=$(printf 'padding%.0s' $(seq 1 30))
for i in $(seq 1 25); do
  q "CREATE FUNCTION f$i() RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN PERFORM 1; RETURN $i; END -- $pad
\$\$"
done
q "CREATE FUNCTION callall() RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE s int := 0;
BEGIN
$(for i in $(seq 1 25); do echo "  s := s + f$i();"; done)
  RETURN s;
END \$\$"
q "SELECT pgscope_enable_global(true, '10 minutes')" >/dev/null
# writing transactions too: the merge runs in the commit callback
q "CREATE TABLE w (x int)"
for s in 1 2 3; do
  out=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "BEGIN; INSERT INTO w VALUES ($s); SELECT callall(); COMMIT;" 2>&1) ||
    fail "session $s got an error: $out"
  echo "$out" | grep -q 325 || fail "session $s: unexpected result: $out"
done
# in one transaction, then an abort
psql -X -qAt -c "BEGIN; SELECT callall(); SELECT 1/0; ROLLBACK;" >/dev/null 2>&1 || true
q "SELECT pgscope_enable_global(false)" >/dev/null
expect_eq "$(q "SELECT functions_overflow, statements_overflow, callgraph_overflow, source_overflow FROM pgscope_status()")" \
  "t|t|t|t" "all four overflow flags set"
expect_eq "$(q "SELECT pl_profiler_functions_overflow(), pl_profiler_lines_overflow(), pl_profiler_callgraph_overflow()")" \
  "t|t|t" "plprofiler overflow flags"
expect_eq "$(q "SELECT shared_functions <= 10 AND shared_statements <= 30 AND shared_callgraphs <= 10 FROM pgscope_status()")" t "tables within their sizes"
expect_eq "$(q "SELECT count(*) FROM pgscope_functions(true)")" 10 "what fitted is kept"
expect_eq "$(q "SELECT count(*) >= 0 FROM pgscope_lines(true)")" t "reading lines after overflow works"
expect_eq "$(q "SELECT count(*) >= 0 FROM pl_profiler_linestats_shared()")" t "plprofiler line stats after overflow"
expect_eq "$(q "SELECT count(*) FROM w")" 3 "the writing transactions committed"
for what in "function table" "statement table" "call graph table" "source pool"; do
  expect_eq "$(grep -c "pgscope: shared $what is full" "$PGDIR/server.log")" 1 "one LOG line for the $what"
done
grep -q "PANIC\|terminated by signal" "$PGDIR/server.log" && fail "server crashed"
expect_eq "$(q "SELECT 1")" 1 "server up"
