#!/usr/bin/env bash
# Runs every tests/t_*.sh (each starts and stops its own throwaway clusters)
# and closes with the plain "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")"
logs=../build/test-logs
mkdir -p "$logs"
passed=0 failed=0 failures=()
for t in t_*.sh; do
  name=${t#t_}; name=${name%.sh}
  # TESTS="regress overflow" runs only those
  if [ -n "${TESTS:-}" ] && [[ " $TESTS " != *" $name "* ]]; then continue; fi
  start=$(date +%s)
  if bash "$t" >"$logs/$t.log" 2>&1; then
    passed=$((passed + 1)); echo "PASS $t ($(( $(date +%s) - start ))s)"
  else
    failed=$((failed + 1)); failures+=("$t"); echo "FAIL $t ($(( $(date +%s) - start ))s)"
    sed 's/^/    /' "$logs/$t.log" | tail -60
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
