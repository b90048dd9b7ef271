package streamop

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
)

// TestProcessingTimeCloses: a window of processing time holds the rows
// processed in it, whatever their event time, and closes once the clock
// passes its end, without a watermark or another row.
func TestProcessingTimeCloses(t *testing.T) {
	p := compileSQL(t, `WITH t AS (SELECT *, PROCTIME() AS pt FROM trades)
		SELECT window_start, sym, count(*) AS n FROM TUMBLE(t, pt, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym`)
	now := time.Unix(100, 0)
	op := p.NewStateful(StatefulOptions{Clock: func() time.Time { return now }})
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	// Event times an hour apart, processed at 100 s and 105 s.
	op.Process(batchOf(testRow{time.Hour, "A", 1}), out, fixedTime(math.MinInt64), &fail)
	now = now.Add(5 * time.Second)
	op.Process(batchOf(testRow{3 * time.Hour, "A", 1}), out, fixedTime(math.MinInt64), &fail)
	now = now.Add(4 * time.Second) // 109 s
	op.Advance(fixedTime(math.MinInt64), out, errs.add)
	if out.Len() != 0 || op.Low() != int64(100*time.Second) {
		t.Fatalf("at 109 s: %d rows, low %d; want the window of 100 s to 110 s open", out.Len(), op.Low())
	}
	now = now.Add(time.Second) // 110 s
	op.Advance(fixedTime(math.MinInt64), out, errs.add)
	if len(fail)+len(errs) > 0 || out.Len() != 1 || out.Rows[0][0].Nanos() != int64(100*time.Second) || out.Rows[0][3].Int() != 2 {
		t.Fatalf("at 110 s: rows %v, failures %v %v; want the window of 100 s with both rows", out.Rows, fail, errs)
	}
	// The wall clock steps back to 105 s: processing time does not, and
	// the row goes to the window of 110 s, not to the one written.
	now = now.Add(-5 * time.Second)
	op.Process(batchOf(testRow{time.Hour, "A", 1}), out, fixedTime(math.MinInt64), &fail)
	if at := op.(interface{ ProcessedAt() int64 }).ProcessedAt(); at != int64(110*time.Second) {
		t.Errorf("processed at %s after the clock stepped back to 105 s; want 110 s", time.Duration(at))
	}
	op.Advance(fixedTime(math.MinInt64), out, errs.add)
	op.Advance(fixedTime(math.MaxInt64), out, errs.add) // the end of the input
	if out.Len() != 2 || out.Rows[1][0].Nanos() != int64(110*time.Second) || out.Rows[1][3].Int() != 1 {
		t.Errorf("rows %v; want the window of 110 s with the third row, once the input ended", out.Rows)
	}
}
