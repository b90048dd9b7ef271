package aggregate_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestCallsShareDistinct: COUNT(DISTINCT) calls of one argument under
// different FILTERs, sharing a set, count what each call alone counts, for
// ints, decimals and strings, beside calls of other kinds and of other
// arguments; so do states written halfway and read back, and states read
// from the form written before sets were shared (no count kept).
func TestCallsShareDistinct(t *testing.T) {
	dec := value.Decimal(10, 2)
	funcOf := func(k aggregate.Kind, typ value.Type) aggregate.Func {
		f, err := aggregate.New(k, typ)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// Call 0 sums x (an int), 1-4 count it under four filters, 5-6 count
	// y (a decimal), 7-8 z (a string), 9 counts x again: with the others
	// in a set of four, and 10 counts a value drawn apart each time, as a
	// random number would be.
	funcs := []aggregate.Func{
		funcOf(aggregate.Sum, value.Int),
		funcOf(aggregate.CountDistinct, value.Int), funcOf(aggregate.CountDistinct, value.Int),
		funcOf(aggregate.CountDistinct, value.Int), funcOf(aggregate.CountDistinct, value.Int),
		funcOf(aggregate.CountDistinct, dec), funcOf(aggregate.CountDistinct, dec),
		funcOf(aggregate.CountDistinct, value.String), funcOf(aggregate.CountDistinct, value.String),
		funcOf(aggregate.CountDistinct, value.Int), funcOf(aggregate.CountDistinct, value.Int),
	}
	same := []int{0, 0, 0, 0, 0, 5, 5, 7, 7, 0, 0}
	shared := aggregate.NewCalls(funcs, same)
	alone := aggregate.NewCalls(funcs, nil)
	r := rand.New(rand.NewPCG(3, 4))
	rows := make([][]value.Value, 4000)
	for n := range rows {
		x, y, z := iv(r.Int64N(300)), dv(r.Int64N(50)*10, 2), sv(string(rune('a'+r.IntN(26)))+string(rune('a'+r.IntN(3))))
		if r.IntN(10) == 0 {
			x = null()
		}
		if r.IntN(3) == 0 {
			y = dv(r.Int64N(5), 0) // equal to y's of scale 2 that end in zeros
		}
		row := make([]value.Value, len(funcs))
		for i := range funcs {
			var v value.Value
			switch same[i] {
			case 0:
				v = x
			case 5:
				v = y
			case 7:
				v = z
			}
			if i != 0 && r.IntN(3) == 0 {
				v = null() // the call's FILTER rejects the row
			}
			row[i] = v
		}
		row[10] = iv(r.Int64N(1000))
		rows[n] = row
	}
	want := make([]aggregate.State, len(funcs))
	got := make([]aggregate.State, len(funcs))
	half := make([]aggregate.State, len(funcs))
	for n, row := range rows {
		if err := alone.Add(want, row, 0); err != nil {
			t.Fatal(err)
		}
		if err := shared.Add(got, row, 0); err != nil {
			t.Fatal(err)
		}
		if n == len(rows)/2 {
			shared.ReadStates(value.NewReader(shared.AppendStates(nil, got)), half)
		}
		if n > len(rows)/2 {
			if err := shared.Add(half, row, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range funcs {
		w, _ := funcs[i].Result(&want[i])
		g, _ := funcs[i].Result(&got[i])
		h, _ := funcs[i].Result(&half[i])
		if g != w || h != w {
			t.Errorf("call %d: %v sharing a set, %v read back halfway; %v alone", i, g, h, w)
		}
		if n := w.Int(); funcs[i].Kind == aggregate.CountDistinct && (n < 10 || n == int64(len(rows))) {
			t.Errorf("call %d counts %d values: the test's rows repeat too little or too much", i, n)
		}
	}

	// The form before sets were shared: each call's values, and where
	// the count of values is now, the rows counted (7).
	var old []byte
	for i := range funcs {
		old = binary.AppendVarint(old, 7)
		old = binary.AppendVarint(old, 0)
		old = binary.AppendUvarint(old, 0)
		old = append(old, make([]byte, 4*8)...)
		old = binary.AppendVarint(old, 0)
		old = value.AppendBinary(old, null())
		if i == 0 {
			old = binary.AppendUvarint(old, 0)
			continue
		}
		vals := []value.Value{dv(7, 0), dv(int64(i), 0), dv(99, 0)}
		if i == 7 || i == 8 {
			vals = []value.Value{sv("q"), sv(string(rune('a' + i)))}
		}
		old = binary.AppendUvarint(old, uint64(len(vals))+1)
		for _, v := range vals {
			old = value.AppendBinary(old, v)
		}
	}
	r2 := value.NewReader(old)
	read := make([]aggregate.State, len(funcs))
	shared.ReadStates(r2, read)
	if r2.Err() != nil || r2.Len() != 0 {
		t.Fatalf("reading the form before sets were shared: %v, %d bytes left", r2.Err(), r2.Len())
	}
	for i := range funcs {
		want := int64(3)
		switch i {
		case 0:
			want = 0
		case 7, 8:
			want = 2
		}
		if got, _ := funcs[i].Result(&read[i]); got.Int() != want {
			t.Errorf("call %d read from the form before sets were shared: %v, want %d", i, got, want)
		}
	}
}
