#!/usr/bin/env bash
# Builds or refreshes, idempotently, one Debian chroot root per PostgreSQL major version that the host
# (Debian 12, PostgreSQL 15) does not have, under /var/cache/pgscope/roots/<major> (PGSCOPE_ROOTS):
# 17 from trixie, 18 from forky (debootstrap's sid script; sid when forky has no postgresql-18). Each
# root holds postgresql-N (contrib is part of it), postgresql-server-dev-N (which brings clang, llvm and
# libpq-dev/libssl-dev), gcc, make, libc6-dev, libkrb5-dev (libpq/libpq-be.h includes gssapi.h) and
# postgresql-N-plpgsql-check where the suite has it; no cluster is created and no service started.
# A root is built with debootstrap into a temporary directory next to it and renamed into place only when
# complete, so an interrupted build never leaves a half root at the final path; /proc is unmounted on exit,
# failed or not. Inside each root, /.pgscope/ records the package list (stamp), the suite, whether
# plpgsql_check is there (plpgsql-check: yes|no) and the postgresql-N version. A root whose stamp matches
# is left alone without any network access (quiet); --refresh rebuilds. Other Debian suites are used only
# inside these roots, never in the host's apt sources. Runs as root; installs debootstrap if missing.
#
#   scripts/roots.sh [--refresh] [MAJOR...]   build what is missing (default: 17 18), one line per root built
#   scripts/roots.sh --path MAJOR             print the root's path (exit 1 when absent or built from an older
#                                             package list: run scripts/roots.sh MAJOR then)
set -euo pipefail

base=${PGSCOPE_ROOTS:-/var/cache/pgscope/roots}
mirror=${PGSCOPE_MIRROR:-http://deb.debian.org/debian}
security=${PGSCOPE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

suites_of() {   # candidate suites, in order of preference
  case $1 in
    17) echo trixie ;;
    18) echo forky sid ;;
    *) return 1 ;;
  esac
}
packages_of() { echo "postgresql-$1 postgresql-server-dev-$1 gcc make libc6-dev libkrb5-dev"; }
optional_of() { echo "postgresql-$1-plpgsql-check"; }
stamp_of() {
  printf 'format 2\nsuites %s\npackages %s\noptional %s\nmirror %s\n' \
    "$(suites_of "$1")" "$(packages_of "$1")" "$(optional_of "$1")" "$mirror"
}
complete() { [ -f "$base/$1/.pgscope/stamp" ] && [ "$(cat "$base/$1/.pgscope/stamp")" = "$(stamp_of "$1")" ]; }

if [ "${1:-}" = "--path" ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --path MAJOR" >&2; exit 2; }
  complete "$2" || exit 1
  echo "$base/$2"
  exit 0
fi

refresh=0
if [ "${1:-}" = "--refresh" ]; then refresh=1; shift; fi
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(17 18)
for m in "${majors[@]}"; do
  suites_of "$m" >/dev/null || { echo "roots: no Debian suite known for PostgreSQL $m (known: 17 18)" >&2; exit 2; }
done

todo=()
for m in "${majors[@]}"; do
  if [ $refresh = 1 ] || ! complete "$m"; then todo+=("$m"); fi
done
[ ${#todo[@]} -gt 0 ] || exit 0
[ "$(id -u)" = 0 ] || { echo "roots: building roots needs root" >&2; exit 1; }

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mkdir -p "$base"
exec 9>"$base/.lock"
flock -n 9 || { echo "roots: waiting for another roots.sh to finish" >&2; flock 9; }

# Unmounts everything mounted below $1 (deepest first) and removes $1, never crossing into a mount.
discard() {
  local m
  [ -e "$1" ] || return 0
  awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  rm -rf --one-file-system "$1"
}
exec 4>&2
cur="" log=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$cur" ]; then
    [ $rc = 0 ] || { echo "failed (log: $log)"; tail -n 25 "$log"; } >&4
    discard "$cur"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

for d in "$base"/.build-* "$base"/.old-*; do   # left by a run that was killed outright
  if [ -e "$d" ]; then discard "$d"; fi
done

in_root() {
  chroot "$cur" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
    DEBIAN_FRONTEND=noninteractive "$@"
}
apt_root() { in_root apt-get -q -y -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false "$@"; }
sources_for() {
  echo "deb $mirror $1 main"
  if [ "$1" = trixie ]; then
    echo "deb $mirror $1-updates main"
    echo "deb $security $1-security main"
  fi
}

# Bootstraps $cur for major $m from the suites in $suites; sets $suite and $plpgsql_check.
build() {
  debootstrap --variant=minbase --components=main "$suite" "$cur" "$mirror" "$script"
  printf '#!/bin/sh\nexit 101\n' >"$cur/usr/sbin/policy-rc.d"
  chmod 755 "$cur/usr/sbin/policy-rc.d"
  cp -L --remove-destination /etc/resolv.conf "$cur/etc/resolv.conf"
  # The archive this machine reaches may be a frozen snapshot whose testing/unstable Release files are
  # past their Valid-Until; their signatures are still checked.
  echo 'Acquire::Check-Valid-Until "false";' >"$cur/etc/apt/apt.conf.d/99pgscope-valid-until"
  mount -t proc proc "$cur/proc"
  sources_for "$suite" >"$cur/etc/apt/sources.list"
  apt_root update
  if ! in_root apt-cache show "postgresql-$m" >/dev/null 2>&1; then
    for s in "${suites[@]:1}"; do
      suite=$s
      sources_for "$suite" >"$cur/etc/apt/sources.list"
      apt_root update
      apt_root full-upgrade
      in_root apt-cache show "postgresql-$m" >/dev/null 2>&1 && break
    done
  fi
  in_root apt-cache show "postgresql-$m" >/dev/null 2>&1 ||
    { echo "roots: no postgresql-$m in ${suites[*]}"; exit 1; }
  pkgs=$(packages_of "$m")
  plpgsql_check=no
  if in_root apt-cache show "$(optional_of "$m")" >/dev/null 2>&1; then
    pkgs="$pkgs $(optional_of "$m")"
    plpgsql_check=yes
  fi
  apt_root install postgresql-common   # first, so that no main cluster gets created
  sed -i -E 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
    "$cur/etc/postgresql-common/createcluster.conf"
  grep -qx 'create_main_cluster = false' "$cur/etc/postgresql-common/createcluster.conf"
  # shellcheck disable=SC2086
  apt_root install $pkgs
  in_root id postgres
  in_root "/usr/lib/postgresql/$m/bin/pg_config" --version
  apt_root clean
  rm -rf "$cur"/var/lib/apt/lists/*
  mkdir -p "$cur/.pgscope"
  echo "$suite" >"$cur/.pgscope/suite"
  echo "$plpgsql_check" >"$cur/.pgscope/plpgsql-check"
  # shellcheck disable=SC2016
  in_root dpkg-query -W -f='${Version}\n' "postgresql-$m" >"$cur/.pgscope/version"
  umount "$cur/proc"
  stamp_of "$m" >"$cur/.pgscope/stamp"
}

for m in "${todo[@]}"; do
  start=$SECONDS
  read -r -a suites <<<"$(suites_of "$m")"
  suite=${suites[0]}
  script=/usr/share/debootstrap/scripts/$suite
  [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
  log=$base/.log-$m
  cur=$(mktemp -d "$base/.build-$m.XXXXXX")
  chmod 755 "$cur"
  printf 'roots: %s: building from %s... ' "$m" "$suite"
  build </dev/null >"$log" 2>&1   # under set -e a failure ends the script here; cleanup shows the log
  discard_old=""
  if [ -e "$base/$m" ]; then
    discard_old=$base/.old-$m.$$
    mv -T "$base/$m" "$discard_old"
  fi
  mv -T "$cur" "$base/$m"
  cur=""
  [ -z "$discard_old" ] || discard "$discard_old"
  echo "done in $((SECONDS - start))s: $base/$m ($suite, postgresql-$m $(cat "$base/$m/.pgscope/version"), plpgsql_check: $plpgsql_check)"
done
