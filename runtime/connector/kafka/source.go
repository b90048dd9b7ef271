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
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// The columns every Kafka source has besides its value's schema.
var MetaColumns = []format.Column{
	{Name: "_key", Type: value.String},
	{Name: "_partition", Type: value.Int},
	{Name: "_offset", Type: value.Int},
	{Name: "_timestamp", Type: value.Timestamp},
}

// Source reads one topic as a member of a consumer group. Each partition of
// the topic is one lane, a connector.Reader that the pipeline reads in
// order. Offsets are committed only up to what the pipeline acknowledged.
type Source struct {
	reachability
	cl       *kgo.Client
	sess     *kgo.GroupTransactSession // exactly-once only
	topic    string
	stateful bool
	lanes    []*Lane
	log      *slog.Logger

	cancel  context.CancelFunc
	done    chan struct{} // the poll loop ended
	closing atomic.Bool   // Close has begun: a revoke need not wait for acks
	failed  atomic.Pointer[error]
	// unhanded says records were polled that no lane got: an exactly-once
	// transaction, which commits every offset polled, must then abort.
	unhanded atomic.Bool
	dead     chan struct{} // closed when the source fails

	mu        sync.Mutex
	assigned  map[int32]bool
	acked     map[int32]int64 // next offset to commit, per partition
	committed map[int32]int64
	fetched   map[int32]int64 // next offset after the last record handed to a lane
	highWater map[int32]int64 // the partition's high watermark at the last fetch
	inTxn     bool            // records were fetched since the transaction began
}

// Options configure a source.
type Options struct {
	// Group is the consumer group.
	Group string
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
}

// Open joins the consumer group and starts fetching. cols is the schema:
// the value's columns, then MetaColumns.
func Open(spec *v1alpha1.KafkaSource, source string, f v1alpha1.Format, cols []format.Column, opts Options) (*Source, error) {
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	if opts.RevokeTimeout <= 0 {
		opts.RevokeTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		topic: spec.Topic, stateful: opts.Stateful, log: opts.Logger, done: make(chan struct{}), dead: make(chan struct{}),
		assigned: map[int32]bool{}, acked: map[int32]int64{}, committed: map[int32]int64{}, fetched: map[int32]int64{},
		highWater: map[int32]int64{},
	}
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
	groupOpts, err := ClientOptions(spec.Brokers, &spec.KafkaSecurity)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	if spec.SessionTimeout != nil {
		groupOpts = append(groupOpts, kgo.SessionTimeout(spec.SessionTimeout.Duration))
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
	)
	var cl *kgo.Client
	if opts.TransactionalID != "" {
		clientOpts = append(clientOpts, producerOptions(opts.Producer)...)
		s.sess, err = kgo.NewGroupTransactSession(append(clientOpts,
			kgo.TransactionalID(opts.TransactionalID),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)...)
		if err == nil {
			cl = s.sess.Client()
		}
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
	s.cl = cl
	partitions, err := partitionCount(cl, spec.Topic, opts.Logger)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	valueCols := cols[:len(cols)-len(MetaColumns)]
	for p := range partitions {
		l := &Lane{
			src:    s,
			origin: &message.Origin{Source: source, Partition: p, Topic: spec.Topic},
			ch:     make(chan fetched, 4),
			width:  len(cols),
			meta:   len(valueCols),
		}
		if f == v1alpha1.FormatCSV {
			l.dec = format.NewCSVDecoderInOrder(valueCols)
		} else {
			l.dec = format.NewJSONDecoder(valueCols)
		}
		l.origin.Acked = l.acked
		s.lanes = append(s.lanes, l)
	}
	if err := s.useSchema(spec, f, opts.Schema, cols); err != nil {
		cl.Close()
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watch(ctx, cl, "source "+source, s.log)
	if s.sess != nil {
		interval := opts.TransactionInterval
		if interval <= 0 {
			interval = DefaultTransactionInterval
		}
		if err := s.sess.Begin(); err != nil {
			cancel()
			s.sess.Close()
			return nil, fmt.Errorf("source %s: beginning a transaction: %w", source, err)
		}
		go s.poll(ctx, interval)
	} else {
		go s.poll(ctx, 0)
		go s.commitLoop(ctx, opts.CommitInterval)
	}
	return s, nil
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

// Lanes returns one reader per partition of the topic.
func (s *Source) Lanes() []*Lane { return s.lanes }

// pollUntil polls, giving up at deadline when it is set.
func (s *Source) pollUntil(ctx context.Context, deadline time.Time) kgo.Fetches {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	return s.cl.PollRecords(ctx, 10_000)
}

// DefaultTransactionInterval is how often an exactly-once source commits.
const DefaultTransactionInterval = time.Second

// poll fetches records and hands each partition's to its lane, in order. A
// full lane blocks the loop: backpressure reaches the broker as fewer fetches.
// With a transaction interval (exactly-once), it also ends the transaction
// every interval, between two polls.
func (s *Source) poll(ctx context.Context, txnInterval time.Duration) {
	defer close(s.done)
	var txnEnd time.Time
	if txnInterval > 0 {
		txnEnd = time.Now().Add(txnInterval)
	}
	for {
		if txnInterval > 0 {
			if !time.Now().Before(txnEnd) {
				if err := s.endTransaction(ctx); err != nil {
					if ctx.Err() == nil {
						s.fail(err)
					}
					return
				}
				txnEnd = time.Now().Add(txnInterval)
			}
		}
		fetches := s.pollUntil(ctx, txnEnd)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			if fetches.NumRecords() > 0 {
				s.unhanded.Store(true)
			}
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("kafka fetch failed; retrying", "component", "kafka", "topic", topic, "partition", p, "error", err)
			}
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if int(fp.Partition) >= len(s.lanes) {
				// A partition added after the start has no lane. Its records
				// would wait unread, with no member of the group to read them,
				// and an exactly-once transaction would even commit their
				// offsets: stop instead, and a restart, which sees every
				// partition, reads it.
				if len(fp.Records) > 0 && s.err() == nil {
					if s.sess == nil {
						s.commitStart(ctx, fp.Partition, fp.Records[0].Offset)
					}
					s.fail(fmt.Errorf("kafka: topic %s has partition %d, added after the engine started; restart the engine to read it", s.topic, fp.Partition))
					s.unhanded.Store(true)
				}
				return
			}
			s.mu.Lock()
			s.highWater[fp.Partition] = fp.HighWatermark
			s.mu.Unlock()
			if len(fp.Records) == 0 {
				return
			}
			select {
			case s.lanes[fp.Partition].ch <- fetched{recs: fp.Records, gen: s.lanes[fp.Partition].origin.Generation.Load()}:
				s.mu.Lock()
				s.fetched[fp.Partition] = fp.Records[len(fp.Records)-1].Offset + 1
				s.inTxn = true
				s.mu.Unlock()
			case <-ctx.Done():
				s.unhanded.Store(true)
			}
		})
		s.cl.AllowRebalance()
	}
}

func (s *Source) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range assigned[s.topic] {
		s.assigned[p] = true
	}
	s.log.Info("kafka partitions assigned", "component", "kafka", "topic", s.topic, "partitions", assigned[s.topic])
}

// onRevoked waits for the revoked partitions' records in flight to be
// acknowledged, commits them, and only then lets the group move them.
func (s *Source) onRevoked(ctx context.Context, revoked map[string][]int32, timeout time.Duration) {
	parts := revoked[s.topic]
	if s.stateful && s.sess == nil {
		s.newGeneration(parts)
		s.commit(ctx, parts)
		s.mu.Lock()
		for _, p := range parts {
			delete(s.acked, p)
			delete(s.fetched, p)
		}
		s.mu.Unlock()
		s.forget(parts)
		s.log.Info("kafka partitions revoked; the state built from them is dropped and rebuilt by their new owner", "component", "kafka", "topic", s.topic, "partitions", parts)
		return
	}
	if s.sess != nil {
		s.newGeneration(parts)
		// The session aborts the open transaction at its end: the revoked
		// partitions' records in it are read again by their new owner.
		s.forget(parts)
		s.log.Info("kafka partitions revoked; the open transaction will abort", "component", "kafka", "topic", s.topic, "partitions", parts)
		return
	}
	deadline := time.Now().Add(timeout)
	for !s.closing.Load() && time.Now().Before(deadline) && !s.drained(parts) {
		time.Sleep(10 * time.Millisecond)
	}
	if !s.drained(parts) && !s.closing.Load() {
		s.log.Warn("kafka rebalance: records in flight not acknowledged in time; they will be read again", "component", "kafka", "partitions", parts)
	}
	s.commit(ctx, parts)
	s.forget(parts)
	s.log.Info("kafka partitions revoked", "component", "kafka", "topic", s.topic, "partitions", parts)
}

// newGeneration marks the records of parts read so far as belonging to an
// earlier owner of the partitions.
func (s *Source) newGeneration(parts []int32) {
	for _, p := range parts {
		if int(p) < len(s.lanes) {
			s.lanes[p].origin.Generation.Add(1)
		}
	}
}

// forget marks parts as no longer assigned here.
func (s *Source) forget(parts []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		delete(s.assigned, p)
	}
}

func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.newGeneration(lost[s.topic])
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range lost[s.topic] {
		delete(s.assigned, p)
	}
	s.log.Warn("kafka partitions lost; their records in flight will be read again", "component", "kafka", "partitions", lost[s.topic])
}

// drained reports whether every record fetched for parts, or for every
// partition when parts is nil, is acknowledged.
func (s *Source) drained(parts []int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if parts == nil {
		for p, f := range s.fetched {
			if s.acked[p] < f {
				return false
			}
		}
		return true
	}
	for _, p := range parts {
		if f, ok := s.fetched[p]; ok && s.acked[p] < f {
			return false
		}
	}
	return true
}

// endTransaction waits until every record fetched in the open transaction
// was acknowledged, which means its results and dead letters were written
// in the transaction, then commits the transaction with the offsets after
// those records, and begins the next. The poll loop calls it between polls,
// so nothing new enters the pipeline meanwhile. A transaction the session
// aborts (a rebalance happened during it) rewinds the client to the last
// committed offsets: its records are read and written again.
func (s *Source) endTransaction(ctx context.Context) error {
	s.mu.Lock()
	inTxn := s.inTxn
	s.mu.Unlock()
	if !inTxn {
		return nil
	}
	for !s.drained(nil) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	committed, err := s.sess.End(ctx, kgo.TryCommit)
	if err != nil {
		return fmt.Errorf("kafka: ending a transaction: %w", err)
	}
	s.mu.Lock()
	s.inTxn = false
	if committed {
		for p, next := range s.acked {
			s.committed[p] = next
		}
	} else {
		clear(s.acked)
		clear(s.fetched)
	}
	s.mu.Unlock()
	if !committed {
		s.log.Warn("kafka transaction aborted (the group rebalanced during it); its records will be read and written again", "component", "kafka", "topic", s.topic)
	}
	if err := s.sess.Begin(); err != nil {
		return fmt.Errorf("kafka: beginning a transaction: %w", err)
	}
	return nil
}

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

func (s *Source) ack(p int32, next int64) {
	s.mu.Lock()
	if next > s.acked[p] {
		s.acked[p] = next
	}
	s.mu.Unlock()
}

func (s *Source) commitLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.commit(ctx, nil)
		}
	}
}

// commit commits the acknowledged offsets of parts, or of every assigned
// partition when parts is nil.
func (s *Source) commit(ctx context.Context, parts []int32) {
	s.mu.Lock()
	offsets := map[int32]kgo.EpochOffset{}
	for p, next := range s.acked {
		if parts == nil && !s.assigned[p] || parts != nil && !slices.Contains(parts, p) {
			continue
		}
		if c, ok := s.committed[p]; !ok || next > c {
			offsets[p] = kgo.EpochOffset{Epoch: -1, Offset: next}
		}
	}
	s.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	var commitErr error
	s.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{s.topic: offsets}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err != nil || resp == nil {
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					commitErr = fmt.Errorf("partition %d: %w", p.Partition, err)
					delete(offsets, p.Partition)
				}
			}
		}
	})
	if commitErr != nil {
		s.log.Warn("kafka commit failed; will retry", "component", "kafka", "error", commitErr)
	}
	s.mu.Lock()
	for p, o := range offsets {
		s.committed[p] = o.Offset
	}
	s.mu.Unlock()
}

// commitStart commits offset, where partition p's records begin, for a
// partition this source cannot read: its successor then reads them all, even
// with startOffset latest, which would skip them.
func (s *Source) commitStart(ctx context.Context, p int32, offset int64) {
	s.mu.Lock()
	s.acked[p] = offset
	s.mu.Unlock()
	s.commit(ctx, []int32{p})
}

// lag is how many records of partition p are not yet handled: the high
// watermark less the next offset to acknowledge; -1 if not assigned here.
func (s *Source) lag(p int32) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	hw, ok := s.highWater[p]
	if !ok || !s.assigned[p] {
		return -1
	}
	next := max(s.acked[p], s.committed[p])
	return max(hw-next, 0)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.sess != nil {
		return s.closeTransactional(ctx)
	}
	s.commit(ctx, nil)
	// With BlockRebalanceOnPoll, leaving the group waits for the poller to
	// allow the rebalance; the poller has stopped, so allow it here.
	s.cl.AllowRebalance()
	s.cl.Close()
	return nil
}

// closeTransactional ends the last transaction: a commit when every record
// fetched was acknowledged, else an abort, since the transaction would
// commit the offsets of records the pipeline never read. Either way the
// output and the committed offsets agree.
func (s *Source) closeTransactional(ctx context.Context) error {
	defer s.sess.CloseAllowingRebalance()
	try := kgo.TryAbort
	if s.drained(nil) && !s.unhanded.Load() {
		try = kgo.TryCommit
	}
	committed, err := s.sess.End(ctx, try)
	if err != nil {
		return fmt.Errorf("kafka: ending the last transaction: %w", err)
	}
	if !committed {
		s.mu.Lock()
		s.log.Info("kafka: the last transaction was aborted; a successor reads its records again", "component", "kafka", "topic", s.topic, "fetched", s.fetched, "acked", s.acked)
		s.mu.Unlock()
	}
	return nil
}
