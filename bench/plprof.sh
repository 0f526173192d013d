#!/usr/bin/env bash
# Profiler overhead, measured in one run on one throwaway cluster: the
# statement loop (1,000,000 x := x + 1) and the call loop (100,000 calls of a
# one-statement function), median of 5 runs each, for
#   not loaded | pgscope loaded, disabled | pgscope on | plprofiler 4.2 on
# printed as ratios against "not loaded".  Targets (issue 2): statement loop
# <= 1.6x, call loop <= 1.5x, loaded-but-disabled <= 1.02x.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
RUNS=${RUNS:-5}

start_cluster
q "CREATE DATABASE b_pgscope" >/dev/null
q "CREATE DATABASE b_plprofiler" >/dev/null
workload="
CREATE FUNCTION stmt_loop() RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE x int := 0;
BEGIN
  FOR i IN 1..1000000 LOOP
    x := x + 1;
  END LOOP;
  RETURN x;
END \$\$;
CREATE FUNCTION one(x int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN x + 1; END \$\$;
CREATE FUNCTION call_loop() RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE x int := 0;
BEGIN
  FOR i IN 1..100000 LOOP
    x := one(x);
  END LOOP;
  RETURN x;
END \$\$;"
psql -X -q -d b_pgscope -c "CREATE EXTENSION pgscope" -c "$workload"
psql -X -q -d b_plprofiler -c "CREATE EXTENSION plprofiler" -c "$workload"

# One sample: a fresh session of db $1 runs the setup SQL $3, one warm-up
# call of $2 and 3 timed calls; the fastest of the 3 is the sample (least
# disturbed by the rest of the machine).
sample() {
  {
    echo "$3"
    echo "SELECT $2();"
    echo '\timing on'
    echo "SELECT $2();"; echo "SELECT $2();"; echo "SELECT $2();"
  } | psql -X -q -d "$1" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -1
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

configs=(base off on base2 plp)
declare -A db=([base]=b_pgscope [off]=b_pgscope [on]=b_pgscope [base2]=b_plprofiler [plp]=b_plprofiler)
declare -A setup=([base]="SELECT 1;" [off]="LOAD 'pgscope';" [on]="LOAD 'pgscope'; SET pgscope.enabled = on;"
                  [base2]="SELECT 1;" [plp]="LOAD 'plprofiler'; SELECT pl_profiler_set_enabled_local(true);")

printf '%-10s %11s %20s %20s %20s\n' workload "not loaded" "pgscope loaded, off" "pgscope on" "plprofiler 4.2 on"
for fn in stmt_loop call_loop; do
  declare -A samples=()
  # rounds interleave the configurations so drift hits all of them alike
  for _ in $(seq "$RUNS"); do
    for c in "${configs[@]}"; do samples[$c]+="$(sample "${db[$c]}" "$fn" "${setup[$c]}") "; done
  done
  declare -A m=()
  for c in "${configs[@]}"; do m[$c]=$(echo "${samples[$c]}" | median); done
  awk -v fn="$fn" -v b="${m[base]}" -v off="${m[off]}" -v on="${m[on]}" -v b2="${m[base2]}" -v p="${m[plp]}" 'BEGIN {
    printf "%-10s %8.1f ms %9.1f ms %6.3fx %9.1f ms %6.2fx %9.1f ms %6.2fx\n",
      fn, b, off, off / b, on, on / b, p, p / b2 }'
  unset samples m
done
echo "(median of $RUNS interleaved rounds, each the fastest of 3 calls; targets: stmt_loop <= 1.6x, call_loop <= 1.5x, loaded-off <= 1.02x)"
