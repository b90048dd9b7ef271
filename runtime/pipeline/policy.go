package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/message"
)

// handle applies the error policy to the events of one batch.
func (p *Pipeline) handle(ctx context.Context, eb message.ErrorBatch) {
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
	switch p.strategy {
	case v1alpha1.Skip:
		for _, ev := range eb.Events {
			p.log.LogAttrs(ctx, slog.LevelWarn, "record skipped", eventAttrs(ev)...)
		}
		p.stats.skipped.Add(int64(eb.Records))
	case v1alpha1.DeadLetter:
		if err := p.dlq.Write(ctx, eb.Events); err != nil {
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
		p.fatal(&RecordError{Event: ev})
	}
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
