package pipeline

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/message"
)

// emptyReader reads batches of no records in the generation it is told,
// as a repartition topic's lane does that read only marks it cannot yet
// make a watermark of.
type emptyReader struct {
	o   *message.Origin
	gen uint64
	max int64
}

func (r *emptyReader) Origin() *message.Origin { return r.o }
func (*emptyReader) Close() error              { return nil }
func (r *emptyReader) Read(_ context.Context, b *message.Batch, _ int, _ time.Duration, _ *message.ErrorBatch) error {
	b.Generation, b.MaxEventTime = r.gen, r.max
	return nil
}

// TestFirstBatchOfGeneration: a batch with no records and no event time
// goes on when it is the first of its partition's generation, so that a
// stateful stage restores the partition's state (whose reader state the
// reader may need before it can tell any progress), and not otherwise.
func TestFirstBatchOfGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := New(fileSpec(path, v1alpha1.FormatJSON, "SELECT symbol FROM trades", v1alpha1.Skip), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &emptyReader{o: &message.Origin{Source: "trades"}, max: math.MinInt64}
	var cur readCursor
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	step := func(what string, gen uint64, maxEvt int64, want bool) {
		t.Helper()
		r.gen, r.max = gen, maxEvt
		b, err := p.read(ctx, r, &cur)
		if err != nil {
			t.Fatal(err)
		}
		if (b != nil) != want {
			t.Errorf("%s: sent on %v, want %v", what, b != nil, want)
		}
	}
	step("the first batch", 0, math.MinInt64, true)
	step("the next, empty", 0, math.MinInt64, false)
	step("one with event time", 0, 5, true)
	step("the first of the next generation", 1, math.MinInt64, true)
	step("the next of that generation", 1, math.MinInt64, false)
	cancel()
	step("the first of a generation, read as the pipeline stops", 2, math.MinInt64, false)
}
