#!/usr/bin/env bash
# pgscope profile on throwaway clusters.  First without the extension: two
# backends busy on CPU, one in a PL/pgSQL function whose one line computes
# logarithms of numerics, one sorting, sampled for 3 s.  Each backend's
# samples land under its own normalized query, the computing one's with
# numeric_ln beneath (80% at least) and no PL/pgSQL frame, the sorting one's
# with tuplesort frames and no numeric_ln frame; the samples per backend agree
# with the CPU time the kernel charged it (/proc/PID/stat) over the same
# window; --pid of one backend samples it alone; folded lines are well formed,
# the JSON and the HTML report hold the same stacks; bad options exit 2;
# nothing stays attached after the tracer ends.  Then with pgscope preloaded:
# 80% of the function's samples fall under its line's frame (outer function
# line, then the busy line) with numeric_ln beneath, the plain query's have no
# PL/pgSQL frame.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

busy=()
stop_busy() { for b in "${busy[@]}"; do kill "$b" 2>/dev/null || true; done; for b in "${busy[@]}"; do wait "$b" 2>/dev/null || true; done; cleanup; }
trap stop_busy EXIT

FUNCS="CREATE FUNCTION busy(n int) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
  s numeric := 0;
  x int := 0;
BEGIN
  FOR i IN 1..n LOOP
    x := x + 1;
    s := s + ln(i::numeric);
    x := x - 1;
  END LOOP;
  RETURN s;
END \$\$;
CREATE FUNCTION outer_f(n int) RETURNS numeric LANGUAGE plpgsql AS \$\$
BEGIN
  RETURN busy(n);
END \$\$;"
start_cluster
PM=$(pm_pid)
q "$FUNCS"
pid_map_start "$PM"
HZ=99

# bad options: usage errors before anything is attached
for bad in "--hz 0" "--hz x" "--format svg" "--format html" "--duration"; do
  set +e; "$PGSCOPE" profile --pid "$PM" $bad >/dev/null 2>"$WORK/bad.err"; rc=$?; set -e
  [ "$rc" = 2 ] || { cat "$WORK/bad.err"; fail "profile $bad: exit $rc, expected 2"; }
  [ "$(wc -l <"$WORK/bad.err")" = 1 ] || { cat "$WORK/bad.err"; fail "profile $bad: not one line"; }
done
echo "ok: bad options exit 2 with one line"

COMP_Q="SELECT busy(5000000) AS computing"
SORT_Q="SELECT count(*) AS sorting FROM (SELECT random() AS r FROM generate_series(1, 15000000) ORDER BY 1) s"
psql -X -q -c "SET statement_timeout = '60s'" -c "$COMP_Q" >/dev/null 2>&1 & busy+=($!)
psql -X -q -c "SET statement_timeout = '60s'" -c "$SORT_Q" >/dev/null 2>&1 & busy+=($!)
for _ in $(seq 1 100); do
  [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (query LIKE 'SELECT % AS computing%' OR query LIKE 'SELECT % AS sorting%')")" = 2 ] && break
  sleep 0.1
done
COMP_PID=$(host_pid "$(q "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'SELECT % AS computing%'")")
SORT_PID=$(host_pid "$(q "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'SELECT % AS sorting%'")")
[ -n "$COMP_PID" ] && [ -n "$SORT_PID" ] || fail "the busy backends did not start"
sleep 0.5
# CPU time the kernel charged a process, in clock ticks (utime + stime)
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

start_tracer "$WORK/all.folded" profile --pid "$PM" --hz "$HZ" --duration 3
h0=$(ticks "$COMP_PID"); s0=$(ticks "$SORT_PID")
wait "$TRACER" || { cat "$WORK/all.folded.err"; fail "profile exited $?"; }
h1=$(ticks "$COMP_PID"); s1=$(ticks "$SORT_PID")
cat "$WORK/all.folded.err"

# folded: "frame;frame;... count", one stack a line
awk '$NF !~ /^[0-9]+$/ || NF < 2 { bad++ } END { exit bad > 0 }' "$WORK/all.folded" || fail "malformed folded lines"
awk -F';' '{ print $1 }' "$WORK/all.folded" | sort -u >"$WORK/queries"
grep -qx "SELECT busy(\$1) AS computing" "$WORK/queries" ||
  fail "no samples under the computing query: $(head -5 "$WORK/queries")"
grep -qx "SELECT count(\*) AS sorting FROM (SELECT random() AS r FROM generate_series(\$1, \$2) ORDER BY \$3) s" "$WORK/queries" ||
  fail "no samples under the sorting query: $(head -5 "$WORK/queries")"
# per query: samples, and how many of them have a frame matching a pattern
share() {   # query-prefix frame-regex [folded file]
  awk -v q="$1" -v f="$2" '{ n = $NF; split($0, a, ";"); if (index(a[1], q) == 1) { t += n; if ($0 ~ f) m += n } }
    END { printf "%d %d\n", t, m }' "${3:-$WORK/all.folded}"
}
read -r ht hm < <(share "SELECT busy(" ";numeric_ln[; ]")
read -r _ hp < <(share "SELECT busy(" "\\(integer\\):[0-9]+;")
read -r st sm < <(share "SELECT count(*) AS sorting" ";tuplesort_")
read -r _ sx < <(share "SELECT count(*) AS sorting" "numeric_ln")
echo "computing: $ht samples, $hm under numeric_ln; sorting: $st samples, $sm under tuplesort_*, $sx with numeric_ln"
holds 't > 0 && m >= 0.8 * t' t="$ht" m="$hm" || fail "the computing query's samples are not under numeric_ln"
holds 't > 0 && m >= 0.2 * t' t="$st" m="$sm" || fail "the sorting query's samples show no tuplesort frames"
expect_eq "$sx" 0 "no numeric_ln frame under the sorting query"
expect_eq "$hp" 0 "no PL/pgSQL frame without the extension"
# a static function of the stripped server is one frame, named by its start: every postgres+0x... frame is
# the start of a function in the binary's unwind tables, as binutils' readelf lists them
readelf --debug-dump=frames "$(readlink "/proc/$PM/exe")" 2>/dev/null |
  sed -n 's/.* FDE cie=[0-9a-f]* pc=0*\([0-9a-f]*\)\.\..*/\1/p' | sort -u >"$WORK/fde_starts"
[ -s "$WORK/fde_starts" ] || fail "readelf lists no FDE of the server binary"
tr ';' '\n' <"$WORK/all.folded" | sed -n 's/^postgres+0x\([0-9a-f]*\)\( [0-9]*\)\{0,1\}$/\1/p' | sort -u >"$WORK/static_frames"
[ -s "$WORK/static_frames" ] || fail "no frame in a static function of the server"
expect_eq "$(comm -23 "$WORK/static_frames" "$WORK/fde_starts" | wc -l)" 0 \
  "every postgres+0x frame is a function start ($(wc -l <"$WORK/static_frames") of them)"
grep -q "no PL/pgSQL frames: database postgres has no pgscope_instrument()" "$WORK/all.folded.err" ||
  fail "no word of the missing PL/pgSQL frames: $(cat "$WORK/all.folded.err")"
# the samples per backend against the CPU time the kernel charged it: within 25% (+3 samples)
tck=$(getconf CLK_TCK)
for b in "computing:$ht:$((h1 - h0))" "sorting:$st:$((s1 - s0))"; do
  IFS=: read -r name got cpu <<<"$b"
  awk -v g="$got" -v c="$cpu" -v hz="$HZ" -v tck="$tck" 'BEGIN { e = c / tck * hz; d = g - e; if (d < 0) d = -d
      exit !(d <= 0.25 * e + 3) }' || fail "$name: $got samples, the kernel charged $cpu ticks (${HZ} Hz, $tck ticks/s)"
  echo "ok: $name: $got samples at $HZ Hz for $cpu ticks of CPU time ($tck/s)"
done

# --pid of one backend: its samples alone; JSON with the same shape
start_tracer "$WORK/one.json" profile --pid "$COMP_PID" --hz "$HZ" --duration 2 --format json
wait "$TRACER" || { cat "$WORK/one.json.err"; fail "profile --pid backend exited $?"; }
cp "$WORK/one.json" "$WORK/one.json.txt"
n=$(echo "SELECT count(DISTINCT s->'stack'->>0) || ' ' || sum((s->>'samples')::int) || ' ' || (:'doc'::jsonb->>'total')
          FROM jsonb_array_elements(:'doc'::jsonb->'stacks') s" | psql -X -qAt -v doc="$(cat "$WORK/one.json")")
read -r nq nsum ntotal <<<"$n"
expect_eq "$nq" 1 "--pid of a backend: one query"
expect_eq "$nsum" "$ntotal" "the stacks' samples add up to the total"
holds 'n >= 100' n="$nsum" || fail "--pid of a busy backend for 2 s: only $nsum samples"

# -d: the backends of one database alone (here one where nothing runs); an unknown one is a usage error
q "CREATE DATABASE quietdb"
start_tracer "$WORK/db.folded" profile --pid "$PM" -d quietdb --duration 1
wait "$TRACER" || { cat "$WORK/db.folded.err"; fail "profile -d exited $?"; }
grep -q ": 0 samples in 0 stacks" "$WORK/db.folded.err" || fail "-d quietdb sampled others: $(tail -1 "$WORK/db.folded.err")"
[ ! -s "$WORK/db.folded" ] || fail "-d quietdb printed stacks"
set +e; "$PGSCOPE" profile --pid "$PM" -d nosuchdb --duration 1 >/dev/null 2>"$WORK/nodb.err"; rc=$?; set -e
expect_eq "$rc" 2 "-d of a database that does not exist"

# the HTML report: the flame graph's document holds the stacks
start_tracer "$WORK/r.out" profile --pid "$PM" --duration 1 --format html -o "$WORK/report.html"
wait "$TRACER" || { cat "$WORK/r.out.err"; fail "profile --format html exited $?"; }
grep -q '"format":"pgscope-profile"' "$WORK/report.html" || fail "no profile document in the report"
grep -q 'AS computing' "$WORK/report.html" || fail "the report lacks the computing query"
expect_eq "$(bpftool prog show 2>/dev/null | grep -c 'on_sample' || true)" 0 "no sampler stays attached"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'SELECT % AS %ing%'" >/dev/null

# ---- pgscope preloaded: the PL/pgSQL frames (function:line) between the query and the native frames
start_cluster "shared_preload_libraries = 'pgscope'"
PM=$(pm_pid)
q "CREATE EXTENSION pgscope"
q "$FUNCS"
start_tracer "$WORK/pl.folded" profile --pid "$PM" --hz "$HZ" --duration 3
psql -X -q -c "SET statement_timeout = '20s'" -c "SELECT outer_f(2000000) AS in_plpgsql" >/dev/null 2>&1 & busy+=($!)
psql -X -q -c "SET statement_timeout = '20s'" -c "$SORT_Q" >/dev/null 2>&1 & busy+=($!)
wait "$TRACER" || { cat "$WORK/pl.folded.err"; fail "profile (with pgscope) exited $?"; }
cat "$WORK/pl.folded.err"
plshare() { share "$1" "$2" "$WORK/pl.folded"; }
read -r pt pl < <(plshare "SELECT outer_f(" "^[^;]*;outer_f\\(integer\\):3;busy\\(integer\\):8;")
read -r _ pn < <(plshare "SELECT outer_f(" "^[^;]*;outer_f\\(integer\\):3;busy\\(integer\\):8;.*;numeric_ln[; ]")
read -r qt qp < <(plshare "SELECT count(*) AS sorting" "\\(integer\\):[0-9]+;")
echo "in_plpgsql: $pt samples, $pl under outer_f:3;busy:8, $pn of them with numeric_ln beneath; sorting: $qt, $qp with PL/pgSQL frames"
holds 't >= 50 && m >= 0.8 * t' t="$pt" m="$pl" || fail "the busy line's frame holds $pl of $pt samples"
holds 'm >= 0.8 * t' t="$pl" m="$pn" || fail "numeric_ln under the busy line: $pn of $pl"
expect_eq "$qp" 0 "no PL/pgSQL frame under the plain query"
[ "$qt" -gt 0 ] || fail "no samples under the plain query"
grep -q "cannot end the frames lease" "$WORK/pl.folded.err" && fail "the lease was not ended"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ~ '^SELECT .* AS (sorting|in_plpgsql)'" >/dev/null

# the HTML report in headless Chromium: query, line and native frames, click-to-zoom, search, grouping by line
start_tracer "$WORK/rep.out" profile --pid "$PM" --duration 2 --format html -o "$WORK/pl.html"
psql -X -q -c "SELECT outer_f(700000) AS in_report" >/dev/null
wait "$TRACER" || { cat "$WORK/rep.out.err"; fail "profile --format html exited $?"; }
REPORT_GROUP="line=outer_f(integer):3" "$ROOT/build/report_check" "$WORK/pl.html" "$ROOT/build/profile-screenshot.png" \
  "busy(integer):8" "numeric_ln" "SELECT outer_f(\$1) AS in_report" "outer_f(integer):3" "busy(integer):8" "numeric_ln" ||
  fail "browser checks of the profile report"

# ---- --off-cpu: a function's pg_sleep lines under Timeout, its UPDATE's row-lock wait under Lock, as the
# server logs the wait (log_lock_waits)
q "CREATE TABLE acct (id int PRIMARY KEY, v int); INSERT INTO acct VALUES (1, 0)"
q "CREATE FUNCTION waits() RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
  PERFORM pg_sleep(0.2);
  PERFORM pg_sleep(0.3);
  UPDATE acct SET v = v + 1 WHERE id = 1;
END \$\$"
start_tracer "$WORK/off.folded" profile --pid "$PM" --off-cpu --duration 3
psql -X -q -c "BEGIN" -c "UPDATE acct SET v = 5 WHERE id = 1" -c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null & busy+=($!)
sleep 0.2
# the wait as the server names it (17 and later: the profile names it so too; 15: by number)
sleeping=$(q "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1.5)'")
if [ "$(pg_major)" -ge 17 ]; then tw="[$sleeping]"; else tw="[Timeout#"; fi
psql -X -q -c "SET deadlock_timeout = '100ms'" -c "SET log_lock_waits = on" -c "SELECT waits()" >/dev/null
wait "$TRACER" || { cat "$WORK/off.folded.err"; fail "profile --off-cpu exited $?"; }
cat "$WORK/off.folded.err"
offtime() {   # the microseconds of the stacks starting with a prefix
  awk -v q="$1" 'index($0, q) == 1 { t += $NF } END { printf "%d\n", t }' "$WORK/off.folded"
}
t3=$(offtime "SELECT waits();waits():3;$tw")
t4=$(offtime "SELECT waits();waits():4;$tw")
t5=$(offtime "SELECT waits();waits():5;[Lock:transactionid];")
logged=$(sed -n 's/.*process [0-9]* acquired ShareLock on transaction [0-9]* after \([0-9.]*\) ms.*/\1/p' "$PGDIR/server.log" | tail -1)
echo "off-CPU: line 3 $t3 us, line 4 $t4 us under $tw (the server: $sleeping); line 5 $t5 us under Lock:transactionid (server: ${logged:-nothing} ms)"
holds 't >= 195000 && t <= 260000' t="$t3" || fail "pg_sleep(0.2)'s line: $t3 us under $tw: $(grep -o 'waits():3;[^;]*' "$WORK/off.folded" | sort -u)"
holds 't >= 295000 && t <= 360000' t="$t4" || fail "pg_sleep(0.3)'s line: $t4 us under Timeout"
# the background writer sleeps in an Activity wait: named on 17 and later as pg_stat_activity names it
if [ "$(pg_major)" -ge 17 ]; then
  for _ in $(seq 1 20); do
    bgw=$(q "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE backend_type = 'background writer'")
    [ -n "$bgw" ] && break; sleep 0.1
  done
  grep -qF "[$bgw]" "$WORK/off.folded" ||
    fail "no time under [$bgw]: $(grep -o ';\[[A-Za-z]*[:#][^]]*\]' "$WORK/off.folded" | sort -u | head)"
  echo "ok: the background writer's time under [$bgw], as pg_stat_activity names its wait"
fi
[ -n "$logged" ] || fail "the server logged no lock wait"
awk -v t="$t5" -v l="$logged" 'BEGIN { d = t / 1000 - l; if (d < 0) d = -d; exit !(d <= 50 || d <= 0.1 * l) }' ||
  fail "the UPDATE's line waited $t5 us under Lock:transactionid, the server logged $logged ms; its stacks:
$(awk '{ n = split($0, f, ";"); if (n >= 3) t[f[1] ";" f[2] ";" f[3]] += $NF } END { for (k in t) print k, t[k], "us" }' "$WORK/off.folded" | sort)
the tracer: $(cat "$WORK/off.folded.err")"
echo "ok: profile"
