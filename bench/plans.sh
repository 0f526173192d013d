#!/usr/bin/env bash
# pgscope plans (issue 14): pgbench -S with "plans --min-ms 10" (no statement
# is that slow: the plan walk must not run, the cost is two uprobes per
# statement) and with "--analyze=rows" (every statement instrumented) against
# no tracer, in mirrored rounds with an A/A row; then an aggregate over 100,000
# rows, where instrumentation costs most (a count per row per node), without
# and with --analyze=rows and =timing.  TPS on this VM is noisy, so the
# kernel's own run-time statistics give the BPF time per statement too.
# The server preloads the pgscope extension in every configuration (the
# baseline included): on a kernel that refuses bpf_probe_write_user, --analyze
# goes through its lease.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-40}
ROUNDS=${ROUNDS:-8}
[ "$(id -u)" = 0 ] || { echo "bench/plans.sh needs root" >&2; exit 1; }
trap 'cleanup; sysctl -qw kernel.bpf_stats_enabled=0' EXIT

start_cluster "shared_preload_libraries = 'pgscope'" "max_parallel_workers_per_gather = 0"
PM=$(pm_pid)
pgbench -i -s 10 -q postgres >/dev/null 2>&1
q "CREATE EXTENSION pgscope"
printf 'SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid <= 100000;\n' >"$WORK/agg.sql"

config_none() { bench_tps "$1"; }
config_again() { bench_tps "$1"; }
with_tracer() {
  local secs=$1; shift
  bench_attach tracing "$PGSCOPE" plans --pid "$PM" "$@"
  bench_tps "$secs"
  bench_detach
  grep -q ", 0 lost$" "$WORK/bg.err" || echo "lost: $(tail -1 "$WORK/bg.err")" >&2
  tail -1 "$WORK/bg.err" >>"$WORK/summaries"
}
config_plans() { with_tracer "$1" --min-ms 10; }
config_rows() { with_tracer "$1" --min-ms 10 --analyze=rows; }
config_timing() { with_tracer "$1" --min-ms 10 --analyze=timing; }

secs=$(( DURATION / (2 * ROUNDS) > 0 ? DURATION / (2 * ROUNDS) : 1 ))
row() {
  local label=$1 col=$2 r
  r=$(bench_median_ratio "$col")
  printf '%-52s %10s TPS  %6.3fx  (median round: %.1f%% loss)\n' "$label" "$(bench_mean "$col")" "$r" \
    "$(awk -v r="$r" 'BEGIN { print 100 * (1 - r) }')"
}
: >"$WORK/summaries"
echo "$ROUNDS mirrored rounds (A B C D D C B A) of 2 x $secs s per configuration"
BENCH_ARGS="-S -c 2 -j 2"
bench_rounds "$ROUNDS" "$secs" none plans rows again
printf '%-52s %10s TPS  %6.3fx\n' "pgbench -S, no tracer" "$(bench_mean 1)" 1
row "pgbench -S, plans --min-ms 10" 2
row "pgbench -S, plans --min-ms 10 --analyze=rows" 3
row "pgbench -S, no tracer again (A/A: the noise)" 4
echo "plans printed under pgbench -S: $(awk '{ s += $3 } END { print s + 0 }' "$WORK/summaries") (none of its statements is over 10 ms)"
BENCH_ARGS="-f $WORK/agg.sql -c 2 -j 2"
bench_rounds "$ROUNDS" "$secs" none rows timing again
printf '%-52s %10s TPS  %6.3fx\n' "aggregate of 100,000 rows, no tracer" "$(bench_mean 1)" 1
row "aggregate, plans --analyze=rows" 2
row "aggregate, plans --analyze=timing" 3
row "aggregate, no tracer again (A/A: the noise)" 4

# BPF CPU time per statement, from the kernel's run-time statistics of the tracer's programs
bpf_per_statement() {
  local label=$1 statements=$2 first
  first=$(bpftool prog show | sed -n 's/^\([0-9]*\):.*/\1/p' | sort -n | tail -1)
  shift 2
  sysctl -qw kernel.bpf_stats_enabled=1
  bench_attach tracing "$PGSCOPE" plans --pid "$PM" "$@"
  pgbench -n -S -t $((statements / 2)) -c 2 postgres >/dev/null 2>&1
  bpftool prog show | awk -v first="${first:-0}" -v n="$statements" -v label="$label" '
    /^[0-9]+:/ { id = $1 + 0; if (id <= first) next
                 for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") t += $(i + 1); if ($i == "run_cnt") c += $(i + 1) } }
    END { printf "%-52s %8.0f ns of BPF per statement (%d program runs, %.1f per statement)\n", label, t / n, c, c / n }'
  bench_detach
  sysctl -qw kernel.bpf_stats_enabled=0
}
bpf_per_statement "pgbench -S, plans --min-ms 10" 20000 --min-ms 10
bpf_per_statement "pgbench -S, plans --min-ms 0 (every plan walked)" 20000 --min-ms 0 --json
echo "issue 14 asks for these figures, with no bound: with nothing slow the cost is two uprobes per statement (the walk does not run); --analyze adds the executor's own instrumentation, as EXPLAIN ANALYZE pays it"
