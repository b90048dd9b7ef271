package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// sinkStage writes batches to the sink. Each batch's error events go to the
// error policy, its rows to the sink (with retries; rows that still fail go
// to the policy too), and then, if all of that succeeded, the batch is
// acknowledged to its source.
//
// With an AsyncSink in pipelined mode, take starts each batch's write as it
// arrives and a second goroutine of the stage finishes the writes in
// arrival order: the error policy, retries and the acknowledgement run
// there, so batches are acknowledged in order while several are in flight.
// Once a write fails, no further write starts until the finisher has
// settled every write started before, retrying the failed rows: a batch
// started meanwhile could put rows of a key before the retried rows of that
// key. A sink that reports a failure as it happens
// (connector.FailureReporter) stops new writes at once; otherwise they stop
// when the failed batch has its answer.
type sinkStage struct {
	p   *Pipeline
	enc *format.JSONEncoder // failed rows, for their error events
	// sources, for the upstream part of a repartitioned join, which writes
	// the rows of two sources, encode each source's failed rows instead.
	sources failures

	retry *message.Batch // the rows of a batch a retry writes again

	async    connector.AsyncSink // nil: each write finishes in take
	inFlight chan write          // started writes, in order, to the finisher
	finished chan struct{}       // closed when the finisher returns
	hold     writeHold
	// rewinds is the pipeline's rewinds the stage has seen; dropping says
	// the stateful stage has not followed the last yet: its results and
	// checkpoints came from state the rewind rolled back.
	rewinds  uint64
	dropping bool
}

// write is a batch whose first write attempt was started.
type write struct {
	b      *message.Batch
	start  time.Time
	span   stageSpan
	result chan error
	// checkpoint, instead of a batch, is a checkpoint to save once the
	// writes before it are settled; committed, if not nil, is closed once
	// it is.
	checkpoint *checkpoint.Checkpoint
	committed  chan struct{}
}

// startWrite starts b's write span and makes it b's trace context, which
// error events of its rows carry and a Kafka sink sends as each record's
// traceparent header: a downstream engine's read is the write's child.
func (s *sinkStage) startWrite(b *message.Batch, start time.Time) stageSpan {
	kind, _ := messaging(s.p.sink, trace.SpanKindProducer, "send", b.Len())
	span := s.p.startSpan("sink.write", stageParent(b), start, kind)
	b.Trace = span.context(b.Trace)
	return span
}

// newSinkStage returns the sink stage of a run under ctx; concurrent allows
// an AsyncSink's writes to overlap (pipelined mode).
func (p *Pipeline) newSinkStage(ctx context.Context, concurrent bool) *sinkStage {
	s := &sinkStage{p: p, enc: format.NewJSONEncoder(value.Names(p.prog.Output))}
	if p.prog.Join() && !p.prog.Stateful() {
		s.sources = p.inputFailures()
	}
	if async, ok := p.sink.(connector.AsyncSink); ok && concurrent {
		s.async = async
		s.inFlight = make(chan write, connector.MaxWritesInFlight)
		s.finished = make(chan struct{})
		if r, ok := async.(connector.FailureReporter); ok {
			r.OnFailure(s.hold.fail)
		}
		go func() {
			defer close(s.finished)
			for w := range s.inFlight {
				if w.checkpoint != nil {
					s.commitCheckpoint(ctx, w.checkpoint)
					if w.committed != nil {
						close(w.committed)
					}
					continue
				}
				s.deliver(ctx, w.b, &w)
				s.hold.finish()
			}
		}()
	}
	return s
}

// take implements stage.
func (s *sinkStage) take(ctx context.Context, m message.Message, _ emitFunc) bool {
	if n := s.p.rewinds.Load(); n != s.rewinds {
		s.rewinds, s.dropping = n, true
	}
	switch {
	case m.Kind == message.KindRewound:
		s.dropping = false
		return true
	case s.dropping:
		// Results and checkpoints of state the rewind rolled back: the
		// stateful stage makes them again from the restored state.
		if b := m.Batch; b != nil {
			if b.EndRoot != nil {
				b.EndRoot()
			}
			s.p.pool.Put(b)
		}
		return ctx.Err() == nil
	}
	if m.Kind == message.KindCheckpoint {
		if s.async == nil {
			s.commitCheckpoint(ctx, m.Checkpoint)
			return ctx.Err() == nil
		}
		// After the writes started before it.
		w := write{checkpoint: m.Checkpoint}
		if _, ok := s.p.txn.(connector.CheckpointTransaction); ok || s.p.round != nil {
			// A write started before the commit would commit with it, and
			// its results with the state before them.
			w.committed = make(chan struct{})
		}
		select {
		case s.inFlight <- w:
		case <-ctx.Done():
			return false
		}
		if w.committed != nil {
			select {
			case <-w.committed:
			case <-ctx.Done():
				return false
			}
		}
		return true
	}
	if m.Kind != message.KindBatch {
		return ctx.Err() == nil
	}
	if s.async == nil {
		s.deliver(ctx, m.Batch, nil)
		return ctx.Err() == nil
	}
	if ctx.Err() != nil || !s.hold.start(ctx) {
		return false // aborted: the batch goes to the garbage collector
	}
	w := write{b: m.Batch, start: time.Now(), result: make(chan error, 1)}
	if m.Batch.Len() == 0 {
		w.result <- nil
	} else {
		w.span = s.startWrite(m.Batch, w.start)
		s.async.WriteAsync(ctx, m.Batch, func(err error) {
			if err != nil {
				s.hold.fail()
			}
			w.result <- err
		})
	}
	select {
	case s.inFlight <- w:
		return true
	case <-ctx.Done():
		<-w.result // the sink owns the batch until it answers
		return false
	}
}

// finish implements stage: the writes in flight settle, and what was
// written is flushed.
func (s *sinkStage) finish(ctx context.Context, _ emitFunc) {
	if s.async != nil {
		close(s.inFlight)
		<-s.finished
	}
	if ctx.Err() != nil {
		return
	}
	if err := s.p.sink.Flush(ctx); err != nil && ctx.Err() == nil {
		s.p.fatal(fmt.Errorf("sink: flushing: %w", err))
	}
}

// deliver finishes a batch: its error events go to the error policy, its rows
// to the sink (with retries, rows that still fail to the policy too), and
// then, if all of that succeeded, the batch is acknowledged to its source.
// The batch is released.
// started, if not nil, is the batch's first write attempt, already under
// way; deliver waits for its result.
func (s *sinkStage) deliver(ctx context.Context, b *message.Batch, started *write) {
	p := s.p
	defer p.pool.Put(b) // the stage's one release
	if b.EndRoot != nil {
		defer b.EndRoot() // the batch's way ends here, written or not
	}
	if b.Errors.Records > 0 || len(b.Errors.Events) > 0 {
		p.handle(ctx, b.Errors, b.Root)
	}
	if n := b.Len(); n > 0 {
		var start time.Time
		var span stageSpan
		var first func() error
		if started != nil {
			start, span = started.start, started.span
			first = func() error { return <-started.result }
		} else {
			if ctx.Err() != nil {
				return // aborted before the write: no span of a write that was not made
			}
			start = time.Now()
			span = s.startWrite(b, start)
		}
		attempts, failed, err := s.writeWithRetry(ctx, b, first)
		p.observer.ObserveBatch(StageWrite, time.Since(start), n, p.recorded(b.Trace))
		if err != nil && ctx.Err() != nil {
			// Aborted: the batch stays unacknowledged, and its span is
			// not ended, so not exported: the write did not finish.
			return
		}
		_, attrs := messaging(p.sink, trace.SpanKindProducer, "send", n)
		defer span.end(b, n, append(attrs, attribute.Int("sluice.attempts", attempts))...)
		written := int64(n - len(failed))
		if len(failed) == 0 {
			p.metrics.Observe(b.Rows, nil)
		} else {
			p.metrics.Observe(b.Rows, func(i int) bool { return !slices.Contains(failed, i) })
		}
		if b.Derived {
			p.stats.results.Add(written)
		} else {
			p.stats.out.Add(written)
			if p.recorded(b.Trace).Flags&1 != 0 {
				p.stats.traced.Add(written)
			}
		}
		p.stats.latency.observe(time.Since(p.started).Nanoseconds()-b.Read, written)
		if err == nil {
			p.debugBatch("batch written", b)
		} else {
			msg := fmt.Sprintf("sink write failed after %d attempts: %v", p.maxRetries+1, err)
			p.noteError(msg)
			var eb message.ErrorBatch
			if !b.Derived {
				eb.Records = len(failed) // results of a stateful stage are not records
			}
			eb.Events = make([]message.ErrorEvent, len(failed))
			var payload []byte
			for j, i := range failed {
				if _, known := s.sources.encs[b.SourceName()]; known {
					payload = s.sources.encode(payload[:0], b.SourceName(), b.Rows[i])
				} else {
					payload = s.enc.Encode(payload[:0], b.Rows[i])
				}
				eb.Events[j] = message.NewErrorEvent(b, "sink", b.Coordinates(i), payload[:len(payload)-1], msg)
			}
			span.failed(len(failed), eb.Events)
			span.fail(err)
			p.handle(ctx, eb, b.Root)
		}
	}
	if ctx.Err() != nil || p.err() != nil {
		return // a failed or aborted run acknowledges nothing more
	}
	if ps, ok := p.sink.(connector.ProgressSink); ok {
		ps.Handled(b, b.DeferredAck())
		return
	}
	b.Ack()
}

// writeWithRetry writes b, retrying with exponential backoff, and returns
// the attempts made and, when it gives up, the indexes of the rows not
// written. A retry writes only the rows the last attempt did not, when the
// sink says which (connector.RowsError): the others must not be written
// twice, nor after later rows of their key.
// first, if not nil, gives the outcome of the first attempt instead of a
// call to Write.
func (s *sinkStage) writeWithRetry(ctx context.Context, b *message.Batch, first func() error) (attempts int, failed []int, err error) {
	p := s.p
	wait := p.backoff
	cur := b     // what the next attempt writes: b, or its rows in failed
	failed = nil // nil: all of b's rows
	defer func() {
		if err != nil && failed == nil {
			failed = make([]int, b.Len())
			for i := range failed {
				failed[i] = i
			}
		}
	}()
	for attempt := 1; ; attempt++ {
		if attempt == 1 && first != nil {
			err = first()
		} else if err = ctx.Err(); err == nil {
			err = p.sink.Write(ctx, cur)
		} else {
			return attempt, failed, err // aborted: nothing more is written
		}
		if err == nil {
			return attempt, nil, nil
		}
		var rows *connector.RowsError
		if errors.As(err, &rows) && len(rows.Rows) > 0 && len(rows.Rows) < cur.Len() {
			// Some rows were written: they leave the batch.
			narrowed := make([]int, len(rows.Rows))
			for i, r := range rows.Rows {
				narrowed[i] = r
				if failed != nil {
					narrowed[i] = failed[r]
				}
			}
			failed = narrowed
			cur = s.rowsOf(b, failed)
		}
		if attempt > p.maxRetries {
			return attempt, failed, err
		}
		p.stats.retries.Add(1)
		p.log.LogAttrs(ctx, slog.LevelWarn, "sink write failed, retrying",
			append(batchAttrs(b), slog.Int("attempt", attempt), slog.Int("maxRetries", p.maxRetries),
				slog.Int("rows", cur.Len()), slog.Duration("backoff", wait), slog.String("error", err.Error()))...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, failed, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// rowsOf returns the stage's retry batch, filled to stand for b with only
// the given rows of it. One is enough: a stage retries one batch at a time,
// and a sink keeps nothing of a batch once its Write returned.
func (s *sinkStage) rowsOf(b *message.Batch, rows []int) *message.Batch {
	if s.retry == nil {
		s.retry = new(message.Batch)
	}
	out := s.retry
	out.Reset(b.Width())
	out.CopyHeader(b)
	out.Errors = message.ErrorBatch{} // b's, handled with b
	for _, i := range rows {
		copy(out.Append(b.Offsets[i]), b.Rows[i])
	}
	return out
}

// writeHold stops an AsyncSink's writes from starting after one failed,
// until every write started before is settled: retried rows must not land
// after later rows of their key.
type writeHold struct {
	mu      sync.Mutex
	on      bool
	settled chan struct{} // closed when the hold is lifted
	pending int           // writes started and not yet finished
}

// fail puts the hold on; the writes pending lift it as they finish.
func (h *writeHold) fail() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on {
		h.on, h.settled = true, make(chan struct{})
	}
}

// start waits until no hold is on, then counts a write as started. It
// reports false when ctx ended first.
func (h *writeHold) start(ctx context.Context) bool {
	h.mu.Lock()
	for h.on {
		settled := h.settled
		h.mu.Unlock()
		select {
		case <-settled:
		case <-ctx.Done():
			return false
		}
		h.mu.Lock()
	}
	h.pending++
	h.mu.Unlock()
	return true
}

// finish counts a started write as finished, and lifts the hold once none
// is pending.
func (h *writeHold) finish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending--
	if h.on && h.pending == 0 {
		h.on = false
		close(h.settled)
	}
}
