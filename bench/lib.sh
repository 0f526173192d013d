# Shared by the tracer benchmarks: interleaved rounds of pgbench with and
# without a tracer attached, ratios per round against the no-tracer run
# right before, the median over rounds.  Source after tests/lib.sh, with a
# started cluster, PM (postmaster pid) and BENCH_ARGS (pgbench options).

# TPS of one pgbench run of $1 seconds
bench_tps() { pgbench -n $BENCH_ARGS -T "$1" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }

# runs "$@" in the background until it prints $ATTACHED_RE on stderr; pid in BG_PID
bench_attach() {
  local re=$1; shift
  "$@" >"$WORK/bg.out" 2>"$WORK/bg.err" &
  BG_PID=$!
  for _ in $(seq 1 100); do grep -q "$re" "$WORK/bg.err" "$WORK/bg.out" 2>/dev/null && return 0; sleep 0.1; done
  cat "$WORK/bg.err" >&2
  return 1
}
# SIGTERM: background jobs of a script without job control ignore SIGINT
bench_detach() { kill -TERM "$BG_PID"; wait "$BG_PID" || true; }

# bench_rounds ROUNDS SECS NAME... : calls "config_NAME SECS" per round (it prints TPS),
# appends one line per round to $WORK/rounds
bench_rounds() {
  local rounds=$1 secs=$2; shift 2
  : >"$WORK/rounds"
  for _ in $(seq "$rounds"); do
    local line=""
    for name in "$@"; do line="$line $("config_$name" "$secs")"; done
    echo "$line" >>"$WORK/rounds"
  done
}

# the median over rounds of column $1 divided by column 1
bench_median_ratio() {
  awk -v col="$1" '{ r[NR] = $col / $1 } END {
    for (i = 2; i <= NR; i++) { x = r[i]; for (j = i - 1; j >= 1 && r[j] > x; j--) r[j + 1] = r[j]; r[j + 1] = x }
    print (NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2) }' "$WORK/rounds"
}
bench_mean() { awk -v col="$1" '{ s += $col } END { printf "%.0f", s / NR }' "$WORK/rounds"; }
