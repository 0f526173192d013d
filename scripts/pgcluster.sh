#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for tests, the demo and benchmarks: initdb in a
# directory of the caller's, loopback only, a free port, its socket inside the
# directory, trust authentication for the OS-independent user "postgres".
# The server refuses to run as root, so as root everything runs as the
# postgres OS user.  The system's own clusters are never touched.
#
#   pgcluster.sh start DIR [postgresql.conf line ...]   prints the port
#   pgcluster.sh restart DIR
#   pgcluster.sh stop DIR                               stops and removes DIR
set -euo pipefail

PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
[ -x "$PGBIN/initdb" ] || PGBIN=/usr/lib/postgresql/15/bin

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd=${1:?usage: pgcluster.sh start|restart|stop DIR}
dir=${2:?usage: pgcluster.sh start|restart|stop DIR}
shift 2

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { echo "pgcluster: cannot initdb $dir/data: see $dir/initdb.log" >&2; exit 1; }
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "fsync = off"
    echo "max_connections = 40"
    for line in "$@"; do echo "$line"; done
  } >>"$dir/data/postgresql.conf"
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 30000 ))
    port_free "$port" || continue
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      echo "$port"
      exit 0
    fi
  done
  echo "pgcluster: cannot start a server in $dir: see $dir/server.log" >&2
  exit 1
  ;;
restart)
  port=$(cat "$dir/port")
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w -t 60 restart >/dev/null
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pgcluster.sh start|restart|stop DIR" >&2
  exit 2
  ;;
esac
