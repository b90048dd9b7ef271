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
	cl    *kgo.Client
	topic string
	lanes []*Lane
	log   *slog.Logger

	cancel  context.CancelFunc
	done    chan struct{} // the poll loop ended
	closing atomic.Bool   // Close has begun: a revoke need not wait for acks

	mu        sync.Mutex
	assigned  map[int32]bool
	acked     map[int32]int64 // next offset to commit, per partition
	committed map[int32]int64
	fetched   map[int32]int64 // next offset after the last record handed to a lane
	highWater map[int32]int64 // the partition's high watermark at the last fetch
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
		topic: spec.Topic, log: opts.Logger, done: make(chan struct{}),
		assigned: map[int32]bool{}, acked: map[int32]int64{}, committed: map[int32]int64{}, fetched: map[int32]int64{},
		highWater: map[int32]int64{},
	}
	start := kgo.NewOffset().AtStart()
	if spec.StartOffset == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	groupOpts := []kgo.Opt{}
	if spec.SessionTimeout != nil {
		groupOpts = append(groupOpts, kgo.SessionTimeout(spec.SessionTimeout.Duration))
	}
	cl, err := kgo.NewClient(append(groupOpts,
		kgo.SeedBrokers(spec.Brokers...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(spec.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
			s.onRevoked(ctx, lost, opts.RevokeTimeout)
		}),
		kgo.OnPartitionsLost(s.onLost),
	)...)
	if err != nil {
		return nil, fmt.Errorf("source %s: kafka client: %w", source, err)
	}
	s.cl = cl
	partitions, err := partitionCount(cl, spec.Topic)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	valueCols := cols[:len(cols)-len(MetaColumns)]
	for p := range partitions {
		l := &Lane{
			src:    s,
			origin: &message.Origin{Source: source, Partition: p, Topic: spec.Topic},
			ch:     make(chan []*kgo.Record, 4),
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
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.poll(ctx)
	go s.commitLoop(ctx, opts.CommitInterval)
	return s, nil
}

// partitionCount reads the topic's partition count, waiting a little for a
// broker that is starting.
func partitionCount(cl *kgo.Client, topic string) (int32, error) {
	adm := kadm.NewClient(cl)
	var lastErr error
	for attempt := range 20 {
		if attempt > 0 {
			time.Sleep(time.Duration(min(attempt, 10)) * 200 * time.Millisecond)
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

// Lanes returns one reader per partition of the topic.
func (s *Source) Lanes() []*Lane { return s.lanes }

// poll fetches records and hands each partition's to its lane, in order. A
// full lane blocks the loop: backpressure reaches the broker as fewer fetches.
func (s *Source) poll(ctx context.Context) {
	defer close(s.done)
	for {
		fetches := s.cl.PollRecords(ctx, 10_000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("kafka fetch failed; retrying", "component", "kafka", "topic", topic, "partition", p, "error", err)
			}
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if int(fp.Partition) >= len(s.lanes) {
				return
			}
			s.mu.Lock()
			s.highWater[fp.Partition] = fp.HighWatermark
			s.mu.Unlock()
			if len(fp.Records) == 0 {
				return
			}
			select {
			case s.lanes[fp.Partition].ch <- fp.Records:
				s.mu.Lock()
				s.fetched[fp.Partition] = fp.Records[len(fp.Records)-1].Offset + 1
				s.mu.Unlock()
			case <-ctx.Done():
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
	deadline := time.Now().Add(timeout)
	for !s.closing.Load() && time.Now().Before(deadline) && !s.drained(parts) {
		time.Sleep(10 * time.Millisecond)
	}
	if !s.drained(parts) && !s.closing.Load() {
		s.log.Warn("kafka rebalance: records in flight not acknowledged in time; they will be read again", "component", "kafka", "partitions", parts)
	}
	s.commit(ctx, parts)
	s.mu.Lock()
	for _, p := range parts {
		delete(s.assigned, p)
	}
	s.mu.Unlock()
	s.log.Info("kafka partitions revoked", "component", "kafka", "topic", s.topic, "partitions", parts)
}

func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range lost[s.topic] {
		delete(s.assigned, p)
	}
	s.log.Warn("kafka partitions lost; their records in flight will be read again", "component", "kafka", "partitions", lost[s.topic])
}

// drained reports whether every record fetched for parts is acknowledged.
func (s *Source) drained(parts []int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		if f, ok := s.fetched[p]; ok && s.acked[p] < f {
			return false
		}
	}
	return true
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
		if next > s.committed[p] {
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
	s.commit(ctx, nil)
	// With BlockRebalanceOnPoll, leaving the group waits for the poller to
	// allow the rebalance; the poller has stopped, so allow it here.
	s.cl.AllowRebalance()
	s.cl.Close()
	return nil
}
