#!/usr/bin/env bash
# pgscope profile (issue 15): pgbench -S with "profile --hz 99" (and with
# --off-cpu) against no tracer, in mirrored rounds with an A/A row (target:
# at most 3% loss); the extension's PL/pgSQL statement loop with its frame
# stack readable (a 'frames' lease held, as profile holds it) against not
# (target: 1.02x at most), and a call-heavy function likewise (the stack is
# rebuilt at each call), also as the backend's CPU time per call (perf
# stat's task-clock: no client or scheduling in the figure); and, since TPS on this VM is noisy, the kernel's
# run-time statistics of the sampler: BPF time per sample and per switch.
# The server preloads pgscope in every configuration, the baseline included.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-40}
ROUNDS=${ROUNDS:-8}
[ "$(id -u)" = 0 ] || { echo "bench/profile.sh needs root" >&2; exit 1; }
trap 'cleanup; sysctl -qw kernel.bpf_stats_enabled=0' EXIT

start_cluster "shared_preload_libraries = 'pgscope'" "max_parallel_workers_per_gather = 0"
PM=$(pm_pid)
pgbench -i -s 10 -q postgres >/dev/null 2>&1
q "CREATE EXTENSION pgscope"
q "CREATE FUNCTION loop_fn(n int) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE x int := 0;
BEGIN
  FOR i IN 1..n LOOP
    x := x + 1;
    IF x % 7 = 0 THEN x := x + 1; END IF;
  END LOOP;
  RETURN x;
END \$\$"
q "CREATE FUNCTION inc(x int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN x + 1; END \$\$"
q "CREATE FUNCTION calls_fn(n int) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE x int := 0;
BEGIN
  FOR i IN 1..n LOOP
    x := inc(x);
  END LOOP;
  RETURN x;
END \$\$"
printf 'SELECT loop_fn(20000);\n' >"$WORK/loop.sql"
printf 'SELECT calls_fn(5000);\n' >"$WORK/calls.sql"

config_none() { bench_tps "$1"; }
config_again() { bench_tps "$1"; }
with_profile() {
  local secs=$1; shift
  bench_attach tracing "$PGSCOPE" profile --pid "$PM" -o "$WORK/p.folded" "$@"
  bench_tps "$secs"
  kill -INT "$BG_PID"; wait "$BG_PID" || true; sleep 1
  grep -q " 0 lost (map full)" "$WORK/bg.err" || echo "lost: $(tail -1 "$WORK/bg.err")" >&2
}
config_profile() { with_profile "$1" --hz 99; }
config_offcpu() { with_profile "$1" --hz 99 --off-cpu; }
# the frame stack readable: a 'frames' lease held for the round (ended after it)
config_frames() {
  q "SELECT pgscope_instrument(424242, 'frames', '1 hour')" >/dev/null
  bench_tps "$1"
  q "SELECT pgscope_instrument(424242, 'off')" >/dev/null
}

secs=$(( DURATION / (2 * ROUNDS) > 0 ? DURATION / (2 * ROUNDS) : 1 ))
row() {
  local label=$1 col=$2 r
  r=$(bench_median_ratio "$col")
  printf '%-56s %10s TPS  %6.3fx  (median round: %.1f%% loss)\n' "$label" "$(bench_mean "$col")" "$r" \
    "$(awk -v r="$r" 'BEGIN { print 100 * (1 - r) }')"
}
echo "$ROUNDS mirrored rounds (A B C D D C B A) of 2 x $secs s per configuration"
BENCH_ARGS="-S -c 2 -j 2"
bench_rounds "$ROUNDS" "$secs" none profile offcpu again
printf '%-56s %10s TPS  %6.3fx\n' "pgbench -S, no profiler" "$(bench_mean 1)" 1
row "pgbench -S, profile --hz 99 (target: <= 3% loss)" 2
row "pgbench -S, profile --hz 99 --off-cpu" 3
row "pgbench -S, no profiler again (A/A: the noise)" 4
BENCH_ARGS="-f $WORK/loop.sql -c 1 -j 1"
bench_rounds "$ROUNDS" "$secs" none frames again
printf '%-56s %10s TPS  %6.3fx\n' "PL/pgSQL loop (20,000 iterations), frames not kept" "$(bench_mean 1)" 1
row "PL/pgSQL loop, frames kept ('frames' lease: <= 1.02x)" 2
row "PL/pgSQL loop, not kept again (A/A: the noise)" 3
BENCH_ARGS="-f $WORK/calls.sql -c 1 -j 1"
bench_rounds "$ROUNDS" "$secs" none frames again
printf '%-56s %10s TPS  %6.3fx\n' "PL/pgSQL calls (5,000 a transaction), frames not kept" "$(bench_mean 1)" 1
row "PL/pgSQL calls, frames kept (rebuilt at each call)" 2
row "PL/pgSQL calls, not kept again (A/A: the noise)" 3

# the backend's CPU time a call takes (perf stat's task-clock on its pid while one session runs the
# calls; this VM has no hardware counter for instructions): no client, no pgbench in the figure
cpu_per_call() {   # SQL CALLS frames|none
  local sql=$1 calls=$2 mode=$3 pid perf_pid n
  [ "$mode" = frames ] && q "SELECT pgscope_instrument(424242, 'frames', '1 hour')" >/dev/null
  coproc PSQL { psql -X -qAt postgres 2>&1; }
  echo "SELECT pg_backend_pid();" >&"${PSQL[1]}"
  read -r pid <&"${PSQL[0]}"
  echo "SELECT 1;" >&"${PSQL[1]}"; read -r _ <&"${PSQL[0]}"    # (the lease noticed, plpgsql loaded)
  echo "$sql" >&"${PSQL[1]}"; read -r _ <&"${PSQL[0]}"
  perf stat -e task-clock -x, -p "$(host_pid "$pid")" -o "$WORK/perf.csv" &
  perf_pid=$!
  sleep 0.5
  for _ in $(seq 1 "$calls"); do echo "$sql" >&"${PSQL[1]}"; read -r _ <&"${PSQL[0]}"; done
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  echo '\q' >&"${PSQL[1]}"; wait "$PSQL_PID" 2>/dev/null || true
  [ "$mode" = frames ] && q "SELECT pgscope_instrument(424242, 'off')" >/dev/null
  n=$(awk -F, '$3 ~ /task-clock/ { print $1 }' "$WORK/perf.csv")    # milliseconds
  awk -v n="$n" -v c="$calls" 'BEGIN { printf "%.3f", n / c }'
}
if command -v perf >/dev/null; then
  for fn in "loop_fn(20000)" "calls_fn(5000)"; do
    a=$(cpu_per_call "SELECT $fn;" 1000 none)
    b=$(cpu_per_call "SELECT $fn;" 1000 frames)
    c=$(cpu_per_call "SELECT $fn;" 1000 none)
    printf '%-30s backend CPU a call: %s ms, frames kept %s ms (%.3fx), not kept again %s ms (%.3fx: A/A)\n' \
      "SELECT $fn" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')" "$c" \
      "$(awk -v a="$a" -v c="$c" 'BEGIN { print a / c }')"
  done
fi

# BPF CPU time per run of each program, from the kernel's run-time statistics
bpf_per_run() {
  local label=$1 first
  shift
  first=$(bpftool prog show | sed -n 's/^\([0-9]*\):.*/\1/p' | sort -n | tail -1)
  sysctl -qw kernel.bpf_stats_enabled=1
  bench_attach tracing "$PGSCOPE" profile --pid "$PM" -o "$WORK/p.folded" "$@"
  pgbench -n -S -T 5 -c 2 postgres >/dev/null 2>&1
  bpftool prog show | awk -v first="${first:-0}" -v label="$label" '
    /^[0-9]+:/ { id = $1 + 0; name = $4; if (id <= first) next
                 for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") t[name] += $(i + 1); if ($i == "run_cnt") c[name] += $(i + 1) } }
    END { for (n in t) printf "%-56s %8.0f ns of BPF per run of %s (%d runs in 5 s)\n", label, t[n] / (c[n] ? c[n] : 1), n, c[n] }'
  kill -INT "$BG_PID"; wait "$BG_PID" || true
  sysctl -qw kernel.bpf_stats_enabled=0
}
bpf_per_run "pgbench -S, profile --hz 99" --hz 99
bpf_per_run "pgbench -S, profile --hz 99 --off-cpu" --hz 99 --off-cpu
