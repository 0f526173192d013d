#!/usr/bin/env bash
# pgscope locks and lwlocks on a throwaway cluster with real contention:
# a row conflict (transaction wait, right holder), LOCK TABLE in conflicting
# modes, an advisory lock, a deadlock between two sessions and a SELECT FOR
# UPDATE that waits for a row lock.  Every wait is reported with the right
# tag, mode, waiter and holder; the deadlock with its cycle; the DOT file has
# the edges; --stats counts exactly the scripted waits.  Then LWLock waits
# under pgbench at 32 clients cover the tranches pg_stat_activity shows.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "the tracer tests need root"
start_cluster "deadlock_timeout = '200ms'" "max_connections = 60"
PM=$(pm_pid)
q "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0), (3, 0)"

# a session that holds something for a while; its pid goes to a file
hold() {
  local name=$1 sql=$2 secs=$3
  psql -X -qAt -v ON_ERROR_STOP=1 -c "SELECT pg_backend_pid()" -c "BEGIN" -c "$sql" \
    -c "SELECT pg_sleep($secs)" -c "COMMIT" >"$WORK/$name.out" 2>&1 &
  echo $! >"$WORK/holder.pid"
  for _ in $(seq 1 50); do [ -s "$WORK/$name.out" ] && break; sleep 0.05; done
  sleep 0.3
  head -1 "$WORK/$name.out"
}
# waits for the holder session alone: the tracers run in the background too
# (hold runs in a command substitution, so the holder is not our child)
wait_holder() { local p; p=$(cat "$WORK/holder.pid"); while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; }
waiter() {
  local name=$1; shift
  psql -X -qAt -c "SELECT pg_backend_pid()" "$@" >"$WORK/$name.out" 2>&1 || true
  head -1 "$WORK/$name.out"
}

pid_map_start "$PM"
start_tracer "$WORK/locks.json" locks --pid "$PM" --json --dot "$WORK/waits.dot"
start_tracer "$WORK/stats.txt" locks --pid "$PM" --stats
uprobes_past_endbr "$TRACER"

# conflict N SQL SECS PSQL-ARGS...: a session holds what SQL takes for SECS, another (psql PSQL-ARGS)
# waits for it; their pids in AN and BN
conflict() {
  local n=$1 sql=$2 secs=$3
  shift 3
  printf -v "A$n" '%s' "$(hold "a$n" "$sql" "$secs")"
  printf -v "B$n" '%s' "$(waiter "b$n" "$@")"
  wait_holder
}
# 1. two sessions update the same row: a wait on the holder's transaction
conflict 1 "UPDATE t SET v = 1 WHERE id = 1" 1 -c "UPDATE t SET v = 2 WHERE id = 1"
# 2. LOCK TABLE in conflicting modes
conflict 2 "LOCK TABLE t IN SHARE MODE" 0.6 -c "BEGIN" -c "LOCK TABLE t IN ROW EXCLUSIVE MODE" -c "COMMIT"
# 3. an advisory lock
conflict 3 "SELECT pg_advisory_xact_lock(4242)" 0.6 -c "SELECT pg_advisory_lock(4242)"
# 4. SELECT FOR UPDATE waits for a row lock (the row lock lasts at least its transaction wait:
#    however late the waiter starts under load)
conflict 4 "SELECT * FROM t WHERE id = 3 FOR SHARE" 0.6 -c "BEGIN" -c "SELECT * FROM t WHERE id = 3 FOR UPDATE" -c "COMMIT"
# 5. a deadlock
psql -X -qAt -c "SELECT pg_backend_pid()" -c "BEGIN" -c "UPDATE t SET v = 3 WHERE id = 1" -c "SELECT pg_sleep(0.4)" \
  -c "UPDATE t SET v = 3 WHERE id = 2" -c "COMMIT" >"$WORK/d1.out" 2>&1 &
d1=$!
psql -X -qAt -c "SELECT pg_backend_pid()" -c "BEGIN" -c "UPDATE t SET v = 4 WHERE id = 2" -c "SELECT pg_sleep(0.4)" \
  -c "UPDATE t SET v = 4 WHERE id = 1" -c "COMMIT" >"$WORK/d2.out" 2>&1 &
d2=$!
wait "$d1" "$d2" || true
D1=$(head -1 "$WORK/d1.out"); D2=$(head -1 "$WORK/d2.out")
# the tracer names backends by the host's pids (a container's server by its own)
for v in A1 B1 A2 B2 A3 B3 A4 B4 D1 D2; do printf -v "$v" '%s' "$(host_pid "${!v}")"; done
echo "backends (host pids): A1=$A1 B1=$B1 A2=$A2 B2=$B2 A3=$A3 B3=$B3 A4=$A4 B4=$B4 D1=$D1 D2=$D2"
grep -q "deadlock detected" "$WORK/d1.out" "$WORK/d2.out" || fail "the scripted deadlock did not happen"
sleep 0.3
stop_tracer "$WORK/locks.json"
stop_tracer "$WORK/stats.txt"

# every line parses; then the checks read it through the server's JSON functions
psql -X -qAt -v ON_ERROR_STOP=1 <<SQL >"$WORK/checks"
CREATE TEMP TABLE raw (line text);
\\copy raw FROM '$WORK/locks.json' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')
CREATE TEMP TABLE e AS SELECT line::jsonb AS j FROM raw;
SELECT 'waits_with_holder:' || string_agg(format('%s>%s %s %s %s', j->>'pid', h->>'pid', j->>'locktype', j->>'mode', j->>'lock'), ' | ' ORDER BY j->>'start')
  FROM e, jsonb_array_elements(j->'holders') h WHERE j->>'event' = 'wait' AND j->>'outcome' = 'granted';
SELECT 'deadlock:' || (SELECT string_agg(c->>'pid', ',' ORDER BY (c->>'pid')::int) FROM jsonb_array_elements(j->'cycle') c)
  FROM e WHERE j->>'event' = 'deadlock';
SELECT 'row_lock:' || string_agg(format('%s %s %s %s', j->>'pid', j->>'relation', j->>'mode', j->>'result'), ' | ')
  FROM e WHERE j->>'event' = 'row_lock' AND EXISTS (  -- the row lock spans a lock wait of its backend
    SELECT FROM e w WHERE w.j->>'event' = 'wait' AND w.j->>'pid' = e.j->>'pid'
      AND (e.j->>'duration_ms')::float8 >= (w.j->>'duration_ms')::float8);
SELECT 'holder_statements:' || bool_and(h->>'statement' <> '')
  FROM e, jsonb_array_elements(j->'holders') h WHERE j->>'event' = 'wait';
SQL
grep -q "waits_with_holder:.*$B1>$A1 transactionid ShareLock transaction" "$WORK/checks" || { cat "$WORK/checks"; fail "row conflict: $B1 waits for $A1's transaction"; }
echo "ok: the row conflict is a transaction wait of $B1 held by $A1"
grep -q "$B2>$A2 relation RowExclusiveLock relation public.t" "$WORK/checks" || { cat "$WORK/checks"; fail "LOCK TABLE wait"; }
echo "ok: LOCK TABLE: $B2 waits for RowExclusiveLock on public.t held by $A2"
grep -q "$B3>$A3 advisory ExclusiveLock advisory lock 4242" "$WORK/checks" || { cat "$WORK/checks"; fail "advisory wait"; }
echo "ok: the advisory lock wait of $B3 is held by $A3"
grep -q "$B4>$A4 transactionid ShareLock" "$WORK/checks" || { cat "$WORK/checks"; fail "FOR UPDATE wait"; }
grep -q "row_lock:$B4 public.t FOR UPDATE ok" "$WORK/checks" || { cat "$WORK/checks"; fail "row lock of SELECT FOR UPDATE"; }
echo "ok: SELECT FOR UPDATE waited in a row lock on public.t"
expect_eq "$(sed -n 's/^deadlock://p' "$WORK/checks")" "$(printf '%s\n' "$D1" "$D2" | sort -n | paste -sd,)" "the deadlock's cycle is $D1 and $D2"
expect_eq "$(sed -n 's/^holder_statements://p' "$WORK/checks")" true "holders come with their statements"

# the wait-for graph
for edge in "p$B1 -> p$A1" "p$B2 -> p$A2" "p$B3 -> p$A3" "p$D1 -> p$D2" "p$D2 -> p$D1"; do
  grep -q "$edge" "$WORK/waits.dot" || { cat "$WORK/waits.dot"; fail "DOT edge $edge"; }
done
grep -q "p$D1 -> p$D2 .*color=red" "$WORK/waits.dot" || fail "the deadlock edges are highlighted"
echo "ok: the DOT file has the waiter -> holder edges, deadlock in red"

# --stats: exactly the scripted waits
stat() { awk -v k="$1" -v m="$2" 'index($0, k) == 1 && $0 ~ m { print $(NF - 2); exit }' "$WORK/stats.txt"; }
expect_eq "$(stat "relation public.t" RowExclusiveLock)" 1 "--stats: one RowExclusiveLock wait on public.t"
expect_eq "$(stat "advisory lock 4242" ExclusiveLock)" 1 "--stats: one advisory lock wait"
expect_eq "$(stat "transactionid" ShareLock)" 4 "--stats: four transaction waits (row conflict, FOR UPDATE, deadlock x2)"
grep -q "^ *$B1 *$A1 *1 " "$WORK/stats.txt" || { cat "$WORK/stats.txt"; fail "--stats pairs"; }
echo "ok: --stats lists the waiter/holder pairs"

# --all: acquisitions without waits, fast path included
start_tracer "$WORK/all.txt" locks --pid "$PM" --all
psql -X -q -c "SELECT count(*) FROM t" -c "SELECT pg_advisory_lock(77), pg_advisory_unlock(77)" >/dev/null
stop_tracer "$WORK/all.txt"
grep -q "acquired AccessShareLock on relation public.t" "$WORK/all.txt" || { cat "$WORK/all.txt.err"; grep -v pg_catalog "$WORK/all.txt" | head -20; fail "--all shows acquisitions"; }
grep -q "acquired ExclusiveLock on advisory lock 77" "$WORK/all.txt" || fail "--all shows the advisory acquisition"
grep -q "released ExclusiveLock on advisory lock 77" "$WORK/all.txt" || fail "--all shows an explicit release"
grep -q "released all its transaction's locks" "$WORK/all.txt" || fail "--all shows the release at transaction end"
echo "ok: --all shows acquisitions and releases"

# LWLocks under load: the tranches pg_stat_activity shows waiting are traced
pgbench -i -s 1 -q postgres >/dev/null 2>&1
start_tracer "$WORK/lw.txt" lwlocks --pid "$PM"
# (at least 4 s, longer until a sample has caught a wait: on a quiet machine they are brief)
pgbench -n -c 32 -j 2 -T 30 postgres >/dev/null 2>&1 &
bench=$!
: >"$WORK/sampled"
started=$SECONDS
while kill -0 "$bench" 2>/dev/null; do
  psql -X -qAt -c "SELECT wait_event FROM pg_stat_activity WHERE wait_event_type = 'LWLock'" >>"$WORK/sampled" 2>/dev/null || true
  if [ $((SECONDS - started)) -ge 4 ] && grep -q . "$WORK/sampled"; then kill -INT "$bench" 2>/dev/null || true; fi
  sleep 0.05
done
wait "$bench" || true
stop_tracer "$WORK/lw.txt"
sort -u "$WORK/sampled" | sed '/^$/d' >"$WORK/tranches"
[ -s "$WORK/tranches" ] || fail "pg_stat_activity never showed an LWLock wait"
while read -r tranche; do
  grep -q "^$tranche " "$WORK/lw.txt" || { cat "$WORK/lw.txt"; fail "tranche $tranche waited in pg_stat_activity but was not traced"; }
  echo "ok: LWLock tranche $tranche (seen in pg_stat_activity) is traced"
done <"$WORK/tranches"

# bad input
set +e
"$PGSCOPE" locks --pid 1 --duration 1 >/dev/null 2>&1; s1=$?
"$PGSCOPE" lwlocks --bin /bin/true --duration 1 >/dev/null 2>&1; s2=$?
set -e
expect_eq "$s1" 2 "locks --pid of a non-PostgreSQL process exits 2"
expect_eq "$s2" 2 "lwlocks --bin of a non-PostgreSQL binary exits 2"
