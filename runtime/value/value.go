// Package value holds the typed values that flow through the engine: the SQL
// types of a schema, the Value that carries one of them, and Row, a record's
// values in schema order.
//
// A Value is a small struct passed by value. It never points at heap memory of
// its own except a string's bytes, so rows of values can be pooled and reused
// without allocating per record.
package value

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the SQL type of a value, without parameters.
type Kind uint8

// The kinds. KindNull is the kind of the NULL literal before it is given a type.
const (
	KindNull Kind = iota
	KindBool
	KindInt
	KindDouble
	KindDecimal
	KindString
	KindTimestamp
	// KindInterval is a duration in nanoseconds. Schemas cannot declare it; it
	// comes from INTERVAL literals and timestamp arithmetic.
	KindInterval
)

var kindNames = [...]string{
	KindNull:      "null",
	KindBool:      "bool",
	KindInt:       "int",
	KindDouble:    "double",
	KindDecimal:   "decimal",
	KindString:    "string",
	KindTimestamp: "timestamp",
	KindInterval:  "interval",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// MaxDecimalPrecision is the most digits a decimal holds. Decimals are exact
// 64-bit fixed-point numbers; a result that does not fit is an evaluation error,
// never a silently rounded number.
const MaxDecimalPrecision = 18

// Column is a named, typed column: of a source's schema, of a plan node's
// output, of a sink's rows.
type Column struct {
	Name string
	Type Type
}

// Names returns the names of cols, in order.
func Names(cols []Column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// Type is a column's SQL type. Precision and Scale are set for decimals only.
type Type struct {
	Kind      Kind
	Precision uint8
	Scale     uint8
}

// Common types.
var (
	Null      = Type{Kind: KindNull}
	Bool      = Type{Kind: KindBool}
	Int       = Type{Kind: KindInt}
	Double    = Type{Kind: KindDouble}
	String    = Type{Kind: KindString}
	Timestamp = Type{Kind: KindTimestamp}
	Interval  = Type{Kind: KindInterval}
)

// Decimal returns the type decimal(precision, scale).
func Decimal(precision, scale int) Type {
	return Type{Kind: KindDecimal, Precision: uint8(precision), Scale: uint8(scale)}
}

func (t Type) String() string {
	if t.Kind == KindDecimal {
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	}
	return t.Kind.String()
}

// Numeric reports whether t is int, double or decimal.
func (t Type) Numeric() bool {
	return t.Kind == KindInt || t.Kind == KindDouble || t.Kind == KindDecimal
}

// typeNames maps the names a schema may use, including common SQL aliases, to types.
var typeNames = map[string]Type{
	"string": String, "text": String, "varchar": String,
	"bool": Bool, "boolean": Bool,
	"int": Int, "integer": Int, "bigint": Int, "int64": Int, "long": Int,
	"double": Double, "float": Double, "float64": Double, "double precision": Double,
	"timestamp": Timestamp,
	"decimal":   Decimal(MaxDecimalPrecision, 0), "numeric": Decimal(MaxDecimalPrecision, 0),
}

// ParseType parses a schema type name: string, bool, int, double, timestamp or
// decimal(p,s), case-insensitively and with the usual SQL aliases.
func ParseType(s string) (Type, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if t, ok := typeNames[name]; ok {
		return t, nil
	}
	open := strings.IndexByte(name, '(')
	if open < 0 || !strings.HasSuffix(name, ")") {
		return Type{}, fmt.Errorf("unknown type %q (want string, bool, int, double, decimal(p,s) or timestamp)", s)
	}
	base := strings.TrimSpace(name[:open])
	if base != "decimal" && base != "numeric" {
		return Type{}, fmt.Errorf("type %q takes no parameters", base)
	}
	params := strings.Split(name[open+1:len(name)-1], ",")
	if len(params) > 2 {
		return Type{}, fmt.Errorf("decimal takes at most two parameters, precision and scale: %q", s)
	}
	p, err := strconv.Atoi(strings.TrimSpace(params[0]))
	if err != nil {
		return Type{}, fmt.Errorf("decimal precision %q is not a number", params[0])
	}
	sc := 0
	if len(params) == 2 {
		if sc, err = strconv.Atoi(strings.TrimSpace(params[1])); err != nil {
			return Type{}, fmt.Errorf("decimal scale %q is not a number", params[1])
		}
	}
	return DecimalType(p, sc)
}

// DecimalType checks a precision and scale and returns decimal(p,s).
func DecimalType(p, s int) (Type, error) {
	if p < 1 || p > MaxDecimalPrecision {
		return Type{}, fmt.Errorf("decimal precision %d is out of range 1 to %d", p, MaxDecimalPrecision)
	}
	if s < 0 || s > p {
		return Type{}, fmt.Errorf("decimal scale %d is out of range 0 to precision %d", s, p)
	}
	return Decimal(p, s), nil
}

// Value is one SQL value, possibly NULL. The zero Value is NULL.
type Value struct {
	s     string
	n     uint64 // bool (0/1), int, double bits, decimal unscaled, timestamp ns
	kind  Kind
	scale uint8 // decimal scale
}

// NullValue returns NULL.
func NullValue() Value { return Value{} }

// kindPending marks a value not computed yet; no column or expression has it.
const kindPending Kind = 255

// Pending returns the mark of a value not computed yet: the column a
// shared subexpression keeps its value in holds it until the expression is
// first evaluated for the row. It is no SQL value and never leaves the row.
func Pending() Value { return Value{kind: kindPending} }

// IsPending reports whether v is Pending().
func (v Value) IsPending() bool { return v.kind == kindPending }

// BoolValue returns a bool value.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.n = 1
	}
	return v
}

// IntValue returns an int value.
func IntValue(i int64) Value { return Value{kind: KindInt, n: uint64(i)} }

// DoubleValue returns a double value.
func DoubleValue(f float64) Value { return Value{kind: KindDouble, n: math.Float64bits(f)} }

// DecimalValue returns the decimal unscaled × 10^-scale.
func DecimalValue(unscaled int64, scale uint8) Value {
	return Value{kind: KindDecimal, n: uint64(unscaled), scale: scale}
}

// StringValue returns a string value.
func StringValue(s string) Value { return Value{kind: KindString, s: s} }

// TimestampValue returns a timestamp of ns nanoseconds since the Unix epoch, UTC.
func TimestampValue(ns int64) Value { return Value{kind: KindTimestamp, n: uint64(ns)} }

// IntervalValue returns an interval of d nanoseconds.
func IntervalValue(d int64) Value { return Value{kind: KindInterval, n: uint64(d)} }

// TimeValue returns the timestamp of t.
func TimeValue(t time.Time) Value { return TimestampValue(t.UnixNano()) }

// Kind returns the value's kind; KindNull for NULL.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.kind == KindNull }

// Bool returns a bool value's truth.
func (v Value) Bool() bool { return v.n != 0 }

// Int returns an int value.
func (v Value) Int() int64 { return int64(v.n) }

// Double returns a double value.
func (v Value) Double() float64 { return math.Float64frombits(v.n) }

// Unscaled returns a decimal's unscaled integer.
func (v Value) Unscaled() int64 { return int64(v.n) }

// Scale returns a decimal's scale.
func (v Value) Scale() uint8 { return v.scale }

// Str returns a string value.
func (v Value) Str() string { return v.s }

// Nanos returns a timestamp as nanoseconds since the Unix epoch.
func (v Value) Nanos() int64 { return int64(v.n) }

// Time returns a timestamp as a time.Time in UTC.
func (v Value) Time() time.Time { return time.Unix(0, int64(v.n)).UTC() }

// Float returns any numeric value as a float64, for double arithmetic.
func (v Value) Float() float64 {
	switch v.kind {
	case KindInt:
		return float64(int64(v.n))
	case KindDouble:
		return v.Double()
	case KindDecimal:
		return float64(int64(v.n)) / pow10f[v.scale]
	}
	return math.NaN()
}

// String formats v as SQL text would show it; NULL is "NULL".
func (v Value) String() string {
	if v.kind == KindNull {
		return "NULL"
	}
	return string(v.AppendText(nil))
}

// AppendText appends v's text form to dst: the form CSV output and string casts use.
// NULL appends nothing.
func (v Value) AppendText(dst []byte) []byte {
	switch v.kind {
	case KindBool:
		return strconv.AppendBool(dst, v.Bool())
	case KindInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case KindDouble:
		return AppendDouble(dst, v.Double())
	case KindDecimal:
		return AppendDecimal(dst, v.Unscaled(), v.scale)
	case KindString:
		return append(dst, v.s...)
	case KindTimestamp:
		return AppendTimestamp(dst, v.Nanos())
	case KindInterval:
		return append(dst, time.Duration(v.n).String()...)
	}
	return dst
}

// AppendDouble appends f in the shortest form that reads back as f.
func AppendDouble(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// AppendTimestamp appends an RFC 3339 timestamp with as many fractional digits as
// needed, in UTC.
func AppendTimestamp(dst []byte, ns int64) []byte {
	return time.Unix(0, ns).UTC().AppendFormat(dst, time.RFC3339Nano)
}

// Equal reports whether a and b are the same value of the same kind; NULL equals
// NULL here. It is for tests and keys, not SQL's three-valued '='.
func Equal(a, b Value) bool {
	return a == b
}
