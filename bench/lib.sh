# Shared by the tracer benchmarks: interleaved, mirrored rounds of pgbench
# with and without a tracer attached, ratios per round against the no-tracer
# runs of the same round, the median over rounds.  Source after tests/lib.sh, with a
# started cluster, PM (postmaster pid) and BENCH_ARGS (pgbench options).

# TPS of one pgbench run of $1 seconds, after a second of quiet: the server's
# background processes (WAL writer, background writer, exiting backends) catch
# up on the previous run first, or back-to-back runs pay for their elders
bench_tps() { sleep 1; pgbench -n $BENCH_ARGS -T "$1" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }

# runs "$@" in the background until it prints $ATTACHED_RE on stderr; pid in BG_PID
bench_attach() {
  local re=$1; shift
  "$@" >"$WORK/bg.out" 2>"$WORK/bg.err" &
  BG_PID=$!
  for _ in $(seq 1 100); do grep -q "$re" "$WORK/bg.err" "$WORK/bg.out" 2>/dev/null && { sleep 0.5; return 0; }; sleep 0.1; done
  cat "$WORK/bg.err" >&2
  return 1
}
# SIGTERM: background jobs of a script without job control ignore SIGINT.
# Both wait a moment outside the measured window: the kernel finishes
# attaching and tearing down (RCU, freeing per-task storage) in the background.
bench_detach() { kill -TERM "$BG_PID"; wait "$BG_PID" || true; sleep 1; }

# bench_rounds ROUNDS SECS NAME... : each round calls "config_NAME SECS" (it
# prints TPS) for the names in order and then in reverse (A B C C B A), so a
# drift of the machine during the round weighs on every configuration alike;
# appends one line per round to $WORK/rounds with each name's mean of its two
# runs
bench_rounds() {
  local rounds=$1 secs=$2; shift 2
  local names=("$@") i
  : >"$WORK/rounds"
  for _ in $(seq "$rounds"); do
    local -A tps=()
    for name in "${names[@]}"; do tps[$name]=$("config_$name" "$secs"); done
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do
      tps[${names[$i]}]="${tps[${names[$i]}]} $("config_${names[$i]}" "$secs")"
    done
    local line=""
    for name in "${names[@]}"; do line="$line $(echo "${tps[$name]}" | awk '{ printf "%.1f", ($1 + $2) / 2 }')"; done
    [ -n "${BENCH_DEBUG:-}" ] && echo "round: ${tps[*]}" >&2
    echo "$line" >>"$WORK/rounds"
    unset tps
  done
}

# the median over rounds of column $1 divided by column 1
bench_median_ratio() {
  awk -v col="$1" '{ r[NR] = $col / $1 } END {
    for (i = 2; i <= NR; i++) { x = r[i]; for (j = i - 1; j >= 1 && r[j] > x; j--) r[j + 1] = r[j]; r[j + 1] = x }
    print (NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2) }' "$WORK/rounds"
}
bench_mean() { awk -v col="$1" '{ s += $col } END { printf "%.0f", s / NR }' "$WORK/rounds"; }
