#!/usr/bin/env bash
# The statement tracer with what real clients send (issue 10): pgbench -S over
# TLS and a pipelined pgbench script (three statements per pipeline), each
# without and with "pgscope queries --min-ms 1", in mirrored rounds with an
# A/A row; then, because TPS on this VM is noisy, the kernel's own BPF
# run-time statistics: BPF CPU time per statement for plain, TLS and
# pipelined traffic; and what a process that is not traced pays per socket call.
# Targets: <= 5% TPS loss for TLS and pipelines, 0 events lost.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/lib.sh"
bench_setup clients.sh 40 8

# (the certificate where the server sees it: inside PGSCOPE_ROOT's root for bench/majors.sh)
CERT=$(server_dir cert)
bench_on_exit() { rm -rf "$CERT"; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERT/server.key" -out "$CERT/server.crt" -days 2 \
  -subj "/CN=localhost" 2>/dev/null
chmod 755 "$CERT"; chmod 600 "$CERT/server.key"; chown_server "$CERT/server.key" "$CERT/server.crt"
bench_cluster "ssl = on" "ssl_cert_file = '$(server_path "$CERT")/server.crt'" "ssl_key_file = '$(server_path "$CERT")/server.key'"
printf '\\startpipeline\n\\set aid random(1, 1000000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid + 1;\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid + 2;\n\\endpipeline\n' \
  >"$WORK/pipe.sql"
: >"$WORK/lost"

config_pgscope() {
  bench_attach tracing "$PGSCOPE" queries --pid "$PM" --min-ms 1
  bench_tps "$1"
  bench_detach
  sed -n 's/.* \([0-9]*\) events lost.*/\1/p' "$WORK/bg.err" >>"$WORK/lost"
}
BENCH_WIDTH=70
report() {
  bench_base "$1, no tracer"
  bench_row "$1, pgscope queries --min-ms 1" 2
  bench_row "$1, no tracer again (A/A: the noise)" 3
}

echo "$ROUNDS mirrored rounds (A B C C B A) of 2 x $SECS s per configuration"
export PGSSLMODE=require
BENCH_ARGS="-S -c 2 -j 2"
bench_rounds "$ROUNDS" "$SECS" none pgscope again
report "pgbench -S over TLS"
export PGSSLMODE=disable
BENCH_ARGS="-M extended -f $WORK/pipe.sql -c 2 -j 2"
bench_rounds "$ROUNDS" "$SECS" none pgscope again
report "pipelined pgbench (3 per pipeline)"
echo "events lost: $(bench_sum "$WORK/lost")"

# BPF CPU time per statement, from the kernel's run-time statistics of the tracer's programs
# (and how often each uprobe program ran per statement: every run of one is a trap, what TLS pays over
# the BPF time: some 1 us each here, perf's asm_exc_int3 less the programs in it)
bpf_per_statement() {
  local label=$1 statements=$2
  shift 2
  bpf_stats_begin
  bench_attach tracing "$PGSCOPE" queries --pid "$PM" --min-ms 1
  pgbench -n "$@" postgres >/dev/null 2>&1
  BPF_UPROBE_RUNS=1 bpf_stats_end "$label" "$statements"
  bench_detach
}
PGSSLMODE=disable bpf_per_statement "plain pgbench -S" 20000 -S -t 10000 -c 2
PGSSLMODE=require bpf_per_statement "pgbench -S over TLS" 20000 -S -t 10000 -c 2
PGSSLMODE=disable bpf_per_statement "pipelined pgbench (3 per pipeline)" 30000 -M extended -f "$WORK/pipe.sql" -t 5000 -c 2
# every process of the host passes the socket tracepoints, traced or not: ns per recv() of a process
# that is not a backend (build/sockcalls), without a tracer, with queries, with the agent, and again
sockcalls() { "$ROOT/build/sockcalls" 300000 5; }
base=$(sockcalls)
bench_attach tracing "$PGSCOPE" queries --pid "$PM" --min-ms 1
with_q=$(sockcalls)
bench_detach
bench_attach "attached to" "$PGSCOPE" agent --pid "$PM" --prometheus "127.0.0.1:$(free_port)"
with_a=$(sockcalls)
bench_detach
again=$(sockcalls)
awk -v b="$base" -v q="$with_q" -v a="$with_a" -v r="$again" -v w="$BENCH_WIDTH" 'BEGIN {
  printf "%-*s %6.0f ns a call\n", w, "an untraced process'"'"'s recv(), no tracer", b
  printf "%-*s %6.0f ns a call (+%.0f)\n", w, "the same, pgscope queries attached", q, q - b
  printf "%-*s %6.0f ns a call (+%.0f)\n", w, "the same, pgscope agent attached", a, a - b
  printf "%-*s %6.0f ns a call (%+.0f: the noise)\n", w, "the same, no tracer again", r, r - b }'
echo "targets: TLS and pipelines <= 5% TPS loss, 0 events lost (issue 10); plain <= 3% (bench/tracer.sh)"
