package streamop

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// windowRank runs a window top-N of a source's rows: it assigns each row
// to its tumbling or hopping windows and keeps, of each window and
// partition key, only the rows that can still rank within the limit, in
// rank order. When the watermark closes a window it writes them, ranked.
type windowRank struct {
	rowRanking
	time    int
	windows map[int64]*rankWindow
	starts  []int64
	// ranked is the end of the last window written: a row of a window
	// ranked already, from a partition that replays (or came late from
	// idleness), is late for it, or the window would be ranked again of
	// its rows alone.
	ranked int64
}

type rankWindow struct {
	start, end int64
	parts      map[string]*rankPart
	order      []*rankPart // in order of first row
}

// rankPart is the rows of one partition of a window that can still rank
// within the limit, best first, ties in the order they came.
type rankPart struct {
	key  string
	rows []*rankedRow
	// owners are the source partitions, in a generation, its rows came
	// from: when one is no longer current, its rows go.
	owners []owner
}

// prune drops part's rows of a source partition's earlier generation
// (before it was revoked, or before an aborted transaction): its new
// owner, or this engine reading it again, ranks them anew. It looks at
// the rows only when one of their owners changed.
func (r *windowRank) prune(part *rankPart) {
	if !slices.ContainsFunc(part.owners, func(o owner) bool { return !o.current() }) {
		return
	}
	part.owners = slices.DeleteFunc(part.owners, func(o owner) bool { return !o.current() })
	part.rows = r.rowRanking.prune(part.rows)
}

// own notes that part holds a row of src.
func (part *rankPart) own(src owner) {
	if !slices.Contains(part.owners, src) {
		part.owners = append(part.owners, src)
	}
}

func newWindowRank(n *plan.TopN) *windowRank {
	return &windowRank{rowRanking: newRowRanking(n), time: n.Window.Time.Index, windows: map[int64]*rankWindow{}, ranked: math.MinInt64}
}

// Process implements Stateful.
func (r *windowRank) Process(in, _ *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	src := ownerOf(in)
	watermark := wm.For(in.Origin)
	w := r.node.Window
	for i, row := range in.Rows {
		ts, err := eventTime(row, r.time)
		last := ts - mod(ts, w.Slide) // the start of its last window
		if err == nil && (ts < watermark || last+w.Size <= r.ranked) {
			late++
			continue
		}
		if err == nil {
			err = r.eval(row)
		}
		if err != nil {
			fail.Fail(in, i, "rank", err)
			continue
		}
		for start := last; start > ts-w.Size && start+w.Size > r.ranked; start -= w.Slide {
			r.add(start, start+w.Size, row, src)
		}
		absorbed++
	}
	return late, absorbed
}

// add offers the row in r.keys and r.ord to its partition of the window
// from start to end.
func (r *windowRank) add(start, end int64, row value.Row, src owner) {
	part := r.part(r.window(start, end), r.keys.buf)
	r.prune(part)
	at := r.position(part.rows, r.ord)
	if at == len(part.rows) && at > 0 && r.past(part.rows, r.ord) {
		return // it would rank past the limit
	}
	part.own(src)
	part.rows = r.insert(part.rows, at, r.take(row, src))
}

// window returns the open window from start to end, opening it if it is
// not.
func (r *windowRank) window(start, end int64) *rankWindow {
	win := r.windows[start]
	if win == nil {
		win = &rankWindow{start: start, end: end, parts: map[string]*rankPart{}}
		r.windows[start] = win
		i, _ := slices.BinarySearch(r.starts, start)
		r.starts = slices.Insert(r.starts, i, start)
	}
	return win
}

// part returns the partition of key in win, adding it if it has none.
func (r *windowRank) part(win *rankWindow, key []byte) *rankPart {
	part := win.parts[string(key)]
	if part == nil {
		part = &rankPart{key: string(key)}
		win.parts[part.key] = part
		win.order = append(win.order, part)
	}
	return part
}

// Advance implements Stateful: it writes the windows the watermark closed,
// each partition's rows in rank order with their window and rank, and
// drops them. A window whose rows include a replaying partition's waits
// for that partition's watermark, whole; rows of a partition that moved
// away are its new owner's to rank.
func (r *windowRank) Advance(wm Watermark, out *message.Batch, _ func(error)) (dropped int) {
	watermark := wm.For(nil)
	kept := r.starts[:0]
	for i, start := range r.starts {
		win := r.windows[start]
		if win.end > watermark {
			kept = append(kept, r.starts[i:]...)
			break
		}
		if r.waits(win, wm) {
			kept = append(kept, r.starts[i:]...) // windows are written in order
			break
		}
		r.ranked = win.end
		for _, part := range win.order {
			r.emit(out, win, part)
			for _, h := range part.rows {
				r.release(h)
			}
		}
		delete(r.windows, start)
	}
	r.starts = kept
	return 0
}

// waits reports whether a row of win waits for the watermark of a
// partition that is replaying, or such a partition may still bring rows
// to win.
func (r *windowRank) waits(win *rankWindow, wm Watermark) bool {
	if replayBefore(wm, win.end) {
		return true
	}
	for _, part := range win.order {
		for _, h := range part.rows {
			if h.src.current() && wm.For(h.src.origin) < win.end {
				return true
			}
		}
	}
	return false
}

// emit appends a partition's current rows, ranked.
func (r *windowRank) emit(out *message.Batch, win *rankWindow, part *rankPart) {
	var prev *rankedRow
	ranks := rankCounter{fn: r.node.Func}
	for _, h := range part.rows {
		if !h.src.current() {
			continue
		}
		n := ranks.next(prev != nil && r.compare(prev.ord, h.ord) == 0)
		prev = h
		if n > r.node.Limit {
			break
		}
		row := out.Append(0)
		copy(row, h.row)
		row[r.width], row[r.width+1], row[r.width+2] = value.TimestampValue(win.start), value.TimestampValue(win.end), value.IntValue(n)
	}
}

// Low implements Stateful: the start of the earliest open window.
func (r *windowRank) Low() int64 {
	if len(r.starts) == 0 {
		return math.MaxInt64
	}
	return r.starts[0]
}

// Size implements Stateful: the rows held.
func (r *windowRank) Size() int { return r.rows }

// AppendSnapshot implements Snapshotter: the open windows in order, each
// partition's rows held, in rank order.
func (r *windowRank) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	held := func(part *rankPart) int {
		n := 0
		for _, h := range part.rows {
			if origins.holds(h.src) {
				n++
			}
		}
		return n
	}
	partsOf := func(win *rankWindow) int {
		n := 0
		for _, part := range win.order {
			if held(part) > 0 {
				n++
			}
		}
		return n
	}
	wins := 0
	for _, start := range r.starts {
		if partsOf(r.windows[start]) > 0 {
			wins++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(wins))
	for _, start := range r.starts {
		win := r.windows[start]
		parts := partsOf(win)
		if parts == 0 {
			continue
		}
		dst = binary.AppendVarint(dst, win.start)
		dst = binary.AppendVarint(dst, win.end)
		dst = binary.AppendUvarint(dst, uint64(parts))
		for _, part := range win.order {
			n := held(part)
			if n == 0 {
				continue
			}
			dst = value.AppendBytes(dst, part.key)
			dst = binary.AppendUvarint(dst, uint64(n))
			for _, h := range part.rows {
				if origins.holds(h.src) {
					dst = appendRow(origins.appendOwner(dst, h.src), h)
				}
			}
		}
	}
	return dst
}

// RestoreSnapshot implements Snapshotter. A partition's snapshot adds its
// rows to those held, each where it ranks.
//
// The windows it holds are open again, whatever was ranked here since:
// after a rewind, the results of the aborted transaction are gone; a
// partition taken over brings windows its keys were not ranked in here.
// Its records before the checkpoint's watermark are late by the
// partition's floor (watermarks.takeOver), so that windows closed before
// the checkpoint are not ranked again.
func (r *windowRank) RestoreSnapshot(rd *value.Reader, origins *Origins) error {
	r.ranked = math.MinInt64
	if v := rd.Byte(); v != snapshotVersion && rd.Err() == nil {
		return fmt.Errorf("top-N state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if !origins.partition {
		for _, win := range r.windows {
			for _, part := range win.order {
				for _, h := range part.rows {
					r.release(h)
				}
			}
		}
		r.windows, r.starts = map[int64]*rankWindow{}, nil
	}
	for range rd.Count(3) {
		start, end := rd.Varint(), rd.Varint()
		if end <= start {
			rd.Fail(fmt.Errorf("window %d to %d", start, end))
		}
		win := r.window(start, end)
		for range rd.Count(2) {
			part := r.part(win, rd.Bytes())
			for range rd.Count(1 + r.width + len(r.order)) {
				h := r.readRow(rd, origins.readOwner(rd))
				if h == nil {
					break
				}
				r.prune(part)
				part.own(h.src)
				part.rows = r.insert(part.rows, r.position(part.rows, h.ord), h)
			}
		}
		if rd.Err() != nil {
			break
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("reading top-N state: %w", err)
	}
	return nil
}
