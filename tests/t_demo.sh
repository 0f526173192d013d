#!/usr/bin/env bash
# pgscope demo: both reports written, the before/after comparison printed,
# tpcb_upd_accounts on top before the index, the index making it faster,
# and no cluster left behind.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

count_clusters() { local n=0 d; for d in "${PGSCOPE_ROOT:-}"/tmp/pgscope-cluster.*; do [ -e "$d" ] && n=$((n + 1)); done; echo "$n"; }
before_clusters=$(count_clusters)
# on another major (tests/run.sh sets PGSCOPE_ROOT), the way a user asks for it
major_opt=()
[ -z "${PGSCOPE_ROOT:-}" ] || major_opt=(--pg-major "$(basename "$PGSCOPE_ROOT")")
"$PGSCOPE" demo --out "$WORK/demo" "${major_opt[@]}" >"$WORK/demo.out" 2>"$WORK/demo.err" ||
  { cat "$WORK/demo.out" "$WORK/demo.err"; fail "demo failed"; }
cat "$WORK/demo.out"
grep -q "before the index: .* in public.tpcb_upd_accounts(integer,integer)" "$WORK/demo.out" || fail "tpcb_upd_accounts on top before the index"
echo "ok: tpcb_upd_accounts on top before the index"
speedup=$(sed -n 's/^the index made the workload \([0-9.]*\)x faster$/\1/p' "$WORK/demo.out")
holds 's > 3' s="$speedup" || fail "the index should make the workload faster (got ${speedup}x)"
echo "ok: the index made it ${speedup}x faster"
for f in before after; do
  grep -qx "  $WORK/demo/$f.html" "$WORK/demo.out" || fail "the $f report's path is printed"
  grep -q '</html>' "$WORK/demo/$f.html" || fail "$f.html is whole"
done
echo "ok: both reports written and named"
expect_eq "$(count_clusters)" "$before_clusters" "the demo cluster was removed"
