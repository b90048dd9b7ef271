package value

import (
	"errors"
	"math"
	"testing"
)

var binarySamples = []Value{
	NullValue(), BoolValue(true), BoolValue(false), IntValue(0), IntValue(-1), IntValue(math.MaxInt64), IntValue(math.MinInt64),
	DoubleValue(0), DoubleValue(math.Copysign(0, -1)), DoubleValue(math.NaN()), DoubleValue(math.Inf(1)), DoubleValue(math.Inf(-1)), DoubleValue(1.5e-300),
	DecimalValue(-123456, 4), DecimalValue(math.MaxInt64, 18), DecimalValue(7, 0),
	StringValue(""), StringValue("héllo\x00world"), TimestampValue(-1), TimestampValue(1_700_000_000_000_000_000), IntervalValue(90 * 1e9),
}

// TestBinaryRoundTrip: every value reads back as itself, bit for bit (the
// kind, a decimal's scale, a double's NaN and negative zero).
func TestBinaryRoundTrip(t *testing.T) {
	var b []byte
	for _, v := range binarySamples {
		b = AppendBinary(b, v)
	}
	r := NewReader(b)
	for _, want := range binarySamples {
		if got := r.Value(); got != want && !(got.kind == KindDouble && got.n == want.n) {
			t.Errorf("read %#v; want %#v", got, want)
		}
	}
	if r.Err() != nil || r.Len() != 0 {
		t.Errorf("error %v, %d bytes left", r.Err(), r.Len())
	}
}

// TestBinaryTruncated: every prefix of a valid encoding fails with a
// sticky error rather than a panic or a made-up value.
func TestBinaryTruncated(t *testing.T) {
	var b []byte
	for _, v := range binarySamples {
		b = AppendBinary(b, v)
	}
	for n := range len(b) {
		r := NewReader(b[:n])
		for range binarySamples {
			r.Value()
		}
		if !errors.Is(r.Err(), ErrTruncated) {
			t.Fatalf("a prefix of %d of %d bytes read with error %v; want ErrTruncated", n, len(b), r.Err())
		}
	}
	if r := NewReader([]byte{200}); r.Value() != (Value{}) || r.Err() == nil {
		t.Error("an unknown kind read without an error")
	}
	if r := NewReader([]byte{0xff, 0xff, 0xff, 0x7f, 1}); r.Count(8) != 0 || r.Err() == nil {
		t.Error("a count larger than the bytes left read without an error")
	}
}

// FuzzBinary: no input makes the reader panic, and what it reads encodes
// back to the bytes it consumed.
func FuzzBinary(f *testing.F) {
	for _, v := range binarySamples {
		f.Add(AppendBinary(nil, v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		v := r.Value()
		if r.Err() != nil {
			return
		}
		used := b[:len(b)-r.Len()]
		again := AppendBinary(nil, v)
		w := NewReader(again)
		if back := w.Value(); w.Err() != nil || (back != v && !(back.kind == KindDouble && back.n == v.n)) {
			t.Fatalf("%x read as %#v, which encodes as %x and reads back as %#v (%v)", used, v, again, back, w.Err())
		}
	})
}
