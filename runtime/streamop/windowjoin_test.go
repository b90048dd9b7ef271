package streamop

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// slowOrigin is a watermark at which one partition's own is behind the
// pipeline's, as for a partition replaying.
type slowOrigin struct {
	mark, slow int64
	origin     *message.Origin
}

func (w slowOrigin) For(o *message.Origin) int64 {
	if o != nil && o == w.origin {
		return w.slow
	}
	return w.mark
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
	from := func(o *message.Origin, rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin = o
		return b
	}
	op := p.NewStateful(StatefulOptions{})
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	op.Process(from(trades, testRow{time.Second, "A", 1}, testRow{2 * time.Second, "A", 2}, testRow{3 * time.Second, "B", 7}), out, fixedTime(math.MinInt64), &fail)
	op.Process(from(quotes, testRow{1500 * time.Millisecond, "A", 5}, testRow{4 * time.Second, "A", -1}, testRow{5 * time.Second, "C", 3}), out, fixedTime(math.MinInt64), &fail)
	if f := op.(Filterer).TakeFiltered(); f != 1 {
		t.Errorf("%d rows filtered; want the quote of v -1", f)
	}
	// The trades' window closes; the quotes' waits for their partition.
	op.Advance(slowOrigin{mark: int64(20 * time.Second), slow: 0, origin: quotes}, out, errs.add)
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
