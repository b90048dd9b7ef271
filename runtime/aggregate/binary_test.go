package aggregate_test

import (
	"math"
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
		value.Decimal(18, 2): {dv(999_999_999_999_999_999, 2), dv(5, 2), dv(999_999_999_999_999_999, 2), dv(-999_999_999_999_999_999, 2), null()},
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
			r := value.NewReader(aggregate.AppendState(nil, &half))
			var restored aggregate.State
			aggregate.ReadState(r, &restored)
			if r.Err() != nil || r.Len() != 0 {
				t.Fatalf("%s(%s): reading back: %v, %d bytes left", kind, typ, r.Err(), r.Len())
			}
			for i := len(vals) / 2; i < len(vals); i++ {
				f.Add(&restored, vals[i], int64(len(vals)-i))
			}
			want, werr := f.Result(&whole)
			got, gerr := f.Result(&restored)
			same := got == want || got.Kind() == value.KindDouble && math.Float64bits(got.Double()) == math.Float64bits(want.Double())
			if !same || (werr == nil) != (gerr == nil) {
				t.Errorf("%s(%s) = %v, %v after a round trip halfway; want %v, %v", kind, typ, got, gerr, want, werr)
			}
		}
	}
}
