package pipeline

import (
	"context"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// readLoop is a source reader's goroutine.
func (p *Pipeline) readLoop(ctx, readCtx context.Context, r connector.Reader, out *edge[message.Message]) {
	var seq uint64
	for readCtx.Err() == nil {
		b, err := p.read(readCtx, r, &seq)
		if b != nil && !out.send(ctx, message.Message{Kind: message.KindBatch, Batch: b}) {
			return
		}
		if err == io.EOF {
			// The partition has no more records, as opposed to a stop: a
			// stateful stage may close its windows.
			out.send(ctx, message.Message{Kind: message.KindEndOfStream, Origin: r.Origin()})
			return
		}
		if err != nil {
			p.fatal(err)
			return
		}
	}
}

// read fills one batch from r, with the records that failed to decode as its
// error events. It returns a nil batch when nothing was read.
func (p *Pipeline) read(ctx context.Context, r connector.Reader, seq *uint64) (*message.Batch, error) {
	start := time.Now()
	b := p.pool.Get(len(p.inputs[r.Origin().Source]))
	p.stamp(b, r.Origin(), *seq)
	err := r.Read(ctx, b, p.batchSize, p.linger, &b.Errors)
	// A batch of a repartition topic may hold only the upstream
	// partitions' progress, its event time.
	if n := b.Len() + b.Errors.Records; n > 0 || b.MaxEventTime != math.MinInt64 {
		p.stats.in.Add(int64(n))
		p.stats.batches.Add(1)
		b.Read = time.Since(p.started).Nanoseconds()
		// With no span recorded, the input's own trace context goes on
		// unchanged, or else a random, local one stands in, so that logs
		// and dead letters still correlate.
		kind, attrs := messaging(r, trace.SpanKindConsumer, "process", n)
		if len(b.Offsets) > 0 && kind == trace.SpanKindConsumer {
			attrs = append(attrs, attribute.Int64("messaging.kafka.offset", b.Offsets[0]))
		}
		p.startSpan("batch", b.Parent, start, kind).root(b, n, attrs...)
		span := p.startSpan("source.read", stageParent(b), start, trace.SpanKindInternal)
		b.Trace = span.context(b.Parent)
		if !b.Trace.IsValid() {
			b.Trace = randomTrace()
		}
		for i := range b.Errors.Events {
			b.Errors.Events[i].Traceparent = b.Trace.Traceparent()
		}
		span.failed(b.Errors.Records, b.Errors.Events) // records that did not decode
		span.end(b, n)
		p.observer.ObserveBatch(StageRead, time.Since(start), n, p.recorded(b.Trace))
		p.debugBatch("batch read", b)
		*seq++
		return b, err
	}
	p.pool.Put(b)
	return nil, err
}

// stamp gives a new batch its identity.
func (p *Pipeline) stamp(b *message.Batch, o *message.Origin, seq uint64) {
	b.ID = p.nextBatch.Add(1)
	b.Seq = seq
	b.Origin = o
	b.CorrelationID = p.runID + "-" + strconv.FormatUint(b.ID, 10)
}
