#!/usr/bin/env bash
# pg_regress suites of the extension: the main one against a cluster with
# pgscope in shared_preload_libraries, the session one against a cluster
# without it.  Expected output holds counts, lines and source, never times.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# in a root (PGSCOPE_ROOT) the root's own pg_regress runs there, on the copy scripts/root-ext.sh built
run_suite() {
  local diffs=$ROOT/extension/regression.diffs ok=1
  if [ -n "${PGSCOPE_ROOT:-}" ]; then
    local m
    m=$(ls "$PGSCOPE_ROOT/usr/lib/postgresql")
    diffs=$PGSCOPE_ROOT/tmp/pgscope-ext/regression.diffs
    chroot "$PGSCOPE_ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
      PGHOST=127.0.0.1 PGPORT="$PGPORT" PGUSER=postgres \
      make -s -C /tmp/pgscope-ext PG_CONFIG="/usr/lib/postgresql/$m/bin/pg_config" installcheck SERVER=running REGRESS="$*" \
      >"$PGDIR/regress.out" 2>&1 || ok=0
  else
    make -s -C "$ROOT/extension" installcheck SERVER=running REGRESS="$*" >"$PGDIR/regress.out" 2>&1 || ok=0
  fi
  if [ $ok = 0 ]; then
    cat "$PGDIR/regress.out"
    head -300 "$diffs" 2>/dev/null
    fail "pg_regress: $*"
  fi
  grep -E "^(ok|not ok|test|     )" "$PGDIR/regress.out" || true
}

start_cluster "shared_preload_libraries = 'pgscope'" "pgscope.max_stack_depth = 20"
run_suite basic timing callgraph versions kinds errors activation shared privileges badinput compat
stop_clusters

start_cluster
run_suite session
