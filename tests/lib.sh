# Shared helpers for the shell tests: throwaway clusters (always stopped on
# exit, also after a failure), psql shortcuts and assertions.  Source it.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGSCOPE=${PGSCOPE:-$ROOT/build/pgscope}
[ -x "$PGSCOPE" ] || { echo "tests: $PGSCOPE is not built (run make)" >&2; exit 1; }
CLUSTERS=()

# PGSCOPE_ROOT=DIR (tests/run.sh sets it for each major of the matrix): the
# clusters are servers of that Debian root, run in their own pid and mount
# namespaces as a container runtime would; their files live inside the root.
start_cluster() {
  local dir port
  dir=$(mktemp -d "${PGSCOPE_ROOT:-}/tmp/pgscope-test.XXXXXX")
  CLUSTERS+=("$dir")
  port=$("$PGSCOPE" cluster start "$dir" "$@") || return 1
  PGDIR=$dir
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

# the postmaster's pid as the host sees it (in a container postmaster.pid has its namespace's)
pm_pid() { cat "$PGDIR/postmaster.hostpid"; }

# In a container the tests' sessions know their backends by the server's pids
# (pg_backend_pid), the tracers by the host's: pid_map_start records both for
# the cluster's backends while they live, host_pid translates (an identity on
# the host).
pid_map_start() {
  [ -n "${PGSCOPE_ROOT:-}" ] || return 0
  local pm=$1
  [ -z "${PIDMAP_POLLER:-}" ] || return 0
  # (bash builtins only: a process per backend per round would miss short sessions)
  ( set +e    # a backend gone between two reads must not end the poller
    declare -A known=()
    while :; do
      kids=()
      read -r -a kids <"/proc/$pm/task/$pm/children" 2>/dev/null || true   # (no newline at its end)
      for c in "${kids[@]}"; do
        [ -n "${known[$c]:-}" ] && continue
        while read -r key rest; do
          if [ "$key" = NSpid: ]; then known[$c]=1; echo "${rest##*[[:space:]]} $c" >>"$WORK/pidmap"; break; fi
        done 2>/dev/null <"/proc/$c/status"
      done
      sleep 0.01
    done ) &
  PIDMAP_POLLER=$!
}
host_pid() {
  if [ -z "${PGSCOPE_ROOT:-}" ]; then echo "$1"; return; fi
  # (a backend the server just started may not be in the map yet: the poller runs every 10 ms, later
  # on a loaded machine; empty only when 5 s did not bring it)
  local h=""
  for _ in $(seq 1 100); do
    [ -n "$1" ] && h=$(awk -v s="$1" '$1 == s { h = $2 } END { print h }' "$WORK/pidmap" 2>/dev/null)
    [ -n "$h" ] || [ -z "$1" ] && break
    sleep 0.05
  done
  echo "$h"
}

# a directory the server can read (inside its root), and that path as the server sees it
server_dir() { mktemp -d "${PGSCOPE_ROOT:-}/tmp/pgscope-$1.XXXXXX"; }
server_path() { echo "${1#"${PGSCOPE_ROOT:-}"}"; }
# chown to the server's OS user (the root's own postgres user)
chown_server() {
  if [ -n "${PGSCOPE_ROOT:-}" ]; then
    chown "$(awk -F: '$1 == "postgres" { print $3 ":" $4 }' "$PGSCOPE_ROOT/etc/passwd")" "$@"
  else
    chown postgres "$@"
  fi
}
# the server's major version
pg_major() { psql -X -qAt -c "SELECT current_setting('server_version_num')::int / 10000"; }

stop_clusters() {
  local d
  for d in "${CLUSTERS[@]}"; do "$PGSCOPE" cluster stop "$d"; done
  CLUSTERS=()
}
# scratch space for a test's files, removed at exit like the clusters
WORK=$(mktemp -d /tmp/pgscope-work.XXXXXX)
cleanup() { [ -z "${PIDMAP_POLLER:-}" ] || kill "$PIDMAP_POLLER" 2>/dev/null; stop_clusters; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

q() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# wait_said ERRFILE PATTERN PID: returns once the process PID has written a line matching PATTERN to
# ERRFILE; fails when it exits first or takes 60 s (attaching takes ~2 s; on a loaded machine more)
wait_said() {
  local err=$1 pattern=$2 pid=$3
  for _ in $(seq 1 600); do
    grep -q -- "$pattern" "$err" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { grep -q -- "$pattern" "$err" 2>/dev/null && return 0; cat "$err"; fail "it exited before saying '$pattern'"; }
    sleep 0.1
  done
  cat "$err"; fail "not '$pattern' after 60 s"
}

# starts a tracer ("$PGSCOPE" ARGS) in the background, its output in OUT and OUT.err, its pid in
# OUT.pid and TRACER; returns once it says it is tracing, fails when it exits or takes 60 s
start_tracer() {
  local out=$1; shift
  "$PGSCOPE" "$@" >"$out" 2>"$out.err" &
  TRACER=$!
  echo "$TRACER" >"$out.pid"
  wait_said "$out.err" tracing "$TRACER"
}

# uprobes_past_endbr PID: no uprobe the process PID holds (bpftool perf show) sits on an endbr64,
# which the kernel executes out of line with a single-step trap (16 times a hit on the push after it
# here: pgs_func_offset); fails when PID holds no uprobe at all
uprobes_past_endbr() {
  local n=0 file off bytes
  while read -r file off; do
    bytes=$(od -An -tx1 -j "$off" -N 4 "$file" | tr -d ' \n')
    [ "$bytes" != f30f1efa ] || fail "a uprobe on an endbr64: $file+$off"
    n=$((n + 1))
  done < <(bpftool perf show 2>/dev/null | awk -v pid="$1" '$2 == pid && ($7 == "uprobe" || $7 == "uretprobe") { print $9, $11 }')
  [ "$n" -gt 0 ] || fail "the tracer $1 holds no uprobe (bpftool perf show)"
  echo "ok: none of the tracer's $n uprobes sits on an endbr64"
}

# stop_tracer OUT [SUMMARY]: Ctrl-C to the tracer start_tracer OUT started; it exits 0, its summary
# (OUT.err) says no events were lost when it speaks of them, and matches the regex SUMMARY if given
stop_tracer() {
  local pid; pid=$(cat "$1.pid")
  kill -INT "$pid"
  set +e; wait "$pid"; local rc=$?; set -e
  [ "$rc" = 0 ] || { cat "$1.err"; fail "tracer exit status $rc after Ctrl-C"; }
  if grep -q "events lost" "$1.err"; then
    grep -q " 0 events lost" "$1.err" || { cat "$1.err"; fail "events lost"; }
  fi
  [ -z "${2:-}" ] || grep -Eq -- "$2" "$1.err" || { cat "$1.err"; fail "the summary does not say '$2'"; }
}

# wait_until TRIES SECS CMD...: runs CMD until it succeeds, at most TRIES times SECS apart (the
# caller checks the outcome: it says what failed)
wait_until() {
  local tries=$1 secs=$2 i
  shift 2
  for ((i = 1; i <= tries; i++)); do
    "$@" && return 0
    sleep "$secs"
  done
  return 0
}
# free_port: a loopback port nobody listens on, below the kernel's ephemeral range (the local
# ports of the connections the tests make, and of servers bound to port 0, come from that range);
# whoever listens on it must still cope with it being taken meanwhile
free_port() {
  local lo p _
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  [ "$lo" -gt 11024 ] || lo=61000   # (an unusual range: above it, then)
  for _ in $(seq 1 50); do
    if [ "$lo" = 61000 ]; then p=$((61000 + RANDOM % 4000)); else p=$((10000 + RANDOM % (lo - 10000))); fi
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  fail "no free port"
}

# sql_is SQL VALUE: the query's one value is VALUE
sql_is() { [ "$(q "$1")" = "$2" ]; }

fail() { echo "FAIL: $*" >&2; exit 1; }

# holds EXPR NAME=NUMBER...: awk's EXPR is true of the numbers named
holds() {
  local expr=$1 args=() v
  shift
  for v in "$@"; do args+=(-v "$v"); done
  awk "${args[@]}" "BEGIN { exit !($expr) }"
}
expect_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
  echo "ok: $3"
}
# run CMD...: its exit status in $status, its output in $WORK/out and $WORK/err;
# expect_status N WHAT: that status was N
run() {
  set +e
  "$@" >"$WORK/out" 2>"$WORK/err"
  status=$?
  set -e
}
expect_status() {
  [ "$status" = "$1" ] || { cat "$WORK/err" >&2; fail "$2: exit status $status, expected $1"; }
  echo "ok: $2"
}
