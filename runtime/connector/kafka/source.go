// Package kafka is Sluice's Kafka connector: a consumer-group source whose
// partitions are ordered lanes through the pipeline, committed only after
// every record of a lane is written or dead-lettered; a sink that partitions
// by key with an idempotent producer; and a dead-letter sink to a topic.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Source reads one topic as a member of a consumer group. Each partition of
// the topic is one lane, a connector.Reader that the pipeline reads in
// order. Offsets are committed only up to what the pipeline acknowledged.
type Source struct {
	reachability
	cl *kgo.Client
	// avro and protobuf are how values of those formats are written;
	// registry, if they are in the schema registry wire format, the
	// registry's client.
	avro     *v1alpha1.AvroFormat
	protobuf *v1alpha1.ProtobufFormat
	// jsonSchema checks JSON values, if set.
	jsonSchema *format.JSONSchema
	registry   *schemaRegistry
	// read says which columns the query reads, nil all (Options.Read).
	read  []bool
	sess  *kgo.GroupTransactSession // exactly-once only
	group string
	topic string
	// A partition without a committed offset starts at its first record at
	// or after startTime, else at its end when latest, else at its start.
	startTime time.Time
	latest    bool
	stateful  bool
	lanes     []*Lane
	log       *slog.Logger
	// purged, for a repartition topic, is where each partition begins
	// since this engine last deleted the records its group is past.
	purged      map[int32]int64
	purgeWarned atomic.Bool
	// instanceID makes the source a static member of the group; empty for
	// a dynamic one.
	instanceID string
	// table, for a table source (Options.Table), is its partitions'
	// loading; nil for a member of a group.
	table *tableLoad

	ctx        context.Context // ends with Close
	cancel     context.CancelFunc
	done       chan struct{}  // the poll loop ended
	commitDone chan struct{}  // the commit loop ended
	loading    sync.WaitGroup // loadEnds calls, begun only while !closed, and refreshEnds
	closing    atomic.Bool    // Close has begun: a revoke need not wait for acks
	failed     atomic.Pointer[error]
	// unhanded says records were polled that no lane got: an exactly-once
	// transaction, which commits every offset polled, must then abort.
	unhanded atomic.Bool
	dead     chan struct{} // closed when the source fails

	mu        sync.Mutex
	assigned  map[int32]bool
	acked     map[int32]int64 // next offset to commit, per partition
	committed map[int32]int64 // the group's committed offset: loaded on assignment, then what this member committed
	fetched   map[int32]int64 // next offset after the last record handed to a lane
	highWater map[int32]int64 // the partition's high watermark (last stable offset with exactly-once) at the last fetch or listing
	// begin is where an assigned partition without a committed offset
	// starts reading, as startOffset says; loaded on assignment.
	begin map[int32]int64
	// groupKnown says the group's committed offset of an assigned
	// partition was fetched, whether or not there was one: until then,
	// begin is not where it starts.
	groupKnown map[int32]bool
	inTxn      bool // records were fetched since the transaction began
	// closed is set once Close waits for the loadEnds calls: no more begin.
	closed bool
	// transactional is set before the client exists, which the group may
	// call back before Open has set sess.
	transactional bool
	// readCommitted says the client reads only committed records: an
	// exactly-once source or one whose offsets commit in its transactions.
	readCommitted bool
	// owner, if set, is the exactly-once source whose transactions commit
	// this source's offsets, with its own: this source commits none
	// itself. An owner that commits at checkpoints leaves the follower its
	// own poll loop; one that commits every interval polls the follower
	// in its own loop (driven), so that nothing enters the pipeline from
	// either while a transaction ends.
	owner *Source
	// followers are the sources whose offsets this one's transactions
	// commit (their owner is this source).
	followers []*Source
	// moved says the group took partitions from this follower: the
	// transaction would commit offsets of partitions it no longer reads,
	// or, at a checkpoint, with state that no longer holds their rows.
	moved atomic.Bool
	// spoiled says the open transaction must abort, its records read and
	// written again: a record produced in it (a repartition writer's
	// mark) failed, or the group took partitions with results in it
	// without the transaction session saying so (checkAssignment).
	spoiled atomic.Bool
	// txnFirst, of a driven follower, is the offset of each partition's
	// first record handed in the open transaction: where an abort sets
	// the client back to.
	txnFirst map[int32]int64
	// epoch is the group's generation at the last assignment.
	epoch int64
	// commits, for a checkpointed exactly-once source, takes the
	// pipeline's checkpoint commits to the poll loop, which ends each
	// transaction between two polls.
	commits chan commitRequest
	// onRewind is Options.OnRewind; rewinds counts the rewinds, for the
	// poll loop, which makes them.
	onRewind func()
	rewinds  uint64
	// onAbort is Options.OnAbort.
	onAbort func()
	// maxRecordBytes is the most a record of the transactional client may
	// hold (its batch limit).
	maxRecordBytes int32

	// txnMu, of a transactional source, is held while a transaction ends
	// and the next begins: a writer that produces in the transactions on
	// its own time (a repartition writer's marks) holds it to produce
	// (inTransaction). txnEnded are told of each transaction's outcome,
	// under it; txnClosed says the last one ended.
	txnMu     sync.Mutex
	txnEnded  []func(committed bool)
	txnClosed bool
	// rounds says, of a statement set's transactions, which is ending and
	// which ended (connector.RoundTransaction).
	rounds rounds
	// repartitionTopic is the topic whose records the transactional
	// client sends to the partition they name (repartitionPartitioner).
	repartitionTopic string
}

// Options configure a source.
type Options struct {
	// Group is the consumer group.
	Group string
	// Read, if not nil, says which columns the query reads (the columns
	// Open is given): the others are left NULL, undecoded.
	Read []bool
	// Avro and Protobuf are how values of those formats are written.
	Avro     *v1alpha1.AvroFormat
	Protobuf *v1alpha1.ProtobufFormat
	// JSONSchema, of format json, is the JSON Schema each value must
	// satisfy, if set.
	JSONSchema string
	// CommitInterval is how often acknowledged offsets are committed.
	CommitInterval time.Duration
	// RevokeTimeout bounds the wait, on a rebalance, for a revoked
	// partition's records in flight to be acknowledged.
	RevokeTimeout time.Duration
	Logger        *slog.Logger
	// TransactionalID, if set, makes the source exactly-once: it reads only
	// committed records, and its client is also the producer of the sinks
	// opened with it (OpenSink, OpenDeadLetter), whose records and this
	// source's offsets commit in one transaction every TransactionInterval.
	// It must be unique among the live members of the group and stable
	// across a restart, so that a restarted engine fences its predecessor's
	// open transaction.
	TransactionalID     string
	TransactionInterval time.Duration
	// Checkpointed, with TransactionalID, makes the transactions commit at
	// the pipeline's checkpoints (CommitCheckpoint) with their state,
	// instead of every TransactionInterval.
	Checkpointed bool
	// OnRewind, with Checkpointed, says each partition's state is
	// checkpointed apart (several engines): a transaction the group's
	// rebalance aborts rewinds every partition read here to its last
	// commit, in a new generation, then calls OnRewind, before any record
	// of the new generation is read, and CommitCheckpoint returns
	// connector.ErrTransactionAborted, rather than fail the source.
	OnRewind func()
	// OnAbort, without Checkpointed, is called when a transaction aborts,
	// before its records are read again (connector.SourceEnv.Aborted).
	OnAbort func()
	// Rounds, without Checkpointed, makes every TransactionInterval the
	// end of a round (connector.RoundTransaction), records read in it or
	// not, which waits for the checkpoints of that many statements: a
	// statement set's stateful statements checkpoint at each, and write
	// results of no record read (a window closed by the clock) in the
	// transaction, which must commit too.
	Rounds int
	// Owner, if set, is the checkpointed exactly-once source (opened with
	// TransactionalID and Checkpointed, in the same group) whose
	// transactions commit this source's offsets with its own: a query that
	// reads several topics, such as a join, commits all their offsets, its
	// results and its state at once. The source reads only committed
	// records and commits nothing itself.
	Owner *Source
	// Producer is the sink whose producer settings the transactional client
	// takes; with TransactionalID only.
	Producer *v1alpha1.KafkaSink
	// MetadataMaxAge is how often the client refreshes the topic's metadata
	// at the latest, which is how it learns of partitions added; franz-go's
	// default (5m) when zero.
	MetadataMaxAge time.Duration
	// Schema is the source's declared columns: which come from the record
	// key or a header rather than the value.
	Schema []v1alpha1.Column
	// Stateful says the pipeline keeps state built from the records (a
	// windowed query): acknowledgements wait for window results, so a
	// revoke cannot wait for them. It commits what was acknowledged, moves
	// the partition to a new generation, so that the pipeline drops the
	// state built from it, and lets the partition go at once; its new owner
	// reads the records after the commit and rebuilds that state.
	Stateful bool
	// Instance, if set, makes the source a static member of the group
	// (KIP-345) under an id made of it and the topic: a process restarted
	// under the same instance (a container restarted in its pod) takes its
	// partitions back at once instead of waiting for the session timeout.
	// It must be unique among the group's live members and stable across a
	// restart; a graceful Close leaves the group, so that a member going
	// away for good gives its partitions up at once.
	Instance string
	// Repartition, if set, says the topic is a repartition topic
	// (v1alpha1.RepartitionTopic) of these sources: its records are rows
	// in their binary form and the upstream partitions' marks, which set
	// the batches' event time.
	Repartition *connector.Repartition
	// Table makes the source a table's: it reads every partition from its
	// start, committed records only, in no group, commits nothing, and
	// its lanes return connector.ErrLoaded once they have returned every
	// record their partition held at the start. A record without a value
	// (a tombstone) is a row of its key columns only, whose offset the
	// batch's Deletes list. Group, transactions, Instance and startOffset
	// do not apply.
	Table bool
}

// DefaultCommitInterval is how often a source commits acknowledged offsets.
// Records written after the last commit are written again after a crash, so
// the interval bounds the duplicates; a commit is one small request to the
// group coordinator.
const DefaultCommitInterval = 100 * time.Millisecond

// InstanceID is the group.instance.id of a static member for instance and
// topic: Kafka allows letters, digits, '.', '_' and '-', at most 249 of them.
func InstanceID(instance, topic string) string {
	id := []byte(instance + "." + topic)
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			id[i] = '_'
		}
	}
	return string(id[:min(len(id), 249)])
}

// Open joins the consumer group and starts fetching. cols is the schema:
// the value's columns, then schemas.KafkaMeta.
func Open(spec *v1alpha1.KafkaSource, source string, f v1alpha1.Format, cols []value.Column, opts Options) (*Source, error) {
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = DefaultCommitInterval
	}
	if opts.RevokeTimeout <= 0 {
		opts.RevokeTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		group: opts.Group, topic: spec.Topic, stateful: opts.Stateful, log: opts.Logger,
		done: make(chan struct{}), commitDone: make(chan struct{}), dead: make(chan struct{}),
		rounds:   rounds{changed: make(chan struct{}), parties: opts.Rounds},
		assigned: map[int32]bool{}, acked: map[int32]int64{}, committed: map[int32]int64{}, fetched: map[int32]int64{},
		highWater: map[int32]int64{}, begin: map[int32]int64{}, groupKnown: map[int32]bool{},
	}
	if opts.Instance != "" {
		s.instanceID = InstanceID(opts.Instance, spec.Topic)
	}
	// The context exists before the client: the group calls onAssigned as
	// soon as it joins.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	opened := false
	defer func() {
		if !opened {
			s.cancel()
		}
	}()
	start := kgo.NewOffset().AtStart()
	startTime, err := spec.StartTime()
	switch {
	case err != nil:
		return nil, fmt.Errorf("source %s: startOffset: %w", source, err)
	case !startTime.IsZero():
		start = kgo.NewOffset().AfterMilli(startTime.UnixMilli())
	case spec.StartOffset == "latest":
		start = kgo.NewOffset().AtEnd()
	}
	s.startTime, s.latest = startTime, spec.StartOffset == "latest"
	if opts.Table {
		s.table = &tableLoad{marked: map[int32]bool{}, seen: map[int32]int64{}, probed: map[int32]int64{}}
		s.group, s.instanceID, start = "", "", kgo.NewOffset().AtStart()
		s.startTime, s.latest = time.Time{}, false
	}
	groupOpts, err := ClientOptions(spec.Brokers, &spec.KafkaSecurity)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	if s.table != nil {
		s.table.opts = groupOpts
	}
	if spec.SessionTimeout != nil && s.table == nil {
		groupOpts = append(groupOpts, kgo.SessionTimeout(spec.SessionTimeout.Duration))
	}
	if s.instanceID != "" {
		groupOpts = append(groupOpts, kgo.InstanceID(s.instanceID))
	}
	if opts.MetadataMaxAge > 0 {
		groupOpts = append(groupOpts, kgo.MetadataMaxAge(opts.MetadataMaxAge), kgo.MetadataMinAge(min(opts.MetadataMaxAge, 5*time.Second)))
	}
	clientOpts := append(groupOpts,
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(spec.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
			s.onRevoked(ctx, lost, opts.RevokeTimeout)
		}),
		kgo.OnPartitionsLost(s.onLost),
		kgo.OnOffsetsFetched(s.onOffsetsFetched),
	)
	if s.table != nil {
		clientOpts = append(groupOpts, kgo.ConsumeTopics(spec.Topic), kgo.ConsumeResetOffset(start),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		opts.TransactionalID, opts.Owner = "", nil
	}
	var cl *kgo.Client
	s.transactional = opts.TransactionalID != ""
	s.owner = opts.Owner
	s.readCommitted = s.transactional || s.owner != nil || s.table != nil
	if s.owner != nil {
		if !s.owner.Transactional() {
			return nil, fmt.Errorf("source %s: its offsets can commit only in an exactly-once source's transactions", source)
		}
		if s.owner.group != s.group {
			return nil, fmt.Errorf("source %s: exactly-once commits its offsets with those of topic %s, in group %s, so it must read in that group, not %s", source, s.owner.topic, s.owner.group, s.group)
		}
		clientOpts = append(clientOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if s.transactional {
		s.repartitionTopic = v1alpha1.RepartitionTopic(opts.Group)
		clientOpts = append(clientOpts, producerOptions(opts.Producer)...)
		s.maxRecordBytes = v1alpha1.DefaultMaxBatchBytes
		if opts.Producer != nil && opts.Producer.MaxBatchBytes > 0 {
			s.maxRecordBytes = opts.Producer.MaxBatchBytes
		}
		s.sess, err = kgo.NewGroupTransactSession(append(clientOpts,
			kgo.TransactionalID(opts.TransactionalID),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RecordPartitioner(repartitionPartitioner{topic: s.repartitionTopic, other: kgo.StickyKeyPartitioner(nil)}),
		)...)
		if err == nil {
			cl = s.sess.Client()
		}
	} else if s.table != nil {
		cl, err = kgo.NewClient(clientOpts...)
	} else {
		// A rebalance waits until the revoked partitions' records in flight
		// are written and committed (onRevoked), and the poll loop lets it
		// run between polls. An exactly-once source does not block: the
		// session aborts a transaction open across a rebalance, and its
		// End, which waits for a heartbeat, must not wait for the poll
		// loop that calls it.
		cl, err = kgo.NewClient(append(clientOpts, kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())...)
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: kafka client: %w", source, err)
	}
	s.read = opts.Read
	s.cl = cl
	var reg *v1alpha1.SchemaRegistry
	switch {
	case f == v1alpha1.FormatAvro && opts.Avro != nil:
		s.avro, reg = opts.Avro, opts.Avro.Registry
	case f == v1alpha1.FormatProtobuf && opts.Protobuf != nil:
		s.protobuf, reg = opts.Protobuf, opts.Protobuf.Registry
	}
	if opts.JSONSchema != "" && f == v1alpha1.FormatJSON {
		if s.jsonSchema, err = format.CompileJSONSchema(opts.JSONSchema); err != nil {
			cl.Close()
			return nil, fmt.Errorf("source %s: jsonSchema: %w", source, err)
		}
	}
	if reg != nil {
		if s.registry, err = newSchemaRegistry(s.ctx, f, reg, s.log); err != nil {
			cl.Close()
			return nil, fmt.Errorf("source %s: %w", source, err)
		}
	}
	partitions, err := partitionCount(cl, spec.Topic, opts.Logger)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	valueCols := cols[:len(cols)-len(schemas.KafkaMeta)]
	// A lane decodes whole values into its rows when no column comes from
	// the key or a header; otherwise useSchema gives it a decoder of the
	// value's columns alone. A repartition topic's rows are decoded by
	// the lane's sides.
	wholeValues := opts.Repartition == nil && !slices.ContainsFunc(opts.Schema, func(c v1alpha1.Column) bool { return c.Key || c.Header != "" })
	lanes := make([]*Lane, 0, partitions)
	for p := range partitions {
		l := &Lane{
			src:       s,
			origin:    &message.Origin{Source: source, Partition: p, Topic: spec.Topic},
			ch:        make(chan fetched, 4),
			stopped:   make(chan struct{}),
			width:     len(cols),
			meta:      len(valueCols),
			binaryKey: spec.KeyFormat == v1alpha1.KeyFormatAvro || spec.KeyFormat == v1alpha1.KeyFormatProtobuf,
		}
		if wholeValues {
			if l.dec, err = s.valueDecoder(f, valueCols, false, s.readOf(nil, len(valueCols))); err != nil {
				cl.Close()
				return nil, fmt.Errorf("source %s: %w", source, err)
			}
		}
		if opts.Repartition != nil {
			l.sides = newLaneSides(opts.Repartition)
		}
		l.origin.Acked = l.acked
		// Read elsewhere until the group assigns it here, which it may have
		// done already.
		l.origin.Away.Store(true)
		lanes = append(lanes, l)
	}
	s.mu.Lock()
	s.lanes = lanes
	if s.table != nil {
		for p := range partitions {
			s.assigned[p], s.groupKnown[p] = true, true
			lanes[p].table = true
		}
	}
	for p := range s.assigned {
		s.markAssigned(p)
	}
	s.mu.Unlock()
	if opts.Repartition == nil { // a repartition topic's rows come whole, key and header columns included
		if err := s.useSchema(spec, f, opts.Schema, cols); err != nil {
			cl.Close()
			return nil, fmt.Errorf("source %s: %w", source, err)
		}
	}
	go s.watch(s.ctx, cl, "source "+source, spec.TopicNames(), s.log)
	s.loading.Go(func() { s.refreshEnds(s.ctx, cl) })
	if s.sess != nil {
		interval := opts.TransactionInterval
		if interval <= 0 {
			interval = v1alpha1.DefaultTransactionInterval
		}
		// The producer ID now, not at the first write: taking it fences
		// this instance's predecessor and aborts the transaction it left
		// open, whose checkpoints would otherwise hold back the end of the
		// checkpoint topic that a partition's restore waits for.
		fence, cancel := context.WithTimeout(s.ctx, time.Minute)
		id, epoch, err := cl.ProducerID(fence)
		cancel()
		if err != nil {
			s.sess.Close()
			return nil, fmt.Errorf("source %s: taking the transactional id %s: %w", source, opts.TransactionalID, err)
		}
		s.log.Info("kafka: took the transactional id, fencing its earlier holder", "component", "kafka", "transactionalID", opts.TransactionalID, "producerID", id, "producerEpoch", epoch)
		if err := s.sess.Begin(); err != nil {
			s.sess.Close()
			return nil, fmt.Errorf("source %s: beginning a transaction: %w", source, err)
		}
		if opts.Checkpointed {
			s.commits = make(chan commitRequest)
			s.onRewind = opts.OnRewind
			interval = 0
		} else {
			s.onAbort = opts.OnAbort
		}
		go s.poll(s.ctx, interval)
		close(s.commitDone) // the transactions commit
	} else if s.owner != nil {
		if s.driven() {
			s.txnFirst = map[int32]int64{}
			close(s.done) // the owner's poll loop polls this source too
		} else {
			go s.poll(s.ctx, 0)
		}
		s.owner.mu.Lock()
		s.owner.followers = append(s.owner.followers, s)
		s.owner.mu.Unlock()
		close(s.commitDone) // the owner's transactions commit
	} else if s.table != nil {
		go s.poll(s.ctx, 0)
		close(s.commitDone) // a table commits nothing
		s.loading.Go(func() { s.loadTable(s.ctx) })
	} else {
		go s.poll(s.ctx, 0)
		go s.commitLoop(s.ctx, opts.CommitInterval)
	}
	if opts.Repartition != nil && s.owner == nil {
		s.purged = map[int32]int64{}
		go s.purgeLoop(s.ctx, purgeInterval)
	}
	opened = true
	return s, nil
}

// repartitionPartitioner sends the records of a transactional client to
// the group's repartition topic to the partition they name, which their
// writer chose by their rows' key, and others as other does.
type repartitionPartitioner struct {
	topic string
	other kgo.Partitioner
}

// ForTopic implements kgo.Partitioner.
func (p repartitionPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.topic {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.other.ForTopic(topic)
}

// inTransaction calls produce while the transaction is open, so that what
// it produces commits or aborts with the records read in it; not once the
// last transaction ended. produce reports whether it produced anything.
func (s *Source) inTransaction(produce func() bool) {
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	if s.txnClosed || !produce() {
		return
	}
	s.mu.Lock()
	s.inTxn = true // what it produced commits at the next interval
	s.mu.Unlock()
}

// onTransactionEnd has f told of each transaction's outcome, before the
// next begins.
func (s *Source) onTransactionEnd(f func(committed bool)) {
	s.txnMu.Lock()
	s.txnEnded = append(s.txnEnded, f)
	s.txnMu.Unlock()
}

// endedTransaction tells of a transaction's outcome; s.txnMu is held.
func (s *Source) endedTransaction(committed bool) {
	for _, f := range s.txnEnded {
		f(committed)
	}
}

// partitionCount reads the topic's partition count, waiting a little for a
// broker that is starting.
func partitionCount(cl *kgo.Client, topic string, log *slog.Logger) (int32, error) {
	adm := kadm.NewClient(cl)
	var lastErr error
	for attempt := range 30 {
		if attempt > 0 {
			wait := time.Duration(min(attempt, 10)) * 500 * time.Millisecond
			log.Warn("kafka: cannot list the topic's partitions yet; retrying", "component", "kafka", "topic", topic, "attempt", attempt, "backoff", wait, "error", lastErr)
			time.Sleep(wait)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		topics, err := adm.ListTopics(ctx, topic)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		td, ok := topics[topic]
		if !ok || td.Err != nil {
			lastErr = fmt.Errorf("topic %s: %v", topic, td.Err)
			continue
		}
		return int32(len(td.Partitions)), nil
	}
	return 0, fmt.Errorf("reading the partitions of topic %s: %w", topic, lastErr)
}

// Transactional reports whether the source is exactly-once.
func (s *Source) Transactional() bool { return s.sess != nil }

// driven says the source is a follower whose owner commits every interval
// and polls it.
func (s *Source) driven() bool { return s.owner != nil && s.owner.commits == nil }

// drivenFollowers returns the followers this source's poll loop polls.
func (s *Source) drivenFollowers() []*Source {
	if s.commits != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.followers
}

// Lanes returns one reader per partition of the topic.
func (s *Source) Lanes() []*Lane { return s.lanes }

// fail records an error that ends the source; its lanes return it.
func (s *Source) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		close(s.dead)
		s.log.Error("kafka source failed", "component", "kafka", "topic", s.topic, "error", err)
	}
}

// err is the error that ended the source, if any.
func (s *Source) err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Close commits what was acknowledged, leaves the group and closes the
// client. The pipeline calls it after draining, so everything written is
// committed.
func (s *Source) Close() error {
	// The pipeline has drained: what was fetched and not acknowledged was
	// never read, and a successor reads it from the committed offset.
	s.closing.Store(true)
	s.cancel()
	<-s.done
	<-s.commitDone // a commit it had begun is settled, or will be made again below
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.loading.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.sess != nil {
		if s.purged != nil {
			s.purge(ctx) // up to the last committed checkpoint
		}
		return s.closeTransactional(ctx)
	}
	if s.table != nil {
		s.cl.Close()
		return nil
	}
	s.commit(ctx, nil)
	if s.purged != nil {
		s.purge(ctx)
	}
	// With BlockRebalanceOnPoll, leaving the group waits for the poller to
	// allow the rebalance; the poller has stopped, so allow it here.
	s.cl.AllowRebalance()
	s.leave(ctx)
	s.cl.Close()
	return nil
}

// leave takes a static member out of the group at once. A dynamic member
// leaves as its client closes; a static one would otherwise keep its
// partitions, unread, for the session timeout, waiting for a restart under
// its instance id that a stopped engine (a deleted or replaced pod) never
// makes. A crash does not come here: its restart takes the partitions back.
func (s *Source) leave(ctx context.Context) {
	if s.instanceID == "" {
		return
	}
	member, _ := s.cl.GroupMetadata()
	// Ends the client's group management, so that it does not rejoin once
	// the member is gone; for a static member it sends nothing itself.
	if err := s.cl.LeaveGroupContext(ctx); err != nil {
		s.log.Warn("kafka: leaving the group", "component", "kafka", "group", s.group, "error", err)
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = s.group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID, m.InstanceID = member, &s.instanceID
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, s.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, m := range resp.Members {
			err = errors.Join(err, kerr.ErrorForCode(m.ErrorCode))
		}
	}
	switch {
	case err == nil, errors.Is(err, kerr.UnknownMemberID):
		s.log.Info("kafka: left the group", "component", "kafka", "group", s.group, "instance", s.instanceID)
	case errors.Is(err, kerr.FencedInstanceID):
		s.log.Info("kafka: a successor already holds this instance id; not leaving the group", "component", "kafka", "group", s.group, "instance", s.instanceID)
	default:
		s.log.Warn("kafka: leaving the group failed; its partitions move after the session timeout", "component", "kafka", "group", s.group, "instance", s.instanceID, "error", err)
	}
}

// closeTransactional ends the last transaction: a commit when every record
// fetched was acknowledged, else an abort, since the transaction would
// commit the offsets of records the pipeline never read. Either way the
// output and the committed offsets agree.
func (s *Source) closeTransactional(ctx context.Context) error {
	defer s.sess.CloseAllowingRebalance()
	followers := s.drivenFollowers()
	try := kgo.TryAbort
	// A checkpointed source's last checkpoint committed what its state
	// holds; what came after is not in any checkpoint.
	if s.commits == nil && s.drained(nil) && !s.unhanded.Load() && !s.spoiled.Load() && !slices.ContainsFunc(followers, (*Source).unsettled) {
		try = kgo.TryCommit
	}
	next := followerOffsets(followers)
	s.txnMu.Lock()
	s.txnClosed = true
	committed, err := s.sess.End(withOffsets(ctx, next), try)
	unknown := false
	if err != nil && try == kgo.TryCommit {
		// Close cancelled the poll loop in the middle of a transaction's
		// end, whose outcome is unknown (or the commit failed): it cannot
		// be committed again, but an abort, by bumping the producer's
		// epoch, settles it, committed or not. Left open, it would hold
		// read_committed readers of what it wrote back until the
		// brokers' transaction timeout.
		s.log.Info("kafka: the last transaction cannot commit; aborting it, to settle it", "component", "kafka", "topic", s.topic, "error", err)
		_, err = s.sess.End(ctx, kgo.TryAbort)
		committed, unknown = false, true
	}
	if err == nil && !unknown {
		s.endedTransaction(committed)
	}
	s.rounds.end(err == nil && !unknown && committed)
	s.txnMu.Unlock()
	// A static member leaves whatever the outcome: closed without leaving,
	// it would hold its partitions, and every rebalance of the group, for
	// the session timeout.
	s.leave(ctx)
	switch {
	case err != nil:
		// The pipeline drops a source's Close error: say it here.
		s.log.Warn("kafka: ending the last transaction failed; the brokers abort it, or the successor fences it", "component", "kafka", "topic", s.topic, "error", err)
		return fmt.Errorf("kafka: ending the last transaction: %w", err)
	case unknown:
		s.log.Info("kafka: the last transaction is settled, committed or not: its results and offsets commit together or not at all, and a successor reads on from what committed", "component", "kafka", "topic", s.topic)
	case committed:
		settle(next)
	default:
		s.mu.Lock()
		s.log.Info("kafka: the last transaction was aborted; a successor reads its records again", "component", "kafka", "topic", s.topic, "fetched", s.fetched, "acked", s.acked)
		s.mu.Unlock()
	}
	return nil
}
