package format_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// columnReader is a decoder that can leave the columns a query does not
// read undecoded.
type columnReader interface {
	Decode(rec []byte, row value.Row) error
	format.Pruner
}

// TestReadSkipsUnread: a decoder told which columns are read decodes
// those as it would all, and leaves the others NULL, for every format,
// plain and through a registry, with random sets of columns read.
func TestReadSkipsUnread(t *testing.T) {
	cols := []value.Column{
		{Name: "ts", Type: value.Timestamp}, {Name: "channel", Type: value.String},
		{Name: "bidder", Type: value.Int}, {Name: "kind", Type: value.String}, {Name: "ratio", Type: value.Double}, {Name: "ok", Type: value.Bool},
	}
	avroWriters := func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: bidSchema}, nil
	}
	protoWriters := func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaProtobuf, Text: bidProto}, nil
	}
	md := compileTestProto(t, bidProto, "nexmark.Bid")
	type kind struct {
		name   string
		new    func() (columnReader, error)
		record func(i int) []byte
	}
	kinds := []kind{
		{"json", func() (columnReader, error) { return format.NewJSONDecoder(cols), nil }, func(i int) []byte {
			return fmt.Appendf(nil, `{"ts": "2024-01-01T00:00:%02dZ", "extra": [1, {"a": "}"}], "channel": "c\"%d", "bidder": %d, "kind": "BUY", "ratio": %d.5, "ok": true}`, i%60, i, i*7, i)
		}},
		{"avro registry", func() (columnReader, error) { return format.NewAvroDecoder(cols, "", avroWriters) }, func(i int) []byte {
			return append(format.AvroWireHeader(7), marshalAvro(t, bidSchema, bid(i))...)
		}},
		{"avro plain", func() (columnReader, error) { return format.NewAvroDecoder(cols, bidSchema, nil) }, func(i int) []byte {
			return marshalAvro(t, bidSchema, bid(i))
		}},
		{"protobuf registry", func() (columnReader, error) { return format.NewProtobufDecoder(cols, "", "", protoWriters) }, func(i int) []byte {
			return append(format.ProtobufWireHeader(3), protoBid(t, md, i)...)
		}},
		{"protobuf plain", func() (columnReader, error) { return format.NewProtobufDecoder(cols, bidProto, "nexmark.Bid", nil) }, func(i int) []byte {
			return protoBid(t, md, i)
		}},
	}
	rng := rand.New(rand.NewPCG(8, 9))
	for _, k := range kinds {
		whole, err := k.new()
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		for trial := range 20 {
			read := make([]bool, len(cols))
			for i := range read {
				read[i] = rng.IntN(2) == 0
			}
			pruned, err := k.new()
			if err != nil {
				t.Fatal(err)
			}
			pruned.Prune(read)
			all, some := make(value.Row, len(cols)), make(value.Row, len(cols))
			for i := range 30 {
				rec := k.record(trial*30 + i)
				clear(all)
				clear(some)
				if err := whole.Decode(rec, all); err != nil {
					t.Fatalf("%s: %v", k.name, err)
				}
				if err := pruned.Decode(rec, some); err != nil {
					t.Fatalf("%s, reading %v: %v", k.name, read, err)
				}
				for c := range cols {
					want := value.NullValue()
					if read[c] {
						want = all[c]
					}
					if some[c].String() != want.String() {
						t.Fatalf("%s, reading %v: column %s is %v; want %v", k.name, read, cols[c].Name, some[c], want)
					}
				}
			}
		}
	}
}

// TestReadKeepsResolution: which columns a writer schema must have is as
// before when some are not read. A writer of none of the columns read but
// of others is read (the columns read are NULL), and one of none of the
// columns at all is still an error.
func TestReadKeepsResolution(t *testing.T) {
	cols := []value.Column{{Name: "channel", Type: value.String}, {Name: "added", Type: value.Int}}
	d, err := format.NewAvroDecoder(cols, "", func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: bidSchema}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Prune([]bool{false, true})
	row := make(value.Row, 2)
	if err := d.Decode(append(format.AvroWireHeader(7), marshalAvro(t, bidSchema, bid(1))...), row); err != nil || !row[0].IsNull() || !row[1].IsNull() {
		t.Errorf("a writer of channel, reading only added: %v, %v; want both NULL", row, err)
	}
	other, err := format.NewAvroDecoder([]value.Column{{Name: "nothing", Type: value.Int}, {Name: "added", Type: value.Int}}, "", func(uint32) (format.WriterSchema, error) {
		return format.WriterSchema{Type: format.SchemaAvro, Text: bidSchema}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other.Prune([]bool{false, true})
	if err := other.Decode(append(format.AvroWireHeader(7), marshalAvro(t, bidSchema, bid(1))...), row); err == nil {
		t.Error("a writer of none of the columns read without an error")
	}
}
