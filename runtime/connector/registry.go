package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Source is an opened source: the readers of its partitions, and what they
// share.
type Source interface {
	// Readers are the partitions' readers; the pipeline closes each.
	Readers() []Reader
	// Close releases what the readers share, once they are closed.
	Close() error
}

// Transactional is an opened source whose progress commits in a
// transaction that the query's sink and dead-letter sink can join, so that
// results, dead letters and the source's offsets commit together.
type Transactional interface {
	Source
	// Transaction returns the transaction to join, or nil when the source
	// does not read in transactions.
	Transaction() Transaction
}

// Transaction is the transaction of an exactly-once source. Its concrete
// type belongs to the source's connector; a sink of the same system
// recognises it and writes in it.
type Transaction interface {
	// System names the system the transaction belongs to, e.g. "kafka".
	System() string
}

// DeadLetterSink receives the error events of the DeadLetter policy.
type DeadLetterSink interface {
	// Write makes events durable before it returns: a record counts as
	// handled once its entry is written.
	Write(ctx context.Context, events []message.ErrorEvent) error
	Close() error
}

// CheckpointTransaction is a transaction that commits at a stateful
// query's checkpoints (spec.state) rather than at an interval of its own:
// the results, dead letters and checkpoint written since the last commit,
// with the source's partitions read up to the checkpoint's offsets, so
// that state, output and input positions never disagree.
type CheckpointTransaction interface {
	Transaction
	// CommitCheckpoint commits the open transaction with each partition of
	// last read up to and including its offset, and opens the next. An
	// error means nothing of the transaction is visible: the run must stop
	// and restart from the last committed checkpoint, unless it is
	// ErrTransactionAborted.
	CommitCheckpoint(ctx context.Context, last map[*message.Origin]int64) error
}

// RoundTransaction is an exactly-once transaction that commits every
// interval, once every record read in it is handled (a statement set's):
// its source stops reading at the round's end and waits. A statement that
// keeps state (spec.state) handles its records by a checkpoint, which it
// takes once it has taken every record read in the round, and writes in
// the transaction; it writes nothing more until the round commits, since
// what it wrote after the checkpoint would commit with it.
type RoundTransaction interface {
	Transaction
	// Ending returns the round that is ending, 0 if none is, and the
	// offset of the last record read in it of each partition it read.
	Ending() (round uint64, last map[*message.Origin]int64)
	// AwaitCommit, called once a statement's checkpoint of round is
	// written, waits until round has ended; an error if it did not
	// commit, or the source failed. A round ends once every statement
	// that checkpoints at the rounds (SourceEnv.RoundCheckpoints) has
	// called it, as well as every record read being handled.
	AwaitCommit(ctx context.Context, round uint64) error
}

// ErrTransactionAborted is the error of a CheckpointTransaction's commit
// that aborted instead (the consumer group rebalanced during it), of a
// source whose partitions' state is checkpointed apart (several engines):
// nothing of the transaction is visible, and every partition read here
// goes back to its last commit in a new generation, whose first records
// restore its state from its last committed checkpoint. The run goes on.
var ErrTransactionAborted = errors.New("the transaction aborted")

// StateStoreEnv is what a state store's constructor is given.
type StateStoreEnv struct {
	// Source is the source whose system keeps the checkpoints: the
	// query's first source of the store's kind.
	Source *v1alpha1.Source
	// Group is the consumer group of sources that name none, as in
	// SourceEnv.
	Group string
	// Transaction, if not nil, is the exactly-once source's transaction
	// the checkpoints are written in.
	Transaction Transaction
	// Statement, if not empty, names the statement of a statement set
	// whose state the store keeps, apart from the others'.
	Statement string
	Logger    *slog.Logger
}

// SourceEnv is what a source's constructor is given.
type SourceEnv struct {
	// Query is the whole spec, defaulted: a source may need to know its
	// sink (an exactly-once Kafka source produces the results).
	Query *v1alpha1.StreamQuerySpec
	// Source is the source's own spec.
	Source *v1alpha1.Source
	// Columns are the source's columns, as planned.
	Columns []value.Column
	// Read, if not nil, says which of Columns the query reads: a source
	// may leave the others NULL rather than decode them. Nil reads all.
	Read []bool
	// Stateful says the query keeps state across batches, so a source with
	// partitions that move between engines must let the state follow.
	Stateful bool
	// Group is the consumer group of sources that name none; empty means
	// the connector's own default.
	Group string
	// Instance names this engine among the engines of one query, stably
	// across restarts; StaticMembership says no other live engine has it.
	Instance         string
	StaticMembership bool
	// Transaction, if not nil, is the exactly-once transaction a source
	// opened before this one began, which commits this source's
	// positions too, if it can take them.
	Transaction Transaction
	// Repartition, if not nil, says the source is read through its
	// query's repartition topic: the rows the engines wrote there, keyed
	// by the state's key, with the watermarks of the source's partitions.
	Repartition *Repartition
	// RoundCheckpoints, of a statement set's exactly-once source with
	// spec.state, is how many statements checkpoint at the end of each of
	// its transactions (RoundTransaction).
	RoundCheckpoints int
	// Rewound, if not nil, says the state of each partition is
	// checkpointed apart (several engines), so that an exactly-once
	// source whose transaction aborts can take its partitions back to
	// their last commit, each in a new generation, rather than fail: it
	// calls Rewound then, before it reads any record of the new
	// generations, and its commit returns ErrTransactionAborted.
	Rewound func()
	// Aborted, if not nil, is told when an exactly-once transaction that
	// commits every interval (not at checkpoints) aborts: the records read
	// since the last commit are read again, in the same generation, and
	// their acknowledgements are forgotten. It is called before any of
	// them is read again, once every record read of the partitions still
	// assigned was acknowledged (those of partitions taken away may be in
	// flight, in an earlier generation).
	Aborted func()
	Logger  *slog.Logger
}

// Repartition is a stateful query's repartition topic, through which
// engines that each read some partitions of a source pass its rows on
// keyed by the state's key, so that each engine holds whole keys.
type Repartition struct {
	// Sides are the sources whose rows go through the topic: the one of a
	// windowed or moving aggregate, or both of an interval join, left
	// first, each keyed by its side of the join's keys.
	Sides []RepartitionSide
	// Upstream are the sources' partitions this engine reads: the writer
	// passes on the event-time progress of those it owns.
	Upstream []*message.Origin
}

// RepartitionSide is one source whose rows go through a repartition
// topic.
type RepartitionSide struct {
	Source string
	// Key appends a row's key to dst (streamop.Program.PartitionKey); nil
	// for the reader. It is called from several goroutines at once.
	Key func(dst []byte, row value.Row) []byte
	// Columns are the rows' columns: the source's.
	Columns []value.Column
	// Idle is the source's idle timeout: a partition that sent nothing
	// for that long holds no watermark back.
	Idle time.Duration
	// Bound is the source's maximum out-of-orderness, which a join's
	// reader takes off each side's progress: its watermark is then the
	// least of the two sides', as on one engine.
	Bound time.Duration
}

// Writes says r is the writer's: the rows' keys are known.
func (r *Repartition) Writes() bool { return len(r.Sides) > 0 && r.Sides[0].Key != nil }

// Side returns the side of source's rows, or nil.
func (r *Repartition) Side(source string) *RepartitionSide {
	for i := range r.Sides {
		if r.Sides[i].Source == source {
			return &r.Sides[i]
		}
	}
	return nil
}

// RepartitionEnv is what a repartition writer's constructor is given.
type RepartitionEnv struct {
	// Source is the source whose rows are repartitioned; its system holds
	// the topic.
	Source *v1alpha1.Source
	// Group is the consumer group of sources that name none, as in
	// SourceEnv.
	Group       string
	Repartition *Repartition
	// Transaction, of an exactly-once upstream part, is its source's: the
	// rows and marks written commit with the upstream offsets.
	Transaction Transaction
	Logger      *slog.Logger
}

// ProgressSink is a sink told of each batch once it is handled (written,
// or given to the error policy), in the order of each origin's batches: a
// repartition writer then passes on the origin's event-time progress
// (Batch.MaxEventTime) after every row that made it. It acknowledges the
// batch itself, calling ack once that progress is written too: a source
// then commits no offset before the progress of its records is in the
// topic, where a partition's next owner, which reads on from the commit,
// learns it.
type ProgressSink interface {
	Handled(b *message.Batch, ack func())
	// Settle writes the progress the handled batches' acknowledgements
	// wait for, and gives them: the pipeline calls it once the last
	// batches are handled, before its sources commit and close.
	Settle(ctx context.Context)
}

// SinkEnv is what a sink's or dead-letter sink's constructor is given.
type SinkEnv struct {
	// Spec is the sink's spec.
	Spec *v1alpha1.Sink
	// Columns are the result columns, in order; empty for a dead-letter
	// sink, whose entries have a fixed shape.
	Columns []value.Column
	// Transaction, if not nil, is the exactly-once source's transaction
	// the sink writes in.
	Transaction Transaction
	// Resumable says the query checkpoints its state: a sink that can be
	// cut back to a checkpoint's position (ResumableSink) must not discard
	// its output at opening, since the pipeline resumes it.
	Resumable bool
	Logger    *slog.Logger
}

// Constructors of the connectors, registered under the spec key that
// selects them ("file", "kafka", ...).
type (
	SourceConstructor      func(env SourceEnv) (Source, error)
	SinkConstructor        func(env SinkEnv) (Sink, error)
	DeadLetterConstructor  func(env SinkEnv) (DeadLetterSink, error)
	StateStoreConstructor  func(env StateStoreEnv) (checkpoint.Store, error)
	RepartitionConstructor func(env RepartitionEnv) (Sink, error)
	RepartitionProbe       func(ctx context.Context, env RepartitionEnv) (bool, error)
	// SchemaResolver reads the latest schema of src's subject from its
	// schema registry (v1alpha1.Source.LatestSchemaSubject) and sets it
	// as the source's format schema, as if the manifest had given it.
	SchemaResolver func(ctx context.Context, src *v1alpha1.Source, log *slog.Logger) (ResolvedSchema, error)
)

// Sources are the names of the sources of resolved.
func Sources(resolved []ResolvedSchema) []string {
	names := make([]string, len(resolved))
	for i, r := range resolved {
		names[i] = r.Source
	}
	return names
}

// SchemaPatience bounds the reading of a spec's latest schemas
// (ResolveSchemas) from registries that do not answer: an engine reads
// them before it serves its probes, and says why it cannot start within
// the 20 s its liveness probe gives it.
const SchemaPatience = 15 * time.Second

// ResolvedSchema is the registered schema that gave a source its columns.
type ResolvedSchema struct {
	Source, Registry, Subject string
	// Version is the subject's version, and ID the schema's id.
	Version, ID int
}

// Registry holds the connectors an engine ships, by spec key. An engine
// builds one at start (cmd/engine registers its bundle) and the pipeline
// opens its sources and sinks through it, never naming a connector itself.
type Registry struct {
	sources           map[string]SourceConstructor
	sinks             map[string]SinkConstructor
	deadLetters       map[string]DeadLetterConstructor
	stateStores       map[string]StateStoreConstructor
	repartition       map[string]RepartitionConstructor
	repartitionProbes map[string]RepartitionProbe
	schemaResolvers   map[string]SchemaResolver
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		sources:           map[string]SourceConstructor{},
		sinks:             map[string]SinkConstructor{},
		deadLetters:       map[string]DeadLetterConstructor{},
		stateStores:       map[string]StateStoreConstructor{},
		repartition:       map[string]RepartitionConstructor{},
		repartitionProbes: map[string]RepartitionProbe{},
		schemaResolvers:   map[string]SchemaResolver{},
	}
}

// Builtins returns a registry of the connectors this package holds: file,
// stdin and datagen sources; stdout, file and null sinks and dead-letter
// sinks.
func Builtins() *Registry {
	r := NewRegistry()
	r.RegisterSource("file", openFileSource)
	r.RegisterSource("stdin", openStdinSource)
	r.RegisterSource("datagen", openDatagenSource)
	r.RegisterSink("stdout", func(env SinkEnv) (Sink, error) { return OpenStdout(env.encoder()), nil })
	r.RegisterSink("file", func(env SinkEnv) (Sink, error) { return OpenFileSink(env.Spec.File, env.encoder(), env.Resumable) })
	r.RegisterSink("null", func(SinkEnv) (Sink, error) { return NullSink{}, nil })
	r.RegisterDeadLetter("stdout", openDeadLetter)
	r.RegisterDeadLetter("file", openDeadLetter)
	r.RegisterDeadLetter("null", openDeadLetter)
	return r
}

// RegisterSource registers a source constructor under its spec key. A key
// registered twice is a programming error, and panics.
func (r *Registry) RegisterSource(key string, c SourceConstructor) { register(r.sources, key, c) }

// RegisterSink registers a sink constructor under its spec key.
func (r *Registry) RegisterSink(key string, c SinkConstructor) { register(r.sinks, key, c) }

// RegisterDeadLetter registers a dead-letter sink constructor under its
// spec key.
func (r *Registry) RegisterDeadLetter(key string, c DeadLetterConstructor) {
	register(r.deadLetters, key, c)
}

// RegisterStateStore registers the constructor of a store that keeps a
// query's checkpoints in the system of the sources of a spec key, for
// queries whose spec.state names no directory.
func (r *Registry) RegisterStateStore(key string, c StateStoreConstructor) {
	register(r.stateStores, key, c)
}

// RegisterRepartition registers the constructor of the writer of a
// repartition topic in the system of the sources of a spec key, and the
// probe of whether the topic exists.
func (r *Registry) RegisterRepartition(key string, c RepartitionConstructor, probe RepartitionProbe) {
	register(r.repartition, key, c)
	register(r.repartitionProbes, key, probe)
}

// RegisterSchemaResolver registers the reader of the latest schemas of
// the schema registries of the sources of a spec key.
func (r *Registry) RegisterSchemaResolver(key string, c SchemaResolver) {
	register(r.schemaResolvers, key, c)
}

// ResolveSchemas sets the format schema of each source of spec whose
// columns are those of its registry's latest schema
// (v1alpha1.Source.LatestSchemaSubject) to that schema, read now, and
// says which it was: the spec is then planned as if its manifest had
// given them. It changes spec, which the caller copies first if it keeps
// the manifest's. A source with problems of its own (Validate) is left for
// the planner to report them. A registry that does not answer is retried
// for a while; log, if not nil, says so. What could not be read is the
// error, as v1alpha1.Problems of the sources' registries.
func (r *Registry) ResolveSchemas(ctx context.Context, spec *v1alpha1.StreamQuerySpec, log *slog.Logger) ([]ResolvedSchema, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, SchemaPatience)
	defer cancel()
	var resolved []ResolvedSchema
	var ps v1alpha1.Problems
	// unavailable are the registries that did not answer, which the
	// sources after are not kept waiting for again.
	unavailable := map[string]error{}
	invalid := spec.Validate()
	for i := range spec.Sources {
		src := &spec.Sources[i]
		f := fmt.Sprintf("spec.sources[%d]", i)
		if src.LatestSchemaSubject() == "" || slices.ContainsFunc(invalid, func(p v1alpha1.Problem) bool {
			return p.Field == f || strings.HasPrefix(p.Field, f+".")
		}) {
			continue
		}
		field, _, reg := src.FormatSchema()
		c, err := lookup(r.schemaResolvers, src.Connector(), "source "+src.Name)
		if err == nil {
			err = unavailable[reg.URL]
		}
		if err == nil {
			var got ResolvedSchema
			if got, err = c(ctx, src, log); err == nil {
				resolved = append(resolved, got)
				continue
			}
			if errors.Is(err, format.ErrRegistryUnavailable) {
				unavailable[reg.URL] = err
			}
		}
		ps.Add(f+"."+field+".registry", "%v", err)
	}
	if len(ps) > 0 {
		return resolved, ps
	}
	return resolved, nil
}

func register[C any](m map[string]C, key string, c C) {
	if _, dup := m[key]; dup {
		panic("connector: " + key + " registered twice")
	}
	m[key] = c
}

// OpenSource opens env.Source with the constructor of its kind.
func (r *Registry) OpenSource(env SourceEnv) (Source, error) {
	c, err := lookup(r.sources, env.Source.Connector(), "source "+env.Source.Name)
	if err != nil {
		return nil, err
	}
	return c(env)
}

// OpenSink opens env.Spec as the query's sink.
func (r *Registry) OpenSink(env SinkEnv) (Sink, error) {
	c, err := lookup(r.sinks, env.Spec.Connector(), "sink")
	if err != nil {
		return nil, err
	}
	return c(env)
}

// OpenDeadLetter opens env.Spec as the dead-letter sink.
func (r *Registry) OpenDeadLetter(env SinkEnv) (DeadLetterSink, error) {
	c, err := lookup(r.deadLetters, env.Spec.Connector(), "dead-letter sink")
	if err != nil {
		return nil, err
	}
	return c(env)
}

// OpenRepartition opens the writer of the repartition topic of env's
// source, in the source's system.
func (r *Registry) OpenRepartition(env RepartitionEnv) (Sink, error) {
	c, err := lookup(r.repartition, env.Source.Connector(), "repartitioning source "+env.Source.Name)
	if err != nil {
		return nil, err
	}
	return c(env)
}

// RepartitionExists reports whether env's source's repartition topic
// exists, in the source's system: a query that ran on several engines
// left rows and state there.
func (r *Registry) RepartitionExists(ctx context.Context, env RepartitionEnv) (bool, error) {
	c, ok := r.repartitionProbes[env.Source.Connector()]
	if !ok {
		return false, nil
	}
	return c(ctx, env)
}

// OpenStateStore opens the checkpoint store in the system of the first of
// sources whose kind keeps state; it fails when none does.
func (r *Registry) OpenStateStore(sources []v1alpha1.Source, env StateStoreEnv) (checkpoint.Store, error) {
	var kinds []string
	for i := range sources {
		kind := sources[i].Connector()
		if c, ok := r.stateStores[kind]; ok {
			env.Source = &sources[i]
			return c(env)
		}
		kinds = append(kinds, kind)
	}
	return nil, fmt.Errorf("spec.state: no dir is set, and no source can keep checkpoints (%s); set spec.state.dir", strings.Join(kinds, ", "))
}

func lookup[C any](m map[string]C, key, what string) (C, error) {
	c, ok := m[key]
	switch {
	case key == "":
		return c, fmt.Errorf("%s: no connector set", what)
	case !ok:
		return c, fmt.Errorf("%s: this engine has no %s connector (it has %s)", what, key,
			strings.Join(slices.Sorted(maps.Keys(m)), ", "))
	}
	return c, nil
}

// encoder returns the encoder of the sink's format for its columns.
func (env SinkEnv) encoder() Encoder { return NewEncoder(env.Spec.Format, env.Columns) }

// Partitions is a Source of independent readers that share nothing.
type Partitions []Reader

// Readers implements Source.
func (p Partitions) Readers() []Reader { return p }

// Close implements Source: each reader is closed on its own.
func (Partitions) Close() error { return nil }

func openFileSource(env SourceEnv) (Source, error) {
	src := env.Source
	r, err := OpenFile(src.Name, src.File, src.Format, env.Columns, int(src.MaxRecordBytes))
	if err != nil {
		return nil, err
	}
	if err := r.CheckSchema(src.JSONSchema); err != nil {
		r.Close()
		return nil, err
	}
	r.Prune(env.Read)
	return Partitions{r}, nil
}

func openStdinSource(env SourceEnv) (Source, error) {
	src := env.Source
	r := OpenStdin(src.Name, src.Format, env.Columns, int(src.MaxRecordBytes))
	if err := r.CheckSchema(src.JSONSchema); err != nil {
		return nil, err
	}
	r.Prune(env.Read)
	return Partitions{r}, nil
}

func openDatagenSource(env SourceEnv) (Source, error) {
	src := env.Source
	n := max(src.Datagen.Partitions, 1)
	readers := make(Partitions, n)
	for i := range n {
		d, err := NewDatagen(src.Name, src.Datagen, i, env.Columns)
		if err != nil {
			return nil, err
		}
		d.Prune(env.Read)
		readers[i] = d
	}
	return readers, nil
}
