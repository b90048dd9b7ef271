package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/usermetric"
	"github.com/sluice-dev/sluice/runtime/value"
)

// setSpec makes spec a statement set of the queries, each written to a
// file of its name in dir.
func setSpec(spec *v1alpha1.StreamQuerySpec, dir string, queries map[string]string) *v1alpha1.StreamQuerySpec {
	spec.Query, spec.Sink = "", nil
	names := make([]string, 0, len(queries))
	for name := range queries {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		spec.Statements = append(spec.Statements, v1alpha1.Statement{
			Name: name, Query: queries[name], Sink: v1alpha1.Sink{File: &v1alpha1.FileSink{Path: filepath.Join(dir, name+".jsonl")}},
		})
	}
	return spec
}

// sortedLines reads a file's lines, sorted.
func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// TestStatementSet runs three statements over one generator, a filter, a
// window aggregation and a projection, and checks that each writes what
// it writes run alone, with the records read once and counted for each.
func TestStatementSet(t *testing.T) {
	const records, partitions = 20_000, 4
	queries := map[string]string{
		"big":    "SELECT symbol, price, quantity FROM trades WHERE quantity > 50",
		"counts": "SELECT window_start, symbol, count(*) AS n, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
		"all":    "SELECT * FROM trades",
	}
	for _, mode := range []v1alpha1.ExecutionMode{v1alpha1.Pipelined, v1alpha1.Direct} {
		t.Run(string(mode), func(t *testing.T) {
			alone, together := t.TempDir(), t.TempDir()
			base := datagenSpec("", records/partitions, partitions, 2, 4, 256)
			base.Runtime.Mode = mode
			set := setSpec(base.DeepCopy(), together, queries)
			observed := &stageRecords{}
			p, err := runPipeline(t, set, Options{Observer: observed})
			if err != nil {
				t.Fatal(err)
			}
			observedAlone := &stageRecords{}
			for _, one := range setSpec(base.DeepCopy(), alone, queries).StatementSpecs() {
				if _, err := runPipeline(t, one, Options{Observer: observedAlone}); err != nil {
					t.Fatal(err)
				}
			}
			for name := range queries {
				want, got := sortedLines(t, filepath.Join(alone, name+".jsonl")), sortedLines(t, filepath.Join(together, name+".jsonl"))
				if len(want) < 2 || !slices.Equal(got, want) {
					t.Errorf("statement %s wrote %d rows, alone %d; or they differ", name, len(got), len(want))
				}
			}
			s := p.Snapshot()
			c := s.Counts
			if c.In != records || c.InFlight != 0 || s.State != enginestatus.Finished {
				t.Errorf("set counts %+v, state %s; want %d records read, none in flight, finished", c, s.State, records)
			}
			if len(s.Statements) != 3 {
				t.Fatalf("statements %+v; want 3", s.Statements)
			}
			var out int64
			for _, st := range s.Statements {
				if st.Counts.In != records || st.Counts.InFlight != 0 || st.State != enginestatus.Finished {
					t.Errorf("statement %s: counts %+v, state %s; want every record taken and handled", st.Name, st.Counts, st.State)
				}
				checkIdentity(t, st.Counts)
				out += st.Counts.Out
			}
			checkGathered(t, p)
			// The read stage observes each batch once, as the set reads
			// it; each statement processes its own copy, as alone.
			if r, pr, alone := observed.records(StageRead), observed.records(StageProcess), observedAlone.records(StageProcess); r != records || pr != alone {
				t.Errorf("the read stage observed %d records, the process stage %d; want %d, and %d as the statements alone", r, pr, records, alone)
			}
			if c.Out != out || c.Aggregated == 0 || c.Filtered == 0 {
				t.Errorf("set counts %+v; want the statements' outcomes summed (out %d)", c, out)
			}
			for _, src := range s.Sources {
				if src.Committed != records/partitions-1 {
					t.Errorf("partition %d committed %d; want %d, its last", src.Partition, src.Committed, records/partitions-1)
				}
			}
			if mode == v1alpha1.Pipelined && !slices.ContainsFunc(s.Edges, func(e EdgeSnapshot) bool { return strings.HasPrefix(e.Name, "counts/") }) {
				t.Errorf("edges %v: want the statements' own, named by them", s.Edges)
			}
		})
	}
}

// TestStatementSetBadInput checks that a record that cannot be decoded is
// handed to the error policy once, not once per statement, and that its
// offset is committed with the rest; a record that fails in a statement's
// query is that statement's, which its dead letter names.
func TestStatementSetBadInput(t *testing.T) {
	content, bad := badInput()
	// The last line bad too: its batch's acknowledgement is the last.
	content += `{"symbol":` + "\n"
	bad[14] = "invalid JSON"
	path := writeFile(t, "bad.jsonl", content)
	// A batch of one record makes batches of decode failures alone, which
	// the second statement acknowledges without its pipeline.
	for _, batch := range []int32{1, 0} {
		t.Run(fmt.Sprint("batch", batch), func(t *testing.T) {
			dir := t.TempDir()
			spec := setSpec(fileSpec(path, v1alpha1.FormatJSON, "", v1alpha1.DeadLetter), dir, map[string]string{
				"a":     "SELECT symbol, price FROM trades",
				"b":     "SELECT symbol FROM trades WHERE quantity > 3",
				"casts": "SELECT CAST(symbol AS int) AS n FROM trades",
			})
			spec.Runtime.BatchSize = batch
			dlq := &memDeadLetter{}
			p, err := runPipeline(t, spec, Options{DeadLetter: dlq})
			if err != nil {
				t.Fatal(err)
			}
			byStatement := map[string]int{}
			for _, ev := range dlq.events {
				if (ev.Stage == "decode") != (ev.Statement == "") {
					t.Errorf("dead letter of stage %s names statement %q", ev.Stage, ev.Statement)
				}
				byStatement[ev.Statement]++
			}
			if want := map[string]int{"": len(bad), "casts": 7}; !maps.Equal(byStatement, want) {
				t.Errorf("dead letters by statement %v; want %v: the records that failed to decode once each, and each good one in casts", byStatement, want)
			}
			if a, b := sortedLines(t, filepath.Join(dir, "a.jsonl")), sortedLines(t, filepath.Join(dir, "b.jsonl")); len(a) != 7 || len(b) != 4 {
				t.Errorf("wrote %d and %d rows; want 7 and 4", len(a), len(b))
			}
			s := p.Snapshot()
			if c := s.Counts; c.In != 14 || c.DeadLettered != 14 || c.Out != 11 || c.Filtered != 3 || c.InFlight != 0 {
				t.Errorf("counts %+v; want 14 read, 14 dead-lettered, 11 written, 3 filtered", c)
			}
			if src := s.Sources; len(src) != 1 || src[0].Committed != 14 {
				t.Errorf("progress %+v; want line 14 committed", src)
			}
			for _, st := range s.Statements {
				checkIdentity(t, st.Counts)
			}
			checkGathered(t, p)
		})
	}
}

// TestStatementSetMetrics checks that a business metric counts the rows
// of the statement it names, over that statement's output columns.
func TestStatementSetMetrics(t *testing.T) {
	content, _ := badInput()
	spec := setSpec(fileSpec(writeFile(t, "bad.jsonl", content), v1alpha1.FormatJSON, "", v1alpha1.Skip), t.TempDir(), map[string]string{
		"all":   "SELECT symbol FROM trades",
		"large": "SELECT symbol, quantity AS q FROM trades WHERE quantity > 3",
	})
	spec.Metrics = []v1alpha1.UserMetric{
		{Name: "rows_total", Type: v1alpha1.Counter, Statement: "all"},
		{Name: "large_total", Type: v1alpha1.Counter, Value: "q", Statement: "large"},
	}
	p, err := runPipeline(t, spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, set := range p.Metrics() {
		for _, m := range set.Metrics() {
			m.Each(func(se *usermetric.Series) { got[m.Name] += se.Value })
		}
	}
	// 8 trades decode (the bad price of line 4 is read by neither), and
	// the quantities above 3 are 4, 5, 6 and 7.
	if want := map[string]float64{"sluice_user_rows_total": 8, "sluice_user_large_total": 22}; !maps.Equal(got, want) {
		t.Errorf("metrics %v; want %v", got, want)
	}
	if s := p.Snapshot(); len(s.Metrics) != 2 {
		t.Errorf("status metrics %+v; want both statements'", s.Metrics)
	}
}

// TestStatementSetFails checks that a statement that fails fails the set,
// saying which, and that the others stop.
func TestStatementSetFails(t *testing.T) {
	dir := t.TempDir()
	spec := setSpec(datagenSpec("", 0, 2, 2, 4, 64), dir, map[string]string{
		"fine":  "SELECT symbol FROM trades",
		"fails": "SELECT CAST(symbol AS int) AS n FROM trades",
	})
	spec.Sources[0].Datagen.Rate = 10_000
	p, err := New(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "statement fails: ") || ctx.Err() != nil {
		t.Fatalf("run: %v; want the failing statement named", err)
	}
	s := p.Snapshot()
	if s.State != enginestatus.Failed || !strings.Contains(s.LastError, "statement fails") {
		t.Errorf("state %s, last error %q; want failed, saying which statement", s.State, s.LastError)
	}
}

// TestStatementSetStop stops an endless statement set, in both modes,
// and checks that each statement drains what was read: nothing is left in
// flight, and the stop does not wait for the shutdown timeout.
func TestStatementSetStop(t *testing.T) {
	for _, mode := range []v1alpha1.ExecutionMode{v1alpha1.Pipelined, v1alpha1.Direct} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			spec := setSpec(datagenSpec("", 0, 3, 2, 4, 64), dir, map[string]string{
				"a": "SELECT symbol FROM trades",
				"b": "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end",
			})
			spec.Runtime.Mode = mode
			spec.Runtime.ShutdownTimeout = &metav1.Duration{Duration: 20 * time.Second}
			spec.Sources[0].Datagen.Rate = 20_000
			p, err := New(spec, Options{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Run(context.Background()) }()
			for p.Snapshot().Counts.In < 2_000 {
				time.Sleep(10 * time.Millisecond)
			}
			p.Stop()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the set did not stop")
			}
			s := p.Snapshot()
			if s.Counts.InFlight != 0 || s.State != enginestatus.Finished {
				t.Errorf("counts %+v, state %s; want nothing in flight after a stop", s.Counts, s.State)
			}
			for _, st := range s.Statements {
				if st.Counts.In != s.Counts.In {
					t.Errorf("statement %s took %d records of %d read", st.Name, st.Counts.In, s.Counts.In)
				}
			}
			if lines := sortedLines(t, filepath.Join(dir, "a.jsonl")); int64(len(lines)) != s.Counts.In {
				t.Errorf("statement a wrote %d rows of %d read", len(lines), s.Counts.In)
			}
		})
	}
}

// TestStatementSetSkipWaits checks that a batch of nothing but decode
// failures, which another statement handles, counts as handled for a
// statement only once it has handled the batches before it: its pipeline
// passes the empty batch on, in order.
func TestStatementSetSkipWaits(t *testing.T) {
	path := writeFile(t, "in.jsonl", "{\"symbol\":\"A\",\"price\":1,\"quantity\":1}\n{\"symbol\":\n{\"symbol\":\"B\",\"price\":1,\"quantity\":2}\n{\"symbol\":\n")
	spec := setSpec(fileSpec(path, v1alpha1.FormatJSON, "", v1alpha1.Skip), t.TempDir(), map[string]string{
		"a": "SELECT symbol FROM trades",
		"b": "SELECT symbol FROM trades",
	})
	spec.Runtime.BatchSize = 1 // a batch of each line: two of a decode failure alone
	release := make(chan struct{})
	fast, slow := &collectSink{}, &collectSink{delay: func() time.Duration { <-release; return 0 }}
	p, err := New(spec, Options{Sinks: map[string]connector.Sink{"a": fast, "b": slow}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for (len(fast.Rows()) < 2 || p.Snapshot().Counts.Skipped < 2) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s := p.Snapshot()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := s.Sources[0].Committed; c != -1 {
		t.Errorf("line %d committed while statement b had written nothing", c)
	}
	if c := p.Snapshot().Sources[0].Committed; c != 4 {
		t.Errorf("line %d committed at the end; want 4", c)
	}
}

// Readers of a stream and of a table that does not end, which the
// pipeline reads as it would a Kafka topic's (runtime/connector/kafka
// tests the real one): the table changes every millisecond after it
// loaded.
type (
	testStream struct {
		origin  *message.Origin
		n, next int // n < 0: without end
		pause   time.Duration
	}
	testTable struct {
		origin *message.Origin
		reads  atomic.Int64
		loaded bool
	}
)

func (r *testStream) Origin() *message.Origin { return r.origin }
func (*testStream) Close() error              { return nil }
func (r *testStream) Read(ctx context.Context, b *message.Batch, _ int, _ time.Duration, _ *message.ErrorBatch) error {
	if r.n >= 0 && r.next >= r.n {
		return io.EOF
	}
	select {
	case <-time.After(r.pause):
	case <-ctx.Done():
		return nil
	}
	row := b.Append(int64(r.next))
	row[0], row[1] = value.StringValue("A"), value.IntValue(1)
	b.LastOffset = int64(r.next)
	r.next++
	return nil
}

func (r *testTable) Origin() *message.Origin { return r.origin }
func (*testTable) Close() error              { return nil }
func (*testTable) Stop()                     {}
func (r *testTable) Read(ctx context.Context, b *message.Batch, _ int, _ time.Duration, _ *message.ErrorBatch) error {
	if r.loaded {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
	n := r.reads.Add(1)
	row := b.Append(n)
	row[0], row[1] = value.StringValue("A"), value.StringValue("name")
	b.LastOffset = n
	if !r.loaded {
		r.loaded = true
		return connector.ErrLoaded
	}
	return nil
}

// tableSetSpec is a statement set of each stream joined with the table
// symbols.
func tableSetSpec(mode v1alpha1.ExecutionMode, streams ...string) *v1alpha1.StreamQuerySpec {
	spec := &v1alpha1.StreamQuerySpec{Runtime: v1alpha1.RuntimeSpec{Mode: mode, ShutdownTimeout: &metav1.Duration{Duration: 20 * time.Second}}}
	for _, s := range streams {
		spec.Sources = append(spec.Sources, v1alpha1.Source{Name: s, File: &v1alpha1.FileSource{Path: "unused"},
			Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "quantity", Type: "int"}}})
		spec.Statements = append(spec.Statements, v1alpha1.Statement{Name: "of-" + s,
			Query: "SELECT t.symbol, s.name FROM " + s + " t JOIN symbols s ON t.symbol = s.symbol", Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}})
	}
	spec.Sources = append(spec.Sources, v1alpha1.Source{Name: "symbols", File: &v1alpha1.FileSource{Path: "unused"}, Table: &v1alpha1.TableSource{Key: []string{"symbol"}},
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "name", Type: "string"}}})
	return spec
}

// TestStatementSetTables checks statements joined with a table that does
// not end: each statement stops reading it when its own streams end (in
// direct mode, once it loaded), and the set reads it on for the others
// without waiting for the one that stopped.
func TestStatementSetTables(t *testing.T) {
	run := func(t *testing.T, spec *v1alpha1.StreamQuerySpec, readers ...connector.Reader) *Pipeline {
		p, err := New(spec, Options{Readers: readers})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Run(ctx); err != nil || ctx.Err() != nil {
			t.Fatalf("run: %v; want it to end with its streams", err)
		}
		return p
	}
	t.Run("direct", func(t *testing.T) {
		trades := &testStream{origin: &message.Origin{Source: "trades"}, n: 200, pause: 2 * time.Millisecond}
		p := run(t, tableSetSpec(v1alpha1.Direct, "trades"), trades, &testTable{origin: &message.Origin{Source: "symbols"}})
		if s := p.Snapshot(); s.Statements[0].Counts.Results != 200 {
			t.Errorf("statement %+v; want 200 trades joined", s.Statements[0])
		}
	})
	t.Run("one ends first", func(t *testing.T) {
		trades := &testStream{origin: &message.Origin{Source: "trades"}, n: 10, pause: time.Millisecond}
		orders := &testStream{origin: &message.Origin{Source: "orders"}, n: 1000, pause: time.Millisecond}
		table := &testTable{origin: &message.Origin{Source: "symbols"}}
		p := run(t, tableSetSpec(v1alpha1.Pipelined, "trades", "orders"), trades, orders, table)
		s := p.Snapshot()
		if s.Statements[0].Counts.Results != 10 || s.Statements[1].Counts.Results != 1000 {
			t.Errorf("statements %+v; want 10 trades and 1000 orders joined", s.Statements)
		}
		if table.reads.Load() < 500 {
			t.Errorf("the table was read %d times while the orders were; want it read on after the trades ended", table.reads.Load())
		}
	})
}

// TestStatementSetCommits checks that a partition's offsets are committed
// only as far as every statement has written: one statement's sink holds
// its first write while the other writes what the set's bounded edges let
// it, since the slowest statement paces the reading.
func TestStatementSetCommits(t *testing.T) {
	const records, partitions = 4_000, 2
	spec := setSpec(datagenSpec("", records/partitions, partitions, 2, 4, 64), t.TempDir(), map[string]string{
		"fast": "SELECT symbol FROM trades",
		"slow": "SELECT symbol FROM trades WHERE quantity > 10",
	})
	release := make(chan struct{})
	fast, slow := &collectSink{}, &collectSink{delay: func() time.Duration { <-release; return 0 }}
	p, err := New(spec, Options{Sinks: map[string]connector.Sink{"fast": fast, "slow": slow}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	// Until the fast statement has written all it can.
	written := -1
	deadline := time.Now().Add(60 * time.Second)
	for n := len(fast.Rows()); (n != written || n == 0) && time.Now().Before(deadline); n = len(fast.Rows()) {
		written = n
		time.Sleep(200 * time.Millisecond)
	}
	s := p.Snapshot()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(fast.Rows()) != records || written >= records {
		t.Fatalf("the fast statement wrote %d rows of %d, %d while the slow one wrote none; want the slow one to hold the reading back", len(fast.Rows()), records, written)
	}
	for _, src := range s.Sources {
		if src.Committed != -1 {
			t.Errorf("partition %d committed %d while a statement had written nothing; want nothing committed", src.Partition, src.Committed)
		}
	}
	if s.Counts.InFlight == 0 {
		t.Errorf("counts %+v: want the records the slow statement holds in flight", s.Counts)
	}
	for _, src := range p.Snapshot().Sources {
		if src.Committed != records/partitions-1 {
			t.Errorf("partition %d committed %d at the end; want %d", src.Partition, src.Committed, records/partitions-1)
		}
	}
}

// checkGathered checks that every statement of a set that ended
// acknowledged the last of every partition it read.
func checkGathered(t *testing.T, p *Pipeline) {
	t.Helper()
	for i, g := range p.gathers {
		if slices.Min(g.upTo) != slices.Max(g.upTo) {
			t.Errorf("reader %d: the statements acknowledged up to %v", i, g.upTo)
		}
	}
}

// TestAckGather checks that an origin hears of offsets once every
// statement reading it has acknowledged them, in parts or whole, of those
// that read it still, and nothing of an earlier generation's.
func TestAckGather(t *testing.T) {
	var passed []int64
	g := newAckGather(3, func(a message.Ack) { passed = append(passed, a.LastOffset) })
	ack := func(statement int, gen uint64, offset int64) {
		g.add(message.Ack{Statement: statement, Generation: gen, LastOffset: offset})
	}
	g.leave(2) // the third reads the origin no more
	ack(0, 0, 10)
	ack(0, 0, 20)
	ack(1, 0, 5) // a part of the first batch
	ack(1, 0, 10)
	ack(1, 0, 35)
	ack(0, 0, 35)
	ack(1, 1, 8) // the partition moved and came back: read again from 8
	ack(0, 0, 40)
	ack(0, 1, 9)
	if want := []int64{5, 10, 20, 35, 8}; !slices.Equal(passed, want) {
		t.Errorf("passed %v; want %v", passed, want)
	}
}

// TestStatementSetFailureCommitsNothing checks that when a statement
// fails, the records the others wrote are not committed for it: a
// single query acknowledges nothing after a failure, and neither does a
// statement of a set.
func TestStatementSetFailureCommitsNothing(t *testing.T) {
	spec := &v1alpha1.StreamQuerySpec{Sources: []v1alpha1.Source{{Name: "trades", File: &v1alpha1.FileSource{Path: "unused"},
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "quantity", Type: "int"}}}}}
	for _, name := range []string{"fine", "fails"} {
		spec.Statements = append(spec.Statements, v1alpha1.Statement{Name: name, Query: "SELECT symbol FROM trades", Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}})
	}
	spec.ErrorPolicy.MaxRetries = new(int32(0))
	fine := &collectSink{}
	// The failing sink's first write fails once the other has written.
	fails := &collectSink{delay: func() time.Duration {
		for len(fine.Rows()) < 50 {
			time.Sleep(time.Millisecond)
		}
		return 0
	}, fail: func(*message.Batch, int) bool { return true }}
	stream := &testStream{origin: &message.Origin{Source: "trades"}, n: -1, pause: time.Millisecond}
	p, err := New(spec, Options{Readers: []connector.Reader{stream}, Sinks: map[string]connector.Sink{"fine": fine, "fails": fails}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err == nil || !strings.Contains(err.Error(), "statement fails: ") {
		t.Fatalf("run: %v; want statement fails to fail it", err)
	}
	if c := p.Snapshot().Sources[0].Committed; c != -1 || len(fine.Rows()) < 50 {
		t.Errorf("committed %d after statement fine wrote %d rows and fails none; want nothing committed", c, len(fine.Rows()))
	}
}

// TestStatementSetDirectStop stops direct-mode sets: one with a partition
// of which nothing was read, which stays uncommitted, and one joined with
// a table it stopped reading once loaded; neither waits for the shutdown
// timeout.
func TestStatementSetDirectStop(t *testing.T) {
	stop := func(t *testing.T, spec *v1alpha1.StreamQuerySpec, readers ...connector.Reader) *Pipeline {
		spec.Runtime.Mode = v1alpha1.Direct
		spec.Runtime.ShutdownTimeout = &metav1.Duration{Duration: 20 * time.Second}
		p, err := New(spec, Options{Readers: readers})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		for p.Snapshot().Counts.In < 100 {
			time.Sleep(5 * time.Millisecond)
		}
		p.Stop()
		if err := <-done; err != nil {
			t.Fatalf("stop: %v", err)
		}
		return p
	}
	t.Run("a partition never read", func(t *testing.T) {
		spec := &v1alpha1.StreamQuerySpec{}
		for _, s := range []string{"trades", "orders"} {
			spec.Sources = append(spec.Sources, v1alpha1.Source{Name: s, File: &v1alpha1.FileSource{Path: "unused"},
				Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "quantity", Type: "int"}}})
			spec.Statements = append(spec.Statements, v1alpha1.Statement{Name: "of-" + s, Query: "SELECT symbol FROM " + s, Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}})
		}
		trades := &testStream{origin: &message.Origin{Source: "trades"}, n: -1, pause: time.Hour}
		orders := &testStream{origin: &message.Origin{Source: "orders"}, n: -1, pause: time.Millisecond}
		s := stop(t, spec, trades, orders).Snapshot()
		if s.Sources[0].Committed != -1 || s.Sources[1].Committed < 99 {
			t.Errorf("progress %+v; want nothing of trades committed, the orders read", s.Sources)
		}
	})
	t.Run("a table", func(t *testing.T) {
		trades := &testStream{origin: &message.Origin{Source: "trades"}, n: -1, pause: time.Millisecond}
		stop(t, tableSetSpec(v1alpha1.Direct, "trades"), trades, &testTable{origin: &message.Origin{Source: "symbols"}})
	})
}

// TestStatementSetCheckpoints kills a statement set with spec.state midway
// and starts it again, one statement's newest checkpoints lost, so that
// the statements restore checkpoints of different offsets: each restores
// its own and drops what it reads again that its state holds, so that its
// file, cut back to the checkpoint and written on, holds what the
// uninterrupted set writes. A stateless statement checkpoints nothing and
// reads everything again, so the set then reads from the start; without
// one, from the least of the statements' checkpoints.
func TestStatementSetCheckpoints(t *testing.T) {
	queries := map[string]string{
		"windows": "SELECT window_start, symbol, count(*) AS n, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
		"moving":  movingQuery5s,
	}
	for _, stateless := range []bool{true, false} {
		t.Run(fmt.Sprint("stateless ", stateless), func(t *testing.T) {
			qs := maps.Clone(queries)
			if stateless {
				qs["copy"] = "SELECT symbol, ts, quantity FROM trades"
			}
			spec := func(dir string, rate int64) *v1alpha1.StreamQuerySpec {
				s := setSpec(checkpointSpec("", rate), dir, qs)
				s.State = &v1alpha1.StateSpec{Dir: filepath.Join(dir, "state"), CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
				return s
			}
			want, got := t.TempDir(), t.TempDir()
			if _, err := runPipeline(t, spec(want, 0), Options{}); err != nil {
				t.Fatal(err)
			}
			// Killed midway, then run to the end.
			p, err := New(spec(got, 20_000), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			for p.Snapshot().Checkpoints == nil || p.Snapshot().Checkpoints.Completed < 8 {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			read := p.Snapshot().Counts.In
			files, err := os.ReadDir(filepath.Join(got, "state", "moving"))
			if err != nil || len(files) < 3 {
				t.Fatalf("checkpoints of moving %v (%v); want at least 3", files, err)
			}
			for _, f := range files[len(files)-2:] { // by name: by number
				if err := os.Remove(filepath.Join(got, "state", "moving", f.Name())); err != nil {
					t.Fatal(err)
				}
			}
			p, err = runPipeline(t, spec(got, 0), Options{})
			if err != nil {
				t.Fatal(err)
			}
			s := p.Snapshot()
			for name := range qs {
				if w, g := sortedLines(t, filepath.Join(want, name+".jsonl")), sortedLines(t, filepath.Join(got, name+".jsonl")); !slices.Equal(w, g) {
					t.Errorf("statement %s wrote %d rows across the restart, %d uninterrupted; or they differ", name, len(g), len(w))
				}
			}
			var restored int64
			for _, st := range s.Statements {
				restored += st.Counts.Restored
			}
			switch {
			case restored == 0:
				t.Errorf("statements %+v: want the records read again that their states held dropped", s.Statements)
			case stateless && s.Counts.In != 40_000:
				t.Errorf("read %d records after the restart; want all 40000 again, for the stateless statement", s.Counts.In)
			case !stateless && s.Counts.In+read < 40_000+1 || !stateless && s.Counts.In >= 40_000:
				t.Errorf("read %d records, then %d after the restart; want the second run to start after the first's checkpoints", read, s.Counts.In)
			}
			if c := s.Checkpoints; c == nil || c.RestoredID == 0 {
				t.Errorf("checkpoints %+v; want the restored one shown", c)
			}
			for _, src := range s.Sources {
				if src.Committed != 19_999 {
					t.Errorf("partition %d committed %d at the end; want 19999, by each statement's last checkpoint", src.Partition, src.Committed)
				}
			}
		})
	}
}

// stageRecords is an Observer that counts the records each stage observed.
type stageRecords struct {
	mu sync.Mutex
	n  map[Stage]int
}

func (o *stageRecords) ObserveBatch(stage Stage, _ time.Duration, records int, _ message.TraceContext) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[Stage]int{}
	}
	o.n[stage] += records
}

func (o *stageRecords) records(stage Stage) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[stage]
}
