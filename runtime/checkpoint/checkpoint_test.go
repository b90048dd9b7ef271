package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func sample(id uint64) *Checkpoint {
	return &Checkpoint{
		ID: id, Fingerprint: "ab12", Plan: "Aggregate ...", Created: time.Unix(1700000000, 5).UTC(), Watermark: 42,
		Partitions: []Partition{
			{Source: "trades", Partition: 0, Offset: 99, MaxEventTime: 1000},
			{Source: "trades", Partition: 1, Offset: -1, MaxEventTime: math.MinInt64, Ended: true},
			{Source: "trades", Partition: 2, Offset: 7, MaxEventTime: 9, Upstream: []UpstreamOffset{{Partition: 0, Offset: 70}, {Partition: 3, Offset: 12}}},
		},
		State:        []byte{1, 2, 3},
		SinkPosition: 5,
	}
}

// TestEncodeDecode: a checkpoint reads back as itself; any byte changed or
// cut is ErrCorrupt.
func TestEncodeDecode(t *testing.T) {
	c := sample(7)
	b := c.Encode()
	got, err := Decode(b)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("Decode = %+v, %v; want %+v", got, err, c)
	}
	for i := range b {
		bad := append([]byte{}, b...)
		bad[i] ^= 0x40
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d altered: %v; want ErrCorrupt", i, err)
		}
	}
	for n := range len(b) {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v; want ErrCorrupt", n, err)
		}
	}
}

// TestDecodeVersion1: checkpoints of the earlier formats still read: the
// first without a sink position, the second without upstream offsets,
// which is also how a checkpoint without them is written, and each is
// written in the earliest version that holds it.
func TestDecodeVersion1(t *testing.T) {
	c := sample(3)
	for i := range c.Partitions {
		c.Partitions[i].Upstream = nil
	}
	b := c.Encode()
	if b[len(magic)] != 2 {
		t.Fatalf("a checkpoint without upstream offsets is written as version %d; want 2", b[len(magic)])
	}
	if got, err := Decode(b); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("version 2: Decode = %+v, %v; want %+v", got, err, c)
	}
	if v3 := sample(3).Encode(); v3[len(magic)] != 3 {
		t.Errorf("a checkpoint with upstream offsets is written as version %d; want 3", v3[len(magic)])
	}
	// A join's upstream offsets name their source: version 4.
	joined := sample(3)
	joined.Partitions[2].Upstream = []UpstreamOffset{{Source: "trades", Partition: 0, Offset: 70}, {Source: "quotes", Partition: 0, Offset: 12}}
	v4 := joined.Encode()
	if v4[len(magic)] != 4 {
		t.Errorf("a checkpoint with a join's upstream offsets is written as version %d; want 4", v4[len(magic)])
	}
	if got, err := Decode(v4); err != nil || !reflect.DeepEqual(got, joined) {
		t.Fatalf("version 4: Decode = %+v, %v; want %+v", got, err, joined)
	}
	// A repartition topic's partition keeps its reader's state: version 5.
	marked := sample(3)
	marked.Partitions[1].ReaderState = []byte{1, 2, 0, 7}
	v5 := marked.Encode()
	if v5[len(magic)] != 5 {
		t.Errorf("a checkpoint with a reader's state is written as version %d; want 5", v5[len(magic)])
	}
	if got, err := Decode(v5); err != nil || !reflect.DeepEqual(got, marked) {
		t.Fatalf("version 5: Decode = %+v, %v; want %+v", got, err, marked)
	}
	// Version 2 is version 1 with the position's varint (5: one byte),
	// the delta flag and the epoch's varint (0: one byte) before the
	// checksum.
	v1 := append([]byte{}, b[:len(b)-4-3]...)
	v1[len(magic)] = 1
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	got, err := Decode(v1)
	if err != nil {
		t.Fatal(err)
	}
	c.SinkPosition = -1
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("Decode = %+v; want %+v", got, c)
	}
}

// TestDir: the newest checkpoint is the latest, with the deltas back to the
// whole checkpoint they are on; the chains of the two newest whole
// checkpoints stay and older files go; a damaged checkpoint is passed over
// for the newest one whose chain reads whole; an empty directory has none.
func TestDir(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Path: filepath.Join(t.TempDir(), "state")}
	if c, err := d.Latest(ctx); c != nil || err != nil {
		t.Fatalf("Latest of nothing = %v, %v", c, err)
	}
	ids := func(ch Chain) []uint64 {
		var ids []uint64
		for _, c := range ch {
			ids = append(ids, c.ID)
		}
		return ids
	}
	latest := func(want ...uint64) {
		t.Helper()
		ch, err := d.Latest(ctx)
		if err != nil || !slices.Equal(ids(ch), want) {
			t.Fatalf("Latest = %v, %v; want the chain %v", ids(ch), err, want)
		}
	}
	for id := uint64(1); id <= 5; id++ {
		if err := d.Save(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
	}
	latest(5)
	if entries, _ := os.ReadDir(d.Path); len(entries) != 2 {
		t.Errorf("%d files kept; want the 2 newest", len(entries))
	}
	// Deltas 6 and 7 on 5, whole 8, delta 9.
	for id := uint64(6); id <= 9; id++ {
		c := sample(id)
		c.Delta = id != 8
		if err := d.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	latest(8, 9)
	if entries, _ := os.ReadDir(d.Path); len(entries) != 5 {
		t.Errorf("%d files kept; want 5 to 9, the chains of the 2 newest whole checkpoints", len(entries))
	}
	if err := os.WriteFile(d.name(8, false), []byte("SLUICECP garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	latest(5, 6, 7)
	os.Remove(d.name(6, true))
	latest(5)
	os.WriteFile(d.name(5, false), nil, 0o600)
	if c, err := d.Latest(ctx); c != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Latest with no chain whole = %v, %v; want ErrCorrupt", ids(c), err)
	}
}
