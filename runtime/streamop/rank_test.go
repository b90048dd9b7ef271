package streamop

import (
	"errors"
	"fmt"
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
// fails for the windows of the symbol "zero"'s.
func topNProgram(t *testing.T) *Program {
	t.Helper()
	root, err := sql.Plan(`SELECT ws, sym, n, r, 100 / (CASE WHEN sym = 'zero' THEN 0 ELSE n END) AS inv FROM (
		SELECT *, RANK() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (
			SELECT window_start AS ws, sym, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, sym
		) c
	) ranked WHERE r <= 2`, sql.Catalog{"trades": testScan.Cols})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	return p
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
	p := topNProgram(t)
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
		op.Process(in, raw, fixedMark(0), &fails)
	}
	minute := int64(time.Minute)
	op.Advance(originMark{wm: 2 * minute, behind: minute / 2, replaying: b}, raw, func(err error) { t.Error(err) })
	if raw.Len() != 0 {
		t.Fatalf("%d rows written while partition 1 replays the window; want none until its groups are complete", raw.Len())
	}
	op.Advance(fixedMark(2*minute), raw, func(err error) { t.Error(err) })
	out := new(message.Batch)
	out.Reset(p.OutputWidth())
	var post postFailures
	p.NewPost().Process(raw, out, &post)
	var got []string
	for _, row := range out.Rows {
		got = append(got, fmt.Sprint(row[1:]))
	}
	// v, all of whose rows are partition 1's, has 3 rows, x 2, zero 2, y
	// and w 1: v ranks 1, x and zero 2; zero's 100 / 0 fails.
	want := []string{"[v 3 1 33]", "[x 2 2 50]"}
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
