-- One query per line; the plans are in plans.golden.
SELECT * FROM trades
SELECT symbol, price FROM trades WHERE price > 100
SELECT t.symbol AS s, t.price * t.quantity AS notional FROM trades AS t WHERE t.symbol IN ('AAPL', 'MSFT') AND t.quantity BETWEEN 10 AND 100
SELECT upper(symbol), date_trunc('minute', ts), EXTRACT(hour FROM ts), CAST(price AS double) FROM trades
SELECT CASE WHEN quantity >= 900 THEN 'block' WHEN quantity >= 100 THEN 'round' ELSE 'odd' END AS lot FROM trades WHERE NOT active OR note IS NULL
SELECT symbol FROM trades WHERE ts >= '2024-01-02 09:30:00' AND ts < TIMESTAMP '2024-01-02' + INTERVAL '1' DAY
SELECT coalesce(note, 'none') AS note, greatest(price, 1.5), round(price, 2) AS p2, price / 3 AS third FROM trades
SELECT 1 + 2 * 3 AS folded, 'a' || 'b' AS s FROM trades
SELECT symbol FROM trades WHERE symbol LIKE 'A%' AND note NOT ILIKE '%test%'
SELECT sum(price) FROM trades GROUP BY symbol
SELECT symbol, count(*) AS n, sum(price) AS volume, last_value(price) AS last FROM trades WHERE quantity > 10 GROUP BY symbol EMIT CHANGES
SELECT count(*) AS n FROM trades
SELECT date_trunc('hour', ts) AS hour, upper(symbol), count(*) FILTER (WHERE price > 100) AS big, count(DISTINCT quantity) FILTER (WHERE active) AS sizes, count(*) AS n FROM trades GROUP BY date_trunc('hour', ts), upper(symbol)
SELECT nope, price + 'x' FROM trades WHERE symbol
SELECT window_start, window_end, symbol, count(*) AS n, sum(price) AS volume, avg(price) AS avg_price FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE quantity > 10 GROUP BY window_start, window_end, symbol HAVING count(*) > 2
SELECT window_end, symbol, max(price) - min(price) AS spread, count(DISTINCT quantity) AS sizes, stddev(price), first_value(price), last_value(price) FROM HOP(trades, ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) GROUP BY window_start, window_end, symbol EMIT CHANGES
SELECT window_start, window_end, symbol, count(*) FROM SESSION(trades, ts, INTERVAL '30' SECOND) AS t GROUP BY window_start, window_end, t.symbol
SELECT symbol, ts, avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '15' MINUTE PRECEDING AND CURRENT ROW) AS ma15, max(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS hi10 FROM trades WHERE active
-- A window top-N: the symbols of each minute with the most trades, ties kept.
SELECT symbol, n, ws FROM (SELECT symbol, n, ws, RANK() OVER (PARTITION BY ws, we ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 3 AND n > 1
-- Of each hop window's symbols, the two of the highest total, with WITH queries and the rank selected.
WITH t AS (SELECT symbol, ts, price FROM trades WHERE active), s AS (SELECT window_start, window_end, symbol, sum(price) AS total FROM HOP(t, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol), r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_end ORDER BY total DESC NULLS LAST, symbol) AS rn FROM s) SELECT * FROM r WHERE rn < 3
-- A window top-N of a source's rows: each symbol's two largest trades of each minute, from a WITH query.
WITH big AS (SELECT symbol, price * quantity AS notional, ts FROM trades WHERE quantity > 0) SELECT window_end, symbol, notional FROM (SELECT *, DENSE_RANK() OVER (PARTITION BY window_start, window_end, symbol ORDER BY notional DESC) AS r FROM TUMBLE(big, ts, INTERVAL '1' MINUTE) WHERE notional > 10) t WHERE r <= 2
-- A top-N without a window, a changelog: each symbol's latest trade, and each's three largest of the active, from a subquery.
SELECT symbol, price, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) t WHERE r = 1
SELECT r, s, q FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY s ORDER BY q DESC NULLS LAST) AS r FROM (SELECT upper(symbol) AS s, quantity AS q FROM trades WHERE active) a) t WHERE r <= 3
