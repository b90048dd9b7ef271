package kafka

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A table source (Options.Table) reads every partition of its topic from
// the start, as no member of a group, and commits nothing: each engine
// holds the whole table, and a restart reads it again. A partition is
// loaded once every record it held when the source opened is handed to its
// lane: the lane then returns connector.ErrLoaded, after those records.

// tableLoad is what a table source knows of its partitions' loading.
type tableLoad struct {
	// ends are where each partition ended when the source opened (its last
	// stable offset: a table reads committed records only); nil until
	// listed.
	ends map[int32]int64
	// marked are the partitions whose lanes were told they are loaded.
	marked map[int32]bool
	// seen is, per partition not yet loaded, where its reading stood at the
	// last look: a partition that did not move is probed.
	seen map[int32]int64
	// opts make the probes' client: the source's own client's fetches
	// wait, up to their max wait, on the connection a probe would take.
	opts   []kgo.Opt
	probes *kgo.Client
	// probed is, per partition, where the last probe stopped, short of
	// the end: the next goes on from there.
	probed map[int32]int64
	// leaders and topicID are the probes' metadata, nil until looked up,
	// and again after a probe fails.
	leaders map[int32]int32
	topicID [16]byte
}

// tableLookInterval is how often a table source looks at its partitions
// that are not loaded yet.
const tableLookInterval = 200 * time.Millisecond

// loadTable lists where the partitions begin and end, then tells each lane
// when its partition is loaded: at once for an empty one, in take for one
// whose last record before its end is read, and here, by probing, for one
// whose reading stopped short of its end because the rest are transaction
// markers, aborted records or batches compaction emptied, which the client
// reads past without a record to hand on.
func (s *Source) loadTable(ctx context.Context) {
	adm := kadm.NewClient(s.cl)
	t := time.NewTicker(tableLookInterval)
	defer t.Stop()
	defer func() {
		if s.table.probes != nil {
			s.table.probes.Close()
		}
	}()
	warned := false
	for {
		if err := s.listTable(ctx, adm); err == nil {
			break
		} else if ctx.Err() != nil {
			return
		} else if !warned {
			s.log.Warn("kafka: listing where a table's partitions end failed; retrying, and streams wait for the table", "component", "kafka", "topic", s.topic, "error", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	for {
		s.mu.Lock()
		var stalled []int32
		for p, end := range s.table.ends {
			if s.table.marked[p] {
				continue
			}
			pos := s.position(p)
			if pos >= end {
				stalled = append(stalled, p) // marked below, without a probe
				continue
			}
			// A partition whose lane has records to read waits for the
			// pipeline, not for records the client reads past.
			if last, ok := s.table.seen[p]; ok && last == pos && len(s.lanes[p].ch) == 0 {
				stalled = append(stalled, p)
			}
			s.table.seen[p] = pos
		}
		s.mu.Unlock()
		for _, p := range stalled {
			if s.tailEmpty(ctx, p) {
				s.markLoaded(ctx, p)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		done := len(s.table.marked) == len(s.lanes)
		s.mu.Unlock()
		if done {
			return
		}
	}
}

// listTable lists the partitions' starts and ends; an empty partition is
// loaded at once.
func (s *Source) listTable(ctx context.Context, adm *kadm.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return err
	}
	ends, err := s.listEnds(ctx, adm)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return err
	}
	var empty []int32
	s.mu.Lock()
	s.table.ends = map[int32]int64{}
	for p := range int32(len(s.lanes)) {
		start, ok1 := starts.Lookup(s.topic, p)
		end, ok2 := ends.Lookup(s.topic, p)
		if !ok1 || !ok2 {
			s.mu.Unlock()
			return fmt.Errorf("partition %d was not listed", p)
		}
		s.begin[p], s.table.ends[p] = start.Offset, end.Offset
		s.highWater[p] = max(s.highWater[p], end.Offset)
		if end.Offset <= start.Offset {
			empty = append(empty, p)
		}
	}
	s.mu.Unlock()
	for _, p := range empty {
		s.markLoaded(ctx, p)
	}
	return nil
}

// position is where partition p's reading stands: the next offset after
// what was handed to its lane, or acknowledged, or where it begins. s.mu
// is held.
func (s *Source) position(p int32) int64 {
	pos, _ := s.next(p)
	if f, ok := s.fetched[p]; ok {
		pos = max(pos, f)
	}
	return pos
}

// markLoaded tells partition p's lane, once, that it is loaded: after the
// records handed to it so far, which hold every record before its end.
func (s *Source) markLoaded(ctx context.Context, p int32) {
	s.mu.Lock()
	if s.table.marked[p] {
		s.mu.Unlock()
		return
	}
	s.table.marked[p] = true
	s.mu.Unlock()
	l := s.lanes[p]
	select {
	case l.ch <- fetched{loaded: true, gen: l.origin.Generation.Load()}:
	case <-l.stopped:
	case <-ctx.Done():
	}
}

// loadedBy marks partition p loaded if recs, just handed to its lane,
// reach its end. The poll loop calls it, after the hand.
func (s *Source) loadedBy(ctx context.Context, p int32, recs []*kgo.Record) {
	s.mu.Lock()
	end, listed := s.table.ends[p]
	reached := listed && !s.table.marked[p] && recs[len(recs)-1].Offset+1 >= end
	s.mu.Unlock()
	if reached {
		s.markLoaded(ctx, p)
	}
}

// tailEmpty reports whether partition p has no record left to hand on
// before its end: from where its reading stands, its leader's log holds
// only transaction markers, aborted transactions' records and batches
// compaction emptied up to there. A failed probe says no; the next look
// probes again.
func (s *Source) tailEmpty(ctx context.Context, p int32) bool {
	s.mu.Lock()
	from, end := s.position(p), s.table.ends[p]
	s.mu.Unlock()
	if from >= end {
		return true
	}
	from = max(from, s.table.probed[p])
	if s.table.probes == nil {
		cl, err := kgo.NewClient(s.table.opts...)
		if err != nil {
			s.log.Debug("kafka: table probe: client", "component", "kafka", "topic", s.topic, "error", err)
			return false
		}
		s.table.probes = cl
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if s.table.leaders == nil {
		meta, err := kadm.NewClient(s.table.probes).Metadata(ctx, s.topic)
		if err != nil {
			s.log.Debug("kafka: table probe: metadata", "component", "kafka", "topic", s.topic, "error", err)
			return false
		}
		detail, ok := meta.Topics[s.topic]
		if !ok || detail.Err != nil {
			return false
		}
		s.table.leaders, s.table.topicID = map[int32]int32{}, detail.ID
		for _, pd := range detail.Partitions {
			s.table.leaders[pd.Partition] = pd.Leader
		}
	}
	leader, ok := s.table.leaders[p]
	if !ok || leader < 0 {
		s.table.leaders = nil
		return false
	}
	// Each round reads at least one whole batch; a partition is a few
	// rounds past its records at most, unless its tail is long runs of
	// aborted transactions, which the next looks go on with.
	defer func() { s.table.probed[p] = from }()
	for range 16 {
		next, data, err := s.probe(ctx, int(leader), s.table.topicID, p, from)
		switch {
		case err != nil:
			s.log.Debug("kafka: table probe failed", "component", "kafka", "topic", s.topic, "partition", p, "error", err)
			s.table.leaders = nil // a leader that moved, say
			return false
		case data:
			return false // a record the client has yet to hand on
		case next >= end:
			return true
		case next <= from:
			return false // nothing read: the next look tries again
		}
		from = next
	}
	return false
}

// probeBytes bounds what a probe fetches: the brokers return the first
// batch whole even when it is larger, and the batches of a tail the client
// reads past, markers and aborted records, are small.
const probeBytes = 64 << 10

// The bits of a record batch's attributes that say it is a transaction's
// and a control batch (a transaction marker).
const (
	batchTransactional = 0x10
	batchControl       = 0x20
)

// probe fetches partition p from offset from, read_committed, and reads
// the batches' headers only: next is the offset after the last batch
// read, and data says one of them holds a record the client hands on.
func (s *Source) probe(ctx context.Context, broker int, topicID [16]byte, p int32, from int64) (next int64, data bool, err error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = probeBytes
	req.IsolationLevel = 1 // read_committed
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = s.topic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, from, probeBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := s.table.probes.Broker(broker).Request(ctx, req)
	if err != nil {
		return 0, false, err
	}
	fr := resp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
		return 0, false, err
	}
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return 0, false, errors.New("the fetch response has no partition")
	}
	part := fr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return 0, false, err
	}
	// As a read_committed consumer does: a producer's transactional
	// batches are aborted from the first offset of an aborted transaction
	// of its up to its next marker.
	pending := slices.SortedFunc(slices.Values(part.AbortedTransactions), func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	aborting := map[int64]bool{}
	next = from
	for raw := part.RecordBatches; len(raw) >= 12; {
		size := 12 + int(int32(binary.BigEndian.Uint32(raw[8:12])))
		if size < 12 || size > len(raw) {
			break // cut short by the response's size: the next round reads it
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw[:size]); err != nil {
			return 0, false, fmt.Errorf("record batch at offset %d: %w", next, err)
		}
		raw = raw[size:]
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		for len(pending) > 0 && pending[0].FirstOffset <= last {
			aborting[pending[0].ProducerID] = true
			pending = pending[1:]
		}
		switch {
		case b.Attributes&batchControl != 0:
			delete(aborting, b.ProducerID) // its transaction's marker
		case b.NumRecords == 0:
		case b.Attributes&batchTransactional != 0 && aborting[b.ProducerID]:
		case last < from: // handed on already
		default:
			return last + 1, true, nil
		}
		next = max(next, last+1)
	}
	return next, false, nil
}
