-- pgscope demo workload: 300 TPC-B transactions with reproducible random ids.
SELECT setseed(0.42);
SELECT count(tpcb(1 + (random() * 299999)::int, 1 + (random() * 4)::int,
                  1 + (random() * 49)::int, (random() * 10000)::int - 5000))
  FROM generate_series(1, 300);
