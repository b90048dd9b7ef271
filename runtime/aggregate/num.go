package aggregate

import (
	"math"
	"math/bits"

	"github.com/sluice-dev/sluice/runtime/value"
)

// int128 is a two's-complement 128-bit integer. Exact sums of int64s and of
// decimal unscaled values accumulate in it: a sum may leave the int64 range
// midway and come back, and only a final result that does not fit is an error.
// It cannot itself overflow before 2^64 additions.
type int128 struct {
	hi int64
	lo uint64
}

func int128Of(x int64) int128 { return int128{hi: x >> 63, lo: uint64(x)} }

func (a int128) add(b int128) int128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	return int128{hi: a.hi + b.hi + int64(carry), lo: lo}
}

func (a int128) sub(b int128) int128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	return int128{hi: a.hi - b.hi - int64(borrow), lo: lo}
}

func (a int128) neg() int128 { return int128{}.sub(a) }

// int64 returns a as an int64 and whether it fits.
func (a int128) int64() (int64, bool) {
	return int64(a.lo), a.hi == int64(a.lo)>>63
}

// abs returns |a| as an unsigned 128-bit number (hi, lo); it is exact even for
// -2^127, whose magnitude fits unsigned.
func (a int128) abs() (hi, lo uint64) {
	if a.hi < 0 {
		a = a.neg()
	}
	return uint64(a.hi), a.lo
}

func (a int128) float() float64 {
	if x, ok := a.int64(); ok {
		return float64(x)
	}
	hi, lo := a.abs()
	f := float64(hi)*0x1p64 + float64(lo)
	if a.hi < 0 {
		return -f
	}
	return f
}

// mulPow10 returns x × 10^k exactly; k <= 18 keeps the product below 2^124.
func mulPow10(x int64, k uint8) int128 {
	u := uint64(x)
	if x < 0 {
		u = -u
	}
	hi, lo := bits.Mul64(u, uint64(value.Pow10(k)))
	r := int128{hi: int64(hi), lo: lo}
	if x < 0 {
		return r.neg()
	}
	return r
}

// divRound returns x × 10^k ÷ n rounded half away from zero, and false if the
// quotient does not fit an int64. n must be positive and k at most 18.
func divRound(x int128, k uint8, n int64) (int64, bool) {
	uhi, ulo := x.abs()
	m := uint64(value.Pow10(k))
	// The product |x| × 10^k has 192 bits: w2 w1 w0.
	h0, w0 := bits.Mul64(ulo, m)
	h1, l1 := bits.Mul64(uhi, m)
	w1, carry := bits.Add64(h0, l1, 0)
	w2 := h1 + carry
	d := uint64(n)
	if w2 >= d {
		return 0, false // the quotient needs more than 128 bits
	}
	q1, r := bits.Div64(w2, w1, d)
	if q1 != 0 {
		return 0, false
	}
	q, r := bits.Div64(r, w0, d)
	if r >= d-r { // 2r >= d, written so that it cannot overflow
		if q == math.MaxUint64 {
			return 0, false
		}
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	if x.hi < 0 {
		return -int64(q), true
	}
	return int64(q), true
}

// fitsDecimal reports whether x fits the 18 digits of a decimal.
func fitsDecimal(x int64) bool {
	return value.FitsPrecision(x, value.MaxDecimalPrecision)
}

// compSum is a Kahan–Neumaier compensated sum of doubles: the sum is hi+lo,
// and lo collects the exact rounding error of every addition to hi, so the
// result is as good as summing in twice the precision.
type compSum struct {
	hi, lo float64
}

func (c *compSum) add(x float64) {
	s := c.hi + x
	if math.Abs(c.hi) >= math.Abs(x) {
		c.lo += (c.hi - s) + x
	} else {
		c.lo += (x - s) + c.hi
	}
	c.hi = s
}

// value returns the sum. Once hi is ±Inf or NaN the compensation is
// meaningless (Inf - Inf), and hi alone is the IEEE result.
func (c compSum) value() float64 {
	if !finite(c.hi) {
		return c.hi
	}
	return c.hi + c.lo
}

// normal returns the sum as a normalised pair: |lo| at most half an ulp of hi.
func (c compSum) normal() (hi, lo float64) {
	return twoSum(c.hi, c.lo)
}

func finite(x float64) bool { return !math.IsInf(x, 0) && !math.IsNaN(x) }

// twoSum returns s = fl(a+b) and the exact error e with a+b = s+e.
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	return s, (a - (s - bb)) + (b - bb)
}

// twoProd returns p = fl(a×b) and the exact error e with a×b = p+e.
func twoProd(a, b float64) (p, e float64) {
	p = a * b
	return p, math.FMA(a, b, -p)
}

// squares holds compensated sums of x and x² for a moving variance. Rows leave
// a moving frame as often as they enter it, and Welford's update run backwards
// leaves a residue that the square root turns into a visible non-zero standard
// deviation of equal values. Sums kept in double-double precision cancel
// almost exactly instead; see spread.
type squares struct {
	s1, s2 compSum
}

func (q *squares) add(x float64) {
	q.s1.add(x)
	p, e := twoProd(x, x)
	q.s2.add(p)
	q.s2.lo += e
}

func (q *squares) remove(x float64) {
	q.s1.add(-x)
	p, e := twoProd(x, x)
	q.s2.add(-p)
	q.s2.lo -= e
}

func (q *squares) finite() bool {
	return finite(q.s1.hi) && finite(q.s1.lo) && finite(q.s2.hi) && finite(q.s2.lo)
}

// spread returns n·Σx² − (Σx)², which is n² times the population variance,
// evaluated in double-double arithmetic. Its relative error is about 1e-32 ×
// (mean²/variance + 1), so values with a large mean and a small spread keep
// their digits, where the textbook formula in doubles would lose them all.
func (q *squares) spread(n int64) float64 {
	fn := float64(n)
	h1, l1 := q.s1.normal()
	h2, l2 := q.s2.normal()
	ah, al := twoProd(fn, h2)
	al += fn * l2
	bh, bl := twoProd(h1, h1)
	bl += 2 * h1 * l1
	dh, dl := twoSum(ah, -bh)
	return max(dh+(dl+al-bl), 0)
}
