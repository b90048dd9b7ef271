package streamop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestWindowSnapshot: a windowed aggregation restored from a snapshot taken
// midway writes, for the rest of the input, exactly what the operator that
// was never stopped writes: tumbling, hopping and session windows, with
// allowed lateness, over keys from two partitions.
func TestWindowSnapshot(t *testing.T) {
	s := int64(time.Second)
	avg, err := aggregate.New(aggregate.Avg, value.Int)
	if err != nil {
		t.Fatal(err)
	}
	distinct, err := aggregate.New(aggregate.CountDistinct, value.Int)
	if err != nil {
		t.Fatal(err)
	}
	// count(DISTINCT v) FILTER (WHERE v < 40), which shares its set with
	// count(DISTINCT v).
	below, err := expr.NewCompare(expr.Lt, colV, expr.NewConst(value.IntValue(40)))
	if err != nil {
		t.Fatal(err)
	}
	filtered, err := expr.NewCase([]expr.When{{Cond: below, Then: colV}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	aggs := []plan.AggCall{{Func: sumOf(t), Arg: colV}, {Func: avg, Arg: colV}, {Func: distinct, Arg: colV}, {Func: distinct, Arg: filtered}}
	if same := sameArgs(aggs); !slices.Equal(same, []int{0, 0, 0, 0}) {
		t.Fatalf("the calls' arguments are the same as those of calls %v, want all call 0's", same)
	}
	for name, w := range map[string]plan.Window{
		"tumble":     {Kind: plan.Tumble, Time: colTS, Size: 10 * s, Slide: 10 * s},
		"hop":        {Kind: plan.Hop, Time: colTS, Size: 10 * s, Slide: 3 * s},
		"session":    {Kind: plan.Session, Time: colTS, Gap: s / 5},
		"continuous": {Kind: plan.Continuous},
		"distinct":   {Kind: plan.Continuous}, // SELECT DISTINCT sym, v: a key written before the cut is not written again
	} {
		t.Run(name, func(t *testing.T) {
			newAgg := func() *windowAgg {
				if name == "distinct" {
					return newWindowAgg(&plan.Aggregate{
						Input: testScan, Window: w, EmitChanges: true, Distinct: true,
						Keys: []expr.Expr{colSym, colV}, KeyNames: []string{"sym", "v"},
					})
				}
				return newWindowAgg(&plan.Aggregate{
					Input: testScan, Window: w, EmitChanges: w.Kind == plan.Continuous,
					Keys: []expr.Expr{colSym}, KeyNames: []string{"sym"},
					Aggs: aggs,
				})
			}
			parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}}
			origins := NewOrigins(parts)
			rng := rand.New(rand.NewPCG(7, 7))
			var batches []*message.Batch
			for i := range 60 {
				var rows []testRow
				for j := range 20 {
					ts := time.Duration((int64(i)*s + int64(j)*s/20 + rng.Int64N(3*s)) / (s / 2) * (s / 2))     // a little out of order, and many equal
					rows = append(rows, testRow{ts, fmt.Sprintf("K%d", rng.IntN(7+7*(i/30))), rng.Int64N(100)}) // new keys after the cut
				}
				b := batchOf(rows...)
				b.Origin = parts[i%2]
				batches = append(batches, b)
			}
			step := func(a *windowAgg, i int) []string {
				return windowStep(t, a, batches[i], fixedTime(int64(i)*s-2*s))
			}
			whole, cut := newAgg(), newAgg()
			var want, got []string
			for i := range batches {
				want = append(want, step(whole, i)...)
				if i < 30 {
					got = append(got, step(cut, i)...)
				}
				if i == 29 {
					snap := cut.AppendSnapshot(nil, origins)
					cut = newAgg()
					r := value.NewReader(snap)
					if err := cut.RestoreSnapshot(r, origins); err != nil {
						t.Fatal(err)
					}
					if r.Len() != 0 {
						t.Fatalf("%d bytes of the snapshot left unread", r.Len())
					}
					if again := cut.AppendSnapshot(nil, origins); len(again) != len(snap) {
						t.Errorf("the restored state's snapshot has %d bytes; the original's %d", len(again), len(snap))
					}
				}
				if i >= 30 {
					got = append(got, step(cut, i)...)
				}
			}
			final := func(a *windowAgg) []string {
				out := new(message.Batch)
				out.Reset(8)
				var errs errorList
				a.Advance(fixedTime(math.MaxInt64), out, errs.add)
				var rows []string
				for _, row := range out.Rows {
					rows = append(rows, fmt.Sprint(row))
				}
				return rows
			}
			want, got = append(want, final(whole)...), append(got, final(cut)...)
			if len(want) < 40 {
				t.Fatalf("only %d results", len(want))
			}
			if !slices.Equal(got, want) {
				t.Errorf("restored midway, the operator wrote %d rows\n%v\nwant %d\n%v", len(got), got, len(want), want)
			}
		})
	}
}

// TestWindowChanges: a windowed aggregation rebuilt from a snapshot and
// the changes after it (AppendChanges at random batches), as a chain of
// checkpoints restores it, holds the very state of the operator that ran
// throughout, byte for byte, at each change, and, rebuilt late in the
// input, writes exactly what it writes for the rest: tumbling, hopping and
// session windows, with allowed lateness, keys that come and go, over two
// partitions. The changes of windows are a small part of the state.
func TestWindowChanges(t *testing.T) {
	s := int64(time.Second)
	for name, w := range map[string]plan.Window{
		"tumble":     {Kind: plan.Tumble, Time: colTS, Size: 30 * s, Slide: 30 * s},
		"hop":        {Kind: plan.Hop, Time: colTS, Size: 30 * s, Slide: 10 * s},
		"session":    {Kind: plan.Session, Time: colTS, Gap: s / 5},
		"continuous": {Kind: plan.Continuous},
	} {
		t.Run(name, func(t *testing.T) {
			newAgg := func() *windowAgg {
				a := newWindowAgg(&plan.Aggregate{
					Input: testScan, Window: w, EmitChanges: w.Kind == plan.Continuous,
					Keys: []expr.Expr{colSym}, KeyNames: []string{"sym"},
					Aggs: []plan.AggCall{{Func: sumOf(t), Arg: colV}},
				})
				if w.Kind != plan.Continuous {
					a.allowed = 3 * s
				}
				return a
			}
			parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}}
			origins := NewOrigins(parts)
			step := func(a *windowAgg, i int, rows []testRow) []string {
				b := batchOf(rows...)
				b.Origin = parts[i%2]
				// Partition 1 lags: its groups wait in windows whose other
				// groups are written and dropped.
				return windowStep(t, a, b, laggingMark{mark: int64(i)*s/4 - 4*s, lagging: parts[1], lag: 2 * s})
			}
			// live takes the chain's snapshots; shadow, which never does,
			// is the state to compare with.
			live, shadow := newAgg(), newAgg()
			var chain [][]byte
			rebuild := func() *windowAgg {
				a := newAgg()
				restoreChain(t, a, chain, origins)
				return a
			}
			var copied *windowAgg
			rng := rand.New(rand.NewPCG(5, 6))
			var changeBytes, changes, wholeBytes int
			for i := range 400 {
				var rows []testRow
				for range 10 {
					// A quarter second of event time a batch, some rows up to
					// 5 s late: within the allowed lateness, or beyond it.
					ts := time.Duration(int64(i)*s/4 + rng.Int64N(s/4) - rng.Int64N(2)*rng.Int64N(5*s))
					k := rng.IntN(300)
					if (i/60)%2 == 1 {
						k = 300 + rng.IntN(300) // keys in bursts, which close
					}
					rows = append(rows, testRow{ts, fmt.Sprintf("K%d", k), rng.Int64N(100)})
				}
				want := step(live, i, rows)
				step(shadow, i, rows)
				if copied != nil {
					if got := step(copied, i, rows); !slices.Equal(got, want) {
						t.Fatalf("batch %d: the rebuilt operator wrote\n%v\nwant\n%v", i, got, want)
					}
				}
				switch {
				case i == 40:
					chain = append(chain, live.AppendSnapshot(nil, origins))
				case i > 40 && (rng.IntN(8) == 0 || i == 300):
					b := live.AppendChanges(nil, origins)
					changeBytes += len(b)
					changes++
					chain = append(chain, b)
					whole := shadow.AppendSnapshot(nil, origins)
					wholeBytes += len(whole)
					if got := rebuild().AppendSnapshot(nil, origins); !slices.Equal(got, whole) {
						t.Fatalf("batch %d: rebuilt from %d links, the state's snapshot has %d bytes, unlike the operator's %d", i, len(chain), len(got), len(whole))
					}
					if i == 300 {
						copied = rebuild()
					}
				}
			}
			// A session key's changes are its sessions, whole; a window's
			// are the groups rows went to.
			if changes < 20 || w.Kind != plan.Session && changeBytes*3 > wholeBytes {
				t.Errorf("%d changes of %d bytes on average; the state's snapshots %d", changes, changeBytes/max(changes, 1), wholeBytes/max(changes, 1))
			}
			t.Logf("%d links; changes of %d bytes on average, snapshots of %d", len(chain), changeBytes/changes, wholeBytes/changes)
		})
	}
}

// restoreChain restores op from a chain of checkpoints' states: a
// snapshot, then changes.
func restoreChain(t *testing.T, op IncrementalSnapshotter, chain [][]byte, origins *Origins) {
	t.Helper()
	for i, b := range chain {
		r := value.NewReader(b)
		apply := op.ApplyChanges
		if i == 0 {
			apply = op.RestoreSnapshot
		}
		if err := apply(r, origins); err != nil || r.Len() != 0 {
			t.Fatalf("link %d of the chain: %v, %d bytes left", i, err, r.Len())
		}
	}
}

// windowStep gives a the batch b at watermark wm, and returns the rows it
// writes.
func windowStep(t *testing.T, a *windowAgg, b *message.Batch, wm Watermark) []string {
	t.Helper()
	out := new(message.Batch)
	out.Reset(8)
	var fail failures
	a.Process(b, out, wm, &fail)
	var errs errorList
	a.Advance(wm, out, errs.add)
	if len(fail)+len(errs) > 0 {
		t.Fatal(fail, errs)
	}
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprint(row))
	}
	return got
}

// laggingMark is a watermark of mark, less lag for one partition, and the
// least of the two for the pipeline.
type laggingMark struct {
	mark    int64
	lagging *message.Origin
	lag     int64
}

func (w laggingMark) For(o *message.Origin) int64 {
	if o == nil || o == w.lagging {
		return w.mark - w.lag
	}
	return w.mark
}

// TestSnapshotCorrupt: a truncated or altered snapshot is an error, never
// a panic or half a state taken for the whole.
func TestSnapshotCorrupt(t *testing.T) {
	a := newSessions(t, time.Second)
	out := new(message.Batch)
	out.Reset(4)
	var fail failures
	a.Process(batchOf(testRow{0, "A", 1}, testRow{time.Second / 2, "B", 2}), out, fixedTime(0), &fail)
	snap := a.AppendSnapshot(nil, NewOrigins(nil))
	for n := range len(snap) {
		if err := newSessions(t, time.Second).RestoreSnapshot(value.NewReader(snap[:n]), NewOrigins(nil)); err == nil {
			t.Fatalf("a snapshot cut to %d of %d bytes restored without an error", n, len(snap))
		}
	}
	bad := slices.Clone(snap)
	bad[0] = 99
	if err := newSessions(t, time.Second).RestoreSnapshot(value.NewReader(bad), NewOrigins(nil)); err == nil {
		t.Error("a snapshot of an unknown version restored")
	}
}

// BenchmarkWindowSnapshot is the cost of a checkpoint of a windowed
// aggregation with a million groups (one window, a million keys, SUM and
// AVG): the time the stateful stage stops to take it, and its size.
func BenchmarkWindowSnapshot(b *testing.B) {
	avg, err := aggregate.New(aggregate.Avg, value.Int)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := aggregate.New(aggregate.Sum, value.Int)
	if err != nil {
		b.Fatal(err)
	}
	a := newWindowAgg(&plan.Aggregate{
		Input:  testScan,
		Window: plan.Window{Kind: plan.Tumble, Time: colTS, Size: int64(time.Hour), Slide: int64(time.Hour)},
		Keys:   []expr.Expr{colSym}, KeyNames: []string{"sym"},
		Aggs: []plan.AggCall{{Func: sum, Arg: colV}, {Func: avg, Arg: colV}},
	})
	const groups = 1_000_000
	for i := 0; i < groups; i += 10_000 {
		rows := make([]testRow, 10_000)
		for j := range rows {
			rows[j] = testRow{time.Duration(i + j), fmt.Sprintf("K%07d", i+j), int64(j)}
		}
		out := new(message.Batch)
		out.Reset(8)
		var fail failures
		a.Process(batchOf(rows...), out, fixedTime(math.MinInt64), &fail)
	}
	if a.Size() != groups {
		b.Fatalf("%d groups", a.Size())
	}
	origins := NewOrigins(nil)
	var snap []byte
	b.ResetTimer()
	for b.Loop() {
		snap = a.AppendSnapshot(snap[:0], origins)
	}
	b.ReportMetric(float64(len(snap))/groups, "bytes/group")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/groups, "ns/group")
}

// BenchmarkWindowChanges is the cost of the checkpoint of
// BenchmarkWindowSnapshot's million groups when it is a delta: the
// changes after 10,000 rows to random groups, a second of input at 10,000
// records/s. Only AppendChanges is timed.
func BenchmarkWindowChanges(b *testing.B) {
	sum, err := aggregate.New(aggregate.Sum, value.Int)
	if err != nil {
		b.Fatal(err)
	}
	a := newWindowAgg(&plan.Aggregate{
		Input:  testScan,
		Window: plan.Window{Kind: plan.Tumble, Time: colTS, Size: int64(time.Hour), Slide: int64(time.Hour)},
		Keys:   []expr.Expr{colSym}, KeyNames: []string{"sym"},
		Aggs: []plan.AggCall{{Func: sum, Arg: colV}},
	})
	const groups = 1_000_000
	process := func(rows []testRow) {
		out := new(message.Batch)
		out.Reset(8)
		var fail failures
		a.Process(batchOf(rows...), out, fixedTime(math.MinInt64), &fail)
	}
	for i := 0; i < groups; i += 10_000 {
		rows := make([]testRow, 10_000)
		for j := range rows {
			rows[j] = testRow{time.Duration(i + j), fmt.Sprintf("K%07d", i+j), int64(j)}
		}
		process(rows)
	}
	origins := NewOrigins(nil)
	whole := a.AppendSnapshot(nil, origins)
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]testRow, 10_000)
	var delta []byte
	for b.Loop() {
		b.StopTimer()
		for j := range rows {
			rows[j] = testRow{time.Duration(rng.IntN(groups)), fmt.Sprintf("K%07d", rng.IntN(groups)), 1}
		}
		process(rows)
		b.StartTimer()
		delta = a.AppendChanges(delta[:0], origins)
	}
	b.ReportMetric(float64(len(delta)), "delta-bytes")
	b.ReportMetric(float64(len(whole)), "whole-bytes")
}

// TestOverChanges: a moving aggregate rebuilt from its snapshot and the
// changes after it (AppendChanges at random batches), as a chain of
// checkpoints restores it, holds as many rows as the operator at each
// change, and, rebuilt late in the input, writes exactly what the operator
// writes for the rest of it: keys forgotten for being quiet, made again,
// and new keys on the way; RANGE and ROWS frames. The changes are a small
// part of the state.
func TestOverChanges(t *testing.T) {
	s := time.Second
	frames := []aggregate.FrameSpec{{Range: true, Preceding: int64(20 * s)}, {Preceding: 30}, {Range: true, Preceding: int64(2 * s)}}
	for _, rangeOnly := range []bool{true, false} {
		spec := frames
		if rangeOnly {
			spec = []aggregate.FrameSpec{frames[0], frames[2]}
		}
		live := newOverSum(t, spec...)
		origins := NewOrigins(nil)
		var chain [][]byte // a snapshot, then changes
		rebuild := func() *overAgg {
			o := newOverSum(t, spec...)
			restoreChain(t, o, chain, origins)
			return o
		}
		var copied *overAgg // rebuilt at batch 300, then on its own
		rng := rand.New(rand.NewPCG(3, 4))
		var changeBytes, changes int
		ts := time.Duration(0)
		for i := range 400 {
			var rows []testRow
			for range 50 {
				ts += time.Duration(rng.Int64N(int64(20 * time.Millisecond)))
				// Keys come and go: K0-K9 always, K10-K29 in bursts, so that
				// quiet ones are forgotten and come back.
				k := rng.IntN(10)
				if (i/40)%2 == 1 {
					k = 10 + rng.IntN(20)
				}
				rows = append(rows, testRow{ts, fmt.Sprintf("K%d", k), rng.Int64N(100)})
			}
			want, _ := overStep(t, live, ts-time.Second, rows...)
			if copied != nil {
				got, _ := overStep(t, copied, ts-time.Second, rows...)
				if a, b := fmt.Sprint(got.Rows), fmt.Sprint(want.Rows); a != b {
					t.Fatalf("batch %d: the rebuilt operator wrote\n%s\nwant\n%s", i, a, b)
				}
			}
			switch {
			case i == 50:
				chain = append(chain, live.AppendSnapshot(nil, origins))
			case i > 50 && (rng.IntN(10) == 0 || i == 300):
				b := live.AppendChanges(nil, origins)
				changeBytes += len(b)
				changes++
				chain = append(chain, b)
				if o := rebuild(); o.Size() != live.Size() {
					t.Fatalf("batch %d: rebuilt from %d links, the operator holds %d rows; want %d", i, len(chain), o.Size(), live.Size())
				}
				if i == 300 {
					copied = rebuild()
				}
			}
		}
		// Changes of about 5 s of rows, of frames of 20 s, 30 rows and 2 s.
		snap := live.AppendSnapshot(nil, origins)
		if mean := changeBytes / changes; mean*2 > len(snap) {
			t.Errorf("changes took %d bytes on average, the snapshot at the end %d", mean, len(snap))
		}
		t.Logf("range only %v: %d links, snapshot %d bytes, changes %d on average", rangeOnly, len(chain), len(snap), changeBytes/changes)
	}
}

// BenchmarkWindowRestore is the cost of restoring the state of
// BenchmarkWindowSnapshot: a million groups read back from a snapshot.
func BenchmarkWindowRestore(b *testing.B) {
	avg, err := aggregate.New(aggregate.Avg, value.Int)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := aggregate.New(aggregate.Sum, value.Int)
	if err != nil {
		b.Fatal(err)
	}
	node := &plan.Aggregate{
		Input:  testScan,
		Window: plan.Window{Kind: plan.Tumble, Time: colTS, Size: int64(time.Hour), Slide: int64(time.Hour)},
		Keys:   []expr.Expr{colSym}, KeyNames: []string{"sym"},
		Aggs: []plan.AggCall{{Func: sum, Arg: colV}, {Func: avg, Arg: colV}},
	}
	a := newWindowAgg(node)
	const groups = 1_000_000
	for i := 0; i < groups; i += 10_000 {
		rows := make([]testRow, 10_000)
		for j := range rows {
			rows[j] = testRow{time.Duration(i + j), fmt.Sprintf("K%07d", i+j), int64(j)}
		}
		out := new(message.Batch)
		out.Reset(8)
		var fail failures
		a.Process(batchOf(rows...), out, fixedTime(math.MinInt64), &fail)
	}
	origins := NewOrigins(nil)
	snap := a.AppendSnapshot(nil, origins)
	b.ResetTimer()
	for b.Loop() {
		r := newWindowAgg(node)
		if err := r.RestoreSnapshot(value.NewReader(snap), origins); err != nil || r.Size() != groups {
			b.Fatal(err, r.Size())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/groups, "ns/group")
}

// TestPartitionSnapshots: the state of each partition, snapshot apart
// (PartitionOrigins) and added to a new operator, one partition after the
// other as two engines would take them over, makes an operator that writes
// exactly what the original writes for the rest of the input: windows of
// every kind, moving aggregates and interval joins over keys that follow
// partitions (a join's two sides in one partition, as a repartition
// topic's).
func TestPartitionSnapshots(t *testing.T) {
	s := int64(time.Second)
	parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}}
	type op interface {
		Stateful
		Snapshotter
	}
	ops := map[string]func() op{
		"tumble": func() op {
			return newWindowAgg(&plan.Aggregate{Input: testScan, Window: plan.Window{Kind: plan.Tumble, Time: colTS, Size: 3 * s, Slide: 3 * s},
				Keys: []expr.Expr{colSym}, KeyNames: []string{"sym"}, Aggs: []plan.AggCall{{Func: sumOf(t), Arg: colV}}})
		},
		"session": func() op {
			return newWindowAgg(&plan.Aggregate{Input: testScan, Window: plan.Window{Kind: plan.Session, Time: colTS, Gap: s / 5},
				Keys: []expr.Expr{colSym}, KeyNames: []string{"sym"}, Aggs: []plan.AggCall{{Func: sumOf(t), Arg: colV}}})
		},
		"over": func() op { return newOverSum(t, aggregate.FrameSpec{Range: true, Preceding: 5 * s}) },
		"join": func() op {
			quotes := &plan.Scan{Source: "quotes", Cols: testScan.Cols}
			return newIntervalJoin(&plan.Join{Kind: plan.IntervalJoin, Left: testScan, Right: quotes,
				LeftKeys: []expr.Expr{colSym}, RightKeys: []expr.Expr{colSym}, LeftTime: colTS, RightTime: colTS, Upper: s})
		},
	}
	for name, newOp := range ops {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			var batches []*message.Batch
			for i := range 60 {
				var rows []testRow
				p := i % 2
				for j := range 20 {
					// Keys follow partitions: K0-K3 in partition 0, K4-K7 in 1.
					ts := time.Duration(int64(i)*s/2 + int64(j)*s/40)
					rows = append(rows, testRow{ts, fmt.Sprintf("K%d", 4*p+rng.IntN(4)), rng.Int64N(100)})
				}
				b := batchOf(rows...)
				b.Origin = parts[p]
				if name == "join" && i/2%2 == 1 {
					b.Side = "quotes" // the other side's rows, in the same partition
				}
				batches = append(batches, b)
			}
			step := func(a op, i int) []string {
				out := new(message.Batch)
				out.Reset(8)
				var fail failures
				wm := fixedTime(int64(i)*s/2 - 2*s)
				a.Process(batches[i], out, wm, &fail)
				var errs errorList
				a.Advance(wm, out, errs.add)
				if len(fail)+len(errs) > 0 {
					t.Fatal(fail, errs)
				}
				var got []string
				for _, row := range out.Rows {
					got = append(got, fmt.Sprint(row))
				}
				return got
			}
			whole, moved := newOp(), newOp()
			var want, got []string
			for i := range batches {
				want = append(want, step(whole, i)...)
				if i == 29 {
					for _, p := range parts {
						snap := whole.AppendSnapshot(nil, PartitionOrigins(p))
						r := value.NewReader(snap)
						if err := moved.RestoreSnapshot(r, PartitionOrigins(p)); err != nil || r.Len() != 0 {
							t.Fatalf("partition %d: %v, %d bytes left", p.Partition, err, r.Len())
						}
					}
					if moved.Size() != whole.Size() {
						t.Fatalf("the partitions' states hold %d rows; the whole %d", moved.Size(), whole.Size())
					}
					// A partition's state restored again, as when it comes
					// back, replaces what the operator held of it.
					r := value.NewReader(whole.AppendSnapshot(nil, PartitionOrigins(parts[0])))
					if err := moved.RestoreSnapshot(r, PartitionOrigins(parts[0])); err != nil || moved.Size() != whole.Size() {
						t.Fatalf("partition 0 restored again: %v; %d rows held, want %d", err, moved.Size(), whole.Size())
					}
				}
				if i >= 30 {
					got = append(got, step(moved, i)...)
				}
			}
			// The rows the whole operator wrote after the cut.
			var after []string
			fresh := newOp()
			for i := range batches {
				rows := step(fresh, i)
				if i >= 30 {
					after = append(after, rows...)
				}
			}
			if len(after) < 10 || !slices.Equal(got, after) {
				t.Errorf("made of the partitions' states, the operator wrote %d rows\n%v\nwant %d\n%v", len(got), got, len(after), after)
			}
		})
	}
}

// continuousSum is SELECT sym, sum(v) FROM ... GROUP BY sym, a continuous
// aggregation.
func continuousSum(t *testing.T) *windowAgg {
	return newWindowAgg(&plan.Aggregate{
		Input: testScan, Window: plan.Window{Kind: plan.Continuous}, EmitChanges: true,
		Keys: []expr.Expr{colSym}, KeyNames: []string{"sym"},
		Aggs: []plan.AggCall{{Func: sumOf(t), Arg: colV}},
	})
}

// TestContinuousTTL: with a ttl, a continuous aggregation drops a group
// that no row changed for that long, and a later row of its key starts it
// again; a group changed meanwhile stays. The drops are among the changes
// a delta checkpoint holds: a snapshot and the changes after it rebuild
// the very state, idle times started again.
func TestContinuousTTL(t *testing.T) {
	s := time.Second
	var now time.Time
	a := continuousSum(t)
	a.ttl, a.clock = int64(10*s), func() time.Time { return now }
	parts := []*message.Origin{{Source: "trades", Partition: 0}}
	origins := NewOrigins(parts)
	at := func(d time.Duration, rows ...testRow) []string {
		t.Helper()
		now = time.Unix(0, 0).Add(d)
		b := batchOf(rows...)
		b.Origin = parts[0]
		out := new(message.Batch)
		out.Reset(4)
		var fail failures
		a.Process(b, out, fixedTime(0), &fail)
		var errs errorList
		a.Advance(fixedTime(0), out, errs.add)
		if len(fail)+len(errs) > 0 {
			t.Fatal(fail, errs)
		}
		var got []string
		for _, row := range out.Rows {
			got = append(got, fmt.Sprint(row[2:]))
		}
		return got
	}
	at(0, testRow{0, "A", 1}, testRow{0, "B", 2})
	snap := a.AppendSnapshot(nil, origins) // changes are tracked from here
	at(5*s, testRow{0, "C", 4})
	at(6*s, testRow{0, "A", 10})
	if at(9 * s); a.Size() != 3 || a.Expired() != 0 {
		t.Fatalf("before the ttl: %d groups, %d expired; want 3 and 0", a.Size(), a.Expired())
	}
	if at(11 * s); a.Size() != 2 || a.Expired() != 1 {
		t.Fatalf("B idle for the ttl: %d groups, %d expired; want 2 and 1", a.Size(), a.Expired())
	}
	if got := at(12*s, testRow{0, "B", 5}, testRow{0, "A", 1}); !slices.Equal(got, []string{"[B 5]", "[A 12]"}) {
		t.Errorf("B again after it expired, and A: %v; want [[B 5] [A 12]]", got)
	}
	changes := a.AppendChanges(nil, origins)
	rebuilt := newWindowAgg(a.node)
	rebuilt.ttl, rebuilt.clock = a.ttl, a.clock
	if err := rebuilt.RestoreSnapshot(value.NewReader(snap), origins); err != nil {
		t.Fatal(err)
	}
	if err := rebuilt.ApplyChanges(value.NewReader(changes), origins); err != nil {
		t.Fatal(err)
	}
	if got, want := rebuilt.AppendSnapshot(nil, origins), a.AppendSnapshot(nil, origins); !slices.Equal(got, want) {
		t.Errorf("rebuilt from a snapshot and its changes, the state differs:\n%x\nwant\n%x", got, want)
	}
	// Restored at 12 s, C (last changed at 5 s) lives until 22 s there.
	a = rebuilt
	if at(21 * s); a.Size() != 3 {
		t.Errorf("restored: %d groups at 21 s; want 3, their idle times started again", a.Size())
	}
	if at(23 * s); a.Size() != 0 {
		t.Errorf("restored: %d groups at 23 s; want none", a.Size())
	}
}

// TestContinuousKeeps: a continuous aggregation's groups outlive the end
// of the input (a checkpoint then holds them, for a run that reads on),
// and go when their partition moves to another engine, which holds them.
func TestContinuousKeeps(t *testing.T) {
	a := continuousSum(t)
	parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}}
	for i, rows := range [][]testRow{{{0, "A", 1}, {0, "B", 2}}, {{0, "C", 4}}} {
		b := batchOf(rows...)
		b.Origin = parts[i]
		windowStep(t, a, b, fixedTime(0))
	}
	if windowStep(t, a, batchOf(), fixedTime(math.MaxInt64)); a.Size() != 3 {
		t.Fatalf("at the end of the input: %d groups; want all 3", a.Size())
	}
	parts[1].Generation.Add(1) // partition 1 moved away
	if windowStep(t, a, batchOf(), fixedTime(0)); a.Size() != 2 {
		t.Errorf("partition 1 moved away: %d groups; want partition 0's 2", a.Size())
	}
	if got := a.Low(); got != math.MaxInt64 {
		t.Errorf("Low %d; want none pending", got)
	}
}

// TestContinuousEmitInterval: with an emit interval, the groups batches
// changed are written at most once per interval, each as it is then, in
// the order they first changed; Low holds the rows back meanwhile; Flush
// writes them at once; a group that expires while held is written as it
// goes, and one reused for another key is written once.
func TestContinuousEmitInterval(t *testing.T) {
	s := time.Second
	var now time.Time
	a := continuousSum(t)
	a.ttl, a.clock = int64(30*s), func() time.Time { return now }
	a.pace = pacer{clock: a.clock, every: int64(10 * s)}
	part := &message.Origin{Source: "trades", Partition: 0}
	at := func(d time.Duration, rows ...testRow) []string {
		t.Helper()
		now = time.Unix(1000, 0).Add(d) // the clock of a run
		out := new(message.Batch)
		out.Reset(4)
		var fail failures
		if len(rows) > 0 {
			b := batchOf(rows...)
			b.Origin = part
			a.Process(b, out, fixedTime(0), &fail)
		}
		var errs errorList
		a.Advance(fixedTime(0), out, errs.add)
		if len(fail)+len(errs) > 0 {
			t.Fatal(fail, errs)
		}
		got := []string{}
		for _, row := range out.Rows {
			got = append(got, fmt.Sprint(row[2:]))
		}
		return got
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, append([]string{}, want...)) {
			t.Errorf("%s: wrote %v; want %v", what, got, want)
		}
	}
	check("the first batch", at(0, testRow{0, "A", 1}, testRow{0, "B", 2}), "[A 1]", "[B 2]")
	check("within the interval", at(3*s, testRow{0, "B", 3}, testRow{0, "C", 4}))
	check("within the interval, again", at(6*s, testRow{0, "B", 5}))
	if low := a.Low(); low != math.MinInt64 {
		t.Errorf("Low with changes held back: %d; want the least", low)
	}
	check("the interval passed, no row", at(10*s), "[B 10]", "[C 4]")
	if low := a.Low(); low != math.MaxInt64 {
		t.Errorf("Low with nothing held back: %d; want the greatest", low)
	}
	check("changed again", at(12*s, testRow{0, "A", 1}))
	if !a.Flush() {
		t.Error("Flush with A held back reports nothing held")
	}
	check("flushed", at(13*s), "[A 2]")
	if a.Flush() {
		t.Error("Flush with nothing held back reports something")
	}
	// B, changed at 30 s and held back, expires at 60 s (30 s of ttl)
	// while it waits: its held row is written as it goes; its group is
	// reused for D, which is written once.
	check("B", at(25*s, testRow{0, "B", 1}), "[B 11]")
	check("B held back", at(30*s, testRow{0, "B", 1}))
	check("D, B expired", at(61*s, testRow{0, "D", 7}), "[B 12]", "[D 7]")
	if low := a.Low(); low != math.MaxInt64 {
		t.Errorf("Low with nothing held back but a group reused: %d; want the greatest", low)
	}
	if a.Size() != 1 {
		t.Errorf("%d groups; want D alone", a.Size())
	}
}

// TestRestoreOfMovedPartition: a partition's state restored for a
// generation the partition has left since (the group took it away while
// the restore waited for the store) is not current: its windows are not
// written, as its new owner writes them. Restored for the generation it
// is in, they are.
func TestRestoreOfMovedPartition(t *testing.T) {
	p := compileSQL(t, "SELECT window_start, sym, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym")
	o := &message.Origin{Source: "trades", Partition: 2}
	in := batchOf(testRow{time.Second, "A", 1}, testRow{2 * time.Second, "B", 1})
	in.Origin = o
	var fail failures
	op := p.NewStateful(StatefulOptions{})
	op.Process(in, new(message.Batch), fixedTime(math.MinInt64), &fail)
	snap := op.(Snapshotter).AppendSnapshot(nil, PartitionOrigins(o))
	gen := o.Generation.Load()
	o.Generation.Add(1) // revoked during the restore
	for _, c := range []struct {
		gen  uint64
		want int
	}{{gen, 0}, {gen + 1, 2}} {
		restored := p.NewStateful(StatefulOptions{})
		if err := restored.(Snapshotter).RestoreSnapshot(value.NewReader(snap), PartitionOriginsAt(o, c.gen)); err != nil {
			t.Fatal(err)
		}
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var errs errorList
		restored.Advance(fixedTime(math.MaxInt64), out, errs.add)
		if out.Len() != c.want || len(fail)+len(errs) > 0 {
			t.Errorf("restored for generation %d, the partition in %d: %d rows written, want %d (failures %v %v)", c.gen, o.Generation.Load(), out.Len(), c.want, fail, errs)
		}
	}
}

// TestClosedInPartDelta: the changes after a window closed a batch at a
// time (MaxRows) are as small as after one closed at once: its close says
// its groups' drops, which are not listed one by one.
func TestClosedInPartDelta(t *testing.T) {
	p := compileSQL(t, `SELECT window_start, sym, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym`)
	parts := []*message.Origin{{Source: "trades", Partition: 0}}
	origins := NewOrigins(parts)
	delta := func(maxRows int) int {
		op := p.NewStateful(StatefulOptions{MaxRows: maxRows})
		var rows []testRow
		for i := range 1000 {
			rows = append(rows, testRow{time.Duration(i) * time.Millisecond, fmt.Sprint("s", i), 1})
		}
		b := batchOf(rows...)
		b.Origin = parts[0]
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fails failures
		op.Process(b, out, fixedTime(math.MinInt64), &fails)
		op.(Snapshotter).AppendSnapshot(nil, origins)
		for {
			out.Reset(p.StatefulWidth())
			op.Advance(fixedTime(int64(20*time.Second)), out, func(err error) { t.Error(err) })
			if maxRows <= 0 || out.Len() < maxRows {
				break
			}
		}
		if op.Size() != 0 || len(fails) > 0 {
			t.Fatalf("MaxRows %d: %d groups held after the close, failures %v", maxRows, op.Size(), fails)
		}
		return len(op.(IncrementalSnapshotter).AppendChanges(nil, origins))
	}
	whole, inPart := delta(0), delta(16)
	if inPart != whole {
		t.Errorf("changes after the window's close: %d bytes closed a batch at a time, %d at once", inPart, whole)
	}
}
