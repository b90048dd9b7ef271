package streamop

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Snapshotter is a stateful operator whose state a checkpoint saves and a
// restarted engine restores: the state after the same input, so that what
// it emits next is what it would have emitted without the restart.
type Snapshotter interface {
	// AppendSnapshot appends the operator's state to dst, naming the
	// partitions its state came from by their index in origins. It is
	// called between batches.
	AppendSnapshot(dst []byte, origins *Origins) []byte
	// RestoreSnapshot replaces the operator's state by a snapshot's, whose
	// partitions origins resolves.
	RestoreSnapshot(r *value.Reader, origins *Origins) error
}

// IncrementalSnapshotter is a Snapshotter that can also write only what
// changed since its last snapshot or changes: far less than its state when
// most of it is rows that stay (the long frames of moving aggregates).
type IncrementalSnapshotter interface {
	Snapshotter
	// AppendChanges appends what changed since the last AppendSnapshot or
	// AppendChanges, or since the state was restored.
	AppendChanges(dst []byte, origins *Origins) []byte
	// ApplyChanges applies changes AppendChanges wrote to the state as of
	// the snapshot or changes before them.
	ApplyChanges(r *value.Reader, origins *Origins) error
}

// Origins numbers the source partitions that state is owned by, for a
// snapshot, which outlives the run's *message.Origin values: a snapshot
// names each by its index, and the checkpoint keeps each index's source
// and partition.
type Origins struct {
	list  []*message.Origin
	index map[*message.Origin]int
	// partition says the snapshot is of list[0]'s state alone
	// (PartitionOrigins), and gen is the generation of the partition a
	// restore of it is for.
	partition bool
	gen       uint64
}

// NewOrigins returns a table of the given partitions, in order.
func NewOrigins(list []*message.Origin) *Origins {
	o := &Origins{list: list, index: make(map[*message.Origin]int, len(list))}
	for i, origin := range list {
		o.index[origin] = i
	}
	return o
}

// PartitionOrigins returns a table of one partition, whose state alone a
// snapshot then holds, and which a restore adds to the operator's state
// rather than replace it: the state of a partition that moves between
// engines with it, built from its records alone when the query's keys
// follow partitions.
func PartitionOrigins(o *message.Origin) *Origins { return PartitionOriginsAt(o, o.Generation.Load()) }

// PartitionOriginsAt is PartitionOrigins for a restore of the partition
// in generation gen: the state restored is of that generation, so that
// it is not current, nor written, if the partition moved away meanwhile
// (a restore waits for the checkpoint store, and the group may rebalance
// while it does).
func PartitionOriginsAt(o *message.Origin, gen uint64) *Origins {
	return &Origins{list: []*message.Origin{o}, index: map[*message.Origin]int{o: 0}, partition: true, gen: gen}
}

// holds reports whether a snapshot with these origins holds the state
// owned by w: all of it, or only one partition's; never what was built in
// an earlier generation of its partition (before it moved away, or before
// an aborted transaction took it back to its last commit), which the
// operator no longer emits.
func (o *Origins) holds(w owner) bool {
	return w.current() && (!o.partition || w.origin == o.list[0])
}

// appendOwner appends the owner's partition: its index plus one, 0 for no
// origin (a table's rows, a generator in a test).
func (o *Origins) appendOwner(dst []byte, w owner) []byte {
	if w.origin == nil {
		return binary.AppendUvarint(dst, 0)
	}
	i, ok := o.index[w.origin]
	if !ok {
		// A partition the table does not know: the caller gave the wrong
		// one. The state is saved as ownerless rather than lost.
		return binary.AppendUvarint(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(i)+1)
}

// readOwner reads an owner, of its partition's current generation, or of
// the generation a partition's restore is for.
func (o *Origins) readOwner(r *value.Reader) owner {
	i := r.Uvarint()
	if i == 0 {
		return owner{}
	}
	if i > uint64(len(o.list)) {
		r.Fail(fmt.Errorf("partition %d of %d", i, len(o.list)))
		return owner{}
	}
	origin := o.list[i-1]
	if o.partition {
		return owner{origin: origin, gen: o.gen}
	}
	return owner{origin: origin, gen: origin.Generation.Load()}
}

// snapshotVersion is the first byte of each operator's snapshot.
const snapshotVersion = 1

func appendValues(dst []byte, vals []value.Value) []byte {
	for _, v := range vals {
		dst = value.AppendBinary(dst, v)
	}
	return dst
}

func readValues(r *value.Reader, vals []value.Value) {
	for i := range vals {
		vals[i] = r.Value()
	}
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendSnapshot implements Snapshotter: the open windows and their groups
// in window and arrival order, or the sessions of each key in the order
// keys appeared, with every group's aggregate states.
func (a *windowAgg) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	held := func(win *window) int {
		if !origins.partition {
			return len(win.order)
		}
		n := 0
		for _, g := range win.order {
			if origins.holds(g.source) {
				n++
			}
		}
		return n
	}
	wins := 0
	for _, start := range a.starts {
		if held(a.windows[start]) > 0 {
			wins++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(wins))
	for _, start := range a.starts {
		win := a.windows[start]
		n := held(win)
		if n == 0 {
			continue
		}
		dst = binary.AppendVarint(dst, win.start)
		dst = binary.AppendVarint(dst, win.end)
		dst = binary.AppendUvarint(dst, uint64(n))
		for _, g := range win.order {
			if origins.holds(g.source) {
				dst = appendGroup(dst, g, &a.calls, origins)
			}
		}
	}
	keys := make([]*sessionKey, 0, len(a.sessions))
	for _, k := range a.sessions {
		if origins.holds(k.source) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y *sessionKey) int { return int(x.seq) - int(y.seq) })
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendSessionKey(dst, k, origins)
	}
	if !origins.partition {
		a.tracked()
	}
	return binary.AppendUvarint(dst, a.keySeq)
}

// appendSessionKey appends a key and all its sessions.
func appendSessionKey(dst []byte, k *sessionKey, origins *Origins) []byte {
	dst = origins.appendOwner(dst, k.source)
	dst = appendValues(dst, k.keys)
	dst = binary.AppendUvarint(dst, k.seq)
	dst = binary.AppendUvarint(dst, uint64(len(k.sessions)))
	for _, s := range k.sessions {
		dst = binary.AppendVarint(dst, s.start)
		dst = binary.AppendVarint(dst, s.end)
		dst = binary.AppendUvarint(dst, uint64(len(s.rows)))
		for _, row := range s.rows {
			dst = binary.AppendVarint(dst, row.ts)
			dst = appendValues(dst, row.args)
		}
	}
	return dst
}

// RestoreSnapshot implements Snapshotter. Of a top-N's aggregation, the
// windows it holds are open again, whatever was ranked here since, as
// windowRank's are.
func (a *windowAgg) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if a.whole {
		a.ranked = math.MinInt64
	}
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("window state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if !origins.partition {
		a.windows, a.starts, a.groups, a.held = map[int64]*window{}, nil, 0, 0
		a.clearSessions()
		a.idle = idleList[group, *group]{lastSweep: a.idle.lastSweep}
	}
	if a.ttl > 0 {
		a.now = a.clock().UnixNano()
	}
	nKeys, nFuncs := len(a.keys.vals), len(a.calls.Funcs)
	for range r.Count(3) {
		start, end := r.Varint(), r.Varint()
		n := r.Count(1 + nKeys + nFuncs)
		win := a.openWindow(start, end, n)
		a.reserveGroups(n)
		for range n {
			a.readGroup(r, win, origins)
		}
		if r.Err() != nil {
			break
		}
	}
	a.peak = max(a.peak, a.groups)
	for range r.Count(3) {
		a.readSessionKey(r, origins)
	}
	a.keySeq = max(a.keySeq, r.Uvarint())
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading window state: %w", err)
	}
	if !slices.IsSorted(a.starts) {
		return fmt.Errorf("reading window state: windows out of order")
	}
	if !origins.partition {
		a.tracked()
	}
	return nil
}

// openWindow returns the open window that starts at start, opening it,
// sized for n groups, if there is none.
func (a *windowAgg) openWindow(start, end int64, n int) *window {
	if win, open := a.windows[start]; open {
		return win
	}
	win := a.newWindow(start, end)
	win.order = win.order[:0]
	// Sized for the groups at once: a million groups grown one by one
	// spend most of a restore rehashing.
	win.groups = make(map[string]*group, n)
	a.windows[start] = win
	i, _ := slices.BinarySearch(a.starts, start)
	a.starts = slices.Insert(a.starts, i, start)
	return win
}

// appendGroup appends a group of a window: its owner, keys, aggregate
// states and whether its row was written; readGroup reads it.
func appendGroup(dst []byte, g *group, calls *aggregate.Calls, origins *Origins) []byte {
	dst = origins.appendOwner(dst, g.source)
	dst = appendValues(dst, g.keys)
	dst = calls.AppendStates(dst, g.states)
	return appendBool(appendBool(dst, g.fired), g.updated)
}

// readGroup reads a group of win into the window's group of its key, in
// its place, or into a new one after the others: a partition's group from
// before it moved away and came back (a partition's restore adds to an
// open window), or one that changed since the snapshot, takes the state
// read.
func (a *windowAgg) readGroup(r *value.Reader, win *window, origins *Origins) {
	src := origins.readOwner(r)
	readValues(r, a.keys.vals)
	key := a.keys.keyOf(a.keys.vals, 0)
	g := win.groups[string(key)]
	if g == nil {
		// The strings read are the operator's own already: interning them,
		// two more lookups in a table of millions, would save no memory
		// worth the restore's time.
		g = a.takeGroup(win)
		copy(g.keys, a.keys.vals)
		g.key = string(key)
		win.groups[g.key] = g
		win.order = append(win.order, g)
		a.groups++
	}
	g.source = src
	a.owned(src)
	a.calls.ReadStates(r, g.states)
	g.fired, g.updated = r.Byte() == 1, r.Byte() == 1
	a.touch(g)
	if a.ttl > 0 {
		// Its idle time starts again with the restore.
		a.idle.touch(g, a.now)
	}
}

// readSessionKey reads a key's sessions, which replace those it has.
func (a *windowAgg) readSessionKey(r *value.Reader, origins *Origins) {
	k := &sessionKey{source: origins.readOwner(r), keys: make([]value.Value, len(a.keys.vals))}
	readValues(r, k.keys)
	k.seq = r.Uvarint()
	for range r.Count(3) {
		s := &session{start: r.Varint(), end: r.Varint()}
		for range r.Count(1 + len(a.args)) {
			row := sessionRow{ts: r.Varint(), args: make([]value.Value, len(a.args))}
			readValues(r, row.args)
			s.rows = append(s.rows, row)
		}
		k.sessions = append(k.sessions, s)
		a.held += len(s.rows)
	}
	if len(k.sessions) == 0 && r.Err() == nil {
		// A key is written with its sessions, and closed with its last.
		r.Fail(fmt.Errorf("session key %v without sessions", k.keys))
	}
	k.name = string(a.keys.keyOf(k.keys, 0))
	if old := a.sessions[k.name]; old != nil {
		// The partition's sessions from before it moved away and came
		// back, or ones that changed: those read replace them.
		a.unhold(old)
	}
	a.sessions[k.name] = k
	a.touchKey(k)
	a.queue(k)
}

// windowChangesVersion is the first byte of a window operator's changes.
const windowChangesVersion = 1

// AppendChanges implements IncrementalSnapshotter: the windows closed, the
// groups dropped from windows still open, the groups added to, made or
// fired, whole; the session keys closed, and those changed with all their
// sessions. Closes and drops come first: a group made again after its
// key's was dropped is among the changed.
func (a *windowAgg) AppendChanges(dst []byte, origins *Origins) []byte {
	dst = append(dst, windowChangesVersion)
	dst = binary.AppendUvarint(dst, uint64(len(a.closedWindows)))
	for _, start := range a.closedWindows {
		dst = binary.AppendVarint(dst, start)
	}
	dst = binary.AppendUvarint(dst, uint64(len(a.droppedGroups)))
	for _, d := range a.droppedGroups {
		dst = binary.AppendVarint(dst, d.start)
		dst = value.AppendBytes(dst, d.key)
	}
	// The groups still held, by window, each window's in the order they
	// changed first, which for groups made since is their order in it.
	byWindow := map[*window][]*group{}
	for _, c := range a.changed {
		if g := c.g; g.life == c.life {
			byWindow[g.w] = append(byWindow[g.w], g)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(byWindow)))
	for _, start := range a.starts {
		win := a.windows[start]
		groups := byWindow[win]
		if len(groups) == 0 {
			continue
		}
		dst = binary.AppendVarint(dst, win.start)
		dst = binary.AppendVarint(dst, win.end)
		dst = binary.AppendUvarint(dst, uint64(len(groups)))
		for _, g := range groups {
			dst = appendGroup(dst, g, &a.calls, origins)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(a.closedKeys)))
	for _, key := range a.closedKeys {
		dst = value.AppendBytes(dst, key)
	}
	live := a.changedKeys[:0:0]
	for _, k := range a.changedKeys {
		// A key whose sessions closed, or were replaced, since is among
		// the closed; only the keys still held are written.
		if a.holdsKey(k) {
			live = append(live, k)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(live)))
	for _, k := range live {
		dst = appendSessionKey(dst, k, origins)
	}
	a.tracked()
	return binary.AppendUvarint(dst, a.keySeq)
}

// ApplyChanges implements IncrementalSnapshotter.
func (a *windowAgg) ApplyChanges(r *value.Reader, origins *Origins) error {
	if a.whole {
		a.ranked = math.MinInt64 // as RestoreSnapshot
	}
	if v := r.Byte(); v != windowChangesVersion && r.Err() == nil {
		return fmt.Errorf("window changes of version %d; this engine reads %d", v, windowChangesVersion)
	}
	if a.ttl > 0 {
		a.now = a.clock().UnixNano()
	}
	for range r.Count(1) {
		start := r.Varint()
		if win := a.windows[start]; win != nil {
			for _, g := range win.order {
				a.recycle(g)
			}
			clear(win.groups)
			delete(a.windows, start)
			a.starts = slices.DeleteFunc(a.starts, func(s int64) bool { return s == start })
			a.release(win)
		}
	}
	dropped := map[*window]bool{}
	for range r.Count(2) {
		start, key := r.Varint(), r.String()
		win := a.windows[start]
		if win == nil {
			continue
		}
		if g := win.groups[key]; g != nil {
			delete(win.groups, key)
			a.recycle(g) // its w is now nil: taken out of the order below
			dropped[win] = true
		}
	}
	for win := range dropped {
		win.order = slices.DeleteFunc(win.order, func(g *group) bool { return g.w == nil })
	}
	nKeys, nFuncs := len(a.keys.vals), len(a.calls.Funcs)
	for range r.Count(3) {
		start, end := r.Varint(), r.Varint()
		n := r.Count(1 + nKeys + nFuncs)
		win := a.openWindow(start, end, n)
		for range n {
			a.readGroup(r, win, origins)
		}
	}
	a.peak = max(a.peak, a.groups)
	for range r.Count(1) {
		key := r.String()
		if old := a.sessions[key]; old != nil {
			a.unhold(old)
			a.closeKey(key)
		}
	}
	for range r.Count(3) {
		a.readSessionKey(r, origins)
	}
	a.keySeq = r.Uvarint()
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading window changes: %w", err)
	}
	a.tracked()
	return nil
}

// overSnapshotVersion is the first byte of an OVER snapshot: version 2
// gives each frame's changes a starting row; version 3 writes the rows a
// key's frames share once (aggregate.AppendFrameSharing).
const overSnapshotVersion = 3

// AppendSnapshot implements Snapshotter: each key's frames, and the rows
// waiting for the watermark, with the counters that order and sweep them.
// From then on, the keys pushed to and forgotten are tracked for
// AppendChanges.
func (o *overAgg) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, overSnapshotVersion)
	n := len(o.byKey)
	if origins.partition {
		n = 0
		for _, k := range o.byKey {
			if origins.holds(k.source) {
				n++
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, k := range o.byKey {
		if origins.holds(k.source) {
			dst = o.appendKey(dst, k, origins, false)
		}
	}
	o.tracked()
	return o.appendWaiting(dst, origins)
}

// AppendChanges implements IncrementalSnapshotter: the keys forgotten, the
// frames' changes of the keys pushed to, and, whole, the rows waiting and
// the counters.
func (o *overAgg) AppendChanges(dst []byte, origins *Origins) []byte {
	dst = append(dst, overSnapshotVersion)
	dst = binary.AppendUvarint(dst, uint64(len(o.removed)))
	for _, k := range o.removed {
		dst = appendValues(dst, k.keys)
	}
	live := o.dirty[:0:0]
	for _, k := range o.dirty {
		// A key pushed to and then forgotten, or replaced, is among the
		// removed; only the keys still held are written.
		if o.byKey[string(o.keys.keyOf(k.keys, 0))] == k {
			live = append(live, k)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(live)))
	for _, k := range live {
		dst = o.appendKey(dst, k, origins, true)
	}
	o.tracked()
	return o.appendWaiting(dst, origins)
}

// tracked starts, or starts again, tracking changes after a snapshot.
func (o *overAgg) tracked() {
	for _, k := range o.dirty {
		k.dirty = false
	}
	clear(o.dirty)
	clear(o.removed)
	o.dirty, o.removed, o.tracking = o.dirty[:0], o.removed[:0], true
}

// appendKey appends a key and its frames, whole or, with changes, what
// changed since the last snapshot.
func (o *overAgg) appendKey(dst []byte, k *overKey, origins *Origins, changes bool) []byte {
	dst = origins.appendOwner(dst, k.source)
	dst = appendValues(dst, k.keys)
	dst = binary.AppendVarint(dst, k.newest)
	for i, f := range k.frames {
		dst = aggregate.AppendFrameSharing(dst, f, k.frames[:i], changes)
	}
	return dst
}

func (o *overAgg) appendWaiting(dst []byte, origins *Origins) []byte {
	n := len(o.pending)
	if origins.partition {
		n = 0
		for _, p := range o.pending {
			if origins.holds(p.source) {
				n++
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, p := range o.pending {
		if !origins.holds(p.source) {
			continue
		}
		dst = binary.AppendVarint(dst, p.ts)
		dst = binary.AppendUvarint(dst, p.seq)
		dst = origins.appendOwner(dst, p.source)
		dst = appendValues(dst, o.slab[p.off:p.off+o.width])
	}
	dst = binary.AppendUvarint(dst, o.seq)
	dst = binary.AppendVarint(dst, o.low)
	dst = binary.AppendVarint(dst, o.sweptAt)
	dst = binary.AppendUvarint(dst, uint64(o.sweptKeys))
	return binary.AppendUvarint(dst, uint64(o.pushed))
}

// RestoreSnapshot implements Snapshotter. It reads the earlier versions
// too.
func (o *overAgg) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	v := r.Byte()
	if (v < 1 || v > overSnapshotVersion) && r.Err() == nil {
		return fmt.Errorf("OVER state of snapshot version %d; this engine reads versions 1 to %d", v, overSnapshotVersion)
	}
	readFrame := frameReader(v)
	if !origins.partition {
		o.byKey, o.frames = map[string]*overKey{}, 0
	}
	for range r.Count(3) {
		o.readKey(r, origins, readFrame, true)
	}
	return o.readWaiting(r, origins)
}

// ApplyChanges implements IncrementalSnapshotter. It reads the changes of
// version 2 too.
func (o *overAgg) ApplyChanges(r *value.Reader, origins *Origins) error {
	v := r.Byte()
	if (v < 2 || v > overSnapshotVersion) && r.Err() == nil {
		return fmt.Errorf("OVER changes of snapshot version %d; this engine reads versions 2 to %d", v, overSnapshotVersion)
	}
	readFrame := frameReader(v)
	vals := make([]value.Value, len(o.keys.vals))
	for range r.Count(len(vals)) {
		readValues(r, vals)
		s := string(o.keys.keyOf(vals, 0))
		if k, ok := o.byKey[s]; ok {
			o.forget(k)
			delete(o.byKey, s)
		}
	}
	for range r.Count(3) {
		o.readKey(r, origins, readFrame, false)
	}
	return o.readWaiting(r, origins)
}

// readKey reads a key and its frames, whole (into a new state of the key,
// replacing any) or their changes (into the key's state, made anew if
// there is none).
func (o *overAgg) readKey(r *value.Reader, origins *Origins, readFrame frameReadFunc, whole bool) {
	source := origins.readOwner(r)
	vals := make([]value.Value, len(o.keys.vals))
	readValues(r, vals)
	s := string(o.keys.keyOf(vals, 0))
	k := o.byKey[s]
	if k != nil && whole {
		o.forget(k)
		k = nil
	}
	if k == nil {
		k = &overKey{keys: vals}
		for _, g := range o.groups {
			k.frames = append(k.frames, aggregate.NewFrame(g.spec, g.funcs))
		}
		o.byKey[s] = k
	}
	k.source, k.newest = source, r.Varint()
	for i, f := range k.frames {
		before := f.Len()
		readFrame(r, f, k.frames[:i])
		o.frames += f.Len() - before
	}
}

// frameReadFunc reads a key's frame, given the key's frames before it.
type frameReadFunc func(r *value.Reader, f *aggregate.Frame, prior []*aggregate.Frame)

// frameReader reads the frames of an OVER snapshot of version v.
func frameReader(v byte) frameReadFunc {
	switch v {
	case 1:
		return func(r *value.Reader, f *aggregate.Frame, _ []*aggregate.Frame) { aggregate.ReadFrameV1(r, f) }
	case 2:
		return func(r *value.Reader, f *aggregate.Frame, _ []*aggregate.Frame) { aggregate.ReadFrame(r, f) }
	}
	return aggregate.ReadFrameSharing
}

// readWaiting reads the rows waiting and the counters, and starts tracking
// changes from the state read.
func (o *overAgg) readWaiting(r *value.Reader, origins *Origins) error {
	if !origins.partition {
		o.pending, o.slab = o.pending[:0], o.slab[:0]
	} else {
		// The partition's rows from before it moved away and came back:
		// the restored ones replace them.
		o.pending = slices.DeleteFunc(o.pending, func(p pendingRow) bool { return p.source.origin == origins.list[0] })
	}
	for range r.Count(3 + o.width) {
		p := pendingRow{ts: r.Varint(), seq: r.Uvarint(), source: origins.readOwner(r), off: len(o.slab)}
		o.slab = append(o.slab, make([]value.Value, o.width)...)
		readValues(r, o.slab[p.off:])
		o.pending = append(o.pending, p)
		o.low = min(o.low, p.ts)
	}
	seq, low, sweptAt := r.Uvarint(), r.Varint(), r.Varint()
	sweptKeys, pushed := int(r.Uvarint()), int(r.Uvarint())
	if origins.partition {
		// Another engine's counters: the sequence goes on after both, and
		// the sweeps are this one's.
		o.seq = max(o.seq, seq)
	} else {
		o.seq, o.low, o.sweptAt, o.sweptKeys, o.pushed = seq, low, sweptAt, sweptKeys, pushed
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading OVER state: %w", err)
	}
	o.tracked()
	return nil
}

// AppendSnapshot implements Snapshotter: each key's rows of both sides,
// by the key's encoding, which is the same in every run; with
// PartitionOrigins, those of one partition, which a repartition topic's
// partition holds whole keys of.
func (j *intervalJoin) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	keys, low, held := 0, int64(math.MaxInt64), 0
	for _, k := range j.byKey {
		if j.holdsAny(k, origins) {
			keys++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(keys))
	for key, k := range j.byKey {
		if !j.holdsAny(k, origins) {
			continue
		}
		dst = value.AppendBytes(dst, key)
		for side, rows := range [][]joinRow{k.left, k.right} {
			n := 0
			for _, r := range rows {
				if origins.holds(r.source) {
					n++
				}
			}
			dst = binary.AppendUvarint(dst, uint64(n))
			for _, r := range rows {
				if !origins.holds(r.source) {
					continue
				}
				dst = binary.AppendVarint(dst, r.ts)
				dst = origins.appendOwner(dst, r.source)
				dst = binary.AppendUvarint(dst, uint64(len(r.row)))
				dst = appendValues(dst, r.row)
				if j.outer(side == 0) {
					dst = appendBool(dst, r.matched)
				}
				low, held = min(low, r.ts), held+1
			}
		}
	}
	dst = binary.AppendVarint(dst, low)
	dst = binary.AppendUvarint(dst, uint64(held))
	return binary.AppendVarint(dst, j.sweptAt)
}

// forget drops the rows of partition o.
func (j *intervalJoin) forget(o *message.Origin) {
	drop := func(rows []joinRow) []joinRow {
		kept := slices.DeleteFunc(rows, func(r joinRow) bool { return r.source.origin == o })
		j.held -= len(rows) - len(kept)
		return kept
	}
	for key, k := range j.byKey {
		if k.left, k.right = drop(k.left), drop(k.right); len(k.left)+len(k.right) == 0 {
			delete(j.byKey, key)
			k.gone = true
		}
	}
}

// holdsAny reports whether a snapshot with origins holds any row of k.
func (j *intervalJoin) holdsAny(k *joinKey, origins *Origins) bool {
	return slices.ContainsFunc(k.left, func(r joinRow) bool { return origins.holds(r.source) }) ||
		slices.ContainsFunc(k.right, func(r joinRow) bool { return origins.holds(r.source) })
}

// RestoreSnapshot implements Snapshotter. A partition's snapshot adds its
// rows to the state; its keys are the partition's alone.
func (j *intervalJoin) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("join state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if origins.partition {
		// What the operator held of the partition, from before it moved
		// away and came back, is replaced.
		j.forget(origins.list[0])
	} else {
		j.byKey, j.low, j.held = map[string]*joinKey{}, math.MaxInt64, 0
	}
	readRows := func(flagged bool) []joinRow {
		var rows []joinRow
		for range r.Count(3) {
			jr := joinRow{ts: r.Varint(), source: origins.readOwner(r)}
			jr.row = make(value.Row, r.Count(1))
			readValues(r, jr.row)
			if flagged {
				jr.matched = r.Byte() == 1
			}
			rows = append(rows, jr)
		}
		return rows
	}
	for range r.Count(3) {
		key := r.String()
		left, right := readRows(j.outer(true)), readRows(j.outer(false))
		k := j.byKey[key]
		if k == nil {
			k = &joinKey{}
			j.byKey[key] = k
		}
		k.left, k.right = append(k.left, left...), append(k.right, right...)
	}
	low, held, swept := r.Varint(), int(r.Uvarint()), r.Varint()
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading join state: %w", err)
	}
	j.low, j.held = min(j.low, low), j.held+held
	if !origins.partition {
		j.sweptAt = swept
	}
	j.rebuild()
	return nil
}

// AppendSnapshot implements Snapshotter: the table's rows, the table
// partitions not yet read to their end, the stream rows waiting for them,
// and the further tables' rows, each table's but those read again whole.
// The stream rows joined already are not state.
func (t *tableJoin) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = appendTableRows(dst, t.rows, t.reread)
	dst = binary.AppendUvarint(dst, uint64(len(t.parts)))
	for o := range t.parts {
		dst = origins.appendOwner(dst, owner{origin: o})
	}
	dst = binary.AppendUvarint(dst, uint64(len(t.waiting)))
	for _, r := range t.waiting {
		dst = origins.appendOwner(dst, r.source)
		dst = appendValues(dst, r.row)
	}
	return appendLookups(dst, t.lookups)
}

// appendTableRows appends a table's rows; none for one read again whole.
func appendTableRows(dst []byte, rows map[string]value.Row, reread bool) []byte {
	if reread {
		return binary.AppendUvarint(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(rows)))
	for _, row := range rows {
		dst = appendValues(dst, row)
	}
	return dst
}

// appendLookups appends the rows of a join's further tables, in turn.
func appendLookups(dst []byte, lookups []*lookup) []byte {
	for _, l := range lookups {
		if l.versions != nil {
			dst = l.versions.append(dst, l.reread)
			continue
		}
		dst = appendTableRows(dst, l.rows, l.reread)
	}
	return dst
}

// readLookups reads the rows of a join's further tables, appendLookups'.
func readLookups(r *value.Reader, lookups []*lookup) error {
	for _, l := range lookups {
		if l.versions != nil {
			l.versions.read(r, &l.table, l.reread)
			continue
		}
		var err error
		if l.rows, err = readTableRows(r, &l.table, l.reread); err != nil {
			return err
		}
	}
	return nil
}

// readTableRows reads a table's rows, keyed by the table's keys; none
// are kept for a table read again whole (reread), whose snapshot, of a
// run that did not, may hold rows deleted since.
func readTableRows(r *value.Reader, table *side, reread bool) (map[string]value.Row, error) {
	rows := map[string]value.Row{}
	for range r.Count(table.width) {
		row := make(value.Row, table.width)
		readValues(r, row)
		if r.Err() != nil {
			break
		}
		if err := table.keys.encode(row, 0); err != nil {
			return nil, fmt.Errorf("reading table join state of %s: %w", table.source, err)
		}
		rows[string(table.keys.buf)] = row
	}
	if reread {
		clear(rows)
	}
	return rows, nil
}

// RestoreSnapshot implements Snapshotter. The streams wait again for every
// table partition of this run (Begin), whatever the snapshot's were: one
// that had ended ends again at once, its reader starting after the rows
// the state holds, and a Kafka table's may hold rows written since the
// checkpoint, which must be read before the streams join.
func (t *tableJoin) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("table join state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	var err error
	if t.rows, err = readTableRows(r, &t.table, t.reread); err != nil {
		return err
	}
	for range r.Count(1) {
		origins.readOwner(r) // the partitions not loaded then
	}
	t.waiting = t.waiting[:0]
	for range r.Count(1 + t.stream.width) {
		jr := joinRow{source: origins.readOwner(r), row: make(value.Row, t.stream.width)}
		readValues(r, jr.row)
		t.waiting = append(t.waiting, jr)
	}
	if err := readLookups(r, t.lookups); err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading table join state: %w", err)
	}
	return nil
}

// AppendSnapshot implements Snapshotter: each key's versions, by the key's
// encoding, the stream rows waiting, and the further tables' rows (their
// versions, of those joined as of a time). Like a
// table join's, it is the state of one engine, which holds the whole
// table.
func (j *temporalJoin) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = j.versions.append(dst, j.reread)
	// In time and arrival order, which a restore numbers them in.
	pending := j.pending.all()
	dst = binary.AppendUvarint(dst, uint64(len(pending)))
	for _, r := range pending {
		dst = binary.AppendVarint(dst, r.ts)
		dst = origins.appendOwner(dst, r.source)
		dst = appendValues(dst, r.row)
	}
	return appendLookups(dst, j.lookups)
}

// RestoreSnapshot implements Snapshotter. As a table join's, it waits for
// the table partitions of this run (Begin) to be loaded again.
func (j *temporalJoin) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("table join state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	j.pending, j.seq = asOfRows{}, 0
	j.versions.read(r, &j.table, j.reread)
	for range r.Count(2 + j.stream.width) {
		j.seq++
		w := asOfRow{ts: r.Varint(), seq: j.seq, source: origins.readOwner(r), row: make(value.Row, j.stream.width)}
		readValues(r, w.row)
		j.pending.push(w)
	}
	if err := readLookups(r, j.lookups); err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading table join state: %w", err)
	}
	return nil
}

// append appends each key's versions, none if the table is read again
// whole after a restore (reread).
func (v *versioned) append(dst []byte, reread bool) []byte {
	keys := v.keys
	if reread {
		keys = nil
	}
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for key, vs := range keys {
		dst = value.AppendBytes(dst, key)
		dst = binary.AppendUvarint(dst, uint64(len(vs)))
		for _, ver := range vs {
			dst = binary.AppendVarint(dst, ver.ts)
			if ver.row == nil {
				dst = append(dst, 0)
				continue
			}
			dst = appendValues(append(dst, 1), ver.row)
		}
	}
	return dst
}

// read reads in place of v's versions what append wrote; none are kept
// for a table read again whole (reread), as a table join's rows. r's
// error says whether it could.
func (v *versioned) read(r *value.Reader, table *side, reread bool) {
	v.keys, v.held = map[string][]version{}, 0
	for range r.Count(3) {
		key := r.String()
		vs := make([]version, 0, r.Count(2))
		for range cap(vs) {
			ver := version{ts: r.Varint()}
			if r.Byte() == 1 {
				ver.row = make(value.Row, table.width)
				readValues(r, ver.row)
			}
			vs = append(vs, ver)
		}
		v.keys[key], v.held = vs, v.held+len(vs)
	}
	if reread {
		v.keys, v.held = map[string][]version{}, 0
	}
}
