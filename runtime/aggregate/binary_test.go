package aggregate_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestStateBinaryRoundTrip: a state written halfway and read back into
// another goes on to the same result as the one that was never written,
// bit for bit, for every function and argument type: the compensated and
// 128-bit sums, Welford's mean, the distinct set, first and last values.
func TestStateBinaryRoundTrip(t *testing.T) {
	args := map[value.Type][]value.Value{
		value.Int:            {iv(math.MaxInt64), iv(3), null(), iv(math.MaxInt64), iv(-7), iv(3)},
		value.Double:         {fv(1e100), fv(0.1), fv(-1e100), null(), fv(0.1), fv(math.NaN()), fv(2.5)},
		value.Decimal(18, 2): {dv(700, 2), dv(999_999_999_999_999_999, 2), dv(5, 2), dv(999_999_999_999_999_999, 2), dv(-999_999_999_999_999_999, 2), null(), dv(700, 2), dv(5, 2)},
		value.String:         {sv("b"), sv("a"), null(), sv("c"), sv("a")},
		value.Timestamp:      {tv(5), tv(1), tv(9), null()},
	}
	kinds := []aggregate.Kind{aggregate.CountStar, aggregate.Count, aggregate.CountDistinct, aggregate.Sum, aggregate.Avg,
		aggregate.Min, aggregate.Max, aggregate.StddevSamp, aggregate.StddevPop, aggregate.FirstValue, aggregate.LastValue}
	for typ, vals := range args {
		for _, kind := range kinds {
			f, err := aggregate.New(kind, typ)
			if err != nil {
				continue // not defined for the type
			}
			var whole, half aggregate.State
			for i, v := range vals {
				ts := int64(len(vals) - i) // event times out of order for FIRST_VALUE and LAST_VALUE
				f.Add(&whole, v, ts)
				if i < len(vals)/2 {
					f.Add(&half, v, ts)
				}
			}
			calls := aggregate.NewCalls([]aggregate.Func{f}, nil)
			r := value.NewReader(calls.AppendStates(nil, []aggregate.State{half}))
			restored := make([]aggregate.State, 1)
			calls.ReadStates(r, restored)
			if r.Err() != nil || r.Len() != 0 {
				t.Fatalf("%s(%s): reading back: %v, %d bytes left", kind, typ, r.Err(), r.Len())
			}
			for i := len(vals) / 2; i < len(vals); i++ {
				f.Add(&restored[0], vals[i], int64(len(vals)-i))
			}
			want, werr := f.Result(&whole)
			got, gerr := f.Result(&restored[0])
			same := got == want || got.Kind() == value.KindDouble && math.Float64bits(got.Double()) == math.Float64bits(want.Double())
			if !same || (werr == nil) != (gerr == nil) {
				t.Errorf("%s(%s) = %v, %v after a round trip halfway; want %v, %v", kind, typ, got, gerr, want, werr)
			}
		}
	}
}

// TestFrameBinaryRoundTrip: a frame written midway and read back into a new
// frame of the same calls gives, for the rest of the rows, exactly the
// results of the frame never written: ROWS and RANGE frames of every
// aggregate, with their MIN and MAX deques, distinct counts and
// compensated sums. After the round trip, a copy of the frame made from it
// and then from its changes at random intervals (AppendFrameChanges) gives
// the same results and holds the same rows at each.
func TestFrameBinaryRoundTrip(t *testing.T) {
	cols := testColumns(true)
	funcs, colOf := frameFuncs(t, cols)
	for n, spec := range []aggregate.FrameSpec{{Preceding: 5}, {Preceding: 20, Range: true}, {Preceding: 150}, {Preceding: 0, Range: true}} {
		r := rand.New(rand.NewPCG(uint64(n), 9))
		whole, cut := aggregate.NewFrame(spec, funcs), aggregate.NewFrame(spec, funcs)
		var copied *aggregate.Frame // follows cut by its changes
		var changes *value.Reader
		args := make([]value.Value, len(funcs))
		want, got := make([]value.Value, len(funcs)), make([]value.Value, len(funcs))
		ts := int64(1_700_000_000_000_000_000)
		for p := range 3000 {
			ts += r.Int64N(4)
			for i := range funcs {
				args[i] = cols[colOf[i]].gen(r)
			}
			if err := whole.Push(ts, args); err != nil {
				t.Fatal(err)
			}
			if err := cut.Push(ts, args); err != nil {
				t.Fatal(err)
			}
			switch {
			case p == 1500:
				rd := value.NewReader(aggregate.AppendFrame(nil, cut))
				cut = aggregate.NewFrame(spec, funcs)
				aggregate.ReadFrame(rd, cut)
				if rd.Err() != nil || rd.Len() != 0 {
					t.Fatalf("%+v: reading the frame back: %v, %d bytes left", spec, rd.Err(), rd.Len())
				}
				// From here on a copy follows the frame by its changes
				// alone, as a chain of checkpoints restores it.
				changes = value.NewReader(aggregate.AppendFrame(nil, cut))
				copied = aggregate.NewFrame(spec, funcs)
				aggregate.ReadFrame(changes, copied)
			case p > 1500 && p%int(r.Int64N(300)+1) == 0:
				changes = value.NewReader(aggregate.AppendFrameChanges(nil, cut))
				aggregate.ReadFrame(changes, copied)
				if changes.Err() != nil || changes.Len() != 0 {
					t.Fatalf("%+v push %d: applying the frame's changes: %v, %d bytes left", spec, p, changes.Err(), changes.Len())
				}
				if err := copied.Results(got); err != nil && cut.Results(want) == nil {
					t.Fatalf("%+v push %d: the copy fails: %v", spec, p, err)
				}
				cut.Results(want)
				for i := range want {
					if w, g := want[i], got[i]; w != g && !(w.Kind() == value.KindDouble && math.Float64bits(w.Double()) == math.Float64bits(g.Double())) {
						t.Fatalf("%+v push %d, %s: %v from the changes; want %v", spec, p, funcs[i].Kind, g, w)
					}
				}
				if copied.Len() != cut.Len() {
					t.Fatalf("%+v push %d: %d rows from the changes; want %d", spec, p, copied.Len(), cut.Len())
				}
			}
			werr, gerr := whole.Results(want), cut.Results(got)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("%+v push %d: errors %v and %v", spec, p, werr, gerr)
			}
			for i := range want {
				w, g := want[i], got[i]
				if w != g && !(w.Kind() == value.KindDouble && math.Float64bits(w.Double()) == math.Float64bits(g.Double())) {
					t.Fatalf("%+v push %d, %s: %v after a round trip; want %v", spec, p, funcs[i].Kind, g, w)
				}
			}
		}
	}
}

// TestFrameSharing: a key's frames written with AppendFrameSharing, whole
// and then their changes, read back into copies that give the same
// results and rows at each step; a frame whose rows another holds (a long
// RANGE behind another long one) refers to them instead of writing them,
// and a frame that holds fewer (a short ROWS frame before it) is not
// referred to.
func TestFrameSharing(t *testing.T) {
	sum, err := aggregate.New(aggregate.Sum, value.Int)
	if err != nil {
		t.Fatal(err)
	}
	funcs := []aggregate.Func{sum}
	specs := []aggregate.FrameSpec{{Preceding: 3}, {Preceding: 1e9, Range: true}, {Preceding: 2e9, Range: true}}
	live, copies, alone := make([]*aggregate.Frame, 3), make([]*aggregate.Frame, 3), aggregate.NewFrame(specs[2], funcs)
	for i, s := range specs {
		live[i], copies[i] = aggregate.NewFrame(s, funcs), aggregate.NewFrame(s, funcs)
	}
	r := rand.New(rand.NewPCG(1, 1))
	ts := int64(0)
	var shared, unshared int
	for step := range 40 {
		for range 50 + r.IntN(50) {
			ts += r.Int64N(5e6)
			args := []value.Value{value.IntValue(r.Int64N(100))}
			for _, f := range append(live, alone) {
				if err := f.Push(ts, args); err != nil {
					t.Fatal(err)
				}
			}
		}
		changes := step > 0
		var b []byte
		for i, f := range live {
			before := len(b)
			b = aggregate.AppendFrameSharing(b, f, live[:i], changes)
			if i == 2 {
				shared += len(b) - before
			}
		}
		unshared += len(aggregate.AppendFrameSharing(nil, alone, nil, changes))
		rd := value.NewReader(b)
		for i, f := range copies {
			aggregate.ReadFrameSharing(rd, f, copies[:i])
		}
		if rd.Err() != nil || rd.Len() != 0 {
			t.Fatalf("step %d: %v, %d bytes left", step, rd.Err(), rd.Len())
		}
		for i := range live {
			want, got := make([]value.Value, 1), make([]value.Value, 1)
			live[i].Results(want)
			copies[i].Results(got)
			if want[0] != got[0] || live[i].Len() != copies[i].Len() {
				t.Fatalf("step %d, frame %d: %v over %d rows read back; want %v over %d", step, i, got[0], copies[i].Len(), want[0], live[i].Len())
			}
		}
	}
	if shared*4 > unshared {
		t.Errorf("the third frame took %d bytes referring to the second's rows; %d written alone", shared, unshared)
	}
	t.Logf("the long frame's rows: %d bytes written alone, %d referred to", unshared, shared)
}
