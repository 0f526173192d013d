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
bench_setup locks.sh 80 8

# autovacuum and checkpoints off the measured window: they swing TPC-B here by 30%
bench_cluster "autovacuum = off" "checkpoint_timeout = '30min'" "max_wal_size = '8GB'" "synchronous_commit = off"
BENCH_ARGS="-c 4 -j 2"

config_locks() {
  bench_attach tracing "$PGSCOPE" locks --pid "$PM"
  bench_tps "$1"
  bench_detach
}

bench_rounds "$ROUNDS" "$SECS" none locks again
echo "pgbench TPC-B -c 4 -j 2: $ROUNDS mirrored rounds (A B .. B A) of 2 x $SECS s per configuration"
BENCH_WIDTH=34
bench_base "no tracer"
bench_row "pgscope locks" 2
bench_row "no tracer, again (A/A: the noise)" 3
echo "target: <= 2% loss"
