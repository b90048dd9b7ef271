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
	nexmarkqueries "github.com/sluice-dev/sluice/examples/nexmark"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/connector/nexmark"
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
	nexmarkQuery := fs.String("nexmark", "", "run a Nexmark query instead (q0, q1, ...; examples/nexmark), over the Nexmark generators, to a null sink")
	events := fs.Int64("events", 10_000_000, "with -nexmark, the Nexmark event numbers to generate: each source makes its kind's share of them, rounded up to a multiple of -partitions")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this file, with what the run allocated (go tool pprof -sample_index=alloc_space)")
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
	if *nexmarkQuery != "" {
		var err error
		if spec, err = nexmarkSpec(*nexmarkQuery, *events, *partitions, *parallelism, mode); err != nil {
			fmt.Fprintf(stderr, "engine bench: %v\n", err)
			return exitUsage
		}
		*query = spec.Query
	}
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All()})
	if err != nil {
		fmt.Fprintf(stderr, "engine bench: %v\n", err)
		return exitFailed
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stopProfile := func() {}
	if *cpuProfile != "" {
		if stopProfile, err = startCPUProfile(*cpuProfile); err != nil {
			fmt.Fprintf(stderr, "engine bench: %v\n", err)
			return exitFailed
		}
	}
	start, startCPU := time.Now(), bench.ProcessCPU()
	err = p.Run(ctx)
	elapsed, cpu := time.Since(start), bench.ProcessCPU()-startCPU
	stopProfile()
	if err != nil {
		fmt.Fprintf(stderr, "engine bench: %v\n", err)
		return exitFailed
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			fmt.Fprintf(stderr, "engine bench: %v\n", err)
			return exitFailed
		}
	}
	runtime.ReadMemStats(&after)
	s := p.Snapshot()
	fmt.Fprintf(stdout, "query:       %s\n", *query)
	fmt.Fprintf(stdout, "records:     %d in, %d out, %d filtered", s.Counts.In, s.Counts.Out, s.Counts.Filtered)
	if s.Counts.Results > 0 || s.Counts.Aggregated > 0 {
		fmt.Fprintf(stdout, ", %d aggregated or joined, %d results", s.Counts.Aggregated, s.Counts.Results)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "elapsed:     %s on GOMAXPROCS=%d, %d partitions, %d workers\n", elapsed.Round(time.Millisecond), runtime.GOMAXPROCS(0), *partitions, *parallelism)
	fmt.Fprintf(stdout, "throughput:  %.0f records/s\n", float64(s.Counts.In)/elapsed.Seconds())
	if cpu > 0 {
		fmt.Fprintf(stdout, "per core:    %.0f records per CPU second (%s of CPU, the whole process's)\n", float64(s.Counts.In)/cpu.Seconds(), cpu.Round(time.Millisecond))
	}
	fmt.Fprintf(stdout, "allocations: %.4f per record, %.1f bytes per record\n",
		float64(after.Mallocs-before.Mallocs)/float64(max(s.Counts.In, 1)), float64(after.TotalAlloc-before.TotalAlloc)/float64(max(s.Counts.In, 1)))
	fmt.Fprintf(stdout, "latency:     p50 %s, p99 %s (source to sink, per batch)\n", s.LatencyP50, s.LatencyP99)
	return exitOK
}

// nexmarkSpec is the spec of Nexmark query name (examples/nexmark) over
// events event numbers, each source's made by partitions partitions, to a
// null sink.
func nexmarkSpec(name string, events int64, partitions, parallelism int, mode v1alpha1.ExecutionMode) (*v1alpha1.StreamQuerySpec, error) {
	spec, err := nexmarkqueries.Spec(name)
	if err != nil {
		return nil, err
	}
	parts := int64(max(partitions, 1))
	for i := range spec.Sources {
		d := spec.Sources[i].Datagen
		kind, ok := nexmark.KindOf(d.Generator)
		if !ok {
			return nil, fmt.Errorf("nexmark %s: source %s is not a Nexmark generator", name, spec.Sources[i].Name)
		}
		n := kind.Count(events)
		if n == 0 {
			// A count of 0 would generate for ever.
			return nil, fmt.Errorf("nexmark %s: -events %d holds no %s events (1 in 50 is a person, 3 an auction, 46 a bid)", name, events, kind)
		}
		// Each partition makes as many: the count rounds up to a multiple
		// of the partitions.
		d.Count = (n + parts - 1) / parts
		d.Partitions = int32(parts)
	}
	spec.Sink = &v1alpha1.Sink{Null: &v1alpha1.NullSink{}}
	spec.Runtime.Mode = mode
	spec.Runtime.Parallelism = int32(parallelism)
	spec.Runtime.BatchLinger = &metav1.Duration{Duration: time.Millisecond}
	return spec, nil
}
