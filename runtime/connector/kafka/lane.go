package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// fetched is a run of a partition's records, with the partition's
// generation when they were fetched.
type fetched struct {
	recs []*kgo.Record
	gen  uint64
	// loaded, with no records, says a table's partition is loaded: the
	// records before it hold all it held when its source opened.
	loaded bool
}

// decoder is what a lane needs of a format.
type decoder interface {
	Decode(line []byte, row value.Row) error
}

// Lane reads one partition of a source's topic.
type Lane struct {
	src     *Source
	origin  *message.Origin
	ch      chan fetched
	pending []*kgo.Record
	gen     uint64          // the partition's generation when pending was fetched
	stash   *fetched        // fetched in a later generation than the batch being filled
	dec     decoder         // of the whole value, into row[:meta]
	rec     *recordDecoder  // instead of dec, when columns come from keys or headers
	sides   *laneSides      // instead of both, for a repartition topic's rows and marks
	resumed *message.Resume // the restored reader state sides took up last
	width   int
	meta    int // index of the first meta column
	// binaryKey says keys are Avro or Protobuf: _key, which is text, is NULL.
	binaryKey bool
	// table says the lane reads a table's partition: a tombstone deletes
	// its key's row.
	table bool
	timer *time.Timer
	// stopped is closed by Stop: nothing is handed to the lane any more.
	stopped  chan struct{}
	stopOnce sync.Once
}

// Origin implements connector.Reader.
func (l *Lane) Origin() *message.Origin { return l.origin }

// Close implements connector.Reader; the Source closes the client.
func (l *Lane) Close() error { return nil }

// Stop implements connector.Stopper: what the poll loop would hand to the
// lane is dropped, so that a full lane no one reads does not hold up the
// source's other partitions. The partition is still fetched: a stopped
// lane is a table's, in a run about to end or in direct mode.
func (l *Lane) Stop() { l.stopOnce.Do(func() { close(l.stopped) }) }

// Unavailable returns why the source's brokers are unreachable, or nil.
func (l *Lane) Unavailable() error { return l.src.Unavailable() }

// Lag is the partition's consumer lag in records, or -1 when this member
// does not consume it.
func (l *Lane) Lag() int64 { return l.src.lag(l.origin.Partition) }

// Destination implements connector.Destination.
func (l *Lane) Destination() (system, name string, partition int32) {
	return "kafka", l.origin.Topic, l.origin.Partition
}

// Handled is the offset of the partition's last record known to be handled:
// acknowledged by the pipeline or, before this engine read the partition,
// committed by the group. ok is false when there is none.
func (l *Lane) Handled() (offset int64, ok bool) { return l.src.handled(l.origin.Partition) }

// acked receives the pipeline's acknowledgements of this partition. One of
// records read before the partition last moved is dropped: assigned here
// again, the partition reads them again, and the acknowledgement would
// pass records fetched since and not yet handled.
func (l *Lane) acked(a message.Ack) {
	if a.Generation != l.origin.Generation.Load() {
		return
	}
	l.src.ack(l.origin.Partition, a.LastOffset+1)
}

// Read implements connector.Reader: it waits for the partition's first
// record, then fills the batch until it is full or linger passes. A Kafka
// partition never ends: Read returns nil when ctx ends.
func (l *Lane) Read(ctx context.Context, b *message.Batch, max int, linger time.Duration, errs *message.ErrorBatch) error {
	var deadline time.Time
	// taken counts the batch's records, rows and failed ones; a
	// repartition topic's marks are not records, but they start the batch
	// as well, and its records of rows count a record per row.
	taken, started := 0, false
	select {
	case <-l.src.dead:
		return l.src.err()
	default:
	}
	if l.sides != nil {
		l.sides.batch = -1
	}
	for taken < max {
		if len(l.pending) == 0 && l.stash != nil {
			if started {
				return nil // a batch holds records of one generation
			}
			l.adopt(*l.stash)
			l.stash = nil
		}
		if len(l.pending) == 0 {
			var f fetched
			if !started {
				select {
				case f = <-l.ch:
				case <-ctx.Done():
					return nil
				case <-l.src.dead:
					return l.src.err()
				}
			} else {
				if deadline.IsZero() {
					deadline = time.Now().Add(linger)
				}
				wait := time.Until(deadline)
				if wait <= 0 {
					return nil
				}
				if l.timer == nil {
					l.timer = time.NewTimer(wait)
				} else {
					l.timer.Reset(wait)
				}
				select {
				case f = <-l.ch:
					l.timer.Stop()
				case <-l.timer.C:
					return nil
				case <-ctx.Done():
					l.timer.Stop()
					return nil
				}
			}
			if f.loaded {
				return connector.ErrLoaded
			}
			if started && f.gen != l.gen {
				l.stash = &f
				return nil
			}
			l.adopt(f)
		}
		r := l.pending[0]
		if l.sides != nil && !l.sides.fits(r) {
			return nil
		}
		if !started {
			b.Parent = traceparent(r)
			b.Generation = l.gen
			started = true
			if l.sides != nil {
				l.resume(b)
				b.ReaderState = l.sides.readerState()
			}
		}
		if l.sides == nil {
			if err := l.decode(b, errs, r); err != nil {
				// Not the record's fault: it stays unread, and the batch
				// ends before it, so that its offset is never committed
				// and a restarted engine reads it again.
				l.src.fail(fmt.Errorf("source %s: %s/%d offset %d: %w", l.origin.Source, r.Topic, r.Partition, r.Offset, err))
				return l.src.err()
			}
			taken++
		} else {
			// A record of rows is taken whole: the batch may go over max.
			taken += l.decodeRepartitioned(b, errs, r)
		}
		l.pending = l.pending[1:]
		b.LastOffset = r.Offset
	}
	return nil
}

// adopt makes f the records to read. Records of a generation not read
// before come after the partition moved, from its last commit: the marks
// of a repartition topic read in the former generation are past them.
func (l *Lane) adopt(f fetched) {
	if f.gen != l.gen && l.sides != nil {
		l.sides.reset()
	}
	l.pending, l.gen = f.recs, f.gen
}

// resume takes up the reader state the stateful stage restored with the
// partition's state in this generation, if it did since the last look:
// the upstream marks read before the partition's last commit, which the
// marks read since may not make whole (an upstream partition with nothing
// more to read is marked again by its new engine with nothing handled).
func (l *Lane) resume(b *message.Batch) {
	r := l.origin.Resume.Load()
	if r == nil || r == l.resumed || r.Generation != l.gen {
		return
	}
	l.resumed = r
	if err := l.sides.resume(r.State); err != nil {
		l.src.log.Warn("kafka: the restored upstream marks of a repartition topic's partition are not usable; waiting for marks", "component", "kafka",
			"topic", l.origin.Topic, "partition", l.origin.Partition, "error", err)
	}
	if wm := l.sides.watermark(); wm != math.MinInt64 {
		b.MaxEventTime = max(b.MaxEventTime, wm)
	}
}

// decode appends r's row to b, or its error event to errs. It returns an
// error only when the record could not be read for a reason of the
// source's (its schema registry unavailable): the source must stop.
func (l *Lane) decode(b *message.Batch, errs *message.ErrorBatch, r *kgo.Record) error {
	row := b.Append(r.Offset)
	var err error
	switch {
	case l.table && r.Value == nil && r.Key == nil:
		err = errTombstoneWithoutKey
	case l.table && r.Value == nil:
		// The table's key columns all come from the record key.
		if err = l.rec.decodeKey(r.Key, row[:l.meta]); err == nil {
			b.Deletes = append(b.Deletes, r.Offset)
		}
	case l.rec != nil:
		err = l.rec.decode(r, row[:l.meta])
	default:
		err = l.dec.Decode(r.Value, row[:l.meta])
	}
	if errors.Is(err, format.ErrRegistryUnavailable) {
		b.Truncate()
		return err
	}
	if err != nil {
		b.Truncate()
		errs.Records++
		errs.Events = append(errs.Events, message.NewErrorEvent(b, "decode",
			message.Coordinates{Source: l.origin.Source, Partition: r.Partition, Offset: r.Offset, Topic: r.Topic},
			r.Value[:min(len(r.Value), message.MaxDecodePayload)], fmt.Sprintf("%s/%d offset %d: %v", r.Topic, r.Partition, r.Offset, err)))
		return nil
	}
	if r.Key != nil && !l.binaryKey {
		row[l.meta] = value.StringValue(format.BytesString(r.Key))
	}
	row[l.meta+1] = value.IntValue(int64(r.Partition))
	row[l.meta+2] = value.IntValue(r.Offset)
	row[l.meta+3] = value.TimeValue(r.Timestamp)
	return nil
}

var errTombstoneWithoutKey = errors.New("a tombstone without a key: it names no row of the table to delete")

// traceparent reads a record's W3C trace context header.
func traceparent(r *kgo.Record) message.TraceContext {
	for _, h := range r.Headers {
		if h.Key == "traceparent" {
			tc, _ := message.ParseTraceparent(string(h.Value))
			return tc
		}
	}
	return message.TraceContext{}
}
