package kafka

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// mark encodes a mark of count upstream partitions with the given entries.
func mark(count int, entries ...upstreamEntry) []byte {
	b := binary.AppendUvarint(nil, uint64(count))
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(e.p))
		b = binary.AppendVarint(b, e.max)
		b = append(b, boolByte(e.idle))
	}
	return b
}

type upstreamEntry struct {
	p    int32
	max  int64
	idle bool
}

// TestUpstreamMarks: a partition of a repartition topic has an event time
// once every upstream partition has marked, the least over those not idle;
// none while all are idle; a partition's mark never goes back (its new
// engine starts over behind what was handled); a malformed mark is an
// error.
func TestUpstreamMarks(t *testing.T) {
	var u upstreamMarks
	step := func(what string, m []byte, want int64) {
		t.Helper()
		if err := u.take(m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := u.watermark(); got != want {
			t.Errorf("%s: watermark %d; want %d", what, got, want)
		}
	}
	step("one engine's two of three", mark(3, upstreamEntry{0, 100, false}, upstreamEntry{1, 50, false}), math.MinInt64)
	step("another engine's third", mark(3, upstreamEntry{2, 70, false}), 50)
	step("the least goes idle", mark(3, upstreamEntry{0, 100, false}, upstreamEntry{1, 50, true}), 70)
	step("all idle", mark(3, upstreamEntry{0, 100, true}, upstreamEntry{1, 50, true}, upstreamEntry{2, 70, true}), math.MinInt64)
	step("a partition moved, its new engine behind", mark(3, upstreamEntry{0, 20, false}, upstreamEntry{1, 60, false}, upstreamEntry{2, 80, false}), 60)
	if err := u.take(mark(3, upstreamEntry{1, 90, false}, upstreamEntry{0, 1, false})[:8]); err == nil {
		t.Error("a mark cut short was taken")
	}
	if got := u.watermark(); got != 60 {
		t.Errorf("a mark cut short moved the watermark to %d", got)
	}
}

// TestFNV32a: the partition hash is FNV-1a, as hash/fnv computes it: an
// engine of another version must send a key where this one does.
func TestFNV32a(t *testing.T) {
	for _, key := range []string{"", "a", "symbol-42", "\x00\xff"} {
		h := fnv.New32a()
		h.Write([]byte(key))
		if got, want := fnv32a([]byte(key)), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %d; want %d", key, got, want)
		}
	}
}

// TestRepartitionedRows: rows encoded by the writer, each to its key's
// partition, read back equal; a record of rows of another schema, or cut
// short, is a decode error, and none of its rows is taken.
func TestRepartitionedRows(t *testing.T) {
	cols := []value.Column{{Name: "k", Type: value.String}, {Name: "n", Type: value.Int}}
	key := func(dst []byte, row value.Row) []byte { return append(dst, row[0].Str()...) }
	rp := &connector.Repartition{Sides: []connector.RepartitionSide{{Source: "t", Key: key, Columns: cols}}}
	w := &Repartitioner{
		sides:      map[string]*writerSide{"t": {key: key, schema: sideSchema(rp, 0)}},
		partitions: 2,
	}
	in := new(message.Batch)
	in.Reset(len(cols))
	in.Origin = &message.Origin{Source: "t"}
	for i := range 10 {
		row := in.Append(int64(i))
		row[0], row[1] = value.StringValue(fmt.Sprintf("key%d", i%3)), value.IntValue(int64(i))
	}
	rows := in.Rows
	var e rowsEncoding
	w.encode(&e, in)
	if e.rowCount() != len(rows) {
		t.Fatalf("%d rows encoded of %d", e.rowCount(), len(rows))
	}
	lane := func(schema []value.Column) *Lane {
		return &Lane{origin: &message.Origin{Source: "t", Topic: "g.repartition.0"}, sides: newLaneSides(&connector.Repartition{Sides: []connector.RepartitionSide{{Source: "t", Columns: schema}}})}
	}
	read := func(l *Lane, v []byte) (*message.Batch, int) {
		b := new(message.Batch)
		b.Reset(len(cols))
		return b, l.decodeRepartitioned(b, &b.Errors, &kgo.Record{Value: v, Topic: "g.repartition.0"})
	}
	got := 0
	for p, part := range e.parts {
		for i, v := range part.values {
			b, n := read(lane(cols), v)
			if n != b.Len() || b.Errors.Records != 0 {
				t.Fatalf("partition %d: %d taken, %d rows, %d failed", p, n, b.Len(), b.Errors.Records)
			}
			for j, row := range b.Rows {
				want := rows[part.rows[i][j]]
				if !slices.EqualFunc(row, want, value.Equal) {
					t.Errorf("partition %d: row %v; want %v", p, row, want)
				}
				if fnv32a([]byte(row[0].Str()))%2 != uint32(p) {
					t.Errorf("key %s in partition %d", row[0].Str(), p)
				}
			}
			got += b.Len()
		}
	}
	if got != len(rows) {
		t.Errorf("%d rows read of %d", got, len(rows))
	}
	v := e.parts[0].values[0]
	other := []value.Column{{Name: "k", Type: value.String}, {Name: "n", Type: value.Double}}
	for name, tc := range map[string]struct {
		l *Lane
		v []byte
	}{"another schema": {lane(other), v}, "cut short": {lane(cols), v[:len(v)-1]}} {
		b, n := read(tc.l, tc.v)
		if n != 1 || b.Len() != 0 || b.Errors.Records != 1 || len(b.Errors.Events) != 1 {
			t.Errorf("%s: %d taken, %d rows, %d failed; want 1 failed record and no row", name, n, b.Len(), b.Errors.Records)
		} else {
			t.Logf("%s: %s", name, b.Errors.Events[0].Error)
		}
	}
}
