package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
)

// runBench runs spec b.N times and reports records per second and heap
// allocations per record.
func runBench(b *testing.B, spec *v1alpha1.StreamQuerySpec) {
	b.Helper()
	b.ReportAllocs()
	var records int64
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for b.Loop() {
		p, err := New(spec, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		records += p.Snapshot().Counts.In
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(records), "allocs/record")
}

// BenchmarkSimpleSelectBaseline is the lock-based engine's benchmark: 10,000
// records through a filter and a projection to the null sink.
func BenchmarkSimpleSelectBaseline(b *testing.B) {
	runBench(b, bench.Spec(bench.Config{Records: 10_000, Linger: time.Millisecond}))
}

// BenchmarkSimpleSelect10M is the same query over 10 million records, one
// partition and one worker: the per-core rate.
func BenchmarkSimpleSelect10M(b *testing.B) {
	runBench(b, bench.Spec(bench.Config{Records: 10_000_000, Linger: time.Millisecond}))
}

// BenchmarkSimpleSelectDirect10M runs the 10M benchmark in direct mode: the
// same operators without channels, for the cost of the message passing.
func BenchmarkSimpleSelectDirect10M(b *testing.B) {
	runBench(b, bench.Spec(bench.Config{Records: 10_000_000, Linger: time.Millisecond, Mode: v1alpha1.Direct}))
}

// BenchmarkLatency measures the time from a batch leaving its source to its
// rows being written, at about 100,000 records per second.
func BenchmarkLatency(b *testing.B) {
	for b.Loop() {
		spec := bench.Spec(bench.Config{Records: 100_000, Partitions: 2, Parallelism: 2, Rate: 50_000, Linger: time.Millisecond})
		p, err := New(spec, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		s := p.Snapshot()
		b.ReportMetric(float64(s.LatencyP50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(s.LatencyP99.Microseconds()), "p99-µs")
	}
}

// jsonTrade is the record the baseline program decodes and re-encodes.
type jsonTrade struct {
	Symbol   string      `json:"symbol"`
	Price    json.Number `json:"price"`
	Quantity int64       `json:"quantity"`
	TS       string      `json:"ts"`
}

// writeTrades writes n JSON lines of trades for the file benchmarks.
func writeTrades(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "trades.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	syms := []string{"AAPL", "MSFT", "GOOG", "AMZN", "NVDA"}
	for i := range n {
		fmt.Fprintf(w, `{"symbol":"%s","price":%d.%04d,"quantity":%d,"ts":"2024-01-02T09:30:%02d.%03dZ"}`+"\n",
			syms[i%5], 100+i%50, i%10000, 1+i%1000, i/1000%60, i%1000)
	}
	w.Flush()
	f.Close()
	return path
}

// baseline is the plain Go program the engine is compared with: it decodes
// each line with encoding/json and encodes it again, nothing else.
func baseline(b *testing.B, in, out string) int64 {
	f, err := os.Open(in)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	o, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	w := bufio.NewWriterSize(o, 256<<10)
	enc := json.NewEncoder(w)
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 64<<10))
	var n int64
	for sc.Scan() {
		var t jsonTrade
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			b.Fatal(err)
		}
		if err := enc.Encode(&t); err != nil {
			b.Fatal(err)
		}
		n++
	}
	w.Flush()
	return n
}

// BenchmarkJSONFile runs JSON lines file → SQL → JSON lines file and, in the
// same run over the same file, the plain decode/re-encode baseline; it
// reports both rates and their ratio.
func BenchmarkJSONFile(b *testing.B) {
	const n = 500_000
	in := writeTrades(b, n)
	dir := b.TempDir()
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name: "trades", File: &v1alpha1.FileSource{Path: in},
			Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "price", Type: "decimal(18,4)"}, {Name: "quantity", Type: "int"}, {Name: "ts", Type: "timestamp"}},
		}},
		Query: "SELECT symbol, price, quantity, ts FROM trades WHERE quantity > 0",
		Sink:  &v1alpha1.Sink{File: &v1alpha1.FileSink{Path: filepath.Join(dir, "engine.jsonl")}},
	}
	var engineTime, baseTime time.Duration
	var records, runs int64
	for b.Loop() {
		runs++
		start := time.Now()
		p, err := New(spec, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		engineTime += time.Since(start)
		records += p.Snapshot().Counts.Out
		start = time.Now()
		if got := baseline(b, in, filepath.Join(dir, "baseline.jsonl")); got != n {
			b.Fatalf("baseline read %d lines, want %d", got, n)
		}
		baseTime += time.Since(start)
	}
	if records != runs*n {
		b.Fatalf("engine wrote %d records, want %d", records, runs*n)
	}
	engineRate := float64(records) / engineTime.Seconds()
	baseRate := float64(records) / baseTime.Seconds()
	b.ReportMetric(engineRate, "engine-records/s")
	b.ReportMetric(baseRate, "baseline-records/s")
	b.ReportMetric(engineRate/baseRate, "engine/baseline")
}

// The stateful benchmarks' queries: per-minute volume by symbol, and the
// 15-minute, 1-hour and 4-hour moving averages of price by symbol.
const (
	tumblingQuery = "SELECT window_start, symbol, count(*) AS n, sum(price) AS volume, avg(price) AS avg_price FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"
	movingQuery   = "SELECT symbol, ts, price, " +
		"avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '15' MINUTE PRECEDING AND CURRENT ROW) AS ma_15m, " +
		"avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW) AS ma_1h, " +
		"avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '4' HOUR PRECEDING AND CURRENT ROW) AS ma_4h FROM trades"
)

// BenchmarkTumbling is the windowed aggregation of the issue: one-minute
// COUNT, SUM and AVG by key over 10,000 keys, one partition and one worker.
// Run it with -cpu 1 for the per-core rate.
func BenchmarkTumbling(b *testing.B) {
	runBench(b, bench.Spec(bench.Config{Query: tumblingQuery, Records: 2_000_000, Keys: 10_000, Linger: time.Millisecond}))
}

// BenchmarkMovingAverages computes the three moving averages together over
// 1,000 symbols. Datagen makes one trade per millisecond, so the 2 million
// trades span 33 minutes of event time: the 15-minute frames fill and slide,
// the 1-hour and 4-hour frames hold every trade of their symbol.
func BenchmarkMovingAverages(b *testing.B) {
	runBench(b, bench.Spec(bench.Config{Query: movingQuery, Records: 2_000_000, Keys: 1_000, Linger: time.Millisecond}))
}

// BenchmarkWindowState10M runs the tumbling query over 10 million records
// and 100,000 keys and reports the peak live heap, sampled every 10ms, and the
// most groups held: the memory the window state needs.
func BenchmarkWindowState10M(b *testing.B) {
	for b.Loop() {
		spec := bench.Spec(bench.Config{Query: tumblingQuery, Records: 10_000_000, Keys: 100_000, Linger: time.Millisecond})
		p, err := New(spec, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- p.Run(context.Background()) }()
		// The live heap as of the last GC: what the run needs, without the
		// garbage that GOGC lets accumulate between collections.
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		var maxState int64
		tick := time.NewTicker(10 * time.Millisecond)
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				break wait
			case <-tick.C:
				metrics.Read(live)
				peak = max(peak, live[0].Value.Uint64())
				maxState = max(maxState, p.Snapshot().StateRows)
			}
		}
		tick.Stop()
		b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MiB")
		b.ReportMetric(float64(maxState), "max-state-groups")
		b.ReportMetric(float64(p.Snapshot().Counts.In)/time.Since(start).Seconds(), "records/s")
	}
}

// BenchmarkCheckpointOverhead runs the tumbling and moving-average queries
// without checkpoints and with a checkpoint every second into a temporary
// directory: the ratio of records/s is the cost of checkpointing. Each run
// reads enough records to last a few seconds, so that it takes several
// checkpoints besides the last.
func BenchmarkCheckpointOverhead(b *testing.B) {
	queries := []struct {
		name    string
		query   string
		records int64
		keys    int32
	}{
		{"tumbling", tumblingQuery, 20_000_000, 10_000},
		{"moving", movingQuery, 4_000_000, 1_000},
	}
	for _, q := range queries {
		for _, every := range []time.Duration{0, time.Second} {
			name := q.name + "/off"
			if every > 0 {
				name = fmt.Sprintf("%s/every-%v", q.name, every)
			}
			b.Run(name, func(b *testing.B) {
				spec := bench.Spec(bench.Config{Query: q.query, Records: q.records, Keys: q.keys, Linger: time.Millisecond})
				var checkpoints, bytes int64
				var records int64
				var elapsed time.Duration
				for b.Loop() {
					if every > 0 {
						spec.State = &v1alpha1.StateSpec{Dir: b.TempDir(), CheckpointInterval: &metav1.Duration{Duration: every}}
					}
					p, err := New(spec, Options{})
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					if err := p.Run(context.Background()); err != nil {
						b.Fatal(err)
					}
					elapsed += time.Since(start)
					records += p.Snapshot().Counts.In
					if c, ok := p.Checkpoints(); ok {
						checkpoints += c.Completed
						bytes = max(bytes, int64(c.LastBytes))
					}
				}
				b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
				if every > 0 {
					b.ReportMetric(float64(checkpoints)/float64(b.N), "checkpoints/op")
					b.ReportMetric(float64(bytes)/(1<<20), "last-checkpoint-MiB")
				}
			})
		}
	}
}

// BenchmarkRestore1M is the restart of a query whose state is a million
// groups (one-day windows over a million keys): a run stopped once it
// holds them saves its state, and each iteration starts the query again
// from it and reports how long reading the checkpoint back into the state
// took (restore-ms) and its size.
func BenchmarkRestore1M(b *testing.B) {
	const groups = 1_000_000
	spec := bench.Spec(bench.Config{
		Query:   "SELECT window_start, symbol, count(*) AS n, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' DAY) GROUP BY window_start, window_end, symbol",
		Records: 0, Keys: groups, Linger: time.Millisecond,
	})
	spec.State = &v1alpha1.StateSpec{Dir: b.TempDir(), CheckpointInterval: &metav1.Duration{Duration: time.Hour}}
	p, err := New(spec, Options{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	for deadline := time.Now().Add(2 * time.Minute); p.Snapshot().StateRows < groups; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d groups after 2 minutes", p.Snapshot().StateRows)
		}
	}
	p.Stop() // a graceful stop saves the state
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	c, _ := p.Checkpoints()
	size := c.LastBytes // whole: the run's first
	var restore time.Duration
	for b.Loop() {
		p, err := New(spec, Options{})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		for {
			if c, _ := p.Checkpoints(); c.RestoreDuration > 0 {
				restore += c.RestoreDuration
				break
			}
			time.Sleep(time.Millisecond)
		}
		if rows := p.Snapshot().StateRows; rows < groups {
			b.Fatalf("restored %d groups", rows)
		}
		p.Stop() // a delta: each iteration restores the whole state and the deltas before
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(restore.Milliseconds())/float64(b.N), "restore-ms")
	b.ReportMetric(float64(size)/(1<<20), "checkpoint-MiB")
}

// BenchmarkStatementSet runs two statements over a file of JSON trades, a
// filter and the per-minute volume, as a statement set, which decodes the
// file once, and as two queries one after the other, which decode it once
// each: records read per second of each, in one run, the process's CPU
// time per record of each (the set runs its statements at once, on
// several cores), and their ratios.
func BenchmarkStatementSet(b *testing.B) {
	const n = 500_000
	in := writeTrades(b, n)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name: "trades", File: &v1alpha1.FileSource{Path: in},
			Schema:    []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "price", Type: "decimal(18,4)"}, {Name: "quantity", Type: "int"}, {Name: "ts", Type: "timestamp"}},
			EventTime: &v1alpha1.EventTime{Column: "ts"},
		}},
		Statements: []v1alpha1.Statement{
			{Name: "large", Query: "SELECT symbol, price, quantity, ts FROM trades WHERE quantity > 500", Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}},
			{Name: "volume", Query: tumblingQuery, Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}},
		},
	}
	var setCPU, apartCPU time.Duration
	run := func(spec *v1alpha1.StreamQuerySpec, cpu *time.Duration) time.Duration {
		start, startCPU := time.Now(), bench.ProcessCPU()
		defer func() { *cpu += bench.ProcessCPU() - startCPU }()
		p, err := New(spec, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if in := p.Snapshot().Counts.In; in != n {
			b.Fatalf("read %d records, want %d", in, n)
		}
		return time.Since(start)
	}
	var set, apart time.Duration
	for b.Loop() {
		set += run(spec, &setCPU)
		for _, one := range spec.StatementSpecs() {
			apart += run(one, &apartCPU)
		}
	}
	records := float64(b.N * n)
	setRate, apartRate := records/set.Seconds(), records/apart.Seconds()
	b.ReportMetric(setRate, "set-records/s")
	b.ReportMetric(apartRate, "apart-records/s")
	b.ReportMetric(setRate/apartRate, "set/apart")
	b.ReportMetric(float64(setCPU.Nanoseconds())/records, "set-cpu-ns/record")
	b.ReportMetric(float64(apartCPU.Nanoseconds())/records, "apart-cpu-ns/record")
	b.ReportMetric(float64(setCPU)/float64(apartCPU), "set/apart-cpu")
}
