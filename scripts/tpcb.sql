-- The TPC-B-style PL/pgSQL workload of the demo: one function per step, and
-- an accounts table whose primary key (category, aid) makes a lookup by aid
-- alone scan the whole index.
ALTER TABLE pgbench_accounts DROP CONSTRAINT pgbench_accounts_pkey;
ALTER TABLE pgbench_accounts ADD COLUMN category int NOT NULL DEFAULT 1;
ALTER TABLE pgbench_accounts ADD PRIMARY KEY (category, aid);
VACUUM ANALYZE pgbench_accounts;
CREATE EXTENSION IF NOT EXISTS pgscope;

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
