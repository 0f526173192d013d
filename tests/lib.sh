# Shared helpers for the shell tests: throwaway clusters (always stopped on
# exit, also after a failure), psql shortcuts and assertions.  Source it.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGSCOPE=${PGSCOPE:-$ROOT/build/pgscope}
[ -x "$PGSCOPE" ] || { echo "tests: $PGSCOPE is not built (run make)" >&2; exit 1; }
CLUSTERS=()

start_cluster() {
  local dir port
  dir=$(mktemp -d /tmp/pgscope-test.XXXXXX)
  CLUSTERS+=("$dir")
  port=$("$PGSCOPE" cluster start "$dir" "$@") || return 1
  PGDIR=$dir
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

stop_clusters() {
  local d
  for d in "${CLUSTERS[@]}"; do "$PGSCOPE" cluster stop "$d"; done
  CLUSTERS=()
}
# scratch space for a test's files, removed at exit like the clusters
WORK=$(mktemp -d /tmp/pgscope-work.XXXXXX)
cleanup() { stop_clusters; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

q() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

fail() { echo "FAIL: $*" >&2; exit 1; }

expect_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
  echo "ok: $3"
}
