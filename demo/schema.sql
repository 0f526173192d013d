-- pgscope demo: pgbench-style tables (50 branches' worth of tellers and
-- 300,000 accounts), with no index on the accounts' aid: a lookup by aid
-- scans the table.  (An index on (category, aid) with one category would no
-- longer do: PostgreSQL 18's B-tree skip scan makes that lookup fast.)
CREATE EXTENSION IF NOT EXISTS pgscope;
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int NOT NULL DEFAULT 0, filler char(88));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL DEFAULT 0, filler char(84));
CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int NOT NULL, abalance int NOT NULL DEFAULT 0,
                               filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
INSERT INTO pgbench_branches (bid) SELECT g FROM generate_series(1, 5) g;
INSERT INTO pgbench_tellers (tid, bid) SELECT g, (g - 1) / 10 + 1 FROM generate_series(1, 50) g;
INSERT INTO pgbench_accounts (aid, bid) SELECT g, (g - 1) / 60000 + 1 FROM generate_series(1, 300000) g;
ANALYZE;
CREATE FUNCTION tpcb_fetch_abalance(p_aid int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  balance int;
BEGIN
  SELECT abalance INTO balance FROM pgbench_accounts WHERE aid = p_aid;
  RETURN balance;
END $$;

CREATE FUNCTION tpcb_upd_accounts(p_aid int, p_delta int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  UPDATE pgbench_accounts SET abalance = abalance + p_delta WHERE aid = p_aid;
  RETURN tpcb_fetch_abalance(p_aid);
END $$;

CREATE FUNCTION tpcb_upd_tellers(p_tid int, p_delta int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE pgbench_tellers SET tbalance = tbalance + p_delta WHERE tid = p_tid;
END $$;

CREATE FUNCTION tpcb_upd_branches(p_bid int, p_delta int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE pgbench_branches SET bbalance = bbalance + p_delta WHERE bid = p_bid;
END $$;

CREATE FUNCTION tpcb_ins_history(p_aid int, p_tid int, p_bid int, p_delta int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
  VALUES (p_tid, p_bid, p_aid, p_delta, now());
END $$;

CREATE FUNCTION tpcb(p_aid int, p_bid int, p_tid int, p_delta int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  balance int;
BEGIN
  balance := tpcb_upd_accounts(p_aid, p_delta);
  PERFORM tpcb_upd_tellers(p_tid, p_delta);
  PERFORM tpcb_upd_branches(p_bid, p_delta);
  PERFORM tpcb_ins_history(p_aid, p_tid, p_bid, p_delta);
  RETURN balance;
END $$;
