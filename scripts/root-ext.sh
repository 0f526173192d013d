#!/usr/bin/env bash
# Builds the pgscope extension inside a root of scripts/roots.sh with that
# root's own PGXS (its compiler, its server headers) and installs it there,
# so that the root's server can load it.  The source is copied to
# ROOT/tmp/pgscope-ext, which tests/t_regress.sh also runs pg_regress from.
#   scripts/root-ext.sh MAJOR
set -euo pipefail
m=${1:?usage: scripts/root-ext.sh MAJOR}
here=$(cd "$(dirname "$0")/.." && pwd)
root=$("$here/scripts/roots.sh" --path "$m") || { echo "root-ext: no root for PostgreSQL $m (run scripts/roots.sh $m)" >&2; exit 1; }
src=$root/tmp/pgscope-ext
rm -rf "$src"
mkdir -p "$src"
(cd "$here/extension" && tar cf - --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=results \
   --exclude=regression.diffs --exclude=regression.out .) | tar xf - -C "$src"
if ! chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
     make -s -C /tmp/pgscope-ext PG_CONFIG="/usr/lib/postgresql/$m/bin/pg_config" install >"$src/build.log" 2>&1; then
  cat "$src/build.log" >&2
  echo "root-ext: cannot build the extension for PostgreSQL $m in $root" >&2
  exit 1
fi
