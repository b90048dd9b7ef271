package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluice-dev/sluice/runtime/value"
)

// AppendStates appends the binary form of states, a group's, one per
// call, to dst, for a checkpoint: every field, so that states read back go
// on exactly as these would, down to the compensated sums' rounding
// residue, and each COUNT(DISTINCT) call's values, whether it shares its
// set with other calls or not.
func (c *Calls) AppendStates(dst []byte, states []State) []byte {
	for i := range states {
		s := &states[i]
		dst = binary.AppendVarint(dst, s.n)
		dst = binary.AppendVarint(dst, s.sum.hi)
		dst = binary.AppendUvarint(dst, s.sum.lo)
		for _, f := range [...]float64{s.fsum.hi, s.fsum.lo, s.mean, s.m2} {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
		dst = binary.AppendVarint(dst, s.ts)
		dst = value.AppendBinary(dst, s.v)
		if c.Funcs[i].Kind != CountDistinct || s.n == 0 {
			dst = binary.AppendUvarint(dst, 0)
			continue
		}
		// The whole numbers as the keys they were made from (Func.key), so
		// that the form is one whatever map holds them.
		dst = binary.AppendUvarint(dst, uint64(s.n)+1)
		for v := range c.distinct(states, i) {
			dst = value.AppendBinary(dst, v)
		}
	}
	return dst
}

// ReadStates reads into states what AppendStates wrote, in place of what
// they held; r's error says whether it could.
func (c *Calls) ReadStates(r *value.Reader, states []State) {
	clear(states)
	for i := range states {
		s := &states[i]
		s.n = r.Varint()
		s.sum.hi = r.Varint()
		s.sum.lo = r.Uvarint()
		s.fsum.hi, s.fsum.lo, s.mean, s.m2 = r.Float64(), r.Float64(), r.Float64(), r.Float64()
		s.ts = r.Varint()
		s.v = r.Value()
		n := r.Count(1)
		if n == 0 {
			continue
		}
		if c.Funcs[i].Kind != CountDistinct {
			r.Fail(fmt.Errorf("%s holds distinct values: the checkpoint is of other calls", c.Funcs[i].Kind))
			return
		}
		// Checkpoints written before the counts were kept in n hold 0 there.
		s.n = 0
		set := c.sets[c.set[i]]
		for range n - 1 {
			count(states, set, r.Value(), c.bit[i])
		}
	}
}

func appendCompSum(dst []byte, c compSum) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.hi))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.lo))
}

func readCompSum(r *value.Reader) compSum { return compSum{hi: r.Float64(), lo: r.Float64()} }

// AppendFrame appends the frame's binary form to dst, for a checkpoint: its
// rows, their numbering, and every call's running state, so that a frame
// read back (ReadFrame) goes on exactly as w would. AppendFrameChanges
// writes what changed after it. AppendFrameSharing writes a key's frames
// in less.
func AppendFrame(dst []byte, w *Frame) []byte {
	w.mark = w.first
	return appendFrame(dst, w, nil, false)
}

// AppendFrameChanges appends to dst what changed in w since the last
// AppendFrame or AppendFrameChanges of it: where its rows now begin, the
// rows pushed since, and every call's running state. A frame's rows stay
// until they leave it, so that is far less than the frame when it is long.
func AppendFrameChanges(dst []byte, w *Frame) []byte {
	return appendFrame(dst, w, nil, false)
}

// AppendFrameSharing is AppendFrame, or AppendFrameChanges when changes
// is set, for one of a key's frames, which all take the same rows: where
// the rows it writes are, one for one, rows of an earlier frame of prior,
// whose rows are written before (or read before, by ReadFrameSharing), it
// writes that frame's index instead of them. A moving aggregate over 15
// minutes, an hour and four hours thus writes each row once, not three
// times.
func AppendFrameSharing(dst []byte, w *Frame, prior []*Frame, changes bool) []byte {
	if !changes {
		w.mark = w.first
	}
	return appendFrame(dst, w, prior, true)
}

// appendFrame appends w's rows since its mark and its calls' states; with
// sharing, in AppendFrameSharing's format.
func appendFrame(dst []byte, w *Frame, prior []*Frame, sharing bool) []byte {
	end := w.first + int64(w.n)
	from := max(w.mark, w.first)
	dst = binary.AppendVarint(dst, w.first)
	dst = binary.AppendVarint(dst, from)
	dst = binary.AppendUvarint(dst, uint64(end-from))
	like := -1
	for i := len(prior) - 1; i >= 0 && like < 0 && from < end; i-- {
		if holdsRows(prior[i], w, from, end) {
			like = i
		}
	}
	if sharing {
		dst = binary.AppendUvarint(dst, uint64(like+1))
	}
	if like < 0 {
		for q := from; q < end; q++ {
			dst = binary.AppendVarint(dst, w.ts[w.slot(q)])
			for i := range w.funcs {
				dst = value.AppendBinary(dst, w.arg(q, i))
			}
		}
	}
	w.mark = end
	return appendFrameAccs(dst, w)
}

// holdsRows reports whether frame p holds w's rows from to end, numbered
// alike, with the same times and arguments.
func holdsRows(p, w *Frame, from, end int64) bool {
	k := len(w.funcs)
	if len(p.funcs) != k || p.first > from || p.first+int64(p.n) < end {
		return false
	}
	for q := from; q < end; q++ {
		ps, ws := p.slot(q), w.slot(q)
		if p.ts[ps] != w.ts[ws] {
			return false
		}
		for i := range k {
			if p.args[ps*k+i] != w.args[ws*k+i] {
				return false
			}
		}
	}
	return true
}

// ReadFrameSharing reads what AppendFrameSharing wrote into w: whole into
// a frame NewFrame made, or changes after the frame's rows; prior are the
// key's frames read before w.
func ReadFrameSharing(r *value.Reader, w *Frame, prior []*Frame) {
	first, from := r.Varint(), r.Varint()
	readFrameFrom(r, w, first, from, prior, true)
}

func appendFrameAccs(dst []byte, w *Frame) []byte {
	for i := range w.accs {
		a := &w.accs[i]
		dst = binary.AppendVarint(dst, a.n)
		dst = binary.AppendVarint(dst, a.sum.hi)
		dst = binary.AppendUvarint(dst, a.sum.lo)
		for _, c := range [...]compSum{a.fsum, a.fabs, a.sq.s1, a.sq.s2} {
			dst = appendCompSum(dst, c)
		}
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.peak))
		for _, n := range [...]int{a.nan, a.posInf, a.negInf} {
			dst = binary.AppendUvarint(dst, uint64(n))
		}
		dst = binary.AppendUvarint(dst, uint64(a.deque.n))
		for j := range a.deque.n {
			dst = binary.AppendVarint(dst, a.deque.buf[(a.deque.head+j)&(len(a.deque.buf)-1)])
		}
		dst = binary.AppendUvarint(dst, uint64(len(a.counts)))
		for v, n := range a.counts {
			dst = binary.AppendUvarint(value.AppendBinary(dst, v), uint64(n))
		}
	}
	return dst
}

// ReadFrame reads into w what AppendFrame or AppendFrameChanges wrote: the
// former into a frame NewFrame made for the same calls, the latter into
// the frame as of the write before it. r's error says whether it could.
func ReadFrame(r *value.Reader, w *Frame) {
	first, from := r.Varint(), r.Varint()
	readFrame(r, w, first, from)
}

// ReadFrameV1 reads a frame that AppendFrame of the first checkpoint format
// wrote, without the place its rows begin from, into a frame NewFrame made.
func ReadFrameV1(r *value.Reader, w *Frame) {
	first := r.Varint()
	readFrame(r, w, first, first)
}

func readFrame(r *value.Reader, w *Frame, first, from int64) {
	readFrameFrom(r, w, first, from, nil, false)
}

// readFrameFrom reads a frame's rows and state; with sharing, in the
// format of AppendFrameSharing, whose rows may be those of a frame of
// prior.
func readFrameFrom(r *value.Reader, w *Frame, first, from int64, prior []*Frame, sharing bool) {
	count := r.Uvarint()
	var like *Frame
	if sharing {
		switch i := r.Uvarint(); {
		case i == 0:
		case i > uint64(len(prior)):
			r.Fail(fmt.Errorf("frame: rows of frame %d, of %d before it", i-1, len(prior)))
			return
		default:
			like = prior[i-1]
		}
	}
	switch {
	case like == nil && count > uint64(r.Len()/(1+len(w.funcs))):
		r.Fail(fmt.Errorf("frame: %d rows: %w", count, value.ErrTruncated))
	case like != nil && (count > uint64(like.n) || like.first > from || from+int64(count) > like.first+int64(like.n) || len(like.funcs) != len(w.funcs)):
		r.Fail(fmt.Errorf("frame: %d rows from row %d of a frame that holds rows %d to %d", count, from, like.first, like.first+int64(like.n)))
	}
	if r.Err() != nil {
		return
	}
	added := int(count)
	if end := w.first + int64(w.n); first < w.first || from != max(end, first) {
		r.Fail(fmt.Errorf("frame: changes from row %d (the frame beginning at %d) do not follow rows %d to %d", from, first, w.first, end))
		return
	}
	// The rows that left the frame since go; their calls' states are read
	// whole below.
	k := len(w.funcs)
	for w.n > 0 && w.first < first {
		clear(w.args[w.slot(w.first)*k : w.slot(w.first)*k+k])
		w.first++
		w.n--
	}
	w.first = first
	c := len(w.ts)
	for c < w.n+added {
		c *= 2
	}
	if c != len(w.ts) {
		w.resize(c)
	}
	for q := from; q < from+int64(added); q++ {
		s := w.slot(q)
		if like != nil {
			ls := like.slot(q)
			w.ts[s] = like.ts[ls]
			copy(w.args[s*k:s*k+k], like.args[ls*k:ls*k+k])
			continue
		}
		w.ts[s] = r.Varint()
		for i := range k {
			w.args[s*k+i] = r.Value()
		}
	}
	w.n += added
	w.mark = first + int64(w.n)
	for i := range w.accs {
		a := &w.accs[i]
		*a = frameAcc{n: r.Varint(), sum: int128{hi: r.Varint(), lo: r.Uvarint()}}
		a.fsum, a.fabs = readCompSum(r), readCompSum(r)
		a.sq.s1, a.sq.s2 = readCompSum(r), readCompSum(r)
		a.peak = r.Float64()
		a.nan, a.posInf, a.negInf = int(r.Uvarint()), int(r.Uvarint()), int(r.Uvarint())
		if kind := w.funcs[i].Kind; kind == Min || kind == Max {
			a.deque = rowDeque{buf: make([]int64, c)}
		}
		for range r.Count(1) {
			if a.deque.n == len(a.deque.buf) {
				// More rows in the deque than the frame holds: corrupt.
				r.Fail(fmt.Errorf("frame: a deque of more rows than the frame's %d", w.n))
				break
			}
			a.deque.pushBack(r.Varint())
		}
		if m := r.Count(2); m > 0 {
			a.counts = make(map[value.Value]int, m)
			for range m {
				v := r.Value()
				a.counts[v] = int(r.Uvarint())
			}
		}
	}
}
