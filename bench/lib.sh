# Shared by the tracer benchmarks: interleaved, mirrored rounds of pgbench
# with and without a tracer attached, ratios per round against the no-tracer
# runs of the same round, the median over rounds; the kernel's run-time
# statistics of the tracer's BPF programs.  Source after tests/lib.sh; call
# bench_setup first, then bench_cluster (or start_cluster and set PM), and set
# BENCH_ARGS (pgbench options).

# bench_setup NAME DURATION ROUNDS: root required; DURATION and ROUNDS default
# to these (the environment's values win), SECS is then one run's length (each
# configuration runs twice a round); on exit bench_on_exit (a script's own
# clean-up, redefined after this), the cluster stopped, BPF statistics off
bench_on_exit() { :; }
bench_setup() {
  [ "$(id -u)" = 0 ] || { echo "bench/$1 needs root" >&2; exit 1; }
  DURATION=${DURATION:-$2}
  ROUNDS=${ROUNDS:-$3}
  SECS=$(( DURATION / (2 * ROUNDS) > 0 ? DURATION / (2 * ROUNDS) : 1 ))
  trap 'bench_on_exit; cleanup; sysctl -qw kernel.bpf_stats_enabled=0' EXIT
}
# bench_cluster SETTING...: a throwaway cluster with these settings, pgbench's
# tables at scale 10, PM its postmaster's pid
bench_cluster() {
  start_cluster "$@"
  PM=$(pm_pid)
  pgbench -i -s 10 -q postgres >/dev/null 2>&1
}

# the baseline, and the same again: what the method reads as a loss when nothing changed (A/A)
config_none() { bench_tps "$1"; }
config_again() { bench_tps "$1"; }

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

# bench_base LABEL: the baseline's line (column 1 of the rounds); bench_row LABEL
# COL [NOTE]: column COL's mean TPS, its median ratio to the baseline and the
# loss it means (BENCH_WIDTH: the labels' width)
bench_base() { printf '%-*s %10s TPS  %6.3fx\n' "${BENCH_WIDTH:-52}" "$1" "$(bench_mean 1)" 1; }
bench_row() {
  local r
  r=$(bench_median_ratio "$2")
  printf '%-*s %10s TPS  %6.3fx  (median round: %.1f%% loss%s)\n' "${BENCH_WIDTH:-52}" "$1" "$(bench_mean "$2")" "$r" \
    "$(awk -v r="$r" 'BEGIN { print 100 * (1 - r) }')" "${3:+; $3}"
}
# the sum of the numbers in file $1, one a line
bench_sum() { awk '{ s += $1 } END { print s + 0 }' "$1"; }

# bpf_stats_begin: the kernel's run-time statistics of BPF programs on; the
# programs loaded after this call are the ones bpf_stats_end counts
bpf_stats_begin() {
  BPF_FIRST=$(bpftool prog show | sed -n 's/^\([0-9]*\):.*/\1/p' | sort -n | tail -1)
  sysctl -qw kernel.bpf_stats_enabled=1
}
# bpf_stats_end LABEL N [UNIT]: their BPF time per one of N UNITs (default:
# statement) and their runs per UNIT (with BPF_UPROBE_RUNS=1, also each
# uprobe or USDT program's runs per UNIT: a trap each); with N = 0, the time
# per run of each program; statistics off again
bpf_stats_end() {
  bpftool prog show | awk -v first="${BPF_FIRST:-0}" -v label="$1" -v n="$2" -v unit="${3:-statement}" \
                          -v w="${BENCH_WIDTH:-52}" -v uprobes="${BPF_UPROBE_RUNS:-}" '
    /^[0-9]+:/ { if ($1 + 0 <= first) next
                 kind[$4] = $2
                 for (i = 1; i <= NF; i++) {
                   if ($i == "run_time_ns") { t += $(i + 1); tp[$4] += $(i + 1) }
                   if ($i == "run_cnt") { c += $(i + 1); cp[$4] += $(i + 1) } } }
    END { if (n > 0) {
            printf "%-*s %8.0f ns of BPF per %s (%d program runs, %.1f per %s)\n", w, label, t / n, unit, c, c / n, unit
            if (uprobes) for (p in cp) if (kind[p] == "kprobe")
              printf "%-*s %8.2f runs of uprobe program %s per %s\n", w, "", cp[p] / n, p, unit
          } else for (p in tp) printf "%-*s %8.0f ns of BPF per run of %s (%d runs)\n", w, label, tp[p] / (cp[p] ? cp[p] : 1), p, cp[p] }'
  sysctl -qw kernel.bpf_stats_enabled=0
}
