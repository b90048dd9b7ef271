package value

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The binary form of values is for state the engine saves and reads back
// (checkpoints): lossless, unlike the text and JSON forms, which lose a
// double's NaN and infinities and whether a number was an int or a
// timestamp. A value is its kind in a byte, then:
//
//	bool                  a byte, 0 or 1
//	int, timestamp,       a varint
//	interval
//	double                its IEEE 754 bits, 8 bytes little-endian
//	decimal               its scale in a byte, then the unscaled varint
//	string                a uvarint length, then the bytes
//	NULL                  nothing more
//
// The format is part of the checkpoint format: a change needs a new
// checkpoint version.

// AppendBinary appends v's binary form to dst.
func AppendBinary(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindBool:
		return append(dst, byte(v.n))
	case KindInt, KindTimestamp, KindInterval:
		return binary.AppendVarint(dst, int64(v.n))
	case KindDouble:
		return binary.LittleEndian.AppendUint64(dst, v.n)
	case KindDecimal:
		return binary.AppendVarint(append(dst, v.scale), int64(v.n))
	case KindString:
		return AppendBytes(dst, v.s)
	}
	return dst
}

// AppendBytes appends s with its length before it, for Reader.String.
func AppendBytes[S string | []byte](dst []byte, s S) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// ErrTruncated is the error of a Reader that ran out of bytes.
var ErrTruncated = errors.New("truncated")

// Reader reads binary forms from a byte slice: values, and the varints,
// fixed-size numbers and length-prefixed strings of encoding/binary and
// AppendBytes. Its error is sticky: after the first, every read returns
// zero and Err says what went wrong, so a decoder checks once at the end.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a reader of b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

// Fail records err as the reader's error, if it has none yet: for a
// decoder that finds the bytes well formed but their meaning wrong.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.b) < 1 {
		r.Fail(ErrTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail(fmt.Errorf("bad uvarint: %w", ErrTruncated))
		return 0
	}
	r.b = r.b[n:]
	return x
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail(fmt.Errorf("bad varint: %w", ErrTruncated))
		return 0
	}
	r.b = r.b[n:]
	return x
}

// Uint64 reads 8 bytes, little-endian.
func (r *Reader) Uint64() uint64 {
	if len(r.b) < 8 {
		r.Fail(ErrTruncated)
		return 0
	}
	x := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return x
}

// Float64 reads a double's 8 bytes.
func (r *Reader) Float64() float64 { return math.Float64frombits(r.Uint64()) }

// Bytes reads what AppendBytes wrote. The slice shares r's memory.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if uint64(len(r.b)) < n {
		r.Fail(ErrTruncated)
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

// String reads what AppendBytes wrote, as a string of its own.
func (r *Reader) String() string { return string(r.Bytes()) }

// Count reads a uvarint count of items, each at least min bytes long, and
// refuses one that the bytes left could not hold: a corrupt count must not
// make the decoder allocate gigabytes.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if n > uint64(len(r.b)/max(min, 1)) {
		r.Fail(fmt.Errorf("count %d: %w", n, ErrTruncated))
		return 0
	}
	return int(n)
}

// Value reads what AppendBinary wrote.
func (r *Reader) Value() Value { return r.value(false) }

// SharedValue reads what AppendBinary wrote, with a string that shares r's
// memory rather than a copy: for a value that lives no longer than the
// bytes read.
func (r *Reader) SharedValue() Value { return r.value(true) }

func (r *Reader) value(shared bool) Value {
	k := Kind(r.Byte())
	switch k {
	case KindNull:
		return Value{}
	case KindBool:
		b := r.Byte()
		if b > 1 {
			r.Fail(fmt.Errorf("bool %d", b))
			return Value{}
		}
		return BoolValue(b == 1)
	case KindInt:
		return IntValue(r.Varint())
	case KindTimestamp:
		return TimestampValue(r.Varint())
	case KindInterval:
		return IntervalValue(r.Varint())
	case KindDouble:
		return Value{kind: KindDouble, n: r.Uint64()}
	case KindDecimal:
		scale := r.Byte()
		if scale > MaxDecimalPrecision {
			r.Fail(fmt.Errorf("decimal scale %d", scale))
			return Value{}
		}
		return DecimalValue(r.Varint(), scale)
	case KindString:
		if b := r.Bytes(); shared {
			return StringValue(unsafe.String(unsafe.SliceData(b), len(b)))
		} else {
			return StringValue(string(b))
		}
	}
	r.Fail(fmt.Errorf("unknown value kind %d", k))
	return Value{}
}
