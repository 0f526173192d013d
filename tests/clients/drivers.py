#!/usr/bin/python3
# What two Python drivers packaged by Debian send, for t_clients.sh: CONNINFO,
# a marker prefix P and a type T; every statement carries an alias
# "AS P<kind>" that the test counts in the tracer's output, and has a shape of
# its own to pg_stat_statements (which ignores aliases: runs with another T
# are other statements to it).
#   psycopg 3 (python3-psycopg): executemany of 100 rows (a pipeline: one Parse,
#     then Bind/Execute per row and one Sync), 20 executions of one query
#     (server-side prepared from the 6th on: psycopg's prepare_threshold), and a
#     batch whose 3rd of 6 rows fails (the rest of the pipeline is skipped).
#   psycopg2 (python3-psycopg2): execute_batch of 50 (multi-statement simple
#     Queries of 10), and 10 single executions.
# (a fixture: run with Debian's /usr/bin/python3, whose packages these are)
import sys

import psycopg
import psycopg2
import psycopg2.extras

conninfo, p, t = sys.argv[1], sys.argv[2], sys.argv[3]

with psycopg.connect(conninfo, autocommit=True) as conn:
    conn.execute("CREATE TEMP TABLE drv (a int)")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO drv SELECT %s::{t} AS {p}3_batch", [(i,) for i in range(100)])
    for i in range(20):
        row = conn.execute(f"SELECT %s::{t} + 1 AS {p}3_fetch", (i,)).fetchone()
        assert row[0] == i + 1
    # a failing row inside a batch: two executed, the third errors, the rest skipped
    try:
        with conn.cursor() as cur:
            cur.executemany(f"SELECT 1 / %s::{t} AS {p}3_fail", [(1,), (1,), (0,), (1,), (1,), (1,)])
        sys.exit("the failing batch did not fail")
    except psycopg.errors.DivisionByZero:
        pass
    # the connection is usable afterwards
    assert conn.execute(f"SELECT 2::{t} - 1 AS {p}3_after").fetchone()[0] == 1

conn = psycopg2.connect(conninfo)
conn.autocommit = True
with conn.cursor() as cur:
    psycopg2.extras.execute_batch(cur, f"SELECT %s::{t}, 'b' AS {p}2_batch", [(i,) for i in range(50)], page_size=10)
    for i in range(10):
        cur.execute(f"SELECT %s::{t} * 2 AS {p}2_one", (i,))
        assert cur.fetchone()[0] == i * 2
conn.close()
