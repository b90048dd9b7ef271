package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/runtime/connector"
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

// stageSpan is the span of one stage of one batch, started when the stage
// has the batch and ended when it is done with it, so that error events
// made meanwhile carry it; the zero value, with tracing off, does nothing.
type stageSpan struct{ s trace.Span }

// stageParent is the parent of a stage's span of b: its root span, or,
// without one, the span of the stage before.
func stageParent(b *message.Batch) message.TraceContext {
	if b.Root.IsValid() {
		return b.Root
	}
	return b.Trace
}

// root makes ss the root span of b, ended by b.EndRoot with what b is now.
func (ss stageSpan) root(b *message.Batch, records int, attrs ...attribute.KeyValue) {
	b.Root = ss.context(message.TraceContext{})
	if ss.s == nil {
		return
	}
	attrs = appendBatchAttrs(attrs, b, records)
	b.EndRoot = func() { ss.finish(attrs...) }
}

// appendBatchAttrs appends the attributes every span of a batch carries:
// its correlation and batch ids, the stage's records, its partition.
func appendBatchAttrs(attrs []attribute.KeyValue, b *message.Batch, records int) []attribute.KeyValue {
	attrs = append(attrs,
		attribute.String("sluice.correlation_id", b.CorrelationID),
		attribute.Int64("sluice.batch_id", int64(b.ID)),
		attribute.Int("sluice.records", records))
	if o := b.Origin; o != nil {
		attrs = append(attrs, attribute.String("sluice.source", o.Source), attribute.Int("sluice.partition", int(o.Partition)))
	}
	return attrs
}

// maxSpanEvents bounds the exception events of one span: a batch of
// failed records would otherwise make a span of thousands of events.
const maxSpanEvents = 16

// startSpan starts the span of stage name at start, a child of parent (of
// no span when parent is invalid: a new trace), linked to links.
func (p *Pipeline) startSpan(name string, parent message.TraceContext, start time.Time, kind trace.SpanKind, links ...trace.Link) stageSpan {
	if p.tracer == nil {
		return stageSpan{}
	}
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, spanContext(parent))
	}
	_, s := p.tracer.Start(ctx, name, trace.WithTimestamp(start), trace.WithSpanKind(kind), trace.WithLinks(links...))
	return stageSpan{s}
}

// context is the span's trace context for a batch, or fallback without one.
func (ss stageSpan) context(fallback message.TraceContext) message.TraceContext {
	if ss.s == nil {
		return fallback
	}
	return traceContext(ss.s.SpanContext(), fallback)
}

// failed marks records of the stage as failed: an exception event for each
// of events (the first maxSpanEvents), and the span's status an error, so
// that a search for error=true finds the stage where records failed.
func (ss stageSpan) failed(records int, events []message.ErrorEvent) {
	if ss.s == nil || !ss.s.IsRecording() || records == 0 {
		return
	}
	for i, ev := range events {
		if i == maxSpanEvents {
			break
		}
		attrs := []attribute.KeyValue{
			attribute.String("sluice.stage", ev.Stage),
			attribute.String("sluice.correlation_id", ev.CorrelationID),
		}
		if ev.Source.Source != "" {
			attrs = append(attrs, attribute.String("sluice.source", ev.Source.Source), attribute.Int64("sluice.offset", ev.Source.Offset))
		}
		ss.s.RecordError(errors.New(ev.Error), trace.WithAttributes(attrs...))
	}
	ss.s.SetAttributes(attribute.Int("sluice.failed", records))
	ss.s.SetStatus(codes.Error, fmt.Sprintf("%d records failed", records))
}

// fail marks the stage as failed by err.
func (ss stageSpan) fail(err error) {
	if ss.s == nil {
		return
	}
	ss.s.RecordError(err)
	ss.s.SetStatus(codes.Error, err.Error())
}

// end ends the span, describing b, of which records were the stage's.
func (ss stageSpan) end(b *message.Batch, records int, attrs ...attribute.KeyValue) {
	if ss.s == nil {
		return
	}
	ss.finish(appendBatchAttrs(attrs, b, records)...)
}

// finish ends the span with attrs.
func (ss stageSpan) finish(attrs ...attribute.KeyValue) {
	if ss.s == nil {
		return
	}
	ss.s.SetAttributes(attrs...)
	ss.s.End()
}

// messaging returns the span kind and the OpenTelemetry messaging
// attributes of a read from, or a write to, c: a consumer or producer span
// with its destination when c is a connector.Destination (Kafka), else an
// internal span.
func messaging(c any, kind trace.SpanKind, operation string, records int) (trace.SpanKind, []attribute.KeyValue) {
	d, ok := c.(connector.Destination)
	if !ok {
		return trace.SpanKindInternal, nil
	}
	system, name, partition := d.Destination()
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", system),
		attribute.String("messaging.operation.type", operation),
		attribute.String("messaging.destination.name", name),
		attribute.Int("messaging.batch.message_count", records),
	}
	if partition >= 0 {
		attrs = append(attrs, attribute.String("messaging.destination.partition.id", strconv.Itoa(int(partition))))
	}
	return kind, attrs
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
