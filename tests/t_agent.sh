#!/usr/bin/env bash
# Issue 13: pgscope agent, scraped by Debian's Prometheus (on loopback, started
# here) while pgbench runs a known workload: statement counts through PromQL
# against pg_stat_statements' calls, the latency histogram's median and the
# Timeout wait class against pg_sleep statements, promtool's lint, the query
# series summing to the statement counts, a server restart followed, bad
# input, and nothing left attached after SIGTERM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v prometheus >/dev/null || fail "Debian's prometheus is not installed (scripts/deps.sh)"
agent="" prom=""
stop_all() {
  [ -z "$agent" ] || kill -TERM "$agent" 2>/dev/null || true
  [ -z "$prom" ] || kill -TERM "$prom" 2>/dev/null || true
  wait 2>/dev/null || true
  cleanup
}
trap stop_all EXIT

start_cluster "shared_preload_libraries = 'pg_stat_statements'" "pg_stat_statements.track = 'top'"
W=$WORK
PM=$(pm_pid)
q "CREATE EXTENSION pg_stat_statements"
q "CREATE DATABASE agentdb"
q "CREATE ROLE sleeper LOGIN"
q "GRANT ALL ON DATABASE agentdb TO sleeper"
pgbench -i -q -s 1 agentdb >/dev/null 2>&1

APORT=$(free_port)
PPORT=$(free_port)

# ---- bad input: one line, exit 2 for usage, 1 for a port in use
set +e
"$PGSCOPE" agent --prometheus nonsense >/dev/null 2>"$W/bad.err"; rc=$?
set -e
expect_eq "$rc" 2 "a bad --prometheus address is a usage error"
expect_eq "$(wc -l <"$W/bad.err")" 1 "one line for it"

"$PGSCOPE" agent --pid "$PM" --prometheus "127.0.0.1:$APORT" >"$W/agent.out" 2>"$W/agent.err" &
agent=$!
wait_said "$W/agent.err" "attached to" "$agent"
grep -q "attached to the cluster in .* (postmaster $PM," "$W/agent.err" || fail "the agent did not attach: $(cat "$W/agent.err")"
echo "ok: the agent attached ($(grep -c 'attached to' "$W/agent.err") line)"
set +e
"$PGSCOPE" agent --pid "$PM" --prometheus "127.0.0.1:$APORT" >/dev/null 2>"$W/inuse.err"; rc=$?
set -e
expect_eq "$rc" 1 "a port in use is a runtime failure"
grep -q "cannot listen on 127.0.0.1:$APORT: Address already in use" "$W/inuse.err" || fail "$(cat "$W/inuse.err")"

# ---- Prometheus scrapes the agent every second
cat >"$W/prom.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: pgscope
    static_configs: [{targets: ['127.0.0.1:$APORT']}]
EOF
# (another port if this one was taken meanwhile: other test suites may run on this machine)
for _ in 1 2 3; do
  prometheus --config.file="$W/prom.yml" --storage.tsdb.path="$W/tsdb" --web.listen-address="127.0.0.1:$PPORT" \
    >"$W/prom.log" 2>&1 &
  prom=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null && break 2
    kill -0 "$prom" 2>/dev/null || break
    sleep 0.2
  done
  grep -q "address already in use" "$W/prom.log" || break
  wait "$prom" 2>/dev/null || true
  PPORT=$(free_port)
done
curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null || fail "prometheus did not start: $(tail -5 "$W/prom.log")"
# an instant PromQL query's single value ("" when there is none)
promql() {
  curl -sfG "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
    sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}
# the value once Prometheus has scraped what the agent holds now (two scrapes later)
settled() {
  local v
  sleep 2.5
  for _ in $(seq 1 40); do v=$(promql "$1"); [ -n "$v" ] && { echo "$v"; return; }; sleep 0.5; done
  echo ""
}
for _ in $(seq 1 60); do [ -n "$(promql 'pgscope_targets_attached')" ] && break; sleep 0.5; done
expect_eq "$(promql 'pgscope_targets_attached')" 1 "Prometheus scrapes the agent: one target attached"

# ---- a known workload: pgbench -S and 100 pg_sleep(0.02) statements as their own user
count_q='sum(pgscope_statements_total{database="agentdb"}) or vector(0)'
before=$(settled "$count_q")
req_before=$(promql 'sum(pgscope_client_requests_total)')
q "SELECT pg_stat_statements_reset()" >/dev/null
printf 'SELECT pg_sleep(0.02) AS agent_sleep;\n' >"$W/sleep.sql"
pgbench -n -f "$W/sleep.sql" -t 50 -c 2 -U sleeper agentdb >/dev/null 2>&1 || fail "pgbench (sleep)"
pgbench -n -S -t 1000 -c 2 agentdb >/dev/null 2>&1 || fail "pgbench -S"
after=$(settled "$count_q")
pgss=$(q "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'agentdb'")
req_after=$(promql 'sum(pgscope_client_requests_total)')
expect_eq "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%d", a - b }')" "$pgss" \
  "PromQL: the increase of pgscope_statements_total{database=agentdb} = pg_stat_statements calls"
p50=$(promql 'histogram_quantile(0.5, sum by (le) (pgscope_statement_duration_seconds_bucket{user="sleeper"}))')
mean=$(q "SELECT round((mean_exec_time / 1000)::numeric, 4) FROM pg_stat_statements WHERE query ~ 'agent_sleep'")
holds 'p > 0.01 && p <= 0.025' p="$p50" ||
  fail "histogram_quantile(0.5) for the pg_sleep(0.02) statements: $p50 (pg_stat_statements' mean $mean s)"
echo "ok: their median through histogram_quantile is $p50 s (pg_stat_statements' mean $mean s)"
# every statement of the workload is one round trip (simple protocol), and the reset before it one more
holds 'd >= p + 1 && d <= p + 3' d="$(awk -v a="$req_after" -v b="$req_before" 'BEGIN { print a - b }')" p="$pgss" ||
  fail "client requests over the workload: $req_before -> $req_after, its statements $pgss"
echo "ok: client requests over the workload: $(awk -v a="$req_after" -v b="$req_before" 'BEGIN { print a - b }') (its $pgss statements and the reset)"
expect_eq "$(promql 'sum(pgscope_statement_duration_seconds_count{user="sleeper"})')" 100 "100 timed statements of the sleeper"
tmo=$(promql 'sum(pgscope_statement_wait_seconds_total{database="agentdb",class="Timeout"})')
holds 't >= 1.9 && t <= 2.6' t="$tmo" ||
  fail "the Timeout class (pg_sleep) over 100 x 20 ms statements: $tmo s"
echo "ok: the breakdown's Timeout class holds their sleep: $tmo s"
expect_eq "$(promql 'sum(pgscope_query_calls_total) - sum(pgscope_statements_total)')" 0 \
  "the query series (top N and other) add up to the statements"
[ -n "$(promql 'pgscope_query_info{query=~".*pg_sleep.*"}')" ] || fail "no pgscope_query_info for the pg_sleep query"
echo "ok: the pg_sleep query has a series of its own, with its text in pgscope_query_info"
expect_eq "$(promql 'sum(pgscope_events_lost_total)')" 0 "no events lost"

# ---- the other tracers: WAL bytes against pg_stat_wal over a write workload, traffic, the families
wal_q='sum(pgscope_wal_bytes_total)'
q "SELECT pg_stat_force_next_flush()" >/dev/null
wal_before=$(settled "$wal_q")
sw_before=$(q "SELECT wal_bytes FROM pg_stat_wal")
pgbench -n -t 200 -c 2 agentdb >/dev/null 2>&1 || fail "pgbench (writes)"
q "SELECT pg_stat_force_next_flush()" >/dev/null
sleep 1
wal_after=$(settled "$wal_q")
sw_after=$(q "SELECT wal_bytes FROM pg_stat_wal")
awk -v a="$(awk -v x="$wal_after" -v y="$wal_before" 'BEGIN { print x - y }')" -v s="$((sw_after - sw_before))" \
  'BEGIN { d = a - s; if (d < 0) d = -d; exit !(s > 100000 && d <= s * 0.05) }' ||
  fail "WAL bytes: the agent's increase $wal_before -> $wal_after, pg_stat_wal's $sw_before -> $sw_after"
echo "ok: WAL bytes over a pgbench write workload: $(awk -v x="$wal_after" -v y="$wal_before" 'BEGIN { print x - y }') (pg_stat_wal: $((sw_after - sw_before)))"
# a lock wait of about 1 s and a deadlock
psql -X -q agentdb -c "CREATE TABLE lockme (id int PRIMARY KEY, v int)" -c "INSERT INTO lockme VALUES (1, 0), (2, 0)"
psql -X -q agentdb -c "BEGIN" -c "LOCK TABLE lockme IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(1)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.3
psql -X -q agentdb -c "BEGIN" -c "LOCK TABLE lockme IN SHARE MODE" -c "COMMIT" >/dev/null
wait "$holder"
psql -X -q agentdb -c "BEGIN" -c "UPDATE lockme SET v = 1 WHERE id = 1" -c "SELECT pg_sleep(0.5)" \
  -c "UPDATE lockme SET v = 1 WHERE id = 2" -c "COMMIT" >/dev/null 2>&1 &
one=$!
psql -X -q agentdb -c "BEGIN" -c "UPDATE lockme SET v = 2 WHERE id = 2" -c "SELECT pg_sleep(0.5)" \
  -c "UPDATE lockme SET v = 2 WHERE id = 1" -c "COMMIT" >/dev/null 2>&1 || true
wait "$one" || true
expect_eq "$(settled 'sum(pgscope_deadlocks_total)')" 1 "the deadlock is counted"
lw=$(promql 'sum(pgscope_lock_wait_seconds_sum{locktype="relation",mode="ShareLock"})')
holds 's >= 0.5 && s <= 1.5' s="$lw" || fail "the ShareLock wait on the relation: $lw s (about 0.7 s)"
expect_eq "$(promql 'sum(pgscope_lock_wait_seconds_count{locktype="relation",mode="ShareLock"})')" 1 "one ShareLock wait"
echo "ok: a lock wait of $lw s in pgscope_lock_wait_seconds, by lock type and mode"
for f in pgscope_wal_records_total pgscope_io_read_seconds_count pgscope_network_receive_bytes_total pgscope_client_requests_total; do
  [ -n "$(promql "sum($f)")" ] || fail "no $f"
done
echo "ok: WAL, IO and client traffic families are scraped"

# ---- 100,000 distinct query texts: the tracked texts stay within their bound, the memory with them
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "SELECT %d AS distinct_%d;\n", i, i }' >"$W/distinct.sql"
psql -X -q -f "$W/distinct.sql" agentdb >/dev/null
cand=$(settled 'pgscope_query_candidates')
evicted=$(promql 'pgscope_query_candidates_evicted_total')
rss=$(promql 'pgscope_agent_resident_memory_bytes')
holds 'c <= 5000 && e >= 90000' c="$cand" e="$evicted" ||
  fail "after 100,000 distinct texts: $cand tracked, $evicted evicted"
expect_eq "$(promql 'sum(pgscope_query_calls_total) - sum(pgscope_statements_total)')" 0 \
  "and the query series still add up to the statements"
echo "ok: 100,000 distinct texts: $cand tracked (bound 5000), $evicted evicted, the agent's RSS $((rss / 1048576)) MB"

# ---- the exposition itself: promtool's lint, a +Inf bucket per histogram, no duplicate series
curl -sf "http://127.0.0.1:$APORT/metrics" >"$W/metrics.txt" || fail "GET /metrics"
cp "$W/metrics.txt" "$ROOT/build/test-logs/t_agent.metrics.txt"
promtool check metrics <"$W/metrics.txt" >"$W/lint.txt" 2>&1 || fail "promtool check metrics: $(head -5 "$W/lint.txt")"
echo "ok: promtool check metrics passes"
expect_eq "$(grep -c '^pgscope_statement_duration_seconds_bucket{.*le="+Inf"}' "$W/metrics.txt")" \
  "$(grep -c '^pgscope_statement_duration_seconds_count{' "$W/metrics.txt")" "every histogram series has its +Inf bucket"
expect_eq "$(grep -v '^#' "$W/metrics.txt" | sed 's/ [^ ]*$//' | sort | uniq -d | wc -l)" 0 "no duplicate series"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APORT/nothing")" 404 "another path is 404"

# ---- a server restart is followed: detached, attached again, its statements counted
"$PGSCOPE" cluster restart "$PGDIR" >/dev/null
PM2=$(pm_pid)
wait_until 100 0.1 grep -q "(postmaster $PM2," "$W/agent.err"
grep -q "detached from the cluster in .* (postmaster $PM): the server stopped" "$W/agent.err" ||
  fail "no detach line: $(cat "$W/agent.err")"
grep -q "attached to the cluster in .* (postmaster $PM2," "$W/agent.err" || fail "not attached again: $(cat "$W/agent.err")"
echo "ok: the restart was followed (postmaster $PM, then $PM2)"
before=$(settled "$count_q")
for i in $(seq 1 20); do echo "SELECT $i AS after_restart;"; done | psql -X -q agentdb >/dev/null
after=$(settled "$count_q")
expect_eq "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%d", a - b }')" 20 "the 20 statements after the restart"
expect_eq "$(promql 'pgscope_attaches_total')" 2 "two attaches"

# ---- IO after the restart: the buffers are cold, a table's every block is read, 8 KB each
io_q='sum(pgscope_io_read_bytes_total)'
io_before=$(settled "$io_q")
blks_before=$(q "SELECT sum(blks_read) FROM pg_stat_database")
psql -X -q -c "SELECT count(*) FROM pgbench_accounts" agentdb >/dev/null
io_after=$(settled "$io_q")
blks_after=$(q "SELECT sum(blks_read) FROM pg_stat_database")
io_blocks=$(awk -v a="$io_after" -v b="$io_before" 'BEGIN { printf "%d", (a - b) / 8192 }')
# (the agent's window also holds the catalog reads of the sessions around the scan: up to half again)
holds 'a >= p && a <= p * 1.5 && p > 100' a="$io_blocks" p="$((blks_after - blks_before))" ||
  fail "blocks read after the restart: the agent's count $io_blocks, pg_stat_database's $((blks_after - blks_before))"
echo "ok: IO after the restart: $io_blocks blocks read in the agent's count (pg_stat_database: $((blks_after - blks_before)))"

# ---- SIGTERM: detached, exit 0, nothing left attached
kill -TERM "$agent"
rc=0; wait "$agent" || rc=$?
agent=""
expect_eq "$rc" 0 "the agent exits 0 on SIGTERM"
grep -q "stopped" "$W/agent.err" || fail "no stop line"
expect_eq "$(bpftool prog show 2>/dev/null | grep -c 'on_recv\|on_send' || true)" 0 "no BPF program stays attached"

# ---- OpenTelemetry: a span per statement to an OTLP/HTTP receiver (tests/clients/otlp_sink.c keeps
# every request's body), parents from sqlcommenter traceparents, sampling, a receiver that is down
SPORT=$(free_port)
mkdir -p "$W/spans"
"$ROOT/build/otlp_sink" "$SPORT" "$W/spans" 2>"$W/sink.err" &
sink=$!
trap 'kill "$sink" 2>/dev/null; stop_all' EXIT
set +e
"$PGSCOPE" agent --otlp "https://127.0.0.1:$SPORT" >/dev/null 2>"$W/bad.err"; rc=$?
set -e
expect_eq "$rc" 2 "an https or malformed --otlp URL is a usage error"
touch "$W/spans/fail"		# the receiver is down at first
"$PGSCOPE" agent --pid "$PM2" --prometheus "127.0.0.1:$APORT" --statements-only --otlp "http://127.0.0.1:$SPORT" \
  >"$W/agent2.out" 2>"$W/agent2.err" &
agent=$!
wait_said "$W/agent2.err" "attached to" "$agent"
tid=4bf92f3577b34da6a3ce929d0e0e4736 sid=00f067aa0ba902b7
for i in $(seq 1 10); do echo "SELECT $i AS with_parent /*traceparent='00-$tid-$sid-01'*/;"; done >"$W/tp.sql"
echo "SELECT 1 AS bad_parent /*traceparent='00-XYZ-$sid-01'*/;" >>"$W/tp.sql"
psql -X -q -f "$W/tp.sql" agentdb >/dev/null
# the same context in application_name (Npgsql's way), and a malformed one: a name that is not one is a name
atid=0af7651916cd43dd8448eb211c80319c asid=b7ad6b7169203331
for i in 1 2 3; do echo "SELECT $i AS app_parent;"; done | PGAPPNAME="00-$atid-$asid-01" psql -X -q agentdb >/dev/null
PGAPPNAME="00-$atid-$asid" psql -X -q -c "SELECT 1 AS bad_app_parent" agentdb >/dev/null
PGAPPNAME="00-but-not-a-traceparent" psql -X -q -c "SELECT 1 AS named_app" agentdb >/dev/null 2>&1
pgbench -n -S -t 100 -c 2 agentdb >/dev/null 2>&1 || fail "pgbench -S (spans)"
sleep 2
grep -q "cannot send spans to http://127.0.0.1:$SPORT" "$W/agent2.err" || fail "no word of the receiver being down: $(cat "$W/agent2.err")"
rm -f "$W/spans/fail"		# it comes back: the queued spans follow
wait_until 100 0.2 grep -q "spans reach" "$W/agent2.err"
curl -sf "http://127.0.0.1:$APORT/metrics" >"$W/m2.txt" || fail "GET /metrics (agent with --otlp)"
total=$(awk '$1 ~ /^pgscope_statements_total/ { s += $2 } END { print s + 0 }' "$W/m2.txt")
[ "$total" -ge 111 ] || fail "the agent counted $total statements (at least the 11 of tp.sql and 100 of pgbench)"
expect_eq "$(awk '$1 == "pgscope_otlp_bad_traceparent_total" { print $2 }' "$W/m2.txt")" 3 \
  "the malformed traceparents are counted (a comment, two application_names)"
awk '$1 == "pgscope_otlp_export_failures_total" { exit !($2 >= 1) }' "$W/m2.txt" || fail "no failure counted while the receiver was down"
kill -TERM "$agent"; wait "$agent" || fail "the agent with --otlp failed: $(cat "$W/agent2.err")"
agent=""
cat "$W"/spans/*.json >"$W/spans.all"
nspans=$(grep -o '"traceId":"' "$W/spans.all" | wc -l)
expect_eq "$nspans" "$total" "as many spans as statements (the receiver down for 2 s at first)"
expect_eq "$(grep -o "\"traceId\":\"$tid\",\"spanId\":\"[0-9a-f]\{16\}\",\"parentSpanId\":\"$sid\"" "$W/spans.all" | wc -l)" 10 \
  "the 10 statements with a traceparent are children of its span"
expect_eq "$(grep -o '"traceId":"[0-9a-f]\{32\}","spanId":"[0-9a-f]\{16\}"' "$W/spans.all" | wc -l)" "$nspans" \
  "every id in lowercase hex of the right length"
expect_eq "$(grep -o '"startTimeUnixNano":"[0-9]\{19\}","endTimeUnixNano":"[0-9]\{19\}"' "$W/spans.all" | wc -l)" "$nspans" \
  "times as strings of nanoseconds"
expect_eq "$(grep -o '"key":"db.system.name","value":{"stringValue":"postgresql"}' "$W/spans.all" | wc -l)" "$nspans" \
  "db.system.name on every span"
grep -q '"key":"db.query.text","value":{"stringValue":"SELECT abalance FROM pgbench_accounts WHERE aid = \$1;\?"}' "$W/spans.all" ||
  fail "db.query.text normalized: $(grep -o '"db.query.text[^}]*}' "$W/spans.all" | sort | uniq -c | head -5)"
grep -q '"name":"SELECT pgbench_accounts","kind":2' "$W/spans.all" || fail "span name = db.query.summary, kind SERVER"
echo "ok: attributes and names as the semantic conventions say (db.query.text normalized, kind SERVER)"
expect_eq "$(grep -c 'bad_parent' "$W/spans.all")" 1 "a malformed traceparent is ignored: the statement still has its span"
expect_eq "$(grep -o "\"traceId\":\"$atid\",\"spanId\":\"[0-9a-f]\{16\}\",\"parentSpanId\":\"$asid\"" "$W/spans.all" | wc -l)" 3 \
  "the 3 statements of a session whose application_name is a traceparent are children of its span"
expect_eq "$(grep -o 'AS bad_app_parent\|AS named_app' "$W/spans.all" | wc -l)" 2 "other application_names: spans of their own"

# --split: parse, plan and execute as child spans of each statement's, within it
rm -f "$W"/spans/*.json
"$PGSCOPE" agent --pid "$PM2" --prometheus "127.0.0.1:$APORT" --statements-only --otlp "http://127.0.0.1:$SPORT" \
  --split >/dev/null 2>"$W/agent4.err" &
agent=$!
wait_said "$W/agent4.err" "attached to" "$agent"
for i in $(seq 1 5); do echo "SELECT count(*) AS split_one FROM pg_class WHERE relpages >= $i;"; done | psql -X -q agentdb >/dev/null
sleep 2.5
kill -TERM "$agent"; wait "$agent" || fail "the agent with --split failed: $(cat "$W/agent4.err")"
agent=""
cat "$W"/spans/*.json >"$W/split.all" 2>/dev/null || : >"$W/split.all"
for phase in parse plan execute; do
  expect_eq "$(grep -o "\"name\":\"$phase\",\"kind\":1" "$W/split.all" | wc -l)" 5 "--split: a $phase span for each of the 5 statements"
done
grep -o '"spanId":"[0-9a-f]*","flags":[0-9]*,"name":"SELECT pg_class","kind":2' "$W/split.all" | cut -d'"' -f4 | sort >"$W/parents"
grep -o '"parentSpanId":"[0-9a-f]*","flags":[0-9]*,"name":"[a-z]*","kind":1' "$W/split.all" | cut -d'"' -f4 | sort -u >"$W/children_of"
expect_eq "$(wc -l <"$W/parents")" 5 "--split: the 5 statements' own spans"
expect_eq "$(comm -13 "$W/parents" "$W/children_of" | wc -l)" 0 "--split: every phase span is the child of its statement's span"
# within the parent: each child's start and end between its statement's
awk 'BEGIN { RS = "\\{\"traceId\"" } {
       if (match($0, /"spanId":"[0-9a-f]+"/)) id = substr($0, RSTART + 10, 16)
       if (match($0, /"parentSpanId":"[0-9a-f]+"/)) par = substr($0, RSTART + 16, 16); else par = ""
       match($0, /"startTimeUnixNano":"[0-9]+"/); st = substr($0, RSTART + 21, 19)
       match($0, /"endTimeUnixNano":"[0-9]+"/); en = substr($0, RSTART + 19, 19)
       if ($0 ~ /"kind":2/) { s[id] = st; e[id] = en } else if ($0 ~ /"kind":1/) { n++; cs[n] = st; ce[n] = en; cp[n] = par } }
     END { for (i = 1; i <= n; i++) if (!(cp[i] in s) || cs[i] < s[cp[i]] || ce[i] > e[cp[i]] || cs[i] > ce[i]) bad++
           print bad + 0 }' "$W/split.all" >"$W/outside"
expect_eq "$(cat "$W/outside")" 0 "--split: each phase lies within its statement's span"

# lock waits as span events: a statement that waits for another's row lock carries a pgscope.lock_wait
# event with the transaction, mode and wait the server itself logs (log_lock_waits), within its span
rm -f "$W"/spans/*.json
"$PGSCOPE" agent --pid "$PM2" --prometheus "127.0.0.1:$APORT" --otlp "http://127.0.0.1:$SPORT" >/dev/null 2>"$W/agent5.err" &
agent=$!
wait_said "$W/agent5.err" "attached to" "$agent"
psql -X -q -c "BEGIN" -c "UPDATE pgbench_accounts SET abalance = abalance WHERE aid = 7" -c "SELECT pg_sleep(1.2)" \
  -c "COMMIT" agentdb >/dev/null &
holder=$!
sleep 0.4
psql -X -q -c "SET deadlock_timeout = '100ms'" -c "SET log_lock_waits = on" \
  -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 7 RETURNING aid AS lock_waiter" agentdb >/dev/null
wait "$holder"
sleep 2.5
kill -TERM "$agent"; wait "$agent" || fail "the agent with lock waits failed: $(cat "$W/agent5.err")"
agent=""
cat "$W"/spans/*.json >"$W/locks.all" 2>/dev/null || : >"$W/locks.all"
awk 'BEGIN { RS = "\\{\"traceId\"" } /lock_waiter/ { print }' "$W/locks.all" >"$W/waiter.span"
[ -s "$W/waiter.span" ] || fail "no span for the waiting statement: $(head -c 2000 "$W/locks.all")"
grep -o '"timeUnixNano":"[0-9]*","name":"pgscope.lock_wait","attributes":\[[^]]*\]' "$W/waiter.span" >"$W/waits" || :
expect_eq "$(wc -l <"$W/waits")" 1 "one lock wait event on the waiting statement's span"
logged=$(sed -n 's/.*process [0-9]* acquired ShareLock on transaction \([0-9]*\) after \([0-9.]*\) ms.*/\1 \2/p' \
  "$PGDIR/server.log" | tail -1)
[ -n "$logged" ] || fail "the server logged no lock wait (log_lock_waits)"
grep -q '"key":"pgscope.lock.type","value":{"stringValue":"transactionid"}' "$W/waits" || fail "lock type: $(cat "$W/waits")"
grep -q '"key":"pgscope.lock.mode","value":{"stringValue":"ShareLock"}' "$W/waits" || fail "lock mode: $(cat "$W/waits")"
grep -q "\"key\":\"pgscope.lock.object\",\"value\":{\"stringValue\":\"transaction ${logged% *}\"}" "$W/waits" ||
  fail "the transaction waited for: the server logged ${logged% *}: $(cat "$W/waits")"
traced=$(sed -n 's/.*"pgscope.wait_seconds","value":{"doubleValue":\([0-9.]*\)}.*/\1/p' "$W/waits")
awk -v t="$traced" -v l="${logged#* }" 'BEGIN { d = t * 1000 - l; if (d < 0) d = -d; exit !(d <= 50 || d <= l * 0.1) }' ||
  fail "lock wait traced as ${traced} s, the server logged ${logged#* } ms"
awk 'match($0, /"startTimeUnixNano":"[0-9]+"/) { st = substr($0, RSTART + 21, 19) }
     match($0, /"endTimeUnixNano":"[0-9]+"/) { en = substr($0, RSTART + 19, 19) }
     match($0, /"timeUnixNano":"[0-9]+","name":"pgscope.lock_wait"/) { at = substr($0, RSTART + 16, 19) }
     END { exit !(at != "" && at >= st && at <= en) }' "$W/waiter.span" || fail "the lock wait event is not within its span"
waiter=$(sed -n 's/.*process \([0-9]*\) acquired ShareLock on transaction.*/\1/p' "$PGDIR/server.log" | tail -1)
grep -q "\"key\":\"postgresql.backend.pid\",\"value\":{\"intValue\":\"$waiter\"}" "$W/waiter.span" ||
  fail "the span's backend pid is not the server's (process $waiter in its log): $(grep -o '"postgresql.backend.pid[^}]*}' "$W/waiter.span")"
echo "ok: the waiting statement's span has its lock wait: ${traced} s on transaction ${logged% *} (server: ${logged#* } ms), backend pid $waiter as the server logs it"

# SIGHUP re-reads --config: spans switched on, a bad file keeps the options in force, spans switched off;
# a --pid that cannot be attached is said with when it is tried again (each good SIGHUP tries at once)
rm -f "$W"/spans/*.json
echo "statements-only" >"$W/agent.conf"
"$PGSCOPE" agent --pid "$PM2" --pid $$ --prometheus "127.0.0.1:$APORT" --config "$W/agent.conf" >/dev/null 2>"$W/agent6.err" &
agent=$!
wait_said "$W/agent6.err" "attached to" "$agent"
grep -q "cannot attach to the server of postmaster $$: .* (trying again in 30 s)" "$W/agent6.err" ||
  fail "no word of the failed attach: $(cat "$W/agent6.err")"
hup() {
  local n; n=$(grep -c "^pgscope agent: SIGHUP: $1" "$W/agent6.err" || true)
  kill -HUP "$agent"
  for _ in $(seq 1 100); do [ "$(grep -c "^pgscope agent: SIGHUP: $1" "$W/agent6.err" || true)" -gt "$n" ] && return; sleep 0.1; done
  fail "SIGHUP: no \"$1\" line: $(cat "$W/agent6.err")"
}
psql -X -q -c "SELECT 1 AS before_hup" agentdb >/dev/null
printf 'statements-only\notlp http://127.0.0.1:%s\n' "$SPORT" >"$W/agent.conf"
hup "re-read"
for _ in $(seq 1 100); do grep -q "attached again" "$W/agent6.err" && grep -q "(postmaster $PM2, PostgreSQL" <(sed -n '/attached again/,$p' "$W/agent6.err") && break; sleep 0.1; done
for i in 1 2 3; do psql -X -q -c "SELECT $i AS after_hup" agentdb >/dev/null; done
echo "bogus 1" >"$W/agent.conf"
hup "$W/agent.conf has errors: the options in force are kept"
psql -X -q -c "SELECT 1 AS after_bad_hup" agentdb >/dev/null
echo "statements-only" >"$W/agent.conf"
hup "re-read"
grep -q "SIGHUP: stopped sending spans to http://127.0.0.1:$SPORT" "$W/agent6.err" || fail "no word of the spans stopping"
for _ in $(seq 1 100); do [ "$(grep -c "(postmaster $PM2, PostgreSQL" "$W/agent6.err")" -ge 3 ] && break; sleep 0.1; done
psql -X -q -c "SELECT 1 AS after_off" agentdb >/dev/null
sleep 1.5
curl -sf "http://127.0.0.1:$APORT/metrics" >"$W/m6.txt" || fail "GET /metrics (after SIGHUPs)"
kill -TERM "$agent"; wait "$agent" || fail "the agent reloaded failed: $(cat "$W/agent6.err")"
agent=""
cat "$W"/spans/*.json >"$W/hup.all" 2>/dev/null || : >"$W/hup.all"
for m in before_hup:0 after_hup:3 after_bad_hup:1 after_off:0; do
  expect_eq "$(grep -o "AS ${m%:*}" "$W/hup.all" | wc -l)" "${m#*:}" "spans after SIGHUPs: ${m%:*}"
done
expect_eq "$(grep -c "cannot attach to the server of postmaster $$:" "$W/agent6.err")" 3 \
  "the failed --pid tried at start and at each good SIGHUP"
expect_eq "$(awk '$1 == "pgscope_attach_failures_total" { print $2 }' "$W/m6.txt")" 3 "and counted"
awk '$1 == "pgscope_otlp_spans_exported_total" { exit !($2 >= 4) }' "$W/m6.txt" ||
  fail "the exported spans' counter went back after the exporter stopped: $(grep otlp_spans "$W/m6.txt")"
echo "ok: SIGHUP switched spans on and off, kept the options over a bad file, retried the failed --pid"

# head sampling at ratio 0: only errors, statements of --slow-ms or more and sampled parents' children
rm -f "$W"/spans/*.json
"$PGSCOPE" agent --pid "$PM2" --prometheus "127.0.0.1:$APORT" --statements-only --otlp "http://127.0.0.1:$SPORT" \
  --sample-ratio 0 --slow-ms 15 >/dev/null 2>"$W/agent3.err" &
agent=$!
wait_said "$W/agent3.err" "attached to" "$agent"
{ for i in $(seq 1 20); do echo "SELECT $i AS fast_one;"; done
  for i in $(seq 1 5); do echo "SELECT pg_sleep(0.02) AS slow_one;"; done
  for i in $(seq 1 2); do echo "SELECT 1 / 0 AS failing_one;"; done
  for i in $(seq 1 3); do echo "SELECT $i AS sampled_parent /*traceparent='00-$tid-$sid-01'*/;"; done
  for i in $(seq 1 3); do echo "SELECT $i AS unsampled_parent /*traceparent='00-$tid-$sid-00'*/;"; done
} | psql -X -q agentdb >/dev/null 2>&1
sleep 2.5
kill -TERM "$agent"; wait "$agent" || fail "the sampling agent failed: $(cat "$W/agent3.err")"
agent=""
cat "$W"/spans/*.json >"$W/sampled.all" 2>/dev/null || : >"$W/sampled.all"
for m in fast_one:0 slow_one:5 failing_one:2 sampled_parent:3 unsampled_parent:0; do
  expect_eq "$(grep -o "AS ${m%:*}" "$W/sampled.all" | wc -l)" "${m#*:}" "sampled at ratio 0: ${m%:*}"
done
grep -q '"status":{"code":2}' "$W/sampled.all" || fail "an error's span has status ERROR"
expect_eq "$(grep -o '"key":"db.response.status_code","value":{"stringValue":"22012"}' "$W/sampled.all" | wc -l)" 2 \
  "the failing statements' spans carry their SQLSTATE (db.response.status_code)"

# head sampling at ratio 0.25: a quarter of 400 traces of their own (binomial: 100 +- 8.7; 5 sigma either way)
rm -f "$W"/spans/*.json
"$PGSCOPE" agent --pid "$PM2" --prometheus "127.0.0.1:$APORT" --statements-only --otlp "http://127.0.0.1:$SPORT" \
  --sample-ratio 0.25 >/dev/null 2>"$W/agent4.err" &
agent=$!
wait_said "$W/agent4.err" "attached to" "$agent"
for i in $(seq 1 400); do echo "SELECT $i AS quarter_one;"; done | psql -X -q agentdb >/dev/null
sleep 2.5
kill -TERM "$agent"; wait "$agent" || fail "the sampling agent failed: $(cat "$W/agent4.err")"
agent=""
kept=$(cat "$W"/spans/*.json 2>/dev/null | grep -o "AS quarter_one" | wc -l)
holds 'k >= 57 && k <= 143' k="$kept" || fail "sampled at ratio 0.25: $kept spans of 400 statements"
echo "ok: sampled at ratio 0.25: $kept spans of 400 statements"

# ---- through a real OpenTelemetry Collector (built from Debian's Go sources by scripts/otelcol.sh): its
# OTLP receiver takes the agent's spans, its otlphttp exporter re-posts them as canonical OTLP JSON to the sink
OTELCOL=$("$ROOT/scripts/otelcol.sh") || fail "the OpenTelemetry Collector could not be built"
CPORT=$(free_port)
rm -f "$W"/spans/*.json
cat >"$W/otelcol.yaml" <<EOF
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$CPORT
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:$SPORT
    encoding: json
    compression: none
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp, debug]
EOF
"$OTELCOL" --config "$W/otelcol.yaml" >"$W/otelcol.log" 2>&1 &
otelcol=$!
trap 'kill "$sink" "$otelcol" 2>/dev/null; stop_all' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$CPORT") 2>/dev/null && break; sleep 0.1; done
"$PGSCOPE" agent --pid "$PM2" --prometheus "127.0.0.1:$APORT" --statements-only --otlp "http://127.0.0.1:$CPORT" \
  >/dev/null 2>"$W/agent4.err" &
agent=$!
wait_said "$W/agent4.err" "attached to" "$agent"
psql -X -q -f "$W/tp.sql" agentdb >/dev/null
pgbench -n -S -t 50 -c 2 agentdb >/dev/null 2>&1 || fail "pgbench -S (Collector)"
sleep 2
curl -sf "http://127.0.0.1:$APORT/metrics" >"$W/m4.txt" || fail "GET /metrics (agent 4)"
total=$(awk '$1 ~ /^pgscope_statements_total/ { s += $2 } END { print s + 0 }' "$W/m4.txt")
[ "$total" -ge 111 ] || fail "the agent counted $total statements (at least the 11 of tp.sql and 100 of pgbench)"
kill -TERM "$agent"; wait "$agent" || fail "the agent sending to the Collector failed: $(cat "$W/agent4.err")"
agent=""
for _ in $(seq 1 50); do
  n=$( (cat "$W"/spans/*.json 2>/dev/null || true) | grep -o '"traceId":"' | wc -l || true)
  [ "$n" -ge "$total" ] && break; sleep 0.2
done
kill -TERM "$otelcol"; wait "$otelcol" 2>/dev/null || true
cat "$W"/spans/*.json >"$W/collector.all" 2>/dev/null || : >"$W/collector.all"
cp "$W/otelcol.log" "$ROOT/build/test-logs/t_agent.otelcol.log"
expect_eq "$(grep -o '"traceId":"' "$W/collector.all" | wc -l)" "$total" "the Collector passed on as many spans as statements"
expect_eq "$(grep -o "\"traceId\":\"$tid\",\"spanId\":\"[0-9a-f]\{16\}\",\"parentSpanId\":\"$sid\"" "$W/collector.all" | wc -l)" 10 \
  "through the Collector: the traceparents' spans are the parents"
grep -q '"key":"db.system.name","value":{"stringValue":"postgresql"}' "$W/collector.all" || fail "attributes through the Collector"
echo "ok: the Collector's debug exporter logged $(grep -c 'Traces' "$W/otelcol.log") batches"
