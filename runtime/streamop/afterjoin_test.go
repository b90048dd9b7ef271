package streamop

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
)

// TestAfterJoinLateOnce: a row of a partition behind the watermark (back
// from idleness) that would pair with a held row behind the windows'
// watermark is late once, at the join, rather than taken by the join and
// then dropped by the window: every input row is either late or absorbed,
// and each pair is in a window.
func TestAfterJoinLateOnce(t *testing.T) {
	p := compileSQL(t, `WITH j AS (SELECT t.sym, q.ts FROM trades t JOIN quotes q
			ON t.sym = q.sym AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND)
		SELECT window_start, sym, count(*) AS n FROM TUMBLE(j, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym`)
	op := p.NewStateful(StatefulOptions{})
	if _, ok := op.(*afterJoin); !ok {
		t.Fatalf("%T, want an afterJoin", op)
	}
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	trades, quotes := &message.Origin{Source: "trades"}, &message.Origin{Source: "quotes", Partition: 1}
	trade := batchOf(testRow{100 * time.Second, "A", 1})
	trade.Origin = trades
	quote := batchOf(testRow{97 * time.Second, "A", 2})
	quote.Origin = quotes
	// The trade is held, and the windows' watermark is at it.
	op.Process(trade, out, fixedTime(0), &fail)
	op.Advance(fixedTime(int64(100*time.Second)), out, errs.add)
	// The quotes' partition comes back, at its own watermark of 90 s.
	behind := originMark{wm: int64(100 * time.Second), behind: int64(90 * time.Second), replaying: quotes}
	late, absorbed := op.Process(quote, out, behind, &fail)
	op.Advance(fixedTime(math.MaxInt64), out, errs.add)
	if late != 1 || absorbed != 0 || len(fail)+len(errs) > 0 {
		t.Errorf("the quote behind the windows: %d late, %d absorbed, failures %v %v; want it late once", late, absorbed, fail, errs)
	}
	if out.Len() != 0 {
		t.Errorf("%d window rows; want none (the trade's only partner was late)", out.Len())
	}
}

// TestAfterJoinMoved: once a partition its state was built from moves
// away, the state cannot be taken apart, and Moved says so.
func TestAfterJoinMoved(t *testing.T) {
	p := compileSQL(t, `SELECT t.sym, count(*) AS n FROM trades t JOIN quotes q
			ON t.sym = q.sym AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND GROUP BY t.sym`)
	op := p.NewStateful(StatefulOptions{}).(*afterJoin)
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	trades := &message.Origin{Source: "trades"}
	b := batchOf(testRow{time.Second, "A", 1})
	b.Origin = trades
	op.Process(b, out, fixedTime(0), &fail)
	if err := op.Moved(); err != nil {
		t.Fatalf("Moved before any partition moved: %v", err)
	}
	trades.Generation.Add(1)
	if err := op.Moved(); err == nil {
		t.Fatal("Moved after the trades' partition moved away: nil")
	}
}
