package format_test

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// bidSchema has fields the tests' columns do not read, of every kind the
// decoder skips.
const bidSchema = `{"type": "record", "name": "Bid", "namespace": "nexmark", "fields": [
	{"name": "auction", "type": "long"},
	{"name": "bidder", "type": ["null", "long"]},
	{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
	{"name": "tags", "type": {"type": "array", "items": "string"}},
	{"name": "channel", "type": "string"},
	{"name": "extra", "type": {"type": "map", "values": ["null", "double", {"type": "record", "name": "Note", "fields": [{"name": "n", "type": "int"}, {"name": "f", "type": {"type": "fixed", "name": "F4", "size": 4}}]}]}},
	{"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["BUY", "SELL"]}},
	{"name": "ratio", "type": "float"},
	{"name": "ok", "type": "boolean"},
	{"name": "next", "type": ["null", "Note"]},
	{"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}
]}`

func bid(i int) map[string]any {
	var bidder any
	if i%3 != 0 {
		bidder = int64(i * 7)
	}
	extra := map[string]any{}
	for j := range i % 4 {
		switch j % 3 {
		case 0:
			extra[fmt.Sprint("k", j)] = nil
		case 1:
			extra[fmt.Sprint("k", j)] = map[string]any{"double": float64(j) / 4}
		default:
			extra[fmt.Sprint("k", j)] = map[string]any{"nexmark.Note": map[string]any{"n": int32(j), "f": [4]byte{1, 2, 3, 4}}}
		}
	}
	var next any
	if i%2 == 0 {
		next = map[string]any{"nexmark.Note": map[string]any{"n": int32(-i), "f": [4]byte{}}}
	}
	return map[string]any{
		"auction": int64(1000 + i),
		"bidder":  bidder,
		"price":   big.NewRat(int64(i*137-5000), 100),
		"tags":    strings.Fields(strings.Repeat("t ", i%5)),
		"channel": fmt.Sprintf("channel-%d-é", i%7),
		"extra":   extra,
		"kind":    []string{"BUY", "SELL"}[i%2],
		"ratio":   float32(i) / 8,
		"ok":      i%2 == 1,
		"next":    next,
		"ts":      time.UnixMilli(1_700_000_000_000 + int64(i)*1001).UTC(),
	}
}

func marshalAvro(t testing.TB, schema string, v any) []byte {
	t.Helper()
	b, err := avro.Marshal(avro.MustParse(schema), v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAvroDecodeAgainstLibrary decodes records that hamba/avro, an
// independent implementation, encoded: every field the columns name is
// read, the others skipped, whatever their type.
func TestAvroDecodeAgainstLibrary(t *testing.T) {
	cols := []value.Column{
		{Name: "ts", Type: value.Timestamp}, {Name: "channel", Type: value.String},
		{Name: "bidder", Type: value.Int}, {Name: "price", Type: value.Decimal(14, 3)},
		{Name: "kind", Type: value.String}, {Name: "ratio", Type: value.Double}, {Name: "ok", Type: value.Bool},
	}
	d, err := format.NewAvroDecoder(cols, "", func(id uint32) (format.WriterSchema, error) {
		if id != 7 {
			return format.WriterSchema{}, fmt.Errorf("no schema %d", id)
		}
		return format.WriterSchema{Type: format.SchemaAvro, Text: bidSchema}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, len(cols))
	for i := range 200 {
		in := bid(i)
		rec := append(format.AvroWireHeader(7), marshalAvro(t, bidSchema, in)...)
		clear(row)
		if err := d.Decode(rec, row); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want := []string{
			in["ts"].(time.Time).Format(time.RFC3339Nano),
			in["channel"].(string),
			"NULL",
			in["price"].(*big.Rat).FloatString(3),
			in["kind"].(string),
			fmt.Sprint(float64(in["ratio"].(float32))),
			fmt.Sprint(in["ok"]),
		}
		if b, ok := in["bidder"].(int64); ok {
			want[2] = fmt.Sprint(b)
		}
		got := make([]string, len(row))
		for j, v := range row {
			got[j] = v.String()
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("record %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

// TestAvroEncodeAgainstLibrary has hamba/avro decode what the encoder wrote,
// with the schema AvroSchemaOf gave.
func TestAvroEncodeAgainstLibrary(t *testing.T) {
	cols := []value.Column{
		{Name: "b", Type: value.Bool}, {Name: "n", Type: value.Int}, {Name: "d", Type: value.Double},
		{Name: "s", Type: value.String}, {Name: "m", Type: value.Decimal(18, 4)}, {Name: "ts", Type: value.Timestamp},
	}
	schema, err := format.AvroSchemaOf(cols)
	if err != nil {
		t.Fatal(err)
	}
	enc := format.NewAvroEncoder(cols, format.AvroWireHeader(300))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		row := value.Row{
			value.BoolValue(i%2 == 0), value.IntValue(rng.Int64() >> rng.IntN(64)), value.DoubleValue(rng.NormFloat64()),
			value.StringValue(strings.Repeat("ü", i%9)), value.DecimalValue(rng.Int64N(2e18)-1e18>>rng.IntN(64), 4),
			value.TimestampValue(rng.Int64N(4e18) - 2e18),
		}
		if i%5 == 0 {
			row[i%len(row)] = value.NullValue()
		}
		b := enc.Encode(nil, row)
		if id := binary.BigEndian.Uint32(b[1:5]); b[0] != 0 || id != 300 {
			t.Fatalf("header % x", b[:5])
		}
		var got map[string]any
		if err := avro.Unmarshal(avro.MustParse(schema), b[5:], &got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		for j, c := range cols {
			g, v := got[c.Name], row[j]
			if v.IsNull() {
				if g != nil {
					t.Fatalf("row %d %s: got %v, want null", i, c.Name, g)
				}
				continue
			}
			var s string
			switch g := g.(type) {
			case *big.Rat:
				s = g.FloatString(4)
			case time.Time:
				s = g.UTC().Format("2006-01-02 15:04:05.000000")
			default:
				s = fmt.Sprint(g)
			}
			want := v.String()
			if c.Type.Kind == value.KindTimestamp {
				// Truncate rounds toward the zero time, year 1: down.
				want = v.Time().Truncate(time.Microsecond).Format("2006-01-02 15:04:05.000000")
			}
			if c.Type.Kind == value.KindDouble {
				want = fmt.Sprint(v.Double())
			}
			if s != want {
				t.Fatalf("row %d %s: got %s, want %s", i, c.Name, s, want)
			}
		}
	}
}

// TestAvroEvolution reads records of two writer schemas through a reader
// schema: a field the old writer lacks takes the reader's default, a
// field the reader dropped is skipped, int widens to long and double, and a
// writer whose field cannot be read fails each of its records, naming it.
func TestAvroEvolution(t *testing.T) {
	v1 := `{"type":"record","name":"T","fields":[{"name":"sym","type":"string"},{"name":"qty","type":"int"},{"name":"old","type":"string"}]}`
	v2 := `{"type":"record","name":"T","fields":[{"name":"qty","type":"long"},{"name":"sym","type":"string"},{"name":"venue","type":"string"}]}`
	bad := `{"type":"record","name":"T","fields":[{"name":"sym","type":"string"},{"name":"qty","type":"string"}]}`
	reader := `{"type":"record","name":"T","fields":[{"name":"sym","type":"string"},{"name":"qty","type":"long"},{"name":"venue","type":"string","default":"XNAS"},{"name":"px","type":["null","double"],"default":null}]}`
	cols, err := format.AvroColumns(reader)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cols); got != "[{sym string} {qty int} {venue string} {px double}]" {
		t.Fatalf("columns %s", got)
	}
	schemas := map[uint32]string{1: v1, 2: v2, 3: bad}
	d, err := format.NewAvroDecoder(cols, reader, func(id uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: schemas[id]}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   uint32
		rec  map[string]any
		want string
	}{
		{1, map[string]any{"sym": "MSFT", "qty": int32(5), "old": "x"}, "MSFT|5|XNAS|NULL"},
		{2, map[string]any{"sym": "AAPL", "qty": int64(1) << 40, "venue": "XLON"}, "AAPL|1099511627776|XLON|NULL"},
		{3, map[string]any{"sym": "IBM", "qty": "7"}, "error: schema id 3: field qty is string, which does not read as int (column qty)"},
	} {
		row := make(value.Row, len(cols))
		err := d.Decode(append(format.AvroWireHeader(tc.id), marshalAvro(t, schemas[tc.id], tc.rec)...), row)
		got := fmt.Sprint(row[0], "|", row[1], "|", row[2], "|", row[3])
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tc.want {
			t.Errorf("schema %d: got %s, want %s", tc.id, got, tc.want)
		}
	}
	// A reader field without a default that the writer lacks.
	strict := strings.Replace(reader, `"default":"XNAS"`, `"doc":"none"`, 1)
	d, err = format.NewAvroDecoder(cols, strict, func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: v1}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Decode(append(format.AvroWireHeader(1), marshalAvro(t, v1, map[string]any{"sym": "a", "qty": int32(1), "old": ""})...), make(value.Row, len(cols)))
	if err == nil || !strings.Contains(err.Error(), "schema id 1: the writer schema has no field venue, and the reader schema gives it no default") {
		t.Fatalf("got %v", err)
	}
}

// TestAvroMalformed feeds every truncation and random corruptions of valid
// records: each decodes or fails, never panics or hangs, and a truncated
// record always fails.
func TestAvroMalformed(t *testing.T) {
	cols := []value.Column{{Name: "channel", Type: value.String}, {Name: "price", Type: value.Decimal(18, 2)}}
	d, err := format.NewAvroDecoder(cols, bidSchema, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, len(cols))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		rec := marshalAvro(t, bidSchema, bid(i))
		for n := range len(rec) {
			if err := d.Decode(rec[:n], row); err == nil {
				t.Fatalf("record %d cut at %d of %d bytes decoded", i, n, len(rec))
			}
		}
		for range 200 {
			c := append([]byte(nil), rec...)
			c[rng.IntN(len(c))] = byte(rng.Uint32())
			_ = d.Decode(c, row)
		}
	}
	// A huge count of empty items takes no time.
	huge := `{"type":"record","name":"H","fields":[{"name":"a","type":{"type":"array","items":"null"}},{"name":"channel","type":"string"}]}`
	d, err = format.NewAvroDecoder([]value.Column{{Name: "channel", Type: value.String}}, huge, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := binary.AppendUvarint(nil, uint64(1<<62)<<1)
	rec = append(rec, 0, 4, 'o', 'k')
	if err := d.Decode(rec, row[:1]); err != nil || row[0].Str() != "ok" {
		t.Fatalf("got %v, %v", row[0], err)
	}
}

func TestAvroColumnsRefused(t *testing.T) {
	for _, tc := range []struct{ field, want string }{
		{`{"type":"array","items":"int"}`, "field f is array; columns are scalar"},
		{`["null","int","string"]`, "field f is the union [null, int, string]"},
		{`{"type":"bytes","logicalType":"decimal","precision":30,"scale":2}`, "field f is decimal(30,2), wider than the 18 digits"},
		{`"bytes"`, "field f is bytes, which has no SQL type here"},
	} {
		_, err := format.AvroColumns(`{"type":"record","name":"R","fields":[{"name":"f","type":` + tc.field + `}]}`)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.field, err, tc.want)
		}
	}
	if _, err := format.AvroSchemaOf([]value.Column{{Name: "count(*)", Type: value.Int}}); err == nil || !strings.Contains(err.Error(), "give it an alias") {
		t.Errorf("got %v", err)
	}
}

// BenchmarkAvroDecode decodes the same records with the engine's decoder
// and with hamba/avro into a struct of the read fields, its fastest path;
// the ratio is the engine's records per second over the library's.
func BenchmarkAvroDecode(b *testing.B) {
	const schema = `{"type":"record","name":"Bid","fields":[
		{"name":"auction","type":"long"},{"name":"bidder","type":"long"},{"name":"price","type":"long"},
		{"name":"channel","type":"string"},{"name":"url","type":"string"},
		{"name":"dateTime","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"extra","type":"string"}]}`
	type bidRow struct {
		Auction  int64     `avro:"auction"`
		Bidder   int64     `avro:"bidder"`
		Price    int64     `avro:"price"`
		Channel  string    `avro:"channel"`
		URL      string    `avro:"url"`
		DateTime time.Time `avro:"dateTime"`
		Extra    string    `avro:"extra"`
	}
	s := avro.MustParse(schema)
	recs := make([][]byte, 1024)
	for i := range recs {
		var err error
		recs[i], err = avro.Marshal(s, bidRow{
			Auction: int64(1000 + i), Bidder: int64(i * 31), Price: int64(i * 997 % 100000),
			Channel: "channel-" + fmt.Sprint(i%100), URL: "https://www.nexmark.com/item.htm?query=" + fmt.Sprint(i),
			DateTime: time.UnixMilli(1_700_000_000_000 + int64(i)), Extra: strings.Repeat("x", i%32),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	cols, err := format.AvroColumns(schema)
	if err != nil {
		b.Fatal(err)
	}
	d, err := format.NewAvroDecoder(cols, schema, nil)
	if err != nil {
		b.Fatal(err)
	}
	row := make(value.Row, len(cols))
	var v bidRow
	var engine, library time.Duration
	for b.Loop() {
		start := time.Now()
		for _, r := range recs {
			clear(row)
			if err := d.Decode(r, row); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		for _, r := range recs {
			if err := avro.Unmarshal(s, r, &v); err != nil {
				b.Fatal(err)
			}
		}
		engine, library = engine+mid.Sub(start), library+time.Since(mid)
	}
	n := float64(b.N * len(recs))
	b.ReportMetric(n/engine.Seconds(), "engine-rec/s")
	b.ReportMetric(n/library.Seconds(), "hamba-rec/s")
	b.ReportMetric(library.Seconds()/engine.Seconds(), "engine/hamba")
	b.ReportMetric(testing.AllocsPerRun(10, func() { _ = d.Decode(recs[1], row) }), "engine-allocs/rec")
}

// TestAvroResolution: what Avro's schema resolution does beyond names and
// defaults. A reader field's alias matches the writer's field; a writer's
// enum symbol the reader lacks reads as the reader's default, or fails the
// record; bytes defaults read as decimals. A review found each silently
// wrong or failing.
func TestAvroResolution(t *testing.T) {
	writer := `{"type":"record","name":"T","fields":[{"name":"quantity","type":"long"},
		{"name":"side","type":{"type":"enum","name":"Side","symbols":["BUY","SELL","HOLD"]}},
		{"name":"mood","type":{"type":"enum","name":"Mood","symbols":["UP","MEH"]}}]}`
	reader := `{"type":"record","name":"T","fields":[{"name":"qty","aliases":["quantity"],"type":"long","default":0},
		{"name":"side","type":{"type":"enum","name":"Side","symbols":["BUY","SELL","OTHER"],"default":"OTHER"}},
		{"name":"mood","type":["null",{"type":"enum","name":"Mood","symbols":["UP"]}],"default":null},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2},"default":"\u0001\u0000"}]}`
	cols, err := format.AvroColumns(reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := format.NewAvroDecoder(cols, reader, func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: writer}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		side, mood, want string
	}{
		{"SELL", "UP", "42|SELL|UP|2.56"},
		{"HOLD", "UP", "42|OTHER|UP|2.56"},
		{"BUY", "MEH", "error: schema id 1: field mood at byte 2: enum symbol MEH is not the reader's, which has no default"},
	} {
		row := make(value.Row, len(cols))
		rec := marshalAvro(t, writer, map[string]any{"quantity": int64(42), "side": tc.side, "mood": tc.mood})
		err := d.Decode(append(format.AvroWireHeader(1), rec...), row)
		got := fmt.Sprint(row[0], "|", row[1], "|", row[2], "|", row[3])
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
	// A default that does not read as its column is refused up front.
	bad := strings.Replace(reader, `"default":"\u0001\u0000"`, `"default":"\u0010\u0000\u0000\u0000"`, 1)
	if _, err := format.NewAvroDecoder(cols, bad, nil); err == nil || !strings.Contains(err.Error(), "column price: field price: default: decimal wider") {
		t.Errorf("got %v", err)
	}
}

// TestAvroStrict: data Avro's specification does not allow fails the
// record, and a decimal wider than 64 bits reads as a double.
func TestAvroStrict(t *testing.T) {
	schema := `{"type":"record","name":"T","fields":[{"name":"i","type":"int"},{"name":"b","type":"boolean"},
		{"name":"d","type":{"type":"fixed","name":"D","size":16,"logicalType":"decimal","precision":38,"scale":2}},
		{"name":"z","type":{"type":"array","items":{"type":"fixed","name":"Z","size":0}}}]}`
	cols := []value.Column{{Name: "i", Type: value.Int}, {Name: "b", Type: value.Bool}, {Name: "d", Type: value.Double}}
	d, err := format.NewAvroDecoder(cols, schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	wide := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0}
	rec := func(i []byte, b byte, z []byte) []byte {
		return append(append(append(append(i, b), wide...), z...), 0)
	}
	row := make(value.Row, len(cols))
	for _, tc := range []struct {
		name string
		rec  []byte
		want string
	}{
		{"ok", rec([]byte{2}, 1, nil), "1|true|-9.295429630892704e+16"},
		{"int beyond 32 bits", rec([]byte{0x80, 0x80, 0x80, 0x80, 0x10}, 1, nil), "error: field i at byte 0: int beyond 32 bits"},
		{"long beyond 64 bits", rec([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1, nil), "error: field i at byte 0: malformed variable-length integer"},
		{"boolean 2", rec([]byte{2}, 2, nil), "error: field b at byte 1: boolean byte neither 0 nor 1"},
		// 2^62 items of no bytes each take no time.
		{"empty items", rec([]byte{2}, 0, binary.AppendUvarint(nil, uint64(1<<62)<<1)), "1|false|-9.295429630892704e+16"},
	} {
		clear(row)
		err := d.Decode(tc.rec, row)
		got := fmt.Sprint(row[0], "|", row[1], "|", row[2])
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestAvroAliasYields: a reader field's alias matches a writer's field
// only when the writer has none of the reader field's own name.
func TestAvroAliasYields(t *testing.T) {
	writer := `{"type":"record","name":"T","fields":[{"name":"cost","type":"string"},{"name":"price","type":"long"}]}`
	reader := `{"type":"record","name":"T","fields":[{"name":"price","aliases":["cost"],"type":"long"}]}`
	cols := []value.Column{{Name: "price", Type: value.Int}}
	d, err := format.NewAvroDecoder(cols, reader, func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: writer}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, 1)
	rec := marshalAvro(t, writer, map[string]any{"cost": "1", "price": int64(2)})
	if err := d.Decode(append(format.AvroWireHeader(1), rec...), row); err != nil || row[0].String() != "2" {
		t.Errorf("got %v, %v; want 2", row[0], err)
	}
}

// FuzzAvroDecode: any bytes, plain or in the registry wire format, decode
// into values of the columns' types, valid UTF-8, or fail with a message;
// never a panic or a hang.
func FuzzAvroDecode(f *testing.F) {
	for i := range 8 {
		rec := marshalAvro(f, bidSchema, bid(i))
		f.Add(rec)
		f.Add(append(format.AvroWireHeader(7), rec...))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 7})
	cols := []value.Column{
		{Name: "ts", Type: value.Timestamp}, {Name: "channel", Type: value.String}, {Name: "bidder", Type: value.Int},
		{Name: "price", Type: value.Decimal(14, 3)}, {Name: "kind", Type: value.String}, {Name: "ratio", Type: value.Double},
	}
	plain, err := format.NewAvroDecoder(cols, bidSchema, nil)
	if err != nil {
		f.Fatal(err)
	}
	wire, err := format.NewAvroDecoder(cols, "", func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: bidSchema}, nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		for _, d := range []*format.AvroDecoder{plain, wire} {
			checkDecoded(t, cols, rec, d.Decode)
		}
	})
}

// checkDecoded decodes rec and checks that a decoded row holds values of
// the columns' types, strings valid UTF-8, and that an error has a text.
func checkDecoded(t *testing.T, cols []value.Column, rec []byte, decode func([]byte, value.Row) error) {
	t.Helper()
	r := make(value.Row, len(cols))
	if err := decode(rec, r); err != nil {
		if err.Error() == "" {
			t.Errorf("Decode(% x) returned an error with no text", rec)
		}
		return
	}
	for i, v := range r {
		if v.Kind() != value.KindNull && v.Kind() != cols[i].Type.Kind {
			t.Errorf("Decode(% x): %s = %v; want a %v or NULL", rec, cols[i].Name, v, cols[i].Type)
		}
		if v.Kind() == value.KindString && !utf8.ValidString(v.Str()) {
			t.Errorf("Decode(% x): %s is not UTF-8", rec, cols[i].Name)
		}
	}
}

// TestAvroPrimitiveKey: a key's writer schema of one primitive type fills
// the key decoder's one column; with more columns, or for values, it fails
// the record.
func TestAvroPrimitiveKey(t *testing.T) {
	schemas := map[uint32]string{1: `"string"`, 2: `["null","long"]`}
	writers := func(id uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: schemas[id]}, nil
	}
	one, err := format.NewAvroKeyDecoder([]value.Column{{Name: "account", Type: value.String}}, writers)
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, 1)
	if err := one.Decode(append(format.AvroWireHeader(1), marshalAvro(t, `"string"`, "acct-9")...), row); err != nil || row[0].Str() != "acct-9" {
		t.Errorf("got %v, %v", row[0], err)
	}
	if err := one.Decode(append(format.AvroWireHeader(2), marshalAvro(t, `["null","long"]`, int64(5))...), row); err == nil {
		t.Errorf("a long key read as a string column: %v", row[0])
	}
	two, err := format.NewAvroKeyDecoder([]value.Column{{Name: "a", Type: value.Int}, {Name: "b", Type: value.Int}}, writers)
	if err != nil {
		t.Fatal(err)
	}
	err = two.Decode(append(format.AvroWireHeader(2), marshalAvro(t, `["null","long"]`, int64(5))...), make(value.Row, 2))
	if err == nil || !strings.Contains(err.Error(), "schema id 2: the writer schema is [null, long], not a record") {
		t.Errorf("got %v", err)
	}
	values, err := format.NewAvroDecoder([]value.Column{{Name: "account", Type: value.String}}, "", writers)
	if err != nil {
		t.Fatal(err)
	}
	err = values.Decode(append(format.AvroWireHeader(1), marshalAvro(t, `"string"`, "acct-9")...), row)
	if err == nil || !strings.Contains(err.Error(), "the writer schema is string, not a record") {
		t.Errorf("a value: got %v", err)
	}
	misnamed := `{"type":"record","name":"K","fields":[{"name":"acct","type":"string"}]}`
	schemas[3] = misnamed
	err = one.Decode(append(format.AvroWireHeader(3), marshalAvro(t, misnamed, map[string]any{"acct": "x"})...), row)
	if err == nil || !strings.Contains(err.Error(), "the writer schema record K has none of the columns (account)") {
		t.Errorf("no column by name: got %v", err)
	}
}
