#!/usr/bin/env bash
# Issue 9: what a hostile or careless user broke in one afternoon, each as a
# check that failed before its fix: output paths that are devices, FIFOs,
# symlinks or other users' files; COPY in a workload; --rollback with
# transaction control; expiry arithmetic; a closed output under the tracers;
# the splitter's complexity; unprivileged merges; and the smaller ones.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_cluster "shared_preload_libraries = 'pgscope'"
W=$WORK
CONN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
PM=$(pm_pid)

expect_err() { grep -q -- "$1" "$W/err" || { cat "$W/err" >&2; fail "$2: stderr lacks '$1'"; }; }

q "CREATE EXTENSION pgscope"
q "CREATE TABLE t (x int)"
q "CREATE FUNCTION f(n int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN n + 1; END \$\$"

# ---- 1. -o never replaces what it was not asked to replace
stat -c '%F %t:%T' /dev/null >"$W/devnull.before"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" -o /dev/null
expect_status 0 "-o /dev/null"
stat -c '%F %t:%T' /dev/null | cmp -s - "$W/devnull.before" || fail "/dev/null is no longer the device"
echo "ok: /dev/null is still the character device"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" -o /dev/full
expect_status 1 "-o /dev/full fails"
expect_err "No space left on device" "and says why"
[ "$(stat -c %F /dev/full)" = "character special file" ] || fail "/dev/full was replaced"
mkfifo "$W/fifo"
( cat "$W/fifo" >"$W/fifo.out" ) &
reader=$!
run timeout 20 "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" -o "$W/fifo"
expect_status 0 "-o FIFO"
wait "$reader"
[ -p "$W/fifo" ] || fail "the FIFO was replaced"
grep -q '</html>' "$W/fifo.out" || fail "the report did not go through the FIFO"
echo "ok: the report went through the FIFO, which is still one"
echo keep >"$W/target"
ln -s "$W/target" "$W/link"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" -o "$W/link"
expect_status 1 "-o symlink is refused"
expect_err "symbolic link" "and says so"
[ -L "$W/link" ] && [ "$(cat "$W/target")" = keep ] || fail "the symlink or its target changed"
echo secret >"$W/other"
chown nobody:nogroup "$W/other"
chmod 600 "$W/other"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" -o "$W/other"
expect_status 0 "-o a file of another user"
expect_eq "$(stat -c '%U:%G %a' "$W/other")" "nobody:nogroup 600" "its owner and mode are kept"
grep -q '</html>' "$W/other" || fail "the file was not rewritten"
# a temp file left by a killed pgscope (a pid that is gone) is cleaned; none of ours is left
touch "$W/.report.html.pgscope.4194000"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" -o "$W/report.html"
expect_status 0 "-o a new file"
expect_eq "$(ls -A "$W" | grep -c pgscope || true)" 0 "no temporary file is left, a stale one is removed"
expect_eq "$(stat -c %a "$W/report.html")" "$(printf '%o' $(( 0666 & ~$(umask) )))" "a new file gets 0666 minus the umask"
run "$PGSCOPE" plprof run -d "$CONN" -c "INSERT INTO t VALUES (1)" -o /nonexistent/dir/r.html
expect_status 1 "-o into a missing directory"
expect_eq "$(q "SELECT count(*) FROM t")" 0 "the workload did not run"
run timeout 10 "$PGSCOPE" locks --pid "$PM" --dot /nonexistent/x.dot --duration 30
expect_status 1 "locks --dot into a missing directory fails before tracing"

# ---- 2. COPY runs, or is refused; it never spins
q "CREATE TABLE c (x int)"
run timeout 20 "$PGSCOPE" plprof run -d "$CONN" -c "COPY (SELECT generate_series(1, 3)) TO STDOUT" -o "$W/c.html"
expect_status 0 "COPY TO STDOUT"
expect_eq "$(tr '\n' ' ' <"$W/out")" "1 2 3 " "the rows went to standard output"
run timeout 20 "$PGSCOPE" plprof run -d "$CONN" -c "COPY (SELECT 1) TO STDOUT"
expect_status 1 "COPY TO STDOUT with the report on standard output"
expect_err "give -o FILE" "says how to run it"
printf 'SELECT f(1);\nCOPY c FROM STDIN;\n1\n2\n\\.\nSELECT f(2);\n' >"$W/copy.sql"
run timeout 20 "$PGSCOPE" plprof run -d "$CONN" -f "$W/copy.sql" -o "$W/c.html"
expect_status 0 "COPY FROM STDIN with its data in the script"
expect_eq "$(q "SELECT string_agg(x::text, ',' ORDER BY x) FROM c")" "1,2" "the script's rows were copied"
printf '7\n8\n9\n' >"$W/rows"
run timeout 20 "$PGSCOPE" plprof run -d "$CONN" -c "COPY c FROM STDIN" -o "$W/c.html" <"$W/rows"
expect_status 0 "COPY FROM STDIN with -c reads standard input"
expect_eq "$(q "SELECT count(*) FROM c")" 5 "standard input's rows were copied"
# a wait on the server ends at SIGTERM
"$PGSCOPE" plprof run -d "$CONN" -c "SELECT pg_sleep(60)" -o "$W/sleep.html" 2>"$W/err" &
bg=$!
sleep 1.5
kill -TERM "$bg"
t0=$(date +%s)
set +e; wait "$bg"; status=$?; set -e
[ $(( $(date +%s) - t0 )) -le 5 ] || fail "SIGTERM took more than 5 s to end a run"
expect_status 143 "SIGTERM during a statement"
expect_eq "$(q "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'")" 0 \
  "the statement was cancelled"

# ---- 3. --rollback refuses transaction control before running anything
for w in "INSERT INTO t VALUES (1); COMMIT" "INSERT INTO t VALUES (1); END" "BEGIN; INSERT INTO t VALUES (1)" \
         "INSERT INTO t VALUES (1); ROLLBACK; INSERT INTO t VALUES (2)" "PREPARE TRANSACTION 'x'"; do
  run "$PGSCOPE" plprof run -d "$CONN" -c "$w" --rollback -o "$W/rb.html"
  expect_status 1 "--rollback with: $w"
  expect_err "ends or starts a transaction" "names the problem"
done
run "$PGSCOPE" plprof run -d "$CONN" -c "SAVEPOINT s; INSERT INTO t VALUES (1); ROLLBACK TO SAVEPOINT s; INSERT INTO t VALUES (2)" \
  --rollback -o "$W/rb.html"
expect_status 0 "--rollback allows savepoints"
expect_eq "$(q "SELECT count(*) FROM t")" 0 "nothing was committed"

# ---- 4. expiry arithmetic
expect_eq "$(q "SELECT pgscope_enable_global(true, '500 milliseconds')")" t "a sub-second expiry is accepted"
sleep 0.8
expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" f "and it expires"
for iv in "300000 years" "2562047788 hours" "-1 second"; do
  set +e; psql -X -qAt -c "SELECT pgscope_enable_global(true, '$iv')" 2>"$W/err"; st=$?; set -e
  [ "$st" != 0 ] || fail "expiry '$iv' was accepted"
  grep -q "expiry must" "$W/err" || fail "expiry '$iv': $(cat "$W/err")"
  echo "ok: expiry '$iv' is refused at the call"
done
q "SELECT * FROM pgscope_status()" >/dev/null
expect_eq "$(q "SELECT pgscope_enable_global(false)")" f "status works and profiling is off"

# ---- 7. the splitter is linear: 20,000 statements take at most 3x the time of 10,000
for n in 10000 20000; do
  awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "SELECT %d, $q$;$q$, '\''a;b'\''; -- c;\n", i }' >"$W/split$n.sql"
done
split_time() {
  local best=999999 t0 t1
  for _ in 1 2 3; do
    t0=$(date +%s%N); "$PGSCOPE" plprof run -f "$1" --dry-run >/dev/null; t1=$(date +%s%N)
    (( (t1 - t0) < best )) && best=$(( t1 - t0 ))
  done
  echo "$best"
}
t10=$(split_time "$W/split10000.sql"); t20=$(split_time "$W/split20000.sql")
holds 'b <= 3 * a' a="$t10" b="$t20" || fail "20,000 statements took $t20 ns, 10,000 took $t10 ns"
echo "ok: splitting 20,000 statements took $(awk -v a="$t10" -v b="$t20" 'BEGIN { printf "%.2f", b / a }')x the time of 10,000"
expect_eq "$("$PGSCOPE" plprof run -f "$W/split20000.sql" --dry-run | tail -1)" "20000 statements" "all were found"

# ---- 8. an unprivileged session cannot fill the shared tables
q "CREATE ROLE plain LOGIN"
q "SELECT pgscope_reset(true)"
set +e
psql -X -qAt -U plain -c "SET pgscope.enabled = on" -c "SELECT f(1)" -c "SELECT pgscope_collect()" >/dev/null 2>"$W/err"
set -e
grep -q "permission denied to merge" "$W/err" || fail "pgscope_collect() as a plain role: $(cat "$W/err")"
expect_eq "$(q "SELECT count(*) FROM pgscope_functions(true)")" 0 "nothing reached the shared tables"
expect_eq "$(q "SELECT functions_overflow FROM pgscope_status()")" f "no overflow flag was set"

# ---- 9. the smaller ones
# data recorded before a monitoring window does not show in it
q "SELECT pgscope_reset(true)"
cat >"$W/stale.sql" <<'SQL'
SET pgscope.enabled = on;
SELECT f(i) FROM generate_series(1, 50) i;
SELECT pg_sleep(3);
SELECT f(1);
SQL
psql -X -q -f "$W/stale.sql" >/dev/null &
bg=$!
sleep 1
run "$PGSCOPE" plprof monitor --all --duration 4 -d "$CONN" --format json -o "$W/win.json"
expect_status 0 "monitor while a session-profiled backend waits"
wait "$bg"
expect_eq "$(echo "SELECT (f->>'calls') FROM jsonb_array_elements((:'d')::jsonb->'functions') f WHERE f->>'signature' = 'public.f(integer)'" |
  psql -X -qAt -v d="$(cat "$W/win.json")")" 1 "the window holds only the call made in it"

# two monitors at once: the second is refused, the first keeps its window
"$PGSCOPE" plprof monitor --all --duration 3 -d "$CONN" --format json -o "$W/first.json" 2>"$W/first.err" &
first=$!
for _ in $(seq 1 50); do [ "$(q "SELECT global_enabled FROM pgscope_status()")" = t ] && break; sleep 0.1; done
run "$PGSCOPE" plprof monitor --all --duration 1 -d "$CONN" -o "$W/second.html"
expect_status 1 "a second monitor"
expect_err "another pgscope plprof monitor is running" "says why"
expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" t "the first monitor's profiling is still on"
q "SELECT f(1)" >/dev/null
wait "$first" || fail "the first monitor failed: $(cat "$W/first.err")"
grep -q 'public.f(integer)' "$W/first.json" || fail "the first monitor lost its data"
echo "ok: the first monitor's report has its data"

# SIGHUP (a closed terminal) switches profiling off like SIGTERM
"$PGSCOPE" plprof monitor --all --duration 60 -d "$CONN" -o "$W/hup.html" 2>/dev/null &
bg=$!
for _ in $(seq 1 50); do [ "$(q "SELECT global_enabled FROM pgscope_status()")" = t ] && break; sleep 0.1; done
kill -HUP "$bg"
set +e; wait "$bg"; set -e
expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" f "SIGHUP leaves profiling off"

# run --save without the privilege is refused before the workload runs
q "GRANT INSERT ON t TO plain"
run "$PGSCOPE" plprof run -h "$PGHOST" -p "$PGPORT" -U plain -d postgres -c "INSERT INTO t VALUES (42)" --save s1 -o "$W/s.html"
expect_status 1 "run --save without the privilege"
expect_err "nothing was run" "says nothing ran"
expect_eq "$(q "SELECT count(*) FROM t")" 0 "the workload did not run"

# a statement's total survives recursion (the deepest statement ran only in inner activations)
q "CREATE FUNCTION rec(n int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
  IF n = 0 THEN
    RETURN 0;
  END IF;
  RETURN rec(n - 1) + 1;
END \$\$"
expect_eq "$(psql -X -qAt -c "SELECT pgscope_enable()" -c "SELECT rec(20)" -c "SELECT pgscope_enable(false)" \
  -c "SELECT bool_and(total_ns >= self_ns AND total_ns > 0) FROM pgscope_statements() WHERE signature = 'public.rec(integer)'" | tail -1)" t \
  "every statement of a recursive function has a total, at least its self time"

# calls in parallel workers are reported, and add up
q "CREATE TABLE big AS SELECT g AS x FROM generate_series(1, 200000) g"
q "ANALYZE big"
q "CREATE FUNCTION pf(x int) RETURNS bool LANGUAGE plpgsql PARALLEL SAFE AS \$\$ BEGIN RETURN x % 7 = 0; END \$\$"
cat >"$W/par.sql" <<'SQL'
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM big WHERE pf(x);
SQL
run "$PGSCOPE" plprof run -d "$CONN" -f "$W/par.sql" --format json -o "$W/par.json"
expect_status 0 "a workload with parallel workers"
expect_eq "$(echo "SELECT coalesce((d->'meta'->>'parallel_worker_calls')::int, 0)
                      + (SELECT (f->>'calls')::int FROM jsonb_array_elements(d->'functions') f WHERE f->>'signature' = 'public.pf(integer)')
                 FROM (SELECT (:'d')::jsonb AS d) s" | psql -X -qAt -v d="$(cat "$W/par.json")")" 200000 \
  "the session's calls plus the workers' reported calls are every call"
grep -q 'PL/pgSQL calls ran in a parallel worker' "$W/err" || fail "the workers' calls were not reported"

# NUL bytes, empty workloads
printf 'SELECT 1;\nSELECT 2\0 junk;\n' >"$W/nul.sql"
run "$PGSCOPE" plprof run -d "$CONN" -f "$W/nul.sql"
expect_status 1 "a NUL byte in the workload"
expect_err "line 2 holds a NUL byte" "says where"
run "$PGSCOPE" plprof run -d "$CONN" -c ";;;"
expect_status 2 "-c ';;;' is an empty workload, like -c ''"

# dataset names: long, multibyte, control characters
long=$(printf 'é%.0s' $(seq 1 150))
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" --save "$long" -o "$W/n.html"
expect_status 2 "a 300-byte name"
expect_err "at most 200 bytes" "says the limit"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" --save "$(printf 'é%.0s' $(seq 1 90))x" -o "$W/n.html"
expect_status 0 "a 181-byte multibyte name"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT f(1)" --save "$(printf 'a\033[31mred')" -o "$W/n.html"
expect_status 2 "a name with ESC"
q "INSERT INTO pgscope_dataset (name, profile) VALUES (E'evil\\033[2J\\nname', '{\"format\": \"pgscope-profile\"}')"
run "$PGSCOPE" plprof list -d "$CONN"
expect_status 0 "list with a stored control character"
grep -q 'evil\\x1b\[2J\\x0aname' "$W/out" || { cat -v "$W/out"; fail "list escapes control characters"; }
grep -q "$(printf '\033')" "$W/out" && fail "list printed a raw ESC"
echo "ok: list escapes control characters"

# show of an imported minimal document
echo '{"format": "pgscope-profile", "version": 1, "functions": [], "callgraph": []}' >"$W/min.json"
run "$PGSCOPE" plprof import "$W/min.json" --name minimal -d "$CONN"
expect_status 0 "import of a minimal document"
run "$PGSCOPE" plprof show minimal -d "$CONN"
expect_status 0 "show of a minimal document"
# import of random bytes: refused at once, nothing grows
head -c 1000000 /dev/urandom | tr -d '{ \t\r\n' >"$W/random.bin"
run timeout 10 "$PGSCOPE" plprof import "$W/random.bin" --name rnd -d "$CONN"
expect_status 1 "import of random bytes"
expect_err "not a JSON document" "says why"
run timeout 10 "$PGSCOPE" plprof import /dev/zero --name rnd -d "$CONN"
expect_status 1 "import of an endless file"

# usage errors
run "$PGSCOPE" plprof list -p 0 -d "$CONN"
expect_status 2 "-p 0"
run "$PGSCOPE" queries --pid "$PM" -D "$PGDIR/data" --duration 1
expect_status 2 "--pid with -D"
expect_err "not both" "says which"
run su nobody -s /bin/sh -c "$PGSCOPE targets"
expect_status 1 "targets without privileges"
expect_err "without root" "says why"

# ---- 5. a closed output ends the tracer, with honest counts
pgbench -i -q postgres >/dev/null 2>&1
pgbench -S -T 30 -c 2 postgres >/dev/null 2>&1 &
load=$!
sleep 1
set +e
timeout 20 "$PGSCOPE" queries --pid "$PM" --json 2>"$W/err" | head -5 >"$W/head"
st=${PIPESTATUS[0]}
set -e
[ "$st" = 0 ] || { cat "$W/err"; fail "queries | head: exit status $st (124: it never ended)"; }
expect_eq "$(wc -l <"$W/head")" 5 "head got its 5 lines"
grep -q "standard output was closed" "$W/err" || fail "the summary does not say the output closed"
shown=$(sed -n 's/.* \([0-9]*\) shown.*/\1/p' "$W/err")
[ "$shown" -ge 5 ] && [ "$shown" -lt 1000 ] || fail "the summary claims $shown statements shown"
echo "ok: queries | head ended with $shown statements shown"
kill "$load" 2>/dev/null; wait "$load" 2>/dev/null || true

# ---- 6. every --query-len works; a long statement is truncated and flagged, never dropped
long_sql="SELECT '$(head -c 5000 /dev/zero | tr '\0' x)' IS NOT NULL"
for ql in 64 4093 4095; do
  "$PGSCOPE" queries --pid "$PM" --query-len "$ql" --json --duration 6 >"$W/ql.out" 2>"$W/ql.err" &
  tr=$!
  # (attached: a fixed sleep was once too short on a loaded machine)
  wait_said "$W/ql.err" tracing "$tr"
  q "$long_sql" >/dev/null
  q "SELECT 'short'" >/dev/null
  wait "$tr" || fail "queries --query-len $ql failed: $(cat "$W/ql.err")"
  expect_eq "$(grep '"query":"SELECT '"'"'xxx' "$W/ql.out" | grep -c '"truncated":true')" 1 "--query-len $ql: the 5,000-byte statement is shown, truncated"
  expect_eq "$(grep -c "\"query\":\"SELECT 'short'\"" "$W/ql.out")" 1 "--query-len $ql: the short one too"
done

# ---- latency: memory is bounded whatever the number of distinct texts
"$PGSCOPE" latency --pid "$PM" --duration 60 >"$W/lat.out" 2>"$W/lat.err" &
lat=$!
wait_said "$W/lat.err" tracing "$lat"
awk 'BEGIN { for (i = 0; i < 6000; i++) printf "SELECT 1 AS c%d;\n", i }' | psql -X -q >/dev/null
kill -INT "$lat"
wait "$lat" || fail "latency failed: $(cat "$W/lat.err")"
grep -q 'summed as "(other queries)"' "$W/lat.err" || { cat "$W/lat.err"; fail "latency does not say it bounded its table"; }
echo "ok: latency bounds its per-query table"

# ---- a tracer whose server stops ends, saying so
"$PGSCOPE" queries --pid "$PM" >/dev/null 2>"$W/gone.err" &
tr=$!
wait_said "$W/gone.err" tracing "$tr"
"$PGSCOPE" cluster stop "$PGDIR"
CLUSTERS=()
t0=$(date +%s)
set +e; wait "$tr"; st=$?; set -e
[ "$st" = 1 ] || { cat "$W/gone.err"; fail "the tracer of a stopped server: exit status $st"; }
grep -q "has exited" "$W/gone.err" || fail "the tracer does not say the server went away"
echo "ok: the tracer of a stopped server ended within $(( $(date +%s) - t0 )) s"
