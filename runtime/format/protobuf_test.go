package format_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

const bidProto = `syntax = "proto3";
package nexmark;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Bid {
  int64 auction = 1;
  optional int64 bidder = 2;
  sint64 price = 3;
  repeated string tags = 4;
  string channel = 5;
  map<string, Note> extra = 6;
  enum Kind { BUY = 0; SELL = 1; }
  Kind kind = 7;
  float ratio = 8;
  bool ok = 9;
  Note next = 10;
  google.protobuf.Timestamp ts = 11;
  google.protobuf.Int64Value maybe = 12;
  fixed32 small = 13;
  uint64 big = 1000;
}

message Note {
  int32 n = 1;
  bytes f = 2;
  Note inner = 3;
}
`

// compileTestProto compiles a .proto text with the reference library
// stack (protocompile, then the protobuf module's dynamic messages).
func compileTestProto(t testing.TB, text, message string) protoreflect.MessageDescriptor {
	t.Helper()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"t.proto": text})})}
	files, err := c.Compile(context.Background(), "t.proto")
	if err != nil {
		t.Fatal(err)
	}
	return files[0].FindDescriptorByName(protoreflect.FullName(message)).(protoreflect.MessageDescriptor)
}

// protoBid is bid i as a dynamic message of nexmark.Bid, marshalled by the
// protobuf module.
func protoBid(t testing.TB, md protoreflect.MessageDescriptor, i int) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	f := md.Fields().ByName
	set := func(name string, v protoreflect.Value) { m.Set(f(protoreflect.Name(name)), v) }
	set("auction", protoreflect.ValueOfInt64(int64(1000+i)))
	if i%3 != 0 {
		set("bidder", protoreflect.ValueOfInt64(int64(i*7)))
	}
	if i%4 != 0 {
		set("price", protoreflect.ValueOfInt64(int64(i*137-5000)))
	}
	tags := m.Mutable(f("tags")).List()
	for j := range i % 5 {
		tags.Append(protoreflect.ValueOfString(fmt.Sprint("t", j)))
	}
	set("channel", protoreflect.ValueOfString(fmt.Sprintf("channel-%d-é", i%7)))
	note := md.ParentFile().Messages().ByName("Note")
	extra := m.Mutable(f("extra")).Map()
	for j := range i % 3 {
		n := dynamicpb.NewMessage(note)
		n.Set(note.Fields().ByName("n"), protoreflect.ValueOfInt32(int32(-j)))
		n.Set(note.Fields().ByName("f"), protoreflect.ValueOfBytes([]byte{1, 2, 3}))
		extra.Set(protoreflect.ValueOfString(fmt.Sprint("k", j)).MapKey(), protoreflect.ValueOfMessage(n))
	}
	set("kind", protoreflect.ValueOfEnum(protoreflect.EnumNumber(i%2)))
	set("ratio", protoreflect.ValueOfFloat32(float32(i)/8))
	set("ok", protoreflect.ValueOfBool(i%2 == 1))
	if i%2 == 0 {
		n := dynamicpb.NewMessage(note)
		n.Set(note.Fields().ByName("inner"), protoreflect.ValueOfMessage(dynamicpb.NewMessage(note)))
		set("next", protoreflect.ValueOfMessage(n))
	}
	if i%5 != 0 {
		set("ts", protoreflect.ValueOfMessage(timestamppb.New(time.UnixMilli(1_700_000_000_000+int64(i)*1001-int64(i%2)*4e12)).ProtoReflect()))
	}
	if i%2 == 1 {
		w := dynamicpb.NewMessage(f("maybe").Message())
		w.Set(w.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfInt64(int64(-i)))
		set("maybe", protoreflect.ValueOfMessage(w))
	}
	set("small", protoreflect.ValueOfUint32(uint32(4e9)+uint32(i)))
	set("big", protoreflect.ValueOfUint64(uint64(i)<<40))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protoTime reads a google.protobuf.Timestamp of a dynamic message.
func protoTime(m protoreflect.Message) value.Value {
	f := m.Descriptor().Fields()
	return value.TimeValue(time.Unix(m.Get(f.ByNumber(1)).Int(), m.Get(f.ByNumber(2)).Int()))
}

// TestProtobufDecodeAgainstLibrary decodes messages the protobuf module
// encoded, in the registry wire format with a nested message's indexes
// and plain: every field the columns name is read, the others skipped; an
// absent field without presence is its zero value, one with presence
// NULL.
func TestProtobufDecodeAgainstLibrary(t *testing.T) {
	md := compileTestProto(t, bidProto, "nexmark.Bid")
	cols := []value.Column{
		{Name: "ts", Type: value.Timestamp}, {Name: "channel", Type: value.String}, {Name: "bidder", Type: value.Int},
		{Name: "price", Type: value.Decimal(14, 2)}, {Name: "kind", Type: value.String}, {Name: "ratio", Type: value.Double},
		{Name: "ok", Type: value.Bool}, {Name: "maybe", Type: value.Int}, {Name: "small", Type: value.Int}, {Name: "big", Type: value.Double},
	}
	reg, err := format.NewProtobufDecoder(cols, "", "", func(id uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaProtobuf, Text: bidProto}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := format.NewProtobufDecoder(cols, bidProto, "nexmark.Bid", nil)
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, len(cols))
	for i := range 100 {
		b := protoBid(t, md, i)
		var want []string
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			fd := md.Fields().ByName(protoreflect.Name(c.Name))
			v := m.Get(fd)
			switch {
			case fd.HasPresence() && !m.Has(fd):
				want = append(want, "NULL")
			case c.Name == "ts":
				want = append(want, protoTime(v.Message()).String())
			case c.Name == "maybe":
				want = append(want, fmt.Sprint(v.Message().Get(v.Message().Descriptor().Fields().ByNumber(1)).Int()))
			case c.Name == "kind":
				want = append(want, string(fd.Enum().Values().ByNumber(v.Enum()).Name()))
			case c.Name == "price":
				want = append(want, fmt.Sprintf("%d.00", v.Int()))
			case c.Name == "ratio":
				want = append(want, fmt.Sprint(float64(v.Float())))
			case c.Name == "big":
				want = append(want, value.DoubleValue(float64(v.Uint())).String())
			default:
				want = append(want, fmt.Sprint(v.Interface()))
			}
		}
		for _, tc := range []struct {
			name string
			d    *format.ProtobufDecoder
			rec  []byte
		}{
			{"plain", plain, b},
			// Bid is the file's first message: indexes [0], a single 0.
			{"registry", reg, append(format.ProtobufWireHeader(3), b...)},
		} {
			clear(row)
			if err := tc.d.Decode(tc.rec, row); err != nil {
				t.Fatalf("%s record %d: %v", tc.name, i, err)
			}
			got := make([]string, len(row))
			for j, v := range row {
				got[j] = v.String()
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("%s record %d:\n got %q\nwant %q", tc.name, i, got, want)
			}
		}
	}
	// Note, the file's second message, by its indexes: a count of 1
	// (zig-zag 2), then index 1 (zig-zag 2).
	note := compileTestProto(t, bidProto, "nexmark.Note")
	n := dynamicpb.NewMessage(note)
	n.Set(note.Fields().ByName("n"), protoreflect.ValueOfInt32(-42))
	b, _ := proto.Marshal(n)
	d, err := format.NewProtobufDecoder([]value.Column{{Name: "n", Type: value.Int}}, "", "", func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaProtobuf, Text: bidProto}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := append(append(format.AvroWireHeader(3), 2, 2), b...)
	if err := d.Decode(rec, row[:1]); err != nil || row[0].String() != "-42" {
		t.Fatalf("got %v, %v", row[0], err)
	}
}

// TestProtobufEncodeAgainstLibrary has the protobuf module decode what
// the encoder wrote, with the schema ProtobufSchemaOf gave.
func TestProtobufEncodeAgainstLibrary(t *testing.T) {
	cols := []value.Column{
		{Name: "b", Type: value.Bool}, {Name: "n", Type: value.Int}, {Name: "d", Type: value.Double},
		{Name: "s", Type: value.String}, {Name: "m", Type: value.Decimal(18, 4)}, {Name: "ts", Type: value.Timestamp},
	}
	schema, err := format.ProtobufSchemaOf(cols)
	if err != nil {
		t.Fatal(err)
	}
	md := compileTestProto(t, schema, "sluice.Row")
	enc := format.NewProtobufEncoder(cols, format.ProtobufWireHeader(300))
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
		if string(b[:6]) != string(append(format.AvroWireHeader(300), 0)) {
			t.Fatalf("header % x", b[:6])
		}
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b[6:], m); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		for j, c := range cols {
			fd := md.Fields().Get(j)
			if row[j].IsNull() {
				if m.Has(fd) {
					t.Fatalf("row %d %s: set, want absent", i, c.Name)
				}
				continue
			}
			var got string
			switch c.Type.Kind {
			case value.KindTimestamp:
				got = protoTime(m.Get(fd).Message()).String()
			case value.KindDouble:
				got = value.DoubleValue(m.Get(fd).Float()).String()
			default:
				got = fmt.Sprint(m.Get(fd).Interface())
			}
			if want := row[j].String(); got != want {
				t.Fatalf("row %d %s: got %s, want %s", i, c.Name, got, want)
			}
		}
	}
}

// TestProtobufEvolution: a writer message type whose field changed type
// fails each record of it, naming the field; a reader field the writer
// lacks is NULL; wire type mismatches and malformed data fail the record.
func TestProtobufEvolution(t *testing.T) {
	v1 := `syntax = "proto3"; message T { string sym = 1; int32 qty = 2; string old = 3; }`
	v2 := `syntax = "proto3"; message T { int64 qty = 2; string sym = 1; optional string venue = 4; }`
	bad := `syntax = "proto3"; message T { string sym = 1; string qty = 2; }`
	schemas := map[uint32]string{1: v1, 2: v2, 3: bad}
	cols, err := format.ProtobufColumns(v2, "T")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cols); got != "[{qty int} {sym string} {venue string}]" {
		t.Fatalf("columns %s", got)
	}
	d, err := format.NewProtobufDecoder(cols, "", "", func(id uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaProtobuf, Text: schemas[id]}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(id uint32, fields ...any) []byte {
		b := format.ProtobufWireHeader(id)
		for i := 0; i < len(fields); i += 2 {
			num := protowire.Number(fields[i].(int))
			switch v := fields[i+1].(type) {
			case string:
				b = protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
			case int:
				b = protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), uint64(v))
			}
		}
		return b
	}
	for _, tc := range []struct {
		rec  []byte
		want string
	}{
		{msg(1, 1, "MSFT", 2, -5, 3, "x"), "-5|MSFT|NULL"},
		{msg(2, 1, "AAPL", 2, 1<<40, 4, "XLON"), "1099511627776|AAPL|XLON"},
		{msg(2, 1, "ZERO"), "0|ZERO|NULL"},
		{msg(3, 1, "IBM", 2, "7"), "error: schema id 3: field qty is string, which does not read as int (column qty)"},
		{msg(2, 1, 5), "error: schema id 2: field sym at byte 0: wire type 0, want 2"},
		{msg(2, 1, "AAPL")[:9], "error: schema id 2: field sym at byte 0: unexpected EOF"},
		{append(format.AvroWireHeader(2), 0x7f), "error: schema id 2: -64 message indexes"},
	} {
		row := make(value.Row, len(cols))
		err := d.Decode(tc.rec, row)
		got := fmt.Sprint(row[0], "|", row[1], "|", row[2])
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
}

// TestProtobufMalformed feeds every truncation and random corruptions of
// valid messages: each decodes or fails, never panics.
func TestProtobufMalformed(t *testing.T) {
	md := compileTestProto(t, bidProto, "nexmark.Bid")
	cols := []value.Column{{Name: "channel", Type: value.String}, {Name: "ts", Type: value.Timestamp}, {Name: "big", Type: value.Int}}
	d, err := format.NewProtobufDecoder(cols, bidProto, "nexmark.Bid", nil)
	if err != nil {
		t.Fatal(err)
	}
	row := make(value.Row, len(cols))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		rec := protoBid(t, md, i)
		for n := range len(rec) {
			_ = d.Decode(rec[:n], row)
		}
		for range 200 {
			c := append([]byte(nil), rec...)
			c[rng.IntN(len(c))] = byte(rng.Uint32())
			_ = d.Decode(c, row)
		}
	}
}

func TestProtobufColumnsRefused(t *testing.T) {
	for _, tc := range []struct{ field, want string }{
		{"repeated int64 f = 1;", "field f is repeated"},
		{"map<string, string> f = 1;", "field f is repeated"},
		{"M f = 1;", "field f is the message M"},
		{"bytes f = 1;", "field f is bytes, which has no SQL type here"},
	} {
		_, err := format.ProtobufColumns(`syntax = "proto3"; message M { `+tc.field+` }`, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.field, err, tc.want)
		}
	}
	if _, err := format.ProtobufColumns(`syntax = "proto3"; message M { int64 f = 1 }`, ""); err == nil || !strings.Contains(err.Error(), "schema.proto:1:") {
		t.Errorf("a syntax error: got %v, want its position", err)
	}
	if _, err := format.ProtobufColumns(`syntax = "proto3"; package p; message M { int64 f = 1; }`, "M"); err == nil || !strings.Contains(err.Error(), "no message M (messages are named in full, with the package: p.M)") {
		t.Errorf("got %v", err)
	}
}

// BenchmarkProtobufDecode decodes the same messages with the engine's
// decoder and with the protobuf module: into generated code, its fastest
// path (google.protobuf.FieldDescriptorProto, the generated message at
// hand whose fields look like a record's: strings, ints, an enum), and into
// a dynamic message, its path for a schema known at run time. The ratios
// are the engine's messages per second over the library's.
func BenchmarkProtobufDecode(b *testing.B) {
	const schema = `syntax = "proto2";
message Field {
  optional string name = 1; optional string extendee = 2; optional int32 number = 3;
  optional Label label = 4; optional Type type = 5; optional string type_name = 6;
  optional string default_value = 7; optional int32 oneof_index = 9; optional string json_name = 10;
  optional bool proto3_optional = 17;
  enum Label { LABEL_OPTIONAL = 1; LABEL_REPEATED = 3; LABEL_REQUIRED = 2; }
  enum Type { TYPE_DOUBLE = 1; TYPE_INT64 = 3; TYPE_STRING = 9; TYPE_MESSAGE = 11; }
}`
	md := compileTestProto(b, schema, "Field")
	recs := make([][]byte, 1024)
	for i := range recs {
		recs[i], _ = proto.Marshal(&descriptorpb.FieldDescriptorProto{
			Name: proto.String(fmt.Sprint("field_", i)), Number: proto.Int32(int32(i%500 + 1)),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
			TypeName: proto.String(".markets.Trade" + strings.Repeat("x", i%16)), JsonName: proto.String(fmt.Sprint("field", i)),
			OneofIndex: proto.Int32(int32(i % 3)), Proto3Optional: proto.Bool(i%2 == 0),
		})
	}
	cols, err := format.ProtobufColumns(schema, "Field")
	if err != nil {
		b.Fatal(err)
	}
	d, err := format.NewProtobufDecoder(cols, schema, "Field", nil)
	if err != nil {
		b.Fatal(err)
	}
	row := make(value.Row, len(cols))
	var generated descriptorpb.FieldDescriptorProto
	dynamic := dynamicpb.NewMessage(md)
	var engine, gen, dyn time.Duration
	for b.Loop() {
		t0 := time.Now()
		for _, r := range recs {
			clear(row)
			if err := d.Decode(r, row); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, r := range recs {
			if err := proto.Unmarshal(r, &generated); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for _, r := range recs {
			dynamic.Reset()
			if err := proto.Unmarshal(r, dynamic); err != nil {
				b.Fatal(err)
			}
		}
		engine, gen, dyn = engine+t1.Sub(t0), gen+t2.Sub(t1), dyn+time.Since(t2)
	}
	n := float64(b.N * len(recs))
	b.ReportMetric(n/engine.Seconds(), "engine-rec/s")
	b.ReportMetric(gen.Seconds()/engine.Seconds(), "engine/generated")
	b.ReportMetric(dyn.Seconds()/engine.Seconds(), "engine/dynamic")
	b.ReportMetric(testing.AllocsPerRun(10, func() { _ = d.Decode(recs[1], row) }), "engine-allocs/rec")
}

// TestProtobufMergeAndOneof: as the protobuf module reads them, a message
// field written twice merges (a review found the second replacing the
// first), and of a oneof's fields the last one written is set, the others
// absent: also when the last is a field no column names, or that the
// query does not read (Prune).
func TestProtobufMergeAndOneof(t *testing.T) {
	const schema = `syntax = "proto3";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message M {
  google.protobuf.Timestamp ts = 1;
  google.protobuf.Int64Value w = 2;
  oneof o { int64 a = 3; string b = 4; }
}`
	md := compileTestProto(t, schema, "M")
	ts := func(secs, nanos uint64) []byte {
		var body []byte
		if secs != 0 {
			body = protowire.AppendVarint(protowire.AppendTag(body, 1, protowire.VarintType), secs)
		}
		if nanos != 0 {
			body = protowire.AppendVarint(protowire.AppendTag(body, 2, protowire.VarintType), nanos)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), body)
	}
	wrapper := func(v uint64) []byte {
		var body []byte
		if v != 0 {
			body = protowire.AppendVarint(protowire.AppendTag(body, 1, protowire.VarintType), v)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), body)
	}
	a := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 9)
	bField := protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), "x")
	cols, err := format.ProtobufColumns(schema, "M")
	if err != nil {
		t.Fatal(err)
	}
	d, err := format.NewProtobufDecoder(cols, schema, "M", nil)
	if err != nil {
		t.Fatal(err)
	}
	withoutB, err := format.NewProtobufDecoder(cols[:3], schema, "M", nil)
	if err != nil {
		t.Fatal(err)
	}
	unreadB, err := format.NewProtobufDecoder(cols, schema, "M", nil)
	if err != nil {
		t.Fatal(err)
	}
	unreadB.Prune([]bool{true, true, true, false})
	for _, rec := range [][]byte{
		slices.Concat(ts(100, 5), ts(200, 0)),
		slices.Concat(ts(100, 0), ts(0, 7)),
		slices.Concat(wrapper(7), wrapper(0)),
		slices.Concat(a, bField),
		slices.Concat(bField, a),
		slices.Concat(a, wrapper(3), wrapper(4), ts(1, 1)),
	} {
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(rec, m); err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range md.Fields().Len() {
			f := md.Fields().Get(i)
			switch {
			case !m.Has(f):
				want = append(want, "NULL")
			case f.Name() == "ts":
				want = append(want, protoTime(m.Get(f).Message()).String())
			case f.Name() == "w":
				want = append(want, fmt.Sprint(m.Get(f).Message().Get(f.Message().Fields().ByNumber(1)).Int()))
			default:
				want = append(want, fmt.Sprint(m.Get(f).Interface()))
			}
		}
		row := make(value.Row, len(cols))
		if err := d.Decode(rec, row); err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(row))
		for i, v := range row {
			got[i] = v.String()
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("% x:\n got %q\nwant %q", rec, got, want)
		}
		for name, d := range map[string]*format.ProtobufDecoder{"without b": withoutB, "b unread": unreadB} {
			row := make(value.Row, len(cols))
			if err := d.Decode(rec, row); err != nil {
				t.Fatal(err)
			}
			for i, v := range row[:3] {
				if v.String() != want[i] {
					t.Errorf("%s, % x: column %s %v; want %s", name, rec, cols[i].Name, v, want[i])
				}
			}
		}
	}
}

// TestProtobufSchemaOfRefused: output columns whose fields protoc would
// refuse together are refused when the query is planned.
func TestProtobufSchemaOfRefused(t *testing.T) {
	_, err := format.ProtobufSchemaOf([]value.Column{{Name: "x_1", Type: value.Int}, {Name: "x1", Type: value.Int}})
	if err == nil || !strings.Contains(err.Error(), "give the columns other names") {
		t.Errorf("got %v", err)
	}
}

// FuzzProtobufDecode: any bytes, plain or in the registry wire format,
// decode into values of the columns' types, valid UTF-8, or fail with a
// message; never a panic or a hang.
func FuzzProtobufDecode(f *testing.F) {
	md := compileTestProto(f, bidProto, "nexmark.Bid")
	for i := range 8 {
		rec := protoBid(f, md, i)
		f.Add(rec)
		f.Add(append(format.ProtobufWireHeader(3), rec...))
		f.Add(append(append(format.AvroWireHeader(3), 2, 2), rec...))
	}
	f.Add([]byte{})
	cols := []value.Column{
		{Name: "ts", Type: value.Timestamp}, {Name: "channel", Type: value.String}, {Name: "bidder", Type: value.Int},
		{Name: "price", Type: value.Decimal(14, 2)}, {Name: "kind", Type: value.String}, {Name: "maybe", Type: value.Int},
		{Name: "big", Type: value.Double}, {Name: "n", Type: value.Int},
	}
	plain, err := format.NewProtobufDecoder(cols[:7], bidProto, "nexmark.Bid", nil)
	if err != nil {
		f.Fatal(err)
	}
	wire, err := format.NewProtobufDecoder(cols, "", "", func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaProtobuf, Text: bidProto}, nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		checkDecoded(t, cols[:7], rec, plain.Decode)
		checkDecoded(t, cols, rec, wire.Decode)
	})
}
