package format_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

const csvHeader = "s,b,i,d,dec,ts"

// newCSV returns a decoder of cols that has read header.
func newCSV(t testing.TB, cs []value.Column, header string) *format.CSVDecoder {
	t.Helper()
	d := format.NewCSVDecoder(cs)
	if err := d.Header([]byte(header)); err != nil {
		t.Fatalf("Header(%q) = %v", header, err)
	}
	return d
}

func TestCSVHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		line   string
		want   value.Row
	}{
		{
			name:   "schema order",
			header: csvHeader,
			line:   "a,true,1,1.5,2.5,2024-01-02T15:04:05Z",
			want:   value.Row{value.StringValue("a"), value.BoolValue(true), value.IntValue(1), value.DoubleValue(1.5), dec(25000), tsv(t, "2024-01-02T15:04:05Z")},
		},
		{
			name:   "another order",
			header: "ts,i,s",
			line:   "2024-01-02,7,x",
			want:   row(t, cols, "ts", tsv(t, "2024-01-02T00:00:00Z"), "i", value.IntValue(7), "s", value.StringValue("x")),
		},
		{
			name:   "extra header columns skipped",
			header: "x,s,y,i,z",
			line:   `ignored,hello,"also, ignored",3,not-an-int`,
			want:   row(t, cols, "s", value.StringValue("hello"), "i", value.IntValue(3)),
		},
		{
			name:   "schema columns missing from the header are NULL",
			header: "i",
			line:   "5",
			want:   row(t, cols, "i", value.IntValue(5)),
		},
		{
			name:   "names trimmed",
			header: " s ,\ti\t",
			line:   "a,1",
			want:   row(t, cols, "s", value.StringValue("a"), "i", value.IntValue(1)),
		},
		{
			name:   "quoted names",
			header: `"s","i"`,
			line:   "a,1",
			want:   row(t, cols, "s", value.StringValue("a"), "i", value.IntValue(1)),
		},
		{
			name:   "header with CRLF",
			header: "s,i\r",
			line:   "a,1\r",
			want:   row(t, cols, "s", value.StringValue("a"), "i", value.IntValue(1)),
		},
		{
			name:   "duplicate header column: the last wins",
			header: "i,i",
			line:   "1,2",
			want:   row(t, cols, "i", value.IntValue(2)),
		},
		{
			name:   "duplicate header column: a NULL does not overwrite",
			header: "i,i",
			line:   "1,",
			want:   row(t, cols, "i", value.IntValue(1)),
		},
		{
			name:   "names are case-sensitive",
			header: "S,i",
			line:   "a,1",
			want:   row(t, cols, "i", value.IntValue(1)),
		},
	}
	for _, tt := range tests {
		d := format.NewCSVDecoder(cols)
		if d.HasHeader() {
			t.Errorf("%s: HasHeader() = true before Header", tt.name)
		}
		if err := d.Header([]byte(tt.header)); err != nil {
			t.Errorf("%s: Header(%q) = %v; want nil", tt.name, tt.header, err)
			continue
		}
		if !d.HasHeader() {
			t.Errorf("%s: HasHeader() = false after Header(%q)", tt.name, tt.header)
		}
		got := make(value.Row, len(cols))
		if err := d.Decode([]byte(tt.line), got); err != nil {
			t.Errorf("%s: after Header(%q), Decode(%q) = %v; want nil", tt.name, tt.header, tt.line, err)
			continue
		}
		if !rowsEqual(got, tt.want) {
			t.Errorf("%s: after Header(%q), Decode(%q) = %s; want %s", tt.name, tt.header, tt.line, showRow(got), showRow(tt.want))
		}
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	tests := []struct {
		header  string
		wantErr string
	}{
		{"x,y,z", `csv header "x,y,z" names none of the schema's columns`},
		{"", "names none of the schema's columns"},
		{"S,I", "names none"},
		{`"s`, "csv header: unterminated quoted field at byte 1"},
		{`"s"x,i`, `csv header: unexpected 'x' after a quoted field at byte 4`},
	}
	for _, tt := range tests {
		d := format.NewCSVDecoder(cols)
		err := d.Header([]byte(tt.header))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Header(%q) = %v; want error containing %q", tt.header, err, tt.wantErr)
		}
	}
	// A schema with no columns matches no header.
	if err := format.NewCSVDecoder(nil).Header([]byte("a")); err == nil {
		t.Errorf("Header(%q) with an empty schema = nil; want an error", "a")
	}
}

// TestCSVHeaderErrorLeavesNoHeader checks what a decoder does after a header
// that names none of the schema's columns: the connector reads the next line as
// a header while HasHeader is false, and as a record once it is true.
func TestCSVHeaderErrorLeavesNoHeader(t *testing.T) {
	d := format.NewCSVDecoder(cols)
	if err := d.Header([]byte(`"unterminated`)); err == nil {
		t.Fatalf("Header(%q) = nil; want an error", `"unterminated`)
	}
	if d.HasHeader() {
		t.Errorf("after a Header syntax error, HasHeader() = true; want false")
	}

	d = format.NewCSVDecoder(cols)
	if err := d.Header([]byte("x,y")); err == nil {
		t.Fatalf("Header(%q) = nil; want an error", "x,y")
	}

	if d.HasHeader() {
		t.Errorf("after a Header that names no schema column, HasHeader() = true; want false")
	}
	r := make(value.Row, len(cols))
	if err := d.Decode([]byte("1,2"), r); err == nil {
		t.Errorf("after a failed Header, Decode(%q) = nil, row %s; want an error", "1,2", showRow(r))
	}
}

func TestCSVDecode(t *testing.T) {
	tests := []struct {
		name string
		line string
		want value.Row
	}{
		{
			name: "plain",
			line: "hello,true,42,1.5,123.4567,2024-01-02T15:04:05Z",
			want: value.Row{value.StringValue("hello"), value.BoolValue(true), value.IntValue(42), value.DoubleValue(1.5), dec(1234567), tsv(t, "2024-01-02T15:04:05Z")},
		},
		{
			name: "quoted fields",
			line: `"hello, world","false","-7","2.5","0.5","2024-01-02 15:04:05"`,
			want: value.Row{value.StringValue("hello, world"), value.BoolValue(false), value.IntValue(-7), value.DoubleValue(2.5), dec(5000), tsv(t, "2024-01-02T15:04:05Z")},
		},
		{name: "doubled quotes", line: `"say ""hi""",,,,,`, want: row(t, cols, "s", value.StringValue(`say "hi"`))},
		{name: "only a doubled quote", line: `"""",,,,,`, want: row(t, cols, "s", value.StringValue(`"`))},
		{name: "doubled quotes at the ends", line: `"""a""",,,,,`, want: row(t, cols, "s", value.StringValue(`"a"`))},
		{name: "quoted comma and doubled quote", line: `"a,""b"",c",,,,,`, want: row(t, cols, "s", value.StringValue(`a,"b",c`))},
		{name: "quoted field last", line: `,,,,,"2024-01-02"`, want: row(t, cols, "ts", tsv(t, "2024-01-02T00:00:00Z"))},
		{name: "quoted line break", line: "\"a\nb\r\nc\",,,,,", want: row(t, cols, "s", value.StringValue("a\nb\r\nc"))},
		{name: "empty unquoted fields are NULL", line: ",,,,,", want: row(t, cols)},
		{name: "empty quoted field is an empty string", line: `"",,,,,`, want: row(t, cols, "s", value.StringValue(""))},
		{name: "empty quoted and unquoted", line: `"",,1,,,`, want: row(t, cols, "s", value.StringValue(""), "i", value.IntValue(1))},
		{name: "trailing empty field", line: "a,,,,,", want: row(t, cols, "s", value.StringValue("a"))},
		{name: "CRLF", line: "a,true,1,,,\r", want: row(t, cols, "s", value.StringValue("a"), "b", value.BoolValue(true), "i", value.IntValue(1))},
		{name: "CRLF after a value", line: ",,,,,2024-01-02\r", want: row(t, cols, "ts", tsv(t, "2024-01-02T00:00:00Z"))},
		{name: "CRLF after a quoted field", line: ",,,,,\"2024-01-02\"\r", want: row(t, cols, "ts", tsv(t, "2024-01-02T00:00:00Z"))},
		{name: "CRLF after an empty field", line: "a,,,,,\r", want: row(t, cols, "s", value.StringValue("a"))},
		{name: "interior quote in an unquoted field", line: `a"b,,,,,`, want: row(t, cols, "s", value.StringValue(`a"b`))},
		{name: "spaces kept in strings", line: " a ,,,,,", want: row(t, cols, "s", value.StringValue(" a "))},
		{name: "bool t", line: ",t,,,,", want: row(t, cols, "b", value.BoolValue(true))},
		{name: "bool f", line: ",f,,,,", want: row(t, cols, "b", value.BoolValue(false))},
		{name: "bool 1", line: ",1,,,,", want: row(t, cols, "b", value.BoolValue(true))},
		{name: "bool 0", line: ",0,,,,", want: row(t, cols, "b", value.BoolValue(false))},
		{name: "bool TRUE", line: ",TRUE,,,,", want: row(t, cols, "b", value.BoolValue(true))},
		{name: "bool False", line: ",False,,,,", want: row(t, cols, "b", value.BoolValue(false))},
		{name: "int extremes", line: ",,-9223372036854775808,,,", want: row(t, cols, "i", value.IntValue(math.MinInt64))},
		{name: "int plus sign", line: ",,+5,,,", want: row(t, cols, "i", value.IntValue(5))},
		{name: "double exponent", line: ",,,1e-3,,", want: row(t, cols, "d", value.DoubleValue(1e-3))},
		{name: "double NaN", line: ",,,NaN,,", want: row(t, cols, "d", value.DoubleValue(math.NaN()))},
		{name: "double Inf", line: ",,,-Inf,,", want: row(t, cols, "d", value.DoubleValue(math.Inf(-1)))},
		{name: "decimal rounds", line: ",,,,-0.00005,", want: row(t, cols, "dec", dec(-1))},
		{name: "decimal exponent", line: ",,,,1.5E-2,", want: row(t, cols, "dec", dec(150))},
		{name: "timestamp with offset", line: ",,,,,2024-01-02T16:04:05+01:00", want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05Z"))},
		{name: "timestamp with space and zone", line: ",,,,,2024-01-02 16:04:05+01:00", want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05Z"))},
		{name: "timestamp without zone", line: ",,,,,2024-01-02T15:04:05.25", want: row(t, cols, "ts", tsv(t, "2024-01-02T15:04:05.25Z"))},
		{name: "non-UTF-8 string passes through", line: "caf\xe9,,,,,", want: row(t, cols, "s", value.StringValue("caf\xe9"))},
	}
	d := newCSV(t, cols, csvHeader)
	for _, tt := range tests {
		got := make(value.Row, len(cols))
		if err := d.Decode([]byte(tt.line), got); err != nil {
			t.Errorf("%s: Decode(%q) = %v; want nil", tt.name, tt.line, err)
			continue
		}
		for i := range got {
			if !value.Equal(got[i], tt.want[i]) {
				t.Errorf("%s: Decode(%q): %s = %s; want %s", tt.name, tt.line, cols[i].Name, show(got[i]), show(tt.want[i]))
			}
		}
	}
}

func TestCSVDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{"truncated row", "a,1", "csv record has 2 fields, want 6"},
		{"one field short", "a,true,1,1.5,2.5", "csv record has 5 fields, want 6"},
		{"one field too many", "a,true,1,1.5,2.5,,", "csv record has 7 fields, want 6"},
		{"empty line", "", "csv record has 1 fields, want 6"},
		{"unterminated quote", `"abc,1,,,,`, "unterminated quoted field at byte 1"},
		{"unterminated quote later", `a,"b`, "unterminated quoted field at byte 3"},
		{"unterminated after doubled quote", `"a""`, "unterminated quoted field"},
		{"data after a quoted field", `"a"b,,,,,`, `unexpected 'b' after a quoted field at byte 4`},
		{"space after a quoted field", `"a" ,,,,,`, `unexpected ' ' after a quoted field`},
		{"invalid int", "a,,x,,,", `column i (field 3): invalid int "x"`},
		{"int with spaces", "a,, 1,,,", `column i (field 3): invalid int " 1"`},
		{"empty quoted int", `,,"",,,`, "column i (field 3): invalid int"},
		{"int out of range", ",,9223372036854775808,,,", "out of range"},
		{"invalid bool", ",yes,,,,", `column b (field 2): invalid bool "yes"`},
		{"invalid double", ",,,1.5.5,,", `column d (field 4): invalid double "1.5.5"`},
		{"decimal too large", ",,,,123456789012345,", `column dec (field 5): "123456789012345" does not fit decimal(18,4)`},
		{"invalid decimal", ",,,,1.2.3,", `column dec (field 5): invalid decimal(18,4) "1.2.3"`},
		{"invalid timestamp", ",,,,,2024-13-01", `column ts (field 6): invalid timestamp "2024-13-01"`},
		{"timestamp as milliseconds", ",,,,,1704207845123", "invalid timestamp"},
	}
	d := newCSV(t, cols, csvHeader)
	for _, tt := range tests {
		r := make(value.Row, len(cols))
		err := d.Decode([]byte(tt.line), r)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Decode(%q) = %v; want error containing %q", tt.name, tt.line, err, tt.wantErr)
		}
	}
}

func TestCSVDecodeBeforeHeader(t *testing.T) {
	d := format.NewCSVDecoder(cols)
	r := make(value.Row, len(cols))
	if err := d.Decode([]byte("a,1"), r); err == nil {
		t.Errorf("Decode before Header = nil, row %s; want an error", showRow(r))
	}
}

// TestCSVDecodeReuse checks that a decoder can be reused across lines of
// different shapes, and that a failed line does not spoil the next.
func TestCSVDecodeReuse(t *testing.T) {
	d := newCSV(t, cols[:3], "s,b,i")
	lines := []struct {
		line string
		ok   bool
		want value.Row
	}{
		{`"x,y",t,1`, true, value.Row{value.StringValue("x,y"), value.BoolValue(true), value.IntValue(1)}},
		{`a,b`, false, nil},
		{`"q""q",,2`, true, value.Row{value.StringValue(`q"q`), value.NullValue(), value.IntValue(2)}},
		{`"open`, false, nil},
		{`z,f,3`, true, value.Row{value.StringValue("z"), value.BoolValue(false), value.IntValue(3)}},
	}
	for _, l := range lines {
		r := make(value.Row, 3)
		err := d.Decode([]byte(l.line), r)
		if (err == nil) != l.ok {
			t.Errorf("Decode(%q) = %v; want success %t", l.line, err, l.ok)
			continue
		}
		if l.ok && !rowsEqual(r, l.want) {
			t.Errorf("Decode(%q) = %s; want %s", l.line, showRow(r), showRow(l.want))
		}
	}
}

func TestCSVDecodeAllocs(t *testing.T) {
	d := newCSV(t, cols, csvHeader)
	r := make(value.Row, len(cols))
	for _, line := range []string{
		"hello world,true,12345,3.25,-123.4567,2024-01-02T15:04:05Z",
		`"quoted, field",false,,,"1",`,
	} {
		b := []byte(line)
		if err := d.Decode(b, r); err != nil {
			t.Fatalf("Decode(%q) = %v", line, err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			clear(r)
			if err := d.Decode(b, r); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Decode(%q): %v allocations; want 0", line, allocs)
		}
	}
}

func TestCSVEncoderHeader(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"a", "b"}, "a,b\n"},
		{[]string{"a,b", `c"d`, "e"}, `"a,b","c""d",e` + "\n"},
		{[]string{""}, `""` + "\n"},
		{[]string{"line\nbreak"}, "\"line\nbreak\"\n"},
		{nil, "\n"},
	}
	for _, tt := range tests {
		if got := string(format.NewCSVEncoder(tt.names).Header(nil)); got != tt.want {
			t.Errorf("NewCSVEncoder(%q).Header(nil) = %q; want %q", tt.names, got, tt.want)
		}
	}
}

func TestCSVEncode(t *testing.T) {
	tests := []struct {
		name string
		row  value.Row
		want string
	}{
		{
			name: "all types",
			row:  value.Row{value.StringValue("hello"), value.BoolValue(true), value.IntValue(-42), value.DoubleValue(1.5), dec(1234567), tsv(t, "2024-01-02T15:04:05.123Z")},
			want: "hello,true,-42,1.5,123.4567,2024-01-02T15:04:05.123Z\n",
		},
		{name: "NULLs are empty", row: make(value.Row, len(cols)), want: ",,,,,\n"},
		{name: "empty string is quoted", row: row(t, cols, "s", value.StringValue("")), want: `"",,,,,` + "\n"},
		{name: "comma", row: row(t, cols, "s", value.StringValue("a,b")), want: `"a,b",,,,,` + "\n"},
		{name: "quotes doubled", row: row(t, cols, "s", value.StringValue(`say "hi"`)), want: `"say ""hi""",,,,,` + "\n"},
		{name: "line feed", row: row(t, cols, "s", value.StringValue("a\nb")), want: "\"a\nb\",,,,,\n"},
		{name: "carriage return", row: row(t, cols, "s", value.StringValue("a\r")), want: "\"a\r\",,,,,\n"},
		{name: "spaces not quoted", row: row(t, cols, "s", value.StringValue(" a ")), want: " a ,,,,,\n"},
		{name: "non-finite doubles", row: row(t, cols, "d", value.DoubleValue(math.Inf(1))), want: ",,,+Inf,,\n"},
		{name: "NaN", row: row(t, cols, "d", value.DoubleValue(math.NaN())), want: ",,,NaN,,\n"},
	}
	e := format.NewCSVEncoder(colNames(cols))
	for _, tt := range tests {
		if got := string(e.Encode(nil, tt.row)); got != tt.want {
			t.Errorf("%s: Encode(%s) = %q; want %q", tt.name, showRow(tt.row), got, tt.want)
		}
	}
	if got, want := string(e.Encode([]byte("x\n"), value.Row{value.IntValue(1)})), "x\n1\n"; got != want {
		t.Errorf("Encode(%q, [1]) = %q; want %q", "x\n", got, want)
	}
}

// TestCSVRoundTrip encodes rows, header first, and decodes them again.
func TestCSVRoundTrip(t *testing.T) {
	strs := []string{"", "plain", `"`, `""`, `a"b`, `"a,b"`, ",", ",,", "a\nb", "a\r", "\r\n", " x ", "é世😀", "a\x00b", "NULL"}
	dbls := []float64{0, math.Copysign(0, -1), 1.5, -2.25, 0.1, 1e21, 5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN()}
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64}
	decs := []int64{0, 1, -1, 5000, -5000, 999999999999999999, -999999999999999999}
	tss := []int64{0, 1, -1, 1704207845123456789, math.MaxInt64, math.MinInt64}

	e := format.NewCSVEncoder(colNames(cols))
	header := e.Header(nil)
	d := format.NewCSVDecoder(cols)
	if err := d.Header(bytes.TrimSuffix(header, []byte("\n"))); err != nil {
		t.Fatalf("Header(%q) = %v", header, err)
	}
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
		}
		out := e.Encode(nil, in)
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

func TestCSVEncodeAllocs(t *testing.T) {
	e := format.NewCSVEncoder(colNames(cols))
	in := value.Row{value.StringValue(`quoted "field", here`), value.BoolValue(true), value.IntValue(-42), value.DoubleValue(1.5), dec(1234567), tsv(t, "2024-01-02T15:04:05.123Z")}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		buf = e.Encode(buf[:0], in)
	})
	if allocs != 0 {
		t.Errorf("Encode into a buffer with room: %v allocations; want 0", allocs)
	}
}

func FuzzCSVDecode(f *testing.F) {
	for _, seed := range []struct{ header, line string }{
		{"s,b,i,d,m,n,t", `hello,true,42,1.5,123.4567,12345,2024-01-02T15:04:05Z`},
		{"s,b,i,d,m,n,t", `"a,""b""",,,,,,`},
		{"s,b,i,d,m,n,t", `"",t,-1,NaN,-0.00005,-99999,2024-01-02 15:04:05.5` + "\r"},
		{"t,x,s", `2024-01-02,"ignored, field",x`},
		{"s", `"unterminated`},
		{"s,i", `"a"b,1`},
		{`"s`, "a"},
		{"a,b", "1,2"},
		{"s,s", "a,"},
		{"", ""},
	} {
		f.Add(seed.header, []byte(seed.line))
	}
	names := colNames(fuzzCols)
	e := format.NewCSVEncoder(names)
	fullHeader := bytes.TrimSuffix(e.Header(nil), []byte("\n"))
	f.Fuzz(func(t *testing.T, header string, line []byte) {
		d := format.NewCSVDecoder(fuzzCols)
		headerErr := d.Header([]byte(header))
		r := make(value.Row, len(fuzzCols))
		err := d.Decode(line, r) // must not panic, header or not
		if headerErr != nil || err != nil {
			return
		}
		for i, v := range r {
			if v.Kind() != value.KindNull && v.Kind() != fuzzCols[i].Type.Kind {
				t.Errorf("Decode(%q) under header %q: %s = %s; want a %v or NULL", line, header, fuzzCols[i].Name, show(v), fuzzCols[i].Type)
			}
		}

		// What decodes, encodes and decodes back to the same row.
		out := e.Encode(nil, r)
		d2 := format.NewCSVDecoder(fuzzCols)
		if err := d2.Header(fullHeader); err != nil {
			t.Fatalf("Header(%q) = %v", fullHeader, err)
		}
		r2 := make(value.Row, len(fuzzCols))
		if err := d2.Decode(bytes.TrimSuffix(out, []byte("\n")), r2); err != nil {
			t.Fatalf("Decode(%q) = %v; it is Encode(Decode(%q)) under header %q", out, err, line, header)
		}
		for i := range r {
			if r[i].Kind() == value.KindDouble && math.IsNaN(r[i].Double()) {
				if r2[i].Kind() != value.KindDouble || !math.IsNaN(r2[i].Double()) {
					t.Errorf("Decode(%q): %s = NaN; after Encode as %q and Decode again: %s", line, fuzzCols[i].Name, out, show(r2[i]))
				}
				continue
			}
			if !value.Equal(r2[i], r[i]) {
				t.Errorf("Decode(%q) under header %q: %s = %s; after Encode as %q and Decode again: %s", line, header, fuzzCols[i].Name, show(r[i]), out, show(r2[i]))
			}
		}
	})
}

// TestHostileFields: a line of a million commas is refused before it is
// split whole, and an error about a long field quotes only its start.
func TestHostileFields(t *testing.T) {
	cols := []value.Column{{Name: "i", Type: value.Int}, {Name: "s", Type: value.String}}
	d := format.NewCSVDecoder(cols)
	if err := d.Header([]byte("i,s")); err != nil {
		t.Fatal(err)
	}
	r := make(value.Row, len(cols))
	err := d.Decode(bytes.Repeat([]byte{','}, 1<<20), r)
	if err == nil || !strings.Contains(err.Error(), "more than 2 fields") {
		t.Errorf("Decode(a million commas) = %v; want more than 2 fields", err)
	}
	long := append(bytes.Repeat([]byte{0xff}, 1<<20), ",x"...)
	err = d.Decode(long, r)
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("Decode(a 1 MiB bad int) = an error of %d bytes; want one of a few hundred", len(fmt.Sprint(err)))
	}
	if err != nil && !strings.Contains(err.Error(), "(1048576 bytes)") {
		t.Errorf("Decode(a 1 MiB bad int) = %v; want it to say the field's size", err)
	}
}
