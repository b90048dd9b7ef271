package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Checkpoints (spec.state). The stateful stage is the one place where all
// the state is, and it takes each partition's batches in the partition's
// order, so its state after a batch, with the offset of that batch's last
// record per partition, is a consistent cut by itself: no barrier from the
// sources has to align anything, and backpressure never waits for one. The
// stage sends the cut downstream as a KindCheckpoint message after the
// results it has emitted; the sink stage, which takes messages in order,
// has then written those results, flushes the sink, saves the checkpoint
// and only then acknowledges each partition up to its offset. So the
// sources commit progress at checkpoints, not when windows close, and a
// restart restores the state and drops the records it reads again that the
// state already holds (restored): replay is bounded by the checkpoint
// interval, and no result is lost or computed from part of its input.

// checkpoints is a pipeline's checkpointing: its store, and what /status
// shows of it.
type checkpoints struct {
	store    checkpoint.Store
	every    time.Duration
	restored checkpoint.Chain // the state the run started from, if any
	// spare are the state buffers of saved checkpoints, for the next ones:
	// a new buffer of hundreds of megabytes each time would have the
	// garbage collector scan the state that much more often.
	spare chan []byte
	// partitions, for a query on several engines, keeps a checkpoint of
	// each partition apart, so that its state moves with it.
	partitions checkpoint.PartitionStore
	// saves takes checkpoints to the saver, which closes saverDone; nil
	// when the sink stage saves them itself.
	saves     chan *checkpoint.Checkpoint
	saverDone chan struct{}
	// round, with an exactly-once transaction on several engines, are the
	// partitions' checkpoints saved in the open transaction, which its
	// commit makes visible, with their offsets.
	round []*checkpoint.Checkpoint

	mu   sync.Mutex
	last CheckpointStats
}

// CheckpointStats is what a run did of checkpoints.
type CheckpointStats struct {
	// Completed counts the checkpoints this run saved; LastID, LastAt,
	// LastDuration (from taking the state to saving it) and LastBytes
	// describe the newest.
	Completed    int64
	LastID       uint64
	LastAt       time.Time
	LastDuration time.Duration
	LastBytes    int
	// RestoredID is the checkpoint the run started from, 0 for none,
	// RestoredAt when that checkpoint was taken, and RestoreDuration how
	// long reading it back into the state took.
	RestoredID      uint64
	RestoredAt      time.Time
	RestoreDuration time.Duration
	// Interval is spec.state.checkpointInterval.
	Interval time.Duration
	// Aborted counts the exactly-once transactions of partition
	// checkpoints (several engines) that aborted, the group having
	// rebalanced during them: every partition went back to its last
	// committed checkpoint.
	Aborted int64
}

// openCheckpoints reads spec.state: the store (the directory, else one in
// the system of the sources, in the exactly-once source's transaction if
// there is one), and the newest checkpoint to restore, refusing one a plan
// of another stateful part made unless the spec says to reset.
func (p *Pipeline) openCheckpoints(opts Options) error {
	st := p.spec.State
	if st == nil {
		return nil
	}
	if table, sql, described := p.prog.KeptTable(); described != nil && !p.rereads(table) {
		// A table read again in each run is in no checkpoint.
		p.keptTable = described
		p.statePlan += keptTable(table, sql, described)
	}
	// A statement of a set keeps its checkpoints apart: in a directory,
	// or a topic, of its name.
	var store checkpoint.Store = &checkpoint.Dir{Path: filepath.Join(st.Dir, opts.statement)}
	if st.Dir == "" {
		var err error
		txn := p.txn
		if p.round != nil {
			txn = p.round // the set's: its checkpoints commit with the round
		}
		store, err = opts.registry().OpenStateStore(p.spec.Sources, connector.StateStoreEnv{Group: opts.Group, Transaction: txn, Statement: opts.statement, Logger: p.log})
		if err != nil {
			return err
		}
	}
	c := &checkpoints{store: store, every: st.CheckpointInterval.Duration, spare: make(chan []byte, 2)}
	c.last.Interval = c.every
	var chain checkpoint.Chain
	partitioned := p.spec.SeveralEngines()
	if !partitioned {
		var err error
		if chain, err = c.store.Latest(context.Background()); err == nil {
			partitioned, err = p.partitionedBefore(store, chain)
		}
		if err != nil {
			store.Close()
			return fmt.Errorf("spec.state: reading the checkpoints in %s: %w", c.store.Describe(), err)
		}
	}
	if partitioned && p.round != nil {
		store.Close()
		return errors.New("spec.state: the state is in checkpoints of single partitions, of a run on several engines, and a statement set that writes exactly once checkpoints it whole at each transaction, on one engine: set spec.state.reset: true to start from empty state, or keep its statements atLeastOnce")
	}
	if partitioned {
		ps, ok := store.(checkpoint.PartitionStore)
		if !ok {
			store.Close()
			return fmt.Errorf("spec.state: on several engines the state moves with its partitions, which %s cannot keep apart; remove spec.state.dir to keep it in Kafka", store.Describe())
		}
		// Each partition's state is restored when it is assigned here; a
		// file written by several engines' partitions is appended to.
		c.partitions = ps
		if rs, ok := p.sink.(connector.ResumableSink); ok && rs.Resumable() {
			if err := rs.Resume(-1); err != nil {
				store.Close()
				return err
			}
		}
		p.ckpt = c
		return nil
	}
	var latest *checkpoint.Checkpoint
	if chain != nil {
		latest = chain.Last()
	}
	var refused error
	if latest != nil {
		refused = p.cannotRestore("the checkpoint in "+c.store.Describe(), latest)
	}
	switch {
	case latest == nil:
		c.last.LastID = store.Highest()
	case refused != nil && !st.Reset:
		store.Close()
		return fmt.Errorf("spec.state: %w, or give the query a store of its own (a directory, or a consumer group)", refused)
	case refused != nil:
		p.log.Warn("the checkpoint holds state this query cannot use; starting from empty state (spec.state.reset)",
			"checkpoint", latest.ID, "store", c.store.Describe(), "reason", refused)
		c.last.LastID = max(latest.ID, store.Highest()) // numbering goes on
	default:
		c.restored = chain
		c.last.LastID, c.last.RestoredID, c.last.RestoredAt = max(latest.ID, store.Highest()), latest.ID, latest.Created
	}
	if rs, ok := p.sink.(connector.ResumableSink); ok && rs.Resumable() {
		// What was written after the restored checkpoint is written again.
		pos := int64(0)
		if c.restored != nil {
			pos = latest.SinkPosition
		}
		if err := rs.Resume(pos); err != nil {
			store.Close()
			return err
		}
	}
	p.ckpt = c
	return nil
}

// cannotRestore says why the query cannot restore checkpoint c, which
// what names: a query whose stateful part differs took it, or its held
// rows lack a column this query reads (heldColumns); nil if it can.
func (p *Pipeline) cannotRestore(what string, c *checkpoint.Checkpoint) error {
	var why string
	if c.Fingerprint != p.stateFingerprint {
		why = fmt.Sprintf("holds the state of another query, whose state is\n%s\nand this query's is\n%s\n", c.Plan, p.statePlan)
	} else if kept, ok := keptTableOf(c.Plan); !ok || kept != nil && !slices.Equal(kept, p.keptTable) {
		why = fmt.Sprintf("holds a table whose rows were kept by other conditions of its WHERE than this query's, which a row they dropped may pass: its state is\n%s\nand this query's is\n%s\n", c.Plan, p.statePlan)
	} else if missing := missingColumns(c.Plan, p.reads, p.inputs); len(missing) > 0 {
		name := slices.Min(slices.Collect(maps.Keys(missing)))
		why = fmt.Sprintf("holds rows of %s without the columns %s, which this query reads: the state holds the columns the query that took it read. ", name, strings.Join(missing[name], ", "))
	} else {
		return nil
	}
	return fmt.Errorf("%s (%d, taken %s) %sSet spec.state.reset: true to start from empty state", what, c.ID, c.Created.Format(time.RFC3339), why)
}

// partitionedBefore reports whether one engine is to keep the state in
// the checkpoints of single partitions, as on several engines: the query
// ran on several engines since the newest checkpoint of the whole state,
// chain's (if any), and the state is in its partitions' checkpoints, which
// the engine then restores as each partition's first batch comes, and
// writes on. (Restoring the chain instead would go back to the state
// before those runs, which the group committed past.)
func (p *Pipeline) partitionedBefore(store checkpoint.Store, chain checkpoint.Chain) (bool, error) {
	ps, ok := store.(checkpoint.PartitionStore)
	if !ok {
		return false, nil
	}
	newest, found, err := ps.NewestPartition(context.Background())
	if err != nil || !found || chain != nil && !newest.After(chain.Last().Created) {
		return false, err
	}
	p.log.Warn("the state is in checkpoints of single partitions, newer than any of the whole state: the query ran on several engines since; this engine keeps them so, as on several engines",
		"store", store.Describe(), "newest", newest)
	return true, nil
}

// rereads reports whether the table source of that name is read again
// from its start in every run (rereadTables).
func (p *Pipeline) rereads(source string) bool {
	for o := range p.rereadTables() {
		if o.Source == source {
			return true
		}
	}
	return false
}

// rereadTables returns the partitions of tables that are read again from
// their start in every run, since their readers cannot start after an
// offset (a Kafka topic's, in no group): their rows are not checkpointed.
func (p *Pipeline) rereadTables() map[*message.Origin]bool {
	rereads := map[*message.Origin]bool{}
	for _, r := range p.readers {
		if _, seeks := r.(connector.Seeker); p.tables[r.Origin().Source] && !seeks {
			rereads[r.Origin()] = true
		}
	}
	return rereads
}

// seekRestored starts each reader that can seek (files, generators) after
// the records the restored state holds, rather than have the stateful stage
// drop them as they come again; Kafka partitions start at the committed
// offsets, which a checkpoint set.
func (p *Pipeline) seekRestored() {
	if p.ckpt == nil || p.ckpt.restored == nil {
		return
	}
	readers := p.readersByPartition()
	for _, part := range p.ckpt.restored.Last().Partitions {
		if sk, ok := readers[partitionKey{part.Source, part.Partition}].(connector.Seeker); ok && part.Offset >= 0 {
			sk.SkipThrough(part.Offset)
		}
	}
}

// restoredOffset returns the offset of origin o's partition that the
// restored checkpoint holds the state of; false without one.
func (p *Pipeline) restoredOffset(o *message.Origin) (int64, bool) {
	if p.ckpt == nil || p.ckpt.restored == nil {
		return 0, false
	}
	for _, part := range p.ckpt.restored.Last().Partitions {
		if part.Source == o.Source && part.Partition == o.Partition && part.Offset >= 0 {
			return part.Offset, true
		}
	}
	return 0, false
}

// partitionKey names a source partition across runs, as a checkpoint does.
type partitionKey struct {
	source    string
	partition int32
}

// readersByPartition returns the run's readers by the partition they read.
func (p *Pipeline) readersByPartition() map[partitionKey]connector.Reader {
	m := make(map[partitionKey]connector.Reader, len(p.readers))
	for _, r := range p.readers {
		m[partitionKey{r.Origin().Source, r.Origin().Partition}] = r
	}
	return m
}

// Checkpoints returns what the run did of checkpoints, and false without
// spec.state.
func (p *Pipeline) Checkpoints() (CheckpointStats, bool) {
	if p.ckpt == nil {
		return CheckpointStats{}, false
	}
	p.ckpt.mu.Lock()
	defer p.ckpt.mu.Unlock()
	return p.ckpt.last, true
}

// restore sets the stage's state from the chain of checkpoints the run
// starts from: the whole one's state, then each delta's changes.
func (s *statefulStage) restore(chain checkpoint.Chain, now time.Time) error {
	byPartition := map[partitionKey]*message.Origin{}
	for k, r := range s.p.readersByPartition() {
		byPartition[k] = r.Origin()
	}
	origin := func(part checkpoint.Partition) *message.Origin {
		k := partitionKey{part.Source, part.Partition}
		o, ok := byPartition[k]
		if !ok {
			// A partition the source no longer has: its state stays, to be
			// emitted as its windows close.
			o = &message.Origin{Source: part.Source, Partition: part.Partition}
			byPartition[k] = o
		}
		return o
	}
	origins := func(c *checkpoint.Checkpoint) []*message.Origin {
		list := make([]*message.Origin, len(c.Partitions))
		for i, part := range c.Partitions {
			list[i] = origin(part)
		}
		return list
	}
	op := s.op.(streamop.Snapshotter)
	for i, c := range chain {
		r := value.NewReader(c.State)
		var err error
		if i == 0 {
			err = op.RestoreSnapshot(r, streamop.NewOrigins(origins(c)))
			s.wholeRows = s.op.Size()
		} else if inc, ok := op.(streamop.IncrementalSnapshotter); ok {
			err = inc.ApplyChanges(r, streamop.NewOrigins(origins(c)))
		} else {
			err = fmt.Errorf("a delta, and this query's state is only saved whole")
		}
		if err != nil {
			return fmt.Errorf("checkpoint %d: %w", c.ID, err)
		}
		if r.Len() != 0 {
			return fmt.Errorf("checkpoint %d: %d bytes after the state", c.ID, r.Len())
		}
		s.chainBytes += len(c.State)
	}
	s.chainLen, s.wholeBytes = len(chain), len(chain[0].State)
	if s.p.ckpt.last.LastID != chain.Last().ID {
		// Checkpoints after the restored one are in the store, cut short
		// or passed over: the next is whole, numbered after them, so that
		// no chain takes them in.
		s.chainLen = 0
	}
	last := chain.Last()
	for _, part := range last.Partitions {
		o := origin(part)
		if part.Offset >= 0 && !s.rereads[o] {
			s.skip[o] = part.Offset
			s.absorbed[o] = part.Offset
		}
		s.marks.restore(o, o.Generation.Load(), part.MaxEventTime, now)
		if s.seen != nil {
			s.seen.restore(o, o.Generation.Load(), part.Upstream)
		}
	}
	if last.Watermark != math.MaxInt64 {
		// The end of the last run's input is no time: a run that reads on
		// judges its records by the partitions' restored progress.
		s.marks.current = max(s.marks.current, last.Watermark)
	}
	s.p.stats.stateRows.Store(int64(s.op.Size()))
	if p, ok := s.op.(interface{ Pending() int }); ok {
		// Rows waiting for the watermark in the restored state are records
		// this run writes without reading them: they count as read, and,
		// of a join, whose rows are results, as joined.
		s.p.stats.in.Add(int64(p.Pending()))
		if s.p.prog.Aggregates() {
			s.p.stats.aggregated.Add(int64(p.Pending()))
		}
	}
	s.p.ckpt.mu.Lock()
	s.p.ckpt.last.RestoreDuration = time.Since(now)
	s.p.ckpt.mu.Unlock()
	return nil
}

// dropRestored takes out of b the records a restored state already holds,
// those at or before the checkpoint's offset of b's partition, and reports
// whether anything of b is left.
func (s *statefulStage) dropRestored(b *message.Batch) bool {
	skip, ok := s.skip[b.Origin]
	if !ok || b.Origin == nil {
		return true
	}
	if b.LastOffset <= skip {
		s.p.stats.restored.Add(int64(b.Len() + b.Errors.Records))
		return false
	}
	delete(s.skip, b.Origin) // later batches are all after the checkpoint
	kept, dropped := 0, 0
	for i, row := range b.Rows {
		if b.Offsets[i] <= skip {
			dropped++
			continue
		}
		b.Rows[kept], b.Offsets[kept] = row, b.Offsets[i]
		kept++
	}
	b.Rows, b.Offsets = b.Rows[:kept], b.Offsets[:kept]
	events := b.Errors.Events[:0]
	for _, ev := range b.Errors.Events {
		if ev.Source.Offset >= 0 && ev.Source.Offset <= skip {
			dropped++
			b.Errors.Records--
			continue
		}
		events = append(events, ev)
	}
	b.Errors.Events = events
	s.p.stats.restored.Add(int64(dropped))
	return true
}

// buffer returns an empty buffer for a state of about last bytes, the size
// of the last of its kind, with room to grow: growing one of hundreds of
// megabytes by doubling would copy it over and again.
func (c *checkpoints) buffer(last int) []byte {
	want := last + last/4
	select {
	case b := <-c.spare:
		if cap(b) >= want {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, want)
}

// maxChain bounds the checkpoints a restore reads: a whole one and the
// deltas after it; and maxChainRatio their bytes, to that many times what
// a whole checkpoint of the state would take now. A state that only grows
// (frames that keep all their rows) thus goes on with deltas, which hold
// what a whole one would add; one whose rows come and go gets a whole
// checkpoint once the chain holds mostly rows long gone.
const (
	maxChain      = 32
	maxChainRatio = 2
)

// deltaDue reports whether the next checkpoint is to be a delta.
func (s *statefulStage) deltaDue() bool {
	if s.chainLen == 0 || s.chainLen >= maxChain {
		return false
	}
	// The size of a whole checkpoint now, from the last one's bytes per
	// row of state.
	whole := s.wholeBytes
	if s.wholeRows > 0 {
		whole = int(int64(s.wholeBytes) * int64(s.op.Size()) / int64(s.wholeRows))
	}
	return s.chainBytes < maxChainRatio*whole
}

// checkpointDue reports whether a checkpoint is to be taken now.
func (s *statefulStage) checkpointDue(now time.Time) bool {
	switch {
	case s.p.ckpt == nil:
		return false
	case s.p.round != nil:
		return s.roundEnds()
	}
	return now.Sub(s.lastCheckpoint) >= s.p.ckpt.every
}

// roundEnds says, of a statement that checkpoints at its set's rounds
// (connector.RoundTransaction), that a round is ending of which the state
// holds every record read: its checkpoint, now, handles them, and the
// round commits once every statement has handled them.
func (s *statefulStage) roundEnds() bool {
	n, last := s.p.round.Ending()
	if n <= s.round {
		return false
	}
	for o, off := range last {
		absorbed, ok := s.absorbed[o]
		skip, skips := s.skip[o]
		if (!ok || absorbed < off) && (!skips || skip < off) {
			return false
		}
	}
	s.round, s.roundDue = n, true
	return true
}

// takeOver restores, when a partition's batch comes in a generation of
// the partition not seen yet (it was assigned here, at start or by a
// rebalance), the partition's state from its latest checkpoint, which its
// former owner saved, and skips what that state holds. restored is the
// checkpoint it restored, nil for none.
func (s *statefulStage) takeOver(o *message.Origin, gen uint64, now time.Time) (restored *checkpoint.Checkpoint, err error) {
	if own, ok := s.owned[o]; ok && own.gen == gen {
		return nil, nil
	}
	own := &ownedPartition{gen: gen}
	s.owned[o] = own
	delete(s.skip, o)
	delete(s.absorbed, o)
	delete(s.readerState, o)
	// The reader takes up the reader state restored, or learns that there
	// is none, once the partition's state is settled.
	resume := &message.Resume{Generation: gen}
	defer func() {
		if err == nil {
			o.Resume.Store(resume)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := s.p.ckpt.partitions.LatestPartition(ctx, o.Source, o.Partition)
	var refused error
	if c != nil {
		refused = s.p.cannotRestore(fmt.Sprintf("the checkpoint of partition %d of %s", o.Partition, o.Source), c)
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("partition %d of %s: %w", o.Partition, o.Source, err)
	case c == nil:
		return nil, nil
	case refused != nil && !s.p.spec.State.Reset:
		return nil, refused
	case refused != nil:
		s.p.log.Warn("the checkpoint of a partition holds state this query cannot use; the partition starts from empty state (spec.state.reset)",
			"source", o.Source, "partition", o.Partition, "checkpoint", c.ID, "reason", refused)
		own.lastID = c.ID
		return nil, nil
	}
	if o.Generation.Load() != gen || o.Away.Load() {
		// The group took the partition away while the restore waited for
		// the store: its new owner restores it. Its next batch here, in a
		// later generation, takes it over again.
		delete(s.owned, o)
		s.p.log.Info("a partition moved away while its state was restored; left to its new owner", "source", o.Source, "partition", o.Partition, "checkpoint", c.ID)
		return nil, nil
	}
	r := value.NewReader(c.State)
	if err := s.op.(streamop.Snapshotter).RestoreSnapshot(r, streamop.PartitionOriginsAt(o, gen)); err != nil {
		return nil, fmt.Errorf("partition %d of %s, checkpoint %d: %w", o.Partition, o.Source, c.ID, err)
	}
	part := c.Partitions[0]
	if part.Offset >= 0 {
		if err := s.p.checkBehind(o, part.Offset); err != nil {
			return nil, err
		}
		s.skip[o], s.absorbed[o] = part.Offset, part.Offset
	}
	s.marks.takeOver(o, gen, part.MaxEventTime, c.Watermark, now)
	if s.seen != nil {
		s.seen.restore(o, gen, part.Upstream)
	}
	// Until the reader says more, the partition's checkpoints keep the
	// reader state restored.
	if part.ReaderState != nil {
		s.readerState[o] = part.ReaderState
	}
	resume.State = part.ReaderState
	own.lastID = c.ID
	s.p.stats.stateRows.Store(int64(s.op.Size()))
	s.p.ckpt.mu.Lock()
	s.p.ckpt.last.RestoredID, s.p.ckpt.last.RestoredAt, s.p.ckpt.last.RestoreDuration = c.ID, c.Created, time.Since(now)
	s.p.ckpt.mu.Unlock()
	s.p.log.Info("partition state restored from a checkpoint", "source", o.Source, "partition", o.Partition,
		"checkpoint", c.ID, "epoch", c.Epoch, "taken", c.Created, "offset", part.Offset, "watermark", value.TimestampValue(c.Watermark).String(),
		"store", s.p.ckpt.store.Describe())
	return c, nil
}

// ownedPartition is a partition whose state the stage holds: in which
// generation, and the ID of its last checkpoint.
type ownedPartition struct {
	gen    uint64
	lastID uint64
}

// checkpointPartitions sends a checkpoint of each partition the stage
// holds the state of, in the partition's current generation.
func (s *statefulStage) checkpointPartitions(now time.Time, emit emitFunc) bool {
	for o, own := range s.owned {
		if own.gen != o.Generation.Load() || o.Away.Load() {
			// Taken away: its new owner checkpoints it, and must not
			// restore this engine's state of it.
			delete(s.owned, o)
			delete(s.readerState, o)
			continue
		}
		off, ok := s.absorbed[o]
		if !ok {
			off = -1
		}
		part := checkpoint.Partition{Source: o.Source, Partition: o.Partition, Offset: off, MaxEventTime: math.MinInt64}
		if pm := s.marks.parts[o]; pm != nil {
			part.MaxEventTime, part.Ended = pm.max, pm.ended
		}
		if s.seen != nil {
			part.Upstream = s.seen.offsets(o)
		}
		part.ReaderState = s.readerState[o]
		own.lastID++
		// The watermark the partition's records are judged by here, which
		// its next owner keeps to: the pipeline's, unless the partition
		// replays behind it (restored, with no record since, it may have
		// nothing to replay: the pipeline's, which went on without it,
		// would have its next owner drop its next records as late).
		c := &checkpoint.Checkpoint{
			ID: own.lastID, Fingerprint: s.p.stateFingerprint, Plan: s.p.statePlan,
			Created: now.UTC(), Partitions: []checkpoint.Partition{part}, Watermark: s.marks.For(o), SinkPosition: -1,
			Epoch: o.Epoch.Load(), Generation: own.gen,
			State: s.op.(streamop.Snapshotter).AppendSnapshot(s.p.ckpt.buffer(0), streamop.PartitionOrigins(o)),
		}
		if !emit(message.Message{Kind: message.KindCheckpoint, Checkpoint: c}) {
			return false
		}
	}
	if _, ok := s.p.txn.(connector.CheckpointTransaction); ok {
		// The round's end: the transaction commits the partitions'
		// checkpoints, offsets and the results before them at once.
		return emit(message.Message{Kind: message.KindCheckpoint, Checkpoint: &checkpoint.Checkpoint{Created: now.UTC()}})
	}
	return true
}

// checkpoint sends the stage's state downstream, after the results it has
// emitted. It is called between batches, with nothing pending in s.next.
func (s *statefulStage) checkpoint(now time.Time, emit emitFunc) bool {
	s.lastCheckpoint = now
	if f, ok := s.op.(streamop.Flusher); ok && f.Flush() && !s.advanceByClock(now, emit) {
		// The rows the emit interval holds back go before the state
		// that has their changes: a restore would not write them again.
		return false
	}
	if s.p.ckpt.partitions != nil {
		return s.checkpointPartitions(now, emit)
	}
	list := make([]*message.Origin, len(s.p.readers))
	parts := make([]checkpoint.Partition, len(s.p.readers))
	for i, r := range s.p.readers {
		o := r.Origin()
		list[i] = o
		off, ok := s.absorbed[o]
		if !ok {
			off = -1
		}
		parts[i] = checkpoint.Partition{Source: o.Source, Partition: o.Partition, Offset: off, MaxEventTime: math.MinInt64}
		if pm := s.marks.parts[o]; pm != nil {
			parts[i].MaxEventTime, parts[i].Ended = pm.max, pm.ended
		}
		if s.seen != nil {
			parts[i].Upstream = s.seen.offsets(o)
		}
	}
	s.nextCheckpoint++
	c := &checkpoint.Checkpoint{
		ID: s.nextCheckpoint, Fingerprint: s.p.stateFingerprint, Plan: s.p.statePlan,
		Created: now.UTC(), Partitions: parts, Watermark: s.marks.current, SinkPosition: -1,
	}
	if s.roundDue {
		c.Round, s.roundDue = s.round, false
	}
	origins := streamop.NewOrigins(list)
	if inc, ok := s.op.(streamop.IncrementalSnapshotter); ok && s.deltaDue() {
		// The changes since the last checkpoint, while the chain to
		// restore stays short and not much larger than a whole state.
		c.State, c.Delta = inc.AppendChanges(s.p.ckpt.buffer(s.deltaBytes), origins), true
		s.chainLen++
		s.deltaBytes = len(c.State)
		s.chainBytes += len(c.State)
	} else {
		c.State = s.op.(streamop.Snapshotter).AppendSnapshot(s.p.ckpt.buffer(s.wholeBytes), origins)
		s.chainLen, s.wholeBytes, s.chainBytes, s.wholeRows = 1, len(c.State), len(c.State), s.op.Size()
	}
	return emit(message.Message{Kind: message.KindCheckpoint, Checkpoint: c})
}

// commitCheckpoint saves a checkpoint once the sink has written every
// result before it, then acknowledges each partition up to its offset:
// the source commits there, and a restart reads from there. The sink's
// output is flushed, and its position taken, here, in order with the
// writes; the save itself is the saver's, if it runs.
func (s *sinkStage) commitCheckpoint(ctx context.Context, c *checkpoint.Checkpoint) {
	p := s.p
	if ctx.Err() != nil || p.err() != nil {
		return // a failed or aborted run saves nothing more
	}
	var err error
	if rs, ok := p.sink.(connector.ResumableSink); ok && rs.Resumable() {
		c.SinkPosition, err = rs.Position()
	} else {
		err = p.sink.Flush(ctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.fatal(fmt.Errorf("sink: flushing for checkpoint %d: %w", c.ID, err))
		}
		return
	}
	if p.ckpt.saves == nil {
		p.ckpt.save(ctx, p, c)
		return
	}
	// The saver writes it while the results after it are written: a
	// store's sync, which waits for the disk, does not stall the run.
	select {
	case p.ckpt.saves <- c:
	case <-ctx.Done():
	}
}

// savePartition saves the checkpoint of a partition, unless the partition
// was taken away since (its new owner restores the one before, and reads
// from its offset), and acknowledges the partition up to its offset; with
// an exactly-once transaction, that waits for the round's commit.
func (c *checkpoints) savePartition(ctx context.Context, p *Pipeline, ck *checkpoint.Checkpoint) {
	part := ck.Partitions[0]
	r, ok := p.readersByPartition()[partitionKey{part.Source, part.Partition}]
	if !ok || r.Origin().Generation.Load() != ck.Generation {
		return
	}
	if err := c.partitions.SavePartition(ctx, ck); err != nil {
		if ctx.Err() == nil {
			p.fatal(fmt.Errorf("spec.state: saving checkpoint %d of partition %d of %s: %w", ck.ID, part.Partition, part.Source, err))
		}
		return
	}
	if _, ok := p.txn.(connector.CheckpointTransaction); ok {
		c.round = append(c.round, ck)
		return
	}
	if part.Offset >= 0 {
		r.Origin().Acked(message.Ack{Origin: r.Origin(), Generation: ck.Generation, LastOffset: part.Offset, Statement: statementOf(r)})
	}
	c.saved(ck)
}

// commitRound commits the exactly-once transaction at the end of a round
// of partition checkpoints: the results, dead letters and checkpoints
// written since the last commit become visible with the offsets those
// checkpoints hold the partitions' state of. A transaction the group's
// rebalance aborted took every partition read here back to its last
// commit: the stages follow (rewinds), and the run goes on.
func (c *checkpoints) commitRound(ctx context.Context, p *Pipeline, txn connector.CheckpointTransaction) {
	round := c.round
	c.round = nil
	readers := p.readersByPartition()
	last := map[*message.Origin]int64{}
	gens := map[*message.Origin]uint64{}
	for _, ck := range round {
		part := ck.Partitions[0]
		if r, ok := readers[partitionKey{part.Source, part.Partition}]; ok && part.Offset >= 0 {
			last[r.Origin()], gens[r.Origin()] = part.Offset, ck.Generation
		}
	}
	err := txn.CommitCheckpoint(ctx, last)
	switch {
	case errors.Is(err, connector.ErrTransactionAborted):
		// The source rewound the partitions (rewinds) before it returned.
		c.mu.Lock()
		c.last.Aborted++
		c.mu.Unlock()
		p.log.Warn("exactly-once transaction aborted; every partition read here goes back to its last committed checkpoint, and the results since are computed and written again", "checkpoints", len(round), "reason", err)
		return
	case err != nil:
		if ctx.Err() == nil {
			p.fatal(fmt.Errorf("spec.state: committing the checkpoints of %d partitions: %w; the engine stops, and its restart restores the last committed checkpoints", len(round), err))
		}
		return
	}
	for o, off := range last {
		o.Acked(message.Ack{Origin: o, Generation: gens[o], LastOffset: off})
	}
	for _, ck := range round {
		c.saved(ck)
	}
}

// saved counts a checkpoint saved, and keeps its state's buffer for the
// next.
func (c *checkpoints) saved(ck *checkpoint.Checkpoint) {
	size := len(ck.State)
	select {
	case c.spare <- ck.State:
	default:
	}
	c.mu.Lock()
	c.last.Completed++
	c.last.LastID, c.last.LastAt = max(c.last.LastID, ck.ID), ck.Created
	c.last.LastDuration, c.last.LastBytes = time.Since(ck.Created), size
	c.mu.Unlock()
}

// startSaver starts the goroutine that saves checkpoints after the sink
// stage has written the results before them, unless an exactly-once
// transaction commits at each checkpoint: no write may then start before
// the checkpoint is saved and committed.
func (c *checkpoints) startSaver(ctx context.Context, p *Pipeline) {
	if _, ok := p.txn.(connector.CheckpointTransaction); ok || p.round != nil {
		return
	}
	// One waits while another is saved: a store slower than the interval
	// holds the sink stage back rather than let states pile up.
	c.saves = make(chan *checkpoint.Checkpoint, 1)
	c.saverDone = make(chan struct{})
	go func() {
		defer close(c.saverDone)
		for ck := range c.saves {
			c.save(ctx, p, ck)
		}
	}()
}

// stopSaver waits until the checkpoints sent to the saver are saved.
func (c *checkpoints) stopSaver() {
	if c.saves != nil {
		close(c.saves)
		<-c.saverDone
		c.saves = nil
	}
}

// save saves a checkpoint whose results are written, commits an
// exactly-once transaction with it, and acknowledges each partition up to
// its offset.
func (c *checkpoints) save(ctx context.Context, p *Pipeline, ck *checkpoint.Checkpoint) {
	if ctx.Err() != nil || p.err() != nil {
		return
	}
	if c.partitions != nil {
		if txn, ok := p.txn.(connector.CheckpointTransaction); ok && len(ck.Partitions) == 0 {
			c.commitRound(ctx, p, txn)
			return
		}
		c.savePartition(ctx, p, ck)
		return
	}
	if rs, ok := p.sink.(connector.ResumableSink); ok && rs.Resumable() {
		// The output up to the checkpoint's position must outlast it.
		if err := rs.Sync(); err != nil {
			p.fatal(fmt.Errorf("checkpoint %d: %w", ck.ID, err))
			return
		}
	}
	if err := c.store.Save(ctx, ck); err != nil {
		if ctx.Err() == nil {
			p.fatal(fmt.Errorf("spec.state: saving checkpoint %d: %w", ck.ID, err))
		}
		return
	}
	if txn, ok := p.txn.(connector.CheckpointTransaction); ok {
		// The results, dead letters and checkpoint since the last commit
		// become visible with the offsets the checkpoint holds the state of.
		last := map[*message.Origin]int64{}
		for i, part := range ck.Partitions {
			if part.Offset >= 0 {
				last[p.readers[i].Origin()] = part.Offset
			}
		}
		if err := txn.CommitCheckpoint(ctx, last); err != nil {
			if ctx.Err() == nil {
				p.fatal(fmt.Errorf("spec.state: committing checkpoint %d: %w; the engine stops, and its restart restores the last committed checkpoint", ck.ID, err))
			}
			return
		}
	}
	for i, part := range ck.Partitions {
		if part.Offset >= 0 {
			o := p.readers[i].Origin()
			o.Acked(message.Ack{Origin: o, Generation: o.Generation.Load(), LastOffset: part.Offset, Statement: statementOf(p.readers[i])})
		}
	}
	if ck.Round > 0 {
		// What the sink writes after the checkpoint would commit with it,
		// and a restore would write it again. (A stop's checkpoint, of no
		// round, goes with the last transaction, which commits if it holds
		// every record read, or aborts.)
		if err := p.round.AwaitCommit(ctx, ck.Round); err != nil {
			if ctx.Err() == nil {
				p.fatal(fmt.Errorf("spec.state: checkpoint %d: %w; the engine stops, and its restart restores the last committed checkpoints", ck.ID, err))
			}
			return
		}
	}
	c.saved(ck)
}
