package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// handle applies the error policy to the events of one batch, whose root
// span is root.
func (p *Pipeline) handle(ctx context.Context, eb message.ErrorBatch, root message.TraceContext) {
	if p.statement != "" {
		for i := range eb.Events {
			if eb.Events[i].Stage != "decode" { // a decode failure is every statement's
				eb.Events[i].Statement = p.statement
			}
		}
	}
	if len(eb.Events) > 0 {
		p.noteError(eb.Events[len(eb.Events)-1].Error)
	}
	for _, ev := range eb.Events {
		p.stats.stageErrors[stageIndex(ev.Stage)].Add(1)
	}
	if p.err() != nil || ctx.Err() != nil {
		// The run is already failing, or aborted: these records are lost
		// to it.
		p.stats.failed.Add(int64(eb.Records))
		return
	}
	if len(eb.Events) == 0 {
		return
	}
	span := p.policySpan(eb, root)
	defer span.finish(attribute.String("sluice.error_policy", string(p.strategy)), attribute.Int("sluice.failed", eb.Records),
		attribute.String("sluice.correlation_id", eb.Events[0].CorrelationID), attribute.Int("sluice.events", len(eb.Events)))
	switch p.strategy {
	case v1alpha1.Skip:
		for _, ev := range eb.Events {
			p.log.LogAttrs(ctx, slog.LevelWarn, "record skipped", eventAttrs(ev)...)
		}
		p.stats.skipped.Add(int64(eb.Records))
	case v1alpha1.DeadLetter:
		if err := p.dlq.Write(ctx, eb.Events); err != nil {
			span.fail(fmt.Errorf("dead-letter sink: %w", err))
			p.stats.failed.Add(int64(eb.Records))
			if ctx.Err() == nil { // else the abort cut the write short
				p.fatal(fmt.Errorf("dead-letter sink failed, stopping rather than losing records: %w", err))
			}
			return
		}
		p.stats.deadLettered.Add(int64(eb.Records))
	default:
		p.stats.failed.Add(int64(eb.Records))
		ev := eb.Events[0]
		p.log.LogAttrs(ctx, slog.LevelError, "record failed; stopping (FailFast)", eventAttrs(ev)...)
		err := &RecordError{Event: ev}
		span.fail(err)
		p.fatal(err)
	}
}

// policySpan starts the span of the error policy's handling of eb: a child
// of the batch's root span, linked to the spans of the stages its records
// failed in (whose exception events say why).
func (p *Pipeline) policySpan(eb message.ErrorBatch, root message.TraceContext) stageSpan {
	if p.tracer == nil {
		return stageSpan{}
	}
	var links []trace.Link
	for _, ev := range eb.Events {
		tc, ok := message.ParseTraceparent(ev.Traceparent)
		if ok && len(links) < maxSpanEvents && !slices.ContainsFunc(links, func(l trace.Link) bool { return l.SpanContext.SpanID() == tc.SpanID }) {
			links = append(links, trace.Link{SpanContext: spanContext(tc)})
		}
	}
	if !root.IsValid() && len(links) > 0 {
		root = traceContext(links[0].SpanContext, root)
	}
	return p.startSpan("error.policy", root, time.Now(), trace.SpanKindInternal, links...)
}

// eventAttrs are the log attributes of an error event.
func eventAttrs(ev message.ErrorEvent) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("stage", ev.Stage),
		slog.String("correlation_id", ev.CorrelationID),
		slog.String("source", ev.Source.Source),
		slog.Int("partition", int(ev.Source.Partition)),
		slog.Int64("offset", ev.Source.Offset),
		slog.String("error", ev.Error),
	}
	if tp := ev.Traceparent; len(tp) == 55 {
		attrs = append(attrs, slog.String("trace_id", tp[3:35]), slog.String("span_id", tp[36:52]))
	}
	return attrs
}

// RecordError is the error of a FailFast pipeline stopped by a record.
type RecordError struct{ Event message.ErrorEvent }

func (e *RecordError) Error() string {
	return fmt.Sprintf("record failed at stage %s (correlation id %s): %s", e.Event.Stage, e.Event.CorrelationID, e.Event.Error)
}
