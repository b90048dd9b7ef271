package sql_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
)

// windowSides are two windowed GROUP BYs of one window each, of trades and
// of quotes, as a window join's sides.
const windowSides = "(SELECT symbol, window_start AS ws, window_end AS we, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE quantity > 0 GROUP BY symbol, window_start, window_end) T " +
	"JOIN (SELECT symbol, window_start AS ws, max(bid) AS hi FROM TUMBLE(quotes, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end HAVING count(*) > 1) Q "

func TestWindowJoinPlans(t *testing.T) {
	tests := []struct{ query, explain string }{
		{
			"SELECT T.symbol, T.ws, q, hi FROM " + windowSides + "ON T.symbol = Q.symbol AND T.ws = Q.ws WHERE q > 10",
			"Output [symbol string, ws timestamp, q int, hi decimal(10,2)]\n" +
				"  Project t.symbol AS symbol, t.ws AS ws, t.q AS q, q.hi AS hi\n" +
				"    Filter (t.q > 10)\n" +
				"      WindowJoin JOIN ON t.ws = q.ws AND t.symbol = q.symbol\n" +
				"        Project symbol AS symbol, window_start AS ws, window_end AS we, sum(quantity) AS q\n" +
				"          Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE sum(quantity)\n" +
				"            Filter (quantity > 0)\n" +
				"              Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n" +
				"        Project symbol AS symbol, window_start AS ws, max(bid) AS hi\n" +
				"          Filter (count(*) > 1)\n" +
				"            Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE count(*), max(bid)\n" +
				"              Scan quotes [symbol string, bid decimal(10,2), ts timestamp]\n",
		},
		{
			// WITH queries as sides, the rest of ON a condition.
			"WITH t AS (SELECT symbol, window_end, count(*) AS n FROM HOP(trades, ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) GROUP BY symbol, window_start, window_end), " +
				"q AS (SELECT symbol, window_end, count(*) AS n FROM HOP(quotes, ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) GROUP BY symbol, window_start, window_end) " +
				"SELECT t.symbol, t.window_end, t.n AS trades, q.n AS quotes FROM t JOIN q ON t.window_end = q.window_end AND t.symbol = q.symbol AND t.n > q.n",
			"Output [symbol string, window_end timestamp, trades int, quotes int]\n" +
				"  Project t.symbol AS symbol, t.window_end AS window_end, t.n AS trades, q.n AS quotes\n" +
				"    WindowJoin JOIN ON t.window_end = q.window_end AND t.symbol = q.symbol AND (t.n > q.n)\n" +
				"      Project symbol AS symbol, window_end AS window_end, count(*) AS n\n" +
				"        Aggregate HOP(ts, slide 1m0s, size 5m0s) BY symbol COMPUTE count(*)\n" +
				"          Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n" +
				"      Project symbol AS symbol, window_end AS window_end, count(*) AS n\n" +
				"        Aggregate HOP(ts, slide 1m0s, size 5m0s) BY symbol COMPUTE count(*)\n" +
				"          Scan quotes [symbol string, bid decimal(10,2), ts timestamp]\n",
		},
	}
	// A TUMBLE's windows are a HOP's of a slide equal to its size.
	tests = append(tests, struct{ query, explain string }{
		"SELECT T.symbol, T.ws FROM (SELECT symbol, window_start AS ws FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) T " +
			"JOIN (SELECT symbol, window_start AS ws FROM HOP(quotes, ts, INTERVAL '60' SECOND, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) Q ON T.ws = Q.ws",
		"Output [symbol string, ws timestamp]\n" +
			"  Project t.symbol AS symbol, t.ws AS ws\n" +
			"    WindowJoin JOIN ON t.ws = q.ws\n" +
			"      Project symbol AS symbol, window_start AS ws\n" +
			"        Aggregate TUMBLE(ts, 1m0s) BY symbol\n" +
			"          Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n" +
			"      Project symbol AS symbol, window_start AS ws\n" +
			"        Aggregate HOP(ts, slide 1m0s, size 1m0s) BY symbol\n" +
			"          Scan quotes [symbol string, bid decimal(10,2), ts timestamp]\n",
	})
	// Outer window joins.
	for _, kind := range []string{"LEFT JOIN", "RIGHT JOIN", "FULL JOIN"} {
		tests = append(tests, struct{ query, explain string }{
			"SELECT T.symbol, Q.symbol AS quoted, T.ws, Q.hi FROM " + strings.Replace(windowSides, "JOIN", kind, 1) + "ON T.symbol = Q.symbol AND T.ws = Q.ws AND Q.hi > 1",
			"Output [symbol string, quoted string, ws timestamp, hi decimal(10,2)]\n" +
				"  Project t.symbol AS symbol, q.symbol AS quoted, t.ws AS ws, q.hi AS hi\n" +
				"    WindowJoin " + kind + " ON t.ws = q.ws AND t.symbol = q.symbol AND (q.hi > 1)\n" +
				"      Project symbol AS symbol, window_start AS ws, window_end AS we, sum(quantity) AS q\n" +
				"        Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE sum(quantity)\n" +
				"          Filter (quantity > 0)\n" +
				"            Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n" +
				"      Project symbol AS symbol, window_start AS ws, max(bid) AS hi\n" +
				"        Filter (count(*) > 1)\n" +
				"          Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE count(*), max(bid)\n" +
				"            Scan quotes [symbol string, bid decimal(10,2), ts timestamp]\n",
		})
	}
	// Keys of two kinds of numbers widen to one type, or they would never
	// be equal.
	tests = append(tests, struct{ query, explain string }{
		"SELECT T.symbol, T.q, Q.hi FROM " + windowSides + "ON T.q = Q.hi AND T.ws = Q.ws",
		"Output [symbol string, q int, hi decimal(10,2)]\n" +
			"  Project t.symbol AS symbol, t.q AS q, q.hi AS hi\n" +
			"    WindowJoin JOIN ON t.ws = q.ws AND CAST(t.q AS decimal(18,2)) = CAST(q.hi AS decimal(18,2))\n" +
			"      Project symbol AS symbol, window_start AS ws, window_end AS we, sum(quantity) AS q\n" +
			"        Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE sum(quantity)\n" +
			"          Filter (quantity > 0)\n" +
			"            Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n" +
			"      Project symbol AS symbol, window_start AS ws, max(bid) AS hi\n" +
			"        Filter (count(*) > 1)\n" +
			"          Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE count(*), max(bid)\n" +
			"            Scan quotes [symbol string, bid decimal(10,2), ts timestamp]\n",
	})
	for _, tt := range tests {
		n, err := sql.Plan(tt.query, joinCatalog)
		if err != nil {
			t.Errorf("Plan(%q): %v", tt.query, err)
			continue
		}
		if got := plan.Explain(n); got != tt.explain {
			t.Errorf("Plan(%q):\n%s\nwant\n%s", tt.query, got, tt.explain)
		}
	}
}

// TestWindowJoinErrors: what a window join cannot do is refused at its
// place.
func TestWindowJoinErrors(t *testing.T) {
	trades := "(SELECT symbol, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) T"
	tests := []struct {
		query  string
		at     string // the text at the error's offset
		substr string
	}{
		{"SELECT * FROM " + windowSides + "ON T.symbol = Q.symbol", "T.symbol = Q.symbol", "add t.window_start = q.window_start to ON"},
		{"SELECT * FROM " + windowSides + "ON T.symbol = Q.symbol AND T.we = Q.ws", "T.symbol = Q.symbol", "matches the two sides' windows"},
		{"SELECT * FROM " + trades + " JOIN quotes ON T.symbol = quotes.symbol", "quotes ON", "a stream or a subquery without GROUP BY"},
		{"SELECT T.ws FROM " + trades + " LEFT JOIN (SELECT symbol, window_start AS ws FROM TUMBLE(quotes, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) Q USING (ws)", "symbol, window_start AS ws FROM TUMBLE(quotes", "a join needs ON"},
		{"SELECT * FROM " + trades + " JOIN (SELECT symbol, window_start AS ws FROM TUMBLE(quotes, ts, INTERVAL '2' MINUTE) GROUP BY symbol, window_start, window_end) Q ON T.ws = Q.ws", "symbol, window_start AS ws FROM TUMBLE(quotes", "TUMBLE(ts, 1m0s) here is joined with TUMBLE(ts, 2m0s)"},
		{"SELECT * FROM " + trades + " JOIN (SELECT symbol, count(*) AS c FROM quotes GROUP BY symbol) Q ON T.symbol = Q.symbol", "symbol, count(*) AS c", "it has no window"},
		{"SELECT * FROM " + trades + " JOIN (SELECT symbol, window_start AS ws FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) Q ON T.ws = Q.ws", "symbol, window_start AS ws FROM TUMBLE(trades", "of a source with itself"},
		{"SELECT T.symbol, count(*) FROM " + windowSides + "ON T.ws = Q.ws GROUP BY T.symbol", "T.symbol, count(*)", "not aggregated, ranked or made DISTINCT again yet"},
		{"SELECT T.symbol, sum(q) OVER (PARTITION BY T.symbol ORDER BY T.ws) FROM " + windowSides + "ON T.ws = Q.ws", "sum(q) OVER", "OVER of a join of two GROUP BYs' windows"},
		{"SELECT * FROM " + windowSides + "ON T.ws = Q.ws ORDER BY T.ws", "T.ws", "ORDER BY is not supported"},
		{"SELECT * FROM " + windowSides + "ON T.ws = Q.ws AND nope > 1", "nope", `unknown column "nope"`},
		{"SELECT * FROM " + trades + " JOIN (SELECT symbol, window_start FROM TUMBLE(quotes, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) AS Q(s, ws) ON T.ws = Q.ws",
			"symbol, window_start FROM TUMBLE(quotes", "column names after a subquery's alias are not supported"},
		{"SELECT * FROM " + windowSides + "ON T.ws = Q.ws EMIT CHANGES", "SELECT", "EMIT CHANGES applies to GROUP BY queries; a window join"},
		// A grouped WITH query the side reads is refused with the reason.
		{"WITH h AS (SELECT symbol, count(*) AS c FROM trades GROUP BY symbol), t AS (SELECT symbol, window_start AS ws, count(*) AS n FROM TUMBLE(h, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) " +
			"SELECT * FROM t JOIN (SELECT symbol, window_start AS ws FROM TUMBLE(quotes, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) Q ON t.ws = Q.ws", "h AS", "WITH query h may only filter and compute columns"},
	}
	for _, tt := range tests {
		checkFirstErrorIn(t, joinCatalog, tt.query, tt.at, tt.substr)
	}
}
