package pipeline

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/runtime/message"
)

// Stage names a stage of the pipeline in measurements and error events.
type Stage string

// The stages a batch passes through.
const (
	StageRead    Stage = "read"
	StageProcess Stage = "process"
	StageWrite   Stage = "write"
)

// Observer receives one measurement per batch per stage. The telemetry
// package implements it with Prometheus histograms whose exemplars carry the
// batch's trace id.
type Observer interface {
	ObserveBatch(stage Stage, d time.Duration, records int, tc message.TraceContext)
}

type noObserver struct{}

func (noObserver) ObserveBatch(Stage, time.Duration, int, message.TraceContext) {}

// spanContext converts a batch's trace context for the OpenTelemetry API.
func spanContext(tc message.TraceContext) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tc.TraceID, SpanID: tc.SpanID, TraceFlags: trace.TraceFlags(tc.Flags), Remote: true,
	})
}

// traceContext converts a span's context into a batch's. An invalid span
// context (tracing off) leaves a fresh random one, so that logs and dead
// letters still correlate.
func traceContext(sc trace.SpanContext, fallback message.TraceContext) message.TraceContext {
	if !sc.IsValid() {
		return fallback
	}
	return message.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
}

// recorded returns tc when the engine records spans, and an empty context
// when it does not: a context passed through from the input, sampled
// upstream, has no span of the engine's to count as traced or to link an
// exemplar to.
func (p *Pipeline) recorded(tc message.TraceContext) message.TraceContext {
	if p.tracer == nil {
		return message.TraceContext{}
	}
	return tc
}

func randomTrace() message.TraceContext {
	tc := message.TraceContext{Local: true}
	_, _ = rand.Read(tc.TraceID[:])
	_, _ = rand.Read(tc.SpanID[:])
	return tc
}

// span records a finished stage of a batch as a span that started at start,
// child of parent (invalid: a new trace). It returns the span's context.
func (p *Pipeline) span(name string, parent message.TraceContext, start time.Time, b *message.Batch, attrs ...attribute.KeyValue) trace.SpanContext {
	if p.tracer == nil {
		return trace.SpanContext{}
	}
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, spanContext(parent))
	}
	_, s := p.tracer.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if s.IsRecording() && b != nil {
		s.SetAttributes(
			attribute.String("sluice.correlation_id", b.CorrelationID),
			attribute.Int64("sluice.batch_id", int64(b.ID)),
			attribute.Int("sluice.records", b.Len()),
		)
		if o := b.Origin; o != nil {
			s.SetAttributes(attribute.String("sluice.source", o.Source), attribute.Int("sluice.partition", int(o.Partition)))
		}
	}
	s.End()
	return s.SpanContext()
}

// debugBatch logs a batch's passage at DEBUG, with its trace and correlation
// ids, only when DEBUG is enabled.
func (p *Pipeline) debugBatch(msg string, b *message.Batch) {
	ctx := context.Background()
	if !p.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	p.log.LogAttrs(ctx, slog.LevelDebug, msg, batchAttrs(b)...)
}

// batchAttrs are the log attributes that tie a log line to a batch.
func batchAttrs(b *message.Batch) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("correlation_id", b.CorrelationID),
		slog.String("trace_id", b.Trace.TraceIDString()),
		slog.String("span_id", b.Trace.SpanIDString()),
		slog.Int("records", b.Len()),
	}
	if b.Origin != nil {
		attrs = append(attrs, slog.String("source", b.Origin.Source), slog.Int("partition", int(b.Origin.Partition)))
	}
	return attrs
}
