#!/usr/bin/env bash
# Runs the unit tests (build/unit), then every tests/t_*.sh on PostgreSQL 15 (this system's) and the suites
# that concern the server on the stock 17 and 18 of scripts/roots.sh, each
# server in its own pid and mount namespaces (PGSCOPE_ROOT), and closes with
# the plain "N passed, N failed" line and the time each part took.
#   PG_MAJORS="15 17 18" (default), TESTS="regress overflow" (only those)
set -uo pipefail
cd "$(dirname "$0")"
logs=../build/test-logs
mkdir -p "$logs"
passed=0 failed=0 failures=()
# on the other majors: the extension, the command line against their servers, every tracer
matrix="regress overflow concurrency chaining cli demo tracer locks wal io net clients agent plans profile"
times=()
# the pure functions first (tests/unit/unit.c): each check a line, counted with the suites
if [ -z "${TESTS:-}" ] || [[ " $TESTS " == *" unit "* ]]; then
  ../build/unit >"$logs/unit.log" 2>&1
  ok=$(grep -c '^ok ' "$logs/unit.log"); bad=$(grep -c '^FAIL ' "$logs/unit.log")
  passed=$((passed + ok)); failed=$((failed + bad))
  if [ "$bad" -gt 0 ] || ! tail -1 "$logs/unit.log" | grep -q ' 0 failed$'; then
    [ "$bad" -gt 0 ] || { failed=$((failed + 1)); bad=1; }
    failures+=("unit"); echo "FAIL unit: $bad of $((ok + bad)) checks"; grep -v '^ok ' "$logs/unit.log" | sed 's/^/    /'
  else
    echo "PASS unit: $ok checks"
  fi
fi
for major in ${PG_MAJORS:-15 17 18}; do
  root=""
  if [ "$major" != 15 ]; then
    if ! root=$(../scripts/roots.sh --path "$major"); then
      failed=$((failed + 1)); failures+=("PostgreSQL $major")
      echo "FAIL PostgreSQL $major: no root (scripts/roots.sh $major builds it)"
      continue
    fi
  fi
  part_start=$(date +%s)
  for t in t_*.sh; do
    name=${t#t_}; name=${name%.sh}
    if [ -n "${TESTS:-}" ] && [[ " $TESTS " != *" $name "* ]]; then continue; fi
    if [ -n "$root" ] && [[ " $matrix " != *" $name "* ]]; then continue; fi
    label=$t; log=$logs/$t.log
    if [ -n "$root" ]; then label="$t [$major]"; log=$logs/${t%.sh}-$major.log; fi
    start=$(date +%s)
    if PGSCOPE_ROOT=$root bash "$t" >"$log" 2>&1; then
      passed=$((passed + 1)); echo "PASS $label ($(( $(date +%s) - start ))s)"
    else
      failed=$((failed + 1)); failures+=("$label"); echo "FAIL $label ($(( $(date +%s) - start ))s)"
      sed 's/^/    /' "$log" | tail -60
    fi
  done
  times+=("PostgreSQL $major: $(( $(date +%s) - part_start ))s")
done
[ ${#times[@]} -eq 0 ] || echo "time: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g')"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
