package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// collectSink records every row written, as text, with the batch origin.
type collectSink struct {
	mu    sync.Mutex
	rows  []string
	parts []int32
	// delay, if set, is slept before each write: a slow sink.
	delay func() time.Duration
	// fail, if set, decides whether a write attempt fails.
	fail    func(b *message.Batch, attempt int) bool
	tries   map[uint64]int
	flushed atomic.Bool
	closed  atomic.Bool
	// largest is the most rows a batch written held.
	largest int
}

func (s *collectSink) Write(ctx context.Context, b *message.Batch) error {
	if s.delay != nil {
		time.Sleep(s.delay())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if s.tries == nil {
			s.tries = map[uint64]int{}
		}
		s.tries[b.ID]++
		if s.fail(b, s.tries[b.ID]) {
			return errors.New("injected sink failure")
		}
	}
	s.largest = max(s.largest, b.Len())
	for _, r := range b.Rows {
		parts := make([]string, len(r))
		for i, v := range r {
			parts[i] = v.String()
		}
		s.rows = append(s.rows, strings.Join(parts, ","))
		part := int32(-1) // results of a stateful stage have no origin
		if b.Origin != nil {
			part = b.Origin.Partition
		}
		s.parts = append(s.parts, part)
	}
	return nil
}

func (s *collectSink) Flush(context.Context) error { s.flushed.Store(true); return nil }
func (s *collectSink) Close() error                { s.closed.Store(true); return nil }

func (s *collectSink) Rows() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rows)
}

// memDeadLetter keeps dead-letter events in memory.
type memDeadLetter struct {
	mu     sync.Mutex
	events []message.ErrorEvent
}

func (d *memDeadLetter) Write(_ context.Context, events []message.ErrorEvent) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, events...)
	return nil
}

func (d *memDeadLetter) Close() error { return nil }

func datagenSpec(query string, count int64, partitions, parallelism, capacity, batch int) *v1alpha1.StreamQuerySpec {
	return bench.Spec(bench.Config{
		Query: query, Records: count * int64(partitions), Partitions: partitions, Parallelism: parallelism,
		ChannelCapacity: capacity, BatchSize: batch, Linger: time.Millisecond,
	})
}

// runPipeline runs spec to completion with a collecting sink, failing the test
// instead of hanging if it does not finish.
func runPipeline(t *testing.T, spec *v1alpha1.StreamQuerySpec, opts Options) (*Pipeline, error) {
	t.Helper()
	p, err := New(spec, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("the pipeline did not finish in time (deadlock?): %v", err)
	}
	return p, err
}

// runUntilTestEnds runs p until the test ends, then cancels it and waits
// for the run to return.
func runUntilTestEnds(t *testing.T, p *Pipeline) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// checkIdentity asserts that every record read is accounted for.
func checkIdentity(t *testing.T, c enginestatus.Records) {
	t.Helper()
	if c.InFlight != 0 {
		t.Errorf("counts %+v: in = %d, but out+filtered+dead-lettered+skipped+failed = %d", c, c.In, c.In-c.InFlight)
	}
}

// generated returns what the trades generator produces for partition p.
func generated(t *testing.T, spec *v1alpha1.DatagenSource, p int32) []value.Row {
	t.Helper()
	d, err := connector.NewDatagen("trades", spec, p, schemas.Trades)
	if err != nil {
		t.Fatal(err)
	}
	var pool message.Pool
	var rows []value.Row
	for {
		b := pool.Get(len(schemas.Trades))
		err := d.Read(context.Background(), b, 1000, 0, &message.ErrorBatch{})
		for _, r := range b.Rows {
			rows = append(rows, slices.Clone(r))
		}
		if err == io.EOF {
			return rows
		}
	}
}

// TestSimpleSelectBaseline is the test the lock-based engine failed: 10,000
// records through a filter and projection, at every channel capacity and
// parallelism, with every expected row arriving and nothing hanging.
func TestSimpleSelectBaseline(t *testing.T) {
	const query = "SELECT trade_id, symbol, quantity * 2 AS double_qty FROM trades WHERE quantity > 500"
	for _, capacity := range []int{1, 2, 200} {
		for _, parallelism := range []int{1, 4} {
			t.Run(fmt.Sprintf("capacity=%d/parallelism=%d", capacity, parallelism), func(t *testing.T) {
				spec := datagenSpec(query, 2500, 4, parallelism, capacity, 64)
				// The expected rows, computed directly from the generator.
				var want []string
				for p := range int32(4) {
					for _, r := range generated(t, spec.Sources[0].Datagen, p) {
						if r[3].Int() > 500 {
							want = append(want, fmt.Sprintf("%d,%s,%d", r[0].Int(), r[1].Str(), r[3].Int()*2))
						}
					}
				}
				sink := &collectSink{}
				p, err := runPipeline(t, spec, Options{Sink: sink})
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				got := sink.Rows()
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("got %d rows, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
				}
				c := p.Snapshot().Counts
				if c.In != 10000 || c.Out != int64(len(want)) || c.Filtered != 10000-int64(len(want)) {
					t.Errorf("counts %+v; want in 10000, out %d, filtered %d", c, len(want), 10000-len(want))
				}
				checkIdentity(t, c)
				for _, src := range p.Snapshot().Sources {
					if src.Committed != 2499 {
						t.Errorf("partition %d committed up to %d; want 2499, its last sequence number", src.Partition, src.Committed)
					}
				}
				if !sink.closed.Load() {
					t.Error("the sink was not closed")
				}
			})
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestOrderWithinPartition checks that each partition's rows reach the sink in
// the order they were read, with many partitions over 8 workers.
func TestOrderWithinPartition(t *testing.T) {
	spec := datagenSpec("SELECT trade_id FROM trades WHERE quantity % 3 <> 0", 3000, 16, 8, 2, 16)
	sink := &collectSink{delay: func() time.Duration { return time.Duration(rand.IntN(50)) * time.Microsecond }}
	p, err := runPipeline(t, spec, Options{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	last := map[int32]int64{}
	seen := map[int32]int{}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for i, r := range sink.rows {
		var id int64
		fmt.Sscan(r, &id)
		part := sink.parts[i]
		if int32(id%16) != part {
			t.Fatalf("row %d: trade %d came through partition %d", i, id, part)
		}
		if prev, ok := last[part]; ok && id <= prev {
			t.Fatalf("partition %d: trade %d written after trade %d", part, id, prev)
		}
		last[part] = id
		seen[part]++
	}
	if len(seen) != 16 {
		t.Errorf("rows came from %d partitions, want 16", len(seen))
	}
	checkIdentity(t, p.Snapshot().Counts)
}

// TestStress pushes thousands of tiny batches from many partitions through
// capacity-1 channels to a sink with random delays.
func TestStress(t *testing.T) {
	spec := datagenSpec("SELECT trade_id, price FROM trades WHERE symbol <> 'AAPL'", 2000, 24, 6, 1, 3)
	var writes atomic.Int64
	sink := &collectSink{delay: func() time.Duration {
		writes.Add(1)
		if rand.IntN(4) == 0 {
			return time.Duration(rand.IntN(100)) * time.Microsecond
		}
		return 0
	}}
	p, err := runPipeline(t, spec, Options{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	if s.Counts.In != 48000 {
		t.Errorf("in = %d, want 48000", s.Counts.In)
	}
	if s.Batches < 16000 {
		t.Errorf("batches = %d, want at least 16000", s.Batches)
	}
	if got := int64(len(sink.Rows())); got != s.Counts.Out {
		t.Errorf("sink has %d rows, out counter says %d", got, s.Counts.Out)
	}
	checkIdentity(t, s.Counts)
}

// TestDirectModeIsDeterministic runs the same query twice in direct mode and
// once pipelined: the direct runs agree row for row, and all three agree as sets.
func TestDirectModeIsDeterministic(t *testing.T) {
	run := func(mode v1alpha1.ExecutionMode) []string {
		spec := datagenSpec("SELECT trade_id, symbol, price FROM trades WHERE price > 100", 700, 3, 2, 2, 50)
		spec.Runtime.Mode = mode
		sink := &collectSink{}
		p, err := runPipeline(t, spec, Options{Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		checkIdentity(t, p.Snapshot().Counts)
		return sink.Rows()
	}
	a, b := run(v1alpha1.Direct), run(v1alpha1.Direct)
	if !slices.Equal(a, b) {
		t.Fatalf("two direct runs differ: first difference at row %d", firstDiff(a, b))
	}
	c := run(v1alpha1.Pipelined)
	slices.Sort(a)
	slices.Sort(c)
	if !slices.Equal(a, c) {
		t.Errorf("direct and pipelined runs differ as sets: %d vs %d rows", len(a), len(c))
	}
}

// TestStopDrains stops an unbounded source mid-run: Run returns nil and every
// record read is written or filtered.
func TestStopDrains(t *testing.T) {
	spec := datagenSpec("SELECT trade_id FROM trades WHERE quantity > 100", 0, 4, 2, 4, 100)
	sink := &collectSink{delay: func() time.Duration { return 100 * time.Microsecond }}
	p, err := New(spec, Options{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	for p.Snapshot().Counts.Out < 5000 {
		time.Sleep(time.Millisecond)
	}
	p.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Stop = %v; want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
	s := p.Snapshot()
	if s.State != enginestatus.Finished {
		t.Errorf("state = %v, want Finished", s.State)
	}
	if got := int64(len(sink.Rows())); got != s.Counts.Out {
		t.Errorf("sink has %d rows, out = %d", got, s.Counts.Out)
	}
	checkIdentity(t, s.Counts)
}

// TestBackpressure slows the sink to a fixed rate and checks that the sources
// slow to match: what has been read but not written never exceeds what the
// bounded channels can hold, and the heap stays bounded.
func TestBackpressure(t *testing.T) {
	const capacity, batch, parallelism, partitions = 4, 100, 2, 2
	spec := datagenSpec("SELECT trade_id, symbol, price FROM trades", 0, partitions, parallelism, capacity, batch)
	sink := &collectSink{delay: func() time.Duration { return 2 * time.Millisecond }} // ≤ 50,000 records/s
	p, err := New(spec, Options{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	// Each edge holds at most capacity batches, and each stage holds at most
	// one batch in hand: readers, workers, the sink. One batch more covers the
	// sink finishing a write and a reader reading one between the snapshot's
	// reads of the two counters.
	edges := parallelism + 1
	stages := partitions + parallelism + 1
	bound := int64((edges*capacity + stages + 1) * batch)
	var maxInFlight int64
	var peakHeap uint64
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		c := p.Snapshot().Counts
		maxInFlight = max(maxInFlight, c.In-c.Out)
		if c.In-c.Out > bound {
			t.Fatalf("read %d, written %d: %d in flight, more than the channels can hold (%d)", c.In, c.Out, c.In-c.Out, bound)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peakHeap = max(peakHeap, m.HeapInuse)
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	checkIdentity(t, s.Counts)
	if s.Counts.Out == 0 {
		t.Fatal("nothing was written")
	}
	var blocked int64
	for _, e := range s.Edges {
		blocked += e.BlockedSends
	}
	if blocked == 0 {
		t.Error("no send ever blocked, yet the sink was the bottleneck")
	}
	growth := int64(peakHeap) - int64(before.HeapInuse)
	t.Logf("read %d, wrote %d, max in flight %d (bound %d), heap growth %d KiB, blocked sends %d",
		s.Counts.In, s.Counts.Out, maxInFlight, bound, growth/1024, blocked)
	if growth > 64<<20 {
		t.Errorf("heap grew by %d MiB under backpressure; want it bounded", growth>>20)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSpec(path string, format v1alpha1.Format, query string, strategy v1alpha1.ErrorStrategy) *v1alpha1.StreamQuerySpec {
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name: "trades", File: &v1alpha1.FileSource{Path: path}, Format: format,
			Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "price", Type: "decimal(18,4)"}, {Name: "quantity", Type: "int"}},
		}},
		Query:       query,
		Sink:        &v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: strategy},
	}
	if strategy == v1alpha1.DeadLetter {
		spec.ErrorPolicy.DeadLetter = &v1alpha1.Sink{Null: &v1alpha1.NullSink{}}
	}
	return spec
}

// badInput has one good record on each odd line and a bad one on each even line.
func badInput() (string, map[int64]string) {
	long := `{"symbol":"` + strings.Repeat("x", 10<<20) + `","price":1,"quantity":1}`
	lines := []string{
		`{"symbol":"AAPL","price":1.5,"quantity":1}`,
		`{"symbol":"AAPL","price":1.5,"quantity":`, // truncated
		`{"symbol":"MSFT","price":2,"quantity":2}`,
		`{"symbol":"MSFT","price":"two","quantity":2}`, // wrong type
		`{"symbol":"GOOG","price":3,"quantity":3}`,
		``, // empty line
		`{"symbol":"NVDA","price":4,"quantity":4}`,
		"\x00\xff\xfe garbage \x01\x02",
		`{"symbol":"AMZN","price":5,"quantity":5}`,
		long,
		`{"symbol":"META","price":6,"quantity":6}`,
		`{"symbol":true,"price":6,"quantity":6}`,
		`{"symbol":"TSLA","price":7,"quantity":7}`,
	}
	want := map[int64]string{
		2:  "invalid JSON",
		4:  "invalid decimal",
		6:  "empty record",
		8:  "invalid JSON",
		10: "more than maxRecordBytes",
		12: "want string, got a JSON bool",
	}
	return strings.Join(lines, "\n") + "\n", want
}

// TestBadInput feeds every kind of bad line and checks each policy's handling,
// with the line numbers of the bad records.
func TestBadInput(t *testing.T) {
	content, bad := badInput()
	path := writeFile(t, "bad.jsonl", content)
	const query = "SELECT symbol, price FROM trades"

	t.Run("DeadLetter", func(t *testing.T) {
		dlq := &memDeadLetter{}
		sink := &collectSink{}
		p, err := runPipeline(t, fileSpec(path, v1alpha1.FormatJSON, query, v1alpha1.DeadLetter), Options{Sink: sink, DeadLetter: dlq})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(sink.Rows()); got != 7 {
			t.Errorf("wrote %d rows, want the 7 good ones", got)
		}
		if len(dlq.events) != len(bad) {
			t.Fatalf("dead-lettered %d records, want %d", len(dlq.events), len(bad))
		}
		for _, ev := range dlq.events {
			want, ok := bad[ev.Source.Offset]
			if !ok {
				t.Errorf("line %d was dead-lettered but is good: %s", ev.Source.Offset, ev.Error)
				continue
			}
			if !strings.Contains(ev.Error, want) || !strings.Contains(ev.Error, fmt.Sprintf("line %d", ev.Source.Offset)) {
				t.Errorf("line %d: error %q; want it to name the line and contain %q", ev.Source.Offset, ev.Error, want)
			}
			if ev.Stage != "decode" || ev.CorrelationID == "" || ev.Source.File != path {
				t.Errorf("line %d: event %+v lacks its stage, correlation id or file", ev.Source.Offset, ev)
			}
			if len(ev.Payload) > 64<<10 {
				t.Errorf("line %d: payload of %d bytes kept; want it bounded", ev.Source.Offset, len(ev.Payload))
			}
		}
		c := p.Snapshot().Counts
		if c.In != 13 || c.DeadLettered != 6 || c.Out != 7 {
			t.Errorf("counts %+v; want 13 in, 7 out, 6 dead-lettered", c)
		}
		if src := p.Snapshot().Sources; len(src) != 1 || src[0].Committed != 13 {
			t.Errorf("progress %+v; want line 13 committed", src)
		}
		checkIdentity(t, c)
	})
	t.Run("Skip", func(t *testing.T) {
		p, err := runPipeline(t, fileSpec(path, v1alpha1.FormatJSON, query, v1alpha1.Skip), Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := p.Snapshot().Counts
		if c.Skipped != 6 || c.Out != 7 {
			t.Errorf("counts %+v; want 7 out, 6 skipped", c)
		}
		checkIdentity(t, c)
	})
	t.Run("FailFast", func(t *testing.T) {
		p, err := runPipeline(t, fileSpec(path, v1alpha1.FormatJSON, query, v1alpha1.FailFast), Options{})
		var re *RecordError
		if !errors.As(err, &re) {
			t.Fatalf("Run = %v; want a RecordError", err)
		}
		if re.Event.Source.Offset != 2 || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("Run = %v; want the failure at line 2", err)
		}
		if s := p.Snapshot(); s.State != enginestatus.Failed || s.LastError != err.Error() {
			t.Errorf("state %v, last error %q; want Failed with the error that stopped it, %q", s.State, s.LastError, err)
		}
		checkIdentity(t, p.Snapshot().Counts)
	})
}

// TestBadCSV covers truncated and malformed CSV rows.
func TestBadCSV(t *testing.T) {
	path := writeFile(t, "bad.csv", "symbol,price,quantity\nAAPL,1.5,1\nMSFT,2\nGOOG,3,3,extra\n\"NVDA,4,4\nAMZN,5,5\n")
	dlq := &memDeadLetter{}
	sink := &collectSink{}
	p, err := runPipeline(t, fileSpec(path, v1alpha1.FormatCSV, "SELECT symbol, quantity FROM trades", v1alpha1.DeadLetter), Options{Sink: sink, DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sink.Rows(), []string{"AAPL,1", "AMZN,5"}; !slices.Equal(got, want) {
		t.Errorf("rows = %q; want %q", got, want)
	}
	var lines []int64
	for _, ev := range dlq.events {
		lines = append(lines, ev.Source.Offset)
	}
	if want := []int64{3, 4, 5}; !slices.Equal(lines, want) {
		t.Errorf("dead-lettered lines %v; want %v", lines, want)
	}
	checkIdentity(t, p.Snapshot().Counts)
}

// TestEvaluationErrors: a CAST that fails for some rows is a per-row error
// under the policy, with the input record as payload.
func TestEvaluationErrors(t *testing.T) {
	path := writeFile(t, "in.jsonl", `{"symbol":"1","price":1,"quantity":1}
{"symbol":"x","price":1,"quantity":1}
{"symbol":"3","price":1,"quantity":0}
`)
	dlq := &memDeadLetter{}
	sink := &collectSink{}
	spec := fileSpec(path, v1alpha1.FormatJSON, "SELECT CAST(symbol AS int) / quantity AS n FROM trades WHERE quantity >= 0", v1alpha1.DeadLetter)
	p, err := runPipeline(t, spec, Options{Sink: sink, DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.Rows(); !slices.Equal(got, []string{"1"}) {
		t.Errorf("rows = %q; want [1]", got)
	}
	if len(dlq.events) != 2 {
		t.Fatalf("dead letters: %+v; want 2", dlq.events)
	}
	if ev := dlq.events[0]; ev.Source.Offset != 2 || ev.Stage != "project" || !strings.Contains(ev.Error, "invalid int") || !bytes.Contains(ev.Payload, []byte(`"symbol":"x"`)) {
		t.Errorf("first dead letter %+v; want line 2, stage project, the CAST error and the input as payload", ev)
	}
	if ev := dlq.events[1]; ev.Source.Offset != 3 || !strings.Contains(ev.Error, "division by zero") {
		t.Errorf("second dead letter %+v; want line 3 and division by zero", ev)
	}
	checkIdentity(t, p.Snapshot().Counts)
}

// TestFailingSink: a sink that fails some writes. Transient failures are
// retried; permanent ones go to the policy.
func TestFailingSink(t *testing.T) {
	const query = "SELECT trade_id FROM trades"
	permanent := func(b *message.Batch, attempt int) bool { return b.ID%5 == 0 }
	transient := func(b *message.Batch, attempt int) bool { return attempt == 1 }
	retrySpec := func(strategy v1alpha1.ErrorStrategy) *v1alpha1.StreamQuerySpec {
		spec := datagenSpec(query, 1000, 2, 2, 2, 10)
		spec.ErrorPolicy = v1alpha1.ErrorPolicy{
			Strategy: strategy, MaxRetries: ptr(int32(2)), RetryBackoff: &metav1.Duration{Duration: time.Millisecond},
		}
		return spec
	}

	t.Run("TransientIsRetried", func(t *testing.T) {
		sink := &collectSink{fail: transient}
		p, err := runPipeline(t, retrySpec(v1alpha1.FailFast), Options{Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		s := p.Snapshot()
		if s.Counts.Out != 2000 || s.Counts.Retries != s.Batches {
			t.Errorf("out %d, retries %d, batches %d; want all 2000 out after one retry per batch", s.Counts.Out, s.Counts.Retries, s.Batches)
		}
	})
	t.Run("Skip", func(t *testing.T) {
		sink := &collectSink{fail: permanent}
		p, err := runPipeline(t, retrySpec(v1alpha1.Skip), Options{Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		c := p.Snapshot().Counts
		if c.Skipped == 0 || c.Out == 0 || int64(len(sink.Rows())) != c.Out {
			t.Errorf("counts %+v, sink rows %d; want some skipped and the rest written", c, len(sink.Rows()))
		}
		checkIdentity(t, c)
	})
	t.Run("DeadLetter", func(t *testing.T) {
		sink := &collectSink{fail: permanent}
		dlq := &memDeadLetter{}
		spec := retrySpec(v1alpha1.DeadLetter)
		spec.ErrorPolicy.DeadLetter = &v1alpha1.Sink{Null: &v1alpha1.NullSink{}}
		p, err := runPipeline(t, spec, Options{Sink: sink, DeadLetter: dlq})
		if err != nil {
			t.Fatal(err)
		}
		c := p.Snapshot().Counts
		if c.DeadLettered == 0 || int64(len(dlq.events)) != c.DeadLettered {
			t.Fatalf("counts %+v, %d dead letters; want them equal and non-zero", c, len(dlq.events))
		}
		written := map[string]bool{}
		for _, r := range sink.Rows() {
			written[r] = true
		}
		for _, ev := range dlq.events {
			if ev.Stage != "sink" || ev.CorrelationID == "" || !strings.Contains(ev.Error, "after 3 attempts") {
				t.Errorf("dead letter %+v; want stage sink, a correlation id and the attempts", ev)
			}
			id := strings.TrimSuffix(strings.TrimPrefix(string(ev.Payload), `{"trade_id":`), "}")
			if written[id] {
				t.Errorf("trade %s was both written and dead-lettered", id)
			}
		}
		if c.Out+c.DeadLettered != 2000 {
			t.Errorf("out %d + dead-lettered %d; want 2000", c.Out, c.DeadLettered)
		}
		checkIdentity(t, c)
	})
	t.Run("FailFast", func(t *testing.T) {
		sink := &collectSink{fail: permanent}
		p, err := runPipeline(t, retrySpec(v1alpha1.FailFast), Options{Sink: sink})
		if err == nil || !strings.Contains(err.Error(), "injected sink failure") || !strings.Contains(err.Error(), "stage sink") {
			t.Fatalf("Run = %v; want the sink failure", err)
		}
		checkIdentity(t, p.Snapshot().Counts)
	})
}

func ptr[T any](v T) *T { return &v }

// asyncSink completes each write on its own goroutine after a random delay,
// so writes finish out of order, as a Kafka producer's may across partitions.
type asyncSink struct {
	*collectSink
	wg sync.WaitGroup
}

func (s *asyncSink) WriteAsync(ctx context.Context, b *message.Batch, done func(error)) {
	s.wg.Go(func() {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		done(s.collectSink.Write(ctx, b))
	})
}

// TestAsyncSinkAcksInOrder runs writes that complete out of order, some
// failing on their first attempt: every record is written and every origin
// sees its batches acknowledged in sequence, with no gap.
func TestAsyncSinkAcksInOrder(t *testing.T) {
	const partitions, count = 4, 2000
	spec := datagenSpec("SELECT trade_id FROM trades", count, partitions, 2, 4, 16)
	spec.ErrorPolicy = v1alpha1.ErrorPolicy{Strategy: v1alpha1.FailFast, MaxRetries: ptr(int32(2)), RetryBackoff: &metav1.Duration{Duration: time.Millisecond}}
	var mu sync.Mutex
	next := map[int32]uint64{}
	var outOfOrder []string
	readers := make([]connector.Reader, partitions)
	for i := range readers {
		d, err := connector.NewDatagen("trades", spec.Sources[0].Datagen, int32(i), schemas.Trades)
		if err != nil {
			t.Fatal(err)
		}
		part := int32(i)
		d.Origin().Acked = func(a message.Ack) {
			seq := a.Seq
			mu.Lock()
			defer mu.Unlock()
			if seq != next[part] {
				outOfOrder = append(outOfOrder, fmt.Sprintf("partition %d: batch %d acknowledged, want %d", part, seq, next[part]))
			}
			next[part] = seq + 1
		}
		readers[i] = d
	}
	sink := &asyncSink{collectSink: &collectSink{fail: func(b *message.Batch, attempt int) bool { return b.ID%7 == 0 && attempt == 1 }}}
	p, err := runPipeline(t, spec, Options{Sink: sink, Readers: readers})
	sink.wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(outOfOrder) > 0 {
		t.Fatalf("%d acknowledgements out of order, first: %s", len(outOfOrder), outOfOrder[0])
	}
	s := p.Snapshot()
	if s.Counts.Out != partitions*count || len(sink.Rows()) != partitions*count || s.Counts.Retries == 0 {
		t.Errorf("out %d, sink rows %d, retries %d; want %d written after some retries", s.Counts.Out, len(sink.Rows()), s.Counts.Retries, partitions*count)
	}
	for part, n := range next {
		if want := uint64(count / 16); n < want {
			t.Errorf("partition %d: %d batches acknowledged, want at least %d", part, n, want)
		}
	}
	checkIdentity(t, s.Counts)
}

// holdSink is an asyncSink that watches the write hold. Batch failID's
// first write fails, and it reports that at once, as the Kafka sink does
// (connector.FailureReporter), so no write may start after it until the
// retry succeeded. It counts writes started while failing, and writes in
// flight together once the failure is settled.
type holdSink struct {
	*collectSink
	failID          uint64
	onFailure       func()
	wg              sync.WaitGroup
	inFlight        atomic.Int32
	failing         atomic.Bool // failID failed and its retry has not succeeded
	recovered       atomic.Bool
	startedFailing  atomic.Int32 // writes started while failing: the hold let them
	overlapsAfter   atomic.Int32 // writes started after recovery while another was in flight
	retriesCanceled atomic.Int32 // retries called with the run's context ended
	retries         atomic.Int32 // calls of Write
}

func (s *holdSink) OnFailure(f func()) { s.onFailure = f }

func (s *holdSink) WriteAsync(ctx context.Context, b *message.Batch, done func(error)) {
	if s.failing.Load() {
		s.startedFailing.Add(1)
	}
	if b.ID == s.failID {
		s.onFailure()
		s.failing.Store(true)
	}
	if s.inFlight.Add(1) > 1 && s.recovered.Load() {
		s.overlapsAfter.Add(1)
	}
	s.wg.Go(func() {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		err := s.collectSink.Write(ctx, b)
		s.inFlight.Add(-1)
		done(err)
	})
}

// Write is a retry.
func (s *holdSink) Write(ctx context.Context, b *message.Batch) error {
	s.retries.Add(1)
	if ctx.Err() != nil {
		s.retriesCanceled.Add(1)
	}
	err := s.collectSink.Write(ctx, b)
	if err == nil && b.ID == s.failID {
		s.failing.Store(false)
		s.recovered.Store(true)
	}
	return err
}

// TestAsyncSinkHold: after a failed write, no write starts until the failure
// is retried, so that a retried row lands before later rows of its key; then
// writes run several at a time again. Under FailFast, nothing is retried
// once the run has failed.
func TestAsyncSinkHold(t *testing.T) {
	const partitions, count = 4, 2000
	t.Run("Retry", func(t *testing.T) {
		spec := datagenSpec("SELECT trade_id FROM trades", count, partitions, 2, 4, 16)
		spec.ErrorPolicy = v1alpha1.ErrorPolicy{Strategy: v1alpha1.FailFast, MaxRetries: ptr(int32(2)), RetryBackoff: &metav1.Duration{Duration: time.Millisecond}}
		sink := &holdSink{failID: 20, collectSink: &collectSink{fail: func(b *message.Batch, attempt int) bool { return b.ID == 20 && attempt == 1 }}}
		p, err := runPipeline(t, spec, Options{Sink: sink})
		sink.wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if n := sink.startedFailing.Load(); n != 0 {
			t.Errorf("%d writes started while a failed write was unsettled; want 0", n)
		}
		if !sink.recovered.Load() || sink.overlapsAfter.Load() == 0 || sink.retries.Load() != 1 {
			t.Errorf("recovered %v, %d overlapping writes after, %d synchronous writes; want writes in flight together again, one retry and no other write held back",
				sink.recovered.Load(), sink.overlapsAfter.Load(), sink.retries.Load())
		}
		if c := p.Snapshot().Counts; c.Out != partitions*count {
			t.Errorf("out %d; want %d", c.Out, partitions*count)
		}
	})
	t.Run("FailFast", func(t *testing.T) {
		spec := datagenSpec("SELECT trade_id FROM trades", count, partitions, 2, 4, 16)
		spec.ErrorPolicy = v1alpha1.ErrorPolicy{Strategy: v1alpha1.FailFast, MaxRetries: ptr(int32(1)), RetryBackoff: &metav1.Duration{Duration: time.Millisecond}}
		sink := &holdSink{failID: 20, collectSink: &collectSink{fail: func(b *message.Batch, attempt int) bool { return b.ID == 20 || attempt == 1 && b.ID > 20 }}}
		p, err := runPipeline(t, spec, Options{Sink: sink})
		sink.wg.Wait()
		if err == nil {
			t.Fatal("Run succeeded; want the injected failure")
		}
		if n := sink.retriesCanceled.Load(); n != 0 {
			t.Errorf("%d retries after the run failed; want 0", n)
		}
		checkIdentity(t, p.Snapshot().Counts)
	})
}

// TestUnreadColumns: a source decodes only the columns the query reads, so
// a bad value in a column no one reads fails nothing, and a row that fails
// is dead-lettered with the columns read, not NULLs for the others.
func TestUnreadColumns(t *testing.T) {
	path := writeFile(t, "trades.jsonl", strings.Join([]string{
		`{"symbol":"AAPL","price":1.5,"quantity":2}`,
		`{"symbol":"MSFT","price":"not a number","quantity":4}`,
		`{"symbol":"NVDA","price":3,"quantity":0}`,
	}, "\n")+"\n")
	dlq := &memDeadLetter{}
	sink := &collectSink{}
	p, err := runPipeline(t, fileSpec(path, v1alpha1.FormatJSON, "SELECT symbol, 8 / quantity AS q FROM trades", v1alpha1.DeadLetter), Options{Sink: sink, DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sink.Rows(), []string{"AAPL,4", "MSFT,2"}; !slices.Equal(got, want) {
		t.Errorf("rows %q; want %q, the unread price not decoded", got, want)
	}
	if len(dlq.events) != 1 || string(dlq.events[0].Payload) != `{"symbol":"NVDA","quantity":0}` {
		t.Errorf("dead letters %+v; want the one of NVDA, with the columns read", dlq.events)
	}
	// Read, the bad price fails its record.
	dlq = &memDeadLetter{}
	if _, err := runPipeline(t, fileSpec(path, v1alpha1.FormatJSON, "SELECT symbol, price FROM trades", v1alpha1.DeadLetter), Options{Sink: &collectSink{}, DeadLetter: dlq}); err != nil {
		t.Fatal(err)
	}
	if len(dlq.events) != 1 || dlq.events[0].Stage != "decode" {
		t.Errorf("dead letters %+v; want MSFT's price, which the query reads", dlq.events)
	}
	checkIdentity(t, p.Snapshot().Counts)
}

// TestReadColumnsOfState: a query reads only the columns its plan uses,
// whatever its state holds; a query whose state holds its input rows
// (OVER, a top-N of rows) says in its state plan which columns they hold,
// so that a checkpoint of them is refused by a query that reads more.
func TestReadColumnsOfState(t *testing.T) {
	for query, held := range map[string]string{
		"SELECT symbol, count(*) FROM trades GROUP BY symbol":                                                                   "",
		"SELECT symbol, avg(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM trades": `Rows of trades hold only the columns ["symbol","price","ts"]` + "\n",
		"SELECT symbol FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts) AS r FROM trades) x WHERE r <= 1":    `Rows of trades hold only the columns ["symbol","ts"]` + "\n",
	} {
		spec := fileSpec(writeFile(t, "trades.jsonl", ""), v1alpha1.FormatJSON, query, v1alpha1.FailFast)
		spec.Sources[0].Schema = append(spec.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
		spec.Default()
		p, err := New(spec, Options{Sink: &collectSink{}})
		if err != nil {
			t.Fatal(err)
		}
		p.close()
		if read := p.reads["trades"]; !slices.Contains(read, false) {
			t.Errorf("%s: reads %v; want some columns left unread", query, read)
		}
		if got := strings.TrimPrefix(p.statePlan, p.prog.StatePlan()); got != held {
			t.Errorf("%s: state plan %q after the operator's; want %q", query, got, held)
		}
	}
}

// TestJSONSchemaSource: a source's jsonSchema checks each record before
// it is decoded; one that breaks it is dead-lettered at stage decode,
// naming its line and the places that break the schema.
func TestJSONSchemaSource(t *testing.T) {
	path := writeFile(t, "schema.jsonl", `{"symbol":"AAPL","price":1.5,"quantity":1}
{"symbol":"AAPL","price":1.5,"quantity":-3}
{"symbol":"MSFT","price":2}
{"symbol":"GOOG","price":3,"quantity":3}
`)
	spec := fileSpec(path, v1alpha1.FormatJSON, "SELECT symbol, quantity FROM trades", v1alpha1.DeadLetter)
	spec.Sources[0].JSONSchema = `{"type":"object","required":["symbol","quantity"],"properties":{"quantity":{"type":"integer","minimum":0}}}`
	dlq := &memDeadLetter{}
	sink := &collectSink{}
	p, err := runPipeline(t, spec, Options{Sink: sink, DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.Rows(); len(got) != 2 {
		t.Errorf("wrote %v; want the 2 records that satisfy the schema", got)
	}
	want := map[int64]string{2: "jsonSchema: at '/quantity': minimum: got -3, want 0", 3: "jsonSchema: at '': missing property 'quantity'"}
	if len(dlq.events) != len(want) {
		t.Fatalf("dead letters %+v; want %d", dlq.events, len(want))
	}
	for _, ev := range dlq.events {
		if w := want[ev.Source.Offset]; w == "" || !strings.Contains(ev.Error, w) || !strings.Contains(ev.Error, fmt.Sprintf("line %d", ev.Source.Offset)) || ev.Stage != "decode" {
			t.Errorf("dead letter of line %d at stage %s: %q; want it to name the line and contain %q", ev.Source.Offset, ev.Stage, ev.Error, w)
		}
	}
	checkIdentity(t, p.Snapshot().Counts)
}

// TestSnapshotWhileStarting: Snapshot, which the server and the monitor
// call at any time, reads the edges' stats while the run builds its graph
// (run with -race: an edge's flag set after it was shared raced).
func TestSnapshotWhileStarting(t *testing.T) {
	for _, mode := range []string{"pipelined", "set"} {
		spec := datagenSpec("SELECT symbol, price FROM trades", 2000, 2, 2, 4, 64)
		if mode == "set" {
			spec.Statements = []v1alpha1.Statement{
				{Name: "a", Query: spec.Query, Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}},
				{Name: "b", Query: "SELECT symbol FROM trades", Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}},
			}
			spec.Query, spec.Sink = "", nil
		} else {
			spec.Sink = &v1alpha1.Sink{Null: &v1alpha1.NullSink{}}
		}
		p, err := New(spec, Options{})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		inputs := 0
	snap:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				break snap
			default:
				for _, e := range p.Snapshot().Edges {
					if e.Input {
						inputs++
					}
				}
			}
		}
		if inputs == 0 {
			t.Errorf("%s: no snapshot during the run saw an input edge", mode)
		}
	}
}

// TestPassThrough: the workers of a query that leaves every row as it is
// (a select list of every column in order, without WHERE) pass their input
// batches on rather than copy them, and write what a query that copies
// them writes: every good record, the bad ones dead-lettered.
func TestPassThrough(t *testing.T) {
	content, bad := badInput()
	path := writeFile(t, "bad.jsonl", content)
	run := func(query string, passes bool) ([]string, int, enginestatus.Records) {
		t.Helper()
		spec := fileSpec(path, v1alpha1.FormatJSON, query, v1alpha1.DeadLetter)
		spec.Runtime.BatchSize = 4
		p, err := New(spec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.newWorker().passThrough; got != passes {
			t.Errorf("%s: the workers pass their batches on: %t; want %t", query, got, passes)
		}
		p.close()
		sink, dlq := &collectSink{}, &memDeadLetter{}
		p, err = runPipeline(t, spec, Options{Sink: sink, DeadLetter: dlq})
		if err != nil {
			t.Fatal(err)
		}
		return sink.Rows(), len(dlq.events), p.Snapshot().Counts
	}
	rows, dead, counts := run("SELECT * FROM trades", true)
	wantRows, wantDead, wantCounts := run("SELECT symbol, price, quantity FROM trades WHERE quantity IS NULL OR quantity IS NOT NULL", false)
	if !slices.Equal(rows, wantRows) || dead != wantDead || dead != len(bad) || counts.Out != wantCounts.Out || counts.DeadLettered != wantCounts.DeadLettered {
		t.Errorf("passed through: %d rows %v, %d dead letters, counts %+v; copied: %d rows %v, %d dead letters (of %d bad), counts %+v",
			len(rows), rows, dead, counts, len(wantRows), wantRows, wantDead, len(bad), wantCounts)
	}
	run("SELECT symbol, price FROM trades", false)
	run("SELECT * FROM trades WHERE price > 0", false)
}

// TestMissingColumns: the columns a query reads that a checkpoint's held
// rows lack are those its plan's held-columns lines leave out; a plan
// without such a line holds whole rows, and a line that cannot be read
// holds no column.
func TestMissingColumns(t *testing.T) {
	cols := []value.Column{{Name: "symbol"}, {Name: "price"}, {Name: "ts"}}
	schemas := map[string][]value.Column{"trades": cols, "quotes": cols}
	reads := map[string][]bool{"trades": {true, true, false}, "quotes": {true, false, true}}
	held := heldColumns([]string{"trades", "quotes"}, map[string][]bool{"trades": {true, false, true}, "quotes": {true, true, true}}, schemas)
	if want := `Rows of trades hold only the columns ["symbol","ts"]` + "\n"; held != want {
		t.Fatalf("held columns %q; want %q", held, want)
	}
	for _, c := range []struct {
		plan string
		want map[string][]string
	}{
		{"Scan trades\n" + held, map[string][]string{"trades": {"price"}}},
		{"Scan trades\n", map[string][]string{}},
		{`Rows of quotes hold only the columns ["symbol","ts"]` + "\n", map[string][]string{}},
		{`Rows of quotes hold only the columns [symbol]` + "\n", map[string][]string{"quotes": {"symbol", "ts"}}},
	} {
		if got := missingColumns(c.plan, reads, schemas); !maps.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("missing columns of %q: %v; want %v", c.plan, got, c.want)
		}
	}
}
