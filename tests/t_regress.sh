#!/usr/bin/env bash
# pg_regress suites of the extension: the main one against a cluster with
# pgscope in shared_preload_libraries, the session one against a cluster
# without it.  Expected output holds counts, lines and source, never times.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

run_suite() {
  if ! make -s -C "$ROOT/extension" installcheck REGRESS="$*" >"$PGDIR/regress.out" 2>&1; then
    cat "$PGDIR/regress.out"
    cat "$ROOT/extension/regression.diffs" 2>/dev/null | head -300
    fail "pg_regress: $*"
  fi
  grep -E "^(ok|not ok|test|     )" "$PGDIR/regress.out" || true
}

start_cluster "shared_preload_libraries = 'pgscope'" "pgscope.max_stack_depth = 20"
run_suite basic timing callgraph versions kinds errors activation shared privileges badinput compat
stop_clusters

start_cluster
run_suite session
