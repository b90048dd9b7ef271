package kafka

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"testing"
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
	if err := u.take(mark(3, upstreamEntry{0, 1, false})[:3]); err == nil {
		t.Error("a mark cut short was taken")
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
