// Package pipeline runs a planned query: source readers, partition workers and
// a sink writer, each a goroutine that owns its state, joined by bounded
// channels of messages. A full channel blocks its sender, so a slow sink slows
// the workers, which slow the readers: memory stays bounded under any load and
// no stage ever calls into another or holds a lock across a record.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/kafka"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/operator"
)

// State is where a pipeline is in its life.
type State int32

// The states.
const (
	Starting State = iota
	Running
	Draining
	Finished
	Failed
)

var stateNames = [...]string{"Starting", "Running", "Draining", "Finished", "Failed"}

func (s State) String() string { return stateNames[s] }

// DeadLetterSink receives the error events of the DeadLetter policy.
type DeadLetterSink interface {
	Write(events []message.ErrorEvent) error
	Close() error
}

// Options are what a caller may set beyond the spec.
type Options struct {
	// Logger receives lifecycle and error logs; nil discards them.
	Logger *slog.Logger
	// Sink, if set, replaces the spec's sink; the pipeline closes it.
	Sink connector.Sink
	// DeadLetter, if set, replaces the spec's dead-letter sink.
	DeadLetter DeadLetterSink
	// Readers, if set, replace the readers of the spec's sources.
	Readers []connector.Reader
	// Tracer records a span per batch per stage; nil records none.
	Tracer trace.Tracer
	// Observer receives per-batch durations and sizes; nil discards them.
	Observer Observer
	// Group is the Kafka consumer group of sources that name none; empty
	// is "sluice.<source name>".
	Group string
	// Instance names this engine among the engines of one query, stably
	// across its restarts (the pod name): an exactly-once Kafka source's
	// transactional id is the group and the instance.
	Instance string
	// StaticMembership makes this engine a static member of its Kafka
	// consumer groups under Instance, so that a restart under the same
	// instance takes its partitions back at once. Only for an Instance that
	// no other live engine of the query has (a pod name, not a host name
	// that several local engines share).
	StaticMembership bool
}

// Pipeline is one run of a query.
type Pipeline struct {
	spec       *v1alpha1.StreamQuerySpec
	prog       *operator.Program
	inputCols  []format.Column
	inputs     map[string][]format.Column // by source; a join reads two
	readers    []connector.Reader
	sink       connector.Sink
	dlq        DeadLetterSink
	log        *slog.Logger
	tracer     trace.Tracer
	observer   Observer
	strategy   v1alpha1.ErrorStrategy
	maxRetries int
	backoff    time.Duration

	parallelism, capacity, batchSize int
	linger, shutdownTimeout          time.Duration
	direct                           bool
	// outOfOrderness (by source) and idleTimeout shape the watermark of a
	// stateful plan; eventTimes are the event-time columns by source, -1
	// for none.
	outOfOrderness map[string]time.Duration
	idleTimeout    time.Duration
	eventTimes     map[string]int
	// batchEncoder, if set, is the sink's: workers encode their results for
	// it, in parallel, rather than its one writer goroutine.
	batchEncoder connector.BatchEncoder
	// lateToPolicy hands late records to the error policy; allowedLateness
	// keeps windows open past their end for late records.
	lateToPolicy    bool
	allowedLateness int64

	pool      message.Pool
	stats     stats
	edges     []*EdgeStats
	committed []*message.Committed // per reader
	closers   []io.Closer          // sources to close after their readers
	runID     string
	nextBatch atomic.Uint64
	started   time.Time
	state     atomic.Int32

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop: sources end, in-flight work drains

	mu        sync.Mutex
	fatalErr  error
	lastError string
	cancel    context.CancelCauseFunc
}

// New checks and plans a spec and opens its connectors.
func New(spec *v1alpha1.StreamQuerySpec, opts Options) (*Pipeline, error) {
	spec = spec.DeepCopy()
	spec.Default()
	prog, schemas, err := compile.Plan(spec)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		spec:      spec,
		prog:      prog,
		inputCols: schemas[prog.Source],
		inputs:    schemas,
		log:       opts.Logger,
		stop:      make(chan struct{}),
		strategy:  spec.ErrorPolicy.Strategy,
		started:   time.Now(),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.tracer = opts.Tracer // nil: no spans, and no cost for them
	p.observer = opts.Observer
	if p.observer == nil {
		p.observer = noObserver{}
	}
	p.configure()
	p.stats.watermark.Store(math.MinInt64)
	widest := prog.OutputWidth()
	for _, cols := range schemas {
		widest = max(widest, len(cols))
	}
	if prog.Stateful() {
		widest = max(widest, prog.StatefulWidth())
	}
	// The pool keeps batches of the usual size; one that grew far beyond
	// it (a burst of window results) goes back to the garbage collector,
	// so that the free batches never pin more than the batches in flight.
	p.pool.MaxValues = 2 * p.batchSize * widest
	var id [4]byte
	_, _ = rand.Read(id[:])
	p.runID = hex.EncodeToString(id[:])

	p.readers = opts.Readers
	if p.readers == nil {
		for _, source := range prog.Sources() {
			readers, closers, err := openReaders(spec, source, schemas[source], prog.Stateful(), opts, p.log)
			p.readers = append(p.readers, readers...)
			p.closers = append(p.closers, closers...)
			if err != nil {
				p.closeReaders()
				return nil, err
			}
		}
	}
	if p.parallelism == 0 {
		p.parallelism = max(1, min(len(p.readers), runtime.GOMAXPROCS(0)))
	}
	// As many free batches as can be in flight: one per reader and worker,
	// the edges' buffers and the sink's writes.
	p.pool.Keep = len(p.readers) + p.parallelism + (p.parallelism+2)*p.capacity + connector.MaxWritesInFlight
	// Acknowledgements flow back to each partition's origin.
	p.committed = make([]*message.Committed, len(p.readers))
	for i, r := range p.readers {
		c := new(message.Committed)
		p.committed[i] = c
		if o := r.Origin(); o.Acked == nil {
			o.Acked = c.Ack
		} else {
			next := o.Acked
			o.Acked = func(seq uint64, off int64) { c.Ack(seq, off); next(seq, off) }
		}
	}
	// An exactly-once Kafka source's client produces the results and dead
	// letters too, in its transactions.
	var txn *kafka.Source
	for _, c := range p.closers {
		if src, ok := c.(*kafka.Source); ok && src.Transactional() {
			txn = src
		}
	}
	p.sink = opts.Sink
	if p.sink == nil {
		if p.sink, err = openSink(&spec.Sink, prog, txn, p.log); err != nil {
			p.closeReaders()
			return nil, err
		}
	}
	if be, ok := p.sink.(connector.BatchEncoder); ok && !prog.Stateful() {
		p.batchEncoder = be
	}
	p.dlq = opts.DeadLetter
	if p.dlq == nil && p.strategy == v1alpha1.DeadLetter {
		if dl := spec.ErrorPolicy.DeadLetter; dl.Kafka != nil {
			p.dlq, err = kafka.OpenDeadLetter(dl.Kafka, txn)
		} else {
			p.dlq, err = connector.OpenDeadLetter(dl)
		}
		if err != nil {
			p.closeReaders()
			p.sink.Close()
			return nil, err
		}
	}
	return p, nil
}

func (p *Pipeline) configure() {
	rt := p.spec.Runtime
	p.parallelism = int(rt.Parallelism)
	p.capacity = int(rt.ChannelCapacity)
	if p.capacity == 0 {
		p.capacity = v1alpha1.DefaultChannelCapacity
	}
	p.batchSize = int(rt.BatchSize)
	if p.batchSize == 0 {
		p.batchSize = v1alpha1.DefaultBatchSize
	}
	p.linger = v1alpha1.DefaultBatchLinger
	if rt.BatchLinger != nil {
		p.linger = rt.BatchLinger.Duration
	}
	p.shutdownTimeout = v1alpha1.DefaultShutdownTimeout
	if rt.ShutdownTimeout != nil {
		p.shutdownTimeout = rt.ShutdownTimeout.Duration
	}
	p.direct = rt.Mode == v1alpha1.Direct
	ep := p.spec.ErrorPolicy
	p.maxRetries = v1alpha1.DefaultMaxRetries
	if ep.MaxRetries != nil {
		p.maxRetries = int(*ep.MaxRetries)
	}
	p.backoff = v1alpha1.DefaultRetryBackoff
	if ep.RetryBackoff != nil {
		p.backoff = ep.RetryBackoff.Duration
	}
	p.eventTimes = map[string]int{}
	p.outOfOrderness = map[string]time.Duration{}
	p.idleTimeout = DefaultIdleTimeout
	for _, source := range p.prog.Sources() {
		p.eventTimes[source] = p.prog.EventTimeOf(source)
	}
	for _, src := range p.spec.Sources {
		if et := src.EventTime; p.eventTimes[src.Name] >= 0 && et != nil {
			p.outOfOrderness[src.Name] = et.MaxOutOfOrderness.Duration
			if et.IdleTimeout != nil {
				p.idleTimeout = et.IdleTimeout.Duration
			}
			p.lateToPolicy = p.lateToPolicy || et.LateRecords == v1alpha1.LateErrorPolicy
			p.allowedLateness = max(p.allowedLateness, int64(et.AllowedLateness.Duration))
		}
	}
}

func openReaders(spec *v1alpha1.StreamQuerySpec, source string, cols []format.Column, stateful bool, opts Options, log *slog.Logger) ([]connector.Reader, []io.Closer, error) {
	readers, err := openSourceReaders(spec, source, cols)
	if err != nil || readers != nil {
		return readers, nil, err
	}
	for _, src := range spec.Sources {
		if src.Name != source || src.Kafka == nil {
			continue
		}
		group := src.Kafka.Group
		if group == "" {
			group = opts.Group
		}
		if group == "" {
			group = "sluice." + source
		}
		kopts := kafka.Options{Group: group, Schema: src.Schema, Stateful: stateful, Logger: log.With("source", src.Name)}
		if opts.StaticMembership {
			kopts.Instance = opts.Instance
		}
		if k := spec.Sink.Kafka; k != nil && k.Delivery == v1alpha1.ExactlyOnce {
			// Unique among the group's live members, stable across a restart
			// of the same member: a restarted engine fences the open
			// transaction of the process it replaces.
			kopts.TransactionalID = group + "." + opts.Instance
			kopts.Producer = k
			if k.TransactionInterval != nil {
				kopts.TransactionInterval = k.TransactionInterval.Duration
			}
		}
		// A source of several topics is a member of the group per topic: the
		// group gives each member partitions of the topic it subscribes to.
		var closers []io.Closer
		for _, topic := range src.Kafka.TopicNames() {
			spec := *src.Kafka
			spec.Topic, spec.Topics = topic, nil
			s, err := kafka.Open(&spec, src.Name, src.Format, cols, kopts)
			if err != nil {
				for _, c := range closers {
					_ = c.Close()
				}
				return nil, nil, err
			}
			for _, l := range s.Lanes() {
				readers = append(readers, l)
			}
			closers = append(closers, s)
		}
		return readers, closers, nil
	}
	return nil, nil, fmt.Errorf("source %s is not defined", source)
}

// openSourceReaders opens the readers of a file, stdin or datagen source;
// nil for another kind.
func openSourceReaders(spec *v1alpha1.StreamQuerySpec, source string, cols []format.Column) ([]connector.Reader, error) {
	for _, src := range spec.Sources {
		if src.Name != source {
			continue
		}
		maxBytes := int(src.MaxRecordBytes)
		switch {
		case src.File != nil:
			r, err := connector.OpenFile(src.Name, src.File, src.Format, cols, maxBytes)
			if err != nil {
				return nil, err
			}
			return []connector.Reader{r}, nil
		case src.Stdin != nil:
			return []connector.Reader{connector.OpenStdin(src.Name, src.Format, cols, maxBytes)}, nil
		case src.Datagen != nil:
			n := max(src.Datagen.Partitions, 1)
			readers := make([]connector.Reader, n)
			for i := range n {
				d, err := connector.NewDatagen(src.Name, src.Datagen, i, cols)
				if err != nil {
					return nil, err
				}
				readers[i] = d
			}
			return readers, nil
		}
	}
	return nil, nil
}

func openSink(spec *v1alpha1.Sink, prog *operator.Program, txn *kafka.Source, log *slog.Logger) (connector.Sink, error) {
	names := make([]string, len(prog.Output))
	for i, c := range prog.Output {
		names[i] = c.Name
	}
	enc := connector.NewEncoder(spec.Format, names)
	switch {
	case spec.Stdout != nil:
		return connector.OpenStdout(enc), nil
	case spec.File != nil:
		return connector.OpenFileSink(spec.File, enc)
	case spec.Null != nil:
		return connector.NullSink{}, nil
	case spec.Kafka != nil:
		key := -1
		for i, c := range prog.Output {
			if spec.Kafka.Key != "" && c.Name == spec.Kafka.Key {
				key = i
			}
		}
		return kafka.OpenSink(spec.Kafka, enc, key, txn, log)
	}
	return nil, errors.New("sink: no connector set")
}

func (p *Pipeline) closeReaders() {
	for _, r := range p.readers {
		_ = r.Close()
	}
	for _, c := range p.closers {
		_ = c.Close()
	}
}

// Stop asks the pipeline to finish: sources stop reading, batches in flight
// drain through the workers and the sink, and Run returns. If draining takes
// longer than the shutdown timeout, Run aborts.
func (p *Pipeline) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
}

// fatal records the first error that ends the run and aborts it.
func (p *Pipeline) fatal(err error) {
	p.mu.Lock()
	if p.fatalErr == nil {
		p.fatalErr = err
		p.lastError = err.Error()
	}
	cancel := p.cancel
	p.mu.Unlock()
	p.state.Store(int32(Failed))
	if cancel != nil {
		cancel(err)
	}
}

func (p *Pipeline) noteError(msg string) {
	p.mu.Lock()
	p.lastError = msg
	p.mu.Unlock()
}

// Run runs the pipeline until its sources are exhausted, Stop is called, ctx
// ends or a record fails under FailFast. It returns nil after a complete run
// or a clean stop.
func (p *Pipeline) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	// readCtx ends reading on Stop while the rest drains under ctx.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		select {
		case <-p.stop:
			p.state.CompareAndSwap(int32(Running), int32(Draining))
			stopReading()
			t := time.NewTimer(p.shutdownTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				p.fatal(fmt.Errorf("shutdown timeout %v passed while draining", p.shutdownTimeout))
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()

	p.log.Info("pipeline starting", "run", p.runID, "mode", p.spec.Runtime.Mode,
		"partitions", len(p.readers), "parallelism", p.parallelism,
		"channelCapacity", p.capacity, "batchSize", p.batchSize)
	p.state.Store(int32(Running))
	if p.direct {
		p.runDirect(ctx, readCtx)
	} else {
		p.runPipelined(ctx, readCtx)
	}
	p.closeReaders()
	if err := p.sink.Close(); err != nil && p.err() == nil {
		p.fatal(fmt.Errorf("sink: closing: %w", err))
	}
	if p.dlq != nil {
		if err := p.dlq.Close(); err != nil && p.err() == nil {
			p.fatal(fmt.Errorf("dead-letter sink: closing: %w", err))
		}
	}
	err := p.err()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		p.state.Store(int32(Failed))
		// Records in flight when the run was aborted are lost to this run.
		c := p.stats.counts()
		p.stats.failed.Add(c.InFlight())
		p.log.Error("pipeline failed", "run", p.runID, "error", err)
		return err
	}
	p.state.Store(int32(Finished))
	p.log.Info("pipeline finished", "run", p.runID)
	return nil
}

func (p *Pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatalErr
}

// edge is a bounded channel between stages, measured.
type edge[T any] struct {
	ch    chan T
	stats *EdgeStats
}

func (p *Pipeline) newEdge(name string) *edge[message.Message] {
	return newEdge[message.Message](p, name, p.capacity)
}

func newEdge[T any](p *Pipeline, name string, capacity int) *edge[T] {
	e := &edge[T]{ch: make(chan T, capacity)}
	e.stats = &EdgeStats{Name: name, capacity: capacity, depth: func() int { return len(e.ch) }}
	p.mu.Lock()
	p.edges = append(p.edges, e.stats)
	p.mu.Unlock()
	return e
}

// send delivers m, blocking while the channel is full, unless ctx ends first.
// Only the time spent blocked is measured, so a free channel costs nothing.
func (e *edge[T]) send(ctx context.Context, m T) bool {
	e.stats.sends.Add(1)
	select {
	case e.ch <- m:
		return true
	default:
	}
	e.stats.blocked.Add(1)
	start := time.Now()
	defer func() { e.stats.blockedN.Add(int64(time.Since(start))) }()
	select {
	case e.ch <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// recv receives the next message, measuring the time spent waiting for one.
func (e *edge[T]) recv() (T, bool) {
	select {
	case m, ok := <-e.ch:
		return m, ok
	default:
	}
	start := time.Now()
	m, ok := <-e.ch
	e.stats.waitN.Add(int64(time.Since(start)))
	return m, ok
}

func (p *Pipeline) runPipelined(ctx, readCtx context.Context) {
	n := p.parallelism
	workerIn := make([]*edge[message.Message], n)
	producers := make([]atomic.Int32, n)
	for w := range n {
		workerIn[w] = p.newEdge("source->worker-" + strconv.Itoa(w))
	}
	var toSink, fromWorkers *edge[message.Message]
	if p.prog.Stateful() {
		fromWorkers = p.newEdge("workers->stateful")
		toSink = p.newEdge("stateful->sink")
	} else {
		toSink = p.newEdge("workers->sink")
		fromWorkers = toSink
	}
	for k := range p.readers {
		producers[k%n].Add(1)
	}
	for w := range n {
		if producers[w].Load() == 0 {
			close(workerIn[w].ch) // more workers than partitions
		}
	}

	var wg, workersWG sync.WaitGroup
	for k, r := range p.readers {
		w := k % n
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if producers[w].Add(-1) == 0 {
					close(workerIn[w].ch)
				}
			}()
			p.readLoop(ctx, readCtx, r, workerIn[w])
		}()
	}
	for w := range n {
		workersWG.Add(1)
		go func() {
			defer workersWG.Done()
			p.workLoop(ctx, workerIn[w], fromWorkers)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		workersWG.Wait()
		close(fromWorkers.ch)
	}()
	if fromWorkers != toSink {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(toSink.ch)
			p.statefulLoop(ctx, fromWorkers, toSink)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.sinkLoop(ctx, toSink)
	}()
	wg.Wait()
}

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
	if n := b.Len() + b.Errors.Records; n > 0 {
		p.stats.in.Add(int64(n))
		p.stats.batches.Add(1)
		b.Read = time.Since(p.started).Nanoseconds()
		// With no span recorded, the input's own trace context goes on
		// unchanged, or else a random, local one stands in, so that logs
		// and dead letters still correlate.
		b.Trace = traceContext(p.span("source.read", b.Parent, start, b), b.Parent)
		if !b.Trace.IsValid() {
			b.Trace = randomTrace()
		}
		for i := range b.Errors.Events {
			b.Errors.Events[i].Traceparent = b.Trace.Traceparent()
		}
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

// workLoop is a partition worker's goroutine. It owns its operator.
func (p *Pipeline) workLoop(ctx context.Context, in, out *edge[message.Message]) {
	w := p.newWorker()
	p.stats.activeWorkers.Add(1)
	defer p.stats.activeWorkers.Add(-1)
	for {
		m, ok := in.recv()
		if !ok {
			return
		}
		if m.Kind != message.KindBatch {
			// Ends of partitions matter to a stateful stage only.
			if p.prog.Stateful() && !out.send(ctx, m) {
				return
			}
			continue
		}
		if !out.send(ctx, message.Message{Kind: message.KindBatch, Batch: w.process(m.Batch)}) {
			return
		}
	}
}

// worker runs the operator of one partition worker.
type worker struct {
	p    *Pipeline
	op   operator.Operator
	encs map[string]*format.JSONEncoder // by source: encode failed input rows for error events
	out  *message.Batch                 // the batch being produced, whose errors Fail adds to
}

func (p *Pipeline) newWorker() *worker {
	w := &worker{p: p, op: p.prog.New(), encs: map[string]*format.JSONEncoder{}}
	for source, cols := range p.inputs {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		w.encs[source] = format.NewJSONEncoder(names)
	}
	return w
}

// encoder returns the encoder of a batch's rows.
func (w *worker) encoder(b *message.Batch) *format.JSONEncoder {
	if b.Origin != nil {
		if e := w.encs[b.Origin.Source]; e != nil {
			return e
		}
	}
	return w.encs[w.p.prog.Source]
}

// process runs one batch through the operator, releasing the input batch.
// The result carries the input's error events and the operator's.
func (w *worker) process(in *message.Batch) *message.Batch {
	start := time.Now()
	maxEvt := int64(math.MinInt64)
	if in.Origin != nil {
		if t := w.p.eventTimes[in.Origin.Source]; t >= 0 {
			// The watermark follows every record read, filtered or not,
			// but for those the stateful operators refuse.
			for _, row := range in.Rows {
				if v := row[t]; !v.IsNull() && operator.InEventTimeRange(v.Nanos()) {
					maxEvt = max(maxEvt, v.Nanos())
				}
			}
		}
	}
	if w.p.prog.Join() {
		// A join's rows go to the stateful stage as they are.
		in.MaxEventTime = maxEvt
		return in
	}
	out := w.p.pool.Get(w.p.prog.WorkerWidth())
	out.CopyHeader(in)
	out.MaxEventTime = maxEvt
	w.out = out
	filtered := w.op.Process(in, out, w)
	w.p.stats.filtered.Add(int64(filtered))
	if w.p.batchEncoder != nil {
		w.p.batchEncoder.EncodeBatch(out)
	}
	n := in.Len()
	w.p.pool.Put(in)
	if w.p.tracer != nil {
		out.Trace = traceContext(w.p.span("batch.process", out.Trace, start, out,
			attribute.Int("sluice.records_in", n), attribute.Int("sluice.filtered", filtered), attribute.Int("sluice.failed", out.Errors.Records)), out.Trace)
	}
	w.p.observer.ObserveBatch(StageProcess, time.Since(start), n, w.p.recorded(out.Trace))
	return out
}

// Fail implements operator.Failures.
func (w *worker) Fail(in *message.Batch, i int, stage string, err error) {
	payload := w.encoder(in).Encode(nil, in.Rows[i])
	eb := &w.out.Errors
	eb.Records++
	eb.Events = append(eb.Events, message.ErrorEvent{
		CorrelationID: in.CorrelationID,
		Stage:         stage,
		Error:         err.Error(),
		Source:        in.Coordinates(i),
		Payload:       payload[:len(payload)-1],
		Traceparent:   in.Trace.Traceparent(),
	})
}

// sinkLoop is the sink writer's goroutine.
func (p *Pipeline) sinkLoop(ctx context.Context, in *edge[message.Message]) {
	enc := p.rowEncoder()
	if async, ok := p.sink.(connector.AsyncSink); ok {
		p.sinkLoopAsync(ctx, in, async, enc)
	} else {
		for {
			m, ok := in.recv()
			if !ok {
				break
			}
			if m.Kind != message.KindBatch {
				continue
			}
			p.deliver(ctx, m.Batch, enc, nil)
			if ctx.Err() != nil {
				return
			}
		}
	}
	if err := p.sink.Flush(ctx); err != nil && ctx.Err() == nil {
		p.fatal(fmt.Errorf("sink: flushing: %w", err))
	}
}

// write is a batch whose first write attempt was started.
type write struct {
	b      *message.Batch
	start  time.Time
	result chan error
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

// sinkLoopAsync starts each batch's write as it arrives and finishes the
// writes in arrival order on a second goroutine of the sink stage: the
// error policy, retries and the acknowledgement run there, so batches are
// acknowledged in order while several are in flight.
//
// Once a write fails, no further write starts until the finisher has
// settled every write started before, retrying the failed rows: a batch
// started meanwhile could put rows of a key before the retried rows of
// that key. A sink that reports a failure as it happens
// (connector.FailureReporter) stops new writes at once; otherwise they
// stop when the failed batch has its answer.
func (p *Pipeline) sinkLoopAsync(ctx context.Context, in *edge[message.Message], sink connector.AsyncSink, enc *format.JSONEncoder) {
	inFlight := make(chan write, connector.MaxWritesInFlight)
	var hold writeHold
	if r, ok := sink.(connector.FailureReporter); ok {
		r.OnFailure(hold.fail)
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for w := range inFlight {
			p.deliver(ctx, w.b, enc, &w)
			hold.finish()
		}
	}()
	defer func() {
		close(inFlight)
		<-finished
	}()
	for {
		m, ok := in.recv()
		if !ok || ctx.Err() != nil {
			return
		}
		if m.Kind != message.KindBatch {
			continue
		}
		if !hold.start(ctx) {
			p.pool.Put(m.Batch)
			return
		}
		w := write{b: m.Batch, start: time.Now(), result: make(chan error, 1)}
		if m.Batch.Len() == 0 {
			w.result <- nil
		} else {
			sink.WriteAsync(ctx, m.Batch, func(err error) {
				if err != nil {
					hold.fail()
				}
				w.result <- err
			})
		}
		select {
		case inFlight <- w:
		case <-ctx.Done():
			<-w.result // the sink still owns the batch until it answers
			p.pool.Put(w.b)
			return
		}
	}
}

func (p *Pipeline) rowEncoder() *format.JSONEncoder {
	names := make([]string, len(p.prog.Output))
	for i, c := range p.prog.Output {
		names[i] = c.Name
	}
	return format.NewJSONEncoder(names)
}

// deliver finishes a batch: its error events go to the error policy, its rows
// to the sink (with retries, rows that still fail to the policy too), and
// then, if all of that succeeded, the batch is acknowledged to its source.
// The batch is released.
// started, if not nil, is the batch's first write attempt, already under
// way; deliver waits for its result.
func (p *Pipeline) deliver(ctx context.Context, b *message.Batch, enc *format.JSONEncoder, started *write) {
	defer p.pool.Put(b)
	if b.Errors.Records > 0 || len(b.Errors.Events) > 0 {
		p.handle(ctx, b.Errors)
	}
	if n := b.Len(); n > 0 {
		start := time.Now()
		var first func() error
		if started != nil {
			start = started.start
			first = func() error { return <-started.result }
		}
		attempts, failed, err := p.writeWithRetry(ctx, b, first)
		var sc trace.SpanContext
		if p.tracer != nil {
			attrs := []attribute.KeyValue{attribute.Int("sluice.attempts", attempts)}
			if err != nil {
				attrs = append(attrs, attribute.String("error.message", err.Error()))
			}
			sc = p.span("sink.write", b.Trace, start, b, attrs...)
		}
		p.observer.ObserveBatch(StageWrite, time.Since(start), n, p.recorded(traceContext(sc, b.Trace)))
		if err != nil && ctx.Err() != nil {
			return // aborted: the batch stays unacknowledged
		}
		if written := int64(n - len(failed)); b.Derived {
			p.stats.results.Add(written)
		} else {
			p.stats.out.Add(written)
			if p.recorded(b.Trace).Flags&1 != 0 {
				p.stats.traced.Add(written)
			}
			p.stats.latency.observe(time.Since(p.started).Nanoseconds()-b.Read, written)
		}
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
			tp := b.Trace.Traceparent()
			for j, i := range failed {
				payload := enc.Encode(nil, b.Rows[i])
				eb.Events[j] = message.ErrorEvent{
					CorrelationID: b.CorrelationID, Stage: "sink", Error: msg,
					Source: b.Coordinates(i), Payload: payload[:len(payload)-1], Traceparent: tp,
				}
			}
			p.handle(ctx, eb)
		}
	}
	if ctx.Err() != nil || p.err() != nil {
		return // a failed or aborted run acknowledges nothing more
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
func (p *Pipeline) writeWithRetry(ctx context.Context, b *message.Batch, first func() error) (attempts int, failed []int, err error) {
	wait := p.backoff
	cur := b     // what the next attempt writes: b, or its rows in failed
	failed = nil // nil: all of b's rows
	defer func() {
		if cur != b {
			p.pool.Put(cur)
		}
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
			next := p.rowsOf(b, failed)
			if cur != b {
				p.pool.Put(cur)
			}
			cur = next
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

// rowsOf returns a batch that stands for b with only the given rows of it.
func (p *Pipeline) rowsOf(b *message.Batch, rows []int) *message.Batch {
	out := p.pool.Get(b.Width())
	out.CopyHeader(b)
	out.Errors = message.ErrorBatch{} // b's, handled with b
	for _, i := range rows {
		copy(out.Append(b.Offsets[i]), b.Rows[i])
	}
	return out
}

// handle applies the error policy to the events of one batch.
func (p *Pipeline) handle(ctx context.Context, eb message.ErrorBatch) {
	if len(eb.Events) > 0 {
		p.noteError(eb.Events[len(eb.Events)-1].Error)
	}
	for _, ev := range eb.Events {
		p.stats.stageErrors[stageIndex(ev.Stage)].Add(1)
	}
	if p.err() != nil {
		// The run is already failing: these records are lost to it.
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
		if err := p.dlq.Write(eb.Events); err != nil {
			p.stats.failed.Add(int64(eb.Records))
			p.fatal(fmt.Errorf("dead-letter sink failed, stopping rather than losing records: %w", err))
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
