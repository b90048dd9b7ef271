package value

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// ErrOverflow reports a decimal result that does not fit its type.
var ErrOverflow = errors.New("numeric field overflow")

// ErrDivisionByZero reports a division or modulo by zero.
var ErrDivisionByZero = errors.New("division by zero")

var pow10 = [...]int64{
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
	1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000,
}

var pow10f = func() (p [len(pow10)]float64) {
	for i := range p {
		p[i] = math.Pow10(i)
	}
	return p
}()

// Pow10 returns 10^n for 0 <= n <= 18.
func Pow10(n uint8) int64 { return pow10[n] }

// AppendDecimal appends unscaled × 10^-scale in plain notation, with exactly scale
// fractional digits.
func AppendDecimal(dst []byte, unscaled int64, scale uint8) []byte {
	if scale == 0 {
		return strconv.AppendInt(dst, unscaled, 10)
	}
	u := uint64(unscaled)
	if unscaled < 0 {
		dst = append(dst, '-')
		u = -u
	}
	p := uint64(pow10[scale])
	dst = strconv.AppendUint(dst, u/p, 10)
	dst = append(dst, '.')
	frac := u % p
	var buf [20]byte
	i := len(buf)
	for range scale {
		i--
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, buf[i:]...)
}

// maxDecimalText bounds the text of a decimal, digits, exponent and all.
const maxDecimalText = 1024

// ParseDecimal parses a decimal literal ("-12.5", "3", "1e3") into an unscaled
// integer at the given scale, rounding half away from zero beyond it.
func ParseDecimal(s []byte, scale uint8) (int64, error) {
	if len(s) > maxDecimalText {
		// Big arithmetic on it would be quadratic in its length.
		return 0, fmt.Errorf("decimal text of %d bytes is longer than the %d allowed", len(s), maxDecimalText)
	}
	i := 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var mant uint64
	digits, fracDigits := 0, 0
	seenDot, overflow, nonZero := false, false, false
	roundUp := false
	exp := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			nonZero = nonZero || c != '0'
			if seenDot && fracDigits >= int(scale) {
				// Beyond the scale: only the first dropped digit decides rounding.
				if fracDigits == int(scale) {
					roundUp = c >= '5'
				}
				fracDigits++
				continue
			}
			if seenDot {
				fracDigits++
			}
			hi, lo := bits.Mul64(mant, 10)
			lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
			if hi != 0 || carry != 0 {
				overflow = true
			}
			mant = lo
		case c == '.' && !seenDot:
			seenDot = true
		case (c == 'e' || c == 'E') && digits > 0:
			e, err := strconv.Atoi(string(s[i+1:]))
			if err != nil {
				return 0, errors.New("invalid exponent")
			}
			exp = e
			i = len(s)
		default:
			return 0, errors.New("invalid decimal syntax")
		}
	}
	if digits == 0 {
		return 0, errors.New("invalid decimal syntax")
	}
	if overflow && exp == 0 {
		return 0, ErrOverflow // at least 2^64 units: more than an int64
	}
	if exp != 0 || overflow {
		// Whatever its digits, a literal of n bytes with an exponent beyond
		// ±(n+40) overflows 18 digits or rounds to zero. Deciding those here
		// keeps a hostile 1e999999 from costing big arithmetic.
		switch bound := len(s) + 40; {
		case !nonZero:
			return 0, nil
		case exp > bound:
			return 0, ErrOverflow
		case exp < -bound:
			return 0, nil
		}
		return parseDecimalSlow(s, scale)
	}
	if fracDigits > int(scale) {
		fracDigits = int(scale)
	}
	shift := int(scale) - fracDigits
	hi, lo := bits.Mul64(mant, uint64(pow10[shift]))
	if hi != 0 {
		return 0, ErrOverflow
	}
	if roundUp {
		lo++
	}
	if neg {
		if lo > 1<<63 {
			return 0, ErrOverflow
		}
		return int64(-lo), nil
	}
	if lo > math.MaxInt64 {
		return 0, ErrOverflow
	}
	return int64(lo), nil
}

// parseDecimalSlow handles exponents and long mantissas through big.Rat.
func parseDecimalSlow(s []byte, scale uint8) (int64, error) {
	r, ok := new(big.Rat).SetString(string(s))
	if !ok {
		return 0, errors.New("invalid decimal syntax")
	}
	return ratToUnscaled(r, scale)
}

// ratToUnscaled rounds r × 10^scale half away from zero to an int64.
func ratToUnscaled(r *big.Rat, scale uint8) (int64, error) {
	num := new(big.Int).Mul(r.Num(), big.NewInt(pow10[scale]))
	return divRound(num, r.Denom())
}

// divRound divides num by den rounding half away from zero, into an int64.
func divRound(num, den *big.Int) (int64, error) {
	if den.Sign() == 0 {
		return 0, ErrDivisionByZero
	}
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	m.Abs(m).Lsh(m, 1)
	if m.CmpAbs(den) >= 0 {
		if num.Sign()*den.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return q.Int64(), nil
}

// Rescale converts unscaled at scale from to scale to, rounding half away from zero
// when it drops digits.
func Rescale(unscaled int64, from, to uint8) (int64, error) {
	switch {
	case from == to:
		return unscaled, nil
	case to > from:
		p := pow10[to-from]
		r := unscaled * p
		if unscaled != 0 && (r/p != unscaled) {
			return 0, ErrOverflow
		}
		return r, nil
	default:
		p := pow10[from-to]
		q, m := unscaled/p, unscaled%p
		if m < 0 {
			m = -m
		}
		if m*2 >= p {
			if unscaled < 0 {
				q--
			} else {
				q++
			}
		}
		return q, nil
	}
}

// AddDecimal adds two decimals and returns the sum at the scale given. The
// sum is exact at the larger of the two scales and rounded once from there.
func AddDecimal(a int64, as uint8, b int64, bs uint8, scale uint8) (int64, error) {
	common := max(as, bs)
	a, err := Rescale(a, as, common)
	if err != nil {
		return 0, err
	}
	if b, err = Rescale(b, bs, common); err != nil {
		return 0, err
	}
	s, overflow := addOverflow(a, b)
	if overflow {
		return 0, ErrOverflow
	}
	return Rescale(s, common, scale)
}

func addOverflow(a, b int64) (int64, bool) {
	s := a + b
	return s, (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0)
}

// MulDecimal multiplies two decimals and returns the product at the scale given,
// rounding half away from zero.
func MulDecimal(a int64, as uint8, b int64, bs uint8, scale uint8) (int64, error) {
	neg := (a < 0) != (b < 0)
	ua, ub := absU(a), absU(b)
	hi, lo := bits.Mul64(ua, ub)
	natural := as + bs
	if hi == 0 && lo <= math.MaxInt64 && natural <= MaxDecimalPrecision {
		p := int64(lo)
		if neg {
			p = -p
		}
		return Rescale(p, natural, scale)
	}
	num := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	den := big.NewInt(1)
	if natural >= scale {
		den.Exp(big.NewInt(10), big.NewInt(int64(natural-scale)), nil)
	} else {
		num.Mul(num, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-natural)), nil))
	}
	return divRound(num, den)
}

// DivDecimal divides a by b and returns the quotient at the scale given, rounding
// half away from zero.
func DivDecimal(a int64, as uint8, b int64, bs uint8, scale uint8) (int64, error) {
	if b == 0 {
		return 0, ErrDivisionByZero
	}
	// a/10^as ÷ b/10^bs × 10^scale = a × 10^(scale+bs-as) ÷ b
	shift := int(scale) + int(bs) - int(as)
	num := big.NewInt(a)
	den := big.NewInt(b)
	ten := big.NewInt(10)
	if shift >= 0 {
		num.Mul(num, new(big.Int).Exp(ten, big.NewInt(int64(shift)), nil))
	} else {
		den.Mul(den, new(big.Int).Exp(ten, big.NewInt(int64(-shift)), nil))
	}
	return divRound(num, den)
}

// CompareDecimal compares two decimals: -1, 0 or 1.
func CompareDecimal(a int64, as uint8, b int64, bs uint8) int {
	if as == bs {
		return cmpInt(a, b)
	}
	if as < bs {
		if r, err := Rescale(a, as, bs); err == nil {
			return cmpInt(r, b)
		}
	} else if r, err := Rescale(b, bs, as); err == nil {
		return cmpInt(a, r)
	}
	// The rescale overflowed: compare exactly.
	x := new(big.Int).Mul(big.NewInt(a), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(bs)), nil))
	y := new(big.Int).Mul(big.NewInt(b), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(as)), nil))
	return x.Cmp(y)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func absU(a int64) uint64 {
	if a < 0 {
		return uint64(-a)
	}
	return uint64(a)
}

// FitsPrecision reports whether unscaled has at most precision digits.
func FitsPrecision(unscaled int64, precision uint8) bool {
	if precision >= MaxDecimalPrecision+1 {
		return true
	}
	u := absU(unscaled)
	return u < uint64(pow10[precision])
}

// DecimalFromFloat converts f to a decimal at the given scale, rounding half away
// from zero.
func DecimalFromFloat(f float64, scale uint8) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, ErrOverflow
	}
	r := new(big.Rat)
	if r.SetFloat64(f) == nil {
		return 0, ErrOverflow
	}
	return ratToUnscaled(r, scale)
}
