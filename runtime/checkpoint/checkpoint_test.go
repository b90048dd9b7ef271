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
	"testing"
	"time"
)

func sample(id uint64) *Checkpoint {
	return &Checkpoint{
		ID: id, Fingerprint: "ab12", Plan: "Aggregate ...", Created: time.Unix(1700000000, 5).UTC(), Watermark: 42,
		Partitions: []Partition{
			{Source: "trades", Partition: 0, Offset: 99, MaxEventTime: 1000},
			{Source: "trades", Partition: 1, Offset: -1, MaxEventTime: math.MinInt64, Ended: true},
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

// TestDecodeVersion1: a checkpoint of the first format, without a sink
// position, still reads, with none.
func TestDecodeVersion1(t *testing.T) {
	c := sample(3)
	b := c.Encode()
	// Version 2 is version 1 with the position's varint (5: one byte)
	// before the checksum.
	v1 := append([]byte{}, b[:len(b)-4-1]...)
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

// TestDir: the newest checkpoint is the latest; older ones beyond Keep go;
// a damaged newest one is passed over for the one before; an empty
// directory has none.
func TestDir(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Path: filepath.Join(t.TempDir(), "state")}
	if c, err := d.Latest(ctx); c != nil || err != nil {
		t.Fatalf("Latest of nothing = %v, %v", c, err)
	}
	for id := uint64(1); id <= 5; id++ {
		if err := d.Save(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := d.Latest(ctx); err != nil || c.ID != 5 {
		t.Fatalf("Latest = %v, %v; want checkpoint 5", c, err)
	}
	entries, _ := os.ReadDir(d.Path)
	if len(entries) != 2 {
		t.Errorf("%d files kept; want the 2 newest", len(entries))
	}
	if err := os.WriteFile(d.name(5), []byte("SLUICECP garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := d.Latest(ctx); err != nil || c.ID != 4 {
		t.Fatalf("Latest with the newest damaged = %v, %v; want checkpoint 4", c, err)
	}
	os.WriteFile(d.name(4), nil, 0o600)
	if c, err := d.Latest(ctx); c != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Latest with every checkpoint damaged = %v, %v; want ErrCorrupt", c, err)
	}
}
