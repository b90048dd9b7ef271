package pipeline

import (
	"context"
	"io"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// readLoop is a source reader's goroutine: it sends what it reads on
// through send, which reports false when the run is ending.
func (p *Pipeline) readLoop(readCtx context.Context, r connector.Reader, send func(message.Message) bool, ends *tableEnds) {
	table := ends.isTable(r)
	stop, reading := func() {}, readCtx
	if table {
		readCtx, stop = context.WithCancel(readCtx)
		defer stop()
	}
	var cur readCursor
	for readCtx.Err() == nil {
		b, err := p.read(readCtx, r, &cur)
		if b != nil && !send(message.Message{Kind: message.KindBatch, Batch: b}) {
			return
		}
		if err == connector.ErrLoaded {
			// A table's partition holds what it held at the start: a
			// table join may join with it.
			if !send(message.Message{Kind: message.KindLoaded, Origin: r.Origin()}) {
				return
			}
			ends.stopAfterStreams(readCtx, stop)
			continue
		}
		if err == io.EOF {
			// The partition has no more records, as opposed to a stop: a
			// stateful stage may close its windows.
			send(message.Message{Kind: message.KindEndOfStream, Origin: r.Origin()})
			if !table {
				ends.streamEnded()
			}
			return
		}
		if err != nil {
			p.fatal(err)
			return
		}
	}
	if table && reading.Err() == nil {
		// Stopped with the streams (tableEnds): for this run the
		// partition has ended, and the watermark does not wait for it.
		if st, ok := r.(connector.Stopper); ok {
			st.Stop()
		}
		send(message.Message{Kind: message.KindEndOfStream, Origin: r.Origin()})
	}
}

// tableEnds ends the reading of a table whose partitions do not end (a
// Kafka topic's) once nothing is left to join with it: when every stream
// has ended, each of its partitions stops as soon as it is loaded. A
// batch query, a file of trades joined with a Kafka table, then ends.
type tableEnds struct {
	tables      map[string]bool // the table sources, by name (Pipeline.tables)
	left        atomic.Int64    // streams' partitions not ended
	streamsDone chan struct{}
}

func (p *Pipeline) newTableEnds(readers []connector.Reader) *tableEnds {
	e := &tableEnds{tables: p.tables, streamsDone: make(chan struct{})}
	for _, r := range readers {
		if !e.isTable(r) {
			e.left.Add(1)
		}
	}
	return e
}

// isTable says r reads a table's partition.
func (e *tableEnds) isTable(r connector.Reader) bool { return e.tables[r.Origin().Source] }

// streamEnded notes that a stream's partition ended.
func (e *tableEnds) streamEnded() {
	if e.left.Add(-1) == 0 {
		close(e.streamsDone)
	}
}

// stopAfterStreams calls stop, which ends readCtx, a loaded table
// partition's, once every stream has ended.
func (e *tableEnds) stopAfterStreams(readCtx context.Context, stop context.CancelFunc) {
	go func() {
		select {
		case <-e.streamsDone:
			stop()
		case <-readCtx.Done():
		}
	}()
}

// readCursor is what a reader's loop knows of the batches it sent on: how
// many, and the generation of the last.
type readCursor struct {
	seq uint64
	gen uint64
}

// read fills one batch from r, with the records that failed to decode as its
// error events. It returns a nil batch when nothing was read.
func (p *Pipeline) read(ctx context.Context, r connector.Reader, cur *readCursor) (*message.Batch, error) {
	start := time.Now()
	b := p.pool.Get(len(p.inputs[r.Origin().Source]))
	p.stamp(b, r.Origin(), cur.seq)
	err := r.Read(ctx, b, p.batchSize, p.linger, &b.Errors)
	if err == errNoBatch {
		p.pool.Put(b)
		return nil, nil
	}
	n := b.Len() + b.Errors.Records
	// A batch of a repartition topic may hold only the upstream
	// partitions' progress, its event time, or nothing the reader can
	// tell yet: the first of a generation of its partition goes on even
	// then, since a stateful stage restores the partition's state when
	// its first batch comes, and the reader may know no progress before
	// it takes up the reader state restored with it (upstream partitions
	// whose last marks only the checkpoint holds).
	//
	// A statement of a set passes on every batch of the set's it takes.
	_, tee := r.(*teeReader)
	first := err == nil && ctx.Err() == nil && (cur.seq == 0 || b.Generation != cur.gen)
	if n > 0 || b.MaxEventTime != math.MinInt64 || first || tee && err == nil {
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
		if !tee {
			// A statement's copy of the set's batch was read, and
			// observed, once, by the set.
			p.observer.ObserveBatch(StageRead, time.Since(start), n, p.recorded(b.Trace))
		}
		p.debugBatch("batch read", b)
		cur.seq++
		cur.gen = b.Generation
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
