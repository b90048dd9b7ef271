package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pollUntil polls, giving up at deadline when it is set.
func (s *Source) pollUntil(ctx context.Context, deadline time.Time) kgo.Fetches {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	return s.cl.PollRecords(ctx, 10_000)
}

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
			switch {
			case errors.Is(err, kerr.FencedInstanceID):
				// Two processes with one instance id fence each other for
				// ever: stop, and say why.
				s.fail(fmt.Errorf("kafka: another member of group %s has instance id %s: each engine needs its own instance name (the pod name, or SLUICE_INSTANCE): %w", s.group, s.instanceID, err))
			case !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
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
			if fp.Topic != s.topic || fp.Err != nil {
				return // an error, reported above, and no high watermark
			}
			hw := fp.HighWatermark
			if s.sess != nil {
				hw = fp.LastStableOffset // what a read_committed reader can reach
			}
			s.mu.Lock()
			s.highWater[fp.Partition] = max(s.highWater[fp.Partition], hw)
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
