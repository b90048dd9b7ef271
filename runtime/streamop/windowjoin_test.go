package streamop

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// slowOrigin is originMark without saying which partition replays (it
// has no Replaying): one side's aggregation then writes a window the
// other's holds.
type slowOrigin struct{ m originMark }

func (w slowOrigin) For(o *message.Origin) int64 { return w.m.For(o) }

// batchFrom is a batch of rows of partition o.
func batchFrom(o *message.Origin, rows ...testRow) *message.Batch {
	b := batchOf(rows...)
	b.Origin = o
	return b
}

// TestWindowJoinWaitsForBothSides: a window one side's aggregation has
// written waits, held, until the other's lets it go too, across a
// checkpoint and restore; then its rows are joined once.
func TestWindowJoinWaitsForBothSides(t *testing.T) {
	p := compileSQL(t, `SELECT T.sym, T.ws, T.n, T.v, Q.v AS qv
		FROM (SELECT sym, window_start AS ws, count(*) AS n, sum(v) AS v FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) T
		JOIN (SELECT sym, window_start AS ws, sum(v) AS v FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND) WHERE v > 0 GROUP BY sym, window_start, window_end) Q
		ON T.sym = Q.sym AND T.ws = Q.ws`)
	trades, quotes := &message.Origin{Source: "trades"}, &message.Origin{Source: "quotes"}
	op := p.NewStateful(StatefulOptions{})
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	op.Process(batchFrom(trades, testRow{time.Second, "A", 1}, testRow{2 * time.Second, "A", 2}, testRow{3 * time.Second, "B", 7}), out, fixedTime(math.MinInt64), &fail)
	q := batchFrom(quotes, testRow{1500 * time.Millisecond, "A", 5}, testRow{4 * time.Second, "A", -1}, testRow{5 * time.Second, "C", 3})
	if f := op.(Filterer).Filter(q, &fail); f != 1 || q.Len() != 2 {
		t.Errorf("%d rows filtered, %d left; want the quote of v -1 filtered", f, q.Len())
	}
	op.Process(q, out, fixedTime(math.MinInt64), &fail)
	// The trades' window closes; the quotes' waits for their partition.
	op.Advance(slowOrigin{originMark{wm: int64(20 * time.Second), behind: 0, replaying: quotes}}, out, errs.add)
	if out.Len() != 0 || op.Size() != 4 || op.Low() != 0 {
		t.Fatalf("with the quotes' window open: %d rows written, %d held, low %d; want none, the quotes' 2 groups and the trades' 2 rows, 0", out.Len(), op.Size(), op.Low())
	}
	origins := NewOrigins([]*message.Origin{trades, quotes})
	snap := op.(Snapshotter).AppendSnapshot(nil, origins)
	restored := p.NewStateful(StatefulOptions{})
	if err := restored.(Snapshotter).RestoreSnapshot(value.NewReader(snap), origins); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]Stateful{"running": op, "restored": restored} {
		out.Reset(p.StatefulWidth())
		op.Advance(fixedTime(20*int64(time.Second)), out, errs.add)
		var got []string // the joined rows, before the select list
		for _, row := range out.Rows {
			got = append(got, fmt.Sprint(row))
		}
		if want := []string{fmt.Sprint(value.Row{value.StringValue("A"), value.TimestampValue(0), value.IntValue(2), value.IntValue(3), value.StringValue("A"), value.TimestampValue(0), value.IntValue(5)})}; !slices.Equal(got, want) {
			t.Errorf("%s: joined %v; want %v", name, got, want)
		}
		if op.Size() != 0 || op.Low() != math.MaxInt64 {
			t.Errorf("%s: %d held, low %d after the join; want nothing", name, op.Size(), op.Low())
		}
	}
	if len(fail) > 0 || len(errs) > 0 {
		t.Errorf("failures %v, errors %v", fail, errs)
	}
}

// TestWindowJoinWaitsForReplay: a window is not joined while a partition
// replaying may still bring rows to it, on either side, though neither
// side's aggregation holds a group of it from that partition yet.
func TestWindowJoinWaitsForReplay(t *testing.T) {
	p := compileSQL(t, `SELECT T.sym, T.ws, T.n, Q.n AS qn
		FROM (SELECT sym, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) T
		JOIN (SELECT sym, window_start AS ws, count(*) AS n FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) Q
		ON T.sym = Q.sym AND T.ws = Q.ws`)
	trades, q1, q2 := &message.Origin{Source: "trades"}, &message.Origin{Source: "quotes"}, &message.Origin{Source: "quotes", Partition: 1}
	op := p.NewStateful(StatefulOptions{})
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	op.Process(batchFrom(trades, testRow{time.Second, "x", 1}), out, fixedTime(math.MinInt64), &fail)
	op.Process(batchFrom(q1, testRow{2 * time.Second, "x", 1}), out, fixedTime(math.MinInt64), &fail)
	replaying := originMark{wm: int64(20 * time.Second), behind: 0, replaying: q2}
	op.Advance(replaying, out, errs.add)
	if out.Len() != 0 {
		t.Fatalf("joined %v while partition 1 of quotes replays before the window's end", out.Rows)
	}
	late, absorbed := op.Process(batchFrom(q2, testRow{3 * time.Second, "x", 1}), out, replaying, &fail)
	if late != 0 || absorbed != 1 {
		t.Fatalf("the replaying partition's row: %d late, %d absorbed; want it absorbed", late, absorbed)
	}
	op.Advance(fixedTime(int64(30*time.Second)), out, errs.add)
	if out.Len() != 1 || out.Rows[0][2].Int() != 1 || out.Rows[0][5].Int() != 2 {
		t.Errorf("joined %v; want one row, of 1 trade and 2 quotes", out.Rows)
	}
	if len(fail)+len(errs) > 0 {
		t.Errorf("failures %v, errors %v", fail, errs)
	}
	// A partition the state was built from moves away: the engine stops.
	if err := op.(interface{ Moved() error }).Moved(); err != nil {
		t.Fatalf("Moved() = %v before any partition moved", err)
	}
	q1.Generation.Add(1)
	if err := op.(interface{ Moved() error }).Moved(); err == nil || !strings.Contains(err.Error(), "run one engine for a window join") {
		t.Errorf("Moved() = %v after a partition moved; want the engine to stop", err)
	}
}

// TestWindowJoinOuterFailures: a FULL window join writes the rows of
// each side that match nothing, a NULL key's too, with NULLs; a pair
// whose ON fails is an error, and neither of its rows is written with
// NULLs.
func TestWindowJoinOuterFailures(t *testing.T) {
	p := compileSQL(t, `SELECT T.sym, T.n, Q.sym AS qsym, Q.n AS qn
		FROM (SELECT sym, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) T
		FULL JOIN (SELECT sym, window_start AS ws, count(*) AS n FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) Q
		ON T.sym = Q.sym AND T.ws = Q.ws AND 10 / (Q.n - 2) > 0`)
	trades, quotes := &message.Origin{Source: "trades"}, &message.Origin{Source: "quotes"}
	op := p.NewStateful(StatefulOptions{})
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	// a: one trade, three quotes, a pair; b: one and two, ON divides by
	// zero; c: a trade alone; d: quotes alone; a NULL key on each side.
	op.Process(batchFrom(trades, testRow{time.Second, "a", 1}, testRow{time.Second, "b", 1}, testRow{time.Second, "c", 1}), out, fixedTime(math.MinInt64), &fail)
	op.Process(batchFrom(quotes, testRow{time.Second, "a", 1}, testRow{time.Second, "a", 1}, testRow{time.Second, "a", 1},
		testRow{time.Second, "b", 1}, testRow{time.Second, "b", 1}, testRow{time.Second, "d", 1}), out, fixedTime(math.MinInt64), &fail)
	nulls := batchFrom(trades, testRow{time.Second, "", 1})
	nulls.Rows[0][1] = value.NullValue()
	op.Process(nulls, out, fixedTime(math.MinInt64), &fail)
	nulls = batchFrom(quotes, testRow{time.Second, "", 1})
	nulls.Rows[0][1] = value.NullValue()
	op.Process(nulls, out, fixedTime(math.MinInt64), &fail)
	op.Advance(fixedTime(int64(20*time.Second)), out, errs.add)
	var got []string // sym, n of each side
	for _, row := range out.Rows {
		got = append(got, fmt.Sprintf("%v %v | %v %v", row[0], row[2], row[3], row[5]))
	}
	slices.Sort(got)
	want := []string{"NULL 1 | NULL NULL", "NULL NULL | NULL 1", "NULL NULL | d 1", "a 1 | a 3", "c 1 | NULL NULL"}
	if !slices.Equal(got, want) {
		t.Errorf("joined\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "ON of a window's joined row") || !strings.Contains(errs[0].Error(), "division by zero") {
		t.Errorf("errors %v; want b's pair's division by zero", errs)
	}
	if len(fail) > 0 || op.Size() != 0 {
		t.Errorf("failures %v, %d held", fail, op.Size())
	}
}

// TestWindowJoinJoinedOnce: a window is joined once. A row of it from a
// partition that first sends after the join, judged by a watermark of its
// own, is late, on the side that had no row of the window as on the other:
// it does not open the window again to be joined alone, which a LEFT JOIN
// would write with NULLs beside a match it had.
func TestWindowJoinJoinedOnce(t *testing.T) {
	p := compileSQL(t, `SELECT T.sym, T.n, Q.sym AS qsym, Q.n AS qn
		FROM (SELECT sym, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) T
		LEFT JOIN (SELECT sym, window_start AS ws, count(*) AS n FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND) GROUP BY sym, window_start, window_end) Q
		ON T.sym = Q.sym AND T.ws = Q.ws`)
	for _, first := range []string{"trades", "quotes"} {
		op := p.NewStateful(StatefulOptions{})
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		other := map[string]string{"trades": "quotes", "quotes": "trades"}[first]
		op.Process(batchFrom(&message.Origin{Source: first}, testRow{time.Second, "a", 1}), out, fixedTime(math.MinInt64), &fail)
		op.Advance(fixedTime(int64(20*time.Second)), out, errs.add)
		joined := out.Len()
		// A partition of the other source sends its first row only now.
		later := &message.Origin{Source: other, Partition: 1}
		own := originMark{wm: int64(20 * time.Second), behind: math.MinInt64, replaying: later}
		late, absorbed := op.Process(batchFrom(later, testRow{2 * time.Second, "a", 1}), out, own, &fail)
		op.Advance(fixedTime(int64(30*time.Second)), out, errs.add)
		if late != 1 || absorbed != 0 || out.Len() != joined {
			t.Errorf("%s first: the row of the joined window from %s was %d late, %d absorbed; rows %v (joined %d); want it late, nothing written again",
				first, other, late, absorbed, out.Rows, joined)
		}
		if len(fail)+len(errs) > 0 {
			t.Errorf("failures %v, errors %v", fail, errs)
		}
	}
}
