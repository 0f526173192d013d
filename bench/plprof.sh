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
# plprofiler where the server has it (Debian's postgresql-15-plprofiler here; the roots of other majors do not)
plp=$(q "SELECT count(*) FROM pg_available_extensions WHERE name = 'plprofiler'")
if [ "$plp" = 1 ]; then
  psql -X -q -d b_plprofiler -c "CREATE EXTENSION plprofiler" -c "$workload"
fi

# One sample: a fresh session of db $1 runs the setup SQL $3, one warm-up
# call of $2 and 5 timed calls; the fastest of the 5 is the sample (least
# disturbed by the rest of the machine).
sample() {
  {
    echo "$3"
    echo "SELECT $2();"
    echo '\timing on'
    for _ in 1 2 3 4 5; do echo "SELECT $2();"; done
  } | psql -X -q -d "$1" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -1
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

configs=(base off on base2 plp)
[ "$plp" = 1 ] || configs=(base off on)
declare -A db=([base]=b_pgscope [off]=b_pgscope [on]=b_pgscope [base2]=b_plprofiler [plp]=b_plprofiler)
declare -A setup=([base]="SELECT 1;" [off]="LOAD 'pgscope';" [on]="LOAD 'pgscope'; SET pgscope.enabled = on;"
                  [base2]="SELECT 1;" [plp]="LOAD 'plprofiler'; SELECT pl_profiler_set_enabled_local(true);")

echo "PostgreSQL $(pg_major)"
printf '%-10s %11s %20s %20s %20s\n' workload "not loaded" "pgscope loaded, off" "pgscope on" "plprofiler 4.2 on"
for fn in stmt_loop call_loop; do
  rounds=()
  # rounds interleave the configurations so drift hits all of them alike;
  # each ratio is taken within its round, the median over rounds is printed
  for _ in $(seq "$RUNS"); do
    line=""
    for c in "${configs[@]}"; do line+="$(sample "${db[$c]}" "$fn" "${setup[$c]}") "; done
    rounds+=("$line")
  done
  printf '%s\n' "${rounds[@]}" | awk -v fn="$fn" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
      return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
    }
    { n++; b[n] = $1; off[n] = $2; on[n] = $3
      roff[n] = $2 / $1; ron[n] = $3 / $1; if (NF >= 5) { np++; p[n] = $5; rp[n] = $5 / $4 } }
    END {
      printf "%-10s %8.1f ms %9.1f ms %6.3fx %9.1f ms %6.2fx", fn,
        median(b, n), median(off, n), median(roff, n), median(on, n), median(ron, n)
      if (np > 0) printf " %9.1f ms %6.2fx\n", median(p, n), median(rp, n); else printf " %20s\n", "(not installed)" }'
done
echo "(times: medians; ratios: median over $RUNS interleaved rounds of the ratio within the round, each sample the fastest of 5 calls; targets: stmt_loop <= 1.6x, call_loop <= 1.5x, loaded-off <= 1.02x)"
