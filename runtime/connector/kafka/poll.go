package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
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
// every interval, between two polls, and polls its driven followers' clients
// after its own.
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
		deadline := txnEnd
		followers := s.drivenFollowers()
		switch {
		case s.commits != nil:
			s.serveCommit(ctx)
			// Short polls, so that a commit waits little for the next.
			deadline = time.Now().Add(commitPollWait)
		case len(followers) > 0:
			// Short polls, so that the followers' records wait little
			// while this source's topic is quiet.
			if soon := time.Now().Add(commitPollWait); soon.Before(deadline) {
				deadline = soon
			}
		}
		gens := s.generations()
		fetches := s.pollUntil(ctx, deadline)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			if fetches.NumRecords() > 0 {
				s.unhanded.Store(true)
			}
			return
		}
		s.take(ctx, fetches, gens)
		s.cl.AllowRebalance()
		for _, f := range followers {
			// What the follower's client has fetched: a nil context
			// does not wait.
			gens := f.generations()
			fetches := f.cl.PollRecords(nil, 10_000)
			if fetches.IsClientClosed() || ctx.Err() != nil {
				if fetches.NumRecords() > 0 {
					f.unhanded.Store(true)
				}
				f.cl.AllowRebalance()
				return
			}
			f.take(ctx, fetches, gens)
			f.cl.AllowRebalance()
		}
	}
}

// take hands each partition's polled records to its lane, in order; gens
// are the lanes' generations before the poll.
func (s *Source) take(ctx context.Context, fetches kgo.Fetches, gens []uint64) {
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
	rewinds := s.rewinds
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if s.rewinds != rewinds {
			// A commit served while a lane was full aborted: these
			// records are past the commit the client went back to,
			// which it fetches again.
			return
		}
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
		if s.readCommitted {
			hw = fp.LastStableOffset // what a read_committed reader can reach
		}
		s.mu.Lock()
		s.highWater[fp.Partition] = max(s.highWater[fp.Partition], hw)
		s.mu.Unlock()
		if len(fp.Records) == 0 {
			return
		}
		if s.hand(ctx, s.lanes[fp.Partition], fp.Records, gens[fp.Partition]) {
			s.mu.Lock()
			s.fetched[fp.Partition] = fp.Records[len(fp.Records)-1].Offset + 1
			s.inTxn = true
			if _, ok := s.txnFirst[fp.Partition]; !ok && s.txnFirst != nil {
				s.txnFirst[fp.Partition] = fp.Records[0].Offset
			}
			s.mu.Unlock()
			if s.table != nil {
				s.loadedBy(ctx, fp.Partition, fp.Records)
			}
		}
	})
}

// hand gives a lane records polled in generation gen of its partition,
// reporting whether it took them. While the lane is full, it serves
// checkpoint commits: the checkpoint that would empty the lane may be
// waiting for one. A commit that aborted and rewound the partitions
// leaves the records untaken: the client reads them again.
//
// Records of a partition revoked since they were polled are not handed
// on: an exactly-once source's rebalance does not wait for the poll loop,
// and in the partition's next generation they would pass for records
// read after it, from a restored state that does not hold them (the
// transaction aborts; the partition's owner reads them from the commit).
func (s *Source) hand(ctx context.Context, l *Lane, recs []*kgo.Record, gen uint64) bool {
	s.mu.Lock()
	current := s.assigned[l.origin.Partition] && l.origin.Generation.Load() == gen
	s.mu.Unlock()
	if !current {
		return false
	}
	f := fetched{recs: recs, gen: gen}
	for {
		select {
		case l.ch <- f:
			return true
		case <-l.stopped:
			return false // read no more (Lane.Stop)
		case req := <-s.commits: // nil, never ready, unless checkpointed
			rewinds := s.rewinds
			req.done <- s.commitCheckpoint(ctx, req.next)
			if s.rewinds != rewinds {
				return false
			}
		case <-ctx.Done():
			s.unhanded.Store(true)
			return false
		}
	}
}

// generations are the lanes' partitions' generations, by partition.
func (s *Source) generations() []uint64 {
	gens := make([]uint64, len(s.lanes))
	for i, l := range s.lanes {
		gens[i] = l.origin.Generation.Load()
	}
	return gens
}

// commitPollWait is how long a checkpointed source's poll waits for
// records before it looks for a commit to make.
const commitPollWait = 20 * time.Millisecond

// commitRequest asks the poll loop to commit the transaction with the
// next offsets of the partitions of its own topic and its followers'.
type commitRequest struct {
	next map[*Source]map[int32]int64
	done chan error
}

// serveCommit makes a commit that is waiting, if any.
func (s *Source) serveCommit(ctx context.Context) {
	select {
	case req := <-s.commits:
		req.done <- s.commitCheckpoint(ctx, req.next)
	default:
	}
}

// CommitCheckpoint implements connector.CheckpointTransaction. The poll
// loop makes the commit, since polling while a transaction ends is not
// allowed, unless it has ended.
func (s *Source) CommitCheckpoint(ctx context.Context, last map[*message.Origin]int64) error {
	s.mu.Lock()
	sources := append([]*Source{s}, s.followers...)
	s.mu.Unlock()
	for _, f := range sources[1:] {
		// The session aborts a transaction across a rebalance that took
		// its own partitions; one that took a follower's must end too.
		if f.moved.Load() {
			return fmt.Errorf("kafka: the group took partitions of topic %s from this engine: the transaction would commit their offsets with state that no longer holds their rows", f.topic)
		}
	}
	next := map[*Source]map[int32]int64{}
	for _, src := range sources {
		for _, l := range src.lanes {
			if off, ok := last[l.origin]; ok {
				if next[src] == nil {
					next[src] = map[int32]int64{}
				}
				next[src][l.origin.Partition] = off + 1
			}
		}
	}
	req := commitRequest{next: next, done: make(chan error, 1)}
	select {
	case s.commits <- req:
	case <-s.done:
		return s.commitCheckpoint(ctx, next)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitCheckpoint commits the open transaction, with the group's offsets
// set to next rather than after the records polled, which the pipeline
// may not have taken into its state yet, and begins the next.
func (s *Source) commitCheckpoint(ctx context.Context, next map[*Source]map[int32]int64) error {
	if next[s] == nil {
		next[s] = map[int32]int64{} // none of what the session polled
	}
	try := kgo.TryCommit
	if s.spoiled.Swap(false) {
		try = kgo.TryAbort
	}
	committed, err := s.sess.End(withOffsets(ctx, next), try)
	if err != nil {
		return fmt.Errorf("kafka: committing the transaction: %w", err)
	}
	if !committed && s.onRewind != nil {
		// The session set the client back to the group's committed
		// offsets; the records read since go as an earlier generation's.
		s.rewind()
		if err := s.sess.Begin(); err != nil {
			return fmt.Errorf("kafka: beginning a transaction: %w", err)
		}
		s.log.Warn("kafka transaction aborted (the group rebalanced during it, or the group did not confirm this member in time); the partitions read here go back to their last committed checkpoint", "component", "kafka", "topic", s.topic)
		return fmt.Errorf("kafka: %w (the group rebalanced during it, or did not confirm this member in time)", connector.ErrTransactionAborted)
	}
	if !committed {
		return errors.New("kafka: the transaction was aborted (the group rebalanced during it)")
	}
	settle(next)
	if err := s.sess.Begin(); err != nil {
		return fmt.Errorf("kafka: beginning a transaction: %w", err)
	}
	return nil
}

// withOffsets has a transaction's offset commit take next's offsets of
// its sources' topics in place of those the session would commit of
// them. A follower's topic, which the session does not know, goes in by
// name.
func withOffsets(ctx context.Context, next map[*Source]map[int32]int64) context.Context {
	if len(next) == 0 {
		return ctx
	}
	return kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		ids := map[string][16]byte{}
		for _, rt := range req.Topics {
			ids[rt.Topic] = rt.TopicID
		}
		req.Topics = slices.DeleteFunc(req.Topics, func(rt kmsg.TxnOffsetCommitRequestTopic) bool {
			for src := range next {
				if src.topic == rt.Topic {
					return true
				}
			}
			return false
		})
		for src, offsets := range next {
			if len(offsets) == 0 {
				continue
			}
			t := kmsg.NewTxnOffsetCommitRequestTopic()
			t.Topic, t.TopicID = src.topic, ids[src.topic]
			for p, off := range offsets {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, off, -1, &req.MemberID
				t.Partitions = append(t.Partitions, rp)
			}
			req.Topics = append(req.Topics, t)
		}
		return nil
	})
}

// settle notes next's offsets as committed.
func settle(next map[*Source]map[int32]int64) {
	for src, offsets := range next {
		src.mu.Lock()
		for p, off := range offsets {
			src.committed[p] = max(src.committed[p], off)
		}
		src.mu.Unlock()
	}
}

// rewind makes the records read since the last commit of every partition
// read here an earlier generation's, which the pipeline drops, and forgets
// their acknowledgements: the client reads them again from the commit.
// The poll loop calls it, so no record is handed to a lane until the
// pipeline is told (onRewind).
func (s *Source) rewind() {
	s.mu.Lock()
	parts := make([]int32, 0, len(s.assigned))
	for p := range s.assigned {
		parts = append(parts, p)
	}
	clear(s.acked)
	clear(s.fetched)
	s.inTxn = false
	s.mu.Unlock()
	s.newGeneration(parts)
	s.rewinds++
	s.onRewind()
}

// endTransaction waits until every record fetched in the open transaction,
// of this source and its driven followers, was acknowledged, which means
// its results and dead letters were written in the transaction, then
// commits the transaction with the offsets after those records, and begins
// the next. The poll loop calls it between polls, so nothing new enters the
// pipeline meanwhile. A transaction the session aborts (a rebalance
// happened during it), or that would commit offsets of partitions the
// group took from a follower, rewinds every client to the last committed
// offsets: its records are read and written again.
func (s *Source) endTransaction(ctx context.Context) error {
	followers := s.drivenFollowers()
	s.mu.Lock()
	inTxn := s.inTxn
	s.mu.Unlock()
	for _, f := range followers {
		f.mu.Lock()
		inTxn = inTxn || f.inTxn
		f.mu.Unlock()
	}
	if !inTxn && s.rounds.parties == 0 {
		// Nothing of a partition the group took from a follower is in
		// the transaction.
		for _, f := range followers {
			f.moved.Store(false)
		}
		return nil
	}
	s.rounds.begin(s.lastFetched())
	for !s.drained(nil) || slices.ContainsFunc(followers, func(f *Source) bool { return !f.drained(nil) }) || !s.rounds.checkpointed() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	try := kgo.TryCommit
	if s.spoiled.Swap(false) {
		try = kgo.TryAbort
	}
	for _, f := range followers {
		if f.moved.Swap(false) {
			try = kgo.TryAbort
		}
	}
	next := followerOffsets(followers)
	// What others produce in the transaction waits until the next begins.
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	committed, err := s.sess.End(withOffsets(ctx, next), try)
	if err != nil {
		return fmt.Errorf("kafka: ending a transaction: %w", err) // the source fails: AwaitCommit returns
	}
	s.endedTransaction(committed)
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
	if committed {
		settle(next)
	}
	for _, f := range followers {
		f.followedTransaction(committed)
	}
	if !committed {
		s.log.Warn("kafka transaction aborted (the group rebalanced during it); its records will be read and written again", "component", "kafka", "topic", s.topic)
		if s.onAbort != nil {
			s.onAbort()
		}
	}
	if err := s.sess.Begin(); err != nil {
		return fmt.Errorf("kafka: beginning a transaction: %w", err)
	}
	// Once the next began: a statement the end releases writes in it.
	s.rounds.end(committed)
	return nil
}

// followerOffsets returns the offsets the followers' acknowledgements have
// moved past their commits, of the partitions still assigned to them.
func followerOffsets(followers []*Source) map[*Source]map[int32]int64 {
	next := map[*Source]map[int32]int64{}
	for _, f := range followers {
		f.mu.Lock()
		for p, off := range f.acked {
			if c, ok := f.committed[p]; f.assigned[p] && (!ok || off > c) {
				if next[f] == nil {
					next[f] = map[int32]int64{}
				}
				next[f][p] = off
			}
		}
		f.mu.Unlock()
	}
	return next
}

// followedTransaction takes the outcome of the owner's transaction, which
// a driven follower's records were handed in: aborted, the client goes
// back to each partition's first record handed in it, to read and write
// them again.
func (s *Source) followedTransaction(committed bool) {
	rewind := map[int32]kgo.EpochOffset{}
	s.mu.Lock()
	if !committed {
		for p, first := range s.txnFirst {
			if s.assigned[p] {
				rewind[p] = kgo.EpochOffset{Epoch: -1, Offset: first}
			}
		}
		clear(s.acked)
		clear(s.fetched)
	}
	clear(s.txnFirst)
	s.inTxn = false
	s.mu.Unlock()
	if len(rewind) > 0 {
		// The owner's poll loop, this client's poller, calls it. A
		// partition revoked meanwhile is skipped (its cursor is no longer
		// used), and its new owner reads it from the last commit.
		s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{s.topic: rewind})
	}
}

// unsettled says a driven follower's offsets cannot commit: records it
// fetched are not all handled, or the group took partitions from it.
func (s *Source) unsettled() bool {
	return !s.drained(nil) || s.unhanded.Load() || s.moved.Load()
}

// lastFetched returns the offset of the last record handed to a lane of
// each assigned partition, by its lane's origin.
func (s *Source) lastFetched() map[*message.Origin]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[*message.Origin]int64{}
	for _, l := range s.lanes {
		p := l.origin.Partition
		if f, ok := s.fetched[p]; ok && s.assigned[p] {
			last[l.origin] = f - 1
		}
	}
	return last
}

// rounds tells a statement set's stateful statements when an exactly-once
// transaction ends and whether it committed (connector.RoundTransaction).
type rounds struct {
	mu sync.Mutex
	// changed is closed, and replaced, when a round begins to end or ends.
	changed chan struct{}
	// ending is the last round that began to end, last its partitions'
	// last records; ended the last round that ended. aborted are the
	// rounds that ended without a commit (rare: a rebalance).
	ending, ended uint64
	last          map[*message.Origin]int64
	aborted       map[uint64]bool
	// parties statements checkpoint at each round (Options.Rounds), of
	// which arrived have, of the round ending. With parties, a round ends
	// every interval, records read in it or not. parties is set by Open.
	parties, arrived int
}

// checkpointed says every statement that checkpoints at the rounds has
// written its checkpoint of the round ending.
func (r *rounds) checkpointed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.arrived >= r.parties
}

func (r *rounds) begin(last map[*message.Origin]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ending++
	r.last, r.arrived = last, 0
	r.changedNow()
}

func (r *rounds) end(committed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended == r.ending {
		return // nothing was ending
	}
	r.ended = r.ending
	if !committed {
		if r.aborted == nil {
			r.aborted = map[uint64]bool{}
		}
		r.aborted[r.ended] = true
	}
	r.changedNow()
}

// changedNow wakes those waiting for a change; r.mu is held. (Open makes
// the first channel; a source made otherwise, in a test, has none.)
func (r *rounds) changedNow() {
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
}

// Ending implements connector.RoundTransaction.
func (s *Source) Ending() (round uint64, last map[*message.Origin]int64) {
	s.rounds.mu.Lock()
	defer s.rounds.mu.Unlock()
	if s.rounds.ending == s.rounds.ended {
		return 0, nil
	}
	return s.rounds.ending, s.rounds.last
}

// AwaitCommit implements connector.RoundTransaction.
func (s *Source) AwaitCommit(ctx context.Context, round uint64) error {
	s.rounds.mu.Lock()
	if round == s.rounds.ending && s.rounds.ended < round {
		s.rounds.arrived++
	}
	s.rounds.mu.Unlock()
	for {
		s.rounds.mu.Lock()
		ended, aborted, changed := s.rounds.ended, s.rounds.aborted[round], s.rounds.changed
		s.rounds.mu.Unlock()
		switch {
		case ended >= round && aborted:
			return fmt.Errorf("kafka: %w (the group rebalanced during it, or the commit failed)", connector.ErrTransactionAborted)
		case ended >= round:
			return nil
		}
		select {
		case <-changed:
		case <-s.dead:
			return errors.New("kafka: the source failed before the transaction committed")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
