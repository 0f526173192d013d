#!/usr/bin/env bash
# The pgscope command line against throwaway clusters: run (autocommit,
# procedures that COMMIT, --rollback, a failing workload), monitor (window,
# Ctrl-C, SIGTERM), datasets (save, list, show, report, export/import round
# trip, delete), formats, bad flags and bad connections, and the report in a
# real browser.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_cluster "shared_preload_libraries = 'pgscope'"
W=$WORK
CONN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"

expect_err() {
  grep -q -- "$1" "$W/err" || { cat "$W/err" >&2; fail "$2: stderr lacks '$1'"; }
  [ "$(wc -l <"$W/err")" -ge 1 ]
}

q "CREATE EXTENSION pgscope"
q "CREATE TABLE t (x int)"
cat >"$W/setup.sql" <<'SQL'
CREATE FUNCTION leaf(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN n + 1;
END $$;
CREATE FUNCTION work(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE s int := 0;
BEGIN
  FOR i IN 1..n LOOP
    s := s + leaf(i);  -- a comment; with a semicolon
  END LOOP;
  RETURN s;
END $$;
CREATE PROCEDURE batch() LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO t VALUES (1);
  COMMIT;
  INSERT INTO t VALUES (2);
  COMMIT;
END $$;
CREATE FUNCTION failing() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN 1 / 0;
END $$;
SQL
psql -X -q -v ON_ERROR_STOP=1 -f "$W/setup.sql"

# ---- run: a workload file with dollar quotes, semicolons in comments and strings
cat >"$W/workload.sql" <<'SQL'
-- a workload; with; semicolons in comments
SELECT work(10);
SELECT 'a;b' AS s, $x$ ; $x$ AS d;
DO $do$ BEGIN PERFORM work(3); END $do$;
CALL batch();
SQL
run "$PGSCOPE" plprof run -d "$CONN" -f "$W/workload.sql" -o "$W/run.html" --save ds1 --title "CLI run"
expect_status 0 "run -f writes a report"
grep -q 'public.work(integer)' "$W/run.html" || fail "report lacks work()"
grep -q 'public.batch()' "$W/run.html" || fail "report lacks the procedure"
expect_eq "$(q "SELECT count(*) FROM t")" 2 "a procedure that COMMITs ran in autocommit"
expect_eq "$(q "SELECT (SELECT (f->>'calls')::int FROM jsonb_array_elements(profile->'functions') f
                        WHERE f->>'signature' = 'public.leaf(integer)') FROM pgscope_dataset WHERE name = 'ds1'")" 13 \
  "saved dataset counts 13 calls of leaf()"
[ ! -e "$W/run.html.tmp."* ] 2>/dev/null || fail "a temporary file was left"

# formats: folded to stdout, json parses
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT work(2)" --format folded
expect_status 0 "run --format folded"
grep -qx 'public.work(integer);public.leaf(integer) [0-9]*' "$W/out" || { cat "$W/out"; fail "folded stack line"; }
grep -q '^public.work(integer) [0-9]*$' "$W/out" || fail "folded root line"
run "$PGSCOPE" plprof run -d "$CONN" -c "SELECT work(2)" --format json -o "$W/run.json"
expect_status 0 "run --format json"
expect_eq "$(echo "SELECT jsonb_array_length((:'doc')::jsonb->'functions')" | psql -X -qAt -v doc="$(cat "$W/run.json")")" 2 \
  "the JSON parses and lists 2 functions"

# --rollback: the workload's changes are rolled back; a COMMITting procedure fails
q "TRUNCATE t"
run "$PGSCOPE" plprof run -d "$CONN" -c "INSERT INTO t VALUES (5); SELECT work(1)" --rollback -o "$W/rb.html"
expect_status 0 "run --rollback"
expect_eq "$(q "SELECT count(*) FROM t")" 0 "--rollback rolled the workload back"
run "$PGSCOPE" plprof run -d "$CONN" -c "CALL batch()" --rollback -o "$W/rb2.html"
expect_status 1 "a COMMIT inside --rollback fails"
expect_err "invalid transaction termination" "the server's message is shown"

# a workload with an error: stops there, says where, still writes the report
printf 'SELECT work(1);\nSELECT 1;\n  SELECT failing();\nSELECT work(100);\n' >"$W/bad.sql"
run "$PGSCOPE" plprof run -d "$CONN" -f "$W/bad.sql" -o "$W/bad.html"
expect_status 1 "a failing workload exits 1"
expect_err "statement 3 failed at line 3, column 3 of $W/bad.sql: ERROR: division by zero" "error position and message"
grep -q 'public.failing()' "$W/bad.html" || fail "the report of a failed run has the failing function"
grep -q '"errors": 1' "$W/bad.html" || fail "the report counts the error"
printf 'SELECT 1;\nSELECT * FROM no_such_table WHERE x = 1;\n' >"$W/bad2.sql"
run "$PGSCOPE" plprof run -d "$CONN" -f "$W/bad2.sql" -o "$W/bad2.html"
expect_status 1 "a syntax-level error exits 1"
expect_err "line 2, column 15" "the server's error position is mapped to the file"
printf 'SELECT $$unterminated;\n' >"$W/bad3.sql"
run "$PGSCOPE" plprof run -d "$CONN" -f "$W/bad3.sql"
expect_status 1 "unterminated dollar quote"
expect_err "unterminated quote, dollar quote or comment starting at line 1" "unterminated quote is reported"

# ---- datasets
run "$PGSCOPE" plprof list -d "$CONN"
expect_status 0 "list"
grep -q '^ds1 .*CLI run' "$W/out" || { cat "$W/out"; fail "list shows ds1 with its title"; }
run "$PGSCOPE" plprof show ds1 -d "$CONN"
expect_status 0 "show"
grep -q 'public.leaf(integer)' "$W/out" || fail "show lists functions"
run "$PGSCOPE" plprof report --name ds1 -d "$CONN" -o "$W/ds1.html"
expect_status 0 "report --name"
grep -q 'public.work(integer)' "$W/ds1.html" || fail "dataset report content"
run "$PGSCOPE" plprof export ds1 -d "$CONN" -o "$W/ds1.json"
expect_status 0 "export"
q "DROP FUNCTION leaf(int) CASCADE"
run "$PGSCOPE" plprof delete ds1 -d "$CONN"
expect_status 0 "delete"
run "$PGSCOPE" plprof import "$W/ds1.json" -d "$CONN"
expect_status 0 "import"
run "$PGSCOPE" plprof export ds1 -d "$CONN" -o "$W/ds1-again.json"
expect_status 0 "export after import"
cmp -s "$W/ds1.json" "$W/ds1-again.json" || { diff <(head -c 600 "$W/ds1.json") <(head -c 600 "$W/ds1-again.json"); fail "export/import/export is not exact"; }
echo "ok: export, import, export round-trips byte for byte (functions dropped meanwhile)"
run "$PGSCOPE" plprof report --name ds1 -d "$CONN" --format folded
grep -q 'public.leaf(integer)' "$W/out" || fail "a dataset survives dropping its functions"
echo "ok: the dataset still names the dropped function"
run "$PGSCOPE" plprof import "$W/ds1.json" -d "$CONN"
expect_status 1 "import over an existing dataset"
expect_err "exists" "import says the dataset exists"
run "$PGSCOPE" plprof import "$W/ds1.json" --name ds2 -d "$CONN"
expect_status 0 "import --name"
run "$PGSCOPE" plprof import "$W/ds1.json" --replace -d "$CONN"
expect_status 0 "import --replace"
echo '{"format": "something else"}' >"$W/junk.json"
run "$PGSCOPE" plprof import "$W/junk.json" -d "$CONN"
expect_status 1 "import of a foreign document"
expect_err "not a pgscope profile document" "import explains"
echo '{"format": "pgscope-pro' >"$W/trunc.json"
run "$PGSCOPE" plprof import "$W/trunc.json" -d "$CONN"
expect_status 1 "import of a truncated file"
expect_err "invalid input syntax for type json" "import reports the JSON error"
run "$PGSCOPE" plprof report --name nope -d "$CONN"
expect_status 1 "unknown dataset"
expect_err 'unknown dataset "nope"' "unknown dataset message"
run "$PGSCOPE" plprof delete nope -d "$CONN"
expect_status 1 "delete of an unknown dataset"

# ---- monitor: another session's calls over a window
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE FUNCTION mwork(n int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN n * 2; END \$\$"
( for _ in $(seq 1 40); do echo "SELECT mwork(1);"; echo "SELECT pg_sleep(0.1);"; done ) | psql -X -q >/dev/null 2>&1 &
load=$!
run "$PGSCOPE" plprof monitor --all --duration 2 -d "$CONN" -o "$W/mon.html" --save mon1
expect_status 0 "monitor --all --duration 2"
grep -q 'public.mwork(integer)' "$W/mon.html" || fail "monitor saw the other session's calls"
expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" f "monitor switched profiling off"
wait "$load" || true

# Ctrl-C and SIGTERM: profiling is off afterwards, the report is whole
for sig in INT TERM; do
  "$PGSCOPE" plprof monitor --all --duration 60 -d "$CONN" -o "$W/sig-$sig.html" 2>"$W/err" &
  mon=$!
  wait_until 50 0.1 sql_is "SELECT global_enabled FROM pgscope_status()" t
  expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" t "monitor switched profiling on"
  kill -"$sig" "$mon"
  set +e; wait "$mon"; status=$?; set -e
  expect_status 0 "monitor after SIG$sig"
  expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" f "SIG$sig leaves profiling off"
  grep -q '</html>' "$W/sig-$sig.html" || fail "report after SIG$sig is whole"
done
ls "$W" | grep -q '\.tmp\.' && fail "temporary files were left"

# a lost connection: the monitor reconnects and switches profiling off
"$PGSCOPE" plprof monitor --all --duration 60 -d "$CONN" -o "$W/lost.html" 2>"$W/err" &
mon=$!
wait_until 50 0.1 sql_is "SELECT global_enabled FROM pgscope_status()" t
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgscope plprof monitor'" >/dev/null
set +e; wait "$mon"; status=$?; set -e
expect_status 1 "monitor whose connection was killed"
expect_err "lost the connection to the server after" "says the connection was lost"
expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" f "profiling is off after the lost connection"
grep -q '</html>' "$W/lost.html" || fail "the report after a lost connection is whole"

run "$PGSCOPE" plprof monitor --pid 999999 --duration 1 -d "$CONN"
expect_status 1 "monitor of a pid that is not a backend"
expect_err "no backend with pid 999999" "monitor explains the pid"

# ---- bad flags: usage errors exit 2 with one line
for args in "plprof run" "plprof run -c x -f y" "plprof run -c 'SELECT 1' --top abc" \
            "plprof run -c 'SELECT 1' --format xml" "plprof monitor --all" "plprof monitor --duration 1" \
            "plprof monitor --all --pid 3 --duration 1" "plprof monitor --all --duration -1" "plprof bogus" \
            "plprof export" "plprof list extra" "plprof run -c 'SELECT 1' --pid 3" "bogus" "plprof run -c"; do
  eval "run \"\$PGSCOPE\" $args"
  expect_status 2 "usage error: pgscope $args"
  [ "$(wc -l <"$W/err")" = 1 ] || { cat "$W/err"; fail "one line for: $args"; }
done

# the tracers' options: exit 2, one line that names what is wrong (an unknown letter is not a missing value)
for spec in 'queries -x|unknown option "-x"' 'queries --min-ms|option needs a value: "--min-ms"' \
            'lwlocks -i 0|-i takes seconds from 0.1' 'latency --by foo|--by takes query, database or user, not "foo"' \
            'io --by x|--by takes relation, backend or query' 'locks --holders-after -1|--holders-after takes milliseconds' \
            'wal extra|unexpected argument "extra"' 'net --dbname|option needs a value: "--dbname"' \
            'locks --dot /nonexistent/x.dot|cannot write --dot /nonexistent/x.dot'; do
  args=${spec%%|*}
  run "$PGSCOPE" $args
  case $spec in *"cannot write"*) want=1 ;; *) want=2 ;; esac   # (a file we cannot write is a runtime error)
  expect_status "$want" "pgscope $args"
  expect_err "${spec#*|}" "pgscope $args says what is wrong"
  [ "$(wc -l <"$W/err")" = 1 ] || { cat "$W/err"; fail "one line for: $args"; }
done

# ---- bad connections and missing pieces: runtime errors exit 1 with one line
run "$PGSCOPE" plprof list -d "host=127.0.0.1 port=1 user=postgres connect_timeout=2"
expect_status 1 "unreachable server"
expect_err "cannot connect to server" "unreachable server message"
run "$PGSCOPE" plprof list -d "host=127.0.0.1 port=$PGPORT nosuchoption=1"
expect_status 1 "bad conninfo"
expect_err 'invalid connection option "nosuchoption"' "bad conninfo message"
run "$PGSCOPE" plprof list -d "postgresql://postgres@127.0.0.1:$PGPORT/nosuchdb"
expect_status 1 "unknown database in a URI"
expect_err 'database "nosuchdb" does not exist' "unknown database message"
q "CREATE DATABASE noext"
run "$PGSCOPE" plprof run -d "postgresql://postgres@127.0.0.1:$PGPORT/noext" -c "SELECT 1"
expect_status 1 "database without the extension"
expect_err "run CREATE EXTENSION pgscope" "says to create the extension"
run env PGHOST=127.0.0.1 PGPORT="$PGPORT" PGUSER=postgres PGDATABASE=postgres "$PGSCOPE" plprof list
expect_status 0 "PG* environment variables are honoured"
q "CREATE ROLE alice LOGIN"
run "$PGSCOPE" plprof monitor --all --duration 1 -h 127.0.0.1 -p "$PGPORT" -U alice -d postgres
expect_status 1 "monitor without privileges"
expect_err "permission denied" "permission denied is said"
expect_eq "$(q "SELECT global_enabled FROM pgscope_status()")" f "nothing was left enabled"
run "$PGSCOPE" plprof save x -h 127.0.0.1 -p "$PGPORT" -U alice -d postgres
expect_status 1 "save without privileges"

# ---- pgscope cluster never removes a directory it did not make
mkdir -p "$W/precious"; echo keep >"$W/precious/file"
run "$PGSCOPE" cluster stop "$W/precious"
expect_status 2 "cluster stop of a directory that is not a throwaway cluster"
[ -f "$W/precious/file" ] || fail "cluster stop removed a directory it did not make"
echo "ok: the directory and its file are untouched"

# ---- the report in a real browser
"$ROOT/build/report_check" "$W/run.html" "$ROOT/build/report-screenshot.png" \
  "public.work(integer)" "leaf" "public.work(integer)" "public.leaf(integer)" "public.batch()" ||
  fail "browser checks of the report"

# ---- a server without the library preloaded
stop_clusters
start_cluster
q "CREATE EXTENSION pgscope"
run "$PGSCOPE" plprof monitor --all --duration 1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres
expect_status 1 "monitor without shared_preload_libraries"
expect_err "add pgscope to shared_preload_libraries" "says to preload the library"
run "$PGSCOPE" plprof run -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "DO \$\$ BEGIN PERFORM 1; END \$\$" --format folded
expect_status 0 "run works without preload (session profiling)"
grep -q '^DO block' "$W/out" || fail "a DO block shows in the folded output"
echo "ok: DO block profiled without preload"
