package pipeline

import (
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestUpstreamSeen: rows of a repartition topic at or before the last
// offset taken of their upstream partition are dropped, per partition of
// the topic and in its generation; the offsets taken go into a checkpoint
// and back.
func TestUpstreamSeen(t *testing.T) {
	cols := []value.Column{{Name: "k", Type: value.String}, {Name: "_partition", Type: value.Int}, {Name: "_offset", Type: value.Int}}
	u := newUpstreamSeen([]string{"t"}, map[string][]value.Column{"t": cols})
	o := &message.Origin{Source: "t", Partition: 0}
	batch := func(gen uint64, rows ...[2]int64) *message.Batch {
		b := new(message.Batch)
		b.Reset(len(cols))
		b.Origin, b.Generation = o, gen
		for i, r := range rows {
			row := b.Append(int64(i))
			row[1], row[2] = value.IntValue(r[0]), value.IntValue(r[1])
		}
		return b
	}
	kept := func(b *message.Batch) [][2]int64 {
		var out [][2]int64
		for _, row := range b.Rows {
			out = append(out, [2]int64{row[1].Int(), row[2].Int()})
		}
		return out
	}
	b := batch(0, [2]int64{0, 10}, [2]int64{1, 5}, [2]int64{0, 11})
	if n := u.drop(b); n != 0 {
		t.Fatalf("first rows: %d dropped", n)
	}
	// Upstream partition 0 written again from offset 10 after a crash.
	b = batch(0, [2]int64{0, 10}, [2]int64{0, 11}, [2]int64{0, 12}, [2]int64{1, 6})
	if n := u.drop(b); n != 2 || !slices.Equal(kept(b), [][2]int64{{0, 12}, {1, 6}}) {
		t.Errorf("rows written again: %d dropped, kept %v; want 2, [[0 12] [1 6]]", n, kept(b))
	}
	want := []checkpoint.UpstreamOffset{{Partition: 0, Offset: 12}, {Partition: 1, Offset: 6}}
	if got := u.offsets(o); !slices.Equal(got, want) {
		t.Errorf("offsets %v; want %v", got, want)
	}
	// The partition came back in another generation: its state starts
	// over, as do the offsets, unless a checkpoint restores them.
	o.Generation.Store(1)
	if n := u.drop(batch(1, [2]int64{0, 11})); n != 0 {
		t.Errorf("a new generation dropped %d rows", n)
	}
	o.Generation.Store(2)
	u.restore(o, 2, want)
	if n := u.drop(batch(2, [2]int64{0, 12}, [2]int64{1, 7})); n != 1 {
		t.Errorf("after a restore: %d dropped; want 1", n)
	}
}
