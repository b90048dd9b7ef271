package streamop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
)

// TestChangeAggKeepsEarlierRow: an inner group's row that cannot be made
// (its select list fails) or aggregated (an infinite double, which could
// never be taken out again) changes nothing, and is an error event: the
// outer group keeps the group's earlier row, as a reader of the inner
// query's changelog would, and takes that one out at the next change.
func TestChangeAggKeepsEarlierRow(t *testing.T) {
	p := compileSQL(t, `SELECT initial, count(*) AS n, sum(r) AS r, sum(d) AS d
		FROM (SELECT substr(sym, 1, 1) AS initial, sym, 10 / sum(v) AS r, CAST(sum(v) AS double) * 1e305 AS d FROM trades GROUP BY sym) s
		GROUP BY initial`)
	op := p.NewStateful(StatefulOptions{})
	if _, ok := op.(changeDeltas); !ok {
		t.Fatalf("%T, want a changeAgg that writes deltas", op)
	}
	var written []string
	step := func(v int64) (failed int) {
		t.Helper()
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		op.Process(batchOf(testRow{time.Second, "AB", v}), out, fixedTime(math.MinInt64), &fail)
		op.Advance(fixedTime(math.MinInt64), out, errs.add)
		if len(fail) > 0 {
			t.Fatalf("input rows failed: %v", fail)
		}
		for _, row := range out.Rows {
			written = append(written, fmt.Sprint(row[2:]))
		}
		return len(errs)
	}
	if failed := step(2); failed != 0 {
		t.Fatalf("%d failures of the first row", failed)
	}
	if failed := step(-2); failed != 1 { // 10 / 0
		t.Errorf("%d failures of a row whose select list fails; want 1", failed)
	}
	if failed := step(5000); failed != 1 { // 5e308
		t.Errorf("%d failures of a row of an infinite double; want 1", failed)
	}
	if failed := step(-4997); failed != 0 {
		t.Errorf("%d failures of the last row", failed)
	}
	step(0) // the inner group's row is written again, the same: nothing changes
	// The group's sums are 2, then 0 and 5000, which fail, then 3.
	if want := []string{"[A 1 5 2e+305]", "[A 1 3 3e+305]"}; !slices.Equal(written, want) {
		t.Errorf("rows written %v; want %v", written, want)
	}
}

// TestChangeAggOfWindows: a window's row written again, for a late
// record within the allowed lateness, replaces its earlier row in the
// outer group rather than adding to it.
func TestChangeAggOfWindows(t *testing.T) {
	p := compileSQL(t, `SELECT sym, count(*) AS windows, sum(n) AS n
		FROM (SELECT window_start, sym, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym) w
		GROUP BY sym`)
	op := p.NewStateful(StatefulOptions{AllowedLateness: int64(30 * time.Second)})
	var written []string
	step := func(wm time.Duration, rows ...testRow) {
		t.Helper()
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		mark := fixedTime(int64(wm))
		if late, _ := op.Process(batchOf(rows...), out, mark, &fail); late > 0 || len(fail) > 0 {
			t.Fatalf("%d late, failures %v", late, fail)
		}
		op.Advance(mark, out, errs.add)
		if len(errs) > 0 {
			t.Fatalf("failures %v", errs)
		}
		for _, row := range out.Rows {
			written = append(written, fmt.Sprint(row[2:]))
		}
	}
	step(0, testRow{time.Second, "A", 1}, testRow{2 * time.Second, "A", 1})
	step(10 * time.Second)                                 // the window closes
	step(12*time.Second, testRow{3 * time.Second, "A", 1}) // late, within the allowed lateness
	if want := []string{"[A 1 2]", "[A 1 3]"}; !slices.Equal(written, want) {
		t.Errorf("rows written %v; want %v", written, want)
	}
	// Once the inner aggregation lets the windows go, their rows are
	// never written again, and are forgotten.
	c := op.(changeDeltas).changeAgg
	for i := range 100 {
		at := time.Duration(20+10*i) * time.Second
		step(at, testRow{at, "A", 1})
	}
	if len(c.last) > 5 || len(c.starts) != len(c.last) {
		t.Errorf("after 100 windows, the latest rows of %d inner groups held (%d starts); want those of the windows within the allowed lateness", len(c.last), len(c.starts))
	}
}

// TestChangeAggDeltas: an aggregation of a GROUP BY's rows rebuilt from a
// snapshot and the changes after it holds the latest rows the operator
// holds, and writes what it writes: of windows, whose rows are forgotten
// as they close and written again within the allowed lateness, and of a
// GROUP BY without a window; across the end of an input too.
func TestChangeAggDeltas(t *testing.T) {
	s := int64(time.Second)
	for name, query := range map[string]string{
		"windows": `SELECT sym, count(*) AS windows, sum(n) AS n, avg(v) AS v FROM (SELECT window_start, sym, count(*) AS n, sum(v) AS v
			FROM TUMBLE(trades, ts, INTERVAL '2' SECOND) GROUP BY window_start, window_end, sym) w GROUP BY sym`,
		"continuous": `SELECT initial, count(*) AS syms, sum(n) AS n, sum(v) AS v FROM (SELECT substr(sym, 1, 2) AS initial, sym, count(*) AS n, sum(v) AS v
			FROM trades GROUP BY sym) g GROUP BY initial`,
	} {
		t.Run(name, func(t *testing.T) {
			p := compileSQL(t, query)
			newOp := func() changeDeltas {
				return p.NewStateful(StatefulOptions{AllowedLateness: 3 * s}).(changeDeltas)
			}
			origins := NewOrigins(nil)
			step := func(op changeDeltas, i int, rows []testRow) []string {
				out := new(message.Batch)
				out.Reset(p.StatefulWidth())
				var fail failures
				var errs errorList
				mark := fixedTime(int64(i)*s/4 - s)
				if i == 350 {
					// The end of an input, and a run that reads on.
					mark = fixedTime(math.MaxInt64)
				}
				op.Process(batchOf(rows...), out, mark, &fail)
				op.Advance(mark, out, errs.add)
				if len(fail)+len(errs) > 0 {
					t.Fatalf("batch %d: failures %v %v", i, fail, errs)
				}
				var written []string
				for _, row := range out.Rows {
					written = append(written, fmt.Sprint(row))
				}
				return written
			}
			held := func(op changeDeltas) []string {
				var l []string
				for k, args := range op.last {
					l = append(l, fmt.Sprintf("%x=%v", k, args))
				}
				slices.Sort(l)
				return l
			}
			live := newOp()
			var chain [][]byte
			rebuild := func() changeDeltas {
				op := newOp()
				restoreChain(t, op, chain, origins)
				return op
			}
			var copied changeDeltas
			rng := rand.New(rand.NewPCG(7, 8))
			deltas := 0
			for i := range 400 {
				var rows []testRow
				for range 10 {
					// Some rows late, within the allowed lateness or beyond.
					ts := time.Duration(int64(i)*s/4 + rng.Int64N(s/4) - rng.Int64N(2)*rng.Int64N(5*s))
					rows = append(rows, testRow{ts, fmt.Sprintf("K%d", rng.IntN(40)), rng.Int64N(100)})
				}
				want := step(live, i, rows)
				if copied.changeAgg != nil {
					if got := step(copied, i, rows); !slices.Equal(got, want) {
						t.Fatalf("batch %d: the rebuilt operator wrote\n%v\nwant\n%v", i, got, want)
					}
				}
				switch {
				case i == 40:
					chain = append(chain, live.AppendSnapshot(nil, origins))
				case i > 40 && (rng.IntN(8) == 0 || i == 300 || i == 350):
					chain = append(chain, live.AppendChanges(nil, origins))
					deltas++
					r := rebuild()
					if got, want := held(r), held(live); !slices.Equal(got, want) || r.Size() != live.Size() {
						t.Fatalf("batch %d: rebuilt from %d links, %d latest rows and %d groups; the operator holds %d and %d", i, len(chain), len(got), r.Size(), len(want), live.Size())
					}
					if i == 300 {
						copied = r
					}
				}
			}
			if deltas < 20 {
				t.Errorf("%d deltas", deltas)
			}
		})
	}
}
