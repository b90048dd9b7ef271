package streamop

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestLookupAfterPairs: the pairs of an interval join, trades JOIN quotes
// ON sym within a second, JOIN names ON quotes.v = names.v. Pairs made
// before the table is loaded wait, acknowledging nothing, across a
// snapshot and restore; once it is, they are looked up in it, in order,
// and a pair that finds no row is dropped.
func TestLookupAfterPairs(t *testing.T) {
	trades := &message.Origin{Source: "trades", Partition: 0}
	quotes := &message.Origin{Source: "quotes", Partition: 0}
	names := &message.Origin{Source: "names", Partition: 0}
	all := []*message.Origin{trades, quotes, names}
	n := &plan.Join{Kind: plan.IntervalJoin, Left: testScan, Right: &plan.Scan{Source: "quotes", Cols: testScan.Cols},
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, LeftTime: colTS, RightTime: colTS,
		Lower: int64(time.Second), Upper: int64(time.Second),
		Lookups: []*plan.Lookup{{
			Table: &plan.Scan{Source: "names", Cols: testScan.Cols},
			Keys:  []expr.Expr{&expr.Column{Index: 5, Name: "quotes.v", T: value.Int}}, TableKeys: []expr.Expr{colV},
		}}}
	newOp := func() *lookupAfter {
		a := newLookupAfter(n, newIntervalJoin(n), nil)
		a.Begin(all)
		return a
	}
	batch := func(o *message.Origin, rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin = o
		return b
	}
	step := func(a *lookupAfter, b *message.Batch) []string {
		t.Helper()
		return joinStep(t, a, b, 9, 0, 1, 2, 5, 7)
	}
	a := newOp()
	step(a, batch(trades, testRow{0, "A", 1}, testRow{0, "B", 2}))
	if got := step(a, batch(quotes, testRow{500 * time.Millisecond, "A", 10}, testRow{0, "B", 99})); got != nil {
		t.Fatalf("looked up before the table was loaded: %v", got)
	}
	if low := a.Low(); low != math.MinInt64 {
		t.Errorf("Low %d while pairs wait; want none acknowledged", low)
	}
	origins := NewOrigins(all)
	restored := newOp()
	r := value.NewReader(a.AppendSnapshot(nil, origins))
	if err := restored.RestoreSnapshot(r, origins); err != nil || r.Len() != 0 {
		t.Fatalf("restore: %v, %d bytes left", err, r.Len())
	}
	for _, op := range []*lookupAfter{a, restored} {
		if got, want := op.Size(), 4+2; got != want {
			t.Errorf("Size %d; want %d: the join's 4 rows and 2 pairs waiting", got, want)
		}
		step(op, batch(names, testRow{0, "ten", 10}))
		if got := step(op, nil); got != nil {
			t.Fatalf("looked up before the table was loaded: %v", got)
		}
		op.Loaded(names)
		if got, want := step(op, nil), []string{"A:1=10=ten"}; !slices.Equal(got, want) {
			t.Errorf("once loaded: %v, want %v (B's pair finds no name)", got, want)
		}
		if got, want := step(op, batch(trades, testRow{time.Second, "A", 3})), []string{"A:3=10=ten"}; !slices.Equal(got, want) {
			t.Errorf("then: %v, want %v", got, want)
		}
	}
}
