package streamop

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// topRows runs a top-N of a source's rows without a window: ROW_NUMBER
// over each partition's rows so far. Its result is a changelog: whenever
// a row enters a partition's top N, the rows of its rank and of those
// after it, which move down one, are written again with their rank. A
// reader keeps the latest row of each partition and rank.
type topRows struct {
	rowRanking
	parts map[string]*topPart

	// changed lists the partitions changed since their rows were last
	// written, each with the first rank changed (from); pace holds them
	// back for the emit interval, if there is one. Those before written
	// are written already, of changes written a batch at a time.
	changed []*topPart
	written int
	clock   func() time.Time
	pace    pacer
	// ttl drops a partition no row changed for that long (ns of clock),
	// idle lists them by their last change, and expired counts those
	// dropped.
	ttl     int64
	now     int64
	idle    idleList[topPart, *topPart]
	expired int64
	// owners are the source partitions, in a generation, that partitions
	// were built from: one that moved away has its partitions dropped,
	// which its new owner holds.
	owners ownerSet
	// maxRows is StatefulOptions.MaxRows: how many rows an Advance writes
	// before it keeps the rest of the changed partitions for the next.
	maxRows int
}

// topPart is a partition's top rows, best first.
type topPart struct {
	key  string
	rows []*rankedRow
	// first holds rows' first row, without an allocation of its own.
	first [1]*rankedRow
	src   owner
	// from is the first rank (from 0) changed since the rows were last
	// written, -1 for none.
	from int
	// idle places it in the idle list: with a ttl only.
	idle idleLinks[topPart]
}

func (p *topPart) links() *idleLinks[topPart] { return &p.idle }

func newTopRows(n *plan.TopN, opts StatefulOptions) *topRows {
	t := &topRows{rowRanking: newRowRanking(n), parts: map[string]*topPart{}, clock: time.Now, ttl: int64(opts.TTL)}
	if opts.Clock != nil {
		t.clock = opts.Clock
	}
	t.pace = newPacer(t.clock, opts.EmitInterval)
	return t
}

// Process implements Stateful. No row is late: rows are ranked in the
// order they come.
func (t *topRows) Process(in, out *message.Batch, _ Watermark, fail Failures) (late, absorbed int) {
	src := ownerOf(in)
	if t.ttl > 0 {
		t.now = t.clock().UnixNano()
		t.expire(t.now, out)
	}
	for i, row := range in.Rows {
		if err := t.eval(row); err != nil {
			fail.Fail(in, i, "rank", err)
			continue
		}
		absorbed++
		p := t.parts[string(t.keys.buf)]
		if p != nil && !p.src.current() {
			// Built in its source partition's earlier generation: the rows
			// read again build it anew.
			t.drop(p)
			p = nil
		}
		if p == nil {
			p = &topPart{key: string(t.keys.buf), src: src, from: -1}
			p.rows = p.first[:0]
			t.parts[p.key] = p
			t.owners.add(src)
		}
		at := t.position(p.rows, t.ord)
		if at > 0 && at == len(p.rows) && t.past(p.rows, t.ord) {
			continue // past the limit: nothing changes
		}
		p.rows = t.insert(p.rows, at, t.take(row, src))
		t.change(p, at)
	}
	if t.pace.afterBatch() {
		t.emitChanged(out)
	}
	return 0, absorbed
}

// change notes that p's rows changed from rank at on.
func (t *topRows) change(p *topPart, at int) {
	if p.from < 0 {
		t.changed = append(t.changed, p)
		p.from = at
	}
	p.from = min(p.from, at)
	if t.ttl > 0 {
		t.idle.touch(p, t.now)
	}
}

// emitChanged writes the changed rows of each partition changed since
// they were last written, until out holds maxRows rows (if set): the rest
// are written at the next Advance.
func (t *topRows) emitChanged(out *message.Batch) {
	t.pace.written()
	for ; t.written < len(t.changed); t.written++ {
		if t.maxRows > 0 && out.Len() >= t.maxRows {
			t.changed, t.written = unwritten(t.changed, t.written)
			t.pace.writtenInPart()
			return
		}
		t.emitPart(out, t.changed[t.written])
	}
	clear(t.changed)
	t.changed, t.written = t.changed[:0], 0
}

// emitPart writes p's rows from its first changed rank on, if changed.
func (t *topRows) emitPart(out *message.Batch, p *topPart) {
	if p.from < 0 {
		return // dropped since, or written
	}
	if p.src.current() {
		for i := p.from; i < len(p.rows); i++ {
			row := out.Append(0)
			copy(row, p.rows[i].row)
			row[t.width] = value.IntValue(int64(i) + 1)
		}
	}
	p.from = -1
}

// Advance implements Stateful: it drops idle and moved partitions and
// writes the changes an emit interval held back, once due. The watermark
// does not matter: there are no windows.
func (t *topRows) Advance(_ Watermark, out *message.Batch, _ func(error)) (dropped int) {
	if t.ttl > 0 {
		t.now = t.clock().UnixNano()
		t.expire(t.now, out)
	}
	t.dropMoved()
	if t.pace.atAdvance(t.written < len(t.changed)) {
		t.emitChanged(out)
	}
	return 0
}

// Flush implements Flusher.
func (t *topRows) Flush() bool {
	return t.pace.flushHeld(t.written < len(t.changed))
}

// expire drops the partitions no row changed for the ttl: a reader of the
// changelog keeps their last rows (a change the emit interval holds back
// is written to out first), and a later row of the partition starts it
// again, from nothing. It looks at most every sixteenth of the ttl or
// every second, whichever is shorter.
func (t *topRows) expire(now int64, out *message.Batch) {
	if !t.idle.sweepDue(now, t.ttl) {
		return
	}
	for p := t.idle.oldest; p != nil && now-p.idle.touched >= t.ttl; p = t.idle.oldest {
		t.emitPart(out, p) // a change the emit interval holds back
		t.drop(p)
		t.expired++
	}
}

// drop forgets a partition.
func (t *topRows) drop(p *topPart) {
	t.idle.remove(p)
	for _, h := range p.rows {
		t.release(h)
	}
	p.rows, p.from = nil, -1
	delete(t.parts, p.key)
}

// dropMoved drops the partitions built from a source partition that has
// since moved to another engine, which holds them. It looks at them only
// when a source partition moved.
func (t *topRows) dropMoved() {
	if !t.owners.moved() {
		return
	}
	for _, p := range t.parts {
		if !p.src.current() {
			t.drop(p)
		}
	}
}

// Expired implements Expirer.
func (t *topRows) Expired() int64 { return t.expired }

// Low implements Stateful: every row's results are written once taken,
// but those an emit interval holds back.
func (t *topRows) Low() int64 {
	for _, p := range t.changed[t.written:] {
		if p.from >= 0 {
			return math.MinInt64
		}
	}
	return math.MaxInt64
}

// Size implements Stateful: the rows held.
func (t *topRows) Size() int { return t.rows }

// AppendSnapshot implements Snapshotter: each partition's top rows, in
// rank order.
func (t *topRows) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	n := 0
	for _, p := range t.parts {
		if origins.holds(p.src) {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, p := range t.parts {
		if !origins.holds(p.src) {
			continue
		}
		dst = origins.appendOwner(dst, p.src)
		dst = value.AppendBytes(dst, p.key)
		dst = binary.AppendUvarint(dst, uint64(len(p.rows)))
		for _, h := range p.rows {
			dst = appendRow(dst, h)
		}
	}
	return dst
}

// RestoreSnapshot implements Snapshotter. A partition's snapshot adds its
// partitions to those held, replacing any of the same key.
func (t *topRows) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("top-N state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if !origins.partition {
		for _, p := range t.parts {
			t.drop(p)
		}
		clear(t.changed)
		t.changed, t.written = t.changed[:0], 0
	}
	if t.ttl > 0 {
		t.now = t.clock().UnixNano() // idle times start again
	}
	for range r.Count(3) {
		src := origins.readOwner(r)
		key := r.Bytes()
		if p := t.parts[string(key)]; p != nil {
			t.drop(p)
		}
		p := &topPart{key: string(key), src: src, from: -1}
		p.rows = p.first[:0]
		for range r.Count(t.width + len(t.order)) {
			h := t.readRow(r, src)
			if h == nil {
				break
			}
			p.rows = t.insert(p.rows, t.position(p.rows, h.ord), h)
		}
		if r.Err() != nil {
			break
		}
		t.parts[p.key] = p
		t.owners.add(src)
		if t.ttl > 0 {
			t.idle.touch(p, t.now)
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading top-N state: %w", err)
	}
	return nil
}
