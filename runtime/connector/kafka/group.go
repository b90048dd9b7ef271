package kafka

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Source) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	parts := assigned[s.topic]
	_, generation := cl.GroupMetadata()
	s.mu.Lock()
	s.epoch = int64(generation)
	for _, p := range parts {
		s.assigned[p] = true
		s.markAssigned(p) // or Open does, for lanes it makes after this
		// A partition back from another member: its progress is the
		// group's, loaded below and in onOffsetsFetched.
		delete(s.highWater, p)
		delete(s.begin, p)
		delete(s.groupKnown, p)
	}
	if len(parts) > 0 && !s.closed {
		// The group may assign before Open has set s.cl.
		s.loading.Go(func() { s.loadEnds(s.ctx, cl, parts) })
	}
	closed := s.closed
	s.mu.Unlock()
	s.log.Info("kafka partitions assigned", "component", "kafka", "topic", s.topic, "partitions", parts)
	if s.transactional && !closed {
		s.revokeUntold(cl)
	}
}

// revokeUntold revokes the partitions an exactly-once source takes as its
// own that the group's coordinator no longer assigns this member, in the
// generation of the assignment just made. franz-go's transaction session
// passes on only the first revoke of a transaction: until the transaction
// ends, it skips the callback of any other. A second rebalance that takes
// more partitions from this engine within one transaction (several
// engines joining one after the other) would leave them taken as read
// here: their state restored after the abort, and their windows written
// here as by their new owner. Each assignment ends a rebalance, so the
// partitions are looked at after every one; a group rebalancing again is
// looked at by the next assignment, and a describe that fails is tried
// again until it succeeds or the generation changes.
func (s *Source) revokeUntold(cl *kgo.Client) {
	member, gen := cl.GroupMetadata()
	if s.checkAssignment(cl, member, gen) {
		return
	}
	s.loading.Go(func() {
		for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(wait):
			}
			if _, now := cl.GroupMetadata(); now != gen || s.checkAssignment(cl, member, gen) {
				return
			}
		}
	})
}

// checkAssignment revokes, in one step, the partitions taken as read here
// that the coordinator's assignment of this member in generation gen
// lacks, and spoils the open transaction, which must abort: they may have
// results in it. It reports false if the group could not be described.
func (s *Source) checkAssignment(cl *kgo.Client, member string, gen int32) bool {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, s.group)
	if err == nil {
		err = groups.Error()
	}
	switch {
	case s.ctx.Err() != nil:
		return true // closing
	case err != nil:
		s.log.Warn("kafka: describing the group to check this engine's partitions failed; trying again", "component", "kafka", "group", s.group, "error", err)
		return false
	}
	g := groups[s.group]
	i := slices.IndexFunc(g.Members, func(m kadm.DescribedGroupMember) bool { return m.MemberID == member })
	if g.State != "Stable" || i < 0 {
		return true // rebalancing again: the next assignment looks
	}
	a, ok := g.Members[i].Assigned.AsConsumer()
	if !ok {
		return true
	}
	now := map[int32]bool{}
	for _, t := range a.Topics {
		if t.Topic == s.topic {
			for _, p := range t.Partitions {
				now[p] = true
			}
		}
	}
	s.mu.Lock()
	var untold []int32
	if s.epoch == int64(gen) {
		for p := range s.assigned {
			if !now[p] {
				untold = append(untold, p)
			}
		}
	}
	if len(untold) > 0 {
		s.letGoLocked(untold)
		s.spoiled.Store(true)
	}
	s.mu.Unlock()
	if len(untold) > 0 {
		slices.Sort(untold)
		s.log.Warn("kafka: the group took partitions from this engine in a rebalance the transaction session did not report (a second within one transaction); they are revoked now, and the open transaction aborts", "component", "kafka", "topic", s.topic, "partitions", untold)
	}
	return true
}

// onOffsetsFetched takes the group's committed offsets of the partitions
// just assigned, which the client fetched to start reading from, so that lag
// is right from the first report, before this member commits anything.
func (s *Source) onOffsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The client consumes one topic; newer versions of the response name
	// it by id only.
	take := func(topic string, p int32, offset int64, code int16) {
		if (topic == "" || topic == s.topic) && code == 0 {
			s.groupKnown[p] = true
			if offset >= 0 {
				s.committed[p] = offset
			}
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			take(t.Topic, p.Partition, p.Offset, p.ErrorCode)
		}
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				take(t.Topic, p.Partition, p.Offset, p.ErrorCode)
			}
		}
	}
	return nil
}

// loadEnds asks the brokers for the high watermarks of newly assigned
// partitions, which fetches report only once a partition has records to
// return, and for where a partition without a committed offset begins.
// Both only feed lag; a failure leaves it unknown until the next fetch.
func (s *Source) loadEnds(ctx context.Context, cl *kgo.Client, parts []int32) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := s.listEnds(ctx, adm)
	if err != nil {
		s.log.Debug("kafka: listing end offsets for lag failed", "component", "kafka", "topic", s.topic, "error", err)
		return
	}
	var begins kadm.ListedOffsets
	switch {
	case !s.startTime.IsZero():
		begins, err = adm.ListOffsetsAfterMilli(ctx, s.startTime.UnixMilli(), s.topic)
	case s.latest:
		begins = ends
	default:
		begins, err = adm.ListStartOffsets(ctx, s.topic)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.takeEnds(ends, parts)
	for _, p := range parts {
		if o, ok := begins.Lookup(s.topic, p); ok && o.Err == nil && err == nil && s.assigned[p] {
			s.begin[p] = o.Offset
		}
	}
}

// listEnds lists the topic's high watermarks, or its last stable offsets
// for a source that reads only committed records.
func (s *Source) listEnds(ctx context.Context, adm *kadm.Client) (kadm.ListedOffsets, error) {
	if s.readCommitted {
		return adm.ListCommittedOffsets(ctx, s.topic)
	}
	return adm.ListEndOffsets(ctx, s.topic)
}

// takeEnds records the listed ends of the assigned partitions among parts
// (all assigned ones if parts is nil). s.mu is held.
func (s *Source) takeEnds(ends kadm.ListedOffsets, parts []int32) {
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic != s.topic || o.Err != nil || !s.assigned[o.Partition] {
			return
		}
		if parts == nil || slices.Contains(parts, o.Partition) {
			s.highWater[o.Partition] = max(s.highWater[o.Partition], o.Offset)
		}
	})
}

// lagRefresh is how often the high watermarks are listed besides fetches.
const lagRefresh = 5 * time.Second

// refreshEnds lists the high watermarks every lagRefresh until ctx ends.
// Fetches report them too, but a consumer far behind, held back by a slow
// pipeline, fetches only when it has used up what it holds, which at a few
// hundred records a second is minutes apart: its lag would stand still
// while it grows.
func (s *Source) refreshEnds(ctx context.Context, cl *kgo.Client) {
	adm := kadm.NewClient(cl)
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, lagRefresh)
		ends, err := s.listEnds(lctx, adm)
		cancel()
		if err != nil {
			s.log.Debug("kafka: listing end offsets for lag failed", "component", "kafka", "topic", s.topic, "error", err)
			continue
		}
		s.mu.Lock()
		s.takeEnds(ends, nil)
		s.mu.Unlock()
	}
}

// onRevoked waits for the revoked partitions' records in flight to be
// acknowledged, commits them, and only then lets the group move them;
// stateful or transactional, it lets them go at once (see the branches).
func (s *Source) onRevoked(ctx context.Context, revoked map[string][]int32, timeout time.Duration) {
	parts := revoked[s.topic]
	if s.owner != nil && len(parts) > 0 {
		s.moved.Store(true)
	}
	if s.stateful && s.sess == nil {
		s.newGeneration(parts)
		s.commit(ctx, parts)
		s.dropInFlight(parts)
		s.forget(parts)
		s.log.Info("kafka partitions revoked; the state built from them is dropped and rebuilt by their new owner", "component", "kafka", "topic", s.topic, "partitions", parts)
		return
	}
	if s.sess != nil || s.driven() {
		if len(parts) == 0 {
			return // a cooperative rebalance that takes nothing from here
		}
		// The session aborts the open transaction at its end, as the
		// owner does for a driven follower that moved: the revoked
		// partitions' records in it are read again by their new owner,
		// and the transaction's end waits for none of them.
		//
		// A driven follower does not wait for a transaction that is
		// ending either: the owner's End may wait for the owner's
		// rejoin, which waits for this member's, which waits for this
		// callback. Such a transaction may commit the partitions'
		// offsets, and rows of them, after their new owner read the
		// commit before: the rows are then written to the repartition
		// topic twice, and the stateful stage drops the second copies by
		// their upstream offsets, as it does a crashed engine's.
		s.mu.Lock()
		s.letGoLocked(parts)
		s.mu.Unlock()
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

// markAssigned marks partition p's lane as read here, in the group's
// current generation. s.mu is held.
func (s *Source) markAssigned(p int32) {
	if int(p) < len(s.lanes) {
		s.lanes[p].origin.Epoch.Store(s.epoch)
		s.lanes[p].origin.Away.Store(false)
	}
}

// dropInFlight forgets what was fetched and acknowledged of parts, whose
// records in flight the pipeline drops, being of an earlier generation:
// none is waited for again.
func (s *Source) dropInFlight(parts []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropInFlightLocked(parts)
}

// letGoLocked lets parts go at once, without waiting for their records in
// flight, whose transaction aborts: what was read of them becomes an
// earlier owner's, and they are no longer assigned here. s.mu is held.
func (s *Source) letGoLocked(parts []int32) {
	s.newGeneration(parts)
	s.dropInFlightLocked(parts)
	s.forgetLocked(parts)
}

// dropInFlightLocked is dropInFlight with s.mu held.
func (s *Source) dropInFlightLocked(parts []int32) {
	for _, p := range parts {
		delete(s.acked, p)
		delete(s.fetched, p)
		delete(s.txnFirst, p)
	}
}

// forget marks parts as no longer assigned here.
func (s *Source) forget(parts []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(parts)
}

// forgetLocked is forget with s.mu held.
func (s *Source) forgetLocked(parts []int32) {
	for _, p := range parts {
		delete(s.assigned, p)
		delete(s.highWater, p)
		if int(p) < len(s.lanes) {
			s.lanes[p].origin.Away.Store(true)
		}
	}
}

func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if s.owner != nil && len(lost[s.topic]) > 0 {
		s.moved.Store(true)
	}
	s.newGeneration(lost[s.topic])
	if s.sess != nil || s.driven() {
		s.dropInFlight(lost[s.topic]) // as at a revoke
	}
	s.forget(lost[s.topic])
	s.log.Warn("kafka partitions lost; their records in flight will be read again", "component", "kafka", "partitions", lost[s.topic])
}

// drained reports whether every record fetched for parts, or for every
// partition assigned here when parts is nil, is acknowledged: a partition
// the group took away has its records read again by its new owner, and
// their acknowledgements here are dropped.
func (s *Source) drained(parts []int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if parts == nil {
		for p, f := range s.fetched {
			if s.assigned[p] && s.acked[p] < f {
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
