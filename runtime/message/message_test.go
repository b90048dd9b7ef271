package message_test

import (
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestPool: a batch comes back empty, with the width asked for and its
// values cleared; the pool keeps at most Keep free batches and none that
// grew beyond MaxValues.
func TestPool(t *testing.T) {
	p := message.Pool{Keep: 2, MaxValues: 192} // 64 rows (a batch's least) of 3
	b := p.Get(3)
	row := b.Append(7)
	row[0] = value.StringValue("held")
	values := row[:3:3] // the backing the pool keeps
	p.Put(b)
	if !values[0].IsNull() {
		t.Errorf("a pooled batch still holds %v; Put must clear its values", values[0])
	}
	got := p.Get(5)
	if got != b {
		t.Fatal("Get did not reuse the batch put back")
	}
	if got.Len() != 0 || got.Width() != 5 || len(got.Append(1)) != 5 {
		t.Errorf("reused batch: %d rows of width %d; want empty, width 5", got.Len(), got.Width())
	}

	var batches []*message.Batch
	for range 3 {
		batches = append(batches, p.Get(1))
	}
	for _, b := range batches {
		p.Put(b)
	}
	// The third was dropped; the two kept come back, last in first out.
	for i, want := range []*message.Batch{batches[1], batches[0], nil} {
		if b := p.Get(1); (want != nil && b != want) || slices.Contains(batches, b) && want == nil {
			t.Errorf("Get %d after putting back 3 with Keep 2: not the batch expected", i)
		}
	}

	big := p.Get(4)
	big.Append(0)
	p.Put(big)
	if p.Get(1) == big {
		t.Error("a batch beyond MaxValues was kept")
	}
}
