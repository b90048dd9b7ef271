package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// benchQuery is the baseline query of the benchmarks: a filter and a projection.
const benchQuery = "SELECT symbol, price, quantity, price * quantity AS notional FROM trades WHERE quantity > 500 AND symbol <> 'IBM'"

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	records := fs.Int64("records", 10_000_000, "records to generate, over all partitions")
	partitions := fs.Int("partitions", 1, "datagen partitions, each read by its own reader")
	parallelism := fs.Int("parallelism", 1, "partition workers")
	query := fs.String("query", benchQuery, "the query, over the trades generator's table trades")
	direct := fs.Bool("direct", false, "run in direct mode, one goroutine")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	spec := BenchSpec(*query, *records, *partitions, *parallelism, *direct)
	p, err := pipeline.New(spec, pipeline.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "engine bench: %v\n", err)
		return exitFailed
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "engine bench: %v\n", err)
		return exitFailed
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	s := p.Snapshot()
	fmt.Fprintf(stdout, "query:       %s\n", *query)
	fmt.Fprintf(stdout, "records:     %d in, %d out, %d filtered\n", s.Counts.In, s.Counts.Out, s.Counts.Filtered)
	fmt.Fprintf(stdout, "elapsed:     %s on GOMAXPROCS=%d, %d partitions, %d workers\n", elapsed.Round(time.Millisecond), runtime.GOMAXPROCS(0), *partitions, *parallelism)
	fmt.Fprintf(stdout, "throughput:  %.0f records/s\n", float64(s.Counts.In)/elapsed.Seconds())
	fmt.Fprintf(stdout, "allocations: %.4f per record, %.1f bytes per record\n",
		float64(after.Mallocs-before.Mallocs)/float64(max(s.Counts.In, 1)), float64(after.TotalAlloc-before.TotalAlloc)/float64(max(s.Counts.In, 1)))
	fmt.Fprintf(stdout, "latency:     p50 %s, p99 %s (source to sink, per batch)\n", s.LatencyP50, s.LatencyP99)
	return exitOK
}

// BenchSpec is the datagen → query → null spec the benchmarks run.
func BenchSpec(query string, records int64, partitions, parallelism int, direct bool) *v1alpha1.StreamQuerySpec {
	mode := v1alpha1.Pipelined
	if direct {
		mode = v1alpha1.Direct
	}
	return &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name: "trades",
			Datagen: &v1alpha1.DatagenSource{
				Generator: "trades", Count: records / int64(partitions), Partitions: int32(partitions), Seed: 1,
			},
		}},
		Query: query,
		Sink:  v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		Runtime: v1alpha1.RuntimeSpec{
			Mode: mode, Parallelism: int32(parallelism),
			BatchLinger: &metav1.Duration{Duration: time.Millisecond},
		},
	}
}
