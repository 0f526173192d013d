#!/usr/bin/env bash
# Installs the Debian packages pgscope needs, quietly, and nothing when they
# are already there.  Run as root on Debian 12 (bookworm).
set -euo pipefail
pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev gcc make libkrb5-dev
      postgresql-15-plpgsql-check chromium chromium-driver
      clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev prometheus python3-psycopg python3-psycopg2
      libpostgresql-jdbc-java openjdk-17-jdk-headless)
[ "${1:-}" = "--bench" ] && pkgs+=(postgresql-15-plprofiler bpftrace valgrind)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# prometheus (the agent's tests scrape with it) would start its system service on every
# interface: no service starts during this install (Debian's policy-rc.d), ours run on loopback
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
trap '[ "$own_policy" = 0 ] || rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# and it stays off at boot too (the tests start their own, on loopback)
if printf '%s\n' "${missing[@]}" | grep -qx prometheus && command -v systemctl >/dev/null; then
  systemctl disable --quiet prometheus 2>/dev/null || true
fi
