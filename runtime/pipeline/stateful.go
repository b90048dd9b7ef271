package pipeline

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// statefulStage runs a plan's stateful operator: it tracks the watermark of
// every partition, feeds the operator, applies HAVING and the select list to
// what it emits, and holds each input batch's acknowledgement until the
// results derived from it are emitted.
type statefulStage struct {
	p    *Pipeline
	op   streamop.Stateful
	post streamop.Operator
	// rereads are the table partitions read again from their start in
	// every run (rereadTables): a checkpoint's offsets of them skip
	// nothing.
	rereads map[*message.Origin]bool
	in      failures // error events of input rows
	out     failures // error events of emitted rows
	marks   watermarks
	// spare recycles the rows of released acknowledgements.
	spare [][]rowMark
	// held are the acknowledgements not yet released, per origin in order,
	// each with the latest event time of its batch.
	held map[*message.Origin][]heldAck
	// raw collects the operator's rows; next is the batch being built for
	// the sink, with the acknowledgements and error events to go with it.
	raw, next *message.Batch
	// links are the traced input batches since the last results, at most
	// maxSpanLinks, which the results' spans link to; inputs counts them
	// all. linked says results were traced with them: they are forgotten
	// once the last batch of those results is sent.
	links  []trace.Link
	inputs int
	linked bool
	// sending is the time spent sending results on since the input batch
	// came: the wait for the sink, not the stage's own work.
	sending time.Duration
	// With checkpoints (spec.state): absorbed is the offset of the last
	// record of each partition the state holds, skip the offsets up to
	// which a restored state holds a partition's records already.
	absorbed, skip map[*message.Origin]int64
	// readerState is the reader state (message.Header.ReaderState) as of
	// each partition's absorbed offset, which its checkpoints keep.
	readerState    map[*message.Origin][]byte
	lastCheckpoint time.Time
	nextCheckpoint uint64 // the last ID taken
	// The chain of checkpoints that restores the state as of the last
	// one: how many, the bytes of the whole one, of all; and those of the
	// last delta. wholeRows is the state's size (Stateful.Size) when the
	// whole one was taken.
	chainLen                           int
	wholeBytes, chainBytes, deltaBytes int
	wholeRows                          int
	// owned are the partitions whose state the stage holds, for a query
	// on several engines, whose state moves with its partitions.
	owned map[*message.Origin]*ownedPartition
	// seen, for the part of a repartitioned query after the repartition,
	// tells rows written again upstream; nil otherwise.
	seen *upstreamSeen
	// rewinds is the pipeline's rewinds the stage has followed.
	rewinds uint64
	// round is the last round of the set's transaction checkpointed at
	// (Pipeline.round); roundDue says the next checkpoint is its.
	round    uint64
	roundDue bool
}

// roundLook is how often a stage that checkpoints at its set's rounds
// looks for a round's end.
const roundLook = 10 * time.Millisecond

// maxSpanLinks bounds the links of a results span: a minute's window over
// a busy stream aggregates thousands of batches.
const maxSpanLinks = 128

type heldAck struct {
	ack    message.Ack
	maxEvt int64
	gen    uint64
	// rows are the event times and offsets of the batch's rows that went
	// into the operator, in offset order, and done how many of them an
	// acknowledgement covers already: a batch is acknowledged in part when
	// its first rows' results are out, so that a partition that moves
	// replays as few records as it can.
	rows []rowMark
	done int
}

type rowMark struct{ ts, off int64 }

func (p *Pipeline) newStatefulStage() *statefulStage {
	opts := streamop.StatefulOptions{AllowedLateness: p.allowedLateness, Clock: p.clock, MaxRows: p.batchSize}
	if st := p.spec.State; st != nil && st.TTL != nil {
		opts.TTL = st.TTL.Duration
	}
	if ei := p.spec.Runtime.EmitInterval; ei != nil {
		opts.EmitInterval = ei.Duration
	}
	rereads := p.rereadTables()
	opts.RereadTables = map[string]bool{}
	for o := range rereads {
		opts.RereadTables[o.Source] = true
	}
	s := &statefulStage{p: p, op: p.prog.NewStateful(opts), post: p.prog.NewPost(), held: map[*message.Origin][]heldAck{}, rereads: rereads}
	s.in = p.inputFailures()
	// The operator's rows have no origin: the encoder of the plan's source
	// is the one that names their columns.
	s.out = failures{encs: map[string]*format.JSONEncoder{p.prog.Source: format.NewJSONEncoder(value.Names(p.prog.StatefulColumns()))}, fallback: p.prog.Source}
	s.marks = newWatermarks(p.readers, p.timing, time.Now())
	s.marks.shared = p.spec.SeveralEngines()
	for source, t := range p.eventTimes {
		if t < 0 {
			// A table joined as read: its rows have no time to wait for.
			s.marks.timeless[source] = true
		}
	}
	if l, ok := s.op.(tableLoader); ok {
		origins := make([]*message.Origin, len(p.readers))
		for i, r := range p.readers {
			origins[i] = r.Origin()
		}
		l.Begin(origins)
	}
	s.newBatches()
	s.absorbed, s.skip = map[*message.Origin]int64{}, map[*message.Origin]int64{}
	s.readerState = map[*message.Origin][]byte{}
	s.owned = map[*message.Origin]*ownedPartition{}
	if p.readsRepartition() {
		s.seen = newUpstreamSeen(p.prog.Sources(), p.inputs)
	}
	if c := p.ckpt; c != nil {
		now := time.Now()
		s.lastCheckpoint, s.nextCheckpoint = now, c.last.LastID
		if c.restored != nil {
			if err := s.restore(c.restored, now); err != nil {
				p.fatal(fmt.Errorf("spec.state: restoring: %w", err))
			} else {
				p.log.Info("state restored from a checkpoint", "checkpoint", c.restored.Last().ID, "taken", c.restored.Last().Created,
					"deltas", len(c.restored)-1, "groups", s.op.Size(), "store", c.store.Describe())
			}
		}
	}
	return s
}

func (s *statefulStage) newBatches() {
	s.raw = s.p.pool.Get(s.p.prog.StatefulWidth())
	s.next = s.p.pool.Get(s.p.prog.OutputWidth())
	s.next.Derived = s.p.prog.Aggregates()
	s.next.MaxEventTime = math.MinInt64
	s.next.ID = s.p.nextBatch.Add(1)
	s.next.CorrelationID = s.p.runID + "-" + strconv.FormatUint(s.next.ID, 10)
}

// batch takes an input batch and emits the results it completes; false
// means the run is ending.
func (s *statefulStage) batch(b *message.Batch, now time.Time, emit emitFunc) bool {
	start := time.Now()
	defer s.p.pool.Put(b) // the operator keeps copies of what it holds
	processed, due := s.process(b, now)
	if b.EndRoot != nil {
		b.EndRoot() // the batch's way ends in the state, before its results go on
	}
	if !due {
		return true
	}
	n := b.Len()
	s.sending = 0
	ok := s.advance(now, b.Read, emit)
	if processed {
		s.p.observer.ObserveBatch(StageProcess, time.Since(start)-s.sending, n, s.p.recorded(s.next.Trace))
	}
	return ok
}

// process feeds an input batch to the operator and holds its
// acknowledgement; processed says it did. due says whether the watermark
// moves on and results are due: not for a batch the restored state holds
// already, but for one read before its partition moved away, which is
// dropped.
func (s *statefulStage) process(b *message.Batch, now time.Time) (processed, due bool) {
	if b.Origin != nil && b.Generation != b.Origin.Generation.Load() {
		// Read before its partition moved to another engine, which reads
		// these records again.
		s.p.stats.revoked.Add(int64(b.Len() + b.Errors.Records))
		return false, true
	}
	if c := s.p.ckpt; c != nil && c.partitions != nil && b.Origin != nil {
		if _, err := s.takeOver(b.Origin, b.Generation, now); err != nil {
			s.p.fatal(fmt.Errorf("spec.state: restoring: %w", err))
			return false, false
		}
	}
	if !s.dropRestored(b) {
		return false, false // read again after a restart: the restored state has it
	}
	if s.seen != nil {
		s.p.stats.restored.Add(int64(s.seen.drop(b)))
	}
	if b.Origin != nil {
		s.absorbed[b.Origin] = b.LastOffset
		if b.ReaderState != nil {
			s.readerState[b.Origin] = b.ReaderState
		}
	}
	// Lateness is judged against the watermark from before this batch.
	s.marks.arrive(b.Origin, b.MaxEventTime, b.Generation, now)
	// The input's error events go on now; its acknowledgement waits.
	s.next.Errors.Events = append(s.next.Errors.Events, b.Errors.Events...)
	s.next.Errors.Records += b.Errors.Records
	s.in.out = s.next
	if f, ok := s.op.(streamop.Filterer); ok {
		s.p.stats.filtered.Add(int64(f.Filter(b, &s.in)))
	}
	if s.p.lateToPolicy {
		s.lateToPolicy(b)
	}
	late, absorbed := s.op.Process(b, s.raw, &s.marks, &s.in)
	s.marks.progress(b.Origin, b.MaxEventTime)
	st := &s.p.stats
	st.late.Add(int64(late))

	if s.p.prog.Aggregates() {
		st.aggregated.Add(int64(absorbed))
	}
	// With checkpoints, a checkpoint acknowledges the partitions; without,
	// each batch is acknowledged once the results of its rows are out.
	if a, ok := message.AckOf(b); ok && s.p.ckpt == nil {
		h := heldAck{ack: a, maxEvt: b.MaxEventTime, gen: b.Generation}
		if p, ok := s.op.(interface{ ProcessedAt() int64 }); ok && s.p.prog.ProcTime() {
			// Its rows are in the windows of the time they were processed.
			h.maxEvt = p.ProcessedAt()
		}
		if n := len(s.spare); n > 0 {
			h.rows, s.spare = s.spare[n-1][:0], s.spare[:n-1]
		}
		if t := s.p.eventTimes[b.SourceName()]; t >= 0 {
			for i, row := range b.Rows {
				if v := row[t]; !v.IsNull() {
					// A repartitioned batch's MaxEventTime is the upstream
					// partitions' progress, not its rows' latest.
					h.maxEvt = max(h.maxEvt, v.Nanos())
					h.rows = append(h.rows, rowMark{ts: v.Nanos(), off: b.Offsets[i]})
				}
			}
		}
		s.held[b.Origin] = append(s.held[b.Origin], h)
	}
	s.inputs++
	if tc := s.p.recorded(b.Trace); tc.Flags&1 != 0 && len(s.links) < maxSpanLinks {
		s.links = append(s.links, trace.Link{SpanContext: spanContext(tc)})
	}
	return true, true
}

// end is the end of the input; false means the run is ending. If every
// partition ended, the watermark is the end of time and every window
// closes. After a stop it is not: open windows stay unwritten, their
// records unacknowledged, so a successor reads them again and writes the
// windows whole, where closing them now would write them with part of
// their rows.
func (s *statefulStage) end(emit emitFunc) bool { return s.advanceByClock(time.Now(), emit) }

// advanceByClock advances when no input batch arrived: at a tick, at the end
// of a partition or of the input. What it completes became due now. false
// means the run is ending.
func (s *statefulStage) advanceByClock(now time.Time, emit emitFunc) bool {
	return s.advance(now, now.Sub(s.p.started).Nanoseconds(), emit)
}

// advance moves the watermark, emits what it completes, releases the
// acknowledgements it can and sends the batches for the sink. read is
// when the input that made its results due left its source (nanoseconds
// into the run): a result's latency is counted from then, so it measures
// the engine, not the wait for a window to close. An operator with more
// to write than a batch holds (a window's close, an emit interval's
// changes) writes a batch's worth at a time (StatefulOptions.MaxRows):
// each goes on before it writes more, so memory holds a batch of results,
// not all of them, and the acknowledgements go with the last. false means
// the run is ending.
func (s *statefulStage) advance(now time.Time, read int64, emit emitFunc) bool {
	wm := s.marks.advance(now)
	for {
		s.p.stats.revoked.Add(int64(s.op.Advance(&s.marks, s.raw, s.fail)))
		if s.raw.Len() < s.p.batchSize {
			break
		}
		s.postProcess()
		if !s.send(now, read, emit) {
			return false
		}
	}
	if m, ok := s.op.(mover); ok {
		if err := m.Moved(); err != nil {
			s.p.fatal(err)
		}
	}
	if wm != math.MaxInt64 { // the end of input is not a time to report
		s.p.stats.watermark.Store(wm)
	}
	s.p.stats.stateRows.Store(int64(s.op.Size()))
	if e, ok := s.op.(streamop.Expirer); ok {
		s.p.stats.expiredGroups.Store(e.Expired())
	}
	s.postProcess()
	// Everything before the operator's low mark has had its results
	// emitted: those batches may be acknowledged, in order per origin.
	low := s.op.Low()
	for o, q := range s.held {
		i := 0
		for ; i < len(q); i++ {
			h := &q[i]
			if h.gen != o.Generation.Load() {
				// From before the partition moved: its new owner's to give.
			} else if h.maxEvt < low {
				s.next.Acks = append(s.next.Acks, h.ack)
			} else {
				k := h.done
				for k < len(h.rows) && h.rows[k].ts < low {
					k++
				}
				// Rows of one record share its offset (a repartition
				// topic's): its offset is handled once all of them are.
				for k > h.done && k < len(h.rows) && h.rows[k].off == h.rows[k-1].off {
					k--
				}
				if k > h.done {
					part := h.ack
					part.LastOffset = h.rows[k-1].off
					s.next.Acks = append(s.next.Acks, part)
					h.done = k
				}
				break
			}
			s.spare = append(s.spare, h.rows)
		}
		s.held[o] = q[:copy(q, q[i:])]
	}
	ok := s.send(now, read, emit)
	if s.linked {
		s.links, s.inputs, s.linked = s.links[:0], 0, false
	}
	return ok
}

// postProcess applies HAVING and the select list to the operator's rows.
func (s *statefulStage) postProcess() {
	if s.raw.Len() == 0 {
		return
	}
	s.out.out = s.next
	records := s.next.Errors.Records
	dropped := s.post.Process(s.raw, s.next, &s.out)
	if s.p.prog.Aggregates() {
		// A result row HAVING or the select list drops or fails on is
		// not a record read: it is neither filtered nor failed.
		s.next.Errors.Records = records
	} else {
		s.p.stats.filtered.Add(int64(dropped)) // rows of moving aggregates are records
	}
	s.raw.Reset(s.p.prog.StatefulWidth())
}

// send emits the batch for the sink, unless it holds nothing, and starts
// the next; false means the run is ending.
func (s *statefulStage) send(now time.Time, read int64, emit emitFunc) bool {
	out := s.next
	if out.Len() == 0 && len(out.Acks) == 0 && out.Errors.Records == 0 && len(out.Errors.Events) == 0 {
		return true
	}
	out.Read = read
	s.trace(out, now)
	s.p.pool.Put(s.raw)
	s.newBatches()
	start := time.Now()
	ok := emit(message.Message{Kind: message.KindBatch, Batch: out})
	s.sending += time.Since(start)
	return ok
}

// trace gives out, results about to go to the sink, a trace of its own:
// the root span stateful.emit, linked to the input batches whose records
// they aggregate (rather than a child of one of them, which ended long
// before), with the exception events of the results that failed. Without
// tracing, a random context stands in so that logs and dead letters
// correlate.
func (s *statefulStage) trace(out *message.Batch, now time.Time) {
	// The events without a trace context are the results' own: inputs'
	// carry their batch's.
	var own []message.ErrorEvent
	for _, ev := range out.Errors.Events {
		if ev.Traceparent == "" {
			own = append(own, ev)
		}
	}
	if out.Len() == 0 && len(own) == 0 {
		return // acknowledgements and input errors only: nothing of its own to trace
	}
	span := s.p.startSpan("stateful.emit", message.TraceContext{}, now, trace.SpanKindInternal, s.links...)
	out.Trace = span.context(randomTrace())
	span.failed(len(own), own)
	// The results' root, ended once the sink has written them.
	span.root(out, out.Len(), attribute.Int("sluice.inputs", s.inputs), attribute.Int("sluice.links", len(s.links)))
	for i := range out.Errors.Events {
		if ev := &out.Errors.Events[i]; ev.Traceparent == "" {
			ev.Traceparent = out.Trace.Traceparent()
		}
	}
	s.linked = true
}

// lateToPolicy takes the late rows out of b and makes each an error event of
// stage late, for the error policy, instead of a count.
func (s *statefulStage) lateToPolicy(b *message.Batch) {
	t := -1
	if b.Origin != nil && !s.p.tables[b.SourceName()] {
		t = s.p.eventTimes[b.SourceName()] // a table's rows are versions, never late
	}
	if t < 0 {
		return
	}
	watermark := streamop.Behind(s.marks.For(b.Origin), s.p.allowedLateness)
	kept := 0
	for i, row := range b.Rows {
		if v := row[t]; !v.IsNull() && v.Nanos() < watermark {
			s.in.Fail(b, i, "late", fmt.Errorf("event time %s is behind the watermark %s", v, value.TimestampValue(watermark)))
			continue
		}
		b.Rows[kept], b.Offsets[kept] = row, b.Offsets[i]
		kept++
	}
	b.Rows, b.Offsets = b.Rows[:kept], b.Offsets[:kept]
}

// mover is a stateful operator whose state cannot follow a partition that
// moves to another engine: Moved says one did.
type mover interface {
	Moved() error
}

// tableLoader is a stateful operator that reads a table source to its end,
// or to where it ended when it opened, before it joins streams with it.
type tableLoader interface {
	Begin(origins []*message.Origin)
	Loaded(o *message.Origin)
}

// ended notes the end of partition o.
func (s *statefulStage) ended(o *message.Origin) {
	s.marks.ended(o)
	s.loaded(o)
}

// loaded notes that partition o of a table holds what it held when its
// source opened.
func (s *statefulStage) loaded(o *message.Origin) {
	if l, ok := s.op.(tableLoader); ok {
		l.Loaded(o)
	}
}

// fail turns a result the operator could not compute into an error event.
func (s *statefulStage) fail(err error) {
	if !s.p.prog.Aggregates() {
		// A moving aggregate's failure is one input row, dropped; the
		// error policy accounts for it. A window's result is not a record.
		s.next.Errors.Records++
	}
	s.next.Errors.Events = append(s.next.Errors.Events, message.ErrorEvent{
		CorrelationID: s.next.CorrelationID, Stage: "aggregate", Error: err.Error(),
		Source: message.Coordinates{Source: s.p.prog.Source, Offset: -1},
	})
}

// take implements stage.
func (s *statefulStage) take(_ context.Context, m message.Message, emit emitFunc) bool {
	if !s.followRewind(emit) {
		return false
	}
	switch m.Kind {
	case message.KindEndOfStream:
		s.ended(m.Origin)
		return s.advanceByClock(time.Now(), emit)
	case message.KindLoaded:
		s.loaded(m.Origin)
		return s.advanceByClock(time.Now(), emit)
	case message.KindBatch:
		now := time.Now()
		if !s.batch(m.Batch, now, emit) {
			return false
		}
		if s.checkpointDue(now) {
			return s.checkpoint(now, emit)
		}
	}
	return true
}

// interval implements ticker: how often the watermark is looked at again,
// so that partitions that went idle stop holding it back.
func (s *statefulStage) interval() time.Duration {
	d := min(max(s.marks.shortestIdle()/4, 10*time.Millisecond), time.Second)
	if s.p.ckpt != nil {
		d = min(d, s.p.ckpt.every)
	}
	if s.p.round != nil {
		// A round's end waits for this stage's checkpoint, and its source
		// reads nothing meanwhile: no batch comes to look for it.
		d = min(d, roundLook)
	}
	return d
}

// tick implements ticker.
func (s *statefulStage) tick(_ context.Context, now time.Time, emit emitFunc) bool {
	if !s.followRewind(emit) || !s.advanceByClock(now, emit) {
		return false
	}
	return !s.checkpointDue(now) || s.checkpoint(now, emit)
}

// followRewind tells the sink stage, once, that an aborted exactly-once
// transaction took the partitions back to their last commit. Their
// generations changed before it counted, so from here on the state of
// the batches read before is not current, never emitted nor checkpointed,
// and each partition's next batch restores its last committed checkpoint:
// what the stage sent since the abort came from that state, and the sink
// drops it up to this message.
func (s *statefulStage) followRewind(emit emitFunc) bool {
	n := s.p.rewinds.Load()
	if n == s.rewinds {
		return true
	}
	s.rewinds = n
	if !emit(message.Message{Kind: message.KindRewound}) {
		return false
	}
	// Each partition's state as of its last commit, now: a partition with
	// no record after its commit would otherwise hold only state of the
	// earlier generation, never emitted, until a record came.
	now := time.Now()
	committed := int64(math.MaxInt64)
	for o := range s.owned {
		if o.Away.Load() {
			continue // taken away: its new owner restores it
		}
		c, err := s.takeOver(o, o.Generation.Load(), now)
		if err != nil {
			s.p.fatal(fmt.Errorf("spec.state: restoring after an aborted transaction: %w", err))
			return false
		}
		if c != nil {
			committed = min(committed, c.Watermark)
		}
	}
	// The watermark goes back with the state: the rows that moved it on
	// since the commit are read again. Kept, it would go into the next
	// checkpoints, and a partition's next owner would drop those rows as
	// late.
	if committed == math.MaxInt64 {
		committed = math.MinInt64
	}
	s.marks.current = committed
	return true
}

// finish implements stage.
func (s *statefulStage) finish(ctx context.Context, emit emitFunc) {
	if f, ok := s.op.(streamop.Flusher); ok {
		f.Flush() // what the emit interval holds back is written at the end
	}
	if ctx.Err() == nil && s.followRewind(emit) && s.end(emit) && s.p.ckpt != nil && s.p.err() == nil {
		// The state at the end of the input, or at a stop: a restart goes
		// on from exactly here.
		s.checkpoint(time.Now(), emit)
	}
	s.p.pool.Put(s.raw)
	s.p.pool.Put(s.next)
}
