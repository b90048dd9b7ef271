package sql_test

import (
	"testing"

	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
)

// TestChangesPlans: an aggregation of a GROUP BY's rows, read through a
// subquery or a WITH query, is an Aggregate over the inner query's
// select list over its Aggregate; of windows, its window bounds are
// columns it may group by.
func TestChangesPlans(t *testing.T) {
	const scan = "Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n"
	tests := []struct{ query, explain string }{
		{
			"SELECT initial, count(*) AS symbols, avg(total) AS a FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, sum(price) AS total FROM trades GROUP BY symbol) s GROUP BY initial",
			"Output [initial string, symbols int, a decimal(18,8)]\n" +
				"  Project initial AS initial, count(*) AS symbols, avg(total) AS a\n" +
				"    Aggregate CONTINUOUS BY initial COMPUTE count(*), avg(total)\n" +
				"      Project substr(symbol, 1, 1) AS initial, symbol AS symbol, sum(price) AS total\n" +
				"        Aggregate CONTINUOUS BY symbol COMPUTE sum(price)\n" +
				"          " + scan,
		},
		{
			"WITH w AS (SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol) " +
				"SELECT window_start, sum(n) AS n FROM w GROUP BY window_start EMIT CHANGES",
			"Output [window_start timestamp, n int]\n" +
				"  Project window_start AS window_start, sum(n) AS n\n" +
				"    Aggregate CONTINUOUS BY window_start COMPUTE sum(n)\n" +
				"      Project window_start AS window_start, symbol AS symbol, count(*) AS n\n" +
				"        Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE count(*)\n" +
				"          " + scan,
		},
	}
	// A WITH query after the one read may read it.
	tests = append(tests, struct{ query, explain string }{
		"WITH g AS (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol), h AS (SELECT * FROM g) SELECT symbol, sum(n) AS n FROM g GROUP BY symbol",
		"Output [symbol string, n int]\n" +
			"  Project symbol AS symbol, sum(n) AS n\n" +
			"    Aggregate CONTINUOUS BY symbol COMPUTE sum(n)\n" +
			"      Project symbol AS symbol, count(*) AS n\n" +
			"        Aggregate CONTINUOUS BY symbol COMPUTE count(*)\n" +
			"          " + scan,
	})
	for _, tt := range tests {
		n, err := sql.Plan(tt.query, catalog)
		if err != nil {
			t.Errorf("Plan(%q): %v", tt.query, err)
			continue
		}
		if got := plan.Explain(n); got != tt.explain {
			t.Errorf("Plan(%q):\n%s\nwant\n%s", tt.query, got, tt.explain)
		}
	}
}

// TestChangesErrors: what an aggregation of a GROUP BY's rows cannot do
// yet is refused at its place.
func TestChangesErrors(t *testing.T) {
	inner := "(SELECT symbol, count(*) AS n, max(price) AS hi FROM trades GROUP BY symbol) s"
	tests := []struct {
		query  string
		at     string // the text at the error's offset
		substr string
	}{
		{"SELECT n, count(*) FROM " + inner + " GROUP BY n", "n", "groups by columns of the inner GROUP BY's keys"},
		{"SELECT count(*) FROM " + inner + " GROUP BY hi > 5", "hi > 5", "groups by columns of the inner GROUP BY's keys"},
		{"SELECT symbol, max(hi) FROM " + inner + " GROUP BY symbol", "max(hi)", "max of the rows of a GROUP BY is not supported yet"},
		{"SELECT symbol, count(DISTINCT n) FROM " + inner + " GROUP BY symbol", "count(DISTINCT", "count(distinct) of the rows of a GROUP BY is not supported yet"},
		{"SELECT symbol, sum(n) FROM " + inner + " WHERE n > 1 GROUP BY symbol", "n > 1", "takes no WHERE yet"},
		{"SELECT DISTINCT symbol FROM " + inner, "symbol FROM", "SELECT DISTINCT of the rows of a GROUP BY"},
		{"SELECT symbol, sum(n) FROM (SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol HAVING count(*) > 1) w GROUP BY symbol",
			"count(*) > 1", "HAVING in a query another aggregates"},
		{"SELECT symbol, sum(k) FROM (SELECT symbol, count(*) AS k FROM " + inner + " GROUP BY symbol) x GROUP BY symbol", "symbol, sum(k)", "one level of GROUP BY over another"},
		{"SELECT symbol, sum(n) OVER (PARTITION BY symbol ORDER BY symbol) FROM " + inner + " GROUP BY symbol", "sum(n) OVER", "OVER in an aggregation of the rows of a GROUP BY is not supported"},
		{"SELECT t, sum(n) FROM (SELECT symbol, now() AS t, count(*) AS n FROM trades GROUP BY symbol) s GROUP BY t", "t", "or from the clock"},
		{"SELECT count(*) FROM " + inner + " GROUP BY date_trunc('second', now())", "date_trunc", "or from the clock"},
		{"SELECT window_start, sum(n) FROM " + inner + " GROUP BY window_start", "window_start, sum(n)", `unknown column "window_start" in s`},
	}
	for _, tt := range tests {
		checkFirstError(t, tt.query, tt.at, tt.substr)
	}
}

// TestOverChangesPlans: OVER of a GROUP BY's rows is an Over ordered by
// ORDER BY, of no event time, over the inner query's select list over its
// Aggregate; its partitions and order may be computed from the keys.
func TestOverChangesPlans(t *testing.T) {
	const scan = "Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n"
	query := "SELECT symbol, avg(hi) OVER (PARTITION BY initial ORDER BY length(symbol) DESC, symbol ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS a, " +
		"count(hi) OVER (PARTITION BY initial ORDER BY length(symbol) DESC, symbol ROWS 4 PRECEDING) AS c " +
		"FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, max(price) AS hi FROM trades GROUP BY symbol) s"
	want := "Output [symbol string, a decimal(18,8), c int]\n" +
		"  Project symbol AS symbol, avg(hi) OVER (ROWS 2 PRECEDING) AS a, count(hi) OVER (ROWS 4 PRECEDING) AS c\n" +
		"    Over PARTITION BY initial ORDER BY length(symbol) DESC, symbol COMPUTE avg(hi) OVER (ROWS 2 PRECEDING), count(hi) OVER (ROWS 4 PRECEDING)\n" +
		"      Project substr(symbol, 1, 1) AS initial, symbol AS symbol, max(price) AS hi\n" +
		"        Aggregate CONTINUOUS BY symbol COMPUTE max(price)\n" +
		"          " + scan
	n, err := sql.Plan(query, catalog)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Explain(n); got != want {
		t.Errorf("Plan(%q):\n%s\nwant\n%s", query, got, want)
	}
}

// TestOverChangesErrors: what OVER of a GROUP BY's rows cannot do is
// refused at its place.
func TestOverChangesErrors(t *testing.T) {
	inner := "(SELECT symbol, count(*) AS n, max(price) AS hi FROM trades GROUP BY symbol) s"
	tests := []struct {
		query  string
		at     string // the text at the error's offset
		substr string
	}{
		{"SELECT symbol, sum(n) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM " + inner, "n ROWS", "orders them by columns of its keys"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol || CAST(now() AS string) ROWS 1 PRECEDING) FROM " + inner, "symbol ||", "or from the clock"},
		{"SELECT symbol, sum(n) OVER (PARTITION BY hi > 1 ORDER BY symbol ROWS 1 PRECEDING) FROM " + inner, "hi > 1", "partitions them by columns of its keys"},
		{"SELECT symbol, sum(n) OVER (PARTITION BY symbol ROWS 1 PRECEDING) FROM " + inner, "(PARTITION", "needs ORDER BY columns of its keys"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol RANGE BETWEEN INTERVAL '1' SECOND PRECEDING AND CURRENT ROW) FROM " + inner, "(ORDER", "takes ROWS BETWEEN n PRECEDING AND CURRENT ROW"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol) FROM " + inner, "(ORDER", "a stream's frames need a bound"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol ROWS 1 PRECEDING) FROM " + inner + " WHERE n > 1", "n > 1", "OVER of the rows of a GROUP BY takes no WHERE yet"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol ROWS 1 PRECEDING) FROM (SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol) w",
			"sum(n) OVER", "OVER of the rows of a windowed GROUP BY is not supported yet"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol ROWS 1 PRECEDING), count(*) OVER (ORDER BY n ROWS 1 PRECEDING) FROM " + inner, "n ROWS", "orders them by columns of its keys"},
		{"SELECT symbol, sum(n) OVER (ORDER BY symbol ROWS 1 PRECEDING), count(*) OVER (ORDER BY symbol DESC ROWS 1 PRECEDING) FROM " + inner, "(ORDER BY symbol DESC", "every OVER of a query must have the same PARTITION BY and ORDER BY"},
	}
	for _, tt := range tests {
		checkFirstError(t, tt.query, tt.at, tt.substr)
	}
}
