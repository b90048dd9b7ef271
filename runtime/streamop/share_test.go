package streamop

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestMapSharesSubexpressions: a Map evaluates each subexpression its
// WHERE and select list share once a row (expr.Share), and its rows, its
// filtered count and its failures are those of the same Map evaluating
// every expression as written, over random rows: the short circuits of
// AND, OR and CASE hold, and expressions that differ in a constant, a
// column or a type are not taken for one another.
func TestMapSharesSubexpressions(t *testing.T) {
	for _, c := range []struct {
		query  string
		shared int
	}{
		{`SELECT upper(sym) AS a, lower(UPPER(sym)) AS b FROM trades WHERE Upper( sym ) <> 'X'`, 1},
		{`SELECT abs(v) * 2 AS a FROM trades WHERE abs(v) * 2 > 3`, 1},
		// Nexmark q21's shape: the WHERE's regexp_extract is the ELSE's.
		{`SELECT v, CASE WHEN lower(sym) = 'a' THEN '0' WHEN lower(sym) = 'b' THEN '1'
		    ELSE regexp_extract(sym, '(x+)(y*)', 2) END AS id
		  FROM trades WHERE regexp_extract(sym, '(x+)(y*)', 2) IS NOT NULL OR lower(sym) IN ('a', 'b')`, 2},
		// A division by zero the AND and the CASE keep from happening.
		{`SELECT CASE WHEN v <> 0 THEN abs(100 / v) END AS a, abs(100 / v) AS b
		  FROM trades WHERE v <> 0 AND abs(100 / v) > 30`, 1},
		{`SELECT CASE WHEN v = 0 THEN 0 ELSE abs(100 / v) END AS a FROM trades WHERE v = 0 OR abs(100 / v) > 30`, 1},
		// A division by zero that fails rows, once each.
		{`SELECT abs(100 / v) AS a, abs(100 / v) + 1 AS b FROM trades`, 1},
		{`SELECT CAST(sym AS int) AS a, CAST(sym AS int) * 2 AS b FROM trades WHERE sym <> ''`, 1},
		// A WITH query's column, used twice, is its expression twice.
		{`WITH t AS (SELECT regexp_extract(sym, '(x+)', 1) AS x, v FROM trades)
		  SELECT x, length(x) AS n FROM t WHERE x IS NOT NULL`, 1},
		// Alike but for a constant, a column or a type: nothing shared.
		{`SELECT substr(sym, 1, 2) AS a, substr(sym, 1, 3) AS b, abs(v) AS c, abs(v + 1) AS d,
		    CAST(v AS string) AS e, CAST(CAST(v AS double) AS string) AS f FROM trades`, 0},
		{`SELECT sym || 'a'', ''b' AS a, sym || 'a'', ''c' AS b FROM trades`, 0},
		// A NULL of type string is not the string 'NULL'.
		{`SELECT upper(sym) || 'NULL' AS a, upper(sym) || CAST(NULL AS string) AS b FROM trades`, 1},
		{`SELECT CASE WHEN v > 0 THEN upper(sym) ELSE NULL END AS a, CASE WHEN v > 0 THEN upper(sym) ELSE 'NULL' END AS b FROM trades`, 1},
		{`SELECT coalesce(nullif(sym, 'a'), 'NULL') AS a, coalesce(nullif(sym, 'a'), NULL) AS b FROM trades WHERE coalesce(nullif(sym, 'a'), NULL) IS NULL`, 2},
		// Arithmetic costs no more than a look at a kept value.
		{`SELECT v + 1 AS a, v + 1 AS b FROM trades WHERE v + 1 > 0`, 0},
		// The clock is read at each place.
		{`SELECT date_trunc('hour', now()) AS a, date_trunc('hour', now()) AS b FROM trades`, 0},
		// One inside another: only the outer one is evaluated twice.
		{`SELECT upper(lower(sym)) AS a, upper(lower(sym)) || 'z' AS b FROM trades`, 1},
		{`SELECT upper(lower(sym)) AS a, upper(lower(sym)) || 'z' AS b, lower(sym) AS c FROM trades`, 2},
	} {
		t.Run(c.query, func(t *testing.T) {
			p := compileSQL(t, c.query)
			shared, ok := p.New().(*Map)
			if !ok {
				t.Fatal("not a Map")
			}
			if got := len(shared.pending); got != c.shared {
				t.Errorf("%d subexpressions shared; want %d", got, c.shared)
			}
			plain := &Map{Exprs: p.proj.Exprs}
			if p.filter != nil {
				plain.Predicate = p.filter.Predicate
			}
			r := rand.New(rand.NewPCG(1, 2))
			syms := []string{"a", "B", "x", "xxy", "axyy", "12", "-3", "", "X"}
			for range 20 {
				rows := make([]testRow, 1+r.IntN(64))
				for i := range rows {
					rows[i] = testRow{ts: time.Duration(i) * time.Second, sym: syms[r.IntN(len(syms))], v: r.Int64N(7) - 3}
				}
				in := func() *message.Batch {
					b := batchOf(rows...)
					for i, row := range b.Rows { // NULLs, as any column may hold
						if i%5 == 1 {
							row[1+i%2] = value.NullValue()
						}
					}
					return b
				}
				got, want := runMap(shared, in()), runMap(plain, in())
				if !slices.Equal(got, want) {
					t.Fatalf("shared:\n%v\nas written:\n%v", got, want)
				}
			}
		})
	}
}

// runMap is what m makes of in: its rows, filtered count and failures.
func runMap(m *Map, in *message.Batch) []string {
	out := new(message.Batch)
	out.Reset(len(m.Exprs))
	var fails failures
	filtered := m.Process(in, out, &fails)
	var res []string
	for _, row := range out.Rows {
		var s strings.Builder
		for _, v := range row { // the kind too: 'NULL' and NULL print alike
			fmt.Fprintf(&s, "%s %q, ", v.Kind(), v.String())
		}
		res = append(res, s.String())
	}
	for _, err := range fails {
		res = append(res, "failed: "+err.Error())
	}
	return append(res, fmt.Sprintf("filtered %d", filtered))
}
