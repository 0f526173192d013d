#!/usr/bin/env bash
# With Debian's plpgsql_check loaded first and pgscope second, both profile
# the same calls: pgscope forwards every callback to the plugin it replaced.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_cluster "shared_preload_libraries = 'plpgsql, plpgsql_check, pgscope'"
q "CREATE EXTENSION plpgsql_check"
q "CREATE EXTENSION pgscope"
q "CREATE FUNCTION chained(n int) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE s int := 0;
BEGIN
  FOR i IN 1..n LOOP
    s := s + i;
  END LOOP;
  RETURN s;
END \$\$"
expect_eq "$(q "SELECT plugin_slot_owned, chained_plugin FROM pgscope_status()")" "t|t" "pgscope holds the slot and chains"
psql -X -qAt -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET plpgsql_check.profiler = on;
SELECT pgscope_enable(true);
SELECT chained(10);
SELECT chained(5);
SELECT pgscope_enable(false);
SQL
expect_eq "$(q "SELECT exec_count FROM pgscope_statements() WHERE stmt_type = 'assign'")" "" "local profile is per session (new session: empty)"
# both profiles, same session
out=$(psql -X -qAt -v ON_ERROR_STOP=1 <<'SQL'
SET plpgsql_check.profiler = on;
SELECT plpgsql_profiler_reset_all();
SELECT pgscope_enable(true);
SELECT chained(10);
SELECT chained(5);
SELECT pgscope_enable(false);
SELECT 'pgscope:' || exec_count FROM pgscope_statements() WHERE stmt_type = 'assign' AND line_number = 5;
SELECT 'check:' || (SELECT sum(x) FROM unnest(ARRAY[exec_stmts]::bigint[]) x) FROM plpgsql_profiler_function_tb('chained(int)') WHERE lineno = 5;  -- a number, or (newer plpgsql_check) one per statement of the line
SELECT 'pgscope_calls:' || calls FROM pgscope_functions() WHERE signature = 'public.chained(integer)';
SQL
)
expect_eq "$(echo "$out" | sed -n 's/^pgscope://p')" 15 "pgscope counted the loop body"
expect_eq "$(echo "$out" | sed -n 's/^check://p')" 15 "plpgsql_check counted the same statements"
expect_eq "$(echo "$out" | sed -n 's/^pgscope_calls://p')" 2 "pgscope counted both calls"

# the other order: plpgsql_check loaded after pgscope takes the slot, and
# pgscope says so when profiling is switched on
stop_clusters
start_cluster "shared_preload_libraries = 'plpgsql, pgscope, plpgsql_check'"
q "CREATE EXTENSION pgscope"
expect_eq "$(q "SELECT plugin_slot_owned FROM pgscope_status()")" f "slot taken by the later module is reported"
warn=$(psql -X -qAt -c "SELECT pgscope_enable(true)" 2>&1 >/dev/null)
echo "$warn" | grep -q "another PL/pgSQL plugin was loaded after pgscope" || fail "no WARNING when enabling: $warn"
echo "ok: WARNING when enabling with the slot taken"
