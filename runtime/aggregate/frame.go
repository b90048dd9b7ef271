package aggregate

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/value"
)

// FrameSpec is the extent of a moving frame that ends at the current row.
type FrameSpec struct {
	// Preceding is the frame's extent before the current row: a number of
	// rows for a ROWS frame, nanoseconds for a RANGE frame. A negative
	// Preceding is taken as 0.
	Preceding int64
	// Range makes the frame RANGE BETWEEN Preceding PRECEDING AND CURRENT ROW:
	// every row whose event time is at least the current row's minus
	// Preceding, including the current row's peers, the rows of equal event
	// time. Otherwise the frame is ROWS BETWEEN Preceding PRECEDING AND
	// CURRENT ROW: the current row and the Preceding rows pushed before it.
	Range bool
}

// Frame is the moving frame of one partition key for a set of aggregate calls
// that share the frame. Rows are pushed in non-decreasing event-time order;
// the caller sorts them by watermark first.
//
// Each row costs amortized O(1) time per aggregate call, and nothing is
// allocated per row once the frame has reached its usual size, except by
// COUNT(DISTINCT) when it meets new values. COUNT, SUM and AVG add a row's
// value when it enters the frame and subtract it when it leaves; for ints and
// decimals this is exact. For doubles it is not: subtracting a value leaves a
// rounding residue of the order of 1e-16 of the largest value the frame has
// held, which would swamp the sum of much smaller values that follow. The sums
// are compensated (Kahan–Neumaier), which shrinks the residue to the order of
// 1e-32, and they are rebuilt from the rows held when the values left are 1e8
// times smaller than the largest since the last rebuild, or when a sum has
// overflowed to ±Inf, which subtraction cannot undo. Results therefore agree
// with a recomputation over the frame to rounding of the order of 1e-15 of the
// magnitudes held, at a cost that stays amortized O(1) unless magnitudes keep
// collapsing. STDDEV keeps
// compensated sums of x and x² the same way. MIN and MAX keep a monotonic
// deque of the rows that can still become the extreme. FIRST_VALUE is the
// oldest row's value and LAST_VALUE the newest's.
//
// A Frame stores only each row's event time and arguments. It is not safe for
// concurrent use.
type Frame struct {
	spec  FrameSpec
	funcs []Func
	accs  []frameAcc

	// The rows held live in a ring whose capacity is a power of two. Rows are
	// numbered from the first push, and row q sits in slot q & (capacity-1),
	// so a row number names a row across growth and shrinking; the MIN and
	// MAX deques hold row numbers.
	ts    []int64       // event time by slot
	args  []value.Value // arguments by slot: len(funcs) per slot
	first int64         // number of the oldest row held
	n     int           // rows held
	// mark is the number of the row after the last one a checkpoint wrote
	// (AppendFrame, AppendFrameChanges).
	mark int64
}

// minRows is the smallest capacity of a frame's ring, so that small frames do
// not resize as they fill and drain.
const minRows = 8

// rebuildRatio is how many times smaller than the peak value a frame's double
// sums may become before they are rebuilt from the rows. The compensated sums'
// residue is about 1e-32 of the peak, so this keeps it near 1e-24 of the sum.
const rebuildRatio = 1e8

// frameAcc is the running state of one aggregate call over a frame.
type frameAcc struct {
	n    int64   // non-NULL arguments in the frame
	sum  int128  // SUM and AVG of ints and decimals, unscaled at the argument's scale
	fsum compSum // SUM and AVG of doubles: the finite ones
	fabs compSum // the sum of their magnitudes, to tell when fsum has lost precision
	sq   squares // STDDEV: the finite values
	// peak is the largest |x| in fsum, or x² in sq, since the sums were last
	// rebuilt or emptied: their rounding residue is relative to it.
	peak float64

	// Non-finite doubles in the frame. They stay out of fsum and sq because
	// subtracting them back out gives NaN (Inf - Inf), and decide the result
	// while they are in the frame.
	nan, posInf, negInf int

	deque  rowDeque            // MIN and MAX
	counts map[value.Value]int // COUNT(DISTINCT): rows per distinct key
}

// NewFrame returns an empty frame of the given extent for the aggregate calls
// funcs. Push takes one argument per call and Results writes one value per
// call, in the order of funcs.
func NewFrame(spec FrameSpec, funcs []Func) *Frame {
	spec.Preceding = max(spec.Preceding, 0)
	w := &Frame{spec: spec, funcs: slices.Clone(funcs), accs: make([]frameAcc, len(funcs))}
	w.resize(minRows)
	return w
}

// Len returns the number of rows the frame holds.
func (w *Frame) Len() int { return w.n }

// Push adds a row with event time ts and arguments args, args[i] for the i-th
// call, and evicts the rows that have left the frame. A ROWS frame then holds
// the row and the Preceding rows before it; a RANGE frame every row with an
// event time of at least ts - Preceding. Push does not compute the
// aggregates: for a RANGE frame, the caller pushes all the rows of one event
// time, the current row's peers, and then calls Results once for all of them;
// for a ROWS frame it calls Results after each Push.
//
// An argument the call cannot take, or an event time before the previous
// row's, is an error, and the row is not added.
func (w *Frame) Push(ts int64, args []value.Value) error {
	if len(args) != len(w.funcs) {
		return fmt.Errorf("aggregate frame: %d arguments for %d aggregate calls", len(args), len(w.funcs))
	}
	if w.n > 0 {
		if last := w.ts[w.slot(w.first+int64(w.n)-1)]; ts < last {
			return fmt.Errorf("aggregate frame: event time %d is before the previous row's %d; rows must be pushed in event-time order", ts, last)
		}
	}
	// Check every argument before adding any, so that an error leaves the
	// frame as it was.
	if err := w.Check(args); err != nil {
		return err
	}
	evicted := false
	for w.n > 0 && w.expired(ts) {
		w.evict()
		evicted = true
	}
	switch c := len(w.ts); {
	case w.n == c:
		w.resize(2 * c)
	case evicted && c > minRows && w.n < c/4:
		// Halving at a quarter full, not at half, keeps a frame whose size
		// hovers around a power of two from resizing back and forth; only
		// as rows leave, so that a frame Reset to be filled again keeps
		// its ring.
		w.resize(c / 2)
	}
	q := w.first + int64(w.n)
	s, k := w.slot(q), len(w.funcs)
	w.ts[s] = ts
	copy(w.args[s*k:s*k+k], args)
	w.n++
	for i, v := range args {
		w.add(i, q, v)
	}
	return nil
}

// Results writes the aggregate of each call over the rows the frame holds into
// out, out[i] for the i-th call. Over an empty frame the counts are 0 and the
// other aggregates NULL. A SUM or AVG whose result does not fit its type is an
// error; Results returns the first such error, sets the failed calls' results
// to NULL and still writes the others. The frame is unchanged either way.
func (w *Frame) Results(out []value.Value) error {
	if len(out) != len(w.funcs) {
		return fmt.Errorf("aggregate frame: %d results for %d aggregate calls", len(out), len(w.funcs))
	}
	var first error
	for i := range w.funcs {
		v, err := w.result(i)
		if err != nil && first == nil {
			first = err
		}
		out[i] = v
	}
	return first
}

// Check reports the error Push would return for args, an argument one of
// the calls cannot take, without pushing them.
func (w *Frame) Check(args []value.Value) error {
	if len(args) != len(w.funcs) {
		return fmt.Errorf("aggregate frame: %d arguments for %d aggregate calls", len(args), len(w.funcs))
	}
	for i := range w.funcs {
		if err := w.funcs[i].check(args[i]); err != nil {
			return err
		}
	}
	return nil
}

// Reset empties the frame, as NewFrame returns it, keeping its memory:
// a caller that computes the frames of a run of rows pushes them again
// from a fresh start.
func (w *Frame) Reset() {
	clear(w.args)
	for i := range w.accs {
		a := &w.accs[i]
		counts, deque := a.counts, a.deque
		clear(counts)
		deque.head, deque.n = 0, 0
		*a = frameAcc{counts: counts, deque: deque}
	}
	w.first += int64(w.n)
	w.n = 0
	w.mark = w.first
}

// slot returns the ring slot of row q.
func (w *Frame) slot(q int64) int { return int(q) & (len(w.ts) - 1) }

// arg returns the i-th argument of row q.
func (w *Frame) arg(q int64, i int) value.Value {
	return w.args[w.slot(q)*len(w.funcs)+i]
}

// expired reports whether the oldest row leaves the frame when a row with event
// time ts arrives.
func (w *Frame) expired(ts int64) bool {
	if !w.spec.Range {
		return int64(w.n) > w.spec.Preceding
	}
	// ts is at least the oldest row's time, so the difference is in [0, 2^64)
	// and exact in uint64, where int64 could overflow.
	return uint64(ts)-uint64(w.ts[w.slot(w.first)]) > uint64(w.spec.Preceding)
}

// evict removes the oldest row.
func (w *Frame) evict() {
	q := w.first
	s, k := w.slot(q), len(w.funcs)
	row := w.args[s*k : s*k+k]
	for i, v := range row {
		w.remove(i, q, v)
	}
	clear(row) // let the GC have the strings of rows that have left
	w.first++
	w.n--
}

// resize moves the rows to a ring of capacity c, a power of two at least w.n.
func (w *Frame) resize(c int) {
	k := len(w.funcs)
	ts := make([]int64, c)
	args := make([]value.Value, c*k)
	for q := w.first; q < w.first+int64(w.n); q++ {
		from, to := w.slot(q), int(q)&(c-1)
		ts[to] = w.ts[from]
		copy(args[to*k:to*k+k], w.args[from*k:from*k+k])
	}
	w.ts, w.args = ts, args
	for i := range w.accs {
		if kind := w.funcs[i].Kind; kind == Min || kind == Max {
			w.accs[i].deque.resize(c)
		}
	}
}

// add adds v, the i-th argument of the new row q, to the i-th call's state.
// Push has checked v.
func (w *Frame) add(i int, q int64, v value.Value) {
	f, a := &w.funcs[i], &w.accs[i]
	switch f.Kind {
	case CountStar, FirstValue, LastValue:
		return // computed from the rows
	}
	if v.IsNull() {
		return
	}
	switch f.Kind {
	case CountDistinct:
		if a.counts == nil {
			a.counts = make(map[value.Value]int)
		}
		a.counts[f.key(v)]++
	case Sum, Avg:
		if f.Arg.Kind != value.KindDouble {
			x, _ := f.exact(v)
			a.sum = a.sum.add(x)
		} else if x := v.Float(); !a.tally(x, 1) {
			a.addFloat(x)
		}
	case StddevSamp, StddevPop:
		if x := v.Float(); !a.tally(x, 1) {
			a.addSquare(x)
		}
	case Min, Max:
		for a.deque.n > 0 && f.better(v, w.arg(a.deque.back(), i)) {
			a.deque.popBack()
		}
		a.deque.pushBack(q)
	}
	a.n++
}

// remove takes v, the i-th argument of the oldest row q, out of the i-th
// call's state.
func (w *Frame) remove(i int, q int64, v value.Value) {
	f, a := &w.funcs[i], &w.accs[i]
	switch f.Kind {
	case CountStar, FirstValue, LastValue:
		return
	}
	if v.IsNull() {
		return
	}
	switch f.Kind {
	case CountDistinct:
		key := f.key(v)
		if c := a.counts[key]; c > 1 {
			a.counts[key] = c - 1
		} else {
			delete(a.counts, key)
		}
	case Sum, Avg:
		if f.Arg.Kind != value.KindDouble {
			x, _ := f.exact(v)
			a.sum = a.sum.sub(x)
		} else if x := v.Float(); !a.tally(x, -1) {
			a.fsum.add(-x)
			a.fabs.add(-math.Abs(x))
		}
	case StddevSamp, StddevPop:
		if x := v.Float(); !a.tally(x, -1) {
			a.sq.remove(x)
		}
	case Min, Max:
		if a.deque.n > 0 && a.deque.front() == q {
			a.deque.popFront()
		}
	}
	a.n--
	if a.n == 0 {
		// Drop the rounding residue of everything that has come and gone.
		a.sum, a.fsum, a.fabs, a.sq, a.peak = int128{}, compSum{}, compSum{}, squares{}, 0
	}
}

func (a *frameAcc) addFloat(x float64) {
	a.fsum.add(x)
	a.fabs.add(math.Abs(x))
	a.peak = max(a.peak, math.Abs(x))
}

func (a *frameAcc) addSquare(x float64) {
	a.sq.add(x)
	a.peak = max(a.peak, x*x)
}

// tally counts x, entering (d = 1) or leaving (d = -1) the frame, if it is NaN
// or infinite, and reports whether it was.
func (a *frameAcc) tally(x float64, d int) bool {
	switch {
	case math.IsNaN(x):
		a.nan += d
	case math.IsInf(x, 1):
		a.posInf += d
	case math.IsInf(x, -1):
		a.negInf += d
	default:
		return false
	}
	return true
}

// result returns the i-th call's aggregate over the rows held.
func (w *Frame) result(i int) (value.Value, error) {
	f, a := &w.funcs[i], &w.accs[i]
	switch f.Kind {
	case CountStar:
		return value.IntValue(int64(w.n)), nil
	case Count:
		return value.IntValue(a.n), nil
	case CountDistinct:
		return value.IntValue(int64(len(a.counts))), nil
	case FirstValue:
		if w.n == 0 {
			return value.NullValue(), nil
		}
		return w.arg(w.first, i), nil
	case LastValue:
		if w.n == 0 {
			return value.NullValue(), nil
		}
		return w.arg(w.first+int64(w.n)-1, i), nil
	case Min, Max:
		if a.deque.n == 0 {
			return value.NullValue(), nil
		}
		return w.arg(a.deque.front(), i), nil
	}
	if a.n == 0 {
		return value.NullValue(), nil
	}
	switch f.Kind {
	case Sum, Avg:
		var fsum float64
		if f.Arg.Kind == value.KindDouble {
			fsum = w.floatSum(i)
		}
		if f.Kind == Sum {
			return f.sumResult(a.sum, fsum)
		}
		return f.avgResult(a.n, a.sum, fsum)
	}
	// STDDEV_SAMP, STDDEV_POP
	if f.Kind == StddevSamp && a.n < 2 {
		return value.NullValue(), nil
	}
	if a.nan+a.posInf+a.negInf > 0 {
		return value.DoubleValue(math.NaN()), nil
	}
	if !a.sq.finite() || a.peak > rebuildRatio*a.sq.s2.value() {
		w.refold(i)
		if !a.sq.finite() {
			// Values beyond ±1e154 overflow x² but not Welford's algorithm.
			return w.recompute(i)
		}
	}
	d, n := a.sq.spread(a.n), float64(a.n)
	if f.Kind == StddevSamp {
		return value.DoubleValue(math.Sqrt(d / (n * (n - 1)))), nil
	}
	return value.DoubleValue(math.Sqrt(d) / n), nil
}

// floatSum returns the sum of the i-th call's double arguments in the frame.
func (w *Frame) floatSum(i int) float64 {
	a := &w.accs[i]
	switch {
	case a.nan > 0 || a.posInf > 0 && a.negInf > 0:
		return math.NaN()
	case a.posInf > 0:
		return math.Inf(1)
	case a.negInf > 0:
		return math.Inf(-1)
	}
	if !finite(a.fsum.hi) || !finite(a.fsum.lo) || !finite(a.fabs.hi) || a.peak > rebuildRatio*a.fabs.value() {
		w.refold(i)
	}
	return a.fsum.value()
}

// refold rebuilds the i-th call's double sums from the rows held, at a cost
// linear in the frame, when subtraction has left too much residue or a sum has
// overflowed to ±Inf, which subtraction cannot take back out.
func (w *Frame) refold(i int) {
	f, a := &w.funcs[i], &w.accs[i]
	a.fsum, a.fabs, a.sq, a.peak = compSum{}, compSum{}, squares{}, 0
	for q := w.first; q < w.first+int64(w.n); q++ {
		v := w.arg(q, i)
		if v.IsNull() {
			continue
		}
		x := v.Float()
		switch {
		case !finite(x):
		case f.Kind == StddevSamp || f.Kind == StddevPop:
			a.addSquare(x)
		default:
			a.addFloat(x)
		}
	}
}

// recompute returns the i-th call's aggregate by folding the rows held into a
// fresh State.
func (w *Frame) recompute(i int) (value.Value, error) {
	f := &w.funcs[i]
	var s State
	for q := w.first; q < w.first+int64(w.n); q++ {
		if err := f.Add(&s, w.arg(q, i), w.ts[w.slot(q)]); err != nil {
			return value.Value{}, err
		}
	}
	return f.Result(&s)
}

// rowDeque is a double-ended queue of row numbers in a ring. Its capacity is
// the frame's, which it never outgrows since it holds rows the frame holds,
// so pushing never allocates.
type rowDeque struct {
	buf  []int64
	head int
	n    int
}

func (d *rowDeque) resize(c int) {
	buf := make([]int64, c)
	for j := range d.n {
		buf[j] = d.buf[(d.head+j)&(len(d.buf)-1)]
	}
	d.buf, d.head = buf, 0
}

func (d *rowDeque) front() int64 { return d.buf[d.head] }

func (d *rowDeque) back() int64 { return d.buf[(d.head+d.n-1)&(len(d.buf)-1)] }

func (d *rowDeque) pushBack(q int64) {
	d.buf[(d.head+d.n)&(len(d.buf)-1)] = q
	d.n++
}

func (d *rowDeque) popBack() { d.n-- }

func (d *rowDeque) popFront() {
	d.head = (d.head + 1) & (len(d.buf) - 1)
	d.n--
}
