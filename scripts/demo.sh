#!/usr/bin/env bash
# make demo: profile a TPC-B-style PL/pgSQL workload on a throwaway cluster,
# add the missing index, profile again, and show what changed.  Until the
# pgscope command line lands (issue 3) the "reports" are the folded call
# stacks (flamegraph.pl input) and the per-line tables, written as text.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
OUT=${DEMO_OUT:-$PWD/demo-reports}
mkdir -p "$OUT"

echo "demo: starting a throwaway PostgreSQL 15 cluster"
start_cluster "shared_preload_libraries = 'pgscope'"
echo "demo: loading pgbench data (scale 5) and the TPC-B functions"
pgbench -i -s 5 -q postgres >"$PGDIR/init.log" 2>&1 || { cat "$PGDIR/init.log"; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -f "$ROOT/scripts/tpcb.sql" >/dev/null
cat >"$PGDIR/tpcb.pgbench" <<'SCRIPT'
\set aid random(1, 500000)
\set bid random(1, 5)
\set tid random(1, 50)
\set delta random(-5000, 5000)
SELECT tpcb(:aid, :bid, :tid, :delta);
SCRIPT

profile() {
  local name=$1
  q "SELECT pgscope_reset(true); SELECT pgscope_enable_global(true, '10 minutes')" >/dev/null
  pgbench -n -c 2 -j 2 -T 5 -f "$PGDIR/tpcb.pgbench" postgres >"$PGDIR/$name.pgbench" 2>&1 ||
    { cat "$PGDIR/$name.pgbench" >&2; exit 1; }
  q "SELECT pgscope_enable_global(false)" >/dev/null
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$PGDIR/$name.pgbench" | head -1)
  q "SELECT array_to_string(stack, ';') || ' ' || round(self_ns / 1000) FROM pgscope_callgraph(true) ORDER BY 1" >"$OUT/$name.folded"
  psql -X -q -c "SELECT signature, line_number AS line, exec_count, round(total_ns / 1e6, 3) AS total_ms,
                        round(self_ns / 1e6, 3) AS self_ms, source
                   FROM pgscope_lines(true) ORDER BY signature, line_number" >"$OUT/$name.lines.txt"
  top=$(q "SELECT signature || '|' || round(100.0 * self_ns / sum(self_ns) OVER (), 1)
             FROM pgscope_functions(true) ORDER BY self_ns DESC LIMIT 1")
  printf 'demo: %-7s %8s TPS; top function by self time: %s (%s%% of all)\n' "$name" "$tps" "${top%|*}" "${top#*|}"
}

profile before
echo "demo: adding the missing index: CREATE INDEX ON pgbench_accounts (aid)"
q "CREATE INDEX ON pgbench_accounts (aid)"
profile after
echo "demo: reports: $OUT/before.folded $OUT/before.lines.txt $OUT/after.folded $OUT/after.lines.txt"
