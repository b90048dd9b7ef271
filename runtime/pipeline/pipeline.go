// Package pipeline runs a planned query: source readers, partition workers,
// the stateful stage of a query with windows, OVER or a join, and the sink
// writer. Each stage owns its state and has the same small contract
// (graph.go). Pipelined, each is a goroutine and they are joined by bounded
// channels of messages: a full channel blocks its sender, so a slow sink
// slows the workers, which slow the readers, and memory stays bounded under
// any load. Direct, the same stages are called one after another on one
// goroutine. Either way no lock is held across a record.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/usermetric"
	"github.com/sluice-dev/sluice/runtime/value"
)

// lifecycle is where a pipeline is in its life, as an index of states: an
// atomic int32 that Snapshot reads without a lock.
type lifecycle = int32

const (
	starting lifecycle = iota
	running
	draining
	finished
	failed
)

var states = [...]enginestatus.State{enginestatus.Starting, enginestatus.Running, enginestatus.Draining, enginestatus.Finished, enginestatus.Failed}

// Options are what a caller may set beyond the spec.
type Options struct {
	// Logger receives lifecycle and error logs; nil discards them.
	Logger *slog.Logger
	// Connectors open the spec's sources and sinks; nil is
	// connector.Builtins(), which has no Kafka.
	Connectors *connector.Registry
	// Sink, if set, replaces the sink of a spec of one query; the
	// pipeline closes it.
	Sink connector.Sink
	// Sinks, if set, replace the sinks of a statement set's statements,
	// by name; the pipeline closes them.
	Sinks map[string]connector.Sink
	// DeadLetter, if set, replaces the spec's dead-letter sink.
	DeadLetter connector.DeadLetterSink
	// Readers, if set, replace the readers of the spec's sources.
	Readers []connector.Reader
	// Clock, if set, is the processing time spec.state.ttl is measured
	// in; nil is time.Now.
	Clock func() time.Time
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
	// statement names the statement of a set the pipeline runs, whose
	// checkpoints are kept apart from the others'.
	statement string
	// transaction, of a statement that writes exactly once, is its set's
	// exactly-once transaction, which its sink writes in.
	transaction connector.Transaction
	// round, of a stateful statement of a set that writes exactly once
	// with spec.state, is the set's transaction: the statement
	// checkpoints at each round's end, in it (connector.RoundTransaction).
	round connector.RoundTransaction
	// reads, for the upstream part of a repartitioned query, are the
	// columns of each source the whole query reads (readColumns), which
	// its own plan, the stateless part, does not say.
	reads map[string][]bool
}

// Pipeline is one run of a query.
type Pipeline struct {
	spec      *v1alpha1.StreamQuerySpec
	clock     func() time.Time // Options.Clock
	prog      *streamop.Program
	inputCols []value.Column
	inputs    map[string][]value.Column // by source; a join reads two
	reads     map[string][]bool         // by source: the columns read, which sources decode
	readers   []connector.Reader
	sink      connector.Sink
	dlq       connector.DeadLetterSink
	txn       connector.Transaction // an exactly-once source's, or nil
	// round, of a statement that checkpoints at its set's rounds
	// (Options.round), is the set's transaction; nil otherwise.
	round      connector.RoundTransaction
	log        *slog.Logger
	tracer     trace.Tracer
	observer   Observer
	strategy   v1alpha1.ErrorStrategy
	maxRetries int
	backoff    time.Duration

	parallelism, capacity, batchSize int
	linger, shutdownTimeout          time.Duration
	direct                           bool
	// timing (by source) shapes the watermark of a
	// stateful plan; eventTimes are the event-time columns by source, -1
	// for none.
	timing     map[string]sourceTiming
	eventTimes map[string]int
	// tables are the sources read as tables, by name.
	tables map[string]bool
	// batchEncoder, if set, is the sink's: workers encode their results for
	// it, in parallel, rather than its one writer goroutine.
	batchEncoder connector.BatchEncoder
	// repartition, if set, makes the pipeline a part of a repartitioned
	// query: the upstream part (Key set), which writes the repartition
	// topic, or the part that reads it, whose batches carry the upstream
	// partitions' event time (Batch.MaxEventTime). upstream is the
	// latter's upstream part, which it runs and stops with itself.
	repartition *connector.Repartition
	upstream    *Pipeline
	// parts, of a statement set, are its statements, each a pipeline of
	// its own over the sources this one reads (set.go).
	parts []*statement
	// gathers, of a statement set, gather each reader's acknowledgements;
	// gathersMu guards their list, which an exactly-once source may read
	// (forgetAcks) while the set is made.
	gathers   []*ackGather
	gathersMu sync.Mutex
	// statement names the statement of a set this pipeline runs.
	statement string
	// statePlan and stateFingerprint are what the checkpoints say of the
	// state (streamop.Program.StatePlan): a partition of a repartition
	// topic holds other keys than the source's partition of its number,
	// so its state's plan says so, and the plan says the columns its held
	// rows hold (heldColumns).
	statePlan, stateFingerprint string
	// keptTable are the conditions, described, by which a table join's
	// table keeps its rows in the checkpoints (keptTable); nil for all.
	keptTable []string
	// lateToPolicy hands late records to the error policy; allowedLateness
	// keeps windows open past their end for late records.
	lateToPolicy    bool
	allowedLateness int64

	pool    message.Pool
	stats   stats
	metrics *usermetric.Set // spec.metrics, from the rows written
	ckpt    *checkpoints    // spec.state's, nil without
	// rewinds counts the exactly-once transactions that aborted and took
	// the partitions back to their last commit (connector.SourceEnv's
	// Rewound), which the stateful stage, then the sink stage, follow
	// (message.KindRewound).
	rewinds   atomic.Uint64
	edges     []*EdgeStats
	committed []*message.Committed // per reader
	sources   []connector.Source   // to close after their readers
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
	resolved, err := opts.registry().ResolveSchemas(context.Background(), spec, opts.Logger)
	if err != nil {
		return nil, err
	}
	if len(spec.Statements) > 0 {
		stmts, schemas, err := compile.PlanSet(spec, connector.Sources(resolved), nil)
		if err != nil {
			return nil, err
		}
		return newSet(spec, stmts, schemas, opts)
	}
	prog, schemas, err := compile.PlanRead(spec, connector.Sources(resolved), nil)
	if err != nil {
		return nil, err
	}
	if part, ok := compile.StatePartitioning(spec, prog, opts.Group); ok && part.Repartition && opts.Readers == nil {
		if spec.SeveralEngines() {
			return newRepartitioned(spec, prog, schemas, opts)
		}
		several, err := stillRepartitioned(spec, prog, opts, part.Topic)
		if err != nil {
			return nil, err
		}
		if several != nil {
			return newRepartitioned(several, prog, schemas, opts)
		}
	}
	return build(spec, prog, schemas, opts, nil)
}

// stillRepartitioned returns the spec as on several engines when a query
// that one engine would run without repartitioning has a repartition
// topic, else nil: it ran on several engines, and the rows not yet
// aggregated and the state of its partitions are there. Read straight from
// the source, which the upstream part committed past them, they would be
// lost. The engine reads through the topic until it is deleted. Not
// knowing is an error: a guess could lose them.
func stillRepartitioned(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, opts Options, topic string) (*v1alpha1.StreamQuerySpec, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exists, err := opts.registry().RepartitionExists(ctx, connector.RepartitionEnv{Source: sourceNamed(spec, prog.Source), Group: opts.Group, Logger: log})
	switch {
	case err != nil:
		return nil, fmt.Errorf("source %s: cannot tell whether the query's repartition topic %s exists, which would hold rows and state of a run on several engines: %w", prog.Source, topic, err)
	case !exists:
		return nil, nil
	}
	several := spec.DeepCopy()
	several.Replicas = new(int32(2))
	if _, _, err := compile.Plan(several); err != nil {
		return nil, fmt.Errorf("the query's repartition topic %s holds rows and state of a run on several engines, which one engine reads through it, as on several, but the query cannot run so (%w); delete the topic to read the source directly, losing them", topic, err)
	}
	log.Warn("the query's repartition topic exists: this engine reads through it, as on several engines, since rows and partition state of a run on several engines are there; delete the topic, once empty, to read the source directly", "topic", topic)
	return several, nil
}

// readColumns returns which columns of each source a query reads: those
// its plan reads, and the event-time column the watermark follows. A query
// whose state holds its input rows (a join, OVER, a top-N of rows) holds
// those columns of them, the others NULL: its state plan says which
// (heldColumns), so that a checkpoint of rows without a column the query
// reads is not restored.
func readColumns(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, schemas map[string][]value.Column) map[string][]bool {
	reads := plan.ReadColumns(prog.Root())
	for name, read := range reads {
		if et := sourceNamed(spec, name).EventTime; et != nil {
			if i := slices.IndexFunc(schemas[name], func(c value.Column) bool { return c.Name == et.Column }); i >= 0 && i < len(read) {
				read[i] = true
			}
		}
	}
	return reads
}

// heldRowsLine begins the line of a state plan that says which columns
// held rows of a source hold (heldColumns): the source's name follows,
// then heldColumnsWord, then the columns' names as a JSON array.
const heldRowsLine, heldColumnsWord = "Rows of ", " hold only the columns "

// heldColumns returns the lines of the state plan of a query whose state
// holds its input rows that say which columns the rows of each source
// hold, where they are not all: the others are NULL. A checkpoint's plan
// says them (missingColumns), and its fingerprint leaves them out, so
// that a query that reads fewer columns restores it and one that reads
// another does not. Rows of every column say nothing, as all did before.
func heldColumns(sources []string, reads map[string][]bool, schemas map[string][]value.Column) string {
	var held strings.Builder
	for _, name := range sources {
		read := reads[name]
		if read == nil || !slices.Contains(read, false) {
			continue
		}
		names := []string{}
		for i, c := range schemas[name] {
			if read[i] {
				names = append(names, c.Name)
			}
		}
		list, _ := json.Marshal(names) // strings
		fmt.Fprintf(&held, "%s%s%s%s\n", heldRowsLine, name, heldColumnsWord, list)
	}
	return held.String()
}

// missingColumns returns, of each source, the columns a query reads
// (reads) that the rows of a checkpoint of state plan statePlan lack: those
// its heldColumns lines leave out. A line that cannot be read lacks every
// column.
func missingColumns(statePlan string, reads map[string][]bool, schemas map[string][]value.Column) map[string][]string {
	missing := map[string][]string{}
	for line := range strings.Lines(statePlan) {
		rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), heldRowsLine)
		if !ok {
			continue
		}
		name, list, ok := strings.Cut(rest, heldColumnsWord)
		var held []string
		if ok {
			ok = json.Unmarshal([]byte(list), &held) == nil
		}
		read := reads[name]
		for i, c := range schemas[name] {
			if (read == nil || read[i]) && (!ok || !slices.Contains(held, c.Name)) {
				missing[name] = append(missing[name], c.Name)
			}
		}
	}
	return missing
}

// keptTableLine begins the line of a state plan that says by which
// conditions of its WHERE a table join keeps its table's rows
// (streamop.Program.KeptTable): the table's name follows, then the
// conditions' SQL after keptTableWhere, then after keptTableAs their
// descriptions as a JSON array. A checkpoint's plan says them
// (keptTableOf), and its fingerprint leaves them out: a query that keeps
// more of the table cannot restore it, any query can one of every row.
const keptTableLine, keptTableWhere, keptTableAs = "Table ", " keeps the rows where ", " described as "

// keptTable returns the kept-table line of described, conditions of SQL
// sql, of the rows of table.
func keptTable(table, sql string, described []string) string {
	list, _ := json.Marshal(described) // strings
	return keptTableLine + table + keptTableWhere + sql + keptTableAs + string(list) + "\n"
}

// keptTableOf returns the conditions, described, by which the table in a
// checkpoint of state plan statePlan was kept: none for every row. ok is
// false for a line that cannot be read.
func keptTableOf(statePlan string) (described []string, ok bool) {
	for line := range strings.Lines(statePlan) {
		if !strings.HasPrefix(line, keptTableLine) {
			continue
		}
		i := strings.LastIndex(line, keptTableAs)
		if i < 0 || json.Unmarshal([]byte(strings.TrimSpace(line[i+len(keptTableAs):])), &described) != nil || described == nil {
			return nil, false
		}
		return described, true
	}
	return nil, true
}

// newRepartitioned builds the two parts of a stateful query whose engines
// each read some partitions of its source, which is not partitioned by the
// state's key: the upstream part runs the stateless part of the plan over
// those partitions and writes the rows to the repartition topic, keyed by
// the state's key; the pipeline returned reads the partitions of that
// topic the group gives it, which hold whole keys, into the state.
func newRepartitioned(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, schemas map[string][]value.Column, opts Options) (*Pipeline, error) {
	upProg, ok := prog.Upstream()
	if !ok {
		return nil, fmt.Errorf("the plan cannot be repartitioned: %s", prog.StatePlan())
	}
	write, read := &connector.Repartition{}, &connector.Repartition{}
	for _, name := range prog.Sources() {
		key, keyed := prog.PartitionKey(name)
		if !keyed {
			return nil, fmt.Errorf("the plan cannot be repartitioned: source %s has no key in %s", name, prog.StatePlan())
		}
		side := connector.RepartitionSide{Source: name, Columns: schemas[name], Idle: v1alpha1.DefaultIdleTimeout}
		if et := sourceNamed(spec, name).EventTime; et != nil {
			side.Bound = et.MaxOutOfOrderness.Duration
			if et.IdleTimeout.Duration > 0 {
				side.Idle = et.IdleTimeout.Duration
			}
		}
		read.Sides = append(read.Sides, side)
		side.Key = key
		write.Sides = append(write.Sides, side)
	}
	upSpec := spec.DeepCopy()
	upSpec.State, upSpec.Metrics = nil, nil
	if k := upSpec.ExactlyOnceSink(); k != nil && spec.State != nil {
		// Exactly-once, the upstream part's transactions, of the rows and
		// marks written with the offsets read, keep the state's pace,
		// within the producer's transaction timeout.
		every := *spec.State.CheckpointInterval
		every.Duration = min(every.Duration, v1alpha1.MaxTransactionInterval)
		k.TransactionInterval = &every
	}
	upOpts := opts
	upOpts.Sink, upOpts.DeadLetter = nil, nil
	// Every column: rows in the repartition topic outlive a change of the
	// query, which may read more of them.
	upOpts.reads = map[string][]bool{}
	if opts.Logger != nil {
		upOpts.Logger = opts.Logger.With("part", "upstream")
	}
	up, err := build(upSpec, upProg, schemas, upOpts, write)
	if err != nil {
		return nil, err
	}
	// The upstream part passes the event time of every record it reads on
	// to the repartitioned part, which orders its state by it.
	for _, name := range prog.Sources() {
		up.eventTimes[name] = prog.EventTimeOf(name)
	}
	p, err := build(spec, prog, schemas, opts, read)
	if err != nil {
		up.close()
		return nil, err
	}
	p.upstream = up
	return p, nil
}

// build makes a pipeline of a planned spec and opens its connectors. With
// rp, it is a part of a repartitioned query: the upstream part, which
// writes to the repartition topic (rp.Writes), or the part that reads it.
func build(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, schemas map[string][]value.Column, opts Options, rp *connector.Repartition) (*Pipeline, error) {
	var err error
	p := &Pipeline{
		spec:        spec,
		prog:        prog,
		repartition: rp,
		inputCols:   schemas[prog.Source],
		inputs:      schemas,
		reads:       opts.reads,
		log:         opts.Logger,
		stop:        make(chan struct{}),
		strategy:    spec.ErrorPolicy.Strategy,
		started:     time.Now(),
		clock:       opts.Clock,
		statement:   opts.statement,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.reads == nil {
		p.reads = readColumns(spec, prog, schemas)
	}
	p.statePlan = prog.StatePlan()
	if p.readsRepartition() {
		p.statePlan += "Read through the repartition topic, partitioned by the keys\n"
	}
	// Which columns held rows hold is said, not hashed: a query that reads
	// fewer restores the state (cannotRestore).
	p.stateFingerprint = streamop.Fingerprint(p.statePlan)
	if prog.HoldsRows() && !p.readsRepartition() { // the topic's rows are whole
		p.statePlan += heldColumns(prog.Sources(), p.reads, schemas)
	}
	p.tracer = opts.Tracer // nil: no spans, and no cost for them
	p.observer = opts.Observer
	if p.observer == nil {
		p.observer = noObserver{}
	}
	if p.metrics, err = usermetric.New(spec.Metrics, prog.Output); err != nil {
		return nil, err
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
	p.runID = newRunID()

	if err := p.open(opts); err != nil {
		p.closeReaders()
		return nil, err
	}
	if err := p.openCheckpoints(opts); err != nil {
		p.close()
		return nil, err
	}
	p.seekRestored()
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
			o.Acked = func(a message.Ack) { c.Ack(a); next(a) }
		}
	}
	if be, ok := p.sink.(connector.BatchEncoder); ok && !prog.Stateful() {
		p.batchEncoder = be
	}
	return p, nil
}

// newRunID returns a random name for a run, which batches' correlation
// ids start with.
func newRunID() string {
	var id [4]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// configure reads the spec, defaulted by New.
func (p *Pipeline) configure() {
	rt := p.spec.Runtime
	p.parallelism = int(rt.Parallelism)
	p.capacity = int(rt.ChannelCapacity)
	p.batchSize = int(rt.BatchSize)
	p.linger = rt.BatchLinger.Duration
	p.shutdownTimeout = rt.ShutdownTimeout.Duration
	p.direct = rt.Mode == v1alpha1.Direct
	p.maxRetries = int(*p.spec.ErrorPolicy.MaxRetries)
	p.backoff = p.spec.ErrorPolicy.RetryBackoff.Duration
	p.eventTimes = map[string]int{}
	p.timing = map[string]sourceTiming{}
	p.tables = map[string]bool{}
	for _, src := range p.spec.Sources {
		if src.Table != nil {
			p.tables[src.Name] = true
		}
	}
	for _, source := range p.prog.Sources() {
		p.eventTimes[source] = p.prog.EventTimeOf(source)
	}
	// A join's repartition topic's lanes take each side's bound off its
	// progress, the least of which is their event time: the stage takes
	// none off again.
	joinLanes := p.readsRepartition() && len(p.repartition.Sides) > 1
	for _, src := range p.spec.Sources {
		if et := src.EventTime; p.eventTimes[src.Name] >= 0 && et != nil {
			bound := et.MaxOutOfOrderness.Duration
			if joinLanes {
				bound = 0
			}
			p.timing[src.Name] = sourceTiming{bound: bound, idle: et.IdleTimeout.Duration}
			p.lateToPolicy = p.lateToPolicy || et.LateRecords == v1alpha1.LateErrorPolicy
			p.allowedLateness = max(p.allowedLateness, int64(et.AllowedLateness.Duration))
		}
	}
}

// close closes what New opened, for a pipeline that does not run.
func (p *Pipeline) close() {
	p.closeReaders()
	p.sink.Close()
	if p.dlq != nil {
		p.dlq.Close()
	}
	if p.ckpt != nil {
		p.ckpt.store.Close()
	}
}

func (p *Pipeline) closeReaders() {
	for _, r := range p.readers {
		_ = r.Close()
	}
	for _, s := range p.sources {
		_ = s.Close()
	}
}

// Stop asks the pipeline to finish: sources stop reading, batches in flight
// drain through the workers and the sink, and Run returns. If draining takes
// longer than the shutdown timeout, Run aborts.
func (p *Pipeline) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	if p.upstream != nil {
		p.upstream.Stop()
	}
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
	p.state.Store(failed)
	if cancel != nil {
		cancel(err)
	}
}

// noteError makes msg the last error, unless an error ended the run: that
// one stays, as the reason it failed (records failing after it, in
// batches still in flight, would have hidden it).
func (p *Pipeline) noteError(msg string) {
	p.mu.Lock()
	if p.fatalErr == nil {
		p.lastError = msg
	}
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
	go p.drainOnStop(ctx, stopReading)
	if p.parts != nil {
		return p.runSet(ctx, readCtx)
	}

	p.log.Info("pipeline starting", "run", p.runID, "mode", p.spec.Runtime.Mode,
		"partitions", len(p.readers), "parallelism", p.parallelism,
		"channelCapacity", p.capacity, "batchSize", p.batchSize)
	p.state.Store(running)
	if p.ckpt != nil {
		p.ckpt.startSaver(ctx, p)
	}
	var upstreamDone chan struct{}
	if up := p.upstream; up != nil {
		upstreamDone = make(chan struct{})
		go func() {
			defer close(upstreamDone)
			if err := up.Run(ctx); err != nil && ctx.Err() == nil {
				p.fatal(fmt.Errorf("repartitioning: %w", err))
			}
		}()
	}
	if p.direct {
		p.runDirect(ctx, readCtx)
	} else {
		p.runPipelined(ctx, readCtx)
	}
	if upstreamDone != nil {
		p.upstream.Stop()
		<-upstreamDone
	}
	if p.ckpt != nil {
		p.ckpt.stopSaver() // the last checkpoint acknowledges before the sources close
	}
	if ps, ok := p.sink.(connector.ProgressSink); ok && p.err() == nil {
		// So does the progress of the last batches.
		settleCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ps.Settle(settleCtx)
		cancel()
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
	if p.ckpt != nil {
		p.ckpt.store.Close()
	}
	err := p.err()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		p.state.Store(failed)
		// Records in flight when the run was aborted are lost to this run.
		c := p.stats.counts()
		p.stats.failed.Add(c.InFlight)
		p.log.Error("pipeline failed", "run", p.runID, "error", err)
		return err
	}
	p.state.Store(finished)
	p.log.Info("pipeline finished", "run", p.runID)
	return nil
}

// drainOnStop waits for Stop, then stops the reading and gives the run the
// shutdown timeout to drain what it read before aborting it; or for ctx
// to end.
func (p *Pipeline) drainOnStop(ctx context.Context, stopReading context.CancelFunc) {
	select {
	case <-p.stop:
		p.state.CompareAndSwap(running, draining)
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
}

func (p *Pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatalErr
}
