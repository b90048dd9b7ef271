package value_test

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/value"
)

// show formats v with its kind, so that failures tell an int 1 from a decimal 1.
func show(v value.Value) string {
	switch v.Kind() {
	case value.KindNull:
		return "NULL"
	case value.KindString:
		return "string " + strconv.Quote(v.Str())
	case value.KindDecimal:
		return "decimal " + v.String() + " (unscaled " + strconv.FormatInt(v.Unscaled(), 10) + ", scale " + strconv.Itoa(int(v.Scale())) + ")"
	}
	return v.Kind().String() + " " + v.String()
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in   string
		want value.Type
	}{
		{"string", value.String},
		{"text", value.String},
		{"varchar", value.String},
		{"STRING", value.String},
		{"  Text\t", value.String},
		{"bool", value.Bool},
		{"boolean", value.Bool},
		{"BOOLEAN", value.Bool},
		{"int", value.Int},
		{"integer", value.Int},
		{"bigint", value.Int},
		{"BigInt", value.Int},
		{"int64", value.Int},
		{"long", value.Int},
		{"double", value.Double},
		{"float", value.Double},
		{"float64", value.Double},
		{"double precision", value.Double},
		{"DOUBLE PRECISION", value.Double},
		{"timestamp", value.Timestamp},
		{"TIMESTAMP", value.Timestamp},
		{"decimal", value.Decimal(18, 0)},
		{"numeric", value.Decimal(18, 0)},
		{"DECIMAL", value.Decimal(18, 0)},
		{"decimal(10,2)", value.Decimal(10, 2)},
		{"DECIMAL(10, 2)", value.Decimal(10, 2)},
		{"numeric(10,2)", value.Decimal(10, 2)},
		{"decimal ( 18 , 18 )", value.Decimal(18, 18)},
		{"decimal(5)", value.Decimal(5, 0)},
		{"numeric(7)", value.Decimal(7, 0)},
		{"decimal(1,0)", value.Decimal(1, 0)},
		{"decimal(1,1)", value.Decimal(1, 1)},
		{"decimal(18,0)", value.Decimal(18, 0)},
		{"decimal(18,4)", value.Decimal(18, 4)},
		{" decimal(3,2) ", value.Decimal(3, 2)},
	}
	for _, tt := range tests {
		got, err := value.ParseType(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseType(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTypeErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // a substring of the error
	}{
		{"", "unknown type"},
		{"   ", "unknown type"},
		{"foo", "unknown type"},
		{"str", "unknown type"},
		{"interval", "unknown type"}, // schemas cannot declare intervals
		{"null", "unknown type"},
		{"double  precision", "unknown type"},
		{"decimal(", "unknown type"},
		{"decimal(10,2", "unknown type"},
		{"decimal)", "unknown type"},
		{"decimal(10,2)x", "unknown type"},
		{"int(5)", `type "int" takes no parameters`},
		{"varchar(255)", `type "varchar" takes no parameters`},
		{"(5)", `type "" takes no parameters`},
		{"decimal()", "precision"},
		{"decimal(x)", `decimal precision "x" is not a number`},
		{"decimal(1.5)", "is not a number"},
		{"decimal(,2)", "is not a number"},
		{"decimal(10,)", "decimal scale"},
		{"decimal(10,y)", `decimal scale "y" is not a number`},
		{"decimal(1,2,3)", "at most two parameters"},
		{"decimal(0)", "precision 0 is out of range 1 to 18"},
		{"decimal(0,0)", "out of range"},
		{"decimal(-1)", "out of range"},
		{"decimal(19)", "precision 19 is out of range 1 to 18"},
		{"decimal(19,2)", "out of range"},
		{"decimal(100000000000000000000)", "is not a number"},
		{"decimal(5,6)", "scale 6 is out of range 0 to precision 5"},
		{"decimal(5,-1)", "scale -1 is out of range"},
		{"numeric(2,3)", "out of range"},
	}
	for _, tt := range tests {
		got, err := value.ParseType(tt.in)
		if err == nil {
			t.Errorf("ParseType(%q) = %v, nil; want error containing %q", tt.in, got, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseType(%q) error = %q; want it to contain %q", tt.in, err, tt.wantErr)
		}
		if got != (value.Type{}) {
			t.Errorf("ParseType(%q) = %v with error; want the zero Type", tt.in, got)
		}
	}
}

// TestParseTypeErrorQuotesInput checks that an unknown type's error shows the
// input as written, not lower-cased.
func TestParseTypeErrorQuotesInput(t *testing.T) {
	_, err := value.ParseType("Widget")
	if err == nil || !strings.Contains(err.Error(), `"Widget"`) {
		t.Errorf(`ParseType("Widget") error = %v; want it to quote "Widget"`, err)
	}
}

func TestDecimalType(t *testing.T) {
	tests := []struct {
		p, s    int
		want    value.Type
		wantErr bool
	}{
		{1, 0, value.Decimal(1, 0), false},
		{18, 18, value.Decimal(18, 18), false},
		{10, 2, value.Decimal(10, 2), false},
		{0, 0, value.Type{}, true},
		{19, 0, value.Type{}, true},
		{-1, 0, value.Type{}, true},
		{5, 6, value.Type{}, true},
		{5, -1, value.Type{}, true},
		{256, 0, value.Type{}, true}, // must not wrap around uint8 to 0
		{257, 1, value.Type{}, true}, // nor to 1
	}
	for _, tt := range tests {
		got, err := value.DecimalType(tt.p, tt.s)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("DecimalType(%d, %d) = %v, %v; want %v, error %t", tt.p, tt.s, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		typ  value.Type
		want string
	}{
		{value.Null, "null"},
		{value.Bool, "bool"},
		{value.Int, "int"},
		{value.Double, "double"},
		{value.String, "string"},
		{value.Timestamp, "timestamp"},
		{value.Interval, "interval"},
		{value.Decimal(18, 4), "decimal(18,4)"},
		{value.Decimal(1, 0), "decimal(1,0)"},
		{value.Type{Kind: value.Kind(99)}, "kind(99)"},
	}
	for _, tt := range tests {
		if got := tt.typ.String(); got != tt.want {
			t.Errorf("%#v.String() = %q; want %q", tt.typ, got, tt.want)
		}
	}
}

// TestParseTypeRoundTrip checks that every declarable type's String parses back.
func TestParseTypeRoundTrip(t *testing.T) {
	types := []value.Type{value.Bool, value.Int, value.Double, value.String, value.Timestamp}
	for p := 1; p <= value.MaxDecimalPrecision; p++ {
		for s := 0; s <= p; s++ {
			types = append(types, value.Decimal(p, s))
		}
	}
	for _, typ := range types {
		got, err := value.ParseType(typ.String())
		if err != nil || got != typ {
			t.Errorf("ParseType(%q) = %v, %v; want %v, nil", typ.String(), got, err, typ)
		}
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    value.Kind
		want string
	}{
		{value.KindNull, "null"},
		{value.KindBool, "bool"},
		{value.KindInt, "int"},
		{value.KindDouble, "double"},
		{value.KindDecimal, "decimal"},
		{value.KindString, "string"},
		{value.KindTimestamp, "timestamp"},
		{value.KindInterval, "interval"},
		{value.Kind(8), "kind(8)"},
		{value.Kind(255), "kind(255)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q; want %q", uint8(tt.k), got, tt.want)
		}
	}
}

func TestTypeNumeric(t *testing.T) {
	tests := []struct {
		typ  value.Type
		want bool
	}{
		{value.Int, true},
		{value.Double, true},
		{value.Decimal(10, 2), true},
		{value.Null, false},
		{value.Bool, false},
		{value.String, false},
		{value.Timestamp, false},
		{value.Interval, false},
	}
	for _, tt := range tests {
		if got := tt.typ.Numeric(); got != tt.want {
			t.Errorf("%v.Numeric() = %t; want %t", tt.typ, got, tt.want)
		}
	}
}

func TestComparable(t *testing.T) {
	tests := []struct {
		a, b value.Type
		want bool
	}{
		{value.Int, value.Int, true},
		{value.Int, value.Double, true},
		{value.Int, value.Decimal(10, 2), true},
		{value.Double, value.Decimal(18, 4), true},
		{value.Decimal(10, 2), value.Decimal(18, 0), true},
		{value.String, value.String, true},
		{value.Bool, value.Bool, true},
		{value.Timestamp, value.Timestamp, true},
		{value.Interval, value.Interval, true},
		{value.Null, value.String, true},
		{value.Int, value.Null, true},
		{value.Null, value.Null, true},
		{value.String, value.Int, false},
		{value.Bool, value.Int, false},
		{value.Timestamp, value.Int, false},
		{value.Timestamp, value.Interval, false},
		{value.Decimal(10, 2), value.String, false},
	}
	for _, tt := range tests {
		if got := value.Comparable(tt.a, tt.b); got != tt.want {
			t.Errorf("Comparable(%v, %v) = %t; want %t", tt.a, tt.b, got, tt.want)
		}
		if got := value.Comparable(tt.b, tt.a); got != tt.want {
			t.Errorf("Comparable(%v, %v) = %t; want %t", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestValueString(t *testing.T) {
	ts := time.Date(2024, 1, 2, 15, 4, 5, 123000000, time.UTC).UnixNano()
	tests := []struct {
		v    value.Value
		kind value.Kind
		want string
	}{
		{value.NullValue(), value.KindNull, "NULL"},
		{value.Value{}, value.KindNull, "NULL"},
		{value.BoolValue(true), value.KindBool, "true"},
		{value.BoolValue(false), value.KindBool, "false"},
		{value.IntValue(0), value.KindInt, "0"},
		{value.IntValue(-42), value.KindInt, "-42"},
		{value.IntValue(math.MaxInt64), value.KindInt, "9223372036854775807"},
		{value.IntValue(math.MinInt64), value.KindInt, "-9223372036854775808"},
		{value.DoubleValue(1.5), value.KindDouble, "1.5"},
		{value.DoubleValue(0.1), value.KindDouble, "0.1"},
		{value.DoubleValue(100), value.KindDouble, "100"},
		{value.DoubleValue(-2.25), value.KindDouble, "-2.25"},
		{value.DoubleValue(1e21), value.KindDouble, "1e+21"},
		{value.DoubleValue(1e-7), value.KindDouble, "1e-07"},
		{value.DoubleValue(math.Copysign(0, -1)), value.KindDouble, "-0"},
		{value.DoubleValue(math.NaN()), value.KindDouble, "NaN"},
		{value.DoubleValue(math.Inf(1)), value.KindDouble, "+Inf"},
		{value.DoubleValue(math.Inf(-1)), value.KindDouble, "-Inf"},
		{value.DecimalValue(12345, 2), value.KindDecimal, "123.45"},
		{value.DecimalValue(-5, 1), value.KindDecimal, "-0.5"},
		{value.DecimalValue(7, 0), value.KindDecimal, "7"},
		{value.DecimalValue(1, 4), value.KindDecimal, "0.0001"},
		{value.DecimalValue(100, 2), value.KindDecimal, "1.00"},
		{value.StringValue("héllo"), value.KindString, "héllo"},
		{value.StringValue(""), value.KindString, ""},
		{value.StringValue("NULL"), value.KindString, "NULL"},
		{value.TimestampValue(0), value.KindTimestamp, "1970-01-01T00:00:00Z"},
		{value.TimestampValue(ts), value.KindTimestamp, "2024-01-02T15:04:05.123Z"},
		{value.TimestampValue(1), value.KindTimestamp, "1970-01-01T00:00:00.000000001Z"},
		{value.TimestampValue(-1), value.KindTimestamp, "1969-12-31T23:59:59.999999999Z"},
		{value.IntervalValue(0), value.KindInterval, "0s"},
		{value.IntervalValue(int64(1500 * time.Millisecond)), value.KindInterval, "1.5s"},
		{value.IntervalValue(int64(-90 * time.Minute)), value.KindInterval, "-1h30m0s"},
		{value.IntervalValue(1), value.KindInterval, "1ns"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%s value %+v: String() = %q; want %q", tt.kind, tt.v, got, tt.want)
		}
		if got := tt.v.Kind(); got != tt.kind {
			t.Errorf("(%s).Kind() = %v; want %v", show(tt.v), got, tt.kind)
		}
		if got, want := tt.v.IsNull(), tt.kind == value.KindNull; got != want {
			t.Errorf("(%s).IsNull() = %t; want %t", show(tt.v), got, want)
		}
		// AppendText is String except for NULL, which appends nothing.
		want := tt.want
		if tt.kind == value.KindNull {
			want = ""
		}
		if got := string(tt.v.AppendText([]byte("x="))); got != "x="+want {
			t.Errorf("(%s).AppendText(%q) = %q; want %q", show(tt.v), "x=", got, "x="+want)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	if v := value.BoolValue(true); !v.Bool() {
		t.Errorf("BoolValue(true).Bool() = false; want true")
	}
	if v := value.BoolValue(false); v.Bool() {
		t.Errorf("BoolValue(false).Bool() = true; want false")
	}
	for _, i := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		if got := value.IntValue(i).Int(); got != i {
			t.Errorf("IntValue(%d).Int() = %d", i, got)
		}
	}
	for _, f := range []float64{0, 1.5, -2.25, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1)} {
		if got := value.DoubleValue(f).Double(); got != f {
			t.Errorf("DoubleValue(%v).Double() = %v", f, got)
		}
	}
	if got := value.DoubleValue(math.NaN()).Double(); !math.IsNaN(got) {
		t.Errorf("DoubleValue(NaN).Double() = %v; want NaN", got)
	}
	if got := value.DoubleValue(math.Copysign(0, -1)).Double(); got != 0 || !math.Signbit(got) {
		t.Errorf("DoubleValue(-0).Double() = %v; want -0", got)
	}
	for _, d := range []struct {
		u int64
		s uint8
	}{{12345, 2}, {-1, 18}, {math.MaxInt64, 0}, {math.MinInt64, 18}, {0, 4}} {
		v := value.DecimalValue(d.u, d.s)
		if v.Unscaled() != d.u || v.Scale() != d.s {
			t.Errorf("DecimalValue(%d, %d): Unscaled, Scale = %d, %d", d.u, d.s, v.Unscaled(), v.Scale())
		}
	}
	for _, s := range []string{"", "a", "héllo, 世界", "\x00\xff"} {
		if got := value.StringValue(s).Str(); got != s {
			t.Errorf("StringValue(%q).Str() = %q", s, got)
		}
	}
	for _, ns := range []int64{0, 1, -1, 1704207845123456789, math.MaxInt64, math.MinInt64} {
		v := value.TimestampValue(ns)
		if got := v.Nanos(); got != ns {
			t.Errorf("TimestampValue(%d).Nanos() = %d", ns, got)
		}
		if got := v.Time(); got.UnixNano() != ns || got.Location() != time.UTC {
			t.Errorf("TimestampValue(%d).Time() = %v (%d ns, %v); want %d ns in UTC", ns, got, got.UnixNano(), got.Location(), ns)
		}
	}
	if got := value.IntervalValue(-5).Nanos(); got != -5 {
		t.Errorf("IntervalValue(-5).Nanos() = %d; want -5", got)
	}
}

func TestTimeValue(t *testing.T) {
	tests := []time.Time{
		time.Date(2024, 1, 2, 15, 4, 5, 123456789, time.UTC),
		time.Date(2024, 1, 2, 16, 4, 5, 0, time.FixedZone("CET", 3600)),
		time.Unix(0, 0),
		time.Date(1900, 6, 30, 0, 0, 0, 1, time.UTC),
	}
	for _, tm := range tests {
		v := value.TimeValue(tm)
		if v.Kind() != value.KindTimestamp {
			t.Errorf("TimeValue(%v).Kind() = %v; want timestamp", tm, v.Kind())
		}
		if got := v.Time(); !got.Equal(tm) || got.Location() != time.UTC {
			t.Errorf("TimeValue(%v).Time() = %v; want the same instant in UTC", tm, got)
		}
	}
}

func TestValueFloat(t *testing.T) {
	tests := []struct {
		v    value.Value
		want float64 // NaN for non-numeric kinds
	}{
		{value.IntValue(-42), -42},
		{value.IntValue(1 << 53), 1 << 53},
		{value.DoubleValue(2.5), 2.5},
		{value.DecimalValue(12345, 2), 123.45},
		{value.DecimalValue(-5, 1), -0.5},
		{value.DecimalValue(1, 18), 1e-18},
		{value.DecimalValue(7, 0), 7},
		{value.NullValue(), math.NaN()},
		{value.StringValue("1"), math.NaN()},
		{value.BoolValue(true), math.NaN()},
		{value.TimestampValue(1), math.NaN()},
	}
	for _, tt := range tests {
		got := tt.v.Float()
		if math.IsNaN(tt.want) {
			if !math.IsNaN(got) {
				t.Errorf("(%s).Float() = %v; want NaN", show(tt.v), got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("(%s).Float() = %v; want %v", show(tt.v), got, tt.want)
		}
	}
}

func TestEqual(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		a, b value.Value
		want bool
	}{
		{value.NullValue(), value.Value{}, true},
		{value.IntValue(1), value.IntValue(1), true},
		{value.IntValue(1), value.IntValue(2), false},
		{value.IntValue(0), value.NullValue(), false},
		{value.IntValue(1), value.DecimalValue(1, 0), false},
		{value.IntValue(1), value.DoubleValue(1), false},
		{value.IntValue(5), value.TimestampValue(5), false},
		{value.TimestampValue(5), value.IntervalValue(5), false},
		{value.BoolValue(true), value.IntValue(1), false},
		{value.BoolValue(true), value.BoolValue(true), true},
		{value.BoolValue(false), value.NullValue(), false},
		{value.DecimalValue(10, 1), value.DecimalValue(10, 1), true},
		{value.DecimalValue(10, 1), value.DecimalValue(1, 0), false}, // same number, different scale
		{value.DoubleValue(0), value.DoubleValue(math.Copysign(0, -1)), false},
		{value.DoubleValue(nan), value.DoubleValue(nan), true}, // same bits
		{value.StringValue("a"), value.StringValue("a"), true},
		{value.StringValue("a"), value.StringValue("A"), false},
		{value.StringValue(""), value.NullValue(), false},
		{value.StringValue("1"), value.IntValue(1), false},
	}
	for _, tt := range tests {
		if got := value.Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%s, %s) = %t; want %t", show(tt.a), show(tt.b), got, tt.want)
		}
		if got := value.Equal(tt.b, tt.a); got != tt.want {
			t.Errorf("Equal(%s, %s) = %t; want %t", show(tt.b), show(tt.a), got, tt.want)
		}
	}
	// Strings compare by content, not by the memory that holds them.
	a, b := value.StringValue(strings.Repeat("x", 3)), value.StringValue(string([]byte("xxx")))
	if !value.Equal(a, b) {
		t.Errorf("Equal of two equal strings in different memory = false; want true")
	}
}

func TestCompare(t *testing.T) {
	ts := func(s string) value.Value {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return value.TimeValue(tm)
	}
	tests := []struct {
		a, b value.Value
		want int
	}{
		// Same kinds.
		{value.IntValue(1), value.IntValue(2), -1},
		{value.IntValue(-5), value.IntValue(-5), 0},
		{value.IntValue(math.MaxInt64), value.IntValue(math.MinInt64), 1},
		{value.DoubleValue(1.5), value.DoubleValue(1.25), 1},
		{value.DoubleValue(0), value.DoubleValue(math.Copysign(0, -1)), 0},
		{value.DoubleValue(math.Inf(-1)), value.DoubleValue(-math.MaxFloat64), -1},
		{value.StringValue("a"), value.StringValue("b"), -1},
		{value.StringValue(""), value.StringValue("a"), -1},
		{value.StringValue("abc"), value.StringValue("ab"), 1},
		{value.StringValue("é"), value.StringValue("z"), 1}, // bytewise
		{value.StringValue("B"), value.StringValue("a"), -1},
		{value.BoolValue(false), value.BoolValue(true), -1},
		{value.BoolValue(true), value.BoolValue(true), 0},
		{ts("2024-01-02T15:04:05Z"), ts("2024-01-02T15:04:05.000000001Z"), -1},
		{ts("1969-12-31T23:59:59Z"), ts("1970-01-01T00:00:00Z"), -1},
		{ts("2024-01-02T16:04:05+01:00"), ts("2024-01-02T15:04:05Z"), 0},
		{value.IntervalValue(-1), value.IntervalValue(1), -1},
		{value.DecimalValue(15, 1), value.DecimalValue(150, 2), 0},
		{value.DecimalValue(1, 0), value.DecimalValue(999, 3), 1},
		{value.DecimalValue(-1, 0), value.DecimalValue(-999, 3), -1},
		{value.DecimalValue(math.MaxInt64, 0), value.DecimalValue(math.MaxInt64, 18), 1},
		// int against decimal: exact.
		{value.IntValue(1), value.DecimalValue(10, 1), 0},
		{value.IntValue(2), value.DecimalValue(15, 1), 1},
		{value.DecimalValue(15, 1), value.IntValue(2), -1},
		{value.IntValue(-1), value.DecimalValue(-1, 18), -1},
		{value.IntValue(0), value.DecimalValue(0, 18), 0},
		{value.IntValue(math.MaxInt64), value.DecimalValue(math.MaxInt64, 18), 1}, // rescaling overflows
		{value.IntValue(math.MinInt64), value.DecimalValue(math.MinInt64, 18), -1},
		{value.IntValue(9), value.DecimalValue(math.MaxInt64, 18), -1},
		{value.IntValue(10), value.DecimalValue(math.MaxInt64, 18), 1},
		// A double on either side: compared as doubles.
		{value.IntValue(1), value.DoubleValue(1.5), -1},
		{value.DoubleValue(2), value.IntValue(2), 0},
		{value.IntValue(-3), value.DoubleValue(-3.5), 1},
		{value.DecimalValue(1, 1), value.DoubleValue(0.1), 0},
		{value.DecimalValue(25, 1), value.DoubleValue(2.4), 1},
		{value.DoubleValue(-0.5), value.DecimalValue(-5, 1), 0},
		{value.DoubleValue(math.Inf(1)), value.IntValue(math.MaxInt64), 1},
		// Documented: as doubles, 2^53+1 rounds to 2^53.
		{value.IntValue(1<<53 + 1), value.DoubleValue(1 << 53), 0},
	}
	for _, tt := range tests {
		if got := value.Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d; want %d", show(tt.a), show(tt.b), got, tt.want)
		}
		if got := value.Compare(tt.b, tt.a); got != -tt.want {
			t.Errorf("Compare(%s, %s) = %d; want %d", show(tt.b), show(tt.a), got, -tt.want)
		}
	}
}

// TestCompareNaN documents that NaN sorts before every other double and
// equals itself, as cmp.Compare orders it, so that sorting is total.
func TestCompareNaN(t *testing.T) {
	nan := value.DoubleValue(math.NaN())
	tests := []struct {
		a, b value.Value
		want int
	}{
		{nan, nan, 0},
		{nan, value.DoubleValue(math.Inf(-1)), -1},
		{value.DoubleValue(0), nan, 1},
		{nan, value.IntValue(0), -1},
	}
	for _, tt := range tests {
		if got := value.Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d; want %d", show(tt.a), show(tt.b), got, tt.want)
		}
	}
}
