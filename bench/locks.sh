#!/usr/bin/env bash
# Lock tracer overhead on one throwaway cluster: pgbench (TPC-B, -c 4 -j 2),
# DURATION seconds per configuration (default 80, in 8 mirrored rounds of two
# 5 s runs: TPC-B on a small VM swings too much for shorter ones),
# without a tracer, with "pgscope locks" (waits only), and once more without
# (the noise).
# Target (issue 5): <= 2% TPS loss.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-80}
ROUNDS=${ROUNDS:-8}
[ "$(id -u)" = 0 ] || { echo "bench/locks.sh needs root" >&2; exit 1; }

# autovacuum and checkpoints off the measured window: they swing TPC-B here by 30%
start_cluster "autovacuum = off" "checkpoint_timeout = '30min'" "max_wal_size = '8GB'" "synchronous_commit = off"
PM=$(pm_pid)
pgbench -i -s 10 -q postgres >/dev/null 2>&1
BENCH_ARGS="-c 4 -j 2"

config_none() { bench_tps "$1"; }
# the same as none: what the method reads as a "loss" when nothing changed
config_again() { bench_tps "$1"; }
config_locks() {
  bench_attach tracing "$PGSCOPE" locks --pid "$PM"
  bench_tps "$1"
  bench_detach
}

secs=$(( DURATION / (2 * ROUNDS) > 0 ? DURATION / (2 * ROUNDS) : 1 ))
bench_rounds "$ROUNDS" "$secs" none locks again
l=$(bench_median_ratio 2); a=$(bench_median_ratio 3)
echo "pgbench TPC-B -c 4 -j 2: $ROUNDS mirrored rounds (A B .. B A) of 2 x $secs s per configuration"
printf '%-34s %10s TPS  %6.3fx\n' "no tracer" "$(bench_mean 1)" 1
printf '%-34s %10s TPS  %6.3fx  (median round: %.1f%% loss)\n' "pgscope locks" "$(bench_mean 2)" "$l" \
  "$(awk -v r="$l" 'BEGIN { print 100 * (1 - r) }')"
printf '%-34s %10s TPS  %6.3fx  (median round: %.1f%%: the noise of this method on this machine)\n' \
  "no tracer, again" "$(bench_mean 3)" "$a" "$(awk -v r="$a" 'BEGIN { print 100 * (1 - r) }')"
echo "target: <= 2% loss"
