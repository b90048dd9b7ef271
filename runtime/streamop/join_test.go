package streamop

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// newTestTableJoin joins trades (ts, sym, v) LEFT JOIN a table of the same
// columns keyed by sym.
func newTestTableJoin() *tableJoin {
	table := &plan.Scan{Source: "table", Cols: testScan.Cols}
	return newTableJoin(&plan.Join{Kind: plan.TableJoin, Left: testScan, Right: table, Outer: true,
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}})
}

// tableStep feeds b to j and returns what comes out, each row as the
// stream's v and the table's v.
func tableStep(t *testing.T, j *tableJoin, b *message.Batch) []string {
	t.Helper()
	out := new(message.Batch)
	out.Reset(6)
	var fail failures
	var errs errorList
	if b != nil {
		j.Process(b, out, fixedMark(0), &fail)
	}
	j.Advance(fixedMark(0), out, errs.add)
	if len(fail)+len(errs) > 0 {
		t.Fatal(fail, errs)
	}
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprintf("%s:%v=%v", row[1], row[2], row[5]))
	}
	return got
}

// TestTableJoinLoadAndDelete: stream rows wait until every table partition
// is loaded; a row whose offset the batch lists in Deletes deletes its
// key's row; and a join restored from a snapshot waits again for the
// table partitions of its own run, which may hold rows written since the
// snapshot (a Kafka table's tombstone here).
func TestTableJoinLoadAndDelete(t *testing.T) {
	part := &message.Origin{Source: "table", Partition: 0}
	stream := &message.Origin{Source: "trades", Partition: 0}
	tableBatch := func(deletes []int64, rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin, b.Deletes = part, deletes
		return b
	}
	streamBatch := func(rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin = stream
		return b
	}
	j := newTestTableJoin()
	j.Begin([]*message.Origin{stream, part})
	if got := tableStep(t, j, streamBatch(testRow{0, "A", 1}, testRow{0, "B", 2})); got != nil {
		t.Fatalf("joined before the table was loaded: %v", got)
	}
	// A, B and C, then B deleted: offsets 0 to 3.
	tableStep(t, j, tableBatch([]int64{3}, testRow{0, "A", 10}, testRow{0, "B", 20}, testRow{0, "C", 30}, testRow{0, "B", 0}))
	j.Loaded(part)
	if got, want := tableStep(t, j, nil), []string{"A:1=10", "B:2=NULL"}; !slices.Equal(got, want) {
		t.Fatalf("once loaded: %v, want %v", got, want)
	}
	snap := j.AppendSnapshot(nil, NewOrigins([]*message.Origin{stream, part}))

	restored := newTestTableJoin()
	restored.Begin([]*message.Origin{stream, part})
	r := value.NewReader(snap)
	if err := restored.RestoreSnapshot(r, NewOrigins([]*message.Origin{stream, part})); err != nil || r.Len() != 0 {
		t.Fatalf("restore: %v, %d bytes left", err, r.Len())
	}
	if got := tableStep(t, restored, streamBatch(testRow{0, "C", 3})); got != nil {
		t.Fatalf("restored, joined before the table was loaded again: %v", got)
	}
	tableStep(t, restored, tableBatch([]int64{0}, testRow{0, "C", 0})) // a tombstone written since the snapshot
	restored.Loaded(part)
	if got, want := tableStep(t, restored, nil), []string{"C:3=NULL"}; !slices.Equal(got, want) {
		t.Fatalf("restored, once loaded: %v, want %v", got, want)
	}
	if got, want := tableStep(t, restored, streamBatch(testRow{0, "A", 4})), []string{"A:4=10"}; !slices.Equal(got, want) {
		t.Fatalf("restored, then: %v, want %v", got, want)
	}
}
