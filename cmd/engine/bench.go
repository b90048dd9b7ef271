package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	records := fs.Int64("records", 10_000_000, "records to generate, over all partitions")
	partitions := fs.Int("partitions", 1, "datagen partitions, each read by its own reader")
	parallelism := fs.Int("parallelism", 1, "partition workers")
	query := fs.String("query", bench.Query, "the query, over the trades generator's table trades")
	direct := fs.Bool("direct", false, "run in direct mode, one goroutine")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	mode := v1alpha1.Pipelined
	if *direct {
		mode = v1alpha1.Direct
	}
	spec := bench.Spec(bench.Config{
		Query: *query, Records: *records, Partitions: *partitions, Parallelism: *parallelism,
		Mode: mode, Linger: time.Millisecond,
	})
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All()})
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
