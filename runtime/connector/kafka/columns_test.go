package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// testLane is a lane of a source with schema, as Open and useSchema make it,
// without a client.
func testLane(t testing.TB, keyFormat v1alpha1.KeyFormat, f v1alpha1.Format, schema []v1alpha1.Column) *Lane {
	t.Helper()
	cols := make([]value.Column, len(schema), len(schema)+len(schemas.KafkaMeta))
	for i, c := range schema {
		typ, err := value.ParseType(c.Type)
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = value.Column{Name: c.Name, Type: typ}
	}
	cols = append(cols, schemas.KafkaMeta...)
	l := &Lane{origin: &message.Origin{Source: "t", Topic: "in"}, width: len(cols), meta: len(schema)}
	if f == v1alpha1.FormatCSV {
		l.dec = format.NewCSVDecoderInOrder(cols[:len(schema)])
	} else {
		l.dec = format.NewJSONDecoder(cols[:len(schema)])
	}
	s := &Source{lanes: []*Lane{l}}
	if err := s.useSchema(&v1alpha1.KafkaSource{KeyFormat: keyFormat}, f, schema, cols); err != nil {
		t.Fatal(err)
	}
	return l
}

// decodeOne decodes r with l and returns its row's text, or its error event.
func decodeOne(l *Lane, r *kgo.Record) ([]string, *message.ErrorEvent) {
	var b message.Batch
	b.Reset(l.width)
	var errs message.ErrorBatch
	l.decode(&b, &errs, r)
	if len(errs.Events) > 0 {
		return nil, &errs.Events[0]
	}
	out := make([]string, l.width)
	for i, v := range b.Rows[0] {
		out[i] = "NULL"
		if !v.IsNull() {
			out[i] = string(v.AppendText(nil))
		}
	}
	return out, nil
}

func header(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// TestKeyAndHeaderColumns: key and header columns, interleaved with value
// columns, land in schema order; the value decoder sees only the value's
// columns; _key stays the raw key.
func TestKeyAndHeaderColumns(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		keyFormat v1alpha1.KeyFormat
		format    v1alpha1.Format
		schema    []v1alpha1.Column
		rec       *kgo.Record
		want      string // the row's values joined by |, or the error's text
		wantErr   bool
	}{
		{
			name:      "json key, headers",
			keyFormat: v1alpha1.KeyFormatJSON,
			schema: []v1alpha1.Column{
				{Name: "id", Type: "int"},
				{Name: "account", Type: "int", Key: true},
				{Name: "tenant", Type: "string", Header: "tenant"},
				{Name: "region", Type: "string", Key: true},
				{Name: "amount", Type: "decimal(10,2)"},
				{Name: "attempt", Type: "int", Header: "attempt"},
			},
			rec: &kgo.Record{
				Key: []byte(`{"account": 7, "other": [1]}`), Value: []byte(`{"amount": 2.5, "id": 1, "account": 99}`),
				Headers: []kgo.RecordHeader{header("attempt", "3"), header("tenant", "acme"), header("tenant", "second")},
			},
			want: `1|7|acme|NULL|2.50|3|{"account": 7, "other": [1]}|0|5|2024-01-02T03:04:05Z`,
		},
		{
			name: "string key, csv value",
			// With the default keyFormat the whole key is the key column's
			// text; a CSV value's fields are the value columns in order.
			format: v1alpha1.FormatCSV,
			schema: []v1alpha1.Column{
				{Name: "id", Type: "int"},
				{Name: "account", Type: "int", Key: true},
				{Name: "amount", Type: "double"},
				{Name: "tenant", Type: "string", Header: "tenant"},
			},
			rec:  &kgo.Record{Key: []byte("42"), Value: []byte("1,2.5")},
			want: "1|42|2.5|NULL|42|0|5|2024-01-02T03:04:05Z",
		},
		{
			name:   "no key",
			schema: []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "account", Type: "int", Key: true}},
			rec:    &kgo.Record{Value: []byte(`{"id": 1}`)},
			want:   "1|NULL|NULL|0|5|2024-01-02T03:04:05Z",
		},
		{
			name: "only key and header columns",
			// The value is not read at all, not even as JSON.
			schema: []v1alpha1.Column{{Name: "account", Type: "string", Key: true}, {Name: "tenant", Type: "string", Header: "tenant"}},
			rec:    &kgo.Record{Key: []byte("a-7"), Value: []byte("not json"), Headers: []kgo.RecordHeader{header("tenant", "acme")}},
			want:   "a-7|acme|a-7|0|5|2024-01-02T03:04:05Z",
		},
		{
			name:      "key not json",
			keyFormat: v1alpha1.KeyFormatJSON,
			schema:    []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "account", Type: "int", Key: true}},
			rec:       &kgo.Record{Key: []byte("7"), Value: []byte(`{"id": 1}`)},
			want:      "in/0 offset 5: key: invalid JSON at byte 1: want an object",
			wantErr:   true,
		},
		{
			name:      "json key field of the wrong type",
			keyFormat: v1alpha1.KeyFormatJSON,
			schema:    []v1alpha1.Column{{Name: "account", Type: "int", Key: true}},
			rec:       &kgo.Record{Key: []byte(`{"account": "seven"}`)},
			want:      `in/0 offset 5: key: column account: invalid int "seven"`,
			wantErr:   true,
		},
		{
			name:    "string key not an int",
			schema:  []v1alpha1.Column{{Name: "account", Type: "int", Key: true}},
			rec:     &kgo.Record{Key: []byte("seven")},
			want:    `in/0 offset 5: column account (key): invalid int "seven"`,
			wantErr: true,
		},
		{
			name:    "header not a timestamp",
			schema:  []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "sent", Type: "timestamp", Header: "sent-at"}},
			rec:     &kgo.Record{Value: []byte(`{"id": 1}`), Headers: []kgo.RecordHeader{header("sent-at", "yesterday")}},
			want:    `in/0 offset 5: column sent (header sent-at): invalid timestamp "yesterday" (want RFC 3339, e.g. 2024-01-02T15:04:05Z)`,
			wantErr: true,
		},
		{
			name:    "header not UTF-8",
			schema:  []v1alpha1.Column{{Name: "tenant", Type: "string", Header: "tenant"}},
			rec:     &kgo.Record{Headers: []kgo.RecordHeader{{Key: "tenant", Value: []byte{0xff}}}},
			want:    `in/0 offset 5: column tenant (header tenant): invalid UTF-8`,
			wantErr: true,
		},
		{
			name:    "bad value",
			schema:  []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "account", Type: "int", Key: true}},
			rec:     &kgo.Record{Key: []byte("7"), Value: []byte(`{"id": "x"}`)},
			want:    `in/0 offset 5: column id: invalid int "x"`,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLane(t, tt.keyFormat, tt.format, tt.schema)
			tt.rec.Topic, tt.rec.Offset, tt.rec.Timestamp = "in", 5, ts
			row, ev := decodeOne(l, tt.rec)
			switch {
			case tt.wantErr && ev == nil:
				t.Fatalf("decoded %q; want error %q", row, tt.want)
			case tt.wantErr:
				if ev.Stage != "decode" || ev.Error != tt.want || ev.Source.Offset != 5 {
					t.Errorf("error event %+v; want stage decode, offset 5, error %q", ev, tt.want)
				}
			case ev != nil:
				t.Fatalf("error %q", ev.Error)
			default:
				if got := strings.Join(row, "|"); got != tt.want {
					t.Errorf("row\n%s\nwant\n%s", got, tt.want)
				}
			}
		})
	}
}

// TestUseSchemaUnchanged: a schema without key or header columns keeps the
// lanes' plain value decoding.
func TestUseSchemaUnchanged(t *testing.T) {
	l := testLane(t, "", v1alpha1.FormatJSON, []v1alpha1.Column{{Name: "id", Type: "int"}})
	if l.rec != nil {
		t.Error("a schema of value columns only got a record decoder")
	}
	s := &Source{lanes: []*Lane{{}}}
	schema := []v1alpha1.Column{{Name: "a", Type: "int", Key: true}, {Name: "b", Type: "int", Key: true}}
	cols := append([]value.Column{{Name: "a", Type: value.Int}, {Name: "b", Type: value.Int}}, schemas.KafkaMeta...)
	err := s.useSchema(&v1alpha1.KafkaSource{}, v1alpha1.FormatJSON, schema, cols)
	if err == nil || !strings.Contains(err.Error(), "keyFormat string") {
		t.Errorf("two string key columns: %v", err)
	}
}

// TestDecodeAllocs: decoding a record allocates nothing, with or without
// key and header columns.
func TestDecodeAllocs(t *testing.T) {
	rec := &kgo.Record{
		Key: []byte(`{"account": 7}`), Value: []byte(`{"id": 1, "name": "x", "amount": 2.5}`),
		Headers: []kgo.RecordHeader{header("tenant", "acme")},
	}
	for _, tt := range []struct {
		name   string
		schema []v1alpha1.Column
	}{
		{"value only", []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "name", Type: "string"}, {Name: "amount", Type: "double"}}},
		{"key and header", []v1alpha1.Column{
			{Name: "id", Type: "int"}, {Name: "account", Type: "int", Key: true}, {Name: "name", Type: "string"},
			{Name: "tenant", Type: "string", Header: "tenant"}, {Name: "amount", Type: "double"},
		}},
	} {
		l := testLane(t, v1alpha1.KeyFormatJSON, v1alpha1.FormatJSON, tt.schema)
		var b message.Batch
		var errs message.ErrorBatch
		allocs := testing.AllocsPerRun(100, func() {
			b.Reset(l.width)
			for range 64 {
				l.decode(&b, &errs, rec)
			}
		})
		if errs.Records > 0 {
			t.Fatalf("%s: %s", tt.name, errs.Events[0].Error)
		}
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per 64 records; want 0", tt.name, allocs)
		}
	}
}

// BenchmarkLaneDecode measures a lane's decoding of a record, with and
// without columns from the key and headers.
func BenchmarkLaneDecode(b *testing.B) {
	rec := &kgo.Record{
		Key: []byte(`{"account": 7}`), Value: []byte(`{"id": 1, "name": "x", "amount": 2.5}`),
		Headers: []kgo.RecordHeader{header("tenant", "acme")},
	}
	for _, bc := range []struct {
		name   string
		schema []v1alpha1.Column
	}{
		{"value", []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "name", Type: "string"}, {Name: "amount", Type: "double"}}},
		{"key-header", []v1alpha1.Column{
			{Name: "id", Type: "int"}, {Name: "account", Type: "int", Key: true}, {Name: "name", Type: "string"},
			{Name: "tenant", Type: "string", Header: "tenant"}, {Name: "amount", Type: "double"},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := testLane(b, v1alpha1.KeyFormatJSON, v1alpha1.FormatJSON, bc.schema)
			var batch message.Batch
			var errs message.ErrorBatch
			batch.Reset(l.width)
			b.ReportAllocs()
			for b.Loop() {
				if batch.Len() == 512 {
					batch.Reset(l.width)
				}
				l.decode(&batch, &errs, rec)
			}
		})
	}
}
