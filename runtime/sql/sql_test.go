package sql_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

var update = flag.Bool("update", false, "rewrite golden files")

var catalog = sql.Catalog{
	"trades": {
		{Name: "symbol", Type: value.String},
		{Name: "price", Type: value.Decimal(18, 4)},
		{Name: "quantity", Type: value.Int},
		{Name: "ts", Type: value.Timestamp},
		{Name: "score", Type: value.Double},
		{Name: "active", Type: value.Bool},
		{Name: "note", Type: value.String},
	},
}

// TestPlanGolden plans every query of testdata/plans.sql (one per line) and
// compares the EXPLAIN output with testdata/plans.golden.
func TestPlanGolden(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "plans.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, q := range strings.Split(strings.TrimSpace(string(src)), "\n") {
		if q == "" || strings.HasPrefix(q, "--") {
			continue
		}
		out.WriteString("query: " + q + "\n")
		n, err := sql.Plan(q, catalog)
		if err != nil {
			out.WriteString("error: " + err.Error() + "\n\n")
			continue
		}
		out.WriteString(plan.Explain(n) + "\n")
	}
	golden := filepath.Join("testdata", "plans.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("plans differ from %s (run go test -update to accept):\n%s", golden, diff(string(want), got))
	}
}

func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\n want: " + a + "\n  got: " + b
		}
	}
	return ""
}

func itoa(i int) string { return value.IntValue(int64(i)).String() }

// TestErrorPositions checks that each problem is found at its place.
func TestErrorPositions(t *testing.T) {
	tests := []struct {
		query  string
		at     string // the text at the error's offset
		substr string
	}{
		{"SELECT nope FROM trades", "nope", `unknown column "nope"`},
		{"SELECT symbol FROM nosuch", "nosuch", `unknown source "nosuch"`},
		{"SELECT symbol FROM trades WHERE", "", "syntax error at end of input"},
		{"SELECT symbol FROM trades WHERE price >", "", "syntax error"},
		{"SELECT symbol FROM trades WHERE symbol", "symbol", "WHERE must be bool"},
		{"SELECT symbol FROM trades WHERE symbol > 3", "symbol > 3", "cannot compare string with int"},
		{"SELECT price + 'x' FROM trades", "price + 'x'", "not a valid decimal(18,4)"},
		{"SELECT foo(price) FROM trades", "foo(price)", "unknown function foo"},
		{"WITH RECURSIVE x AS (SELECT symbol FROM trades) SELECT * FROM x", "WITH", "WITH RECURSIVE is not supported"},
		{"SELECT nope FROM (SELECT symbol FROM trades) x", "nope", `column "nope" is not in the select list of the subquery in FROM (it has symbol)`},
		{"SELECT x.price FROM (SELECT symbol FROM trades) x", "x.price", `column "price" is not in the select list of the subquery in FROM (it has symbol)`},
		{"SELECT * FROM (SELECT symbol, count(*) FROM trades GROUP BY symbol) x", "symbol, count", "the subquery in FROM may only filter and compute columns of one source or join yet: GROUP BY and HAVING is not supported in it"},
		{"SELECT * FROM (SELECT symbol, (max(price) > 1) IS TRUE AS m FROM trades) x", "symbol, (max", "an aggregate is not supported in it"},
		{"SELECT trades.price FROM (SELECT price * 2 AS p FROM trades) x", "trades.price", `missing FROM-clause entry for table "trades"`},
		{"SELECT trades.* FROM (SELECT upper(symbol) AS s FROM trades) y", "trades.*", `missing FROM-clause entry for table "trades"`},
		{"SELECT a FROM (SELECT symbol FROM trades) AS x(a)", "symbol FROM", "column names after a subquery's alias are not supported"},
		{"WITH a AS (SELECT symbol FROM trades), a AS (SELECT price FROM trades) SELECT * FROM a", "a AS (SELECT price", `WITH query name "a" specified more than once`},
		{"WITH q AS (SELECT symbol, nosuch(price) AS bad FROM trades) SELECT symbol FROM q", "nosuch(price)", "unknown function nosuch"},
		{"WITH unused AS (SELECT nope FROM trades) SELECT symbol FROM trades", "nope", `unknown column "nope"`},
		{"SELECT x FROM (SELECT '5' AS x FROM trades) q WHERE x > 3", "'5' AS x", "cannot compare string with int"},
		{"WITH a AS (SELECT symbol AS s, price AS s FROM trades) SELECT s FROM a", "s FROM a", `column reference "s" is ambiguous: WITH query a has 2 columns of that name`},
		{"WITH a (x) AS (SELECT symbol FROM trades) SELECT * FROM a", "a (x)", "column names after a WITH query's name are not supported"},
		{"WITH a AS (SELECT symbol FROM nosuch) SELECT * FROM a", "nosuch", `unknown source "nosuch"`},
		{"WITH a AS (SELECT symbol, ts FROM trades) SELECT * FROM a JOIN trades t ON a.symbol = t.symbol", "a JOIN", "joins of WITH queries are not supported yet"},
		{"WITH a AS (SELECT symbol, price * 2 AS p FROM trades) SELECT window_start, count(*) FROM TUMBLE(a, p, INTERVAL '1' MINUTE) GROUP BY window_start, window_end", "price * 2", "time column"},
		{"SELECT DISTINCT ON (symbol) symbol FROM trades", "symbol) symbol", "SELECT DISTINCT ON is not supported"},
		{"SELECT DISTINCT * FROM trades", "*", "SELECT DISTINCT * is not supported; name the columns"},
		{"SELECT DISTINCT symbol, count(*) FROM trades GROUP BY symbol", "symbol, count", "SELECT DISTINCT applies to a plain SELECT"},
		{"SELECT regexp_extract(note, '(?=a)') FROM trades", "regexp_extract", "no backreferences or lookaround"},
		{"SELECT regexp_extract(note, symbol) FROM trades", "regexp_extract", "takes a constant pattern, not symbol"},
		{"SELECT regexp_extract(note, '(a)(b)', 3) FROM trades", "regexp_extract", "group 3 of a pattern with 2 groups"},
		{"SELECT regexp_replace(note, 'a', 'b', 'x') FROM trades", "regexp_replace", "unknown flag 'x'"},
		{"SELECT symbol FROM trades WHERE note ~ '(a'", "~", "missing closing )"},
		{"SELECT symbol FROM trades WHERE quantity ~ '1'", "~", "~ applies to strings, not int"},
		{"SELECT upper(price) FROM trades", "upper(price)", "argument 1 of upper must be string"},
		{"SELECT symbol, price FROM trades GROUP BY symbol", "price", "must be in GROUP BY or inside an aggregate"},
		{"SELECT count(*) FROM trades GROUP BY symbol, window_start", "window_start", "a column of windowed queries"},
		{"SELECT window_end, count(*) FROM trades GROUP BY symbol", "window_end", `unknown column "window_end"`},
		{"SELECT * FROM (SELECT *, DENSE_RANK() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) x WHERE r <= 1", "DENSE_RANK()", "it ranks with ROW_NUMBER, whose ranks are each one row's; DENSE_RANK ranks the rows of windows"},
		{"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) x", "ROW_NUMBER()", "a top-N needs WHERE r <= N"},
		{"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) x WHERE r <= 2 AND price > 1", "price > 1", "a top-N without a window takes no condition but the rank's in its outer WHERE"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t", "RANK()", "a top-N needs WHERE r <= N"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE n > 2", "n > 2", "a top-N needs WHERE r <= N"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r = 2", "r = 2", "not r = 2"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE 3 <= r", "3 <= r", "r <= N, r < N or r = 1"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 0", "0", "from 1 to 100000 ranks"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= n", "n", "a whole number: r <= N"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1 AND t.r < 5", "t.r < 5", "one condition on its rank"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws, n ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "n ORDER", "GROUP BY keys of the query it ranks, each as its column; n is not one"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY symbol ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "(PARTITION BY symbol", "PARTITION BY window_start, window_end[, keys]"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "(PARTITION BY ws)", "rank needs ORDER BY"},
		{"SELECT * FROM (SELECT *, RANK(n) OVER (PARTITION BY ws ORDER BY n) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "RANK(n)", "rank takes no arguments"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "(PARTITION BY ws ORDER BY n ROWS", "a frame (ROWS, RANGE) does not apply"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n) AS r, ROW_NUMBER() OVER (PARTITION BY ws ORDER BY n) AS q FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "ROW_NUMBER()", "one ROW_NUMBER, RANK or DENSE_RANK"},
		{"SELECT ws, count(*) FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1 GROUP BY ws", "ws, count", "may only filter and compute columns: GROUP BY and aggregates"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1 EMIT CHANGES", "RANK()", "EMIT CHANGES does not apply to a window top-N"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws FROM SESSION(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "RANK()", "TUMBLE or HOP windowed GROUP BY"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY nope) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "nope", "unknown column \"nope\""},
		{"SELECT nope FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "nope", "unknown column \"nope\""},
		{"SELECT * FROM (SELECT symbol AS r, RANK() OVER (PARTITION BY ws ORDER BY n) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "RANK()", "output column \"r\" is also produced"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY window_start ORDER BY price) AS r FROM SESSION(trades, ts, INTERVAL '1' MINUTE)) t WHERE r <= 1", "RANK()", "not SESSION windows"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY window_start ORDER BY window_end) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)) t WHERE r <= 1", "window_end) AS", "orders them by the source's columns"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY date_trunc('hour', window_start) ORDER BY price) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)) t WHERE r <= 1", "date_trunc('hour', window_start)", "computes with the window's bounds"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY symbol ORDER BY price) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)) t WHERE r <= 1", "(PARTITION BY symbol", "PARTITION BY window_start, window_end[, keys]"},
		{"SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY window_start ORDER BY price) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE window_end > ts) t WHERE r <= 1", "window_end > ts", "unknown column \"window_end\""},
		{"SELECT * FROM (SELECT nope, n, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "nope", "unknown column \"nope\""},
		{"SELECT * FROM (SELECT n, n, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) t WHERE r <= 1", "n, RANK", "output column \"n\" is also produced"},
		{"WITH x AS (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT symbol, count(*) AS n, window_start AS ws, window_end AS we FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) c) SELECT * FROM x AS y WHERE x.r <= 1", "x.r", "unknown table \"x\""},
		{"SELECT symbol, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts) FROM trades", "ROW_NUMBER()", "row_number ranks rows in a top-N only"},
		{"SELECT symbol, count(*) FROM trades GROUP BY symbol HAVING count(*) > 1", "count(*) > 1", "HAVING is not supported yet in a GROUP BY without a window"},
		{"SELECT symbol FROM trades EMIT CHANGES", "SELECT", "EMIT CHANGES applies to GROUP BY queries"},
		{"SELECT date_trunc('minute', ts), count(*) FROM trades GROUP BY date_trunc('hour', ts)", "ts)", `column "ts" must be in GROUP BY`},
		{"SELECT count(*) FROM trades GROUP BY 'x' || 'y'", "'x' || 'y'", "GROUP BY of a constant groups nothing"},
		{"SELECT symbol, first_value(price) FILTER (WHERE quantity > 1) FROM trades GROUP BY symbol", "first_value", "FILTER is not supported with first_value"},
		{"SELECT symbol, count(*) FILTER (WHERE quantity) FROM trades GROUP BY symbol", "quantity)", "FILTER (WHERE ...) must be bool, not int"},
		{"SELECT symbol, sum(price) FILTER (WHERE count(*) > 1) FROM trades GROUP BY symbol", "count(*) > 1", "aggregate function count is allowed only"},
		{"SELECT window_start, price FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end", "price", "must be in GROUP BY or inside an aggregate"},
		{"SELECT window_start, sum(symbol) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end", "sum(symbol)", "sum cannot take string"},
		{"SELECT count(*) FROM TUMBLE(trades, price, INTERVAL '1' MINUTE) GROUP BY window_start, window_end", "price", "event-time column"},
		{"SELECT count(*) FROM HOP(trades, ts, INTERVAL '2' MINUTE, INTERVAL '3' MINUTE) GROUP BY window_start, window_end", "'3' MINUTE)", "whole multiple of its slide"},
		{"SELECT count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start", "window_start", "groups by window_start and window_end"},
		{"SELECT avg(price) OVER (PARTITION BY symbol ORDER BY ts) FROM trades", "(PARTITION", "frame must be ROWS BETWEEN"},
		{"SELECT avg(price) OVER (PARTITION BY symbol ORDER BY price ROWS 3 PRECEDING) FROM trades", "price ROWS", "orders by the event-time column"},
		{"SELECT sum(price) OVER (PARTITION BY symbol ORDER BY ts ROWS 3 PRECEDING), avg(price) OVER (ORDER BY ts ROWS 3 PRECEDING) FROM trades", "(ORDER BY ts ROWS 3", "same PARTITION BY"},
		{"SELECT symbol FROM trades ORDER BY symbol", "symbol", "ORDER BY"},
		{"SELECT symbol FROM trades LIMIT 5", "5", "LIMIT"},
		{"SELECT symbol, symbol FROM trades", "symbol FROM", `output column "symbol" is also produced`},
		{"SELECT CAST(ts AS bool) FROM trades", "CAST", "cannot cast timestamp to bool"},
		{"SELECT 1/0 AS x FROM trades", "1/0", "division by zero"},
		{"SELECT " + strings.Repeat("replace(", 4) + "'llll'" + strings.Repeat(", 'l', '"+strings.Repeat("l", 1000)+"')", 4) + " AS x FROM trades", "replace(", "a string may hold"},
		{"SELECT concat(" + strings.Repeat("'"+strings.Repeat("x", 60000)+"', ", 300) + "'x') AS x FROM trades", "concat(", "a string may hold"},
		{"SELECT CAST(price AS decimal(40,2)) FROM trades", "decimal", "precision 40"},
		{"SELECT t.symbol FROM trades AS x", "t.symbol", `unknown table "t"`},
		{"SELECT symbol FROM trades WHERE symbol IN (SELECT 1)", "IN (SELECT 1)", "subqueries"},
		{"SELECT symbol FROM trades; SELECT 1", "SELECT 1", "one SELECT statement"},
		{"INSERT INTO trades VALUES (1)", "INSERT", "only SELECT"},
		{"SELECT ts + INTERVAL '1' MONTH FROM trades", "'1'", "months"},
		{"SELECT date_trunc('fortnight', ts) FROM trades", "date_trunc", "fortnight"},
		{"SELECT quantity" + strings.Repeat("+1", sql.MaxTokens/2) + " FROM trades", "+1 FROM", "more than 10000 tokens"},
		{"SELECT E'\\'' " + strings.Repeat("::int", sql.MaxTokens/2) + " FROM trades", "::int FROM", "more than 10000 tokens"},
		{"SELECT ts + INTERVAL '200000' DAY AS t FROM trades", "'200000'", "beyond the ±100000 days"},
		{"SELECT ts + INTERVAL 'nan' SECOND AS t FROM trades", "'nan'", "beyond the ±100000 days"},
		{"SELECT ts + INTERVAL '9999999:00:00' AS t FROM trades", "'9999999", "beyond the ±100000 days"},
		{"SELECT count(*) FROM HOP(trades, ts, INTERVAL '1' SECOND, INTERVAL '1' DAY) GROUP BY window_start, window_end", "'1' DAY", "86400 times its slide"},
		{"SELECT count(*) FROM TUMBLE(trades, ts, INTERVAL '400' DAY) GROUP BY window_start, window_end", "'400' DAY", "longer than the 366 days"},
		{"SELECT avg(price) OVER (PARTITION BY symbol ORDER BY ts ROWS 1000000 PRECEDING) FROM trades", "1000000", "from 0 to 100000"},
		{"SELECT " + strings.Repeat("quantity AS q, ", 2000) + "1 AS x FROM trades", "quantity AS q", "also produced"},
	}
	// A catalog with a column declared twice, as a manifest that
	// validation rejects may still give the planner: it must not panic.
	dup := sql.Catalog{"trades": {{Name: "symbol", Type: value.String}, {Name: "symbol", Type: value.Int}}}
	if _, err := sql.Plan("SELECT symbol FROM trades", dup); err == nil || !strings.Contains(err.Error(), `column "symbol" is ambiguous`) {
		t.Errorf("Plan over a duplicate column = %v; want it ambiguous", err)
	}
	var wide strings.Builder
	wide.WriteString("SELECT ")
	for i := range sql.MaxOutputColumns + 5 {
		fmt.Fprintf(&wide, "quantity AS q%d, ", i)
	}
	wide.WriteString("1 AS x FROM trades")
	_, err := sql.Plan(wide.String(), catalog)
	if es := sql.AsErrors(err); len(es) != 1 || !strings.Contains(es[0].Msg, "at most 1024 output columns") || !strings.HasPrefix(wide.String()[es[0].Offset:], "quantity AS q1024,") {
		t.Errorf("Plan(1029 output columns) = %v; want one error at the 1025th", err)
	}
	// Strings and comments are one token or none, whatever they hold.
	quoted := "SELECT '" + strings.Repeat("+", 30000) + "' AS s /* " + strings.Repeat("- ", 30000) + " */ FROM trades -- " + strings.Repeat("* ", 30000)
	if _, err := sql.Plan(quoted, catalog); err != nil {
		t.Errorf("Plan(operators in a string and comments) = %v; want a plan", err)
	}
	for _, tt := range tests {
		checkFirstError(t, tt.query, tt.at, tt.substr)
	}
}

// checkFirstError plans query and checks its first error: its message
// contains substr, and it is at the text at.
func checkFirstError(t *testing.T, query, at, substr string) {
	t.Helper()
	checkFirstErrorIn(t, catalog, query, at, substr)
}

// checkFirstErrorIn is checkFirstError with the sources of cat.
func checkFirstErrorIn(t *testing.T, cat sql.Catalog, query, at, substr string) {
	t.Helper()
	_, err := sql.Plan(query, cat)
	es := sql.AsErrors(err)
	if len(es) == 0 {
		t.Errorf("Plan(%q) = %v; want an error containing %q", query, err, substr)
		return
	}
	e := es[0]
	if !strings.Contains(e.Msg, substr) {
		t.Errorf("Plan(%q) error %q; want it to contain %q", query, e.Msg, substr)
	}
	if e.Offset < 0 || e.Offset > len(query) || !strings.HasPrefix(query[e.Offset:], at) {
		t.Errorf("Plan(%q) error at offset %d (%q); want it at %q", query, e.Offset, query[min(max(e.Offset, 0), len(query)):], at)
	}
}

// TestManyErrors: all problems of a query come back together, in order.
func TestManyErrors(t *testing.T) {
	q := "SELECT nope, upper(price), missing FROM trades WHERE symbol > 1"
	es := sql.AsErrors(func() error { _, err := sql.Plan(q, catalog); return err }())
	if len(es) != 4 {
		t.Fatalf("Plan(%q) = %v; want 4 errors", q, es)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Offset < es[i-1].Offset {
			t.Errorf("errors out of order: %v", es)
		}
	}
}

// row is the record the evaluation tests run against.
var row = value.Row{
	value.StringValue("AAPL"),
	value.DecimalValue(1905000, 4), // 190.5000
	value.IntValue(7),
	value.TimestampValue(1704187845123000000), // 2024-01-02T09:30:45.123Z
	value.DoubleValue(2.5),
	value.NullValue(), // active
	value.StringValue("Hello, World"),
}

// eval plans "SELECT <expr> AS v FROM trades" and evaluates it over row.
func eval(t *testing.T, e string) (string, error) {
	t.Helper()
	n, err := sql.Plan("SELECT "+e+" AS v FROM trades", catalog)
	if err != nil {
		return "", err
	}
	prog, err := streamop.Compile(n)
	if err != nil {
		t.Fatal(err)
	}
	var pool message.Pool
	in := pool.Get(len(row))
	copy(in.Append(1), row)
	out := pool.Get(1)
	var f failures
	prog.New().Process(in, out, &f)
	if f.err != nil {
		return "", f.err
	}
	if out.Len() != 1 {
		return "", nil
	}
	v := out.Rows[0][0]
	return v.Kind().String() + ":" + v.String(), nil
}

type failures struct{ err error }

func (f *failures) Fail(_ *message.Batch, _ int, _ string, err error) { f.err = err }

// TestEval checks the values of expressions, including SQL's NULL rules.
func TestEval(t *testing.T) {
	tests := []struct{ expr, want string }{
		// Arithmetic and its types.
		{"quantity + 1", "int:8"},
		{"quantity / 2", "int:3"},
		{"quantity % 4", "int:3"},
		{"-quantity", "int:-7"},
		{"price * quantity", "decimal:1333.5000"},
		{"price / 3", "decimal:63.500000"},
		{"price + 0.1", "decimal:190.6000"},
		{"0.1 + 0.2", "decimal:0.3"},
		{"1.5e-2", "decimal:0.015"},
		{"2.5e1 + 0", "decimal:25"},
		{"CAST(999999999999999999 AS decimal(18,0)) + 1", "error:numeric field overflow"},
		{"price * score", "double:476.25"},
		{"quantity / 2.0", "decimal:3.500000"},
		{"9223372036854775807 + quantity", "error:int out of range"},
		{"quantity / 0", "error:division by zero"},
		{"price / 0", "error:division by zero"},
		// Comparisons across numeric kinds.
		{"price > 190", "bool:true"},
		{"price = 190.5", "bool:true"},
		{"quantity < 7.5", "bool:true"},
		{"score >= 2.5", "bool:true"},
		{"ts > '2024-01-02'", "bool:true"},
		{"ts < TIMESTAMP '2024-01-02 09:30:00'", "bool:false"},
		// Three-valued logic.
		{"active AND false", "bool:false"},
		{"active AND true", "null:NULL"},
		{"active OR true", "bool:true"},
		{"active OR false", "null:NULL"},
		{"NOT active", "null:NULL"},
		{"active IS NULL", "bool:true"},
		{"active IS NOT TRUE", "bool:true"},
		{"active IS DISTINCT FROM NULL", "bool:false"},
		{"quantity IS DISTINCT FROM 7", "bool:false"},
		{"active = true", "null:NULL"},
		{"quantity IN (1, 7)", "bool:true"},
		{"quantity IN (1, 2)", "bool:false"},
		{"quantity IN (1, NULL)", "null:NULL"},
		{"quantity NOT IN (1, NULL)", "null:NULL"},
		{"quantity NOT IN (1, 2)", "bool:true"},
		{"quantity BETWEEN 1 AND 7", "bool:true"},
		{"quantity NOT BETWEEN 1 AND 6", "bool:true"},
		{"quantity BETWEEN SYMMETRIC 10 AND 1", "bool:true"},
		// CASE, COALESCE, NULLIF, GREATEST, LEAST.
		{"CASE WHEN quantity > 5 THEN 'big' ELSE 'small' END", "string:big"},
		{"CASE symbol WHEN 'MSFT' THEN 1 WHEN 'AAPL' THEN 2 END", "int:2"},
		{"CASE WHEN active THEN 1 END", "null:NULL"},
		{"CASE WHEN quantity > 5 THEN 1 ELSE 2.5 END", "decimal:1.0"},
		{"coalesce(active, false)", "bool:false"},
		{"nullif(quantity, 7)", "null:NULL"},
		{"greatest(quantity, 3, 9)", "int:9"},
		{"least(price, 100)", "decimal:100.0000"},
		// Casts.
		{"CAST(price AS int)", "int:191"},
		{"CAST(price AS double)", "double:190.5"},
		{"CAST(quantity AS string)", "string:7"},
		{"CAST('12' AS int) + 1", "int:13"},
		{"CAST(note AS int)", "error:invalid int"},
		{"CAST(score AS decimal(5,2))", "decimal:2.50"},
		{"CAST(12345.678 AS decimal(5,2))", "error:does not fit"},
		{"price::string", "string:190.5000"},
		{"CAST('true' AS boolean)", "bool:true"},
		{"CAST('2024-05-06T07:08:09Z' AS timestamp)", "timestamp:2024-05-06T07:08:09Z"},
		// Strings.
		{"symbol LIKE 'AA%'", "bool:true"},
		{"substr(symbol, 2, 9223372036854775806)", "string:APL"},
		{"symbol LIKE '_APL'", "bool:true"},
		{"symbol NOT LIKE '%PL'", "bool:false"},
		{"note LIKE 'Hello,%World'", "bool:true"},
		{"symbol ILIKE 'aapl'", "bool:true"},
		{"'50%' LIKE '50\\%'", "bool:true"},
		{"symbol || '-' || quantity", "string:AAPL-7"},
		{"symbol || note || active", "null:NULL"},
		{"concat(symbol, active, '!')", "string:AAPL!"},
		{"lower(note)", "string:hello, world"},
		{"upper(note)", "string:HELLO, WORLD"},
		{"length(note)", "int:12"},
		{"substring(note from 8 for 5)", "string:World"},
		{"substr(note, 8)", "string:World"},
		{"position('World' in note)", "int:8"},
		{"replace(note, 'World', 'There')", "string:Hello, There"},
		{"replace(note, '', 'x')", "string:Hello, World"},
		{"trim('  x  ')", "string:x"},
		{"ltrim('xxy', 'x')", "string:y"},
		{"left(note, 5)", "string:Hello"},
		{"right(note, 5)", "string:World"},
		{"left(note, -7)", "string:Hello"},
		{"right(note, -7)", "string:World"},
		{"left(note, 100) || right(note, 100)", "string:Hello, WorldHello, World"},
		{"left(note, 0) || right(note, 0) || left(note, -100) || right(note, -100)", "string:"},
		{"left('ÆØÅx', 2) || '|' || right('ÆØÅx', 3) || '|' || left('ÆØÅx', -1)", "string:ÆØ|ØÅx|ÆØÅ"},
		{"split_part(note, ', ', 2)", "string:World"},
		// Regular expressions.
		{"note ~ 'W.r'", "bool:true"},
		{"note ~ '^w'", "bool:false"},
		{"note ~* '^HELLO'", "bool:true"},
		{"note !~ 'x'", "bool:true"},
		{"note !~* 'WORLD$'", "bool:false"},
		{"regexp_extract(note, '([A-Z])[a-z]+$')", "string:World"},
		{"regexp_extract(note, '([A-Z])[a-z]+$', 1)", "string:W"},
		{"regexp_extract(note, 'x(y)?|W(o)', 1)", "null:NULL"},
		{"regexp_extract(note, 'xyz')", "null:NULL"},
		{"regexp_extract('a=1&channel_id=42&b', '(&|^)channel_id=([^&]*)', 2)", "string:42"},
		{"regexp_replace(note, 'l', 'L')", "string:HeLlo, World"},
		{"regexp_replace(note, 'l', 'L', 'g')", "string:HeLLo, WorLd"},
		{"regexp_replace(note, 'h(e)', '<\\&|\\1|$1>', 'i')", "string:<He|e|$1>llo, World"},
		{"regexp_replace(note, 'H', '')", "string:ello, World"},
		{"regexp_replace(note, 'xyz', '')", "string:Hello, World"},
		{"regexp_replace(note, 'l', NULL)", "null:NULL"},
		{"regexp_replace(note, 'l', 'L', NULL)", "null:NULL"},
		{"regexp_replace(note, 'o', '\\n\\0\\\\')", "string:Hell\\n\\0\\, World"},
		{"E'a\\nb' ~ 'a.b'", "bool:true"},
		{"regexp_replace(E'a\\nb', 'a[^x]b', 'y')", "string:y"},
		{"regexp_extract(E'a\\nb', 'a.b')", "null:NULL"},
		{"starts_with(note, 'Hell')", "bool:true"},
		{"reverse(symbol)", "string:LPAA"},
		{"initcap('hello world')", "string:Hello World"},
		// Math.
		{"abs(-price)", "decimal:190.5000"},
		{"round(price)", "decimal:191.0000"},
		{"round(score)", "double:3"},
		{"round(price / 7, 2)", "decimal:27.21"},
		{"ceil(price)", "decimal:191.0000"},
		{"ceil(-price)", "decimal:-190.0000"},
		{"floor(-price)", "decimal:-191.0000"},
		{"trunc(-price)", "decimal:-190.0000"},
		{"floor(CAST(9007199254740993.5 AS decimal(18,1)))", "decimal:9007199254740993.0"},
		{"ceil(CAST(99999999999999999.9 AS decimal(18,1)))", "error:numeric field overflow"},
		{"floor(score)", "double:2"},
		{"sqrt(16)", "double:4"},
		{"power(2, 10)", "double:1024"},
		{"mod(quantity, 3)", "int:1"},
		{"sign(-quantity)", "int:-1"},
		{"ln(0)", "error:undefined"},
		// Time.
		{"date_trunc('hour', ts)", "timestamp:2024-01-02T09:00:00Z"},
		{"date_trunc('month', ts)", "timestamp:2024-01-01T00:00:00Z"},
		{"EXTRACT(minute FROM ts)", "int:30"},
		{"EXTRACT(second FROM ts)", "double:45.123"},
		{"date_part('dow', ts)", "int:2"},
		{"ts + INTERVAL '15' MINUTE", "timestamp:2024-01-02T09:45:45.123Z"},
		{"ts - INTERVAL '1 hour 30 minutes'", "timestamp:2024-01-02T08:00:45.123Z"},
		{"EXTRACT(epoch FROM INTERVAL '1 day')", "double:86400"},
		{"to_timestamp(0)", "timestamp:1970-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		got, err := eval(t, tt.expr)
		if err != nil {
			got = "error:" + err.Error()
			if want, ok := strings.CutPrefix(tt.want, "error:"); ok && strings.Contains(got, want) {
				continue
			}
		}
		if got != tt.want {
			t.Errorf("SELECT %s = %s; want %s", tt.expr, got, tt.want)
		}
	}
}

// TestMergedSubqueriesBounded: WITH queries that each use the one before
// twice would double the merged query with each; the copies are bounded.
func TestMergedSubqueriesBounded(t *testing.T) {
	var q strings.Builder
	q.WriteString("WITH c0 AS (SELECT price + price AS p FROM trades)")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&q, ", c%d AS (SELECT p + p AS p FROM c%d)", i, i-1)
	}
	q.WriteString(" SELECT p FROM c29")
	_, err := sql.Plan(q.String(), catalog)
	if err == nil || !strings.Contains(err.Error(), "expand to more than 20000 expression nodes") {
		t.Fatalf("Plan of 30 doubling WITH queries: %v; want the bound", err)
	}
}

// FuzzPlan: no query, however malformed, panics the front end; every error
// carries an offset inside the query.
// Plans that plan compile to operators.
func FuzzPlan(f *testing.F) {
	src, _ := os.ReadFile(filepath.Join("testdata", "plans.sql"))
	for _, q := range strings.Split(string(src), "\n") {
		f.Add(q)
	}
	for _, q := range []string{
		"SELECT t.symbol, t.price, q.bid FROM trades AS t JOIN quotes AS q ON t.symbol = q.symbol AND q.ts BETWEEN t.ts - INTERVAL '5' SECOND AND t.ts",
		"SELECT t.symbol, s.name FROM trades AS t LEFT JOIN symbols AS s ON t.symbol = s.symbol WHERE s.name IS NOT NULL",
		"SELECT symbol, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol HAVING sum(quantity) > 10 EMIT CHANGES",
		"WITH a AS (SELECT symbol, price * 2 AS p, ts FROM trades WHERE quantity > 1), b AS (SELECT * FROM a WHERE p > 3) SELECT window_start, count(*) FROM TUMBLE(b, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
		"SELECT DISTINCT x.s, upper(x.s) FROM (SELECT symbol AS s FROM trades WHERE symbol ~ '^A' AND regexp_extract(symbol, '(A)(.)', 2) IS NOT NULL) AS x",
		"SELECT t.symbol, r.bid FROM trades t LEFT JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON t.symbol = r.symbol AND r.bid > 1",
	} {
		f.Add(q)
	}
	joined := sql.Catalog{
		"trades":  catalog["trades"],
		"quotes":  {{Name: "symbol", Type: value.String}, {Name: "bid", Type: value.Decimal(18, 4)}, {Name: "ts", Type: value.Timestamp}},
		"symbols": {{Name: "symbol", Type: value.String}, {Name: "name", Type: value.String}},
		"rates":   {{Name: "symbol", Type: value.String}, {Name: "bid", Type: value.Decimal(18, 4)}, {Name: "ts", Type: value.Timestamp}},
	}
	tables := sql.Tables{"symbols": {Key: []string{"symbol"}}, "rates": {Key: []string{"symbol"}, Time: "ts"}}
	f.Fuzz(func(t *testing.T, q string) {
		root, err := sql.PlanTables(q, joined, tables)
		for _, e := range sql.AsErrors(err) {
			if e.Offset > len(q)+1 {
				t.Errorf("Plan(%q): error %q at offset %d, beyond the query", q, e.Msg, e.Offset)
			}
		}
		if err == nil {
			// Compiling may refuse a plan, but never panics.
			_, _ = streamop.Compile(root)
		}
	})
}

// TestReadColumns: a plan reads the columns its expressions use and those
// it passes to its output, through every kind of node, and no others.
func TestReadColumns(t *testing.T) {
	cat := sql.Catalog{
		"trades": catalog["trades"], // symbol, price, quantity, ts, score, active, note
		"quotes": {{Name: "symbol", Type: value.String}, {Name: "bid", Type: value.Decimal(18, 4)}, {Name: "ts", Type: value.Timestamp}, {Name: "venue", Type: value.String}},
		"names":  {{Name: "symbol", Type: value.String}, {Name: "name", Type: value.String}, {Name: "sector", Type: value.String}},
	}
	tables := sql.Tables{"names": {Key: []string{"symbol"}}}
	for _, tt := range []struct {
		query string
		want  map[string]string // each source's columns read
	}{
		{"SELECT * FROM trades", map[string]string{"trades": "symbol price quantity ts score active note"}},
		{"SELECT symbol FROM trades WHERE quantity > 1", map[string]string{"trades": "symbol quantity"}},
		{"SELECT upper(s) FROM (SELECT symbol AS s, price AS p FROM trades WHERE active) x", map[string]string{"trades": "symbol active"}},
		{"SELECT window_start, symbol, sum(price) FILTER (WHERE score > 0) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE active GROUP BY window_start, window_end, symbol HAVING count(*) > 1",
			map[string]string{"trades": "symbol price ts score active"}},
		{"SELECT symbol, count(*) FROM trades GROUP BY symbol", map[string]string{"trades": "symbol"}},
		{"SELECT note, avg(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM trades", map[string]string{"trades": "symbol price ts note"}},
		{"SELECT t.symbol, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol AND q.ts BETWEEN t.ts - INTERVAL '1' SECOND AND t.ts AND q.venue <> t.note",
			map[string]string{"trades": "symbol ts note", "quotes": "symbol bid ts venue"}},
		{"SELECT t.price, n.name FROM trades t JOIN names n ON t.symbol = n.symbol", map[string]string{"trades": "symbol price", "names": "symbol name"}},
		{"SELECT symbol, n FROM (SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (SELECT window_start AS ws, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol) c) x WHERE r <= 2",
			map[string]string{"trades": "symbol ts"}},
		{"SELECT price FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, symbol ORDER BY quantity DESC) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE active) x WHERE r <= 1",
			map[string]string{"trades": "symbol price quantity ts active"}},
		{"SELECT note FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) x WHERE r <= 1", map[string]string{"trades": "symbol ts note"}},
		{"SELECT DISTINCT symbol FROM trades", map[string]string{"trades": "symbol"}},
		{"SELECT count(*) FROM trades", map[string]string{"trades": ""}},
		{"SELECT symbol, ts FROM trades WHERE active UNION ALL SELECT venue, ts FROM quotes", map[string]string{"trades": "symbol ts active", "quotes": "ts venue"}},
	} {
		root, err := sql.PlanTables(tt.query, cat, tables)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		got := map[string]string{}
		for source, read := range plan.ReadColumns(root) {
			var names []string
			for i, r := range read {
				if r {
					names = append(names, cat[source][i].Name)
				}
			}
			got[source] = strings.Join(names, " ")
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: reads %v; want %v", tt.query, got, tt.want)
		}
	}
}
