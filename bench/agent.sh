#!/usr/bin/env bash
# pgscope agent (issue 13): pgbench -S TPS with the agent attached (every metric:
# statements with the breakdown, locks, WAL, LWLocks, IO, traffic; spans at
# --sample-ratio 0.01 to a stand-in receiver, build/otlp_sink) against none, in
# mirrored rounds with an A/A row; the agent's own CPU and resident memory from
# its metrics; and the kernel's BPF run time per statement of its programs.
# Target: <= 5% TPS loss.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
bench_setup agent.sh 40 8
bench_cluster
APORT=$(free_port)
SPORT=$(free_port)
mkdir -p "$WORK/spans"
"$ROOT/build/otlp_sink" "$SPORT" "$WORK/spans" &
SINK=$!
bench_on_exit() { kill "$SINK" 2>/dev/null; }
AGENT_ARGS=(--pid "$PM" --prometheus "127.0.0.1:$APORT" --otlp "http://127.0.0.1:$SPORT" --sample-ratio 0.01)
metric() { curl -sf "http://127.0.0.1:$APORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

config_agent() {
  bench_attach "attached to" "$PGSCOPE" agent "${AGENT_ARGS[@]}"
  bench_tps "$1"
  metric pgscope_agent_cpu_seconds_total >>"$WORK/cpu"
  metric pgscope_agent_resident_memory_bytes >>"$WORK/rss"
  metric pgscope_events_lost_total >>"$WORK/lost"
  bench_detach
}
: >"$WORK/cpu"; : >"$WORK/rss"; : >"$WORK/lost"
echo "$ROUNDS mirrored rounds (A B C C B A) of 2 x $SECS s per configuration"
BENCH_ARGS="-S -c 2 -j 2"
bench_rounds "$ROUNDS" "$SECS" none agent again
bench_base "pgbench -S, no agent"
bench_row "pgbench -S, agent (all metrics, spans 1%)" 2
bench_row "pgbench -S, no agent again (A/A: the noise)" 3
echo "agent CPU per attached round (${SECS}s x 2 of pgbench and the attach): $(awk '{ s += $1; n++ } END { printf "%.2f s mean", s / n }' "$WORK/cpu")," \
  "resident memory: $(awk '{ if ($1 > m) m = $1 } END { printf "%.1f MB max", m / 1048576 }' "$WORK/rss")," \
  "events lost: $(bench_sum "$WORK/lost")"

# BPF CPU time per statement, from the kernel's run-time statistics of the agent's programs, and the
# agent's own CPU per statement (its user and system time over the same 20,000 statements, attach
# excluded): the whole agent, then the statements alone, and without the breakdown, to show each
# part's share
# (on-CPU nanoseconds of all its threads, from the scheduler's statistics)
cpu_ns() { cat /proc/"$BG_PID"/task/*/schedstat | awk '{ s += $1 } END { print s }'; }
for cfg in "" "--statements-only" "--statements-only --no-breakdown"; do
  bpf_stats_begin
  # shellcheck disable=SC2086
  bench_attach "attached to" "$PGSCOPE" agent "${AGENT_ARGS[@]}" $cfg
  c0=$(cpu_ns)
  pgbench -n -S -t 10000 -c 2 postgres >/dev/null 2>&1
  c1=$(cpu_ns)
  bpf_stats_end "pgbench -S, the agent${cfg:+ $cfg}" 20000
  printf '%-*s %8.0f ns of the agent'"'"'s CPU per statement\n' "${BENCH_WIDTH:-52}" "" \
    "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print (b - a) / 20000 }')"
  bench_detach
done
echo "target: <= 5% TPS loss with the agent (issue 13)"
