#!/usr/bin/env bash
# pgscope profile (issue 15): pgbench -S with "profile --hz 99" (and with
# --off-cpu) against no tracer, in mirrored rounds with an A/A row (target:
# at most 3% loss); the extension's PL/pgSQL statement loop with its frame
# stack readable (a 'frames' lease held, as profile holds it) against not
# (target: 1.02x at most), and a call-heavy function likewise (the stack is
# rebuilt at each call); and, since TPS on this VM is noisy, the
# kernel's run-time statistics of the sampler (BPF time per sample and per
# switch) and the instructions a call of each takes, frames kept and not
# (valgrind's callgrind: an exact count).
# The server preloads pgscope in every configuration, the baseline included.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
bench_setup profile.sh 40 8

bench_cluster "shared_preload_libraries = 'pgscope'" "max_parallel_workers_per_gather = 0"
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

BENCH_WIDTH=56
echo "$ROUNDS mirrored rounds (A B C D D C B A) of 2 x $SECS s per configuration"
BENCH_ARGS="-S -c 2 -j 2"
bench_rounds "$ROUNDS" "$SECS" none profile offcpu again
bench_base "pgbench -S, no profiler"
bench_row "pgbench -S, profile --hz 99 (target: <= 3% loss)" 2
bench_row "pgbench -S, profile --hz 99 --off-cpu" 3
bench_row "pgbench -S, no profiler again (A/A: the noise)" 4
BENCH_ARGS="-f $WORK/loop.sql -c 1 -j 1"
bench_rounds "$ROUNDS" "$SECS" none frames again
bench_base "PL/pgSQL loop (20,000 iterations), frames not kept"
bench_row "PL/pgSQL loop, frames kept ('frames' lease: <= 1.02x)" 2
bench_row "PL/pgSQL loop, not kept again (A/A: the noise)" 3
BENCH_ARGS="-f $WORK/calls.sql -c 1 -j 1"
bench_rounds "$ROUNDS" "$SECS" none frames again
bench_base "PL/pgSQL calls (5,000 a transaction), frames not kept"
bench_row "PL/pgSQL calls, frames kept (rebuilt at each call)" 2
bench_row "PL/pgSQL calls, not kept again (A/A: the noise)" 3

# BPF CPU time per run of each program, from the kernel's run-time statistics
bpf_per_run() {
  local label=$1
  shift
  bpf_stats_begin
  bench_attach tracing "$PGSCOPE" profile --pid "$PM" -o "$WORK/p.folded" "$@"
  pgbench -n -S -T 5 -c 2 postgres >/dev/null 2>&1
  bpf_stats_end "$label (5 s)" 0
  kill -INT "$BG_PID"; wait "$BG_PID" || true
}
bpf_per_run "pgbench -S, profile --hz 99" --hz 99
bpf_per_run "pgbench -S, profile --hz 99 --off-cpu" --hz 99 --off-cpu

# The instructions a call takes with the frames kept and not: counted by valgrind's callgrind
# (an exact count, the same run after run, where time on this VM swings by 5-9%) in a single-user
# backend of the same data directory, the server stopped first.  Instructions from PortalRun in,
# in a session of 2K calls less one of K (the session's start and first calls cancel out).
instr_session() {   # CALL K frames|none -> instructions inside PortalRun
  local out=$CG/$RANDOM.out
  { [ "$3" = frames ] && echo "SELECT pgscope_instrument(424242, 'frames', '1 hour');"
    for _ in $(seq 1 "$2"); do echo "SELECT $1;"; done; } |
    runuser -u postgres -- valgrind -q --tool=callgrind --callgrind-out-file="$out" --toggle-collect=PortalRun \
      "$BIN" --single -D "$PGDIR/data" postgres >/dev/null 2>"$CG/err" ||
    { cat "$CG/err" >&2; return 1; }
  sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' "$out" | head -1
}
instr_per_call() {   # CALL K frames|none
  local one two
  one=$(instr_session "$1" "$2" "$3") && two=$(instr_session "$1" $(($2 * 2)) "$3") &&
    awk -v a="$one" -v b="$two" -v k="$2" 'BEGIN { printf "%.0f", (b - a) / k }'
}
if [ -n "${PGSCOPE_ROOT:-}" ]; then
  echo "instructions per call: not measured for a server in a root"
elif ! command -v valgrind >/dev/null; then
  echo "instructions per call: not measured (valgrind is not installed: scripts/deps.sh --bench)"
else
  BIN=$(readlink "/proc/$PM/exe")
  runuser -u postgres -- "$(dirname "$BIN")/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null
  CG=$(mktemp -d /tmp/pgscope-cg.XXXXXX)    # (the postgres user writes callgrind's files there)
  bench_on_exit() { rm -rf "$CG"; }
  chown postgres "$CG"
  for fn in "loop_fn(20000)" "calls_fn(5000)"; do
    a=$(instr_per_call "$fn" 3 none); b=$(instr_per_call "$fn" 3 frames); c=$(instr_per_call "$fn" 3 none)
    printf '%-*s %12s instructions a call; frames kept %12s (%.4fx); not kept again %12s (%.4fx: A/A)\n' \
      "$BENCH_WIDTH" "SELECT $fn" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')" "$c" \
      "$(awk -v a="$a" -v c="$c" 'BEGIN { print c / a }')"
  done
fi
