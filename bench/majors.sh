#!/usr/bin/env bash
# The profiler's loops and the statement tracer's TPS loss (plain, over TLS
# and pipelined) on the stock PostgreSQL 17 and 18 of scripts/roots.sh, each
# server in its own pid and mount namespaces (as in a container), each
# against its own baseline measured in the same run: bench/plprof.sh,
# bench/tracer.sh and bench/clients.sh with PGSCOPE_ROOT.
#   BENCH_MAJORS="17 18" (default)
set -euo pipefail
cd "$(dirname "$0")"
for major in ${BENCH_MAJORS:-17 18}; do
  root=$(../scripts/roots.sh --path "$major") || { echo "bench: no root for PostgreSQL $major (scripts/roots.sh $major)" >&2; exit 1; }
  echo
  PGSCOPE_ROOT=$root ./plprof.sh
  echo
  PGSCOPE_ROOT=$root ./tracer.sh
  echo
  PGSCOPE_ROOT=$root ./clients.sh
done
