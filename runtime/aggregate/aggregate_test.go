package aggregate_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/value"
)

func null() value.Value                   { return value.NullValue() }
func iv(x int64) value.Value              { return value.IntValue(x) }
func fv(x float64) value.Value            { return value.DoubleValue(x) }
func dv(u int64, scale uint8) value.Value { return value.DecimalValue(u, scale) }
func sv(s string) value.Value             { return value.StringValue(s) }
func tv(ns int64) value.Value             { return value.TimestampValue(ns) }

// repeat returns n copies of v.
func repeat(v value.Value, n int) []value.Value {
	vs := make([]value.Value, n)
	for i := range vs {
		vs[i] = v
	}
	return vs
}

// show formats v with its kind, so that failures tell an int 1 from a decimal 1.
func show(v value.Value) string {
	switch v.Kind() {
	case value.KindNull:
		return "NULL"
	case value.KindString:
		return "string " + strconv.Quote(v.Str())
	case value.KindDecimal:
		return "decimal " + v.String() + " (scale " + strconv.Itoa(int(v.Scale())) + ")"
	}
	return v.Kind().String() + " " + v.String()
}

// same reports whether got is want: exactly, or for doubles within tol relative
// to max(|want|, 1) when tol is not 0. NaN is the same as NaN.
func same(got, want value.Value, tol float64) bool {
	if got.Kind() != want.Kind() {
		return false
	}
	if got.Kind() != value.KindDouble {
		return value.Equal(got, want)
	}
	g, w := got.Double(), want.Double()
	switch {
	case math.IsNaN(g) || math.IsNaN(w):
		return math.IsNaN(g) && math.IsNaN(w)
	case g == w:
		return true
	}
	return tol != 0 && math.Abs(g-w) <= tol*max(math.Abs(w), 1)
}

func mustNew(t testing.TB, kind aggregate.Kind, arg value.Type) aggregate.Func {
	t.Helper()
	f, err := aggregate.New(kind, arg)
	if err != nil {
		t.Fatalf("New(%s, %s): %v", kind, arg, err)
	}
	return f
}

// fold adds vals with event times ts (0, 1, 2, ... when nil) to an empty State
// and returns the result.
func fold(f *aggregate.Func, vals []value.Value, ts []int64) (value.Value, error) {
	var s aggregate.State
	for i, v := range vals {
		t := int64(i)
		if ts != nil {
			t = ts[i]
		}
		if err := f.Add(&s, v, t); err != nil {
			return value.Value{}, err
		}
	}
	return f.Result(&s)
}

func TestKindString(t *testing.T) {
	want := []string{"count(*)", "count", "count(distinct)", "sum", "avg", "min", "max", "stddev_samp", "stddev_pop", "first_value", "last_value"}
	for k, name := range want {
		if got := aggregate.Kind(k).String(); got != name {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, name)
		}
	}
	if got := aggregate.Kind(len(want)).String(); got == "" || got == want[len(want)-1] {
		t.Errorf("an unknown kind's String() = %q", got)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name     string
		distinct bool
		want     aggregate.Kind
		ok       bool
	}{
		{"count", false, aggregate.Count, true},
		{"COUNT", true, aggregate.CountDistinct, true},
		{"sum", false, aggregate.Sum, true},
		{"Avg", false, aggregate.Avg, true},
		{"min", false, aggregate.Min, true},
		{"MAX", true, aggregate.Max, true},
		{"stddev", false, aggregate.StddevSamp, true},
		{"stddev_samp", false, aggregate.StddevSamp, true},
		{"STDDEV_POP", false, aggregate.StddevPop, true},
		{"first_value", false, aggregate.FirstValue, true},
		{"last_value", false, aggregate.LastValue, true},
		{"sum", true, 0, false},
		{"avg", true, 0, false},
		{"median", false, 0, false},
		{"count(*)", false, 0, false},
		{"", false, 0, false},
	}
	for _, tt := range tests {
		got, ok := aggregate.Lookup(tt.name, tt.distinct)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("Lookup(%q, %v) = %s, %v; want %s, %v", tt.name, tt.distinct, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNewTypes(t *testing.T) {
	d102 := value.Decimal(10, 2)
	tests := []struct {
		kind aggregate.Kind
		arg  value.Type
		want value.Type
	}{
		{aggregate.CountStar, value.Type{}, value.Int},
		{aggregate.CountStar, value.String, value.Int},
		{aggregate.Count, value.String, value.Int},
		{aggregate.Count, value.Null, value.Int},
		{aggregate.CountDistinct, value.Timestamp, value.Int},
		{aggregate.Sum, value.Int, value.Int},
		{aggregate.Sum, value.Double, value.Double},
		{aggregate.Sum, d102, value.Decimal(18, 2)},
		{aggregate.Avg, value.Int, value.Double},
		{aggregate.Avg, value.Double, value.Double},
		{aggregate.Avg, d102, value.Decimal(18, 6)},
		{aggregate.Avg, value.Decimal(18, 15), value.Decimal(18, 18)},
		{aggregate.Avg, value.Decimal(18, 18), value.Decimal(18, 18)},
		{aggregate.Min, value.String, value.String},
		{aggregate.Max, d102, d102},
		{aggregate.Min, value.Bool, value.Bool},
		{aggregate.Max, value.Timestamp, value.Timestamp},
		{aggregate.StddevSamp, value.Int, value.Double},
		{aggregate.StddevPop, d102, value.Double},
		{aggregate.FirstValue, value.String, value.String},
		{aggregate.LastValue, d102, d102},
	}
	for _, tt := range tests {
		f, err := aggregate.New(tt.kind, tt.arg)
		if err != nil {
			t.Errorf("New(%s, %s): %v", tt.kind, tt.arg, err)
			continue
		}
		if f.Kind != tt.kind || f.Type != tt.want {
			t.Errorf("New(%s, %s) = %s returning %s, want %s returning %s", tt.kind, tt.arg, f.Kind, f.Type, tt.kind, tt.want)
		}
	}
}

func TestNewTypeErrors(t *testing.T) {
	tests := []struct {
		kind aggregate.Kind
		arg  value.Type
		want string
	}{
		{aggregate.Sum, value.String, "sum cannot take string; it needs a number"},
		{aggregate.Avg, value.Timestamp, "avg cannot take timestamp; it needs a number"},
		{aggregate.StddevSamp, value.Bool, "stddev_samp cannot take bool; it needs a number"},
		{aggregate.StddevPop, value.String, "stddev_pop cannot take string; it needs a number"},
		{aggregate.Sum, value.Null, "sum cannot take null; it needs a number"},
		{aggregate.Min, value.Null, "min cannot take an untyped NULL"},
		{aggregate.Max, value.Null, "max cannot take an untyped NULL"},
		{aggregate.Sum, value.Type{Kind: value.KindDecimal, Precision: 18, Scale: 19}, "sum cannot take decimal(18,19)"},
		{aggregate.Kind(99), value.Int, "unknown aggregate function"},
	}
	for _, tt := range tests {
		_, err := aggregate.New(tt.kind, tt.arg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s, %s) error = %v, want one containing %q", tt.kind, tt.arg, err, tt.want)
		}
	}
}

func TestAggregates(t *testing.T) {
	d102 := value.Decimal(10, 2)
	const big = 900_000_000_000_000_000 // 18 digits; eleven of them overflow int64
	tests := []struct {
		name string
		kind aggregate.Kind
		arg  value.Type
		vals []value.Value
		ts   []int64 // event times; nil means 0, 1, 2, ...
		want value.Value
		err  error   // wanted, by errors.Is
		tol  float64 // relative tolerance for doubles; 0 means exact
	}{
		{"count(*) counts NULLs", aggregate.CountStar, value.Type{}, []value.Value{iv(1), null(), null()}, nil, iv(3), nil, 0},
		{"count(*) empty", aggregate.CountStar, value.Type{}, nil, nil, iv(0), nil, 0},
		{"count skips NULLs", aggregate.Count, value.Int, []value.Value{iv(1), null(), iv(3)}, nil, iv(2), nil, 0},
		{"count strings", aggregate.Count, value.String, []value.Value{sv("a"), null(), sv("")}, nil, iv(2), nil, 0},
		{"count empty", aggregate.Count, value.Double, nil, nil, iv(0), nil, 0},
		{"count only NULLs", aggregate.Count, value.Double, []value.Value{null()}, nil, iv(0), nil, 0},

		{"count distinct int", aggregate.CountDistinct, value.Int, []value.Value{iv(1), iv(1), iv(2), null(), iv(2), iv(3)}, nil, iv(3), nil, 0},
		{"count distinct decimal scales", aggregate.CountDistinct, d102, []value.Value{dv(15, 1), dv(150, 2), dv(200, 2), iv(2), null()}, nil, iv(2), nil, 0},
		{"count distinct double zeros and NaNs", aggregate.CountDistinct, value.Double, []value.Value{fv(0), fv(math.Copysign(0, -1)), fv(math.NaN()), fv(-math.NaN()), fv(1)}, nil, iv(3), nil, 0},
		{"count distinct string", aggregate.CountDistinct, value.String, []value.Value{sv("a"), sv("b"), sv("a"), null()}, nil, iv(2), nil, 0},
		{"count distinct timestamp", aggregate.CountDistinct, value.Timestamp, []value.Value{tv(5), tv(5), tv(6)}, nil, iv(2), nil, 0},
		{"count distinct empty", aggregate.CountDistinct, value.Int, nil, nil, iv(0), nil, 0},

		{"sum int", aggregate.Sum, value.Int, []value.Value{iv(1), iv(2), null(), iv(-7)}, nil, iv(-4), nil, 0},
		{"sum int empty", aggregate.Sum, value.Int, nil, nil, null(), nil, 0},
		{"sum int only NULLs", aggregate.Sum, value.Int, []value.Value{null(), null()}, nil, null(), nil, 0},
		{"sum int overflow", aggregate.Sum, value.Int, []value.Value{iv(math.MaxInt64), iv(math.MaxInt64)}, nil, null(), value.ErrOverflow, 0},
		{"sum int negative overflow", aggregate.Sum, value.Int, []value.Value{iv(math.MinInt64), iv(-1)}, nil, null(), value.ErrOverflow, 0},
		{"sum int overflows midway and comes back", aggregate.Sum, value.Int, []value.Value{iv(math.MaxInt64), iv(1), iv(-2)}, nil, iv(math.MaxInt64 - 1), nil, 0},
		{"sum int far out and back", aggregate.Sum, value.Int, []value.Value{iv(math.MaxInt64), iv(math.MaxInt64), iv(math.MinInt64), iv(math.MinInt64), iv(5)}, nil, iv(3), nil, 0},
		{"sum int min", aggregate.Sum, value.Int, []value.Value{iv(math.MinInt64)}, nil, iv(math.MinInt64), nil, 0},
		{"sum decimal", aggregate.Sum, d102, []value.Value{dv(125, 2), dv(250, 2), null()}, nil, dv(375, 2), nil, 0},
		{"sum decimal converts exact numbers", aggregate.Sum, d102, []value.Value{dv(15, 1), iv(2)}, nil, dv(350, 2), nil, 0},
		{"sum decimal beyond 18 digits", aggregate.Sum, value.Decimal(18, 0), []value.Value{dv(999_999_999_999_999_999, 0), dv(1, 0)}, nil, null(), value.ErrOverflow, 0},
		{"sum decimal beyond 18 digits negative", aggregate.Sum, value.Decimal(18, 2), []value.Value{dv(-999_999_999_999_999_999, 2), dv(-1, 2)}, nil, null(), value.ErrOverflow, 0},
		{"sum decimal 18 digits", aggregate.Sum, value.Decimal(18, 0), []value.Value{dv(999_999_999_999_999_998, 0), dv(1, 0)}, nil, dv(999_999_999_999_999_999, 0), nil, 0},
		{"sum decimal beyond int64 midway", aggregate.Sum, value.Decimal(18, 2), append(repeat(dv(big, 2), 11), repeat(dv(-big, 2), 10)...), nil, dv(big, 2), nil, 0},
		{"sum decimal empty", aggregate.Sum, d102, nil, nil, null(), nil, 0},
		{"sum double compensated", aggregate.Sum, value.Double, repeat(fv(0.1), 10), nil, fv(1), nil, 0},
		{"sum double cancellation", aggregate.Sum, value.Double, []value.Value{fv(1e100), fv(1), fv(-1e100)}, nil, fv(1), nil, 0},
		{"sum double with NULL", aggregate.Sum, value.Double, []value.Value{fv(1.5), null(), fv(2)}, nil, fv(3.5), nil, 0},
		{"sum double inf", aggregate.Sum, value.Double, []value.Value{fv(1), fv(math.Inf(1)), fv(2)}, nil, fv(math.Inf(1)), nil, 0},
		{"sum double inf minus inf", aggregate.Sum, value.Double, []value.Value{fv(math.Inf(1)), fv(math.Inf(-1))}, nil, fv(math.NaN()), nil, 0},
		{"sum double overflow", aggregate.Sum, value.Double, []value.Value{fv(math.MaxFloat64), fv(math.MaxFloat64), fv(1)}, nil, fv(math.Inf(1)), nil, 0},
		{"sum double empty", aggregate.Sum, value.Double, nil, nil, null(), nil, 0},

		{"avg int", aggregate.Avg, value.Int, []value.Value{iv(1), iv(2), null()}, nil, fv(1.5), nil, 0},
		{"avg int beyond int64", aggregate.Avg, value.Int, []value.Value{iv(math.MaxInt64), iv(math.MaxInt64)}, nil, fv(math.MaxInt64), nil, 0},
		{"avg double", aggregate.Avg, value.Double, []value.Value{fv(1), fv(2), fv(4)}, nil, fv(7.0 / 3), nil, 0},
		{"avg decimal", aggregate.Avg, d102, []value.Value{dv(100, 2), dv(200, 2), dv(200, 2)}, nil, dv(1_666_667, 6), nil, 0},
		{"avg decimal rounds down", aggregate.Avg, d102, []value.Value{dv(-1, 2), dv(0, 2), dv(0, 2)}, nil, dv(-3333, 6), nil, 0},
		{"avg decimal half rounds away from zero", aggregate.Avg, d102, append(repeat(dv(0, 2), 31), dv(1, 2)), nil, dv(313, 6), nil, 0},
		{"avg decimal negative half rounds away from zero", aggregate.Avg, d102, append(repeat(dv(0, 2), 31), dv(-1, 2)), nil, dv(-313, 6), nil, 0},
		{"avg decimal scale capped at 18", aggregate.Avg, value.Decimal(18, 16), append(repeat(dv(0, 16), 7), dv(1, 16)), nil, dv(13, 18), nil, 0},
		{"avg decimal beyond int64 midway", aggregate.Avg, value.Decimal(18, 2), append(append(repeat(dv(big, 2), 11), repeat(dv(-big, 2), 11)...), dv(5, 2)), nil, dv(2174, 6), nil, 0},
		{"avg decimal beyond 18 digits", aggregate.Avg, value.Decimal(18, 0), []value.Value{dv(100_000_000_000_000_000, 0), dv(100_000_000_000_000_000, 0)}, nil, null(), value.ErrOverflow, 0},
		{"avg decimal empty", aggregate.Avg, d102, []value.Value{null()}, nil, null(), nil, 0},

		{"min int", aggregate.Min, value.Int, []value.Value{iv(3), null(), iv(-1), iv(7)}, nil, iv(-1), nil, 0},
		{"max int", aggregate.Max, value.Int, []value.Value{iv(3), null(), iv(-1), iv(7)}, nil, iv(7), nil, 0},
		{"min double", aggregate.Min, value.Double, []value.Value{fv(2.5), fv(-0.5), null()}, nil, fv(-0.5), nil, 0},
		{"max double", aggregate.Max, value.Double, []value.Value{fv(2.5), fv(-0.5), null()}, nil, fv(2.5), nil, 0},
		{"min decimal mixed scales", aggregate.Min, d102, []value.Value{dv(15, 1), dv(125, 2), dv(150, 2)}, nil, dv(125, 2), nil, 0},
		{"min decimal keeps the first of equals", aggregate.Min, d102, []value.Value{dv(150, 2), dv(15, 1)}, nil, dv(150, 2), nil, 0},
		{"max decimal keeps the first of equals", aggregate.Max, d102, []value.Value{dv(15, 1), dv(125, 2), dv(150, 2)}, nil, dv(15, 1), nil, 0},
		{"min string", aggregate.Min, value.String, []value.Value{sv("pear"), sv("apple"), null(), sv("zebra")}, nil, sv("apple"), nil, 0},
		{"max string", aggregate.Max, value.String, []value.Value{sv("pear"), sv("apple"), null(), sv("zebra")}, nil, sv("zebra"), nil, 0},
		{"min timestamp", aggregate.Min, value.Timestamp, []value.Value{tv(30), tv(-10), tv(20)}, nil, tv(-10), nil, 0},
		{"max timestamp", aggregate.Max, value.Timestamp, []value.Value{tv(30), tv(-10), tv(20)}, nil, tv(30), nil, 0},
		{"min bool", aggregate.Min, value.Bool, []value.Value{value.BoolValue(true), value.BoolValue(false)}, nil, value.BoolValue(false), nil, 0},
		{"min only NULLs", aggregate.Min, value.Int, []value.Value{null(), null()}, nil, null(), nil, 0},
		{"max empty", aggregate.Max, value.String, nil, nil, null(), nil, 0},

		{"stddev_pop int", aggregate.StddevPop, value.Int, []value.Value{iv(2), iv(4), iv(4), iv(4), iv(5), iv(5), iv(7), iv(9)}, nil, fv(2), nil, 1e-14},
		{"stddev_samp int", aggregate.StddevSamp, value.Int, []value.Value{iv(2), iv(4), iv(4), iv(4), iv(5), iv(5), iv(7), iv(9)}, nil, fv(math.Sqrt(32.0 / 7)), nil, 1e-14},
		{"stddev_samp decimal", aggregate.StddevSamp, d102, []value.Value{dv(100, 2), dv(200, 2), null(), dv(300, 2)}, nil, fv(1), nil, 1e-14},
		{"stddev_samp double", aggregate.StddevSamp, value.Double, []value.Value{fv(1), null(), fv(3)}, nil, fv(math.Sqrt2), nil, 1e-14},
		{"stddev_samp large mean", aggregate.StddevSamp, value.Double, []value.Value{fv(1e9 + 1), fv(1e9 + 2), fv(1e9 + 3)}, nil, fv(1), nil, 1e-9},
		{"stddev_samp equal values", aggregate.StddevSamp, value.Double, repeat(fv(0.1), 5), nil, fv(0), nil, 0},
		{"stddev_samp one value", aggregate.StddevSamp, value.Int, []value.Value{iv(4), null()}, nil, null(), nil, 0},
		{"stddev_pop one value", aggregate.StddevPop, value.Int, []value.Value{iv(4), null()}, nil, fv(0), nil, 0},
		{"stddev_pop empty", aggregate.StddevPop, value.Int, nil, nil, null(), nil, 0},
		{"stddev_samp empty", aggregate.StddevSamp, value.Double, []value.Value{null()}, nil, null(), nil, 0},

		{"first_value earliest time", aggregate.FirstValue, value.Int, []value.Value{iv(10), iv(20), iv(30), iv(40)}, []int64{5, 3, 3, 7}, iv(20), nil, 0},
		{"last_value latest time", aggregate.LastValue, value.Int, []value.Value{iv(10), iv(20), iv(30), iv(40)}, []int64{5, 3, 3, 7}, iv(40), nil, 0},
		{"last_value latest time first", aggregate.LastValue, value.Int, []value.Value{iv(10), iv(20), iv(30)}, []int64{5, 3, 3}, iv(10), nil, 0},
		{"first_value equal times", aggregate.FirstValue, value.String, []value.Value{sv("x"), sv("y")}, []int64{3, 3}, sv("x"), nil, 0},
		{"last_value equal times", aggregate.LastValue, value.String, []value.Value{sv("x"), sv("y")}, []int64{3, 3}, sv("y"), nil, 0},
		{"first_value does not skip NULL", aggregate.FirstValue, value.Int, []value.Value{iv(1), null()}, []int64{2, 1}, null(), nil, 0},
		{"last_value does not skip NULL", aggregate.LastValue, value.Int, []value.Value{iv(1), null()}, []int64{1, 2}, null(), nil, 0},
		{"first_value decimal", aggregate.FirstValue, d102, []value.Value{dv(150, 2), dv(-5, 2)}, []int64{9, 8}, dv(-5, 2), nil, 0},
		{"last_value timestamp", aggregate.LastValue, value.Timestamp, []value.Value{tv(1), tv(2)}, []int64{8, 9}, tv(2), nil, 0},
		{"first_value double", aggregate.FirstValue, value.Double, []value.Value{fv(1.5), fv(2.5)}, nil, fv(1.5), nil, 0},
		{"first_value empty", aggregate.FirstValue, value.Int, nil, nil, null(), nil, 0},
		{"last_value empty", aggregate.LastValue, value.Int, nil, nil, null(), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, tt.kind, tt.arg)
			got, err := fold(&f, tt.vals, tt.ts)
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("%s = %s, %v; want error %v", tt.kind, show(got), err, tt.err)
				}
				return
			case err != nil:
				t.Fatalf("%s: %v", tt.kind, err)
			}
			if !same(got, tt.want, tt.tol) {
				t.Errorf("%s = %s, want %s", tt.kind, show(got), show(tt.want))
			}
			if !got.IsNull() && got.Kind() != f.Type.Kind {
				t.Errorf("%s = %s, not of its type %s", tt.kind, show(got), f.Type)
			}
		})
	}
}

func TestAddRejectsValuesOfOtherTypes(t *testing.T) {
	tests := []struct {
		kind aggregate.Kind
		arg  value.Type
		v    value.Value
	}{
		{aggregate.Sum, value.Int, sv("1")},
		{aggregate.Sum, value.Int, fv(1)},
		{aggregate.Sum, value.Int, dv(15, 1)},
		{aggregate.Sum, value.Decimal(10, 2), dv(1, 3)},
		{aggregate.Avg, value.Decimal(10, 2), fv(1)},
		{aggregate.Avg, value.Double, tv(1)},
		{aggregate.StddevPop, value.Int, sv("x")},
		{aggregate.Min, value.Int, sv("x")},
		{aggregate.Max, value.String, iv(1)},
	}
	for _, tt := range tests {
		f := mustNew(t, tt.kind, tt.arg)
		var s aggregate.State
		if err := f.Add(&s, tt.v, 0); err == nil {
			t.Errorf("%s over %s took %s", tt.kind, tt.arg, show(tt.v))
		}
		// The state is unchanged: still empty.
		if got, err := f.Result(&s); err != nil || !got.IsNull() {
			t.Errorf("%s over %s after a rejected value = %s, %v; want NULL", tt.kind, tt.arg, show(got), err)
		}
	}
}

func TestZeroStateReuse(t *testing.T) {
	f := mustNew(t, aggregate.CountDistinct, value.Int)
	var s aggregate.State
	for _, x := range []int64{1, 2, 2} {
		if err := f.Add(&s, iv(x), 0); err != nil {
			t.Fatal(err)
		}
	}
	s = aggregate.State{}
	if got, _ := f.Result(&s); !same(got, iv(0), 0) {
		t.Errorf("count(distinct) after reset = %s, want 0", show(got))
	}
}

func TestAddAllocs(t *testing.T) {
	for _, kind := range []aggregate.Kind{aggregate.Count, aggregate.Sum, aggregate.Avg, aggregate.Min, aggregate.Max} {
		f := mustNew(t, kind, value.Decimal(12, 2))
		var s aggregate.State
		x := int64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			x++
			if err := f.Add(&s, dv(x%1000, 2), x); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Result(&s); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s Add+Result: %v allocations per call, want 0", kind, allocs)
		}
	}
}

// frameColumn is an argument column of the differential test.
type frameColumn struct {
	typ value.Type
	gen func(r *rand.Rand) value.Value
}

// testColumns returns int, decimal, double and string columns with NULLs and
// repeats, and with wild, rare values large enough to overflow sums or to
// dwarf the values that follow them.
func testColumns(wild bool) []frameColumn {
	return []frameColumn{
		{value.Int, func(r *rand.Rand) value.Value {
			switch p := r.Float64(); {
			case p < 0.1:
				return null()
			case wild && p < 0.13:
				// Three of these in a frame overflow a sum of ints.
				x := math.MaxInt64/3 + r.Int64N(1000)
				if r.IntN(2) == 0 {
					x = -x
				}
				return iv(x)
			}
			return iv(r.Int64N(101) - 50)
		}},
		{value.Decimal(18, 2), func(r *rand.Rand) value.Value {
			switch p := r.Float64(); {
			case p < 0.1:
				return null()
			case wild && p < 0.12:
				// Beyond 18 digits in any sum or average of two of them.
				return dv(900_000_000_000_000_000+r.Int64N(1000), 2)
			case p < 0.2:
				return dv(r.Int64N(41)-20, 1) // scale 1: 1.5 and 1.50 are one distinct value
			}
			return dv(r.Int64N(20001)-10000, 2)
		}},
		{value.Double, func(r *rand.Rand) value.Value {
			switch p := r.Float64(); {
			case p < 0.1:
				return null()
			case wild && p < 0.105:
				return fv(1e30) // dwarfs the others: its residue must not outlive it
			case p < 0.4:
				return fv(float64(r.IntN(5)) + 0.1) // repeats
			}
			return fv(r.NormFloat64()*100 + 1000)
		}},
		{value.String, func(r *rand.Rand) value.Value {
			if r.IntN(10) == 0 {
				return null()
			}
			return sv(string(rune('a' + r.IntN(20))))
		}},
	}
}

// frameFuncs returns every aggregate over every column that it can take, and
// the column of each.
func frameFuncs(t testing.TB, cols []frameColumn) ([]aggregate.Func, []int) {
	var funcs []aggregate.Func
	var colOf []int
	for c, col := range cols {
		for k := aggregate.CountStar; k <= aggregate.LastValue; k++ {
			f, err := aggregate.New(k, col.typ)
			if err != nil {
				if col.typ.Numeric() {
					t.Fatalf("New(%s, %s): %v", k, col.typ, err)
				}
				continue
			}
			funcs = append(funcs, f)
			colOf = append(colOf, c)
		}
	}
	return funcs, colOf
}

type testRow struct {
	ts   int64
	args []value.Value
}

// TestFrameMatchesRecomputation pushes random rows through frames and checks
// every result against folding the rows of the frame into a fresh State.
func TestFrameMatchesRecomputation(t *testing.T) {
	tests := []struct {
		name   string
		spec   aggregate.FrameSpec
		pushes int
	}{
		{"rows 5", aggregate.FrameSpec{Preceding: 5}, 10000},
		{"range 20", aggregate.FrameSpec{Preceding: 20, Range: true}, 10000},
		{"rows 0", aggregate.FrameSpec{Preceding: 0}, 2000},
		{"range 0", aggregate.FrameSpec{Preceding: 0, Range: true}, 2000},
		{"rows 150", aggregate.FrameSpec{Preceding: 150}, 2000},
		{"range 300", aggregate.FrameSpec{Preceding: 300, Range: true}, 2000},
	}
	cols := testColumns(true)
	funcs, colOf := frameFuncs(t, cols)
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 42))
			w := aggregate.NewFrame(tt.spec, funcs)
			out := make([]value.Value, len(funcs))
			args := make([]value.Value, len(funcs))
			var rows []testRow
			ts := int64(1_700_000_000_000_000_000)
			burst, start, maxLen, errs := 0, 0, 0, 0
			for p := range tt.pushes {
				switch q := r.Float64(); {
				case burst > 0:
					burst-- // many peers of one event time
				case q < 0.003:
					burst = 40 + r.IntN(80)
				case q < 0.006:
					ts += 10_000 // a gap that empties RANGE frames
				case q < 0.4:
				default:
					ts += 1 + r.Int64N(5)
				}
				vals := make([]value.Value, len(cols))
				for c, col := range cols {
					vals[c] = col.gen(r)
				}
				for i := range funcs {
					args[i] = vals[colOf[i]]
				}
				if err := w.Push(ts, args); err != nil {
					t.Fatalf("push %d: %v", p, err)
				}
				rows = append(rows, testRow{ts, vals})

				if tt.spec.Range {
					for rows[start].ts < ts-tt.spec.Preceding {
						start++
					}
				} else {
					start = max(0, len(rows)-1-int(tt.spec.Preceding))
				}
				frame := rows[start:]
				if w.Len() != len(frame) {
					t.Fatalf("push %d: Len() = %d, want %d", p, w.Len(), len(frame))
				}
				maxLen = max(maxLen, len(frame))

				err := w.Results(out)
				wantErr := false
				for i := range funcs {
					f := &funcs[i]
					var s aggregate.State
					for _, row := range frame {
						if err := f.Add(&s, row.args[colOf[i]], row.ts); err != nil {
							t.Fatal(err)
						}
					}
					want, werr := f.Result(&s)
					if werr != nil {
						wantErr = true
						if !out[i].IsNull() {
							t.Fatalf("push %d: %s(%s) = %s, want NULL for the error %v", p, f.Kind, f.Arg, show(out[i]), werr)
						}
						continue
					}
					tol := 0.0
					if f.Type.Kind == value.KindDouble && want.Kind() == value.KindDouble {
						// Doubles are held to 1e-9 of the magnitude of the
						// values in the frame: near 2^53 the reference's own
						// rounding is that large.
						mag := max(1, math.Abs(want.Double()))
						for _, row := range frame {
							if x := row.args[colOf[i]]; x.Kind() != value.KindString && !x.IsNull() {
								mag = max(mag, math.Abs(x.Float()))
							}
						}
						tol = 1e-9 * mag / max(math.Abs(want.Double()), 1)
					}
					if !same(out[i], want, tol) {
						var in []string
						for _, row := range frame {
							in = append(in, show(row.args[colOf[i]]))
						}
						t.Fatalf("push %d: %s(%s) = %s, want %s; frame of %d rows: %s", p, f.Kind, f.Arg, show(out[i]), show(want), len(frame), strings.Join(in, ", "))
					}
				}
				if wantErr != (err != nil) {
					t.Fatalf("push %d: Results error %v, want an error: %v", p, err, wantErr)
				}
				if wantErr {
					errs++
					if !errors.Is(err, value.ErrOverflow) {
						t.Fatalf("push %d: Results error %v, want an overflow", p, err)
					}
				}
			}
			t.Logf("largest frame %d rows; %d results with overflows", maxLen, errs)
		})
	}
}

// TestFrameNonFinite checks that infinities, NaNs and sums that overflow to
// ±Inf leave a frame's sums correct once they have left the frame.
func TestFrameNonFinite(t *testing.T) {
	vals := []float64{1, math.Inf(1), 2, math.NaN(), 3, math.Inf(-1), 4, 5, 6, math.MaxFloat64, math.MaxFloat64, -math.MaxFloat64, 1, 2, 3, 1e200, 1e200, 7, 8, 9}
	var funcs []aggregate.Func
	for _, k := range []aggregate.Kind{aggregate.Sum, aggregate.Avg, aggregate.StddevSamp, aggregate.StddevPop, aggregate.Min, aggregate.Max} {
		funcs = append(funcs, mustNew(t, k, value.Double))
	}
	w := aggregate.NewFrame(aggregate.FrameSpec{Preceding: 2}, funcs)
	out := make([]value.Value, len(funcs))
	args := make([]value.Value, len(funcs))
	for p, x := range vals {
		for i := range args {
			args[i] = fv(x)
		}
		if err := w.Push(int64(p), args); err != nil {
			t.Fatal(err)
		}
		if err := w.Results(out); err != nil {
			t.Fatal(err)
		}
		lo := max(0, p-2)
		for i := range funcs {
			frame := make([]value.Value, 0, 3)
			for _, y := range vals[lo : p+1] {
				frame = append(frame, fv(y))
			}
			want, err := fold(&funcs[i], frame, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !same(out[i], want, 1e-12) {
				t.Errorf("push %d, frame %v: %s = %s, want %s", p, vals[lo:p+1], funcs[i].Kind, show(out[i]), show(want))
			}
		}
	}
}

// TestFrameStddevLargeMean checks moving standard deviations of values with a
// large mean and a small spread, where n·Σx² − (Σx)² in doubles would cancel
// to noise, and of equal values, which must come out 0 or nearly.
func TestFrameStddevLargeMean(t *testing.T) {
	samp := mustNew(t, aggregate.StddevSamp, value.Double)
	pop := mustNew(t, aggregate.StddevPop, value.Double)
	w := aggregate.NewFrame(aggregate.FrameSpec{Preceding: 9}, []aggregate.Func{samp, pop})
	out := make([]value.Value, 2)
	var xs []value.Value
	for p := range 1000 {
		x := 1e6 + 0.001*float64(p%7)
		if p >= 500 {
			x = 1e6 + 0.1 // equal values
		}
		xs = append(xs, fv(x))
		if err := w.Push(int64(p), []value.Value{fv(x), fv(x)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Results(out); err != nil {
			t.Fatal(err)
		}
		frame := xs[max(0, len(xs)-10):]
		for i, f := range []aggregate.Func{samp, pop} {
			want, err := fold(&f, frame, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case p >= 510:
				if out[i].Double() > 1e-9 {
					t.Fatalf("push %d: %s of equal values = %s, want 0", p, f.Kind, show(out[i]))
				}
			case !same(out[i], want, 1e-6):
				t.Fatalf("push %d: %s = %s, want %s", p, f.Kind, show(out[i]), show(want))
			}
		}
	}
}

func TestFrameRangePeers(t *testing.T) {
	count := mustNew(t, aggregate.CountStar, value.Type{})
	sum := mustNew(t, aggregate.Sum, value.Int)
	last := mustNew(t, aggregate.LastValue, value.Int)
	w := aggregate.NewFrame(aggregate.FrameSpec{Preceding: 10, Range: true}, []aggregate.Func{count, sum, last})
	out := make([]value.Value, 3)
	push := func(ts, x int64) {
		t.Helper()
		if err := w.Push(ts, []value.Value{{}, iv(x), iv(x)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want ...value.Value) {
		t.Helper()
		if err := w.Results(out); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if !same(out[i], want[i], 0) {
				t.Errorf("result %d = %s, want %s", i, show(out[i]), show(want[i]))
			}
		}
	}
	check(iv(0), null(), null())
	push(100, 1)
	push(105, 2)
	push(110, 3)
	push(110, 4) // a peer: in the frame of the row before it
	check(iv(4), iv(10), iv(4))
	push(111, 5) // 100 leaves: 111-10 = 101
	check(iv(4), iv(14), iv(5))
	push(200, 6)
	check(iv(1), iv(6), iv(6))
	if w.Len() != 1 {
		t.Errorf("Len() = %d, want 1", w.Len())
	}
	// Event times at the ends of the int64 range must not overflow the bound.
	w = aggregate.NewFrame(aggregate.FrameSpec{Preceding: math.MaxInt64, Range: true}, []aggregate.Func{count, sum, last})
	push(-5, 1)
	push(math.MaxInt64-5, 2) // the frame starts at -5: the first row stays
	check(iv(2), iv(3), iv(2))
	push(math.MaxInt64-4, 3) // the frame starts at -4: the first row leaves
	check(iv(2), iv(5), iv(3))
}

func TestFramePushErrors(t *testing.T) {
	sum := mustNew(t, aggregate.Sum, value.Int)
	maxf := mustNew(t, aggregate.Max, value.String)
	w := aggregate.NewFrame(aggregate.FrameSpec{Preceding: 3}, []aggregate.Func{sum, maxf})
	if err := w.Push(10, []value.Value{iv(1), sv("b")}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		ts   int64
		args []value.Value
	}{
		{"earlier event time", 9, []value.Value{iv(1), sv("a")}},
		{"too few arguments", 10, []value.Value{iv(1)}},
		{"string to sum", 10, []value.Value{sv("x"), sv("a")}},
		{"int to max of strings", 10, []value.Value{iv(2), iv(3)}},
	}
	for _, tt := range bad {
		if err := w.Push(tt.ts, tt.args); err == nil {
			t.Errorf("%s: Push took it", tt.name)
		}
	}
	out := make([]value.Value, 2)
	if err := w.Results(out); err != nil {
		t.Fatal(err)
	}
	if w.Len() != 1 || !same(out[0], iv(1), 0) || !same(out[1], sv("b"), 0) {
		t.Errorf("after rejected pushes: Len %d, results %s, %s; want 1, 1, \"b\"", w.Len(), show(out[0]), show(out[1]))
	}
	if err := w.Results(out[:1]); err == nil {
		t.Error("Results took a short output slice")
	}
}

func TestFrameAllocs(t *testing.T) {
	cols := testColumns(false)
	funcs, colOf := frameFuncs(t, cols)
	r := rand.New(rand.NewPCG(7, 7))
	// A fixed cycle of rows, so that COUNT(DISTINCT) meets no new values.
	cycle := make([][]value.Value, 64)
	for j := range cycle {
		cycle[j] = make([]value.Value, len(funcs))
		vals := make([]value.Value, len(cols))
		for c, col := range cols {
			vals[c] = col.gen(r)
		}
		for i := range funcs {
			cycle[j][i] = vals[colOf[i]]
		}
	}
	for _, spec := range []aggregate.FrameSpec{{Preceding: 100, Range: true}, {Preceding: 20}} {
		w := aggregate.NewFrame(spec, funcs)
		out := make([]value.Value, len(funcs))
		ts := int64(0)
		step := func() {
			ts++
			if err := w.Push(ts, cycle[ts%int64(len(cycle))]); err != nil {
				t.Fatal(err)
			}
			if err := w.Results(out); err != nil {
				t.Fatal(err)
			}
		}
		for range 5000 {
			step()
		}
		if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
			t.Errorf("%+v: Push+Results: %v allocations per row, want 0", spec, allocs)
		}
	}
}

// TestFrameReset: a frame Reset and filled again gives what a new frame
// given the same rows gives, for every function (the MIN and MAX deques,
// COUNT(DISTINCT)'s counts, the double sums), and, refilled to its size,
// allocates nothing.
func TestFrameReset(t *testing.T) {
	cols := testColumns(false)
	funcs, colOf := frameFuncs(t, cols)
	r := rand.New(rand.NewPCG(9, 9))
	row := func() []value.Value {
		vals := make([]value.Value, len(cols))
		for c, col := range cols {
			vals[c] = col.gen(r)
		}
		args := make([]value.Value, len(funcs))
		for i := range funcs {
			args[i] = vals[colOf[i]]
		}
		return args
	}
	spec := aggregate.FrameSpec{Preceding: 10}
	reused := aggregate.NewFrame(spec, funcs)
	got, want := make([]value.Value, len(funcs)), make([]value.Value, len(funcs))
	for run := range 50 {
		reused.Reset()
		fresh := aggregate.NewFrame(spec, funcs)
		for i := range 1 + r.IntN(30) {
			args := row()
			if err := reused.Push(int64(i), args); err != nil {
				t.Fatal(err)
			}
			if err := fresh.Push(int64(i), args); err != nil {
				t.Fatal(err)
			}
			errGot, errWant := reused.Results(got), fresh.Results(want)
			if (errGot == nil) != (errWant == nil) || !slices.EqualFunc(got, want, value.Equal) {
				t.Fatalf("run %d, row %d: reset %v (%v), new %v (%v)", run, i, got, errGot, want, errWant)
			}
		}
	}
	cycle := make([][]value.Value, 11)
	for j := range cycle {
		cycle[j] = row()
	}
	fill := func() {
		reused.Reset()
		for j, args := range cycle {
			_ = reused.Push(int64(j), args)
		}
	}
	fill()
	if allocs := testing.AllocsPerRun(100, fill); allocs != 0 {
		t.Errorf("Reset and 11 pushes: %v allocations, want 0", allocs)
	}
}

func BenchmarkAddSumDecimal(b *testing.B) {
	f := mustNew(b, aggregate.Sum, value.Decimal(12, 2))
	var s aggregate.State
	vals := []value.Value{dv(12345, 2), dv(-999, 2), dv(100000, 2), dv(7, 2)}
	i := 0
	for b.Loop() {
		if err := f.Add(&s, vals[i&3], int64(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if _, err := f.Result(&s); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTumbling3 is the per-record work of COUNT(*), SUM and AVG over a
// decimal price per group in a tumbling window of 10,000 keys: a map lookup
// and three Adds.
func BenchmarkTumbling3(b *testing.B) {
	price := value.Decimal(12, 4)
	funcs := []aggregate.Func{
		mustNew(b, aggregate.CountStar, value.Type{}),
		mustNew(b, aggregate.Sum, price),
		mustNew(b, aggregate.Avg, price),
	}
	const keys = 10_000
	groups := make(map[int64][]aggregate.State, keys)
	r := rand.New(rand.NewPCG(1, 2))
	keyOf := make([]int64, 1<<16)
	for i := range keyOf {
		keyOf[i] = r.Int64N(keys)
	}
	i := 0
	for b.Loop() {
		k := keyOf[i&(len(keyOf)-1)]
		st, ok := groups[k]
		if !ok {
			st = make([]aggregate.State, len(funcs))
			groups[k] = st
		}
		v := dv(int64(1_000_000+i&1023), 4)
		for j := range funcs {
			if err := funcs[j].Add(&st[j], v, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
}

// BenchmarkFramePushRange3 is three moving averages of a decimal price over a
// 15-minute RANGE frame, for 1000 symbols in turn, each getting a row every
// 10 seconds, so that each frame holds about 90 rows: one op is one Push and
// one Results.
func BenchmarkFramePushRange3(b *testing.B) {
	const symbols = 1000
	avg := mustNew(b, aggregate.Avg, value.Decimal(12, 4))
	funcs := []aggregate.Func{avg, avg, avg}
	spec := aggregate.FrameSpec{Preceding: 15 * 60 * 1e9, Range: true}
	frames := make([]*aggregate.Frame, symbols)
	for i := range frames {
		frames[i] = aggregate.NewFrame(spec, funcs)
	}
	args := make([]value.Value, 3)
	out := make([]value.Value, 3)
	i := 0
	step := func() {
		ts := int64(i/symbols) * 10e9
		v := dv(int64(1_000_000+(i*7919)%5000), 4)
		args[0], args[1], args[2] = v, v, v
		w := frames[i%symbols]
		if err := w.Push(ts, args); err != nil {
			b.Fatal(err)
		}
		if err := w.Results(out); err != nil {
			b.Fatal(err)
		}
		i++
	}
	for range 100 * symbols { // fill the frames
		step()
	}
	for b.Loop() {
		step()
	}
}

// TestRemove: the kinds that retract come back, after Remove, to the
// state of the rows left, exactly for ints and decimals; a double sum
// refuses what it could not take out again; other kinds cannot retract.
func TestRemove(t *testing.T) {
	ints := []value.Value{value.IntValue(7), value.NullValue(), value.IntValue(math.MaxInt64), value.IntValue(-3)}
	for _, kind := range []aggregate.Kind{aggregate.CountStar, aggregate.Count, aggregate.Sum, aggregate.Avg} {
		if !kind.Retracts() {
			t.Errorf("%s does not retract", kind)
		}
		f, err := aggregate.New(kind, value.Int)
		if err != nil {
			t.Fatal(err)
		}
		var all, left aggregate.State
		for i, v := range ints {
			if err := f.Add(&all, v, 0); err != nil {
				t.Fatal(err)
			}
			if i != 2 {
				f.Add(&left, v, 0)
			}
		}
		if err := f.Remove(&all, ints[2]); err != nil {
			t.Fatalf("%s: Remove: %v", kind, err)
		}
		got, err1 := f.Result(&all)
		want, err2 := f.Result(&left)
		if err1 != nil || err2 != nil || got.String() != want.String() {
			t.Errorf("%s: after Remove %v (%v); the rows left give %v (%v)", kind, got, err1, want, err2)
		}
	}
	f, _ := aggregate.New(aggregate.Sum, value.Double)
	var s aggregate.State
	f.Add(&s, value.DoubleValue(1e16), 0)
	f.Add(&s, value.DoubleValue(1), 0)
	f.Remove(&s, value.DoubleValue(1e16))
	if got, _ := f.Result(&s); got.Double() != 1 {
		t.Errorf("1e16 + 1 - 1e16 = %v; want 1", got)
	}
	for _, x := range []float64{math.Inf(1), math.NaN()} {
		if err := f.CheckReplace(&s, value.Value{}, false, value.DoubleValue(x)); err == nil {
			t.Errorf("CheckReplace(%v) of a double sum = nil; want an error", x)
		}
		if err := f.Remove(&s, value.DoubleValue(x)); err == nil {
			t.Errorf("Remove(%v) of a double sum = nil; want an error", x)
		}
	}
	// A sum past the range of a double, which subtraction could not undo,
	// is refused, after a removal too.
	var big aggregate.State
	f.Add(&big, value.DoubleValue(-1.5e308), 0)
	f.Add(&big, value.DoubleValue(1e308), 0)
	f.Add(&big, value.DoubleValue(-1e308), 0) // -1.5e308
	if err := f.CheckReplace(&big, value.Value{}, false, value.DoubleValue(-1e308)); err == nil {
		t.Error("CheckReplace of a sum to -2.5e308 = nil; want an error")
	}
	if err := f.CheckReplace(&big, value.DoubleValue(1e308), true, value.DoubleValue(1e308)); err == nil {
		t.Error("CheckReplace through -1.5e308 - 1e308 = nil; want an error")
	}
	if err := f.CheckReplace(&big, value.DoubleValue(1e308), true, value.NullValue()); err == nil {
		t.Error("CheckReplace of a removal to -2.5e308 = nil; want an error")
	}
	if err := f.CheckReplace(&big, value.DoubleValue(1e308), true, value.DoubleValue(-1)); err == nil {
		t.Error("CheckReplace of a removal to -2.5e308 and then -1 = nil; want an error")
	}
	if err := f.CheckReplace(&big, value.DoubleValue(-1.5e308), true, value.DoubleValue(-1e308)); err != nil {
		t.Errorf("CheckReplace of -1.5e308 by -1e308 = %v; want nil", err)
	}
	for _, kind := range []aggregate.Kind{aggregate.Min, aggregate.CountDistinct, aggregate.StddevSamp, aggregate.LastValue} {
		f, _ := aggregate.New(kind, value.Int)
		if kind.Retracts() || f.Remove(&aggregate.State{}, value.IntValue(1)) == nil {
			t.Errorf("%s retracts", kind)
		}
	}
}
