package format_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// cols is the schema most tests decode into: one column of each type.
var cols = []value.Column{
	{Name: "s", Type: value.String},
	{Name: "b", Type: value.Bool},
	{Name: "i", Type: value.Int},
	{Name: "d", Type: value.Double},
	{Name: "dec", Type: value.Decimal(18, 4)},
	{Name: "ts", Type: value.Timestamp},
}

func colNames(cs []value.Column) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
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

func showRow(r value.Row) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = show(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func rowsEqual(a, b value.Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !value.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// tsv parses an RFC 3339 timestamp for a want row.
func tsv(t testing.TB, s string) value.Value {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return value.TimeValue(tm)
}

// row builds a row of len(cols) values from column name/value pairs; the
// others are NULL.
func row(t testing.TB, cs []value.Column, kv ...any) value.Row {
	t.Helper()
	r := make(value.Row, len(cs))
	for i := 0; i < len(kv); i += 2 {
		name, v := kv[i].(string), kv[i+1].(value.Value)
		found := false
		for j, c := range cs {
			if c.Name == name {
				r[j], found = v, true
			}
		}
		if !found {
			t.Fatalf("row: no column %q", name)
		}
	}
	return r
}

func dec(unscaled int64) value.Value { return value.DecimalValue(unscaled, 4) }

func TestJSONDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want value.Row
	}{
		{
			name: "all types",
			in:   `{"s":"hello","b":true,"i":-42,"d":1.5,"dec":123.4567,"ts":"2024-01-02T15:04:05.123Z"}`,
			want: value.Row{value.StringValue("hello"), value.BoolValue(true), value.IntValue(-42), value.DoubleValue(1.5), dec(1234567), tsv(t, "2024-01-02T15:04:05.123Z")},
		},
		{
			name: "keys in another order",
			in:   `{"ts":"2024-01-02T15:04:05Z","dec":-0.5,"d":-2,"i":0,"b":false,"s":""}`,
			want: value.Row{value.StringValue(""), value.BoolValue(false), value.IntValue(0), value.DoubleValue(-2), dec(-5000), tsv(t, "2024-01-02T15:04:05Z")},
		},
		{
			name: "whitespace everywhere",
			in:   " \t{ \"s\" : \"x\" ,\r\n\"i\"\t:\t1 , \"b\" : true }\r\n ",
			want: row(t, cols, "s", value.StringValue("x"), "i", value.IntValue(1), "b", value.BoolValue(true)),
		},
		// Keys that begin like the expected one, or spell it another way,
		// are not taken for it.
		{name: "key extending the expected one", in: `{"si":"no","s":"yes"}`, want: row(t, cols, "s", value.StringValue("yes"))},
		{name: "expected key, then a space", in: `{"s" :"x","b" : true}`, want: row(t, cols, "s", value.StringValue("x"), "b", value.BoolValue(true))},
		{name: "expected key escaped", in: `{"\u0073":"x","\u0062":true}`, want: row(t, cols, "s", value.StringValue("x"), "b", value.BoolValue(true))},
		{name: "duplicate key, the last wins", in: `{"s":"first","s":"second","b":true}`, want: row(t, cols, "s", value.StringValue("second"), "b", value.BoolValue(true))},
		{name: "key with a quote", in: `{"s\"":"no","s":"yes"}`, want: row(t, cols, "s", value.StringValue("yes"))},
		{name: "empty object", in: `{}`, want: row(t, cols)},
		{name: "empty object with spaces", in: ` { } `, want: row(t, cols)},
		{
			name: "timestamp as integer epoch milliseconds",
			in:   `{"ts":1704207845123}`,
			want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05.123Z")),
		},
		{name: "timestamp zero milliseconds", in: `{"ts":0}`, want: row(t, cols, "ts", value.TimestampValue(0))},
		{name: "timestamp negative milliseconds", in: `{"ts":-1}`, want: row(t, cols, "ts", value.TimestampValue(-1e6))},
		{name: "timestamp with offset", in: `{"ts":"2024-01-02T16:04:05+01:00"}`, want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05Z"))},
		{name: "timestamp with nanoseconds", in: `{"ts":"2024-01-02T15:04:05.123456789Z"}`, want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05.123456789Z"))},
		{name: "timestamp with a space", in: `{"ts":"2024-01-02 15:04:05.5"}`, want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05.5Z"))},
		{name: "timestamp date only", in: `{"ts":"2024-01-02"}`, want: row(t, cols, "ts", tsv(t, "2024-01-02T00:00:00Z"))},
		{
			name: "quoted numbers",
			in:   `{"i":"42","d":"2.5","dec":"1.23456"}`,
			want: row(t, cols, "i", value.IntValue(42), "d", value.DoubleValue(2.5), "dec", dec(12346)),
		},
		{name: "quoted negative int", in: `{"i":"-7"}`, want: row(t, cols, "i", value.IntValue(-7))},
		{name: "quoted number with escapes", in: `{"i":"\u0034\u0032"}`, want: row(t, cols, "i", value.IntValue(42))},
		{name: "int max", in: `{"i":9223372036854775807}`, want: row(t, cols, "i", value.IntValue(math.MaxInt64))},
		{name: "int min", in: `{"i":-9223372036854775808}`, want: row(t, cols, "i", value.IntValue(math.MinInt64))},
		{name: "double exponent", in: `{"d":-1.5e-3}`, want: row(t, cols, "d", value.DoubleValue(-1.5e-3))},
		{name: "double capital exponent", in: `{"d":2E+10}`, want: row(t, cols, "d", value.DoubleValue(2e10))},
		{name: "double integer", in: `{"d":7}`, want: row(t, cols, "d", value.DoubleValue(7))},
		{name: "double negative zero", in: `{"d":-0}`, want: row(t, cols, "d", value.DoubleValue(math.Copysign(0, -1)))},
		{name: "double max", in: `{"d":1.7976931348623157e308}`, want: row(t, cols, "d", value.DoubleValue(math.MaxFloat64))},
		{name: "decimal rounds half away from zero", in: `{"dec":0.00005}`, want: row(t, cols, "dec", dec(1))},
		{name: "decimal negative rounds away from zero", in: `{"dec":-0.00005}`, want: row(t, cols, "dec", dec(-1))},
		{name: "decimal below half", in: `{"dec":0.00004999}`, want: row(t, cols, "dec", dec(0))},
		{name: "decimal exponent", in: `{"dec":1e2}`, want: row(t, cols, "dec", dec(1000000))},
		{name: "decimal negative exponent", in: `{"dec":1.5E-2}`, want: row(t, cols, "dec", dec(150))},
		{name: "decimal integer", in: `{"dec":12}`, want: row(t, cols, "dec", dec(120000))},
		{name: "decimal largest of precision 18", in: `{"dec":99999999999999.9999}`, want: row(t, cols, "dec", dec(999999999999999999))},
		{name: "decimal exact beyond a double", in: `{"dec":12345678901234.5678}`, want: row(t, cols, "dec", dec(123456789012345678))},
		{name: "bool false", in: `{"b":false}`, want: row(t, cols, "b", value.BoolValue(false))},
		{
			name: "nulls",
			in:   `{"s":null,"b":null,"i":null,"d":null,"dec":null,"ts":null}`,
			want: row(t, cols),
		},
		{name: "null with spaces", in: `{"i" : null , "s":"a"}`, want: row(t, cols, "s", value.StringValue("a"))},
		{name: "missing keys", in: `{"i":1}`, want: row(t, cols, "i", value.IntValue(1))},
		{
			name: "unknown keys skipped",
			in:   `{"x":1,"s":"a","y":"str","z":true,"w":null,"v":-1.5e3}`,
			want: row(t, cols, "s", value.StringValue("a")),
		},
		{
			name: "unknown nested object and array skipped",
			in:   `{"obj":{"a":[1,2,{"b":"}"}],"c":{},"d":{"e":{"f":[]}}},"s":"a","arr":[[],[[]],"]",{"k":"v"}, null, true],"i":2}`,
			want: row(t, cols, "s", value.StringValue("a"), "i", value.IntValue(2)),
		},
		{
			name: "unknown nested with whitespace",
			in:   `{"obj" : { "a" : [ 1 , { } ] } , "i" : 3 }`,
			want: row(t, cols, "i", value.IntValue(3)),
		},
		{
			name: "unknown string with escaped quote and brace",
			in:   `{"x":"a\"}b\\","s":"ok"}`,
			want: row(t, cols, "s", value.StringValue("ok")),
		},
		{name: "unknown key nested 65 deep, the most skip takes", in: `{"x":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `,"i":1}`, want: row(t, cols, "i", value.IntValue(1))},
		{name: "key that is a prefix of a column", in: `{"de":1,"dec2":2,"S":"x"}`, want: row(t, cols)},
		{name: "escapes", in: `{"s":"a\"b\\c\/d\b\f\n\r\t"}`, want: row(t, cols, "s", value.StringValue("a\"b\\c/d\b\f\n\r\t"))},
		{name: "unicode escape", in: `{"s":"caf\u00e9"}`, want: row(t, cols, "s", value.StringValue("café"))},
		{name: "unicode escape upper-case hex", in: `{"s":"\u20AC"}`, want: row(t, cols, "s", value.StringValue("€"))},
		{name: "unicode escape NUL", in: `{"s":"a\u0000b"}`, want: row(t, cols, "s", value.StringValue("a\x00b"))},
		{name: "surrogate pair", in: `{"s":"\ud83d\ude00"}`, want: row(t, cols, "s", value.StringValue("😀"))},
		{name: "surrogate pair upper-case", in: `{"s":"x\uD834\uDD1Ey"}`, want: row(t, cols, "s", value.StringValue("x𝄞y"))},
		{name: "lone high surrogate", in: `{"s":"\ud800"}`, want: row(t, cols, "s", value.StringValue("\uFFFD"))},
		{name: "lone low surrogate", in: `{"s":"\udc00x"}`, want: row(t, cols, "s", value.StringValue("\uFFFDx"))},
		{name: "high surrogate then a letter escape", in: `{"s":"\ud83d\u0041"}`, want: row(t, cols, "s", value.StringValue("\uFFFDA"))},
		{name: "high surrogate then text", in: `{"s":"\ud83dabcdef"}`, want: row(t, cols, "s", value.StringValue("\uFFFDabcdef"))},
		{name: "raw UTF-8", in: `{"s":"héllo 世界 😀"}`, want: row(t, cols, "s", value.StringValue("héllo 世界 😀"))},
		{name: "escaped key", in: `{"\u0073":"x"}`, want: row(t, cols, "s", value.StringValue("x"))},
		{name: "escaped key with quote", in: `{"a\"b":"y","s":"x"}`, want: row(t, cols, "s", value.StringValue("x"))},
		{name: "duplicate keys: last wins", in: `{"i":1,"i":2}`, want: row(t, cols, "i", value.IntValue(2))},
		{name: "duplicate keys: last null wins", in: `{"s":"a","s":null}`, want: row(t, cols)},
		{name: "duplicate keys: null then value", in: `{"i":null,"i":3}`, want: row(t, cols, "i", value.IntValue(3))},
		{name: "empty string is not NULL", in: `{"s":""}`, want: row(t, cols, "s", value.StringValue(""))},
		{name: "numeric string column", in: `{"s":"123"}`, want: row(t, cols, "s", value.StringValue("123"))},
		{name: "string null is a string", in: `{"s":"null"}`, want: row(t, cols, "s", value.StringValue("null"))},
	}
	d := format.NewJSONDecoder(cols)
	for _, tt := range tests {
		got := make(value.Row, len(cols))
		if err := d.Decode([]byte(tt.in), got); err != nil {
			t.Errorf("%s: Decode(%q) = %v; want nil", tt.name, tt.in, err)
			continue
		}
		for i := range got {
			if !value.Equal(got[i], tt.want[i]) {
				t.Errorf("%s: Decode(%q): %s = %s; want %s", tt.name, tt.in, cols[i].Name, show(got[i]), show(tt.want[i]))
			}
		}
	}
}

// TestJSONDecodeStringAliasesLine checks the documented zero-copy contract: a
// string without escapes points into the line; one with escapes does not.
func TestJSONDecodeStringAliasesLine(t *testing.T) {
	d := format.NewJSONDecoder(cols)
	line := []byte(`{"s":"abc"}`)
	r := make(value.Row, len(cols))
	if err := d.Decode(line, r); err != nil {
		t.Fatal(err)
	}
	line[6] = 'X'
	if got := r[0].Str(); got != "Xbc" {
		t.Errorf("after changing the line, the decoded string = %q; want %q (it should alias the line)", got, "Xbc")
	}

	line = []byte(`{"s":"a\nc"}`)
	if err := d.Decode(line, r); err != nil {
		t.Fatal(err)
	}
	line[6] = 'X'
	if got := r[0].Str(); got != "a\nc" {
		t.Errorf("after changing the line, the unescaped string = %q; want %q (it should be a copy)", got, "a\nc")
	}
}

func TestJSONDecodeErrors(t *testing.T) {
	deep := `{"x":` + strings.Repeat("[", 66) + strings.Repeat("]", 66) + `}`
	tests := []struct {
		name    string
		in      string
		wantErr string // a substring of the error text
		offset  int    // the SyntaxError offset; -1 if the error is not a SyntaxError
	}{
		// Malformed JSON: SyntaxError, with the byte offset in the text (1-based).
		{"empty line", "", "invalid JSON at byte 1: want an object", 0},
		{"blank line", "   ", "invalid JSON at byte 4: want an object", 3},
		{"array", `[1]`, "want an object", 0},
		{"bare string", `"s"`, "want an object", 0},
		{"binary garbage", "\x00\xff\xfe\x01", "want an object", 0},
		{"truncated: open brace", `{`, "invalid JSON at byte 2: want a string", 1},
		{"truncated: after key", `{"s"`, "want ':' after a key", 4},
		{"truncated: after colon", `{"s":`, "want a value", 5},
		{"truncated: in string", `{"s":"abc`, "unterminated string", 9},
		{"truncated: in key", `{"s`, "unterminated string", 3},
		{"truncated: after value", `{"s":"a"`, "want ',' or '}'", 8},
		{"truncated: after number", `{"i":1`, "want ',' or '}'", 6},
		{"truncated: after comma", `{"s":"a",`, "want a string", 9},
		{"truncated: unknown object", `{"x":{"a":1`, "want ',' or a closing bracket", 11},
		{"truncated: unknown array", `{"x":[1,2`, "want ',' or a closing bracket", 9},
		{"trailing comma", `{"s":"a",}`, "want a string", 9},
		{"trailing garbage", `{"s":"a"}x`, "invalid JSON at byte 10: unexpected data after the object", 9},
		{"two objects", `{"s":"a"} {"s":"b"}`, "unexpected data after the object", 10},
		{"trailing NUL", "{}\x00", "unexpected data after the object", 2},
		{"missing comma", `{"s":"a" "i":1}`, "want ',' or '}'", 9},
		{"two numbers", `{"i":1 2}`, "want ',' or '}'", 7},
		{"missing value", `{"i":}`, "want a value", 5},
		{"missing value before comma", `{"i":,"s":"a"}`, "want a value", 5},
		{"bare word", `{"s":tru}`, "want a value", 5},
		{"unquoted key", `{s:1}`, "want a string", 1},
		{"single-quoted key", `{'s':1}`, "want a string", 1},
		{"single-quoted value", `{"s":'a'}`, "want a value", 5},
		{"plus sign", `{"i":+1}`, "want a value", 5},
		{"leading dot", `{"d":.5}`, "want a value", 5},
		{"NaN literal", `{"d":NaN}`, "want a value", 5},
		{"Infinity literal", `{"d":Infinity}`, "want a value", 5},
		{"invalid escape", `{"s":"a\x"}`, "invalid escape in a string", 5},
		{"short unicode escape", `{"s":"\u12"}`, "invalid escape", 5},
		{"non-hex unicode escape", `{"s":"\u12g4"}`, "invalid escape", 5},
		{"signed unicode escape", `{"s":"\u+123"}`, "invalid escape", 5},
		{"control character", "{\"s\":\"a\x01b\"}", "control character in a string", 7},
		{"raw newline in string", "{\"s\":\"a\nb\"}", "control character", 7},
		{"raw tab in string", "{\"s\":\"a\tb\"}", "control character", 7},
		{"control character in key", "{\"\x1f\":1}", "control character", 2},
		{"nested too deeply", deep, "nested too deeply", 70},
		{"nested too deeply, objects", `{"x":` + strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70) + `}`, "nested too deeply", 5 + 65*5},
		{"unknown object without colon", `{"x":{"a"}}`, "want ':' after a key", 9},
		{"unknown object with bad key", `{"x":{1:2}}`, "want a string", 6},
		{"unknown array trailing comma", `{"x":[1,]}`, "want a value", 8},
		{"unknown array missing comma", `{"x":["a" "b"]}`, "want ',' or a closing bracket", 10},
		{"unknown string unterminated", `{"x":"abc}`, "unterminated string", 10},

		// Well-formed JSON of the wrong type or value: errors name the column.
		{"string for int", `{"i":"abc"}`, `column i: invalid int "abc"`, -1},
		{"fraction string for int", `{"i":"1.5"}`, `column i: invalid int "1.5"`, -1},
		{"empty string for int", `{"i":""}`, "column i: invalid int", -1},
		{"fraction for int", `{"i":1.5}`, `column i: invalid int "1.5"`, -1},
		{"exponent for int", `{"i":1e3}`, `column i: invalid int "1e3"`, -1},
		{"int too large", `{"i":9223372036854775808}`, "column i: int \"9223372036854775808\" out of range", -1},
		{"int too small", `{"i":-9223372036854775809}`, "out of range", -1},
		{"bare minus for int", `{"i":-}`, "want a value", 5},
		{"bool for int", `{"i":true}`, "column i: want int, got a JSON bool", -1},
		{"object for int", `{"i":{}}`, "column i: want int, got a JSON object", -1},
		{"object for string", `{"s":{"a":1}}`, "column s: want string, got a JSON object", -1},
		{"array for string", `{"s":[1,"a"]}`, "column s: want string, got a JSON array", -1},
		{"number for string", `{"s":1}`, "column s: want string, got a JSON number", -1},
		{"bool for string", `{"s":true}`, "column s: want string, got a JSON bool", -1},
		{"string for bool", `{"b":"true"}`, "column b: want bool, got a JSON string", -1},
		{"number for bool", `{"b":1}`, "column b: want bool, got a JSON number", -1},
		{"string for double", `{"d":"abc"}`, `column d: invalid double "abc"`, -1},
		{"double out of range", `{"d":1e999}`, `column d: invalid number "1e999"`, -1},
		{"bool for double", `{"d":false}`, "column d: want double, got a JSON bool", -1},
		{"string for decimal", `{"dec":"abc"}`, `column dec: invalid decimal(18,4) "abc"`, -1},
		{"decimal beyond precision", `{"dec":123456789012345.5}`, `column dec: "123456789012345.5" does not fit decimal(18,4)`, -1},
		{"decimal beyond int64", `{"dec":1e30}`, "numeric field overflow", -1},
		{"array for decimal", `{"dec":[1]}`, "column dec: want decimal(18,4), got a JSON array", -1},
		{"string for timestamp", `{"ts":"yesterday"}`, `column ts: invalid timestamp "yesterday"`, -1},
		{"fractional milliseconds", `{"ts":1.5}`, "column ts: a numeric timestamp must be integer milliseconds since the epoch", -1},
		{"bool for timestamp", `{"ts":true}`, "column ts: want timestamp, got a JSON bool", -1},
		{"invalid UTF-8", "{\"s\":\"a\xffb\"}", "column s: invalid UTF-8", -1},
		{"truncated UTF-8 sequence", "{\"s\":\"\xc3\"}", "column s: invalid UTF-8", -1},
		{"UTF-8 surrogate half", "{\"s\":\"\xed\xa0\x80\"}", "column s: invalid UTF-8", -1},
		{"overlong UTF-8", "{\"s\":\"\xc0\xaf\"}", "column s: invalid UTF-8", -1},
		{"invalid UTF-8 with escapes", "{\"s\":\"\\n\xff\"}", "column s: invalid UTF-8", -1},
		{"invalid UTF-8 in a quoted int", "{\"i\":\"\xff\"}", "column i: invalid UTF-8", -1},
		{"error in a later duplicate", `{"i":1,"i":"x"}`, "column i: invalid int", -1},
	}
	d := format.NewJSONDecoder(cols)
	for _, tt := range tests {
		r := make(value.Row, len(cols))
		err := d.Decode([]byte(tt.in), r)
		if err == nil {
			t.Errorf("%s: Decode(%q) = nil, row %s; want error containing %q", tt.name, tt.in, showRow(r), tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Decode(%q) = %q; want error containing %q", tt.name, tt.in, err, tt.wantErr)
		}
		var se *format.SyntaxError
		isSyntax := errors.As(err, &se)
		switch {
		case tt.offset >= 0 && !isSyntax:
			t.Errorf("%s: Decode(%q) = %q (%T); want a *SyntaxError", tt.name, tt.in, err, err)
		case tt.offset >= 0 && se.Offset != tt.offset:
			t.Errorf("%s: Decode(%q) SyntaxError offset = %d; want %d", tt.name, tt.in, se.Offset, tt.offset)
		case tt.offset < 0 && isSyntax:
			t.Errorf("%s: Decode(%q) = %q; want a type or value error, not a SyntaxError", tt.name, tt.in, err)
		}
		if isSyntax && (se.Offset < 0 || se.Offset > len(tt.in)) {
			t.Errorf("%s: Decode(%q) SyntaxError offset = %d; want it within the line (0 to %d)", tt.name, tt.in, se.Offset, len(tt.in))
		}
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	err := &format.SyntaxError{Offset: 9, Msg: "unexpected data after the object"}
	if got, want := err.Error(), "invalid JSON at byte 10: unexpected data after the object"; got != want {
		t.Errorf("SyntaxError.Error() = %q; want %q", got, want)
	}
}

// TestJSONDecodeTrailingBackslashOffset checks the offset of a string cut off
// right after a backslash.
func TestJSONDecodeTrailingBackslashOffset(t *testing.T) {

	for _, in := range []string{`{"s":"\`, `{"s":"ab\`, `{"\`, `{"x":["\`} {
		err := format.NewJSONDecoder(cols).Decode([]byte(in), make(value.Row, len(cols)))
		var se *format.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Decode(%q) = %v; want a *SyntaxError", in, err)
			continue
		}
		if se.Offset != len(in) {
			t.Errorf("Decode(%q) SyntaxError offset = %d; want %d, the end of the line", in, se.Offset, len(in))
		}
	}
}

// TestJSONDecodeTimestampRange checks that timestamps beyond what int64
// nanoseconds hold (about 1677-09-21 to 2262-04-11) are errors rather than
// silently wrapped values.
func TestJSONDecodeTimestampRange(t *testing.T) {
	d := format.NewJSONDecoder(cols)
	// The limits themselves decode.
	for _, tt := range []struct {
		in   string
		want value.Value
	}{
		{`{"ts":9223372036854}`, value.TimestampValue(9223372036854 * 1e6)},
		{`{"ts":-9223372036854}`, value.TimestampValue(-9223372036854 * 1e6)},
		{`{"ts":"2262-04-11T23:47:16.854775807Z"}`, value.TimestampValue(math.MaxInt64)},
		{`{"ts":"1677-09-21T00:12:43.145224192Z"}`, value.TimestampValue(math.MinInt64)},
	} {
		r := make(value.Row, len(cols))
		if err := d.Decode([]byte(tt.in), r); err != nil || !value.Equal(r[5], tt.want) {
			t.Errorf("Decode(%q): ts = %s, %v; want %s, nil", tt.in, show(r[5]), err, show(tt.want))
		}
	}

	for _, in := range []string{
		`{"ts":9223372036855}`,
		`{"ts":-9223372036855}`,
		`{"ts":9223372036854775807}`,
		`{"ts":"2300-01-01T00:00:00Z"}`,
		`{"ts":"1600-01-01T00:00:00Z"}`,
		`{"ts":"9999-12-31"}`,
		`{"ts":"0001-01-01 00:00:00"}`,
	} {
		r := make(value.Row, len(cols))
		if err := d.Decode([]byte(in), r); err == nil {
			t.Errorf("Decode(%q) = nil, ts %s; want an out-of-range error", in, show(r[5]))
		}
	}
}

// TestJSONDecodeRejectsNonJSONLiterals checks literals that are not JSON
// numbers. The decoder reads a bare literal up to a delimiter and hands it to
// strconv or to the skipper, so several slip through.
func TestJSONDecodeRejectsNonJSONLiterals(t *testing.T) {
	tests := []struct {
		in string
	}{
		{`{"d":.5}`},
		{`{"i":+1}`},
		{`{"d":NaN}`},
		{`{"s":nul}`},
		{`{"d":-Inf}`},
		{`{"d":-Infinity}`},
		{`{"d":0x1p4}`},
		{`{"i":01}`},
		{`{"dec":1.}`},
		{`{"dec":-.5}`},
		{`{"x":tru}`},
		{`{"x":@#!}`},
		{`{"x":1{2}`},
	}
	d := format.NewJSONDecoder(cols)
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r := make(value.Row, len(cols))
			if err := d.Decode([]byte(tt.in), r); err == nil {
				t.Errorf("Decode(%q) = nil, row %s; want an error", tt.in, showRow(r))
			}
		})
	}
}

func TestJSONDecodeAllocs(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"all columns", `{"s":"hello world","i":12345,"dec":-123.4567,"d":3.25,"b":true,"ts":1704207845123}`},
		{"with spaces and nulls", `{ "s" : "x", "i" : null, "dec" : 0.5, "d" : -1e-3, "b" : false, "ts" : -1 }`},
		{"with unknown keys", `{"x":{"a":[1,"b",{"c":null}]},"s":"hello","y":"z","i":1,"dec":1,"d":1,"b":true,"ts":1}`},
		{"quoted numbers", `{"i":"42","dec":"12.5","d":"2.5"}`},
	}
	d := format.NewJSONDecoder(cols)
	r := make(value.Row, len(cols))
	for _, tt := range tests {
		line := []byte(tt.line)
		if err := d.Decode(line, r); err != nil {
			t.Fatalf("%s: Decode(%q) = %v", tt.name, tt.line, err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			clear(r)
			if err := d.Decode(line, r); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Decode(%q): %v allocations; want 0", tt.name, tt.line, allocs)
		}
	}
}

func TestJSONEncode(t *testing.T) {
	tests := []struct {
		name string
		row  value.Row
		want string
	}{
		{
			name: "all types",
			row:  value.Row{value.StringValue("hello"), value.BoolValue(true), value.IntValue(-42), value.DoubleValue(1.5), dec(1234567), tsv(t, "2024-01-02T15:04:05.123Z")},
			want: `{"s":"hello","b":true,"i":-42,"d":1.5,"dec":123.4567,"ts":"2024-01-02T15:04:05.123Z"}` + "\n",
		},
		{
			name: "nulls",
			row:  make(value.Row, len(cols)),
			want: `{"s":null,"b":null,"i":null,"d":null,"dec":null,"ts":null}` + "\n",
		},
		{
			name: "empty string and zeros",
			row:  value.Row{value.StringValue(""), value.BoolValue(false), value.IntValue(0), value.DoubleValue(0), dec(0), value.TimestampValue(0)},
			want: `{"s":"","b":false,"i":0,"d":0,"dec":0.0000,"ts":"1970-01-01T00:00:00Z"}` + "\n",
		},
		{
			name: "extremes",
			row:  value.Row{value.StringValue("\"\\"), value.BoolValue(false), value.IntValue(math.MinInt64), value.DoubleValue(-math.MaxFloat64), dec(-999999999999999999), value.TimestampValue(1)},
			want: `{"s":"\"\\","b":false,"i":-9223372036854775808,"d":-1.7976931348623157e+308,"dec":-99999999999999.9999,"ts":"1970-01-01T00:00:00.000000001Z"}` + "\n",
		},
		{
			name: "non-finite doubles",
			row:  value.Row{value.NullValue(), value.NullValue(), value.NullValue(), value.DoubleValue(math.NaN()), value.NullValue(), value.NullValue()},
			want: `{"s":null,"b":null,"i":null,"d":null,"dec":null,"ts":null}` + "\n",
		},
	}
	e := format.NewJSONEncoder(colNames(cols))
	for _, tt := range tests {
		got := string(e.Encode(nil, tt.row))
		if got != tt.want {
			t.Errorf("%s: Encode(%s) = %q; want %q", tt.name, showRow(tt.row), got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s: Encode(%s) = %q, which is not valid JSON", tt.name, showRow(tt.row), got)
		}
	}
}

func TestJSONEncodeAppends(t *testing.T) {
	e := format.NewJSONEncoder([]string{"a"})
	got := string(e.Encode([]byte("prefix\n"), value.Row{value.IntValue(1)}))
	if want := "prefix\n{\"a\":1}\n"; got != want {
		t.Errorf("Encode(%q, [1]) = %q; want %q", "prefix\n", got, want)
	}
	if got := string(e.Header([]byte("x"))); got != "x" {
		t.Errorf("JSONEncoder.Header(%q) = %q; want it unchanged", "x", got)
	}
}

func TestJSONEncodeNoColumns(t *testing.T) {
	e := format.NewJSONEncoder(nil)
	if got := string(e.Encode(nil, nil)); got != "{}\n" {
		t.Errorf("Encode of an empty row = %q; want %q", got, "{}\n")
	}
}

func TestJSONEncodeKeyEscaping(t *testing.T) {
	names := []string{`a"b`, `c\d`, "e\nf", "é"}
	e := format.NewJSONEncoder(names)
	out := e.Encode(nil, value.Row{value.IntValue(1), value.IntValue(2), value.IntValue(3), value.IntValue(4)})
	want := `{"a\"b":1,"c\\d":2,"e\nf":3,"é":4}` + "\n"
	if string(out) != want {
		t.Errorf("Encode with keys %q = %q; want %q", names, out, want)
	}
	var m map[string]int
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("json.Unmarshal(%q) = %v", out, err)
	}
	for i, n := range names {
		if m[n] != i+1 {
			t.Errorf("json.Unmarshal(%q)[%q] = %d; want %d", out, n, m[n], i+1)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\b\f", `"\u0008\u000c"`},
		{"a\x7fb", "\"a\x7fb\""},
		{"é世😀", `"é世😀"`},
		{"</script>&", `"</script>&"`},
		{"\u2028", "\"\u2028\""},
		{`"`, `"\""`},
		{"x\ny", `"x\ny"`},
	}
	for _, tt := range tests {
		got := format.AppendJSONString(nil, tt.in)
		if string(got) != tt.want {
			t.Errorf("AppendJSONString(nil, %q) = %s; want %s", tt.in, got, tt.want)
		}
		var s string
		if err := json.Unmarshal(got, &s); err != nil || s != tt.in {
			t.Errorf("json.Unmarshal(%s) = %q, %v; want %q, nil", got, s, err, tt.in)
		}
	}
	// Every control character round-trips.
	var all strings.Builder
	for c := 0; c < 0x20; c++ {
		all.WriteByte(byte(c))
	}
	all.WriteString(`"\/`)
	got := format.AppendJSONString([]byte("x"), all.String())
	var s string
	if err := json.Unmarshal(got[1:], &s); err != nil || s != all.String() {
		t.Errorf("json.Unmarshal(%s) = %q, %v; want %q", got[1:], s, err, all.String())
	}
	if got[0] != 'x' {
		t.Errorf("AppendJSONString did not append to dst: %q", got)
	}
}

func TestAppendJSONValue(t *testing.T) {
	tests := []struct {
		v    value.Value
		want string
	}{
		{value.NullValue(), "null"},
		{value.BoolValue(true), "true"},
		{value.BoolValue(false), "false"},
		{value.IntValue(-42), "-42"},
		{value.DoubleValue(math.NaN()), "null"},
		{value.DoubleValue(math.Inf(1)), "null"},
		{value.DoubleValue(math.Inf(-1)), "null"},
		{value.DoubleValue(math.MaxFloat64), "1.7976931348623157e+308"},
		{value.DoubleValue(-math.MaxFloat64), "-1.7976931348623157e+308"},
		{value.DoubleValue(5e-324), "5e-324"},
		{value.DoubleValue(1e21), "1e+21"},
		{value.DoubleValue(1e-7), "1e-07"},
		{value.DoubleValue(0.1), "0.1"},
		{value.DoubleValue(math.Copysign(0, -1)), "-0"},
		{value.DecimalValue(-5, 1), "-0.5"},
		{value.DecimalValue(1, 4), "0.0001"},
		{value.DecimalValue(12345678901234567, 2), "123456789012345.67"},
		{value.DecimalValue(999999999999999999, 18), "0.999999999999999999"},
		{value.DecimalValue(100, 2), "1.00"},
		{value.StringValue("a\"b"), `"a\"b"`},
		{tsv(t, "2024-01-02T15:04:05.123456789Z"), `"2024-01-02T15:04:05.123456789Z"`},
		{value.TimestampValue(-1), `"1969-12-31T23:59:59.999999999Z"`},
	}
	for _, tt := range tests {
		got := format.AppendJSONValue(nil, tt.v)
		if string(got) != tt.want {
			t.Errorf("AppendJSONValue(nil, %s) = %s; want %s", show(tt.v), got, tt.want)
		}
		if !json.Valid(got) {
			t.Errorf("AppendJSONValue(nil, %s) = %s, which is not valid JSON", show(tt.v), got)
		}
	}
}

// TestJSONEncodeDecimalsExact checks that decimals go out digit for digit,
// never through a double: a JSON reader that keeps numbers as text sees them.
func TestJSONEncodeDecimalsExact(t *testing.T) {
	e := format.NewJSONEncoder([]string{"x"})
	for _, v := range []value.Value{
		value.DecimalValue(999999999999999999, 4),
		value.DecimalValue(-999999999999999999, 4),
		value.DecimalValue(123456789012345678, 9),
		value.DecimalValue(1, 18),
		value.DecimalValue(math.MaxInt64, 0),
		value.DecimalValue(math.MinInt64, 3),
	} {
		out := e.Encode(nil, value.Row{v})
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var m map[string]json.Number
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decoding %q: %v", out, err)
		}
		if got, want := m["x"].String(), v.String(); got != want {
			t.Errorf("Encode(%s): x = %s; want %s", show(v), got, want)
		}
	}
}

// TestJSONRoundTrip encodes rows and decodes them again with the same schema.
func TestJSONRoundTrip(t *testing.T) {
	var ctl strings.Builder
	for c := 0; c < 0x20; c++ {
		ctl.WriteByte(byte(c))
	}
	strs := []string{"", "plain", `"quoted"`, `back\slash`, `\"`, ctl.String(), "é世😀\u2028", "{\"a\":[1]}", "\x7f", "\uFFFD", "line\nbreak", "a\x00b"}
	dbls := []float64{0, math.Copysign(0, -1), 1.5, -2.25, 0.1, 1e21, 1e-7, 5e-324, math.MaxFloat64, -math.MaxFloat64, 123456789.123456789}
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64}
	decs := []int64{0, 1, -1, 5000, -5000, 999999999999999999, -999999999999999999}
	tss := []int64{0, 1, -1, 1704207845123456789, math.MaxInt64, math.MinInt64, 1e6}

	e := format.NewJSONEncoder(colNames(cols))
	d := format.NewJSONDecoder(cols)
	n := max(len(strs), len(dbls), len(ints), len(decs), len(tss))
	for k := range n + 1 {
		in := make(value.Row, len(cols))
		if k < n {
			in = value.Row{
				value.StringValue(strs[k%len(strs)]),
				value.BoolValue(k%2 == 0),
				value.IntValue(ints[k%len(ints)]),
				value.DoubleValue(dbls[k%len(dbls)]),
				dec(decs[k%len(decs)]),
				value.TimestampValue(tss[k%len(tss)]),
			}
		} // else: all NULL
		out := e.Encode(nil, in)
		if !json.Valid(out) {
			t.Errorf("Encode(%s) = %q, which is not valid JSON", showRow(in), out)
		}
		if !bytes.HasSuffix(out, []byte("\n")) || bytes.Count(out, []byte("\n")) != 1 {
			t.Errorf("Encode(%s) = %q; want one line ending in a newline", showRow(in), out)
		}
		got := make(value.Row, len(cols))
		if err := d.Decode(bytes.TrimSuffix(out, []byte("\n")), got); err != nil {
			t.Errorf("Decode(Encode(%s)) = %v; encoded as %q", showRow(in), err, out)
			continue
		}
		if !rowsEqual(got, in) {
			t.Errorf("Decode(Encode(%s)) = %s; encoded as %q", showRow(in), showRow(got), out)
		}
	}
}

// TestJSONEncodeInvalidUTF8 checks a string that is not UTF-8, as CSV input can
// carry: RFC 8259 requires UTF-8, and the package's own decoder rejects it.
func TestJSONEncodeInvalidUTF8(t *testing.T) {

	for _, s := range []string{"caf\xe9", "\xff", "a\xc3", "\xed\xa0\x80"} {
		out := format.AppendJSONString(nil, s)
		if !utf8.Valid(out) {
			t.Errorf("AppendJSONString(nil, %q) = %q, which is not UTF-8", s, out)
		}
	}
}

func TestJSONEncodeAllocs(t *testing.T) {
	e := format.NewJSONEncoder(colNames(cols))
	in := value.Row{value.StringValue("hello \"world\"\n"), value.BoolValue(true), value.IntValue(-42), value.DoubleValue(1.5), dec(1234567), tsv(t, "2024-01-02T15:04:05.123Z")}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		buf = e.Encode(buf[:0], in)
	})
	if allocs != 0 {
		t.Errorf("Encode into a buffer with room: %v allocations; want 0", allocs)
	}
	nulls := make(value.Row, len(cols))
	nulls[3] = value.DoubleValue(math.NaN())
	allocs = testing.AllocsPerRun(100, func() {
		buf = e.Encode(buf[:0], nulls)
	})
	if allocs != 0 {
		t.Errorf("Encode of NULLs and NaN into a buffer with room: %v allocations; want 0", allocs)
	}
}

// fuzzCols has every type, with a decimal of a small scale and names that
// fuzzing can find.
var fuzzCols = []value.Column{
	{Name: "s", Type: value.String},
	{Name: "b", Type: value.Bool},
	{Name: "i", Type: value.Int},
	{Name: "d", Type: value.Double},
	{Name: "m", Type: value.Decimal(18, 4)},
	{Name: "n", Type: value.Decimal(5, 0)},
	{Name: "t", Type: value.Timestamp},
}

func FuzzJSONDecode(f *testing.F) {
	for _, seed := range []string{
		`{"s":"hello","b":true,"i":-42,"d":1.5,"m":123.4567,"n":12345,"t":"2024-01-02T15:04:05.123Z"}`,
		`{"t":1704207845123,"i":"42","d":"2.5","m":"1.23456"}`,
		`{"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800"}`,
		`{"x":{"a":[1,2,{"b":"}"}]},"s":null,"i":1,"i":2}`,
		`{"d":"NaN","s":"\u0000"}`,
		`{"d":-0,"m":-0.00005,"n":-99999}`,
		`{"t":"2024-01-02 15:04:05.5"}`,
		`{}`, ``, `{`, `{"s":"\`, `[1]`, "\x00\xff", `{"s":"\xff"}`,
	} {
		f.Add([]byte(seed))
	}
	d := format.NewJSONDecoder(fuzzCols)
	e := format.NewJSONEncoder(colNames(fuzzCols))
	f.Fuzz(func(t *testing.T, line []byte) {
		r := make(value.Row, len(fuzzCols))
		if err := d.Decode(line, r); err != nil {
			if err.Error() == "" {
				t.Errorf("Decode(%q) returned an error with no text", line)
			}
			return
		}
		for i, v := range r {
			if v.Kind() != value.KindNull && v.Kind() != fuzzCols[i].Type.Kind {
				t.Errorf("Decode(%q): %s = %s; want a %v or NULL", line, fuzzCols[i].Name, show(v), fuzzCols[i].Type)
			}
			if v.Kind() == value.KindString && !utf8.ValidString(v.Str()) {
				t.Errorf("Decode(%q): %s = %s, which is not UTF-8", line, fuzzCols[i].Name, show(v))
			}
			if v.Kind() == value.KindDecimal && (v.Scale() != fuzzCols[i].Type.Scale || !value.FitsPrecision(v.Unscaled(), fuzzCols[i].Type.Precision)) {
				t.Errorf("Decode(%q): %s = %s; want it to fit %v", line, fuzzCols[i].Name, show(v), fuzzCols[i].Type)
			}
		}
		out := e.Encode(nil, r)
		if !json.Valid(out) {
			t.Fatalf("Encode(Decode(%q)) = %q, which is not valid JSON", line, out)
		}
		r2 := make(value.Row, len(fuzzCols))
		if err := d.Decode(bytes.TrimSuffix(out, []byte("\n")), r2); err != nil {
			t.Fatalf("Decode(%q) = %v; it is Encode(Decode(%q))", out, err, line)
		}
		for i := range r {
			want := r[i]
			if want.Kind() == value.KindDouble {
				if f := want.Double(); math.IsNaN(f) || math.IsInf(f, 0) {
					// Documented: JSON has no NaN or infinities, so they encode as null.
					want = value.NullValue()
				}
			}
			if !value.Equal(r2[i], want) {
				t.Errorf("Decode(%q): %s = %s; after Encode as %q and Decode again: %s", line, fuzzCols[i].Name, show(r[i]), out, show(r2[i]))
			}
		}
	})
}

// bidColumns and bidLine are a Nexmark bid, as the nexmark-bid generator
// writes it in JSON: long strings, one with escapes.
var bidColumns = []value.Column{
	{Name: "auction", Type: value.Int}, {Name: "bidder", Type: value.Int}, {Name: "price", Type: value.Int},
	{Name: "channel", Type: value.String}, {Name: "url", Type: value.String},
	{Name: "datetime", Type: value.Timestamp}, {Name: "extra", Type: value.String},
}

const bidLine = `{"auction":1000,"bidder":1001,"price":32530001,"channel":"Google","url":"https://www.nexmark.com/jol/liu/fmf/item.htm?query=1",` +
	`"datetime":"2024-01-01T00:00:00Z","extra":"sbolvyqwgticfdrwdyiyofziYMU\\Z` + "`" + `UaTQO][NX\\RM]WPYTOuwogvszlx"}`

// BenchmarkJSONDecode decodes records of a few shapes: small keyed events,
// trades with a decimal and a timestamp, with the schema's field order
// and shuffled, with an unknown field; and Nexmark bids.
func BenchmarkJSONDecode(b *testing.B) {
	events := []value.Column{{Name: "id", Type: value.Int}, {Name: "k", Type: value.String}, {Name: "seq", Type: value.Int}}
	trades := []value.Column{
		{Name: "symbol", Type: value.String}, {Name: "price", Type: value.Decimal(18, 4)},
		{Name: "quantity", Type: value.Int}, {Name: "ts", Type: value.Timestamp},
	}
	for _, bc := range []struct {
		name string
		cols []value.Column
		line string
	}{
		{"event", events, `{"id":123456,"k":"k42","seq":7}`},
		{"event-shuffled", events, `{"seq":7,"k":"k42","extra":[1,{"a":"b"}],"id":123456}`},
		{"trade", trades, `{"symbol":"MSFT","price":412.5125,"quantity":300,"ts":"2026-11-29T10:00:00.123Z"}`},
		{"bid", bidColumns, bidLine},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := format.NewJSONDecoder(bc.cols)
			r := make(value.Row, len(bc.cols))
			line := []byte(bc.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				clear(r)
				if err := d.Decode(line, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJSONEncode encodes a Nexmark bid, decoded from bidLine.
func BenchmarkJSONEncode(b *testing.B) {
	row := make(value.Row, len(bidColumns))
	if err := format.NewJSONDecoder(bidColumns).Decode([]byte(bidLine), row); err != nil {
		b.Fatal(err)
	}
	e := format.NewJSONEncoder(value.Names(bidColumns))
	var dst []byte
	b.SetBytes(int64(len(bidLine)))
	b.ReportAllocs()
	for b.Loop() {
		dst = e.Encode(dst[:0], row)
	}
	if string(dst) != bidLine+"\n" {
		b.Fatalf("encoded %s; want %s", dst, bidLine)
	}
}
