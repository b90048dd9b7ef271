package streamop

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/value"
)

// newTestTableJoin joins trades (ts, sym, v) LEFT JOIN a table of the same
// columns keyed by sym.
func newTestTableJoin() *tableJoin {
	table := &plan.Scan{Source: "table", Cols: testScan.Cols}
	return newTableJoin(&plan.Join{Kind: plan.TableJoin, Left: testScan, Right: table, Outer: true,
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}}, nil)
}

// tableStep feeds b to j and returns what comes out, each row as the
// stream's v and the table's v.
func tableStep(t *testing.T, j *tableJoin, b *message.Batch) []string {
	t.Helper()
	return joinStep(t, j, b, 6, 0, 1, 2, 5)
}

// joinStep feeds b, if any, to op, under a watermark at 0, advances op to
// wm, and returns what comes out, rows of width: each as the value of the
// column cols[0], then ":", then those of the others between "=".
func joinStep(t *testing.T, op Stateful, b *message.Batch, width int, wm int64, cols ...int) []string {
	t.Helper()
	out := new(message.Batch)
	out.Reset(width)
	var fail failures
	var errs errorList
	if b != nil {
		op.Process(b, out, fixedTime(0), &fail)
	}
	op.Advance(fixedTime(wm), out, errs.add)
	if len(fail)+len(errs) > 0 {
		t.Fatal(fail, errs)
	}
	var got []string
	for _, row := range out.Rows {
		vals := make([]string, len(cols)-1)
		for i, c := range cols[1:] {
			vals[i] = fmt.Sprint(row[c])
		}
		got = append(got, fmt.Sprintf("%v:%s", row[cols[0]], strings.Join(vals, "=")))
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

// TestTableJoinWaitingInBatches: with MaxRows, the stream rows that
// waited for the table go out a batch at a time, in the order they came,
// rows read meanwhile behind them; nothing is acknowledged until the last
// is written (Low).
func TestTableJoinWaitingInBatches(t *testing.T) {
	part := &message.Origin{Source: "table", Partition: 0}
	stream := &message.Origin{Source: "trades", Partition: 0}
	j := newTestTableJoin()
	j.maxRows = 4
	j.Begin([]*message.Origin{stream, part})
	var rows []testRow
	for i := range 10 {
		rows = append(rows, testRow{0, "A", int64(i)})
	}
	b := batchOf(rows...)
	b.Origin = stream
	tableStep(t, j, b)
	table := batchOf(testRow{0, "A", 100})
	table.Origin = part
	tableStep(t, j, table)
	j.Loaded(part)
	var got []string
	for range 2 {
		step := tableStep(t, j, nil)
		if len(step) != 4 || j.Low() != math.MinInt64 {
			t.Fatalf("an Advance wrote %v, Low %d; want 4 rows, and the rest held", step, j.Low())
		}
		got = append(got, step...)
	}
	late := batchOf(testRow{0, "A", 10})
	late.Origin = stream
	got = append(got, tableStep(t, j, late)...) // behind the last two
	if j.Low() != math.MaxInt64 {
		t.Errorf("Low %d once every row is written", j.Low())
	}
	var want []string
	for i := range 11 {
		want = append(want, fmt.Sprintf("A:%d=100", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("written %v; want %v", got, want)
	}
}

// TestTableJoinLookups: a join of a stream with two tables, trades JOIN
// table ON sym LEFT JOIN names ON table.v = names.v AND names.sym <>
// 'bad'. Stream rows wait for both tables; the second is looked up by a
// column of the first; a row of the first table that misses drops the
// stream row (JOIN), one of the second that misses or fails ON gets NULLs
// (LEFT JOIN). Both tables are in the snapshot; a table read again whole
// after the restore drops its rows.
func TestTableJoinLookups(t *testing.T) {
	stream := &message.Origin{Source: "trades", Partition: 0}
	tablePart := &message.Origin{Source: "table", Partition: 0}
	namesPart := &message.Origin{Source: "names", Partition: 0}
	all := []*message.Origin{stream, tablePart, namesPart}
	origins := NewOrigins(all)
	namesV := &expr.Column{Index: 2, Name: "names.v", T: value.Int}
	notBad, err := expr.NewCompare(expr.Ne, &expr.Column{Index: 7, Name: "names.sym", T: value.String}, expr.NewConst(value.StringValue("bad")))
	if err != nil {
		t.Fatal(err)
	}
	n := &plan.Join{Kind: plan.TableJoin, Left: testScan, Right: &plan.Scan{Source: "table", Cols: testScan.Cols},
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym},
		Lookups: []*plan.Lookup{{
			Table: &plan.Scan{Source: "names", Cols: testScan.Cols}, Outer: true, On: notBad,
			Keys: []expr.Expr{&expr.Column{Index: 5, Name: "table.v", T: value.Int}}, TableKeys: []expr.Expr{namesV},
		}}}
	batch := func(o *message.Origin, deletes []int64, rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin, b.Deletes = o, deletes
		return b
	}
	step := func(j *tableJoin, b *message.Batch) []string {
		t.Helper()
		return joinStep(t, j, b, 9, 0, 1, 2, 5, 7)
	}
	j := newTableJoin(n, nil)
	j.Begin(all)
	step(j, batch(stream, nil, testRow{0, "A", 1}, testRow{0, "B", 2}, testRow{0, "C", 3}, testRow{0, "D", 4}))
	step(j, batch(tablePart, nil, testRow{0, "A", 10}, testRow{0, "B", 20}, testRow{0, "D", 30}))
	// ten, twenty and bad, then twenty deleted: offsets 0 to 3.
	step(j, batch(namesPart, []int64{3}, testRow{0, "ten", 10}, testRow{0, "twenty", 20}, testRow{0, "bad", 30}, testRow{0, "", 20}))
	j.Loaded(tablePart)
	if got := step(j, nil); got != nil {
		t.Fatalf("joined before the second table was loaded: %v", got)
	}
	j.Loaded(namesPart)
	if got, want := step(j, nil), []string{"A:1=10=ten", "B:2=20=NULL", "D:4=30=NULL"}; !slices.Equal(got, want) {
		t.Fatalf("once loaded: %v, want %v", got, want)
	}
	if got, want := j.Size(), 3+2; got != want {
		t.Errorf("Size %d, want %d: the tables' rows", got, want)
	}
	for _, reread := range []map[string]bool{nil, {"names": true}} {
		restored := newTableJoin(n, reread)
		restored.Begin(all)
		r := value.NewReader(j.AppendSnapshot(nil, origins))
		if err := restored.RestoreSnapshot(r, origins); err != nil || r.Len() != 0 {
			t.Fatalf("restore: %v, %d bytes left", err, r.Len())
		}
		restored.Loaded(tablePart)
		restored.Loaded(namesPart)
		want := []string{"A:5=10=ten"}
		if reread != nil {
			// names is read again, from its start: the rows of a snapshot of
			// a run that did not are dropped.
			want = []string{"A:5=10=NULL"}
		}
		if got := step(restored, batch(stream, nil, testRow{0, "A", 5})); !slices.Equal(got, want) {
			t.Errorf("restored, reread %v: %v, want %v", reread, got, want)
		}
	}
}

// TestTemporalJoinLookups: a join as of a time, then a table as read,
// trades JOIN table FOR SYSTEM_TIME AS OF trades.ts LEFT JOIN names ON
// table.v = names.v: the further table's rows are absorbed, not taken for
// stream rows, and kept in a snapshot, which restores them.
func TestTemporalJoinLookups(t *testing.T) {
	stream := &message.Origin{Source: "trades", Partition: 0}
	tablePart := &message.Origin{Source: "table", Partition: 0}
	namesPart := &message.Origin{Source: "names", Partition: 0}
	all := []*message.Origin{stream, tablePart, namesPart}
	n := &plan.Join{Kind: plan.TableJoin, Left: testScan, Right: &plan.Scan{Source: "table", Cols: testScan.Cols},
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, AsOf: colTS, TableTime: colTS,
		Lookups: []*plan.Lookup{{
			Table: &plan.Scan{Source: "names", Cols: testScan.Cols}, Outer: true,
			Keys: []expr.Expr{&expr.Column{Index: 5, Name: "table.v", T: value.Int}}, TableKeys: []expr.Expr{colV},
		}}}
	batch := func(o *message.Origin, rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin = o
		return b
	}
	run := func(j *temporalJoin, b *message.Batch, wm int64) []string {
		t.Helper()
		return joinStep(t, j, b, 9, wm, 1, 2, 5, 7)
	}
	j := newTemporalJoin(n, nil)
	j.Begin(all)
	run(j, batch(tablePart, testRow{0, "A", 10}, testRow{2 * time.Second, "A", 20}), 0)
	run(j, batch(namesPart, testRow{0, "ten", 10}, testRow{0, "twenty", 20}), 0)
	j.Loaded(tablePart)
	j.Loaded(namesPart)
	if got, want := run(j, batch(stream, testRow{time.Second, "A", 1}), int64(1500*time.Millisecond)), []string{"A:1=10=ten"}; !slices.Equal(got, want) {
		t.Fatalf("joined: %v, want %v", got, want)
	}
	origins := NewOrigins(all)
	restored := newTemporalJoin(n, nil)
	restored.Begin(all)
	r := value.NewReader(j.AppendSnapshot(nil, origins))
	if err := restored.RestoreSnapshot(r, origins); err != nil || r.Len() != 0 {
		t.Fatalf("restore: %v, %d bytes left", err, r.Len())
	}
	if got, want := restored.Size(), j.Size(); got != want || got < 3 {
		t.Errorf("restored %d rows of state; want %d, the names' among them", got, want)
	}
	restored.Loaded(tablePart)
	restored.Loaded(namesPart)
	if got, want := run(restored, batch(stream, testRow{3 * time.Second, "A", 2}), int64(4*time.Second)), []string{"A:2=20=twenty"}; !slices.Equal(got, want) {
		t.Errorf("restored: %v, want %v", got, want)
	}
}

// newTestTemporalJoin joins trades (ts, sym, v) LEFT JOIN a table of the
// same columns keyed by sym FOR SYSTEM_TIME AS OF trades.ts, its versions
// by its ts, then LEFT JOIN table2, of the same columns, keyed by sym FOR
// SYSTEM_TIME AS OF trades.ts too.
func newTestTemporalJoin() *temporalJoin {
	table := &plan.Scan{Source: "table", Cols: testScan.Cols}
	return newTemporalJoin(&plan.Join{Kind: plan.TableJoin, Left: testScan, Right: table, Outer: true,
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, AsOf: colTS, TableTime: colTS,
		Lookups: []*plan.Lookup{{Table: &plan.Scan{Source: "table2", Cols: testScan.Cols}, Outer: true,
			Keys: []expr.Expr{colSym}, TableKeys: []expr.Expr{colSym}, TableTime: colTS}}}, nil)
}

// TestTemporalJoinAgainstDefinition: random versions (some of them
// deletions) of two tables, the join's and a further one's, both joined
// as of the stream row's time, and stream rows, arriving out of order
// under a watermark that never passes a row still to come, but for a few
// stream rows sent late on purpose. Each stream row that is not late
// joins the version of its key in each table with the latest time not
// after its own, the last to arrive among equal times, or NULLs when
// there is none or it is a deletion; the rows come out in time order.
// Each run is also restored midway from a snapshot.
func TestTemporalJoinAgainstDefinition(t *testing.T) {
	tables := []*message.Origin{nil, {Source: "table", Partition: 0}, {Source: "table2", Partition: 0}}
	stream := &message.Origin{Source: "trades", Partition: 0}
	origins := []*message.Origin{stream, tables[1], tables[2]}
	for run := range 50 {
		rng := rand.New(rand.NewPCG(uint64(run), 7))
		type event struct {
			table   int // 0: the stream's
			deleted bool
			row     testRow
		}
		var events []event
		for range 200 + rng.IntN(200) {
			e := event{row: testRow{time.Duration(rng.IntN(100)) * time.Second, fmt.Sprintf("K%d", rng.IntN(5)), rng.Int64N(1000)}}
			if rng.IntN(2) == 0 {
				e.table = 1 + rng.IntN(2)
			}
			e.deleted = e.table > 0 && rng.IntN(5) == 0
			events = append(events, e)
		}
		// Mostly in time order, each event moved back a little.
		slices.SortStableFunc(events, func(a, b event) int {
			return cmp.Compare(a.row.ts+time.Duration(rng.IntN(8))*time.Second, b.row.ts)
		})
		restoreAt := rng.IntN(len(events))
		j := newTestTemporalJoin()
		j.Begin(origins)
		j.Loaded(tables[1])
		j.Loaded(tables[2])
		var got, want []string
		var wantRows []struct {
			ts  time.Duration
			seq int
			out string
		}
		late := 0
		wm := int64(math.MinInt64)
		for i, e := range events {
			if i == restoreAt {
				snap := j.AppendSnapshot(nil, NewOrigins(origins))
				size := j.Size()
				j = newTestTemporalJoin()
				j.Begin(origins)
				r := value.NewReader(snap)
				if err := j.RestoreSnapshot(r, NewOrigins(origins)); err != nil || r.Len() != 0 {
					t.Fatalf("run %d: restore: %v, %d bytes left", run, err, r.Len())
				}
				if j.Size() != size {
					t.Fatalf("run %d: restored %d rows and versions; %d were", run, j.Size(), size)
				}
				j.Loaded(tables[1])
				j.Loaded(tables[2])
			}
			b := batchOf(e.row)
			b.Offsets[0] = int64(i)
			b.Origin = stream
			if e.table > 0 {
				b.Origin = tables[e.table]
				if e.deleted {
					b.Deletes = []int64{int64(i)}
				}
			}
			out := new(message.Batch)
			out.Reset(9)
			var fail failures
			var errs errorList
			l, _ := j.Process(b, out, fixedTime(wm), &fail)
			late += l
			// The watermark: the earliest time still to come, now and
			// then held back; a stream row is sent late now and then.
			next := int64(math.MaxInt64)
			for _, f := range events[i+1:] {
				next = min(next, int64(f.row.ts))
			}
			if rng.IntN(3) > 0 && next != math.MaxInt64 {
				wm = max(wm, next)
			}
			if i+1 < len(events) && events[i+1].table == 0 && rng.IntN(30) == 0 && wm > 0 {
				events[i+1].row.ts = time.Duration(wm) - time.Second // late
			}
			if i == len(events)-1 {
				wm = math.MaxInt64
			}
			j.Advance(fixedTime(wm), out, errs.add)
			if len(fail)+len(errs) > 0 {
				t.Fatal(fail, errs)
			}
			for _, row := range out.Rows {
				got = append(got, fmt.Sprintf("%v %s %v=%v=%v", time.Duration(row[0].Nanos()), row[1], row[2], row[5], row[8]))
			}
		}
		// A deletion is at its time, or at the latest of the versions of
		// its key read before it, if later.
		at := make([]time.Duration, len(events))
		latest := map[string]time.Duration{}
		for i, e := range events {
			if e.table == 0 {
				continue
			}
			key := fmt.Sprint(e.table, e.row.sym)
			at[i] = e.row.ts
			if l, ok := latest[key]; ok && e.deleted {
				at[i] = max(at[i], l)
			}
			if l, ok := latest[key]; !ok || at[i] > l {
				latest[key] = at[i]
			}
		}
		matches := 0
		for i, e := range events {
			if e.table != 0 || e.row.ts < 0 {
				continue
			}
			match := []string{"NULL", "NULL"}
			for table := range 2 {
				best := time.Duration(-1)
				for k, f := range events {
					if f.table == table+1 && f.row.sym == e.row.sym && at[k] <= e.row.ts && at[k] >= best {
						best, match[table] = at[k], fmt.Sprint(f.row.v)
						if f.deleted {
							match[table] = "NULL"
						}
					}
				}
			}
			if match[0] != "NULL" && match[1] != "NULL" {
				matches++
			}
			wantRows = append(wantRows, struct {
				ts  time.Duration
				seq int
				out string
			}{e.row.ts, i, fmt.Sprintf("%v %s %v=%s=%s", e.row.ts, e.row.sym, e.row.v, match[0], match[1])})
		}
		if matches == 0 {
			t.Fatalf("run %d: no stream row finds a version of both tables", run)
		}
		slices.SortStableFunc(wantRows, func(a, b struct {
			ts  time.Duration
			seq int
			out string
		}) int {
			return cmp.Compare(a.ts, b.ts)
		})
		for _, w := range wantRows {
			want = append(want, w.out)
		}
		// The late rows are not joined: take them out of want.
		if late > 0 {
			var kept []string
			gotSet := map[string]int{}
			for _, g := range got {
				gotSet[g]++
			}
			for _, w := range want {
				if gotSet[w] > 0 {
					gotSet[w]--
					kept = append(kept, w)
				}
			}
			if len(want)-len(kept) != late {
				t.Fatalf("run %d: %d rows late, %d missing", run, late, len(want)-len(kept))
			}
			want = kept
		}
		if !slices.Equal(got, want) {
			for i := range max(len(got), len(want)) {
				g, w := "", ""
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = want[i]
				}
				if g != w {
					t.Fatalf("run %d (restored at %d): row %d: %q, want %q", run, restoreAt, i, g, w)
				}
			}
		}
		if j.pending.len() != 0 {
			t.Fatalf("run %d: %d rows still wait at the end", run, j.pending.len())
		}
	}
}

// TestTableJoinRereadNotSnapshot: a table read again whole in every run
// (StatefulOptions.RereadTables) is not in the snapshot, of either kind of
// table join; the waiting stream rows are.
func TestTableJoinRereadNotSnapshot(t *testing.T) {
	table := &message.Origin{Source: "table", Partition: 0}
	stream := &message.Origin{Source: "trades", Partition: 0}
	origins := NewOrigins([]*message.Origin{stream, table})
	scan := &plan.Scan{Source: "table", Cols: testScan.Cols}
	for _, asOf := range []bool{false, true} {
		n := &plan.Join{Kind: plan.TableJoin, Left: testScan, Right: scan, Outer: true, LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}}
		if asOf {
			n.AsOf, n.TableTime = colTS, colTS
		}
		op := func() interface {
			Stateful
			Snapshotter
			Begin([]*message.Origin)
		} {
			if asOf {
				return newTemporalJoin(n, map[string]bool{"table": true})
			}
			return newTableJoin(n, map[string]bool{"table": true})
		}
		j := op()
		j.Begin([]*message.Origin{stream, table})
		out := new(message.Batch)
		out.Reset(6)
		var fail failures
		tb := batchOf(testRow{0, "A", 10})
		tb.Origin = table
		j.Process(tb, out, fixedTime(0), &fail)
		sb := batchOf(testRow{time.Second, "A", 1})
		sb.Origin = stream
		j.Process(sb, out, fixedTime(0), &fail)
		restored := op()
		restored.Begin([]*message.Origin{stream, table})
		r := value.NewReader(j.AppendSnapshot(nil, origins))
		if err := restored.RestoreSnapshot(r, origins); err != nil || len(fail) > 0 {
			t.Fatal(err, fail)
		}
		if got := restored.Size(); got != 1 {
			t.Errorf("as of %t: %d rows restored; want the waiting stream row alone", asOf, got)
		}
	}
}

// BenchmarkTableJoins joins batches of 512 stream rows in time order with a
// table of 1,000 keys, a new version of one key every 8 stream rows: with
// the table as read, as of each row's time (the rows wait for the
// watermark, one batch behind, and versions are pruned as it passes), and
// as read then looked up in a second table by a column of the first.
//
//	go test -run '^$' -bench BenchmarkTableJoins -benchmem ./runtime/streamop/
func BenchmarkTableJoins(b *testing.B) {
	table := &message.Origin{Source: "table", Partition: 0}
	stream := &message.Origin{Source: "trades", Partition: 0}
	scan := &plan.Scan{Source: "table", Cols: testScan.Cols}
	names := &message.Origin{Source: "names", Partition: 0}
	const batch, keys = 512, 1000
	for _, name := range []string{"as-read", "as-of", "two-tables"} {
		b.Run(name, func(b *testing.B) {
			n := &plan.Join{Kind: plan.TableJoin, Left: testScan, Right: scan, Outer: true, LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}}
			var j interface {
				Stateful
				Begin([]*message.Origin)
				Loaded(*message.Origin)
			}
			width := 6
			switch name {
			case "as-of":
				n.AsOf, n.TableTime = colTS, colTS
				j = newTemporalJoin(n, nil)
			case "two-tables":
				// The table's v looks up the names table, which has every
				// value of it.
				n.Lookups = []*plan.Lookup{{Table: &plan.Scan{Source: "names", Cols: testScan.Cols}, Outer: true,
					Keys: []expr.Expr{&expr.Column{Index: 5, Name: "table.v", T: value.Int}}, TableKeys: []expr.Expr{colV}}}
				j, width = newTableJoin(n, nil), 9
			default:
				j = newTableJoin(n, nil)
			}
			j.Begin([]*message.Origin{stream, table, names})
			j.Loaded(table)
			nb, out := new(message.Batch), new(message.Batch)
			nb.Reset(3)
			nb.Origin = names
			for r := range batch {
				v := nb.Append(int64(r))
				v[0], v[1], v[2] = value.TimestampValue(0), value.StringValue(fmt.Sprintf("N%d", r)), value.IntValue(int64(r))
			}
			out.Reset(width)
			j.Process(nb, out, fixedTime(0), new(failures))
			j.Loaded(names)
			syms := make([]string, keys)
			for k := range syms {
				syms[k] = fmt.Sprintf("K%04d", k)
			}
			sb, tb := new(message.Batch), new(message.Batch)
			var fail failures
			var errs errorList
			ts := int64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				sb.Reset(3)
				tb.Reset(3)
				sb.Origin, tb.Origin = stream, table
				for r := range batch {
					ts += int64(time.Millisecond)
					row := sb.Append(int64(i + r))
					row[0], row[1], row[2] = value.TimestampValue(ts), value.StringValue(syms[(i+r)%keys]), value.IntValue(int64(r))
					if r%8 == 0 {
						v := tb.Append(int64(i + r))
						v[0], v[1], v[2] = value.TimestampValue(ts), value.StringValue(syms[(i+r*7)%keys]), value.IntValue(int64(r))
					}
				}
				wm := fixedTime(ts - batch*int64(time.Millisecond))
				out.Reset(width)
				j.Process(tb, out, wm, &fail)
				j.Process(sb, out, wm, &fail)
				j.Advance(wm, out, errs.add)
			}
			if len(fail)+len(errs) > 0 {
				b.Fatal(fail, errs)
			}
		})
	}
}

// TestTemporalJoinForgets: versions no row can join any more are dropped
// by a sweep once the watermark passes them, though their keys get no new
// version and no row; a deleted key goes whole. A row of a partition that
// comes to replay behind what was forgotten is late, not joined with a
// version that is no longer the one of its time.
func TestTemporalJoinForgets(t *testing.T) {
	for _, name := range []string{"table", "table2"} {
		t.Run(name, func(t *testing.T) {
			table := &message.Origin{Source: name, Partition: 0}
			other := &message.Origin{Source: "table", Partition: 0}
			if name == "table" {
				other.Source = "table2"
			}
			stream := &message.Origin{Source: "trades", Partition: 0}
			j := newTestTemporalJoin()
			j.Begin([]*message.Origin{stream, table, other})
			j.Loaded(table)
			j.Loaded(other)
			versions := j.versions
			if name == "table2" {
				versions = j.lookups[0].versions
			}
			out := new(message.Batch)
			out.Reset(9)
			var fail failures
			var errs errorList
			var rows []testRow
			for i := range 100 {
				rows = append(rows, testRow{time.Duration(i) * time.Second, "A", int64(i)}, testRow{time.Duration(i) * time.Second, fmt.Sprintf("D%d", i), 0})
			}
			tb := batchOf(rows...)
			tb.Origin = table
			for i := range 100 {
				tb.Deletes = append(tb.Deletes, int64(2*i+1)) // the D keys, deleted at once
			}
			j.Process(tb, out, fixedTime(math.MinInt64), &fail)
			if j.Size() != 200 || versions.held != 200 {
				t.Fatalf("%d versions held; want 200", j.Size())
			}
			j.Advance(fixedTime(int64(200*time.Second)), out, errs.add)
			if j.Size() != 1 || len(versions.keys) != 1 {
				t.Fatalf("after the watermark passed them: %d versions of %d keys; want A's last alone", j.Size(), len(versions.keys))
			}
			// A partition replaying from before what was forgotten.
			sb := batchOf(testRow{50 * time.Second, "A", 7})
			sb.Origin = stream
			if late, _ := j.Process(sb, out, originMark{wm: int64(200 * time.Second), behind: math.MinInt64, replaying: stream}, &fail); late != 1 {
				t.Errorf("a row behind the forgotten versions: %d late; want 1", late)
			}
			if len(fail)+len(errs) > 0 || out.Len() != 0 {
				t.Fatal(fail, errs, out.Len())
			}
		})
	}
}

// TestIntervalJoinForgets: an interval join forgets each row once the
// watermark passes the last time a partner could come, with bounds below
// the other side's time (a negative reach) too, visiting only the keys
// whose rows end; a row of a partition replaying behind the watermark
// stays, and the join's low mark covers it, until its own watermark
// passes it.
func TestIntervalJoinForgets(t *testing.T) {
	quotes := &plan.Scan{Source: "quotes", Cols: testScan.Cols}
	colQTS := *colTS
	// trades.ts BETWEEN quotes.ts + 1s AND quotes.ts + 2s: a trade
	// matches quotes up to 1 s before it, a quote trades up to 2 s after.
	j := newIntervalJoin(&plan.Join{Left: testScan, Right: quotes, LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym},
		LeftTime: colTS, RightTime: &colQTS, Lower: -int64(time.Second), Upper: int64(2 * time.Second)})
	out := new(message.Batch)
	out.Reset(6)
	var fail failures
	var errs errorList
	step := func(b *message.Batch, wm Watermark) {
		t.Helper()
		if b != nil {
			j.Process(b, out, wm, &fail)
		}
		j.Advance(wm, out, errs.add)
		if len(fail)+len(errs) > 0 {
			t.Fatal(fail, errs)
		}
	}
	trade := batchOf(testRow{10 * time.Second, "A", 1})
	trade.Origin = &message.Origin{Source: "trades"}
	quote := batchOf(testRow{10 * time.Second, "B", 2})
	quote.Origin = &message.Origin{Source: "quotes"}
	step(trade, fixedTime(0))
	step(quote, fixedTime(0))
	// Each key has rows on one side only: no pair, and no key is visited
	// through the other side.
	for _, c := range []struct {
		wm        time.Duration
		held      int
		low       int64
		pairsSeen int
	}{
		{9 * time.Second, 2, int64(10 * time.Second), 0},
		// The trade may meet quotes up to 9 s: gone past it; the quote
		// meets trades up to 12 s.
		{11 * time.Second, 1, int64(10 * time.Second), 0},
		{13 * time.Second, 0, math.MaxInt64, 0},
	} {
		step(nil, fixedTime(int64(c.wm)))
		if j.Size() != c.held || j.Low() != c.low || out.Len() != c.pairsSeen {
			t.Errorf("at watermark %s: %d rows held, low %d, %d pairs; want %d, %d, %d", c.wm, j.Size(), j.Low(), out.Len(), c.held, c.low, c.pairsSeen)
		}
	}
	if len(j.byKey) != 0 {
		t.Errorf("%d keys left", len(j.byKey))
	}

	// A quote of a partition replaying at 50 s, under a watermark of
	// 100 s: it stays, by its own watermark, and Low covers it.
	replaying := &message.Origin{Source: "quotes", Partition: 1}
	late := batchOf(testRow{60 * time.Second, "C", 3})
	late.Origin = replaying
	step(late, originMark{wm: int64(100 * time.Second), behind: int64(50 * time.Second), replaying: replaying})
	step(nil, originMark{wm: int64(101 * time.Second), behind: int64(55 * time.Second), replaying: replaying})
	if j.Size() != 1 || j.Low() > int64(60*time.Second) {
		t.Errorf("a replaying partition's row: %d held, low %s; want it held, low at most 60s", j.Size(), time.Duration(j.Low()))
	}
	step(nil, originMark{wm: int64(102 * time.Second), behind: int64(63 * time.Second), replaying: replaying})
	if j.Size() != 0 || j.Low() != math.MaxInt64 {
		t.Errorf("past the replaying partition's own watermark: %d held, low %d; want none", j.Size(), j.Low())
	}
}

// TestIntervalJoinLeft: trades LEFT JOIN quotes ON sym within a second AND
// quotes.v > trades.v. A trade that pairs is written in its pairs only; one
// that pairs with none, or only with quotes ON fails for, is written once
// with NULLs when the watermark passes its last chance, across a snapshot
// and restore too, whole or partition by partition; one with a NULL key at
// once.
func TestIntervalJoinLeft(t *testing.T) {
	trades, quotes, n, batch, step := outerJoinTest(t, false)
	all := []*message.Origin{trades, quotes}
	j := newIntervalJoin(n)
	// A pairs with a quote; B's quote fails ON; C has none.
	step(j, batch(trades, testRow{0, "A", 1}, testRow{0, "B", 5}, testRow{0, "C", 1}), 0)
	nullKey := batch(trades, testRow{0, "", 7})
	nullKey.Rows[0][1] = value.Value{}
	if got, want := step(j, nullKey, 0), []string{"NULL:7=NULL"}; !slices.Equal(got, want) {
		t.Errorf("a NULL key: %v, want %v at once", got, want)
	}
	if got, want := step(j, batch(quotes, testRow{500 * time.Millisecond, "A", 10}, testRow{500 * time.Millisecond, "B", 2}), 0), []string{"A:1=10"}; !slices.Equal(got, want) {
		t.Fatalf("pairs: %v, want %v", got, want)
	}
	for _, op := range withRestores(t, j, n, all) {
		if got := step(op, nil, 900*time.Millisecond); got != nil {
			t.Errorf("written before a quote could no longer come: %v", got)
		}
		if got, want := step(op, nil, 1500*time.Millisecond), []string{"B:5=NULL", "C:1=NULL"}; !slices.Equal(sorted(got), want) {
			t.Errorf("once no quote can come: %v, want %v", got, want)
		}
		if got := step(op, nil, time.Hour); got != nil {
			t.Errorf("written again: %v", got)
		}
	}
}

// outerJoinTest returns what the outer join tests use: the partitions of
// trades and quotes, a LEFT JOIN (a FULL JOIN if full) of the two by
// symbol within a second either way whose rest of ON is quotes.v >
// trades.v, a batch of a partition's rows, and a step of a join that
// says its rows as symbol:trades.v=quotes.v.
func outerJoinTest(t *testing.T, full bool) (trades, quotes *message.Origin, n *plan.Join, batch func(*message.Origin, ...testRow) *message.Batch, step func(*intervalJoin, *message.Batch, time.Duration) []string) {
	t.Helper()
	trades = &message.Origin{Source: "trades", Partition: 0}
	quotes = &message.Origin{Source: "quotes", Partition: 0}
	above, err := expr.NewCompare(expr.Gt, &expr.Column{Index: 5, Name: "quotes.v", T: value.Int}, colV)
	if err != nil {
		t.Fatal(err)
	}
	n = &plan.Join{Kind: plan.IntervalJoin, Left: testScan, Right: &plan.Scan{Source: "quotes", Cols: testScan.Cols}, Outer: true, RightOuter: full,
		LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, LeftTime: colTS, RightTime: colTS,
		Lower: int64(time.Second), Upper: int64(time.Second), On: above}
	batch = func(o *message.Origin, rows ...testRow) *message.Batch {
		b := batchOf(rows...)
		b.Origin = o
		return b
	}
	step = func(j *intervalJoin, b *message.Batch, wm time.Duration) []string {
		t.Helper()
		return joinStep(t, j, b, 6, int64(wm), 1, 2, 5)
	}
	return trades, quotes, n, batch, step
}

// withRestores returns j, and joins of n restored from its snapshot,
// whole and partition by partition (as on several engines, where the
// state of each moves with its partition), of the partitions all.
func withRestores(t *testing.T, j *intervalJoin, n *plan.Join, all []*message.Origin) []*intervalJoin {
	t.Helper()
	origins := NewOrigins(all)
	restored := newIntervalJoin(n)
	r := value.NewReader(j.AppendSnapshot(nil, origins))
	if err := restored.RestoreSnapshot(r, origins); err != nil || r.Len() != 0 {
		t.Fatalf("restore: %v, %d bytes left", err, r.Len())
	}
	moved := newIntervalJoin(n)
	for _, o := range all {
		r := value.NewReader(j.AppendSnapshot(nil, PartitionOrigins(o)))
		if err := moved.RestoreSnapshot(r, PartitionOrigins(o)); err != nil || r.Len() != 0 {
			t.Fatalf("restore of %s: %v, %d bytes left", o.Source, err, r.Len())
		}
	}
	return []*intervalJoin{j, restored, moved}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// TestIntervalJoinHoldsPartners: of a LEFT JOIN, a right row's record
// is not acknowledged while a left row it paired with is held, though the
// right row has left the state: read again alone, the left row would be
// written with NULLs besides its pair. Of a RIGHT JOIN, the mirror.
func TestIntervalJoinHoldsPartners(t *testing.T) {
	for _, outer := range []string{"left", "right"} {
		t.Run(outer, func(t *testing.T) {
			n := &plan.Join{Kind: plan.IntervalJoin, Left: testScan, Right: &plan.Scan{Source: "quotes", Cols: testScan.Cols},
				Outer: outer == "left", RightOuter: outer == "right",
				LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, LeftTime: colTS, RightTime: colTS,
				Lower: int64(time.Second), Upper: int64(time.Second)}
			j := newIntervalJoin(n)
			// The inner side's row first, at 1 s; the outer side's at 1.5 s.
			first, second := &message.Origin{Source: "quotes", Partition: 0}, &message.Origin{Source: "trades", Partition: 0}
			if outer == "right" {
				first, second = second, first
			}
			early := batchOf(testRow{time.Second, "A", 1})
			early.Origin = first
			late := batchOf(testRow{1500 * time.Millisecond, "A", 2})
			late.Origin = second
			joinStep(t, j, early, 6, 0, 1)
			if got := joinStep(t, j, late, 6, int64(2100*time.Millisecond), 1, 2, 5); len(got) != 1 {
				t.Fatalf("the pair: %v", got)
			}
			if j.Size() != 1 {
				t.Fatalf("%d rows held; want the outer side's alone, the other having ended", j.Size())
			}
			if low := j.Low(); low > int64(time.Second) {
				t.Errorf("Low %v: the %s's record would be acknowledged while its partner is held", time.Duration(low), first.Source)
			}
		})
	}
}

// TestIntervalJoinFull: of a FULL JOIN, every row of either side that
// paired with nothing, or only with rows ON fails for, is written once
// with NULLs for the other's, when no row of the other can come; one with
// a NULL key at once. Which rows paired (a quote only by a later trade
// too) survives a restore, whole or partition by partition.
func TestIntervalJoinFull(t *testing.T) {
	trades, quotes, n, batch, step := outerJoinTest(t, true)
	all := []*message.Origin{trades, quotes}
	j := newIntervalJoin(n)
	// A pairs with a quote; B's quote fails ON; C has none.
	step(j, batch(trades, testRow{0, "A", 1}, testRow{0, "B", 5}, testRow{0, "C", 1}), 0)
	nullKey := batch(quotes, testRow{0, "", 7})
	nullKey.Rows[0][1] = value.Value{}
	if got, want := step(j, nullKey, 0), []string{"NULL:NULL=7"}; !slices.Equal(got, want) {
		t.Errorf("a quote's NULL key: %v, want %v at once", got, want)
	}
	// D has no trade; E's comes after it.
	quoteRows := []testRow{{500 * time.Millisecond, "A", 10}, {500 * time.Millisecond, "B", 2}, {500 * time.Millisecond, "D", 4}, {500 * time.Millisecond, "E", 20}}
	if got, want := step(j, batch(quotes, quoteRows...), 0), []string{"A:1=10"}; !slices.Equal(got, want) {
		t.Fatalf("pairs: %v, want %v", got, want)
	}
	if got, want := step(j, batch(trades, testRow{600 * time.Millisecond, "E", 3}), 0), []string{"E:3=20"}; !slices.Equal(got, want) {
		t.Fatalf("a trade after its quote: %v, want %v", got, want)
	}
	for _, op := range withRestores(t, j, n, all) {
		if got := step(op, nil, 900*time.Millisecond); got != nil {
			t.Errorf("written before a row of the other side could no longer come: %v", got)
		}
		if got, want := step(op, nil, 1500*time.Millisecond), []string{"B:5=NULL", "C:1=NULL"}; !slices.Equal(sorted(got), want) {
			t.Errorf("once no quote can come: %v, want %v", got, want)
		}
		if got, want := step(op, nil, 1600*time.Millisecond), []string{"NULL:NULL=2", "NULL:NULL=4"}; !slices.Equal(sorted(got), want) {
			t.Errorf("once no trade can come: %v, want %v", got, want)
		}
		if got := step(op, nil, time.Hour); got != nil {
			t.Errorf("written again: %v", got)
		}
	}
}

// BenchmarkIntervalJoin joins trades and quotes of 100 symbols, a row of
// each side every millisecond of event time, each pairing with the other
// side's rows of its symbol within 200 ms either way (about 4 a row); the
// watermark follows 300 ms behind. Reported per input row.
func BenchmarkIntervalJoin(b *testing.B) {
	for _, kind := range []string{"inner", "full", "inner-10-keys", "scan"} {
		b.Run(kind, func(b *testing.B) {
			keys, bound, lag := 100, 200*time.Millisecond, 300*time.Millisecond
			switch kind {
			case "inner-10-keys":
				keys = 10 // more rows held a key, each pairing with about 40
			case "scan":
				// Rows held long, by a lagging watermark, that few pair with:
				// each row looks at about 400 of the other side's.
				keys, bound, lag = 10, time.Millisecond, 2*time.Second
			}
			n := &plan.Join{Kind: plan.IntervalJoin, Left: testScan, Right: &plan.Scan{Source: "quotes", Cols: testScan.Cols},
				LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, LeftTime: colTS, RightTime: colTS,
				Lower: int64(bound), Upper: int64(bound)}
			if kind == "full" {
				n.Outer, n.RightOuter = true, true
			}
			j := newIntervalJoin(n)
			const batch = 512
			syms := make([]value.Value, keys)
			for i := range syms {
				syms[i] = value.StringValue(fmt.Sprintf("S%03d", i))
			}
			sides := []*message.Batch{new(message.Batch), new(message.Batch)}
			sides[0].Origin = &message.Origin{Source: "trades", Partition: 0}
			sides[1].Origin = &message.Origin{Source: "quotes", Partition: 0}
			out := new(message.Batch)
			var fail failures
			var errs errorList
			b.ReportAllocs()
			b.ResetTimer()
			var at int64
			for i := 0; i < b.N; i += batch {
				in := sides[(i/batch)%2]
				in.Reset(3)
				for r := range batch {
					ts := at + int64(r)*int64(time.Millisecond)/2
					v := in.Append(int64(i + r))
					v[0], v[1], v[2] = value.TimestampValue(ts), syms[(i+r)%keys], value.IntValue(int64(r))
				}
				out.Reset(6)
				j.Process(in, out, fixedTime(0), &fail)
				if (i/batch)%2 == 1 {
					at += batch * int64(time.Millisecond) / 2
					j.Advance(fixedTime(at-int64(lag)), out, errs.add)
				}
			}
		})
	}
}

// TestTableJoinDropsEarly: the leading conjuncts of a WHERE over a table
// join's rows that read the stream's columns alone drop a stream row
// before it is joined (earlyConjuncts, dropsEarly); those of an inner
// join that read the table's alone drop a table row as it is read, a
// later version of its key too (tableConjuncts, side.dropsEarly). The join
// and the WHERE then write the same rows and fail the same records as
// without, over random rows with NULLs, for inner and left joins, a
// division that fails, a conjunct of the other side first, an OR, the
// clock, and table rows that change. A join that can fail a row itself
// (an ON condition besides the key, a key expression, a further table)
// drops nothing early: the row would not fail.
func TestTableJoinDropsEarly(t *testing.T) {
	const cols = "SELECT t.sym, t.v, s.v AS listed FROM trades t "
	for _, tt := range []struct {
		query        string
		early, table int
	}{
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE t.v > 50 AND s.v < 500", 1, 0},
		{cols + "LEFT JOIN symbols s ON t.sym = s.sym WHERE t.v % 3 = 0 AND t.v < 80 AND s.v IS NULL", 2, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE 100 / (t.v - 50) > 1 AND t.v > 10 AND s.v > 3", 2, 0},
		{cols + "LEFT JOIN symbols s ON t.sym = s.sym WHERE t.v > 10 AND 100 / (t.v - 50) > 1", 2, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE s.v > 5 AND t.v > 50", 0, 1},
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE s.v > 3 AND 100 / (s.v - 5) > 1 AND t.v > 10", 0, 2},
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE s.v IS NULL OR s.v > 7", 0, 1},
		{cols + "LEFT JOIN symbols s ON t.sym = s.sym WHERE s.v > 5", 0, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE t.v > 10 AND 100 / (s.v - 5) > 1", 1, 0}, // NULL, then a failure
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE t.v IS NULL OR t.v > 90", 1, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym WHERE t.ts < now() AND t.v > 5", 0, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym AND 100 / (t.v - 50) > 0 WHERE t.v > 60", 0, 0},
		{cols + "LEFT JOIN symbols s ON t.sym = s.sym AND 100 / (t.v - 50) > 0 WHERE t.v > 60", 0, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym AND 100 / (t.v - 50) > 0 WHERE s.v > 6", 0, 0},
		{cols + "JOIN symbols s ON CAST(100 / (t.v - 50) AS string) = s.sym WHERE t.v > 60", 0, 0},
		{cols + "JOIN symbols s ON t.sym = s.sym LEFT JOIN symbols x ON x.sym = CAST(100 / (t.v - 50) AS string) WHERE t.v > 60", 0, 0},
	} {
		root, err := sql.PlanTables(tt.query, sql.Catalog{"trades": testScan.Cols, "symbols": testScan.Cols}, sql.Tables{"symbols": {Key: []string{"sym"}}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(root)
		if err != nil {
			t.Fatal(err)
		}
		stream, table := &message.Origin{Source: "trades"}, &message.Origin{Source: "symbols"}
		run := func(early bool) (rows []string, failed, dropped int) {
			j := p.NewStateful(StatefulOptions{}).(*tableJoin)
			if len(j.stream.early) != tt.early || len(j.table.early) != tt.table {
				t.Fatalf("%s: %d conjuncts early of the stream, %d of the table; want %d and %d", tt.query, len(j.stream.early), len(j.table.early), tt.early, tt.table)
			}
			if _, _, kept := p.KeptTable(); len(kept) != tt.table {
				t.Fatalf("%s: the table kept by %d conditions; want %d", tt.query, len(kept), tt.table)
			}
			if !early {
				j.stream.early, j.table.early = nil, nil
			}
			j.Begin([]*message.Origin{stream, table})
			rng := rand.New(rand.NewPCG(3, 3))
			batch := func(o *message.Origin, n int) *message.Batch {
				b := new(message.Batch)
				b.Reset(len(testScan.Cols))
				b.Origin = o
				for i := range n {
					row := b.Append(int64(i))
					row[0] = value.TimestampValue(int64(i))
					row[1] = value.StringValue(fmt.Sprintf("S%d", rng.IntN(12)))
					if rng.IntN(8) > 0 {
						row[2] = value.IntValue(rng.Int64N(100))
					}
				}
				return b
			}
			// The table: S0 to S9, v its number but S3's NULL; later v
			// nine less its number, S4's NULL.
			symbols := func(v func(i int64) value.Value) *message.Batch {
				b := new(message.Batch)
				b.Reset(len(testScan.Cols))
				b.Origin = table
				for i := range int64(10) {
					row := b.Append(i)
					row[1], row[2] = value.StringValue(fmt.Sprintf("S%d", i)), v(i)
				}
				return b
			}
			var fail failures
			j.Process(symbols(func(i int64) value.Value {
				if i == 3 {
					return value.NullValue()
				}
				return value.IntValue(i)
			}), nil, fixedTime(0), &fail)
			j.Loaded(table)
			post := p.NewPost()
			for k := range 20 {
				if k == 10 {
					j.Process(symbols(func(i int64) value.Value {
						if i == 4 {
							return value.NullValue()
						}
						return value.IntValue(9 - i)
					}), nil, fixedTime(0), &fail)
				}
				raw, out := new(message.Batch), new(message.Batch)
				raw.Reset(p.StatefulWidth())
				out.Reset(len(p.Output))
				j.Process(batch(stream, 200), raw, fixedTime(0), &fail)
				dropped += post.Process(raw, out, &fail)
				for _, row := range out.Rows {
					rows = append(rows, fmt.Sprint(row))
				}
			}
			return rows, len(fail), dropped
		}
		wantRows, wantFailed, wantDropped := run(false)
		rows, failed, dropped := run(true)
		if !slices.Equal(rows, wantRows) || failed != wantFailed {
			t.Errorf("%s: %d rows and %d failures, %d of them dropped after the join; without dropping early %d rows and %d failures",
				tt.query, len(rows), failed, dropped, len(wantRows), wantFailed)
		}
		if tt.early+tt.table > 0 && dropped >= wantDropped {
			t.Errorf("%s: the WHERE dropped %d rows after the join; without dropping early %d", tt.query, dropped, wantDropped)
		}
		if len(wantRows)+wantFailed == 0 || len(wantRows) == 4000 {
			t.Errorf("%s: %d rows, %d failures: the WHERE decides nothing", tt.query, len(wantRows), wantFailed)
		}
	}
}

// TestIntervalJoinDropsEarly: of an interval join, a row that a leading
// condition of the WHERE reading its side's columns alone makes FALSE is
// dropped before it is held, on a side whose rows decide no NULL row of
// the other; the rows written (NULL rows of outer joins included), the
// records failed and the rows unmatched are those without dropping early.
func TestIntervalJoinDropsEarly(t *testing.T) {
	const cols = "SELECT t.sym, t.v, q.v AS qv FROM trades t "
	const on = " ON t.sym = q.sym AND t.ts BETWEEN q.ts - INTERVAL '3' SECOND AND q.ts + INTERVAL '3' SECOND"
	for _, tt := range []struct {
		query       string
		left, right int
	}{
		{cols + "JOIN quotes q" + on + " WHERE t.v > 50 AND q.v < 60", 1, 0},
		{cols + "JOIN quotes q" + on + " WHERE q.v > 50 AND t.v < 60", 0, 1},
		{cols + "JOIN quotes q" + on + " WHERE t.v % 3 = 0 AND 100 / (t.v - 51) > 1 AND q.v > 3", 2, 0},
		{cols + "JOIN quotes q" + on + " WHERE t.v IS NULL OR t.v > 90", 1, 0},
		{cols + "LEFT JOIN quotes q" + on + " WHERE t.v > 40 AND q.v IS NULL", 1, 0},
		{cols + "LEFT JOIN quotes q" + on + " WHERE q.v > 40 OR q.v IS NULL", 0, 0},
		{cols + "RIGHT JOIN quotes q" + on + " WHERE q.v > 40 AND t.v IS NULL", 0, 1},
		{cols + "RIGHT JOIN quotes q" + on + " WHERE t.v IS NULL OR t.v > 70", 0, 0},
		{cols + "FULL JOIN quotes q" + on + " WHERE t.v > 40 AND q.v > 40", 0, 0},
		{cols + "JOIN quotes q" + on + " AND 100 / (t.v - 50) > 0 WHERE t.v > 60", 0, 0},
		{cols + "JOIN quotes q" + on + " WHERE t.ts < now() AND t.v > 5", 0, 0},
	} {
		p := compileSQL(t, tt.query)
		run := func(early bool) (rows []string, failed, dropped int) {
			j := p.NewStateful(StatefulOptions{}).(*intervalJoin)
			if len(j.left.early) != tt.left || len(j.right.early) != tt.right {
				t.Fatalf("%s: %d conditions early of the left, %d of the right; want %d and %d", tt.query, len(j.left.early), len(j.right.early), tt.left, tt.right)
			}
			if !early {
				j.left.early, j.right.early = nil, nil
			}
			trades, quotes := &message.Origin{Source: "trades"}, &message.Origin{Source: "quotes"}
			rng := rand.New(rand.NewPCG(4, 4))
			batch := func(o *message.Origin, k int) *message.Batch {
				b := new(message.Batch)
				b.Reset(len(testScan.Cols))
				b.Origin = o
				for i := range 50 {
					row := b.Append(int64(i))
					row[0] = value.TimestampValue(int64(k)*int64(time.Second) + rng.Int64N(int64(time.Second)))
					row[1] = value.StringValue(fmt.Sprintf("S%d", rng.IntN(100)))
					if rng.IntN(8) > 0 {
						row[2] = value.IntValue(rng.Int64N(100))
					}
				}
				return b
			}
			post := p.NewPost()
			var fail failures
			for k := range 40 {
				raw, out := new(message.Batch), new(message.Batch)
				raw.Reset(p.StatefulWidth())
				out.Reset(len(p.Output))
				wm := fixedTime(int64(k-5) * int64(time.Second))
				j.Process(batch(trades, k), raw, wm, &fail)
				j.Process(batch(quotes, k), raw, wm, &fail)
				if k == 39 {
					wm = fixedTime(math.MaxInt64)
				}
				j.Advance(wm, raw, func(err error) { fail = append(fail, err) })
				dropped += post.Process(raw, out, &fail)
				for _, row := range out.Rows {
					rows = append(rows, fmt.Sprint(row))
				}
			}
			slices.Sort(rows)
			return rows, len(fail), dropped
		}
		wantRows, wantFailed, wantDropped := run(false)
		rows, failed, dropped := run(true)
		if !slices.Equal(rows, wantRows) || failed != wantFailed {
			t.Errorf("%s: %d rows and %d failures, %d of them dropped after the join; without dropping early %d rows and %d failures",
				tt.query, len(rows), failed, dropped, len(wantRows), wantFailed)
		}
		if tt.left+tt.right > 0 && dropped >= wantDropped {
			t.Errorf("%s: the WHERE dropped %d rows after the join; without dropping early %d", tt.query, dropped, wantDropped)
		}
		if len(wantRows)+wantFailed == 0 || wantDropped == 0 {
			t.Errorf("%s: %d rows, %d failures, %d dropped: the WHERE decides nothing", tt.query, len(wantRows), wantFailed, wantDropped)
		}
	}
}

// TestEventTimeOfTablesAsOf: the sources of a join of tables as of the
// stream row's time have event times, which the watermark follows: the
// stream's AS OF column and each table's version time, the first table's
// and a further one's; a table joined as read has none.
func TestEventTimeOfTablesAsOf(t *testing.T) {
	cols := func(names ...string) []value.Column {
		var c []value.Column
		for _, n := range names {
			typ := value.String
			if n == "ts" || n == "since" {
				typ = value.Timestamp
			}
			c = append(c, value.Column{Name: n, Type: typ})
		}
		return c
	}
	catalog := sql.Catalog{"trades": cols("symbol", "note", "ts"), "rates": cols("currency", "ts"), "symbols": cols("symbol", "name"), "limits": cols("name", "since")}
	tables := sql.Tables{"rates": {Key: []string{"currency"}, Time: "ts"}, "symbols": {Key: []string{"symbol"}}, "limits": {Key: []string{"name"}, Time: "since"}}
	root, err := sql.PlanTables(`SELECT t.symbol, l.since FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note
		LEFT JOIN symbols s ON s.symbol = t.symbol LEFT JOIN limits FOR SYSTEM_TIME AS OF t.ts AS l ON l.name = s.name`, catalog, tables)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	for source, want := range map[string]string{"trades": "ts", "rates": "ts", "limits": "since", "symbols": ""} {
		got := ""
		if i := p.EventTimeOf(source); i >= 0 {
			got = catalog[source][i].Name
		}
		if got != want {
			t.Errorf("event time of %s: %q, want %q", source, got, want)
		}
	}
}
