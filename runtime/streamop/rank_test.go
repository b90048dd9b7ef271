package streamop

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
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

// TestRankerAgainstDefinition ranks random partitions with ties and NULLs
// and checks the rows kept, and their ranks, against the functions'
// definitions: ROW_NUMBER is one more than the rows before it in order
// (ties in the order they came), RANK one more than the rows strictly
// before it, DENSE_RANK one more than the distinct values before it.
func TestRankerAgainstDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		var rows []testRow
		for i := range rng.IntN(40) {
			rows = append(rows, testRow{ts: time.Duration(i), sym: fmt.Sprint("s", rng.IntN(3)), v: rng.Int64N(5)})
		}
		in := batchOf(rows...)
		for i := range in.Rows {
			if rng.IntN(6) == 0 {
				in.Rows[i][2] = value.Value{}
			}
		}
		key := plan.SortKey{Expr: colV, Desc: rng.IntN(2) == 0, NullsFirst: rng.IntN(2) == 0}
		// before reports whether row i comes strictly before row j.
		before := func(i, j int) bool {
			a, b := in.Rows[i][2], in.Rows[j][2]
			switch {
			case a.IsNull() && b.IsNull():
				return false
			case a.IsNull():
				return key.NullsFirst
			case b.IsNull():
				return !key.NullsFirst
			case key.Desc:
				return value.Compare(a, b) > 0
			}
			return value.Compare(a, b) < 0
		}
		for _, fn := range []plan.RankFunc{plan.RowNumber, plan.Rank, plan.DenseRank} {
			limit := 1 + rng.Int64N(4)
			node := &plan.TopN{Input: testScan, Func: fn, Partition: []expr.Expr{colSym}, Order: []plan.SortKey{key}, Limit: limit, RankName: "r"}
			var want []string
			for i, row := range in.Rows {
				var strictly, ties int64
				distinct := map[value.Value]bool{}
				for j, other := range in.Rows {
					if other[1] != row[1] {
						continue
					}
					switch {
					case before(j, i):
						strictly++
						distinct[other[2]] = true
					case j < i && !before(i, j):
						ties++
					}
				}
				rank := map[plan.RankFunc]int64{plan.RowNumber: 1 + strictly + ties, plan.Rank: 1 + strictly, plan.DenseRank: 1 + int64(len(distinct))}[fn]
				if rank <= limit {
					want = append(want, fmt.Sprintf("%d %v %d", i, row, rank))
				}
			}
			out := new(message.Batch)
			out.Reset(len(node.Columns()))
			var fails failures
			newRanker(node).Process(in, out, &fails)
			var got []string
			for i, row := range out.Rows {
				got = append(got, fmt.Sprintf("%d %v %d", out.Offsets[i], row[:3], row[3].Int()))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) || len(fails) > 0 {
				t.Fatalf("trial %d, %s <= %d ORDER BY %s: got\n%s\nwant\n%s\nfailures %v", trial, fn, limit, key, strings.Join(got, "\n"), strings.Join(want, "\n"), fails)
			}
		}
	}
}

// topNProgram plans a top-N over rows of (ts, sym, v): the two symbols of
// most rows in each minute, ties kept, with 100 over the count, which
// fails for the windows of the symbol "zero"'s. where is the ranking
// query's WHERE, if not "".
func topNProgram(t *testing.T, where ...string) *Program {
	t.Helper()
	return compileSQL(t, `SELECT ws, sym, n, r, 100 / (CASE WHEN sym = 'zero' THEN 0 ELSE n END) AS inv FROM (
		SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (
			SELECT window_start AS ws, sym, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, sym
		) c `+strings.Join(where, "")+`
	) ranked WHERE r <= 2`)
}

// originMark is the watermark wm for every partition but one, which is
// replaying at its own, behind.
type originMark struct {
	wm, behind int64
	replaying  *message.Origin
}

func (w originMark) For(o *message.Origin) int64 {
	if o != nil && o == w.replaying {
		return w.behind
	}
	return w.wm
}

// TestTopNProgram runs a top-N through its program: the windowed
// aggregation writes a window's groups only once those of a replaying
// partition are complete too, and the ranks are of them all; a row the
// select list fails on is reported as the group's row it came from.
func TestTopNProgram(t *testing.T) {
	for _, where := range []string{"", "WHERE n > 1 AND sym <> 'x'"} {
		testTopNProgram(t, where)
	}
}

func testTopNProgram(t *testing.T, where string) {
	p := topNProgram(t, where)
	if k, ok := p.StateKey(); !ok || len(k.Keys) != 0 {
		t.Errorf("state key %+v, %v; want no key but the window: a window's groups are ranked together", k, ok)
	}
	if _, ok := p.PartitionKey("trades"); ok {
		t.Error("a partition key; want none, so that the query runs on one engine")
	}
	op := p.NewStateful(StatefulOptions{})
	a, b := &message.Origin{Partition: 0}, &message.Origin{Partition: 1}
	first := batchOf(
		testRow{time.Second, "x", 1}, testRow{2 * time.Second, "x", 2}, testRow{3 * time.Second, "y", 3},
		testRow{4 * time.Second, "zero", 4}, testRow{5 * time.Second, "zero", 5}, testRow{6 * time.Second, "w", 6},
	)
	first.Origin = a
	second := batchOf(testRow{7 * time.Second, "v", 7}, testRow{8 * time.Second, "v", 8}, testRow{9 * time.Second, "v", 9})
	second.Origin = b
	raw := new(message.Batch)
	raw.Reset(p.StatefulWidth())
	var fails failures
	for _, in := range []*message.Batch{first, second} {
		op.Process(in, raw, fixedTime(0), &fails)
	}
	minute := int64(time.Minute)
	op.Advance(originMark{wm: 2 * minute, behind: minute / 2, replaying: b}, raw, func(err error) { t.Error(err) })
	if raw.Len() != 0 {
		t.Fatalf("%d rows written while partition 1 replays the window; want none until its groups are complete", raw.Len())
	}
	op.Advance(fixedTime(2*minute), raw, func(err error) { t.Error(err) })
	out := new(message.Batch)
	out.Reset(p.OutputWidth())
	var post postFailures
	p.NewPost().Process(raw, out, &post)
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprint(row[1:]))
	}
	// v, all of whose rows are partition 1's, has 3 rows, x 2, zero 2, y
	// and w 1: v ranks 1, x and zero 2; zero's 100 / 0 fails. Without x,
	// y and w, v and zero rank 1 and 2.
	want := []string{"[v 3 1 33]", "[x 2 2 50]"}
	if where != "" {
		want = want[:1]
	}
	if !slices.Equal(got, want) || len(fails) > 0 {
		t.Errorf("rows %q, failures %v; want %q", got, fails, want)
	}
	if len(post) != 1 || post[0].in != raw || raw.Rows[post[0].i][2].Str() != "zero" || !errors.Is(post[0].err, value.ErrDivisionByZero) {
		t.Errorf("failures %+v; want one, of zero's group row in the aggregation's rows", post)
	}
}

// postFailures records where rows fail.
type postFailures []struct {
	in  *message.Batch
	i   int
	err error
}

func (f *postFailures) Fail(in *message.Batch, i int, _ string, err error) {
	*f = append(*f, struct {
		in  *message.Batch
		i   int
		err error
	}{in, i, err})
}

// rankOfRows computes, by the definitions, the rows a window top-N of
// rows writes: of each window from start to start + size (starting every
// slide) and symbol, each row in it with its rank, if within the limit.
// Rows tie for ROW_NUMBER in the order of rows.
func rankOfRows(rows []testRow, nulls map[int]bool, node *plan.TopN) []string {
	w := node.Window
	key := node.Order[0]
	value := func(i int) (int64, bool) { return rows[i].v, !nulls[i] }
	before := func(i, j int) bool {
		a, aok := value(i)
		b, bok := value(j)
		switch {
		case !aok && !bok:
			return false
		case !aok:
			return key.NullsFirst
		case !bok:
			return !key.NullsFirst
		case key.Desc:
			return a > b
		}
		return a < b
	}
	var out []string
	starts := map[int64]bool{}
	for _, r := range rows {
		ts := int64(r.ts)
		for start := ts - mod(ts, w.Slide); start > ts-w.Size; start -= w.Slide {
			starts[start] = true
		}
	}
	for start := range starts {
		in := func(i int) bool { return int64(rows[i].ts) >= start && int64(rows[i].ts) < start+w.Size }
		for i, r := range rows {
			if !in(i) {
				continue
			}
			var strictly, ties int64
			distinct := map[string]bool{}
			for j, o := range rows {
				if !in(j) || o.sym != r.sym {
					continue
				}
				switch {
				case before(j, i):
					strictly++
					k := "NULL"
					if v, ok := value(j); ok {
						k = fmt.Sprint(v)
					}
					distinct[k] = true
				case j < i && !before(i, j):
					ties++
				}
			}
			rank := map[plan.RankFunc]int64{plan.RowNumber: 1 + strictly + ties, plan.Rank: 1 + strictly, plan.DenseRank: 1 + int64(len(distinct))}[node.Func]
			if rank <= node.Limit {
				v := fmt.Sprint(r.v)
				if nulls[i] {
					v = "NULL"
				}
				out = append(out, fmt.Sprintf("%d %s %s %d %d %d", int64(r.ts), r.sym, v, start, start+w.Size, rank))
			}
		}
	}
	slices.Sort(out)
	return out
}

// rankRows runs op over the batches, advancing the watermark to 2 s
// before each batch's first row, then to the end, and returns what it
// writes as rankOfRows does.
func rankRows(t *testing.T, op Stateful, batches []*message.Batch) []string {
	t.Helper()
	out := new(message.Batch)
	out.Reset(6)
	feedRank(t, op, batches, out)
	op.Advance(fixedTime(math.MaxInt64), out, func(err error) { t.Error(err) })
	return rowsText(out)
}

// feedRank runs op over the batches, advancing the watermark to 2 s
// before each batch's first row, its rows written to out.
func feedRank(t *testing.T, op Stateful, batches []*message.Batch, out *message.Batch) {
	t.Helper()
	var fails failures
	for _, b := range batches {
		mark := fixedTime(b.Rows[0][0].Nanos() - int64(2*time.Second))
		op.Process(b, out, mark, &fails)
		op.Advance(mark, out, func(err error) { t.Error(err) })
	}
	if len(fails) > 0 {
		t.Fatalf("failures: %v", fails)
	}
}

func rowsText(out *message.Batch) []string {
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprintf("%d %s %s %d %d %d", row[0].Nanos(), row[1].Str(), row[2], row[3].Nanos(), row[4].Nanos(), row[5].Int()))
	}
	slices.Sort(got)
	return got
}

// TestWindowRankAgainstDefinition runs random top-Ns of rows, in
// tumbling and hopping windows, a little out of order, with ties and
// NULLs, against the definitions; and each again restored midway from a
// snapshot, whole or of each partition, which must write the same.
func TestWindowRankAgainstDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := int64(time.Second)
	parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}}
	for trial := range 60 {
		var rows []testRow
		nulls := map[int]bool{}
		for i := range 200 {
			ts := time.Duration(int64(i)*s/5 + rng.Int64N(s)) // a little out of order
			rows = append(rows, testRow{ts, fmt.Sprint("s", rng.IntN(3)), rng.Int64N(6)})
			if rng.IntN(8) == 0 {
				nulls[i] = true
			}
		}
		w := &plan.Window{Kind: plan.Tumble, Time: colTS, Size: 5 * s, Slide: 5 * s}
		if trial%2 == 1 {
			w = &plan.Window{Kind: plan.Hop, Time: colTS, Size: 6 * s, Slide: 2 * s}
		}
		node := &plan.TopN{
			Input: testScan, Window: w, Func: plan.RankFunc(rng.IntN(3)), Limit: 1 + rng.Int64N(3), RankName: "r",
			Partition: []expr.Expr{&expr.Column{Index: 3, Name: "window_start", T: value.Timestamp}, colSym},
			Order:     []plan.SortKey{{Expr: colV, Desc: rng.IntN(2) == 0, NullsFirst: rng.IntN(2) == 0}},
		}
		var batches []*message.Batch
		for i := 0; i < len(rows); i += 10 {
			b := batchOf(rows[i : i+10]...)
			for j := range b.Rows {
				if nulls[i+j] {
					b.Rows[j][2] = value.Value{}
				}
			}
			b.Origin = parts[i/10%2]
			batches = append(batches, b)
		}
		want := rankOfRows(rows, nulls, node)
		name := fmt.Sprintf("trial %d, %s, %s <= %d ORDER BY %s", trial, w, node.Func, node.Limit, node.Order[0])
		if got := rankRows(t, newWindowRank(node), batches); !slices.Equal(got, want) {
			t.Fatalf("%s: got\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Restored from a snapshot after half the batches: whole, or one
		// partition's after the other's, which add to each other. Each
		// partition's ranking is then the same, but for the order of ties
		// of two partitions, which ROW_NUMBER numbers.
		for _, whole := range []bool{true, false} {
			if !whole && node.Func == plan.RowNumber {
				continue
			}
			first := newWindowRank(node)
			out := new(message.Batch)
			out.Reset(6)
			feedRank(t, first, batches[:10], out)
			restored := newWindowRank(node)
			var snaps [][]byte
			if whole {
				snaps = append(snaps, first.AppendSnapshot(nil, NewOrigins(parts)))
			} else {
				for _, p := range parts {
					snaps = append(snaps, first.AppendSnapshot(nil, PartitionOrigins(p)))
				}
			}
			for i, snap := range snaps {
				origins := NewOrigins(parts)
				if !whole {
					origins = PartitionOrigins(parts[i])
				}
				if err := restored.RestoreSnapshot(value.NewReader(snap), origins); err != nil {
					t.Fatal(err)
				}
			}
			if restored.Size() != first.Size() || first.Size() == 0 {
				t.Fatalf("%s: %d rows restored of %d", name, restored.Size(), first.Size())
			}
			feedRank(t, restored, batches[10:], out)
			restored.Advance(fixedTime(math.MaxInt64), out, func(err error) { t.Error(err) })
			if got := rowsText(out); !slices.Equal(got, want) {
				t.Fatalf("%s, restored (whole %v): got\n%s\nwant\n%s", name, whole, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
}

// TestWindowRankWaits: a window whose rows include a replaying
// partition's is written whole once that partition's watermark passes
// its end, not before; a corrupt snapshot of it is refused.
func TestWindowRankWaits(t *testing.T) {
	node := &plan.TopN{
		Input: testScan, Window: &plan.Window{Kind: plan.Tumble, Time: colTS, Size: int64(time.Minute), Slide: int64(time.Minute)},
		Func: plan.RowNumber, Limit: 2, RankName: "r",
		Partition: []expr.Expr{&expr.Column{Index: 3, Name: "window_start", T: value.Timestamp}},
		Order:     []plan.SortKey{{Expr: colV, Desc: true, NullsFirst: true}},
	}
	op := newWindowRank(node)
	a, b := &message.Origin{Partition: 0}, &message.Origin{Partition: 1}
	first, second := batchOf(testRow{time.Second, "x", 1}, testRow{2 * time.Second, "y", 5}), batchOf(testRow{3 * time.Second, "z", 3})
	first.Origin, second.Origin = a, b
	out := new(message.Batch)
	out.Reset(6)
	var fails failures
	op.Process(first, out, fixedTime(0), &fails)
	op.Process(second, out, fixedTime(0), &fails)
	snap := op.AppendSnapshot(nil, NewOrigins([]*message.Origin{a, b}))
	op.Advance(originMark{wm: int64(2 * time.Minute), behind: int64(time.Second), replaying: b}, out, func(err error) { t.Error(err) })
	if out.Len() != 0 {
		t.Fatalf("%d rows written while partition 1 replays the window; want none", out.Len())
	}
	op.Advance(fixedTime(int64(2*time.Minute)), out, func(err error) { t.Error(err) })
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprint(row[1].Str(), " ", row[5].Int()))
	}
	if want := []string{"y 1", "z 2"}; !slices.Equal(got, want) || len(fails) > 0 {
		t.Errorf("rows %q, failures %v; want %q", got, fails, want)
	}
	for n := range len(snap) {
		if err := newWindowRank(node).RestoreSnapshot(value.NewReader(snap[:n]), NewOrigins([]*message.Origin{a, b})); err == nil {
			t.Fatalf("a snapshot cut to %d of %d bytes restored without an error", n, len(snap))
		}
	}
}

func (w originMark) Replaying() int64 {
	if w.replaying == nil {
		return math.MaxInt64
	}
	return w.behind
}

// TestRankedOnce: rows of a window ranked already, from a partition that
// replays or came back from idleness (judged by its own watermark, which
// is behind), are late for it, for both kinds of top-N: the window is not
// ranked again of their rows alone. A replaying partition known to be
// behind a window holds it, even with no rows in it yet.
func TestRankedOnce(t *testing.T) {
	minute := int64(time.Minute)
	rows := topNProgram(t) // of groups
	root, err := sql.Plan(`SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY window_start ORDER BY v DESC) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)) t WHERE r <= 1`, sql.Catalog{"trades": testScan.Cols})
	if err != nil {
		t.Fatal(err)
	}
	ofRows, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*Program{"groups": rows, "rows": ofRows} {
		op := p.NewStateful(StatefulOptions{})
		a, b := &message.Origin{Partition: 0}, &message.Origin{Partition: 1}
		first := batchOf(testRow{time.Second, "x", 1}, testRow{2 * time.Second, "x", 2}, testRow{3 * time.Second, "y", 3})
		first.Origin = a
		raw := new(message.Batch)
		raw.Reset(p.StatefulWidth())
		var fails failures
		op.Process(first, raw, fixedTime(0), &fails)
		op.Advance(originMark{wm: 2 * minute, behind: minute / 2, replaying: b}, raw, func(err error) { t.Error(err) })
		if raw.Len() != 0 {
			t.Errorf("%s: %d rows written while partition 1, replaying, may bring rows to the window", name, raw.Len())
		}
		op.Advance(fixedTime(2*minute), raw, func(err error) { t.Error(err) })
		written := raw.Len()
		if written == 0 {
			t.Fatalf("%s: the window was not written", name)
		}
		second := batchOf(testRow{7 * time.Second, "v", 7}, testRow{8 * time.Second, "v", 8}, testRow{61 * time.Second, "v", 9})
		second.Origin = b
		late, absorbed := op.Process(second, raw, originMark{wm: 2 * minute, behind: 0, replaying: b}, &fails)
		op.Advance(fixedTime(3*minute), raw, func(err error) { t.Error(err) })
		if late != 2 || absorbed != 1 || raw.Len() != written+1 {
			t.Errorf("%s: late %d, absorbed %d, %d rows written after the first %d; want 2 late, 1 absorbed and one row, of the next window", name, late, absorbed, raw.Len()-written, written)
		}
	}
}

// TestTopNFingerprint: a checkpoint of an aggregation serves its top-N
// whatever N and order, but not one keyed otherwise across engines: the
// ranking's keys are in the state's fingerprint.
func TestTopNFingerprint(t *testing.T) {
	cols := append(slices.Clone(testScan.Cols), value.Column{Name: "venue", Type: value.String})
	inner := "(SELECT window_start AS ws, sym, venue, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, sym, venue) c"
	prints := map[string]string{}
	for name, q := range map[string]string{
		"plain":         "SELECT window_start AS ws, sym, venue, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, sym, venue",
		"by sym":        "SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws, sym ORDER BY n DESC) AS r FROM " + inner + ") t WHERE r <= 1",
		"by sym, top 3": "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ws, sym ORDER BY venue) AS r FROM " + inner + ") t WHERE r <= 3",
		"by venue":      "SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY ws, venue ORDER BY n DESC) AS r FROM " + inner + ") t WHERE r <= 1",
	} {
		root, err := sql.Plan(q, sql.Catalog{"trades": cols})
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(root)
		if err != nil {
			t.Fatal(err)
		}
		prints[name] = p.StateFingerprint()
	}
	distinct := map[string]bool{}
	for _, f := range prints {
		distinct[f] = true
	}
	if prints["by sym"] != prints["by sym, top 3"] || len(distinct) != 3 {
		t.Errorf("fingerprints %v; want the two by sym alike, the others apart", prints)
	}
}

// changelogOf keeps, of the rows a top-N without a window wrote (ts, sym,
// v, rank), the latest of each symbol and rank, as a reader of the
// changelog does.
func changelogOf(out *message.Batch) []string {
	latest := map[string]string{}
	for _, row := range out.Rows {
		latest[fmt.Sprint(row[1].Str(), " ", row[3].Int())] = fmt.Sprintf("%d %s %s %d", row[0].Nanos(), row[1].Str(), row[2], row[3].Int())
	}
	return slices.Sorted(maps.Values(latest))
}

// TestTopRowsAgainstDefinition: a top-N without a window's changelog,
// read to its latest row per partition and rank, is ROW_NUMBER's top N
// of all rows (ties in the order they came), however the rows come in
// batches; restored midway from a snapshot, whole or partition by
// partition, it writes the same.
func TestTopRowsAgainstDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}}
	for trial := range 40 {
		var rows []testRow
		for i := range 300 {
			rows = append(rows, testRow{time.Duration(i), fmt.Sprint("s", rng.IntN(4)), rng.Int64N(8)})
		}
		node := &plan.TopN{Input: testScan, Func: plan.RowNumber, Limit: 1 + rng.Int64N(4), RankName: "r",
			Partition: []expr.Expr{colSym}, Order: []plan.SortKey{{Expr: colV, Desc: rng.IntN(2) == 0}}}
		// One symbol per partition, so that ties come in one order
		// however the partitions' batches interleave.
		var each [2][]*message.Batch
		for p := range 2 {
			var mine []testRow
			for _, r := range rows {
				if (r.sym == "s0" || r.sym == "s1") == (p == 0) {
					mine = append(mine, r)
				}
			}
			for i := 0; i < len(mine); i += 7 {
				b := batchOf(mine[i:min(i+7, len(mine))]...)
				b.Origin = parts[p]
				each[p] = append(each[p], b)
			}
		}
		// The partitions' batches interleaved at random, each's in order.
		var batches []*message.Batch
		for len(each[0])+len(each[1]) > 0 {
			p := rng.IntN(2)
			if len(each[p]) == 0 {
				p = 1 - p
			}
			batches, each[p] = append(batches, each[p][0]), each[p][1:]
		}
		var want []string
		for _, sym := range []string{"s0", "s1", "s2", "s3"} {
			var mine []testRow
			for _, r := range rows {
				if r.sym == sym {
					mine = append(mine, r)
				}
			}
			slices.SortStableFunc(mine, func(a, b testRow) int {
				if node.Order[0].Desc {
					return cmp.Compare(b.v, a.v)
				}
				return cmp.Compare(a.v, b.v)
			})
			for i, r := range mine[:min(int64(len(mine)), node.Limit)] {
				want = append(want, fmt.Sprintf("%d %s %d %d", int64(r.ts), sym, r.v, i+1))
			}
		}
		slices.Sort(want)
		run := func(op Stateful, batches []*message.Batch, out *message.Batch) {
			var fails failures
			for _, b := range batches {
				op.Process(b, out, fixedTime(0), &fails)
				op.Advance(fixedTime(0), out, func(err error) { t.Error(err) })
			}
			if len(fails) > 0 {
				t.Fatal(fails)
			}
		}
		out := new(message.Batch)
		out.Reset(4)
		run(newTopRows(node, StatefulOptions{}), batches, out)
		name := fmt.Sprintf("trial %d, ROW_NUMBER <= %d ORDER BY %s", trial, node.Limit, node.Order[0])
		if got := changelogOf(out); !slices.Equal(got, want) {
			t.Fatalf("%s: got\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, whole := range []bool{true, false} {
			first, restored := newTopRows(node, StatefulOptions{}), newTopRows(node, StatefulOptions{})
			out := new(message.Batch)
			out.Reset(4)
			half := len(batches) / 2
			run(first, batches[:half], out)
			if whole {
				if err := restored.RestoreSnapshot(value.NewReader(first.AppendSnapshot(nil, NewOrigins(parts))), NewOrigins(parts)); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, p := range parts {
					if err := restored.RestoreSnapshot(value.NewReader(first.AppendSnapshot(nil, PartitionOrigins(p))), PartitionOrigins(p)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if restored.Size() != first.Size() {
				t.Fatalf("%s: %d rows restored of %d", name, restored.Size(), first.Size())
			}
			run(restored, batches[half:], out)
			if got := changelogOf(out); !slices.Equal(got, want) {
				t.Fatalf("%s, restored (whole %v): got\n%s\nwant\n%s", name, whole, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
}

// TestTopRowsEmitAndExpire: with an emit interval a partition's changes
// are written once per interval, as they then are; with a ttl, a
// partition no row changed for that long is dropped, and its next row
// starts it again; a partition whose source partition moved away is
// dropped, not written.
func TestTopRowsEmitAndExpire(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	node := &plan.TopN{Input: testScan, Func: plan.RowNumber, Limit: 2, RankName: "r",
		Partition: []expr.Expr{colSym}, Order: []plan.SortKey{{Expr: colV, Desc: true, NullsFirst: true}}}
	op := newTopRows(node, StatefulOptions{EmitInterval: time.Second, TTL: time.Minute, Clock: clock})
	out := new(message.Batch)
	out.Reset(4)
	var fails failures
	a := &message.Origin{Partition: 0}
	in := func(rows ...testRow) {
		b := batchOf(rows...)
		b.Origin = a
		op.Process(b, out, fixedTime(0), &fails)
		op.Advance(fixedTime(0), out, func(err error) { t.Error(err) })
	}
	in(testRow{0, "x", 1}, testRow{1, "x", 5})
	in(testRow{2, "x", 3})
	if out.Len() != 0 || op.Low() != math.MinInt64 {
		t.Fatalf("%d rows written, low %d, within the emit interval; want none, and the rows held back unacknowledged", out.Len(), op.Low())
	}
	now = now.Add(time.Second)
	op.Advance(fixedTime(0), out, func(err error) { t.Error(err) })
	if got := changelogOf(out); out.Len() != 2 || !slices.Equal(got, []string{"1 x 5 1", "2 x 3 2"}) || op.Low() != math.MaxInt64 {
		t.Fatalf("after the interval %d rows, %q; want x's two, once each", out.Len(), got)
	}
	now = now.Add(2 * time.Minute)
	op.Advance(fixedTime(0), out, func(err error) { t.Error(err) })
	if op.Size() != 0 || op.Expired() != 1 {
		t.Fatalf("%d rows held, %d expired after the ttl; want none, one partition", op.Size(), op.Expired())
	}
	in(testRow{3, "x", 2}) // the interval has passed: written at once
	if row := out.Rows[out.Len()-1]; row[2].Int() != 2 || row[3].Int() != 1 {
		t.Errorf("after expiry, x's row %v; want v 2 of rank 1, a partition started again", row)
	}
	written := out.Len()
	in(testRow{4, "x", 9}) // held back
	a.Generation.Add(1)    // the partition moved away
	now = now.Add(time.Second)
	op.Advance(fixedTime(0), out, func(err error) { t.Error(err) })
	if out.Len() != written || op.Size() != 0 {
		t.Errorf("%d rows written, %d held after the partition moved away; want none, and none", out.Len()-written, op.Size())
	}
}

// windowRankText describes the rows a window top-N of rows wrote.
func windowRankText(out *message.Batch) []string {
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprintf("%s v=%v r=%d", row[1].Str(), row[2], row[5].Int()))
	}
	return got
}

func minuteTopN(f plan.RankFunc, limit int64) *plan.TopN {
	return &plan.TopN{
		Input: testScan, Window: &plan.Window{Kind: plan.Tumble, Time: colTS, Size: int64(time.Minute), Slide: int64(time.Minute)},
		Func: f, Limit: limit, RankName: "r",
		Partition: []expr.Expr{&expr.Column{Index: 3, Name: "window_start", T: value.Timestamp}, colSym},
		Order:     []plan.SortKey{{Expr: colV, Desc: true, NullsFirst: true}},
	}
}

// TestWindowRankGenerations: the rows of a partition's earlier
// generation (before it was revoked, or before an aborted transaction)
// take no rank from the rows read again; and a restore opens the windows
// it holds again, even ranked here since, whose rows read again are
// then not late.
func TestWindowRankGenerations(t *testing.T) {
	for _, f := range []plan.RankFunc{plan.RowNumber, plan.Rank, plan.DenseRank} {
		op := newWindowRank(minuteTopN(f, 2))
		a := &message.Origin{Source: "trades", Partition: 0}
		var fails failures
		out := new(message.Batch)
		out.Reset(6)
		first := batchOf(testRow{time.Second, "x", 10}, testRow{2 * time.Second, "x", 8})
		first.Origin = a
		op.Process(first, out, fixedTime(0), &fails)
		a.Generation.Add(1) // revoked, and assigned again: read again
		again := batchOf(testRow{time.Second, "x", 10}, testRow{2 * time.Second, "x", 8})
		again.Origin, again.Generation = a, 1
		op.Process(again, out, fixedTime(0), &fails)
		op.Advance(fixedTime(int64(2*time.Minute)), out, func(err error) { t.Error(err) })
		if got, want := windowRankText(out), []string{"x v=10 r=1", "x v=8 r=2"}; !slices.Equal(got, want) {
			t.Errorf("%s, read again: %q; want %q", f, got, want)
		}
	}

	op := newWindowRank(minuteTopN(plan.RowNumber, 1))
	a := &message.Origin{Source: "trades", Partition: 0}
	var fails failures
	out := new(message.Batch)
	out.Reset(6)
	first := batchOf(testRow{time.Second, "x", 5})
	first.Origin = a
	op.Process(first, out, fixedTime(0), &fails)
	snap := op.AppendSnapshot(nil, PartitionOrigins(a)) // the commit
	rest := batchOf(testRow{2 * time.Second, "x", 9}, testRow{61 * time.Second, "x", 1})
	rest.Origin = a
	op.Process(rest, out, fixedTime(0), &fails)
	op.Advance(fixedTime(int64(time.Minute)), out, func(err error) { t.Error(err) })
	// The transaction aborts: what it wrote is gone; the partition's next
	// generation restores the commit and reads the rest again.
	out.Reset(6)
	a.Generation.Add(1)
	if err := op.RestoreSnapshot(value.NewReader(snap), PartitionOrigins(a)); err != nil {
		t.Fatal(err)
	}
	rest.Generation = 1
	late, _ := op.Process(rest, out, fixedTime(0), &fails)
	op.Advance(fixedTime(int64(3*time.Minute)), out, func(err error) { t.Error(err) })
	if got, want := windowRankText(out), []string{"x v=9 r=1", "x v=1 r=1"}; late != 0 || !slices.Equal(got, want) {
		t.Errorf("after the rewind: %d late, %q; want none late, %q", late, got, want)
	}
}

// TestTopRowsGenerations: rows of a partition read again in its source
// partition's next generation (revoked and assigned again, or an aborted
// transaction) build it anew, and are written, though no Advance dropped
// the earlier generation's first.
func TestTopRowsGenerations(t *testing.T) {
	node := &plan.TopN{Input: testScan, Func: plan.RowNumber, Limit: 2, RankName: "r",
		Partition: []expr.Expr{colSym}, Order: []plan.SortKey{{Expr: colV, Desc: true, NullsFirst: true}}}
	op := newTopRows(node, StatefulOptions{})
	a := &message.Origin{Partition: 0}
	out := new(message.Batch)
	out.Reset(4)
	var fails failures
	first := batchOf(testRow{0, "x", 10}, testRow{1, "x", 8})
	first.Origin = a
	op.Process(first, out, fixedTime(0), &fails)
	a.Generation.Add(1)
	again := batchOf(testRow{0, "x", 10}, testRow{1, "x", 8}, testRow{2, "x", 9})
	again.Origin, again.Generation = a, 1
	op.Process(again, out, fixedTime(0), &fails)
	op.Advance(fixedTime(0), out, func(err error) { t.Error(err) })
	if got, want := changelogOf(out), []string{"0 x 10 1", "2 x 9 2"}; !slices.Equal(got, want) || op.Size() != 2 {
		t.Errorf("changelog %q, %d rows held; want %q, 2", got, op.Size(), want)
	}
}
