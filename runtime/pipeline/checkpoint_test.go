package pipeline

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/streamop"
)

// checkpointSpec is a per-second count and sum by symbol over 2 × 20,000
// generated trades (20 s of event time per partition), checkpointing
// every 100ms into dir.
func checkpointSpec(dir string, rate int64, query ...string) *v1alpha1.StreamQuerySpec {
	q := "SELECT window_start, symbol, count(*) AS n, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol"
	if len(query) > 0 {
		q = query[0]
	}
	spec := bench.Spec(bench.Config{
		Query:   q,
		Records: 40_000, Partitions: 2, Parallelism: 2, Keys: 5, Rate: rate, BatchSize: 100, Linger: time.Millisecond,
	})
	if dir != "" {
		spec.State = &v1alpha1.StateSpec{Dir: dir, CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
	}
	return spec
}

// noSeek hides a reader's Seeker: the stateful stage must then drop the
// records a restored state holds, as it does for a Kafka partition whose
// commit is behind the checkpoint.
type noSeek struct{ connector.Reader }

// runUntil runs spec with a collecting sink until it ends or stop says to
// stop it: abort (a crash: the context is cancelled) or drain (a stop
// signal: Stop). Without seek, its generators cannot skip ahead.
func runUntil(t *testing.T, spec *v1alpha1.StreamQuerySpec, stopAfter time.Duration, abort bool, seek ...bool) (*Pipeline, []string) {
	t.Helper()
	sink := &collectSink{}
	opts := Options{Sink: sink}
	if len(seek) > 0 && !seek[0] {
		for p := range int32(2) {
			d, err := connector.NewDatagen("trades", spec.Sources[0].Datagen, p, schemas.Trades)
			if err != nil {
				t.Fatal(err)
			}
			opts.Readers = append(opts.Readers, noSeek{d})
		}
	}
	p, err := New(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		return p, sink.Rows()
	case <-time.After(stopAfter):
	}
	if abort {
		cancel()
	} else {
		p.Stop()
	}
	<-done
	return p, sink.Rows()
}

// TestCheckpointRestore: a windowed query killed midway and started again
// from its checkpoints writes every window's result, each equal to the
// uninterrupted run's (a window the first run wrote after its last
// checkpoint may be written again, equal); stopped gracefully instead, it
// writes each exactly once. The second run drops the records it reads
// again that the state holds, and the checkpoints go on numbering.
func TestCheckpointRestore(t *testing.T) {
	checkpointRestore(t, "", 90)
}

// movingQuery5s is a 5-second sum and a 2-second average by symbol. RANGE
// frames, whose rows of one event time are all peers: a ROWS frame's rows
// of one time from two partitions would come in the order they arrive,
// which differs from run to run.
const movingQuery5s = "SELECT symbol, ts, quantity, " +
	"sum(quantity) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS s5, " +
	"avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW) AS a2 FROM trades"

// TestCheckpointRestoreMoving is TestCheckpointRestore for moving
// aggregates: every row's frames after a restart are those of the
// uninterrupted run, never a frame cut short by the restart.
func TestCheckpointRestoreMoving(t *testing.T) {
	checkpointRestore(t, movingQuery5s, 40_000)
}

// TestCheckpointRestoreJoin is TestCheckpointRestore for an interval
// join of two generated streams: the rows each side holds for the other
// survive a restart, so no pair is lost or made twice over.
func TestCheckpointRestoreJoin(t *testing.T) {
	checkpointRestoreWith(t, twoStreams("SELECT a.symbol, a.ts AS ats, b.ts AS bts, a.quantity AS aq, b.quantity AS bq FROM a JOIN b ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '3 milliseconds' AND b.ts + INTERVAL '3 milliseconds'"), 20_000, false)
}

// TestCheckpointRestoreLeftJoin is TestCheckpointRestoreJoin for a LEFT
// JOIN, whose rows of a that paired with nothing are written with NULLs
// when no row of b can come for them: which rows have paired is state, so
// that such a row is written once, and only if it did not pair, across a
// restart.
func TestCheckpointRestoreLeftJoin(t *testing.T) {
	checkpointRestoreWith(t, twoStreams("SELECT a.symbol, a.ts AS ats, b.ts AS bts, a.quantity AS aq, b.quantity AS bq FROM a LEFT JOIN b ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '1 milliseconds' AND b.ts + INTERVAL '1 milliseconds' AND b.quantity > a.quantity"), 20_000, false)
}

// TestCheckpointRestoreFullJoin is TestCheckpointRestoreLeftJoin for a
// FULL JOIN, whose rows of either stream that paired with nothing are
// written with NULLs: which rows of b have paired is state too.
func TestCheckpointRestoreFullJoin(t *testing.T) {
	checkpointRestoreWith(t, twoStreams("SELECT a.symbol, b.symbol AS bsymbol, a.ts AS ats, b.ts AS bts, a.quantity AS aq, b.quantity AS bq FROM a FULL JOIN b ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '1 milliseconds' AND b.ts + INTERVAL '2 milliseconds' AND b.quantity > a.quantity"), 20_000, false)
}

// TestCheckpointRestoreJoinTable is TestCheckpointRestoreJoin for pairs
// looked up in a table (a file of names by symbol): the table's rows are
// restored with the join's, so that every pair after the restart still
// finds its name.
func TestCheckpointRestoreJoinTable(t *testing.T) {
	table := filepath.Join(t.TempDir(), "symbols.jsonl")
	lines := `{"symbol":"AAPL","name":"Apple"}` + "\n" + `{"symbol":"MSFT","name":"Microsoft"}` + "\n"
	if err := os.WriteFile(table, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := twoStreams("SELECT a.symbol, a.ts AS ats, b.ts AS bts, a.quantity AS aq, b.quantity AS bq, s.name FROM a JOIN b ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '3 milliseconds' AND b.ts + INTERVAL '3 milliseconds' LEFT JOIN symbols s ON s.symbol = b.symbol")
	checkpointRestoreWith(t, func(dir string, rate int64) *v1alpha1.StreamQuerySpec {
		s := spec(dir, rate)
		s.Sources = append(s.Sources, v1alpha1.Source{
			Name: "symbols", File: &v1alpha1.FileSource{Path: table}, Format: v1alpha1.FormatJSON,
			Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "name", Type: "string"}},
			Table:  &v1alpha1.TableSource{Key: []string{"symbol"}},
		})
		return s
	}, 20_000, false)
}

// TestCheckpointRestoreThreeStreams is TestCheckpointRestoreJoin for a
// join of three streams: the pairs of the first two waiting for the third
// are restored with the rows both joins hold, so that no triple is lost
// or made twice over.
func TestCheckpointRestoreThreeStreams(t *testing.T) {
	spec := twoStreams("SELECT a.symbol, a.ts AS ats, b.ts AS bts, c.ts AS cts, a.quantity AS aq, b.quantity AS bq, c.quantity AS cq FROM a " +
		"JOIN b ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '2 milliseconds' AND b.ts + INTERVAL '2 milliseconds' " +
		"JOIN c ON c.symbol = a.symbol AND c.ts BETWEEN b.ts - INTERVAL '1 milliseconds' AND b.ts + INTERVAL '2 milliseconds' AND c.quantity > a.quantity")
	checkpointRestoreWith(t, func(dir string, rate int64) *v1alpha1.StreamQuerySpec {
		s := spec(dir, rate)
		c := *s.Sources[1].DeepCopy()
		c.Name = "c"
		c.Datagen.Seed = 7
		s.Sources = append(s.Sources, c)
		return s
	}, 20_000, false)
}

// TestCheckpointRestoreAfterJoin is TestCheckpointRestore for windows of
// an interval join's rows: the join's rows and the windows' groups are
// restored together, with the windows' watermark, so that each window is
// written whole, and equal, across a restart.
func TestCheckpointRestoreAfterJoin(t *testing.T) {
	checkpointRestoreWith(t, twoStreams(`WITH j AS (SELECT a.symbol, b.ts, a.quantity * b.quantity AS q FROM a JOIN b
			ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '3 milliseconds' AND b.ts + INTERVAL '3 milliseconds')
		SELECT window_start, symbol, count(*) AS n, sum(q) AS q FROM TUMBLE(j, ts, INTERVAL '10 milliseconds') GROUP BY window_start, window_end, symbol`), 5_000, false)
}

// TestCheckpointRestoreWindowJoin is TestCheckpointRestore for a window
// join: both sides' windows are restored, with the rows one side wrote
// while the other still held the window, so that each window is joined
// once, whole, across a restart.
func TestCheckpointRestoreWindowJoin(t *testing.T) {
	checkpointRestoreWith(t, twoStreams(`SELECT A.symbol, A.ws, A.n AS an, B.n AS bn, A.q + B.q AS q
		FROM (SELECT symbol, window_start AS ws, count(*) AS n, sum(quantity) AS q FROM TUMBLE(a, ts, INTERVAL '10 milliseconds') GROUP BY symbol, window_start, window_end) A
		JOIN (SELECT symbol, window_start AS ws, count(*) AS n, sum(quantity) AS q FROM TUMBLE(b, ts, INTERVAL '10 milliseconds') WHERE quantity > 10 GROUP BY symbol, window_start, window_end) B
		ON A.symbol = B.symbol AND A.ws = B.ws`), 5_000, false)
}

// twoStreams is the spec of query over two generated streams of trades, a
// and b, of 2 × 20,000 records each, checkpointing every 100ms into dir.
func twoStreams(query string) func(dir string, rate int64) *v1alpha1.StreamQuerySpec {
	return func(dir string, rate int64) *v1alpha1.StreamQuerySpec {
		s := bench.Spec(bench.Config{Records: 40_000, Partitions: 2, Keys: 5, Rate: rate, BatchSize: 100, Linger: time.Millisecond})
		a := s.Sources[0]
		a.Name = "a"
		b := *a.DeepCopy()
		b.Name = "b"
		b.Datagen.Seed = 99
		s.Sources = []v1alpha1.Source{a, b}
		s.Query = query
		if dir != "" {
			s.State = &v1alpha1.StateSpec{Dir: dir, CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
		}
		return s
	}
}

// TestCheckpointRestoreTableJoin is TestCheckpointRestore for a stream
// looked up in a table (a file of the latest name per symbol): the table's
// rows are state, which a restarted run restores instead of reading the
// file again, so that every trade after the restart still finds its name.
func TestCheckpointRestoreTableJoin(t *testing.T) {
	checkpointRestoreTables(t, "SELECT t.symbol, t.ts, t.quantity, s.name FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol", 40_000, false)
}

// TestCheckpointRestoreTableJoins is TestCheckpointRestoreTableJoin for
// a join of three inputs, the second table looked up by the first's
// name: both tables' rows are restored.
func TestCheckpointRestoreTableJoins(t *testing.T) {
	checkpointRestoreTables(t, "SELECT t.symbol, t.ts, t.quantity, s.name, x.sector FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.name = s.name", 15_000, true)
}

// TestCheckpointRestoreTableTwice is TestCheckpointRestoreTableJoins with
// a table joined twice, each input with an ON of its own: each input's
// rows are restored.
func TestCheckpointRestoreTableTwice(t *testing.T) {
	checkpointRestoreTables(t, "SELECT t.symbol, t.ts, t.quantity, s.name, x.sector, y.sector AS again FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.name = s.name LEFT JOIN sectors y ON y.name = s.name AND t.quantity > 50", 15_000, true)
}

// checkpointRestoreTables is TestCheckpointRestore for query, which joins
// trades with the table symbols, and with sectors if sectors, and writes
// at least least rows.
func checkpointRestoreTables(t *testing.T, query string, least int, sectors bool) {
	dir := t.TempDir()
	tables := []v1alpha1.Source{{
		// AAPL's second row replaces its first; AMZN and META have none.
		Name: "symbols", Table: &v1alpha1.TableSource{Key: []string{"symbol"}},
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "name", Type: "string"}},
	}, {
		// Microsoft is in no sector.
		Name: "sectors", Table: &v1alpha1.TableSource{Key: []string{"name"}},
		Schema: []v1alpha1.Column{{Name: "name", Type: "string"}, {Name: "sector", Type: "string"}},
	}}
	lines := []string{
		`{"symbol":"AAPL","name":"Apple (old)"}` + "\n" + `{"symbol":"MSFT","name":"Microsoft"}` + "\n" +
			`{"symbol":"GOOG","name":"Alphabet"}` + "\n" + `{"symbol":"AAPL","name":"Apple"}` + "\n",
		`{"name":"Apple","sector":"Hardware"}` + "\n" + `{"name":"Alphabet","sector":"Advertising"}` + "\n",
	}
	if !sectors {
		tables = tables[:1]
	}
	for i := range tables {
		path := filepath.Join(dir, tables[i].Name+".jsonl")
		if err := os.WriteFile(path, []byte(lines[i]), 0o644); err != nil {
			t.Fatal(err)
		}
		tables[i].File, tables[i].Format = &v1alpha1.FileSource{Path: path}, v1alpha1.FormatJSON
	}
	checkpointRestoreWith(t, func(dir string, rate int64) *v1alpha1.StreamQuerySpec {
		s := checkpointSpec(dir, rate, query)
		s.Sources = append(s.Sources, tables...)
		return s
	}, least, false)
}

func checkpointRestore(t *testing.T, query string, least int) {
	var q []string
	if query != "" {
		q = []string{query}
	}
	checkpointRestoreWith(t, func(dir string, rate int64) *v1alpha1.StreamQuerySpec { return checkpointSpec(dir, rate, q...) }, least, true)
}

// checkpointRestoreWith runs the query specOf makes without state, then,
// into a state directory, killed, stopped and, if replay, killed with
// generators that cannot seek, each followed by a run to the end.
func checkpointRestoreWith(t *testing.T, specOf func(dir string, rate int64) *v1alpha1.StreamQuerySpec, least int, replay bool) {
	p0, want := runUntil(t, specOf("", 0), time.Minute, false)
	total := p0.Snapshot().Counts.In // records of every source
	if len(want) < least {
		t.Fatalf("the uninterrupted run wrote %d rows", len(want))
	}
	slices.Sort(want)
	for _, c := range []struct {
		name        string
		abort, seek bool
	}{{"killed", true, true}, {"stopped", false, true}, {"killed, the generator replays", true, false}} {
		if !c.seek && !replay {
			continue
		}
		abort := c.abort
		name := c.name
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p1, first := runUntil(t, specOf(dir, 20_000), 600*time.Millisecond, abort, c.seek) // 1 s of input per partition
			st1, _ := p1.Checkpoints()
			if st1.Completed == 0 {
				t.Fatal("the first run saved no checkpoint")
			}
			p2, second := runUntil(t, specOf(dir, 0), time.Minute, false, c.seek)
			st2, _ := p2.Checkpoints()
			counts := p2.Snapshot().Counts
			if st2.RestoredID == 0 || st2.RestoredID > st1.LastID || st2.LastID <= st1.LastID {
				t.Errorf("first run's checkpoints %+v, second's %+v: want the second to restore one of the first's and number on", st1, st2)
			}
			if st1.LastBytes == 0 || st2.RestoreDuration <= 0 || st2.Interval != 100*time.Millisecond {
				t.Errorf("checkpoint stats %+v then %+v; want a state size, a restore time and the interval", st1, st2)
			}
			switch {
			case c.seek && (counts.Restored != 0 || counts.In >= total):
				t.Errorf("the second run read %d of %d records and dropped %d as restored; want its generators to start after the checkpoint", counts.In, total, counts.Restored)
			case !c.seek && (counts.Restored == 0 || counts.In < total):
				t.Errorf("the second run read %d records and dropped %d as restored; want all %d read again, the state's dropped", counts.In, counts.Restored, total)
			}
			checkIdentity(t, counts)
			all := append(slices.Clone(first), second...)
			for _, row := range all {
				if _, ok := slices.BinarySearch(want, row); !ok {
					t.Fatalf("a row the uninterrupted run did not write: %s", row)
				}
			}
			// Rows can be equal in the uninterrupted run too (two partitions'
			// trades of one time, symbol and size): compare distinct rows,
			// and, across a graceful stop, the rows one for one.
			distinct := slices.Compact(slices.Sorted(slices.Values(all)))
			if wantDistinct := slices.Compact(slices.Clone(want)); !slices.Equal(distinct, wantDistinct) {
				t.Fatalf("%d distinct rows over both runs; want the uninterrupted run's %d", len(distinct), len(wantDistinct))
			}
			if dups := len(all) - len(want); !abort && !slices.Equal(slices.Sorted(slices.Values(all)), want) {
				t.Errorf("%d rows over both runs across a graceful stop; want the uninterrupted run's %d, each once", len(all), len(want))
			} else {
				t.Logf("%s after %d rows (%d checkpoints): %d rows written again; the second run read %d records, dropped %d as restored", name, len(first), st1.Completed, dups, counts.In, counts.Restored)
			}
		})
	}
}

// TestCheckpointOfAnotherQuery: a checkpoint of a query with another
// stateful part is refused, naming both plans and the way out; with
// reset, the query starts from empty state. One with the same stateful
// part and another select list restores it.
func TestCheckpointOfAnotherQuery(t *testing.T) {
	dir := t.TempDir()
	runUntil(t, checkpointSpec(dir, 0), time.Minute, false)
	// Another select list and a HAVING over the same windows, keys and
	// aggregates keep the state: a stopped run's is restored.
	compatible := t.TempDir()
	p1, _ := runUntil(t, checkpointSpec(compatible, 20_000), 600*time.Millisecond, false)
	st1, _ := p1.Checkpoints()
	same := checkpointSpec(compatible, 0, "SELECT symbol, window_start, count(*) * 10 AS n10, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol HAVING count(*) > 1")
	if p2, _ := runUntil(t, same, time.Minute, false); func() bool { st, _ := p2.Checkpoints(); return st.RestoredID != st1.LastID || st1.LastID == 0 }() {
		t.Errorf("a query with another select list and a HAVING did not restore the state of checkpoint %d", st1.LastID)
	}
	other := checkpointSpec(dir, 0)
	other.Query = strings.Replace(other.Query, "INTERVAL '1' SECOND", "INTERVAL '2' SECOND", 1)
	_, err := New(other, Options{Sink: &collectSink{}})
	if err == nil || !strings.Contains(err.Error(), "holds the state of another query") || !strings.Contains(err.Error(), "spec.state.reset") {
		t.Fatalf("New = %v; want the other query's state refused, with reset named", err)
	}
	other.State.Reset = true
	p, rows := runUntil(t, other, time.Minute, false)
	if st, _ := p.Checkpoints(); st.RestoredID != 0 || len(rows) == 0 || p.Snapshot().Counts.Restored != 0 {
		t.Errorf("with reset: restored %d, %d rows, %d records restored; want a fresh start", st.RestoredID, len(rows), p.Snapshot().Counts.Restored)
	}
	// A directory whose only checkpoint is damaged refuses to start
	// rather than start empty.
	files, _ := filepath.Glob(filepath.Join(dir, "*.checkpoint"))
	for _, f := range files {
		os.WriteFile(f, []byte("garbage"), 0o600)
	}
	if _, err := New(checkpointSpec(dir, 0), Options{Sink: &collectSink{}}); err == nil || !strings.Contains(err.Error(), "checkpoint corrupt") {
		t.Errorf("New over damaged checkpoints = %v; want an error", err)
	}
}

// sizedState is a stateful operator of a given size, for the choice of a
// whole checkpoint or a delta.
type sizedState struct{ size int }

func (s *sizedState) Process(_, _ *message.Batch, _ streamop.Watermark, _ streamop.Failures) (int, int) {
	return 0, 0
}
func (s *sizedState) Advance(streamop.Watermark, *message.Batch, func(error)) int { return 0 }
func (s *sizedState) Low() int64                                                  { return math.MaxInt64 }
func (s *sizedState) Size() int                                                   { return s.size }

// TestDeltaDue: deltas go on while the chain is short and holds less than
// twice what a whole checkpoint of the state would now: on and on for a
// state that only grows, whose deltas are what a whole one would add, and
// not once the chain is mostly rows the state no longer holds.
func TestDeltaDue(t *testing.T) {
	op := &sizedState{}
	s := &statefulStage{op: op}
	whole := func(rows, bytes int) {
		op.size = rows
		s.chainLen, s.wholeBytes, s.chainBytes, s.wholeRows = 1, bytes, bytes, rows
	}
	delta := func(rows, bytes int) {
		op.size = rows
		s.chainLen++
		s.chainBytes += bytes
	}
	whole(1000, 100_000)
	for i := range 20 {
		if !s.deltaDue() {
			t.Fatalf("growing state, chain of %d: a whole checkpoint; want a delta", s.chainLen)
		}
		delta(1000*(i+2), 100_000) // each delta holds the rows added
	}
	whole(1000, 100_000)
	delta(1000, 50_000) // as many rows come as go
	if !s.deltaDue() {
		t.Fatalf("steady state, chain of %d bytes against a whole of 100000: a whole checkpoint; want a delta", s.chainBytes)
	}
	delta(1000, 50_000)
	if s.deltaDue() {
		t.Fatalf("steady state, chain of %d bytes against a whole of 100000: a delta; want a whole checkpoint", s.chainBytes)
	}
	whole(1000, 100_000)
	s.chainLen = maxChain
	if s.deltaDue() {
		t.Fatalf("a chain of %d: a delta; want a whole checkpoint", s.chainLen)
	}
	s.chainLen = 0
	if s.deltaDue() {
		t.Fatal("no chain: a delta; want a whole checkpoint")
	}
}

// TestContinuousReadsOn: a continuous aggregation's groups outlive the end
// of its input in the checkpoint, so a run that reads on (the generator
// made longer) goes on counting from them: its last rows are those of one
// run over the whole input.
func TestContinuousReadsOn(t *testing.T) {
	query := "SELECT symbol, count(*) AS n, sum(quantity) AS q FROM trades GROUP BY symbol"
	latest := func(rows []string) map[string]string {
		m := map[string]string{}
		for _, r := range rows {
			m[strings.SplitN(r, ",", 2)[0]] = r
		}
		return m
	}
	whole := checkpointSpec("", 0, query)
	_, want := runUntil(t, whole, time.Minute, false)

	dir := t.TempDir()
	first := checkpointSpec(dir, 0, query)
	first.Sources[0].Datagen.Count /= 2
	runUntil(t, first, time.Minute, false)
	_, got := runUntil(t, checkpointSpec(dir, 0, query), time.Minute, false)
	if g, w := latest(got), latest(want); !maps.Equal(g, w) || len(w) == 0 {
		t.Errorf("read on from the first run's checkpoint, the last rows are %v; one run over the whole input writes %v", g, w)
	}
}

// TestCheckpointRestoreChanges: an aggregation of a GROUP BY's rows keeps
// the inner groups, the latest row of each that the outer groups hold,
// and the outer groups (OVER of them, each group's latest row); killed or stopped midway and started again from
// its checkpoints, or read on from the checkpoint of a run whose input
// ended, its last rows are one uninterrupted run's. Without the latest
// rows restored, the second run would add each inner group's next row
// without taking its earlier one out.
func TestCheckpointRestoreChanges(t *testing.T) {
	for i, query := range []string{
		`SELECT initial, count(*) AS symbols, sum(n) AS n, sum(q) AS q, avg(q) AS avg_q
		FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, count(*) AS n, sum(quantity) AS q FROM trades GROUP BY symbol) s
		GROUP BY initial`,
		// A window that spans two runs, the first of which ended, is
		// written by each, with its rows of that run: the sums hold.
		`SELECT symbol, sum(n) AS n, sum(q) AS q
		FROM (SELECT window_start, symbol, count(*) AS n, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '3' SECOND) GROUP BY window_start, window_end, symbol) w
		GROUP BY symbol`,
		// OVER of a GROUP BY's rows: the groups of each symbol's seconds,
		// of which the second run changes the later only; without the
		// earlier ones' rows restored, its frames would lack them.
		`SELECT symbol || '@' || CAST(sec AS string) AS k,
			sum(n) OVER (PARTITION BY symbol ORDER BY sec ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS n3,
			avg(q) OVER (PARTITION BY symbol ORDER BY sec ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS avg_q3
		FROM (SELECT symbol, date_trunc('second', ts) AS sec, count(*) AS n, sum(quantity) AS q FROM trades GROUP BY symbol, date_trunc('second', ts)) s`,
	} {
		checkpointRestoreChanges(t, query, i < 2)
	}
}

// checkpointRestoreChanges runs query as TestCheckpointRestoreChanges
// says; rewritesAll says a run that reads on from the checkpoint of one
// whose input ended writes every group again, as the aggregations do,
// where OVER of the groups of each second writes the later seconds'.
func checkpointRestoreChanges(t *testing.T, query string, rewritesAll bool) {
	latest := func(rows []string) map[string]string {
		m := map[string]string{}
		for _, r := range rows {
			m[strings.SplitN(r, ",", 2)[0]] = r
		}
		return m
	}
	_, whole := runUntil(t, checkpointSpec("", 0, query), time.Minute, false)
	want := latest(whole)
	if len(want) < 2 {
		t.Fatalf("the uninterrupted run's last rows %v: want several groups", want)
	}
	for _, abort := range []bool{true, false} {
		dir := t.TempDir()
		p1, first := runUntil(t, checkpointSpec(dir, 20_000, query), 600*time.Millisecond, abort)
		if st, _ := p1.Checkpoints(); st.Completed == 0 || len(first) == 0 {
			t.Fatalf("the first run saved %d checkpoints and wrote %d rows", st.Completed, len(first))
		}
		p2, second := runUntil(t, checkpointSpec(dir, 0, query), time.Minute, false)
		checkIdentity(t, p2.Snapshot().Counts)
		if got := latest(append(first, second...)); !maps.Equal(got, want) {
			t.Errorf("killed %v: the last rows over both runs are %v; one run writes %v", abort, got, want)
		}
	}
	dir := t.TempDir()
	half := checkpointSpec(dir, 0, query)
	half.Sources[0].Datagen.Count /= 2
	_, first := runUntil(t, half, time.Minute, false)
	_, got := runUntil(t, checkpointSpec(dir, 0, query), time.Minute, false)
	if !rewritesAll {
		got = append(first, got...)
	}
	if !maps.Equal(latest(got), want) {
		t.Errorf("read on from the first run's checkpoint, the last rows are %v; one run over the whole input writes %v", latest(got), want)
	}
}

// TestWindowsReadOn: a windowed query reads on from the checkpoint of a
// run whose input ended (its watermark then the end of time): the second
// run's records are judged by the partitions' progress, not that end, so
// none is late, and each window of event time or of processing time is
// written whole, once, as one run over the whole input writes it.
func TestWindowsReadOn(t *testing.T) {
	for _, query := range []string{
		"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
		"SELECT symbol, count(*) AS n FROM TUMBLE(trades, PROCTIME(), INTERVAL '1' HOUR) GROUP BY window_start, window_end, symbol",
	} {
		dir := t.TempDir()
		first := checkpointSpec(dir, 0, query)
		first.Sources[0].Datagen.Count /= 2
		_, rows1 := runUntil(t, first, time.Minute, false)
		p2, rows2 := runUntil(t, checkpointSpec(dir, 0, query), time.Minute, false)
		c := p2.Snapshot().Counts
		counted := map[string]int{}
		for _, r := range append(rows1, rows2...) {
			f := strings.Split(r, ",")
			n, _ := strconv.Atoi(f[len(f)-1])
			counted[strings.Join(f[:len(f)-1], ",")] += n
		}
		total := 0
		for _, n := range counted {
			total += n
		}
		// An hour's window of processing time may straddle the hour: at
		// most twice the symbols' windows per run.
		if c.Late != 0 || total != 40_000 || len(rows2) > 2*len(counted) {
			t.Errorf("%s: the second run's counts %+v, %d rows over both runs counting %d records in %d windows; want none late, all 40000 counted, each window once a run", query, c, len(rows1)+len(rows2), total, len(counted))
		}
	}
}

// TestCheckpointOfHeldColumns: a query whose state holds its input rows
// (OVER's) holds the columns it reads, the others NULL, and its
// checkpoints say which. A query changed to read another column refuses
// them, naming it (with reset, it starts from empty state); one changed to
// read fewer restores them, as it restores a checkpoint of whole rows (of
// a query that reads every column, as all such queries did before).
func TestCheckpointOfHeldColumns(t *testing.T) {
	const over = "sum(quantity) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s"
	fewer := "SELECT symbol, " + over + " FROM trades"
	some := "SELECT symbol, quantity, " + over + " FROM trades"
	more := "SELECT symbol, price, " + over + " FROM trades"
	every := "SELECT *, " + over + " FROM trades"
	restored := func(p *Pipeline) uint64 { st, _ := p.Checkpoints(); return st.RestoredID }
	taken := func(p *Pipeline) uint64 { st, _ := p.Checkpoints(); return st.LastID }
	for _, c := range []struct {
		first, then string
		refused     string // the error's words; "" restores
	}{
		{some, more, "holds rows of trades without the columns price, which this query reads"},
		{some, fewer, ""},
		{some, some, ""},
		{every, fewer, ""},
	} {
		dir := t.TempDir()
		first, _ := runUntil(t, checkpointSpec(dir, 20_000, c.first), 600*time.Millisecond, false)
		if taken(first) == 0 {
			t.Fatal("no checkpoint taken")
		}
		spec := checkpointSpec(dir, 0, c.then)
		if c.refused != "" {
			_, err := New(spec, Options{Sink: &collectSink{}})
			if err == nil || !strings.Contains(err.Error(), c.refused) || !strings.Contains(err.Error(), "spec.state.reset") {
				t.Errorf("%s after %s: New = %v; want the checkpoint refused, %q", c.then, c.first, err, c.refused)
			}
			spec.State.Reset = true
			if p, _ := runUntil(t, spec, time.Minute, false); restored(p) != 0 || p.Snapshot().Counts.Restored != 0 {
				t.Errorf("%s after %s, with reset: checkpoint %d restored; want empty state", c.then, c.first, restored(p))
			}
			continue
		}
		if then, _ := runUntil(t, spec, time.Minute, false); restored(then) != taken(first) {
			t.Errorf("%s after %s: restored checkpoint %d; want %d", c.then, c.first, restored(then), taken(first))
		}
	}
}

// TestCheckpointOfKeptTable: a table join whose WHERE begins with
// conditions of the table keeps only the table rows they do not make
// FALSE, and its checkpoints say by which. A checkpoint of every table row
// (of a query whose WHERE begins with a stream condition, or taken before
// tables were kept so) restores into it; one kept by its conditions
// restores again; one kept by other conditions, which may have dropped a
// row these keep, is refused, even when they render alike in SQL.
func TestCheckpointOfKeptTable(t *testing.T) {
	const (
		join        = "SELECT t.symbol, t.ts, t.quantity, s.name FROM trades t JOIN symbols s ON t.symbol = s.symbol "
		streamFirst = join + "WHERE t.quantity > 0 AND s.name <> 'Microsoft'"
		tableFirst  = join + "WHERE s.name <> 'Microsoft' AND t.quantity > 0"
		other       = join + "WHERE s.name <> 'Alphabet' AND t.quantity > 0"
		integer     = join + "WHERE s.lot / 2 > 1"
		double      = join + "WHERE s.lot / 2e0 > 1"
	)
	path := writeFile(t, "symbols.jsonl", `{"symbol":"AAPL","name":"Apple","lot":3}`+"\n"+`{"symbol":"MSFT","name":"Microsoft","lot":5}`+"\n"+`{"symbol":"GOOG","name":"Alphabet","lot":2}`+"\n")
	specOf := func(state string, rate int64, q string) *v1alpha1.StreamQuerySpec {
		s := checkpointSpec(state, rate, q)
		s.Sources = append(s.Sources, v1alpha1.Source{
			Name: "symbols", Table: &v1alpha1.TableSource{Key: []string{"symbol"}},
			Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "name", Type: "string"}, {Name: "lot", Type: "int"}},
			File:   &v1alpha1.FileSource{Path: path}, Format: v1alpha1.FormatJSON,
		})
		return s
	}
	for _, c := range []struct {
		first, then string
		restores    bool
	}{
		{streamFirst, tableFirst, true},
		{tableFirst, tableFirst, true},
		{tableFirst, streamFirst, false},
		{tableFirst, other, false},
		{integer, double, false},
	} {
		state := t.TempDir()
		first, _ := runUntil(t, specOf(state, 20_000, c.first), 600*time.Millisecond, false)
		if st, _ := first.Checkpoints(); st.LastID == 0 {
			t.Fatal("no checkpoint taken")
		}
		p, err := New(specOf(state, 0, c.then), Options{Sink: &collectSink{}})
		switch {
		case c.restores && err != nil:
			t.Errorf("%s after %s: %v; want the checkpoint restored", c.then, c.first, err)
		case !c.restores && (err == nil || !strings.Contains(err.Error(), "kept by other conditions")):
			t.Errorf("%s after %s: New = %v; want the checkpoint refused", c.then, c.first, err)
		}
		if err == nil {
			p.close()
		}
	}
}

// heldRound is a connector.RoundTransaction whose rounds the test ends:
// a round ends (begins to end, with nothing read to wait for) when begin
// is called, and commits when commit is. (No Kafka source here: the
// sink's order is what is tested, and the Kafka tests run the real one.)
type heldRound struct {
	mu              sync.Mutex
	ending, ended   uint64
	changed         chan struct{}
	awaited, passed atomic.Int64 // AwaitCommit calls, and returns
}

func (*heldRound) System() string { return "test" }

func (r *heldRound) Ending() (uint64, map[*message.Origin]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ending == r.ended {
		return 0, nil
	}
	return r.ending, map[*message.Origin]int64{}
}

func (r *heldRound) AwaitCommit(ctx context.Context, round uint64) error {
	r.awaited.Add(1)
	defer r.passed.Add(1)
	for {
		r.mu.Lock()
		ended, changed := r.ended, r.changed
		r.mu.Unlock()
		if ended >= round {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *heldRound) step(end bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if end {
		r.ended = r.ending
	} else {
		r.ending++
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// TestRoundHoldsWrites: a stateful statement of a set that checkpoints at
// the set's transaction rounds (Options.round) checkpoints when a round
// ends, and its sink, one that writes a batch at a time or several at
// once (AsyncSink, as Kafka's), writes nothing after the checkpoint until
// the round commits: what it wrote would commit with the checkpoint, and
// a restore of it would write it again.
func TestRoundHoldsWrites(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async %v", async), func(t *testing.T) { roundHoldsWrites(t, async) })
	}
}

func roundHoldsWrites(t *testing.T, async bool) {
	spec := checkpointSpec(t.TempDir(), 20_000, "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10 milliseconds') GROUP BY window_start, window_end, symbol")
	spec.State.CheckpointInterval.Duration = time.Hour // the rounds' alone
	round := &heldRound{changed: make(chan struct{})}
	sink := &collectSink{}
	opts := Options{Sink: sink, round: round}
	if async {
		as := &asyncSink{collectSink: sink}
		t.Cleanup(as.wg.Wait) // after the run stops
		opts.Sink = as
	}
	p, err := New(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	runUntilTestEnds(t, p)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s", what)
			}
		}
	}
	rows := func() int { return len(sink.Rows()) }
	wait("results", func() bool { return rows() > 0 })
	for n := int64(1); n <= 3; n++ {
		round.step(false)
		wait("the round's checkpoint", func() bool { return round.awaited.Load() == n })
		held := rows()
		time.Sleep(200 * time.Millisecond) // windows of 10 ms close meanwhile
		if got := rows(); got != held {
			t.Fatalf("round %d: %d rows written after the checkpoint, before the commit", n, got-held)
		}
		if st, _ := p.Checkpoints(); st.Completed != n-1 {
			t.Errorf("round %d: %d checkpoints completed before the commit; want %d", n, st.Completed, n-1)
		}
		round.step(true)
		wait("rows after the commit", func() bool { return rows() > held })
		if st, _ := p.Checkpoints(); st.Completed != n {
			t.Errorf("round %d: %d checkpoints completed after the commit; want %d", n, st.Completed, n)
		}
	}
}
