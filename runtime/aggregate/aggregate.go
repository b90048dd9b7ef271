// Package aggregate computes SQL aggregate functions: per group for windowed
// GROUP BY queries (State, one per aggregate call and group) and over the
// moving frames of OVER clauses (Frame, one per partition key).
//
// # Functions and result types
//
//	COUNT(*)                    int: rows
//	COUNT(x)                    int: rows where x is not NULL
//	COUNT(DISTINCT x)           int: distinct non-NULL values of x
//	SUM(int)                    int, exact
//	SUM(decimal(p,s))           decimal(18,s), exact
//	SUM(double)                 double, compensated (Kahan–Neumaier) summation
//	AVG(int), AVG(double)       double
//	AVG(decimal(p,s))           decimal(18,min(s+4,18)), rounded half away from zero
//	MIN(x), MAX(x)              x's type; x of any type but NULL
//	STDDEV_SAMP(x), STDDEV(x)   double: sample standard deviation
//	STDDEV_POP(x)               double: population standard deviation
//	FIRST_VALUE(x)              x's type: x of the row with the earliest event time
//	LAST_VALUE(x)               x's type: x of the row with the latest event time
//
// SUM, AVG and the standard deviations need a number (int, double or
// decimal); the counts, FIRST_VALUE and LAST_VALUE take any type.
//
// # NULLs and empty groups
//
// Every aggregate but COUNT(*), FIRST_VALUE and LAST_VALUE skips NULL
// arguments. Over no rows (or only NULLs) the counts are 0 and the others
// NULL; STDDEV_SAMP is also NULL over a single value. FIRST_VALUE and
// LAST_VALUE follow window-function semantics and do not skip NULLs: if the
// earliest row's x is NULL, FIRST_VALUE is NULL. Rows with equal event times
// keep the order they were added in: FIRST_VALUE keeps the earlier row,
// LAST_VALUE takes the later.
//
// # Exactness
//
// Sums of ints and decimals are exact: they accumulate in 128 bits, so a sum
// may leave the 64-bit range midway and come back. Only a result that does not
// fit its type, more than 64 bits for an int or 18 digits for a decimal, is an
// error, wrapping value.ErrOverflow. AVG of decimals divides the exact sum by
// the count once, rounding half away from zero. COUNT(DISTINCT x) counts equal
// decimals of different scales (1.5 and 1.50) once, and 0.0 and -0.0 once.
// MIN and MAX order values as value.Compare does.
package aggregate

import (
	"fmt"
	"math"
	"strings"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Kind names an aggregate function.
type Kind uint8

// The aggregate functions.
const (
	CountStar Kind = iota
	Count
	CountDistinct
	Sum
	Avg
	Min
	Max
	StddevSamp
	StddevPop
	FirstValue
	LastValue
)

var kindNames = [...]string{
	CountStar:     "count(*)",
	Count:         "count",
	CountDistinct: "count(distinct)",
	Sum:           "sum",
	Avg:           "avg",
	Min:           "min",
	Max:           "max",
	StddevSamp:    "stddev_samp",
	StddevPop:     "stddev_pop",
	FirstValue:    "first_value",
	LastValue:     "last_value",
}

// String returns the function's SQL name in lower case, such as "sum" or
// "count(distinct)".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("aggregate(%d)", k)
}

// Lookup returns the aggregate a SQL function name denotes, case-insensitively,
// and whether there is one. "stddev" is STDDEV_SAMP. With distinct, count is
// COUNT(DISTINCT), min and max are themselves (DISTINCT does not change them),
// and the other names are not found: a caller can look the name up again
// without distinct to tell an unsupported DISTINCT from an unknown function.
// Lookup never returns CountStar, which has no argument to look up by.
func Lookup(name string, distinct bool) (Kind, bool) {
	var k Kind
	switch strings.ToLower(name) {
	case "count":
		if distinct {
			return CountDistinct, true
		}
		return Count, true
	case "min":
		return Min, true
	case "max":
		return Max, true
	case "sum":
		k = Sum
	case "avg":
		k = Avg
	case "stddev", "stddev_samp":
		k = StddevSamp
	case "stddev_pop":
		k = StddevPop
	case "first_value":
		k = FirstValue
	case "last_value":
		k = LastValue
	default:
		return 0, false
	}
	if distinct {
		return 0, false
	}
	return k, true
}

// Func is one type-checked aggregate call.
type Func struct {
	// Kind is the aggregate function.
	Kind Kind
	// Arg is the argument's type; the zero Type for CountStar.
	Arg value.Type
	// Type is the type of the aggregate's value. (It is not called Result,
	// as that is the method that computes the value.)
	Type value.Type
}

// New type-checks kind over an argument of type arg, which is ignored for
// CountStar, and returns the call. Its error is meant for the user who wrote
// the query.
func New(kind Kind, arg value.Type) (Func, error) {
	if kind > LastValue {
		return Func{}, fmt.Errorf("unknown aggregate function %d", kind)
	}
	if kind == CountStar {
		return Func{Kind: kind, Type: value.Int}, nil
	}
	if arg.Kind == value.KindDecimal && arg.Scale > value.MaxDecimalPrecision {
		return Func{}, fmt.Errorf("%s cannot take %s: decimals have at most %d digits", kind, arg, value.MaxDecimalPrecision)
	}
	f := Func{Kind: kind, Arg: arg, Type: arg}
	switch kind {
	case Count, CountDistinct:
		f.Type = value.Int
	case Sum, Avg, StddevSamp, StddevPop:
		if !arg.Numeric() {
			return Func{}, fmt.Errorf("%s cannot take %s; it needs a number", kind, arg)
		}
		switch {
		case kind == StddevSamp || kind == StddevPop:
			f.Type = value.Double
		case arg.Kind == value.KindDecimal && kind == Sum:
			f.Type = value.Decimal(value.MaxDecimalPrecision, int(arg.Scale))
		case arg.Kind == value.KindDecimal: // avg
			f.Type = value.Decimal(value.MaxDecimalPrecision, int(min(arg.Scale+4, value.MaxDecimalPrecision)))
		case kind == Avg:
			f.Type = value.Double
		}
	case Min, Max:
		if arg.Kind == value.KindNull {
			return Func{}, fmt.Errorf("%s cannot take an untyped NULL; cast it to a type", kind)
		}
	}
	return f, nil
}

// State is the running state of one aggregate call for one group. Its zero
// value is the empty state, and assigning State{} empties it again. It holds no
// pointers but COUNT(DISTINCT)'s set and the string a MIN, MAX, FIRST_VALUE or
// LAST_VALUE of strings refers to, so a group's []State is one allocation.
type State struct {
	n    int64       // rows counted: non-NULL arguments, or every row for COUNT(*), FIRST_VALUE and LAST_VALUE; COUNT(DISTINCT)'s distinct values
	sum  int128      // SUM and AVG of ints and decimals, unscaled at the argument's scale
	fsum compSum     // SUM and AVG of doubles
	mean float64     // STDDEV: Welford's running mean
	m2   float64     // STDDEV: Welford's sum of squared deviations from the mean
	ts   int64       // FIRST_VALUE and LAST_VALUE: the event time of v
	v    value.Value // MIN, MAX, FIRST_VALUE and LAST_VALUE
	// COUNT(DISTINCT): the distinct values, by key, each with the bits of
	// the calls sharing the set that counted it (Calls; a call alone is bit
	// 1), but
	set  map[value.Value]uint64
	ints map[int64]uint64 // the whole numbers', by their value: a map of them is a fast one
}

// addDistinct adds bits to those of k, a COUNT(DISTINCT) key (Func.key), in
// s's set of distinct values: a whole number (of an int or a decimal,
// normalized to scale 0) in ints, anything else in set. It returns the bits
// k did not have.
func (s *State) addDistinct(k value.Value, bits uint64) (fresh uint64) {
	var had uint64
	if k.Kind() == value.KindDecimal && k.Scale() == 0 {
		if s.ints == nil {
			s.ints = make(map[int64]uint64)
		}
		x := k.Unscaled()
		if had = s.ints[x]; had|bits != had {
			s.ints[x] = had | bits
		}
		return bits &^ had
	}
	if s.set == nil {
		s.set = make(map[value.Value]uint64)
	}
	if had = s.set[k]; had|bits != had {
		s.set[k] = had | bits
	}
	return bits &^ had
}

// Add folds v, the argument of a row with event time ts in nanoseconds, into s.
// NULLs are skipped, except by COUNT(*), which counts rows whatever v is, and
// FIRST_VALUE and LAST_VALUE. v must be of the argument's type; a value of
// another type is an error, except that exact numbers convert exactly: an int
// or a decimal of a smaller scale to a decimal argument, and any number to a
// double argument.
func (f *Func) Add(s *State, v value.Value, ts int64) error {
	switch f.Kind {
	case CountStar:
		s.n++
		return nil
	case FirstValue:
		if s.n == 0 || ts < s.ts {
			s.v, s.ts = v, ts
		}
		s.n++
		return nil
	case LastValue:
		if s.n == 0 || ts >= s.ts {
			s.v, s.ts = v, ts
		}
		s.n++
		return nil
	}
	if v.IsNull() {
		return nil
	}
	switch f.Kind {
	case Count:
	case CountDistinct:
		if s.addDistinct(f.key(v), 1) != 0 {
			s.n++
		}
		return nil
	case Sum, Avg:
		if f.Arg.Kind == value.KindDouble {
			x, err := f.float(v)
			if err != nil {
				return err
			}
			s.fsum.add(x)
			break
		}
		x, err := f.exact(v)
		if err != nil {
			return err
		}
		s.sum = s.sum.add(x)
	case StddevSamp, StddevPop:
		x, err := f.float(v)
		if err != nil {
			return err
		}
		d := x - s.mean
		s.mean += d / float64(s.n+1)
		s.m2 += d * (x - s.mean)
	case Min, Max:
		if err := f.comparable(v); err != nil {
			return err
		}
		if s.n == 0 || f.better(v, s.v) {
			s.v = v
		}
	}
	s.n++
	return nil
}

// Retracts reports whether a row added to a State can be taken out of it
// again (Remove): COUNT, SUM and AVG keep no more than a count and a sum,
// which subtraction undoes.
func (k Kind) Retracts() bool {
	switch k {
	case CountStar, Count, Sum, Avg:
		return true
	}
	return false
}

// Remove takes v, added to s before, out of it again: the state is then
// as if v had never been added. It applies to the kinds that retract
// (Kind.Retracts). A double sum's compensated terms come back to within
// rounding of the sum of the doubles left, but an infinity or NaN, once
// added, would leave NaN behind: a sum or average of doubles that may be
// taken back takes finite doubles only (CheckReplace), and Remove refuses
// others.
func (f *Func) Remove(s *State, v value.Value) error {
	switch f.Kind {
	case CountStar:
		s.n--
		return nil
	case Count, Sum, Avg:
	default:
		return fmt.Errorf("%s cannot take a row back out", f.Kind)
	}
	if v.IsNull() {
		return nil
	}
	switch {
	case f.Kind == Count:
	case f.Arg.Kind == value.KindDouble:
		x, err := f.finite(v)
		if err != nil {
			return err
		}
		s.fsum.add(-x)
	default:
		x, err := f.exact(v)
		if err != nil {
			return err
		}
		s.sum = s.sum.sub(x)
	}
	s.n--
	if s.n == 0 {
		// Drop the rounding residue of everything that came and went.
		s.sum, s.fsum = int128{}, compSum{}
	}
	return nil
}

// CheckReplace returns an error if taking old out of s (unless hasOld is
// false) and adding v, with Remove and Add, would fail or leave a state
// that rows could not be taken out of again: an argument that is not of
// the argument's type, an infinity or NaN of a sum or average of doubles,
// or such a sum past the range of a double, which subtraction cannot
// undo. Called first, it makes the replacement all or nothing.
func (f *Func) CheckReplace(s *State, old value.Value, hasOld bool, v value.Value) error {
	if !f.Kind.Retracts() {
		return fmt.Errorf("%s cannot take a row back out", f.Kind)
	}
	if f.Kind != Sum && f.Kind != Avg {
		return nil
	}
	if f.Arg.Kind != value.KindDouble {
		if !v.IsNull() {
			_, err := f.exact(v)
			return err
		}
		return nil
	}
	// The sum after each step, as Remove and then Add would leave it.
	sum := s.fsum.value()
	for i, x := range [2]value.Value{old, v} {
		if x.IsNull() || i == 0 && !hasOld {
			continue
		}
		d, err := f.finite(x)
		if err != nil {
			return err
		}
		if i == 0 {
			d = -d
		}
		if sum += d; !finite(sum) {
			return fmt.Errorf("%s of rows that may be taken back out (an aggregation of a changelog) would pass the range of a double", f.Kind)
		}
	}
	return nil
}

// finite returns v, an argument of a double sum, as a finite double.
func (f *Func) finite(v value.Value) (float64, error) {
	x, err := f.float(v)
	if err == nil && !finite(x) {
		err = fmt.Errorf("%s of rows that may be taken back out (an aggregation of a changelog) takes finite doubles only, not %v", f.Kind, x)
	}
	return x, err
}

// Result returns the aggregate of the rows added to s so far.
func (f *Func) Result(s *State) (value.Value, error) {
	switch f.Kind {
	case CountStar, Count, CountDistinct:
		return value.IntValue(s.n), nil
	}
	if s.n == 0 {
		return value.NullValue(), nil
	}
	switch f.Kind {
	case Sum:
		return f.sumResult(s.sum, s.fsum.value())
	case Avg:
		return f.avgResult(s.n, s.sum, s.fsum.value())
	case StddevSamp:
		if s.n < 2 {
			return value.NullValue(), nil
		}
		return value.DoubleValue(math.Sqrt(max(s.m2, 0) / float64(s.n-1))), nil
	case StddevPop:
		return value.DoubleValue(math.Sqrt(max(s.m2, 0) / float64(s.n))), nil
	}
	return s.v, nil // MIN, MAX, FIRST_VALUE, LAST_VALUE
}

// sumResult returns a SUM from its exact sum (ints and decimals) or its double sum.
func (f *Func) sumResult(sum int128, fsum float64) (value.Value, error) {
	switch f.Arg.Kind {
	case value.KindDouble:
		return value.DoubleValue(fsum), nil
	case value.KindInt:
		x, ok := sum.int64()
		if !ok {
			return value.Value{}, fmt.Errorf("sum of int does not fit 64 bits: %w", value.ErrOverflow)
		}
		return value.IntValue(x), nil
	}
	x, ok := sum.int64()
	if !ok || !fitsDecimal(x) {
		return value.Value{}, fmt.Errorf("sum of %s exceeds %d digits: %w", f.Arg, value.MaxDecimalPrecision, value.ErrOverflow)
	}
	return value.DecimalValue(x, f.Type.Scale), nil
}

// avgResult returns an AVG of n values from their exact sum (ints and
// decimals) or their double sum.
func (f *Func) avgResult(n int64, sum int128, fsum float64) (value.Value, error) {
	switch f.Arg.Kind {
	case value.KindDouble:
		return value.DoubleValue(fsum / float64(n)), nil
	case value.KindInt:
		return value.DoubleValue(sum.float() / float64(n)), nil
	}
	x, ok := divRound(sum, f.Type.Scale-f.Arg.Scale, n)
	if !ok || !fitsDecimal(x) {
		return value.Value{}, fmt.Errorf("avg of %s exceeds %d digits at scale %d: %w", f.Arg, value.MaxDecimalPrecision, f.Type.Scale, value.ErrOverflow)
	}
	return value.DecimalValue(x, f.Type.Scale), nil
}

// better reports whether v replaces cur as a MIN or MAX. Ties keep cur, the
// earlier value, which a moving frame's deque relies on to agree with State.
func (f *Func) better(v, cur value.Value) bool {
	c := value.Compare(v, cur)
	if f.Kind == Min {
		return c < 0
	}
	return c > 0
}

// exact returns an int or decimal v as an integer at the argument's scale.
func (f *Func) exact(v value.Value) (int128, error) {
	if k := v.Kind(); k != value.KindInt && k != value.KindDecimal {
		return int128{}, f.badValue(v)
	}
	// An int's scale is 0, and Unscaled returns an int's value.
	x, scale := v.Unscaled(), v.Scale()
	switch {
	case scale == f.Arg.Scale:
		return int128Of(x), nil
	case scale < f.Arg.Scale:
		return mulPow10(x, f.Arg.Scale-scale), nil
	}
	return int128{}, f.badValue(v)
}

// float returns a numeric v as a double.
func (f *Func) float(v value.Value) (float64, error) {
	switch v.Kind() {
	case value.KindInt, value.KindDouble, value.KindDecimal:
		return v.Float(), nil
	}
	return 0, f.badValue(v)
}

// comparable checks that MIN or MAX can compare v with the argument's values.
func (f *Func) comparable(v value.Value) error {
	if !value.Comparable(value.Type{Kind: v.Kind()}, f.Arg) {
		return f.badValue(v)
	}
	return nil
}

// check reports the error Add would return for a non-NULL v, without adding it.
func (f *Func) check(v value.Value) error {
	if v.IsNull() {
		return nil
	}
	var err error
	switch f.Kind {
	case Sum, Avg:
		if f.Arg.Kind == value.KindDouble {
			_, err = f.float(v)
		} else {
			_, err = f.exact(v)
		}
	case StddevSamp, StddevPop:
		_, err = f.float(v)
	case Min, Max:
		err = f.comparable(v)
	}
	return err
}

func (f *Func) badValue(v value.Value) error {
	return fmt.Errorf("%s of %s cannot take the %s value %s", f.Kind, f.Arg, v.Kind(), v)
}

// key returns the map key COUNT(DISTINCT) counts v under: values SQL calls
// equal have equal keys. Exact numbers become decimals with no trailing zeros
// (1.50 is 1.5, the int 2 is the decimal 2), doubles lose the sign of zero, and
// every NaN is one value.
func (f *Func) key(v value.Value) value.Value {
	switch v.Kind() {
	case value.KindInt, value.KindDecimal:
		if f.Arg.Kind == value.KindDouble {
			return floatKey(v.Float())
		}
		x, scale := v.Unscaled(), v.Scale()
		for scale > 0 && x%10 == 0 {
			x /= 10
			scale--
		}
		return value.DecimalValue(x, scale)
	case value.KindDouble:
		return floatKey(v.Double())
	}
	return v
}

func floatKey(x float64) value.Value {
	switch {
	case x == 0:
		return value.DoubleValue(0)
	case math.IsNaN(x):
		return value.DoubleValue(math.NaN())
	}
	return value.DoubleValue(x)
}
