package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// A statement set (spec.statements) runs as one pipeline per statement,
// each a whole pipeline of its own query and sink, behind a pipeline that
// reads and decodes the sources once: its readers' batches go to a tee
// reader of each statement that reads their source, which copies them
// into the statement's own batches. A record's acknowledgement reaches its
// source once every statement that reads it has acknowledged it, so that
// an offset is committed only when each statement has written or handled
// what came of the record. The statements share the dead-letter sink.

// newSet opens the sources of a statement set once and builds the pipeline
// of each statement over them.
func newSet(spec *v1alpha1.StreamQuerySpec, stmts []compile.Statement, schemas map[string][]value.Column, opts Options) (*Pipeline, error) {
	if opts.Sink != nil {
		return nil, errors.New("pipeline: Options.Sink replaces the sink of a query; a statement set's are replaced by Options.Sinks")
	}
	set := &Pipeline{
		spec:     spec,
		inputs:   schemas,
		log:      opts.Logger,
		stop:     make(chan struct{}),
		started:  time.Now(),
		strategy: spec.ErrorPolicy.Strategy,
		observer: opts.Observer, // the read stage's, once a batch read
		tables:   map[string]bool{},
	}
	if set.log == nil {
		set.log = slog.New(slog.DiscardHandler)
	}
	if set.observer == nil {
		set.observer = noObserver{}
	}
	set.stats.watermark.Store(math.MinInt64)
	rt := spec.Runtime
	set.capacity, set.batchSize = int(rt.ChannelCapacity), int(rt.BatchSize)
	set.linger, set.shutdownTimeout = rt.BatchLinger.Duration, rt.ShutdownTimeout.Duration
	for _, src := range spec.Sources {
		if src.Table != nil {
			set.tables[src.Name] = true
		}
	}
	set.runID = newRunID()
	widest := 0
	for _, cols := range schemas {
		widest = max(widest, len(cols))
	}
	set.pool.MaxValues = 2 * set.batchSize * widest

	// The sources any statement reads, each once, decoding the columns any
	// of them reads.
	var names []string
	stateful := false
	reads := map[string][]bool{}
	all := map[string]bool{}
	for _, st := range stmts {
		stateful = stateful || st.Prog.Stateful()
		r := readColumns(st.Spec, st.Prog, schemas)
		for _, name := range st.Prog.Sources() {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
			read, some := r[name]
			switch {
			case !some || all[name]:
				all[name] = true
				delete(reads, name)
			case reads[name] == nil:
				reads[name] = slices.Clone(read)
			default:
				for i, v := range read {
					reads[name][i] = reads[name][i] || v
				}
			}
		}
	}
	reg := opts.registry()
	set.readers = opts.Readers
	if opts.Readers != nil && spec.ExactlyOnceSink() != nil {
		return set.fail(stmts, opts, errors.New("pipeline: a statement set with exactly-once statements opens its sources, whose transaction they write in; Options.Readers replaces them"))
	}
	// The transaction of a set with statements that write exactly once
	// (ExactlyOnceSink): its source commits the offsets in it once every
	// statement has written or handled the records (the gathered
	// acknowledgements), and those statements' sinks and the dead letters
	// write in it. The others' sinks write at least once.
	var txn connector.Transaction
	// With spec.state, its stateful statements checkpoint at the end of
	// each transaction, which waits for them (RoundTransaction): the
	// source is told how many before it opens, and each is given it below.
	atRounds := func(st compile.Statement) bool {
		return spec.State != nil && spec.ExactlyOnceSink() != nil && st.Prog.Stateful()
	}
	roundCheckpoints := 0
	for _, st := range stmts {
		if atRounds(st) {
			roundCheckpoints++
		}
	}
	for _, name := range names {
		if opts.Readers != nil {
			break // the caller's
		}
		env := connector.SourceEnv{
			Query: spec, Source: sourceNamed(spec, name), Columns: schemas[name], Stateful: stateful,
			Group: opts.Group, Instance: opts.Instance, StaticMembership: opts.StaticMembership,
			Logger: set.log, Read: reads[name],
			// What the statements acknowledged of the records read again
			// says nothing of them now.
			Aborted:          set.forgetAcks,
			RoundCheckpoints: roundCheckpoints,
		}
		opened, err := reg.OpenSource(env)
		if err != nil {
			return set.fail(stmts, opts, err)
		}
		set.sources = append(set.sources, opened)
		set.readers = append(set.readers, opened.Readers()...)
		txn = firstTransaction(txn, opened)
	}
	if set.strategy == v1alpha1.DeadLetter {
		dlq := opts.DeadLetter
		if dlq == nil {
			opened, err := reg.OpenDeadLetter(connector.SinkEnv{Spec: spec.ErrorPolicy.DeadLetter, Transaction: txn, Logger: set.log})
			if err != nil {
				return set.fail(stmts, opts, err)
			}
			dlq = opened
		}
		set.dlq = &sharedDeadLetter{sink: dlq}
	}
	set.pool.Keep = len(set.readers) * (2 + set.capacity)

	// Each reader's acknowledgements reach its origin once every
	// statement that reads its source has given its own.
	set.committed = make([]*message.Committed, len(set.readers))
	readersOf := map[string][]int{}
	for i, r := range set.readers {
		o := r.Origin()
		readersOf[o.Source] = append(readersOf[o.Source], i)
		c := new(message.Committed)
		set.committed[i] = c
		next := o.Acked
		statements := 0
		for _, st := range stmts {
			if slices.Contains(st.Prog.Sources(), o.Source) {
				statements++
			}
		}
		gather := newAckGather(statements, func(a message.Ack) {
			c.Ack(a)
			if next != nil {
				next(a)
			}
		})
		set.gathersMu.Lock()
		set.gathers = append(set.gathers, gather)
		set.gathersMu.Unlock()
		o.Acked = gather.add
	}

	for _, st := range stmts {
		part := &statement{name: st.Name}
		for _, name := range st.Prog.Sources() {
			// The statements before it that read the source.
			before := 0
			for _, p := range set.parts {
				if slices.Contains(p.sources, name) {
					before++
				}
			}
			for _, i := range readersOf[name] {
				t := &teeReader{
					from: set.readers[i], part: part, statement: before,
					// Decode failures go to the first statement that
					// reads their source alone, which hands them to the
					// error policy once.
					errors: before == 0,
					in:     newEdge[teeItem](set, fmt.Sprintf("%s-%d->%s", name, set.readers[i].Origin().Partition, st.Name), set.capacity, true),
					gather: set.gathers[i], gone: make(chan struct{}),
				}
				part.tees = append(part.tees, t)
			}
			part.sources = append(part.sources, name)
		}
		popts := opts
		popts.Readers = make([]connector.Reader, len(part.tees))
		for i, t := range part.tees {
			popts.Readers[i] = t
		}
		popts.DeadLetter = set.dlq
		popts.Sink = opts.Sinks[st.Name]
		popts.statement = st.Name
		if k := st.Spec.Sink.Kafka; k != nil && k.Delivery == v1alpha1.ExactlyOnce {
			popts.transaction = txn
		}
		if atRounds(st) {
			r, ok := txn.(connector.RoundTransaction)
			if !ok {
				return set.fail(stmts, opts, fmt.Errorf("statement %s: its state is checkpointed at the set's transactions, which its source does not commit in rounds", st.Name))
			}
			popts.round = r
		}
		if opts.Logger != nil {
			popts.Logger = opts.Logger.With("statement", st.Name)
		}
		p, err := build(st.Spec, st.Prog, schemas, popts, nil)
		if err != nil {
			return set.fail(stmts, opts, fmt.Errorf("statement %s: %w", st.Name, err))
		}
		part.p = p
		set.parts = append(set.parts, part)
	}
	set.seekRestoredSet()
	return set, nil
}

// statementOf returns the number of r's statement among those reading its
// origin (message.Header.Statement): 0 but for a tee reader.
func statementOf(r connector.Reader) int {
	if t, ok := r.(*teeReader); ok {
		return t.statement
	}
	return 0
}

// seekRestoredSet starts each partition the set's readers can start after an
// offset (files, generators) after the least of the offsets its
// statements' restored states hold, if each that reads it restored one:
// each statement's stateful stage drops what it reads again that its
// state holds. A table is read again whole, as its statements do not
// checkpoint a table they read through tee readers (rereadTables).
func (p *Pipeline) seekRestoredSet() {
	for _, r := range p.readers {
		sk, ok := r.(connector.Seeker)
		if !ok || p.tables[r.Origin().Source] {
			continue
		}
		from, all := int64(math.MaxInt64), true
		for _, part := range p.parts {
			if !slices.Contains(part.sources, r.Origin().Source) {
				continue
			}
			off, restored := part.p.restoredOffset(r.Origin())
			all = all && restored
			from = min(from, off)
		}
		if all && from != math.MaxInt64 && from >= 0 {
			sk.SkipThrough(from)
		}
	}
}

// statement is one statement of a set: its pipeline and the tee readers
// that feed it.
type statement struct {
	name    string
	p       *Pipeline
	sources []string
	tees    []*teeReader
	// ended counts its tee readers whose input ended or stopped; when the
	// last one has, a stop of the set stops the statement, which then
	// drains what it holds.
	ended atomic.Int32
	// waiting counts the records of batches in its tee readers' edges.
	waiting atomic.Int64
}

// fail closes what newSet opened, and the sinks opts gave the statements
// not built, for a set that does not run, and returns err.
func (p *Pipeline) fail(stmts []compile.Statement, opts Options, err error) (*Pipeline, error) {
	for _, part := range p.parts {
		part.p.close()
	}
	for _, st := range stmts[len(p.parts):] {
		if s := opts.Sinks[st.Name]; s != nil {
			s.Close()
		}
	}
	p.closeReaders()
	if p.dlq != nil {
		p.dlq.(*sharedDeadLetter).sink.Close()
	}
	return nil, err
}

// ackGather passes on an origin's acknowledgements as far as each of the
// statements reading it has given them: the least offset they all
// acknowledged. A statement may acknowledge a batch in parts (a stateful
// stage's rows below its low mark), and its acknowledgements' offsets
// only grow within a generation of the origin; those of an earlier one
// say nothing of the reading since it moved. It passes them on in order,
// under its lock.
type ackGather struct {
	mu   sync.Mutex
	pass func(message.Ack)
	gen  uint64
	// upTo is, by statement, the last offset it acknowledged in gen;
	// none is math.MinInt64.
	upTo []int64
	// gone are the statements that no longer read the origin.
	gone []bool
	sent int64 // the offset passed on in gen
}

func newAckGather(statements int, pass func(message.Ack)) *ackGather {
	g := &ackGather{pass: pass, upTo: make([]int64, statements), gone: make([]bool, statements)}
	g.reset(0)
	return g
}

func (g *ackGather) reset(gen uint64) {
	g.gen, g.sent = gen, math.MinInt64
	for i := range g.upTo {
		g.upTo[i] = math.MinInt64
	}
}

// forget forgets the acknowledgements of the generation: the records
// they were of are read again.
func (g *ackGather) forget() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reset(g.gen)
}

// forgetAcks forgets what the statements acknowledged of every origin
// (connector.SourceEnv.Aborted).
func (p *Pipeline) forgetAcks() {
	p.gathersMu.Lock()
	defer p.gathersMu.Unlock()
	for _, g := range p.gathers {
		g.forget()
	}
}

// add takes a statement's acknowledgement (message.Origin.Acked).
func (g *ackGather) add(a message.Ack) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case a.Generation < g.gen:
		return
	case a.Generation > g.gen:
		g.reset(a.Generation)
	}
	g.upTo[a.Statement] = max(g.upTo[a.Statement], a.LastOffset)
	g.passOn(a)
}

// leave drops statement s: it reads the origin no more.
func (g *ackGather) leave(s int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gone[s] = true
	g.passOn(message.Ack{Generation: g.gen})
}

// passOn passes on a, with the least offset of the statements that read
// on, if it grew.
func (g *ackGather) passOn(a message.Ack) {
	low, reading := int64(math.MaxInt64), false
	for s, off := range g.upTo {
		if !g.gone[s] {
			low, reading = min(low, off), true
		}
	}
	if !reading || low == math.MinInt64 || low <= g.sent {
		return
	}
	g.sent = low
	a.LastOffset, a.Statement = low, 0
	g.pass(a)
}

// sharedDeadLetter is the set's dead-letter sink as each statement sees
// it: writes in turn, and closed by the set, after every statement.
type sharedDeadLetter struct {
	mu   sync.Mutex
	sink connector.DeadLetterSink
}

func (s *sharedDeadLetter) Write(ctx context.Context, events []message.ErrorEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sink.Write(ctx, events)
}

func (s *sharedDeadLetter) Close() error { return nil }

// teeItem is what a tee reader takes: a message of its source's reader,
// whose batch each statement that reads it copies.
type teeItem struct {
	kind  message.Kind
	batch *sharedBatch
}

// sharedBatch is a batch read once for several statements: the last to
// copy it returns it to the pool.
type sharedBatch struct {
	b    *message.Batch
	refs atomic.Int32
	pool *message.Pool
}

func (s *sharedBatch) release() {
	if s.refs.Add(-1) == 0 {
		s.pool.Put(s.b)
	}
}

// teeReader is a statement's reader of a source partition that the set
// reads: it takes the set's batches of the partition, in order, and
// copies them into the statement's. Its origin is the partition's, which
// the stateful stages read the generation of.
type teeReader struct {
	from connector.Reader
	part *statement
	in   *edge[teeItem]
	// statement numbers the statement among those reading the partition
	// (message.Header.Statement).
	statement int
	// errors says the statement hands the partition's decode failures to
	// the error policy: the first that reads it. The others acknowledge a
	// batch of failures alone at once.
	errors bool
	// checked says the statement's restored checkpoint was checked
	// against what the set committed (checkRestored).
	checked bool
	// gather is its origin's (ackGather).
	gather *ackGather
	// gone is closed when the statement reads the partition no more: it
	// stopped reading a table, or its run ended. The set then sends it
	// nothing, and gathers no acknowledgement of it.
	gone     chan struct{}
	goneOnce sync.Once
	stopped  atomic.Bool
}

// Origin implements connector.Reader.
func (t *teeReader) Origin() *message.Origin { return t.from.Origin() }

// errNoBatch is what a tee reader returns when it has no batch: the
// set's reading stopped, or ctx ended.
var errNoBatch = errors.New("no batch")

// Read implements connector.Reader: it takes the set's next batch of the
// partition into b, even an empty one (decode failures another statement
// handles), which its statement's pipeline passes on like any, so that
// its acknowledgement, and checkpoint, cover its offsets in order.
func (t *teeReader) Read(ctx context.Context, b *message.Batch, _ int, _ time.Duration, errs *message.ErrorBatch) error {
	var it teeItem
	var ok bool
	select {
	case it, ok = <-t.in.ch:
	case <-ctx.Done():
		return errNoBatch
	}
	switch {
	case !ok:
		// The set stopped reading: once each of the statement's readers
		// has, the statement drains and ends. In direct mode its one
		// goroutine goes on to its other readers.
		t.end()
		if !t.part.p.direct {
			<-ctx.Done()
		}
		return errNoBatch
	case it.kind == message.KindLoaded:
		return connector.ErrLoaded
	case it.kind == message.KindEndOfStream:
		t.end()
		return io.EOF
	}
	sb := it.batch
	defer sb.release()
	t.part.waiting.Add(-t.records(sb))
	if err := t.checkRestored(); err != nil {
		return err
	}
	copyBatch(b, sb.b)
	b.Statement = t.statement
	if t.errors {
		*errs = sb.b.Errors
		errs.Events = slices.Clone(sb.b.Errors.Events)
	}
	return nil
}

// checkRestored refuses, at the partition's first batch, a statement
// whose checkpoint restored when the run started is behind the set's
// committed offsets (see behind); on several engines, where a partition's
// state is restored when it is assigned, the stateful stage asks behind
// then.
func (t *teeReader) checkRestored() error {
	if t.checked {
		return nil
	}
	t.checked = true
	restored, ok := t.part.p.restoredOffset(t.from.Origin())
	if !ok {
		return nil
	}
	return t.behind(restored)
}

// behind refuses a statement whose restored checkpoint holds the
// partition's state only up to offset restored, before the one the set's
// group committed (a Kafka partition's): the others committed the records
// between without it (it was not in the set, or under another name), and
// its state would miss them. While it is in the set, the offsets committed
// wait for its checkpoints.
func (t *teeReader) behind(restored int64) error {
	h, ok := t.from.(handledReporter)
	if !ok {
		return nil
	}
	if handled, known := h.Handled(); known && handled > restored {
		o := t.from.Origin()
		return fmt.Errorf("the statement's checkpoint in %s holds the state of partition %d of source %s up to offset %d, but the set's offsets of it were committed up to %d without the statement (it was not in the set, or under another name), and its state would miss the records between; delete its checkpoints to start it from empty state",
			t.part.p.ckpt.store.Describe(), o.Partition, o.Source, restored, handled)
	}
	return nil
}

// checkBehind refuses, for a statement of a set, the state of origin o's
// partition restored up to offset restored when the set committed more
// of it without the statement (teeReader.behind).
func (p *Pipeline) checkBehind(o *message.Origin, restored int64) error {
	for _, r := range p.readers {
		if t, ok := r.(*teeReader); ok && t.from.Origin() == o {
			return t.behind(restored)
		}
	}
	return nil
}

// records returns the records of the set's batch sb, if any, that the
// statement counts: its rows, and its decode failures if it handles them.
func (t *teeReader) records(sb *sharedBatch) int64 {
	if sb == nil {
		return 0
	}
	n := sb.b.Len()
	if t.errors {
		n += sb.b.Errors.Records
	}
	return int64(n)
}

// end notes that this reader's input ended or stopped, and stops the
// statement when it was the last of its readers to.
func (t *teeReader) end() {
	if t.stopped.Swap(true) {
		return
	}
	if int(t.part.ended.Add(1)) == len(t.part.tees) {
		t.part.p.Stop()
	}
}

// Stop implements connector.Stopper: a statement stops reading a table
// partition once its streams ended (in direct mode, once it loaded); the
// set's reader reads on for the other statements. For the statement, the
// partition has ended.
func (t *teeReader) Stop() {
	t.leave(true)
	t.end()
}

// leave detaches the reader from the set: the set sends it nothing more
// and what it holds is released. handled says the statement handled what
// it took of the partition, as when it stopped reading it or its run
// ended well: its acknowledgements are not waited for any more. A
// statement whose run failed, or was aborted, acknowledges nothing more,
// and the partition's offsets stay where it left them.
func (t *teeReader) leave(handled bool) {
	t.goneOnce.Do(func() {
		close(t.gone)
		if handled {
			t.gather.leave(t.statement)
		}
		t.drain()
	})
}

// drain releases what waits in the reader's edge, once it is gone.
func (t *teeReader) drain() {
	for {
		select {
		case it, ok := <-t.in.ch:
			if !ok {
				return
			}
			t.part.waiting.Add(-t.records(it.batch))
			if it.batch != nil {
				it.batch.release()
			}
		default:
			return
		}
	}
}

// give sends it to the reader, blocking while its edge is full, unless
// ctx ends first (false) or the reader leaves.
func (t *teeReader) give(ctx context.Context, it teeItem) bool {
	n := t.records(it.batch)
	t.part.waiting.Add(n)
	if !t.in.sendUnless(ctx, t.gone, it) {
		t.part.waiting.Add(-n)
		if ctx.Err() != nil {
			return false
		}
		if it.batch != nil { // it left
			it.batch.release()
		}
		return true
	}
	select {
	case <-t.gone:
		t.drain() // it may have left while this was sent
	default:
	}
	return true
}

// Close implements connector.Reader; the set closes the partition's
// reader.
func (t *teeReader) Close() error { return nil }

// copyBatch makes b, stamped by a statement's read, the copy of src, one
// of the set's batches.
func copyBatch(b, src *message.Batch) {
	h := &b.Header
	h.Seq, h.Generation, h.Side = src.Seq, src.Generation, src.Side
	h.LastOffset, h.ReaderState, h.Parent = src.LastOffset, src.ReaderState, src.Parent
	b.MaxEventTime = src.MaxEventTime
	b.SetWidth(src.Width())
	for i, row := range src.Rows {
		copy(b.Append(src.Offsets[i]), row)
	}
	b.Deletes = append(b.Deletes, src.Deletes...)
}

// runSet runs a statement set: a reader goroutine per source partition,
// whose batches each statement reading the source takes through its tee
// reader, and each statement's pipeline. A statement that fails fails the
// set; a stop ends readCtx, and each statement drains what it took.
func (p *Pipeline) runSet(ctx, readCtx context.Context) error {
	p.log.Info("statement set starting", "run", p.runID, "statements", len(p.parts), "partitions", len(p.readers))
	p.state.Store(running)
	var wg sync.WaitGroup
	for _, part := range p.parts {
		wg.Go(func() {
			err := part.p.Run(ctx)
			// Whatever the others read is nothing to it now.
			for _, t := range part.tees {
				t.leave(err == nil && ctx.Err() == nil)
			}
			if err != nil && p.err() == nil {
				p.fatal(fmt.Errorf("statement %s: %w", part.name, err))
			}
		})
	}
	ends := p.newTableEnds(p.readers)
	for _, r := range p.readers {
		var tees []*teeReader
		for _, part := range p.parts {
			for _, t := range part.tees {
				if t.from == r {
					tees = append(tees, t)
				}
			}
		}
		wg.Go(func() {
			defer func() {
				for _, t := range tees {
					close(t.in.ch)
				}
			}()
			p.readLoop(readCtx, r, func(m message.Message) bool {
				it := teeItem{kind: m.Kind}
				if m.Kind == message.KindBatch {
					it.batch = &sharedBatch{b: m.Batch, pool: &p.pool}
					it.batch.refs.Store(int32(len(tees)))
				}
				for i, t := range tees {
					if !t.give(ctx, it) {
						// Aborted: what the others would have taken is
						// no one's.
						for range tees[i:] {
							if it.batch != nil {
								it.batch.release()
							}
						}
						return false
					}
				}
				return true
			}, ends)
		})
	}
	wg.Wait()
	p.closeReaders()
	if p.dlq != nil {
		if err := p.dlq.(*sharedDeadLetter).sink.Close(); err != nil && p.err() == nil {
			p.fatal(fmt.Errorf("dead-letter sink: closing: %w", err))
		}
	}
	err := p.err()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		p.state.Store(failed)
		p.log.Error("statement set failed", "run", p.runID, "error", err)
		return err
	}
	p.state.Store(finished)
	p.log.Info("statement set finished", "run", p.runID)
	return nil
}

// setSnapshot adds to the snapshot of a statement set's reading that of
// each statement. The records read are counted once; what became of them
// is summed over the statements, each of which takes every record of the
// sources it reads, and Statements shows each. A record is in flight
// until every statement has handled it.
func (p *Pipeline) setSnapshot(s *Snapshot) {
	c := &s.Counts
	read := c.In
	*c = enginestatus.Records{In: read}
	s.Watermark = math.MaxInt64
	var checkpoints []statementCheckpoints
	for _, part := range p.parts {
		ps := part.p.Snapshot()
		s.Statements = append(s.Statements, StatementSnapshot{Name: part.name, State: ps.State, Counts: ps.Counts, LastError: ps.LastError, Stateful: ps.Stateful})
		pc := ps.Counts
		c.Out += pc.Out
		c.Filtered += pc.Filtered
		c.DeadLettered += pc.DeadLettered
		c.Skipped += pc.Skipped
		c.Failed += pc.Failed
		c.Aggregated += pc.Aggregated
		c.Late += pc.Late
		c.Results += pc.Results
		c.Revoked += pc.Revoked
		c.Restored += pc.Restored
		c.Retries += pc.Retries
		// Records the set read that the statement has not taken yet, in
		// its tee readers' edges, are in flight too.
		c.InFlight = max(c.InFlight, pc.InFlight+part.waiting.Load())
		s.Workers += ps.Workers
		s.ActiveWorkers += ps.ActiveWorkers
		s.Traced += ps.Traced
		s.LatencyP50 = max(s.LatencyP50, ps.LatencyP50)
		s.LatencyP99 = max(s.LatencyP99, ps.LatencyP99)
		for i := range s.StageErrors {
			s.StageErrors[i] += ps.StageErrors[i]
		}
		for _, e := range ps.Edges {
			e.Name = part.name + "/" + e.Name
			s.Edges = append(s.Edges, e)
		}
		if ps.Stateful {
			s.Stateful = true
			s.Watermark = min(s.Watermark, ps.Watermark)
			s.StateRows += ps.StateRows
			s.ExpiredGroups += ps.ExpiredGroups
		}
		s.Metrics = append(s.Metrics, ps.Metrics...)
		if c := ps.Checkpoints; c != nil {
			checkpoints = append(checkpoints, statementCheckpoints{c, ps.State == enginestatus.Finished || ps.State == enginestatus.Failed})
		}
		if ps.Unavailable != "" && !strings.Contains(s.Unavailable, ps.Unavailable) {
			s.Unavailable = strings.TrimPrefix(s.Unavailable+"; "+ps.Unavailable, "; ")
		}
		if s.LastError == "" && ps.LastError != "" {
			s.LastError = "statement " + part.name + ": " + ps.LastError
		}
	}
	if !s.Stateful {
		s.Watermark = math.MinInt64
	}
	s.Checkpoints = oldestCheckpoints(checkpoints)
}

// statementCheckpoints are a statement's checkpoint stats, and whether its
// run ended.
type statementCheckpoints struct {
	stats *CheckpointStats
	ended bool
}

// oldestCheckpoints returns the checkpoint stats of a set: those of the
// statement whose last checkpoint is the oldest, of those still running
// if any (how much a restart reads again; one that ended checkpoints no
// more), with the checkpoints of all counted.
func oldestCheckpoints(of []statementCheckpoints) *CheckpointStats {
	var oldest *CheckpointStats
	var completed int64
	running := slices.ContainsFunc(of, func(c statementCheckpoints) bool { return !c.ended })
	for _, c := range of {
		completed += c.stats.Completed
		if (!running || !c.ended) && (oldest == nil || c.stats.LastAt.Before(oldest.LastAt)) {
			oldest = c.stats
		}
	}
	if oldest == nil {
		return nil
	}
	all := *oldest
	all.Completed = completed
	return &all
}
