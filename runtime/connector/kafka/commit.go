package kafka

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ack notes that partition p's records before next are handled. An
// acknowledgement of a partition no longer assigned here (a checkpoint
// saved while the group took it away) is dropped: kept, it could be
// committed should the partition come back, past its new owner's commit.
func (s *Source) ack(p int32, next int64) {
	s.mu.Lock()
	if next > s.acked[p] && s.assigned[p] {
		s.acked[p] = next
	}
	s.mu.Unlock()
}

func (s *Source) commitLoop(ctx context.Context, interval time.Duration) {
	defer close(s.commitDone)
	every(ctx, interval, func(time.Time) { s.commit(ctx, nil) })
}

// every calls f at each tick of interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}

// commit commits the acknowledged offsets of parts, or of every assigned
// partition when parts is nil.
func (s *Source) commit(ctx context.Context, parts []int32) {
	if s.owner != nil || s.table != nil {
		return // the owner's transactions commit this source's offsets; a table's, none
	}
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
			// Nothing was committed (the coordinator is away, or the
			// context ended): the next commit tries these offsets again.
			clear(offsets)
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
	next, known := s.next(p)
	if !known {
		return -1
	}
	return max(hw-next, 0)
}

// next is the next offset of partition p that is not yet handled: after the
// acknowledged records, the group's commit, or where the partition begins;
// known is false while none of them is. s.mu is held.
func (s *Source) next(p int32) (next int64, known bool) {
	next, known = s.acked[p]
	if c, ok := s.committed[p]; ok {
		next, known = max(next, c), true
	}
	if b, ok := s.begin[p]; ok && !known && s.groupKnown[p] {
		// Only a partition the group never committed starts where
		// startOffset says: latest or a time would hide a backlog after a
		// commit. Until the group's offsets are fetched, which may come
		// after the begin is listed, that is not known.
		next, known = b, true
	}
	return next, known
}

// handled is the offset of partition p's last record known to be handled,
// by this member or, before it, by the group; ok is false when there is none.
func (s *Source) handled(p int32) (offset int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := max(s.acked[p], s.committed[p])
	return next - 1, next > 0
}
