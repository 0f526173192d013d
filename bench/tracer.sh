#!/usr/bin/env bash
# Tracer overhead, one run, one throwaway cluster: pgbench -S -c 2 -j 2 for
# DURATION seconds (default 20) without a tracer, with
# "pgscope queries --min-ms 1", and with the bpftrace one-liner that does the
# same job with uprobes on pgstat_report_activity; printed as TPS ratios.
# Target (issue 4): <= 3% TPS loss and 0 lost events.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
DURATION=${DURATION:-20}
[ "$(id -u)" = 0 ] || { echo "bench/tracer.sh needs root" >&2; exit 1; }

start_cluster
PM=$(head -1 "$PGDIR/data/postmaster.pid")
BIN=$(readlink "/proc/$PM/exe")
pgbench -i -s 10 -q postgres >/dev/null 2>&1

tps() { pgbench -n -S -c 2 -j 2 -T "$1" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }

# BackendState: STATE_RUNNING = 2 (utils/backend_status.h)
BT_PROG="uprobe:$BIN:pgstat_report_activity /arg0 == 2/ { @start[tid] = nsecs; @q[tid] = arg1; }
uprobe:$BIN:pgstat_report_activity /arg0 != 2 && @start[tid]/ {
  \$d = nsecs - @start[tid];
  if (\$d > 1000000) { printf(\"%d ms %s\\n\", \$d / 1000000, str(@q[tid])); }
  delete(@start[tid]); delete(@q[tid]); }"

# one round of one configuration: attach, measure, detach; prints TPS
round() {
  local what=$1 secs=$2 pid
  case $what in
    none) tps "$secs" ;;
    pgscope)
      "$PGSCOPE" queries --pid "$PM" --min-ms 1 >>"$WORK/q.out" 2>"$WORK/q.err" &
      pid=$!
      for _ in $(seq 1 100); do grep -q tracing "$WORK/q.err" && break; sleep 0.1; done
      tps "$secs"
      kill -INT "$pid"; wait "$pid" || true
      # rounds run in subshells: the tracer's own counts go through files
      sed -n 's/.* \([0-9]*\) events lost/\1/p' "$WORK/q.err" >>"$WORK/lost"
      sed -n 's/.*: \([0-9]*\) statements ended.*/\1/p' "$WORK/q.err" >>"$WORK/seen"
      ;;
    bpftrace)
      bpftrace -e "$BT_PROG" >"$WORK/bt.out" 2>&1 &
      pid=$!
      for _ in $(seq 1 100); do grep -q Attaching "$WORK/bt.out" && break; sleep 0.1; done
      sleep 0.5
      tps "$secs"
      kill -INT "$pid"; wait "$pid" || true
      ;;
  esac
}

# the machine's speed drifts: the configurations take turns, ROUNDS rounds
ROUNDS=${ROUNDS:-10}
secs=$(awk -v d="$DURATION" -v r="$ROUNDS" 'BEGIN { printf "%d", d / r }')
: >"$WORK/lost"; : >"$WORK/seen"; : >"$WORK/rounds"
for r in $(seq "$ROUNDS"); do
  n=$(round none "$secs"); p=$(round pgscope "$secs"); t=$(round bpftrace "$secs")
  echo "$n $p $t" >>"$WORK/rounds"
done
lost=$(awk '{ s += $1 } END { print s + 0 }' "$WORK/lost")
seen=$(awk '{ s += $1 } END { print s + 0 }' "$WORK/seen")
# each round's ratios against the no-tracer run right before them; the median of the rounds
awk -v r="$ROUNDS" -v s="$secs" -v lost="$lost" -v seen="$seen" '
  function median(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
                                     return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  { n[NR] = $1; p[NR] = $2 / $1; t[NR] = $3 / $1; sn += $1; sp += $2; st += $3 }
  END {
    mp = median(p, NR); mt = median(t, NR)
    printf "pgbench -S -c 2 -j 2: %d interleaved rounds of %d s per configuration (%d s each in all)\n", r, s, r * s
    printf "%-34s %10.0f TPS  %6.3fx\n", "no tracer", sn / NR, 1.0
    printf "%-34s %10.0f TPS  %6.3fx  (median round: %.1f%% loss; %d statements seen, %d events lost)\n", "pgscope queries --min-ms 1", sp / NR, mp, 100 * (1 - mp), seen, lost
    printf "%-34s %10.0f TPS  %6.3fx  (median round: %.1f%% loss)\n", "bpftrace uprobe one-liner", st / NR, mt, 100 * (1 - mt)
    printf "target: <= 3%% loss and 0 lost events\n" }' "$WORK/rounds"
