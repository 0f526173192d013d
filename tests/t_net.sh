#!/usr/bin/env bash
# pgscope net: a COPY of a known payload through psql is reported with at
# least that many bytes received by its backend; a backend that sleeps in a
# statement serves for that long, one whose client dawdles waits for it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "the tracer tests need root"
start_cluster
PM=$(pm_pid)
q "CREATE TABLE c (id int, pad text)"
for i in $(seq 1 20000); do printf '%d\t%s\n' "$i" "payload-payload-payload-payload-payload-payload-$i"; done >"$WORK/copy.tsv"
payload=$(stat -c %s "$WORK/copy.tsv")

"$PGSCOPE" net --pid "$PM" --json >"$WORK/net.json" 2>"$WORK/net.err" &
net=$!
wait_said "$WORK/net.err" tracing "$net"
# (each session stays a moment so that pgscope can look it up while it is connected)
PGAPPNAME=copier psql -X -q -v ON_ERROR_STOP=1 -c "\\copy c FROM '$WORK/copy.tsv'" -c "SELECT pg_sleep(0.5)" >/dev/null
PGAPPNAME=sleeper psql -X -q -v ON_ERROR_STOP=1 -c "SELECT pg_sleep(0.3)" -c "SELECT pg_sleep(0.3)" -c "SELECT pg_sleep(0.5)" >/dev/null
PGAPPNAME=dawdler psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT 1;
\! sleep 0.5
SELECT 2;
SQL
sleep 0.5
kill -TERM "$net"
wait "$net"
field() { grep "\"application\":\"$1\"" "$WORK/net.json" | sed "s/.*\"$2\":\\([0-9.]*\\).*/\\1/"; }
in=$(field copier bytes_in)
[ -n "$in" ] && [ "$in" -ge "$payload" ] || { cat "$WORK/net.json"; fail "COPY: $in bytes received, payload $payload"; }
echo "ok: the COPY's backend received $in bytes for a $payload-byte payload"
s=$(field sleeper serving_ms)
holds 's >= 600' s="$s" || { cat "$WORK/net.json"; fail "pg_sleep(0.3) twice and pg_sleep(0.5) are serving time (serving_ms $s)"; }
echo "ok: the sleeping backend served for $(field sleeper serving_ms) ms"
holds 'w >= 500' w="$(field dawdler client_wait_ms)" || fail "the dawdling client is client wait"
echo "ok: the backend of a dawdling client waited $(field dawdler client_wait_ms) ms for it"
grep -q '"client":"127.0.0.1:[0-9]*"' "$WORK/net.json" || fail "client addresses"
echo "ok: client addresses reported"
