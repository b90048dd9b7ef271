package streamop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Stateful is an operator whose results depend on rows it has seen before:
// a windowed aggregation, moving aggregates or a join. One goroutine, the stateful
// stage, owns it. Its input is the rows of the plan below it (the source's
// rows that passed WHERE), and it emits rows of its plan node's width.
//
// Time is event time. The watermark W says that no row with an event time
// before W is still expected; a row that arrives with an event time before W
// is late.
type Stateful interface {
	// Process absorbs the rows of in, given the current watermark. Rows it
	// emits at once (EMIT CHANGES) are appended to out. It returns the late
	// rows it dropped and the rows it absorbed; rows that fail go to fail.
	// A row of out that cannot be computed (an overflowing sum) is left out
	// and its error passed to the fail of the next Advance, which the
	// caller makes before it sends out on.
	Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int)
	// Advance emits to out what the watermark completes and drops the state
	// that no later row can change. A result that cannot be computed (an
	// overflowing sum) is passed to fail instead.
	//
	// It returns the number of absorbed rows that it dropped, unemitted,
	// because their partition moved to another engine, which reads them
	// again. A row of a moving aggregate whose result failed is not among
	// them: its error, passed to fail, stands for it. A windowed
	// aggregation returns 0: its rows count as aggregated when absorbed,
	// whether or not their group's row can be written.
	Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int)
	// Low is the earliest event time of a row whose result is still to come:
	// a source position may be acknowledged once every row before it has an
	// event time below Low. math.MaxInt64 when nothing is pending.
	Low() int64
	// Size is the number of groups or rows the operator holds, for the
	// state-size metric.
	Size() int
}

// pendingErrors are the failures of an operator's own rows (a window's
// result, a joined row), which are not input records: they wait for the
// next Advance, which passes them to its fail.
type pendingErrors []error

// flush passes the errors to fail and forgets them.
func (p *pendingErrors) flush(fail func(error)) {
	for _, err := range *p {
		fail(err)
	}
	clear(*p)
	*p = (*p)[:0]
}

// Filterer is a stateful operator whose input rows a WHERE of its own
// filters (a window join's sides'), which the workers cannot run, as they
// pass a join's rows on as they are: the stateful stage filters them
// first, as a worker would, before it judges them late.
type Filterer interface {
	// Filter drops, in place, the rows of in that its WHERE rejects, and
	// those it fails on, which go to fail; it returns how many it
	// rejected.
	Filter(in *message.Batch, fail Failures) (filtered int)
}

// Expirer is a stateful operator that drops state no row changed for a
// while (spec.state.ttl): Expired counts what it dropped.
type Expirer interface {
	Expired() int64
}

// Watermark gives the event-time watermark that applies to the rows of a
// partition: the pipeline's, or, while a partition that moved here from
// another engine replays the records after its last commit, the
// partition's own, which is behind. For(nil) is the pipeline's.
type Watermark interface {
	For(o *message.Origin) int64
}

// Replays is a Watermark that knows the partitions replaying: Replaying
// is the least of their watermarks, math.MaxInt64 when none is. Rows of
// a window before it may still come, from a partition that has none in
// it yet.
type Replays interface {
	Watermark
	Replaying() int64
}

// replayBefore reports whether a partition replaying may still bring
// rows to a window that ends at end.
func replayBefore(wm Watermark, end int64) bool {
	r, ok := wm.(Replays)
	return ok && r.Replaying() < end
}

// Behind returns the event time d before t, or math.MinInt64, the time
// before any, where that would wrap: a watermark less an allowance.
func Behind(t, d int64) int64 {
	if t < math.MinInt64+d {
		return math.MinInt64
	}
	return t - d
}

// errNullTime is the failure of a row without an event time.
var errNullTime = errors.New("the event-time column is NULL")

// The event times stateful operators accept, 1700-01-01 to 2250-01-01 UTC in
// nanoseconds since the epoch: far enough inside the int64 range that a
// window, frame or join bound of up to a year, and a watermark delay of up
// to a week, added to or taken from one never overflows.
const (
	MinEventTime int64 = -8_520_336_000_000_000_000
	MaxEventTime int64 = 8_835_955_200_000_000_000
)

// InEventTimeRange reports whether ns is an event time stateful operators
// accept.
func InEventTimeRange(ns int64) bool { return ns >= MinEventTime && ns < MaxEventTime }

// eventTime reads the event time of a row.
func eventTime(row value.Row, col int) (int64, error) {
	v := row[col]
	if v.IsNull() {
		return 0, errNullTime
	}
	if ns := v.Nanos(); !InEventTimeRange(ns) {
		return 0, fmt.Errorf("the event time %s is outside the range stateful queries accept, 1700-01-01 to 2250-01-01", value.AppendTimestamp(nil, ns))
	}
	return v.Nanos(), nil
}

// keyEncoder turns key values into a map key without allocating: the
// encoding goes to a reused buffer, and a lookup with string(buf) does not
// copy.
type keyEncoder struct {
	exprs []expr.Expr
	vals  []value.Value
	buf   []byte
}

func newKeyEncoder(exprs []expr.Expr) *keyEncoder {
	return &keyEncoder{exprs: exprs, vals: make([]value.Value, len(exprs))}
}

// encode evaluates the keys of row into k.vals and their encoding, after
// prefix, into k.buf.
func (k *keyEncoder) encode(row value.Row, prefix int64) error {
	k.buf = binary.LittleEndian.AppendUint64(k.buf[:0], uint64(prefix))
	for i, e := range k.exprs {
		v, err := e.Eval(row)
		if err != nil {
			return err
		}
		k.vals[i] = v
		k.buf = appendKey(k.buf, v)
	}
	return nil
}

// keyOf returns the key encode gives a row whose key values are vals, in
// k.buf.
func (k *keyEncoder) keyOf(vals []value.Value, prefix int64) []byte {
	k.buf = binary.LittleEndian.AppendUint64(k.buf[:0], uint64(prefix))
	for _, v := range vals {
		k.buf = appendKey(k.buf, v)
	}
	return k.buf
}

// appendKey appends a value's identity: equal values, and only they, append
// equal bytes. Key columns have one type, so decimals share a scale.
func appendKey(dst []byte, v value.Value) []byte {
	dst = append(dst, byte(v.Kind()))
	switch v.Kind() {
	case value.KindNull:
	case value.KindString:
		dst = binary.AppendUvarint(dst, uint64(len(v.Str())))
		dst = append(dst, v.Str()...)
	case value.KindDouble:
		f := v.Double()
		if f == 0 {
			f = 0 // -0 and 0 are one key
		}
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	case value.KindDecimal:
		dst = append(dst, v.Scale())
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v.Unscaled()))
	case value.KindBool:
		if v.Bool() {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	default: // int, timestamp, interval
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v.Int()))
	}
	return dst
}

// ownValues copies vals with their strings cloned: state that outlives a
// batch must not keep the batch's input buffers alive.
func ownValues(vals []value.Value) []value.Value {
	out := make([]value.Value, len(vals))
	copy(out, vals)
	ownStrings(out)
	return out
}

// rowChunks copies rows, with their strings cloned, into chunks of values
// and of bytes: an allocation a chunk, not a row, for state whose rows end
// in about the order they came (one side of an interval join's, which
// end with its time bound: each side has its own, as their bounds
// differ). A chunk lives while any of its rows does.
type rowChunks struct {
	free  []value.Value
	bytes []byte
}

// chunkValues and chunkBytes are the sizes of the chunks; a string of
// more than a quarter of chunkBytes has an allocation of its own.
const (
	chunkValues = 1024
	chunkBytes  = 16 << 10
)

// own returns a copy of row, as ownValues does.
func (c *rowChunks) own(row value.Row) value.Row {
	n := len(row)
	if n > cap(c.free)-len(c.free) {
		c.free = make([]value.Value, 0, max(chunkValues, n))
	}
	at := len(c.free)
	c.free = append(c.free, row...)
	out := c.free[at : at+n : at+n]
	for i, v := range out {
		if v.Kind() != value.KindString {
			continue
		}
		str := v.Str()
		if len(str) == 0 {
			out[i] = value.StringValue("") // not a pointer into the input
			continue
		}
		if len(str) > chunkBytes/4 {
			out[i] = value.StringValue(strings.Clone(str))
			continue
		}
		if len(str) > cap(c.bytes)-len(c.bytes) {
			c.bytes = make([]byte, 0, chunkBytes)
		}
		from := len(c.bytes)
		// The bytes are never written again: appends go past them.
		c.bytes = append(c.bytes, str...)
		out[i] = value.StringValue(unsafe.String(&c.bytes[from], len(str)))
	}
	return out
}

// ownStrings points the strings of each of parts at copies of them, all
// in one allocation.
func ownStrings(parts ...[]value.Value) {
	size := 0
	for _, vals := range parts {
		for _, v := range vals {
			if v.Kind() == value.KindString {
				size += len(v.Str())
			}
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, vals := range parts {
		for _, v := range vals {
			if v.Kind() == value.KindString {
				b.WriteString(v.Str())
			}
		}
	}
	all, at := b.String(), 0
	for _, vals := range parts {
		for i, v := range vals {
			if v.Kind() == value.KindString {
				n := len(v.Str())
				// An empty string is "", not a pointer into the input.
				vals[i] = value.StringValue(all[at : at+n])
				at += n
			}
		}
	}
}

// owner is the source partition, and its generation, that state was built
// from. When a Kafka partition moves to another engine, its generation
// changes: the state built from it is dropped, not emitted, since the new
// owner reads the records again and builds it anew.
type owner struct {
	origin *message.Origin
	gen    uint64
}

func ownerOf(b *message.Batch) owner { return owner{origin: b.Origin, gen: b.Generation} }

// ownerSet is the partitions, each in a generation, that state was built
// from: that one moved away is noticed without looking at the state.
type ownerSet map[owner]struct{}

// add notes that state was built from o.
func (s *ownerSet) add(o owner) {
	if o.origin == nil {
		return // never moves
	}
	if *s == nil {
		*s = ownerSet{}
	}
	(*s)[o] = struct{}{}
}

// moved forgets the owners no longer current, and reports whether there
// were any: then state built from them is to be dropped.
func (s ownerSet) moved() bool {
	moved := false
	for o := range s {
		if !o.current() {
			delete(s, o)
			moved = true
		}
	}
	return moved
}

// current reports whether the partition is still in the generation the
// state was built in.
func (o owner) current() bool {
	return o.origin == nil || o.origin.Generation.Load() == o.gen
}
