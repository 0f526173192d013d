#!/usr/bin/env bash
# The statement tracer with what real clients send (issue 10): pgbench -S over
# TLS and a pipelined pgbench script (three statements per pipeline), each
# without and with "pgscope queries --min-ms 1", in mirrored rounds with an
# A/A row; then, because TPS on this VM is noisy, the kernel's own BPF
# run-time statistics: BPF CPU time per statement for plain, TLS and
# pipelined traffic.
# Targets: <= 5% TPS loss for TLS and pipelines, 0 events lost.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-40}
ROUNDS=${ROUNDS:-8}
[ "$(id -u)" = 0 ] || { echo "bench/clients.sh needs root" >&2; exit 1; }

CERT=$(mktemp -d /tmp/pgscope-cert.XXXXXX)
trap 'cleanup; rm -rf "$CERT"; sysctl -qw kernel.bpf_stats_enabled=0' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERT/server.key" -out "$CERT/server.crt" -days 2 \
  -subj "/CN=localhost" 2>/dev/null
chmod 755 "$CERT"; chmod 600 "$CERT/server.key"; chown postgres "$CERT/server.key" "$CERT/server.crt"
start_cluster "ssl = on" "ssl_cert_file = '$CERT/server.crt'" "ssl_key_file = '$CERT/server.key'"
PM=$(pm_pid)
pgbench -i -s 10 -q postgres >/dev/null 2>&1
printf '\\startpipeline\n\\set aid random(1, 1000000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid + 1;\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid + 2;\n\\endpipeline\n' \
  >"$WORK/pipe.sql"
: >"$WORK/lost"

config_none() { bench_tps "$1"; }
config_again() { bench_tps "$1"; }
config_pgscope() {
  bench_attach tracing "$PGSCOPE" queries --pid "$PM" --min-ms 1
  bench_tps "$1"
  bench_detach
  sed -n 's/.* \([0-9]*\) events lost.*/\1/p' "$WORK/bg.err" >>"$WORK/lost"
}

secs=$(( DURATION / (2 * ROUNDS) > 0 ? DURATION / (2 * ROUNDS) : 1 ))
report() {
  local label=$1 p a
  p=$(bench_median_ratio 2); a=$(bench_median_ratio 3)
  printf '%-44s %10s TPS  %6.3fx\n' "$label, no tracer" "$(bench_mean 1)" 1
  printf '%-44s %10s TPS  %6.3fx  (median round: %.1f%% loss)\n' "$label, pgscope queries --min-ms 1" \
    "$(bench_mean 2)" "$p" "$(awk -v r="$p" 'BEGIN { print 100 * (1 - r) }')"
  printf '%-44s %10s TPS  %6.3fx  (median round: %.1f%%: the noise of this method)\n' "$label, no tracer again" \
    "$(bench_mean 3)" "$a" "$(awk -v r="$a" 'BEGIN { print 100 * (1 - r) }')"
}

echo "$ROUNDS mirrored rounds (A B C C B A) of 2 x $secs s per configuration"
export PGSSLMODE=require
BENCH_ARGS="-S -c 2 -j 2"
bench_rounds "$ROUNDS" "$secs" none pgscope again
report "pgbench -S over TLS"
export PGSSLMODE=disable
BENCH_ARGS="-M extended -f $WORK/pipe.sql -c 2 -j 2"
bench_rounds "$ROUNDS" "$secs" none pgscope again
report "pipelined pgbench (3 per pipeline)"
echo "events lost: $(awk '{ s += $1 } END { print s + 0 }' "$WORK/lost")"

# BPF CPU time per statement, from the kernel's run-time statistics of the tracer's programs
bpf_per_statement() {
  local label=$1 statements=$2 first
  first=$(bpftool prog show | sed -n 's/^\([0-9]*\):.*/\1/p' | sort -n | tail -1)
  sysctl -qw kernel.bpf_stats_enabled=1
  bench_attach tracing "$PGSCOPE" queries --pid "$PM" --min-ms 1
  shift 2
  pgbench -n "$@" postgres >/dev/null 2>&1
  bpftool prog show | awk -v first="${first:-0}" -v n="$statements" -v label="$label" '
    /^[0-9]+:/ { id = $1 + 0; if (id <= first) next
                 for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") t += $(i + 1); if ($i == "run_cnt") c += $(i + 1) } }
    END { printf "%-44s %8.0f ns of BPF per statement (%d program runs, %.1f per statement)\n", label, t / n, c, c / n }'
  bench_detach
  sysctl -qw kernel.bpf_stats_enabled=0
}
PGSSLMODE=disable bpf_per_statement "plain pgbench -S" 20000 -S -t 10000 -c 2
PGSSLMODE=require bpf_per_statement "pgbench -S over TLS" 20000 -S -t 10000 -c 2
PGSSLMODE=disable bpf_per_statement "pipelined pgbench (3 per pipeline)" 30000 -M extended -f "$WORK/pipe.sql" -t 5000 -c 2
echo "targets: TLS and pipelines <= 5% TPS loss, 0 events lost (issue 10); plain <= 3% (bench/tracer.sh)"
