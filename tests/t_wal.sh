#!/usr/bin/env bash
# pgscope wal and the WAL part of queries --breakdown: an INSERT of N rows is
# reported with the WAL records and bytes pg_stat_wal counts (within 1% for
# the whole window, exactly for the statement), by resource manager and
# record type and per backend; a CHECKPOINT is reported with its buffers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "the tracer tests need root"
start_cluster "autovacuum = off"
PM=$(pm_pid)
q "CREATE TABLE w (id int, pad text)"

"$PGSCOPE" wal --pid "$PM" --json >"$WORK/wal.json" 2>"$WORK/wal.err" &
walpid=$!
"$PGSCOPE" queries --pid "$PM" --breakdown --json >"$WORK/q.json" 2>"$WORK/q.err" &
qpid=$!
for _ in $(seq 1 100); do
  grep -q tracing "$WORK/wal.err" && grep -q tracing "$WORK/q.err" && break
  sleep 0.1
done
psql -X -qAt -v ON_ERROR_STOP=1 >"$WORK/stat" <<'SQL'
SELECT pg_stat_force_next_flush();
SELECT 'before:' || wal_records || ':' || wal_bytes FROM pg_stat_wal;
INSERT INTO w SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g;
CHECKPOINT;
SELECT pg_stat_force_next_flush();
SELECT 1;
SELECT 'after:' || wal_records || ':' || wal_bytes FROM pg_stat_wal;
SQL
sleep 0.3
kill -TERM "$walpid" "$qpid"
wait "$walpid" "$qpid"

IFS=: read -r _ r0 b0 < <(grep '^before:' "$WORK/stat")
IFS=: read -r _ r1 b1 < <(grep '^after:' "$WORK/stat")
tot=$(grep '"event":"totals"' "$WORK/wal.json")
records=$(echo "$tot" | sed 's/.*"records":\([0-9]*\).*/\1/')
bytes=$(echo "$tot" | sed 's/.*"bytes":\([0-9]*\).*/\1/')
within() { holds 'b > 0 && (a - b < 0 ? b - a : a - b) <= 0.01 * b' a="$1" b="$2"; }
within "$records" "$((r1 - r0))" || fail "WAL records: traced $records, pg_stat_wal $((r1 - r0))"
echo "ok: WAL records: traced $records, pg_stat_wal delta $((r1 - r0))"
within "$bytes" "$((b1 - b0))" || fail "WAL bytes: traced $bytes, pg_stat_wal $((b1 - b0))"
echo "ok: WAL bytes: traced $bytes, pg_stat_wal delta $((b1 - b0))"
grep -q '"rmgr":"Heap","type":"INSERT","records":' "$WORK/wal.json" || fail "records by resource manager and type"
echo "ok: records by resource manager and type"
grep -q '"event":"backend"' "$WORK/wal.json" || fail "WAL per backend"
grep -q '"event":"checkpoint_done".*"buffers_written":[1-9]' "$WORK/wal.json" || { cat "$WORK/wal.json"; fail "checkpoint with buffers written"; }
echo "ok: the checkpoint is reported with the buffers it wrote"
ins=$(grep '"query":"INSERT INTO w' "$WORK/q.json")
stmt_records=$(echo "$ins" | sed 's/.*"wal_records":\([0-9]*\).*/\1/')
stmt_bytes=$(echo "$ins" | sed 's/.*"wal_bytes":\([0-9]*\).*/\1/')
[ "$stmt_records" -ge 20000 ] || fail "the INSERT's WAL records per statement: $stmt_records"
within "$stmt_bytes" "$((b1 - b0))" || fail "the INSERT's WAL bytes per statement: $stmt_bytes of $((b1 - b0))"
echo "ok: WAL per statement: the INSERT wrote $stmt_records records, $stmt_bytes bytes"

# -d: only the WAL of one database's backends
q "CREATE DATABASE other"
psql -X -q -d other -c "CREATE TABLE o (x int)"
"$PGSCOPE" wal --pid "$PM" -d other --json >"$WORK/walo.json" 2>"$WORK/walo.err" &
walpid=$!
wait_said "$WORK/walo.err" tracing "$walpid"
psql -X -q -c "INSERT INTO w SELECT g, 'x' FROM generate_series(1, 1000) g"
psql -X -q -d other -c "INSERT INTO o SELECT g FROM generate_series(1, 100) g"
kill -TERM "$walpid"
wait "$walpid"
# (the first row of a new page is logged as INSERT+INIT_PAGE)
inserts=$(sed -n 's/.*"rmgr":"Heap","type":"INSERT[A-Z_+]*","records":\([0-9]*\).*/\1/p' "$WORK/walo.json" | awk '{ s += $1 } END { print s + 0 }')
expect_eq "$inserts" 100 "-d other: only the 100 inserts of database other"
