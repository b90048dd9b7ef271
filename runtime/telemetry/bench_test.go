package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// discardExporter drops spans after the SDK has built and batched them, so
// that the benchmark pays for everything but the network.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// benchInstrumentation runs the 10M simple-select benchmark of the pipeline
// package with the given instrumentation.
func benchInstrumentation(b *testing.B, opts func() pipeline.Options) {
	spec := bench.Spec(bench.Config{Records: 10_000_000, Linger: time.Millisecond})
	b.ReportAllocs()
	var records int64
	start := time.Now()
	for b.Loop() {
		p, err := pipeline.New(spec, opts())
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		records += p.Snapshot().Counts.In
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkInstrumentationOff is the engine with no spans and no histograms.
func BenchmarkInstrumentationOff(b *testing.B) {
	benchInstrumentation(b, func() pipeline.Options { return pipeline.Options{} })
}

// BenchmarkInstrumentationMetrics adds the per-batch Prometheus histograms.
func BenchmarkInstrumentationMetrics(b *testing.B) {
	benchInstrumentation(b, func() pipeline.Options {
		return pipeline.Options{Observer: NewBatchMetrics(prometheus.NewRegistry())}
	})
}

// BenchmarkInstrumentationFull adds a span per batch per stage, always
// sampled, through the SDK's batch span processor.
func BenchmarkInstrumentationFull(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	benchInstrumentation(b, func() pipeline.Options {
		return pipeline.Options{Observer: NewBatchMetrics(prometheus.NewRegistry()), Tracer: tp.Tracer("bench")}
	})
}
