package connector

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/nexmark"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// tradesEpoch is the event time of the first generated trade.
var tradesEpoch = time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC).UnixNano()

// tradesInterval is the event-time step between trades of one partition.
const tradesInterval = int64(time.Millisecond)

var tickers = []string{"AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "NFLX", "ORCL", "IBM"}

// Datagen generates records for one partition: trades, a deterministic
// function of the seed, the partition and the sequence number (trade_id is
// unique across partitions; within a partition it and ts increase), or
// Nexmark events, each a function of its number alone.
type Datagen struct {
	origin     *message.Origin
	rng        *rand.Rand
	symbols    []string
	prices     []int64 // per symbol, unscaled at scale 4
	count      int64   // 0: unbounded
	rate       int64   // records per second, 0: unthrottled
	partitions int64
	seq        int64
	base       int64 // the first seq this run generates: the rate counts from it
	start      time.Time
	timer      *time.Timer
	// cols maps each schema column to a generated field, or -1 when the
	// schema the manifest declares names a column the generator lacks.
	cols []int
	// events, for a Nexmark generator, makes its events: each partition
	// makes every partitions-th of them.
	events *nexmark.Generator
}

// NewDatagen returns the reader of one partition. cols is the source's schema,
// a subset of the generator's columns in any order.
func NewDatagen(source string, spec *v1alpha1.DatagenSource, partition int32, cols []value.Column) (*Datagen, error) {
	gen, err := schemas.Generator(spec.Generator)
	if err != nil {
		return nil, err
	}
	keys := int(spec.Keys)
	if keys <= 0 {
		keys = v1alpha1.DefaultDatagenKeys
	}
	parts := int64(max(spec.Partitions, 1))
	seed := uint64(spec.Seed)
	d := &Datagen{
		origin:     &message.Origin{Source: source, Partition: partition},
		rng:        rand.New(rand.NewPCG(seed, uint64(partition)+0x9e3779b97f4a7c15)),
		count:      spec.Count,
		rate:       spec.Rate,
		partitions: parts,
		symbols:    make([]string, keys),
		prices:     make([]int64, keys),
	}
	for i := range keys {
		if i < len(tickers) {
			d.symbols[i] = tickers[i]
		} else {
			d.symbols[i] = fmt.Sprintf("SYM%05d", i)
		}
		d.prices[i] = 100_0000 + int64(i%50)*10_0000 // 100.0000 upwards
	}
	for _, c := range cols {
		idx := -1
		for j, g := range gen {
			if g.Name == c.Name {
				idx = j
			}
		}
		if idx < 0 || gen[idx].Type != c.Type {
			has := make([]string, len(gen))
			for j, g := range gen {
				has[j] = g.Name + " " + g.Type.String()
			}
			return nil, fmt.Errorf("source %s: the %s generator has no column %s %s (it has %s)", source, spec.Generator, c.Name, c.Type, strings.Join(has, ", "))
		}
		d.cols = append(d.cols, idx)
	}
	if kind, ok := nexmark.KindOf(spec.Generator); ok {
		if d.events, err = nexmark.New(kind, d.cols); err != nil {
			return nil, fmt.Errorf("source %s: %w", source, err)
		}
	}
	return d, nil
}

// Prune makes a Nexmark generator make only the columns read says (nil:
// all), leaving the others NULL: an event's strings no one reads are not
// built. The trades generator makes every column, which costs little.
func (d *Datagen) Prune(read []bool) {
	if d.events == nil || read == nil {
		return
	}
	cols := slices.Clone(d.cols)
	for k := range cols {
		if k < len(read) && !read[k] {
			cols[k] = -1
		}
	}
	// The columns checked in NewDatagen: no error.
	d.events, _ = nexmark.New(d.events.Kind(), cols)
}

// Origin implements Reader.
func (d *Datagen) Origin() *message.Origin { return d.origin }

// Close implements Reader.
func (d *Datagen) Close() error { return nil }

// Read implements Reader.
func (d *Datagen) Read(ctx context.Context, b *message.Batch, max int, linger time.Duration, _ *message.ErrorBatch) error {
	if d.start.IsZero() {
		d.start = time.Now()
	}
	var deadline time.Time
	for b.Len() < max {
		if d.count > 0 && d.seq >= d.count {
			return io.EOF
		}
		if d.rate > 0 {
			// Whole seconds, then the rest: seq × 1e9 would overflow after
			// 9.2e9 records.
			n := d.seq - d.base
			due := d.start.Add(time.Duration(n/d.rate)*time.Second + time.Duration(n%d.rate*int64(time.Second)/d.rate))
			if wait := time.Until(due); wait > 0 {
				if b.Len() > 0 {
					if deadline.IsZero() {
						deadline = time.Now().Add(linger)
					}
					if due.After(deadline) {
						return nil // send what we have rather than hold it past the linger
					}
				}
				if d.timer == nil {
					d.timer = time.NewTimer(wait)
				} else {
					d.timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					d.timer.Stop()
					return nil
				case <-d.timer.C:
				}
			}
		}
		d.next(b.Append(d.seq))
		b.LastOffset = d.seq
		d.seq++
	}
	return nil
}

// SkipThrough implements Seeker: it generates the trades up to offset
// without emitting them, since each trade's price walks from the last; a
// Nexmark partition goes straight to the next.
func (d *Datagen) SkipThrough(offset int64) {
	if d.events != nil {
		// A Nexmark event depends on its number only.
		d.seq = offset + 1
		if d.count > 0 {
			d.seq = min(d.seq, d.count)
		}
		d.base = d.seq
		return
	}
	row := make(value.Row, len(d.cols))
	for d.seq <= offset && (d.count == 0 || d.seq < d.count) {
		d.next(row)
		d.seq++
	}
	d.base = d.seq
}

// next generates the record with sequence number d.seq into row.
func (d *Datagen) next(row value.Row) {
	if d.events != nil {
		d.events.Fill(d.seq*d.partitions+int64(d.origin.Partition), row)
		return
	}
	k := d.rng.IntN(len(d.symbols))
	// A random walk of at most ±0.5% per trade, never below 1.0000.
	p := d.prices[k]
	p += p * (d.rng.Int64N(101) - 50) / 10000
	if p < 1_0000 {
		p = 1_0000
	}
	d.prices[k] = p
	qty := 1 + d.rng.Int64N(1000)
	for i, c := range d.cols {
		switch c {
		case 0:
			row[i] = value.IntValue(d.seq*d.partitions + int64(d.origin.Partition))
		case 1:
			row[i] = value.StringValue(d.symbols[k])
		case 2:
			row[i] = value.DecimalValue(p, 4)
		case 3:
			row[i] = value.IntValue(qty)
		case 4:
			row[i] = value.TimestampValue(tradesEpoch + d.seq*tradesInterval)
		}
	}
}
