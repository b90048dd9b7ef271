// Package message defines what travels on the engine's channels: batches of
// records, end-of-stream markers and error events. Stages interact
// only by sending these to each other.
package message

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"math"
	"slices"
	"sync/atomic"

	"github.com/sluice-dev/sluice/runtime/checkpoint"

	"github.com/sluice-dev/sluice/runtime/freelist"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TraceContext is the W3C trace context of the records in a batch.
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
	// Local says the engine made the context up (tracing is off and the
	// input had none) only to correlate its own logs and dead letters: it
	// is not sent on with the records written.
	Local bool
}

// IsValid reports whether the trace context names a trace.
func (t TraceContext) IsValid() bool { return t.TraceID != [16]byte{} }

// TraceIDString returns the trace id in hex.
func (t TraceContext) TraceIDString() string { return hex.EncodeToString(t.TraceID[:]) }

// SpanIDString returns the span id in hex.
func (t TraceContext) SpanIDString() string { return hex.EncodeToString(t.SpanID[:]) }

// ParseTraceparent reads a W3C traceparent header value; ok is false when it
// is malformed.
func ParseTraceparent(s string) (t TraceContext, ok bool) {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return TraceContext{}, false
	}
	var flags [1]byte
	if _, err := hex.Decode(t.TraceID[:], []byte(s[3:35])); err != nil {
		return TraceContext{}, false
	}
	if _, err := hex.Decode(t.SpanID[:], []byte(s[36:52])); err != nil {
		return TraceContext{}, false
	}
	if _, err := hex.Decode(flags[:], []byte(s[53:55])); err != nil {
		return TraceContext{}, false
	}
	t.Flags = flags[0]
	return t, t.IsValid()
}

// Traceparent formats the context as a W3C traceparent header value.
func (t TraceContext) Traceparent() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], t.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], t.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{t.Flags})
	return string(b[:])
}

// Coordinates say where a record came from: a file and line, a partition and
// offset, or a generator's sequence number.
type Coordinates struct {
	Source    string `json:"source"`
	Partition int32  `json:"partition"`
	// Offset is the line number for files and stdin (1-based), the offset for
	// Kafka, the sequence number for datagen.
	Offset int64  `json:"offset"`
	File   string `json:"file,omitempty"`
	Topic  string `json:"topic,omitempty"`
}

// Origin is one partition of a source. Batches point at their origin so that the
// sink can acknowledge them to it.
type Origin struct {
	Source    string
	Partition int32
	File      string
	Topic     string
	// Acked receives the acknowledgement of each batch, in order, once
	// every record derived from it has been written or handled. It may be
	// nil.
	Acked func(Ack)
	// Generation counts the times the partition was taken away from this
	// engine (a Kafka rebalance). Batches carry the generation they were
	// read in; state built from an older one belongs to the partition's new
	// owner, which reads its records again.
	Generation atomic.Uint64
	// Epoch is the consumer group's generation when the partition was last
	// assigned to this engine: it orders the checkpoints of a partition
	// that moves between engines, so that a late one of its former owner
	// never passes for its new owner's.
	Epoch atomic.Int64
	// Away says another engine reads the partition (a Kafka partition not
	// assigned to this one): its watermark holds this engine's back no
	// more than a partition that ended.
	Away atomic.Bool
	// Resume is set by a stateful stage that restored the partition's
	// state from a checkpoint: the reader state the checkpoint holds
	// (Header.ReaderState), which the partition's reader takes up when it
	// reads on in that generation.
	Resume atomic.Pointer[Resume]
}

// Resume is a partition's reader state restored from a checkpoint, in the
// generation of the partition it was restored in. State is nil when the
// checkpoint held none, or there was no checkpoint: the reader then
// starts from nothing but the offset.
type Resume struct {
	Generation uint64
	State      []byte
}

// Committed tracks the offset up to which a partition's records are all
// handled: a source may commit it, and status reports it.
type Committed struct {
	offset atomic.Int64
	set    atomic.Bool
}

// Ack records that every record up to a's last offset is handled. An
// acknowledgement may come after a later one (a repartition writer's wait
// for its marks): the offset only grows.
func (c *Committed) Ack(a Ack) {
	for {
		old := c.offset.Load()
		if c.set.Load() && old >= a.LastOffset {
			break
		}
		if c.offset.CompareAndSwap(old, a.LastOffset) {
			break
		}
	}
	c.set.Store(true)
}

// Offset returns the committed offset and whether any batch was acknowledged.
func (c *Committed) Offset() (int64, bool) { return c.offset.Load(), c.set.Load() }

// Header is a batch's identity and provenance. A batch that stands for
// another downstream (a worker's output for its input) takes it whole.
type Header struct {
	// ID is unique within the pipeline run.
	ID uint64
	// Seq numbers the batches of one origin from 0, in order.
	Seq uint64
	// CorrelationID ties the batch's records, and every error event derived from
	// them, together across stages and logs.
	CorrelationID string
	// Trace is the trace context of the batch's records.
	Trace TraceContext
	// Parent is the trace context the batch's input arrived with (a Kafka
	// record's traceparent header), which its read span continues.
	Parent TraceContext
	// Origin is the source partition the batch was read from.
	Origin *Origin
	// Generation is the origin's generation when the records were read.
	Generation uint64
	// Statement, of a statement set, numbers the statement whose copy of
	// the origin's batch this is among those that read the origin, so
	// that its acknowledgements can be told from the others'.
	Statement int
	// Side is the source whose rows the batch holds, where it is not the
	// origin's: a partition of a join's repartition topic holds rows of
	// both of its sources, a batch those of one. Empty otherwise.
	Side string
	// LastOffset is the source offset of the last input record the batch covers,
	// including records that were filtered or failed.
	LastOffset int64
	// ReaderState is what the batch's reader needs besides LastOffset to
	// read on after it as it would have (a repartition topic's upstream
	// marks), in the reader's own encoding, which it never changes once
	// handed out; nil when it needs nothing else, or has nothing new to
	// say. A checkpoint keeps it with the offset, and gives it back
	// through Origin.Resume.
	ReaderState []byte
	// Read is the monotonic time the source finished the batch, in nanoseconds
	// since the pipeline started; for latency measurement.
	Read int64
	// Root is the trace context of the batch's root span, which lasts its
	// whole way through the engine and is the parent of each stage's span;
	// EndRoot ends that span where the batch's way ends (the sink, or a
	// stateful stage that takes its rows into its state). Both are zero
	// when the engine records no spans.
	Root    TraceContext
	EndRoot func()
}

// Batch is the unit of work on every data channel: a run of records from one
// source partition, in order.
type Batch struct {
	Header
	// Rows are the records, each a slice of Values in schema order.
	Rows []value.Row
	// Offsets holds each row's source offset (see Coordinates.Offset).
	Offsets []int64
	// Errors are the records of this stretch of the source that failed on
	// the way. They travel with the batch so that the sink stage hands them
	// to the error policy before it acknowledges the batch: an acknowledged
	// offset covers dead letters too.
	Errors ErrorBatch
	// MaxEventTime is the latest event time among the input records the
	// batch stands for, before any filter; math.MinInt64 if unknown. Stateful
	// stages derive the watermark from it.
	MaxEventTime int64
	// Acks are acknowledgements of other batches that travel with this one:
	// a stateful stage holds an input batch's acknowledgement until the
	// results derived from it are emitted, then attaches it to the batch
	// that carries them.
	Acks []Ack
	// Derived says the rows are results a stateful stage computed (window
	// aggregates), not records read: counts keep them apart.
	Derived bool
	// Encoded is the rows as the sink writes them, encoded ahead by a
	// worker (connector.BatchEncoder), or nil. Its form is the sink's own.
	Encoded Encoding
	// Deletes are the offsets, ascending, of the rows of a table source
	// that delete their key's row (Kafka tombstones): only their key
	// columns are set. Offsets, not indexes, since a stage may drop rows.
	Deletes []int64

	width  int
	values []value.Value
}

// Encoding is a sink's own encoding of a batch's rows, made ahead of its
// write. A batch keeps it, emptied by Reset, for its next use: a sink reads
// it only when it holds the batch's rows.
type Encoding interface{ Reset() }

// Len returns the number of rows.
func (b *Batch) Len() int { return len(b.Rows) }

// Width returns the number of values in each row.
func (b *Batch) Width() int { return b.width }

// SetWidth sets the width of the rows of a batch that has none yet: a
// reader that learns from its first record which source's rows it reads.
func (b *Batch) SetWidth(width int) {
	if len(b.Rows) == 0 {
		b.width = width
	}
}

// Reset empties the batch for rows of the given width, keeping its memory.
func (b *Batch) Reset(width int) {
	clear(b.values) // drop string references so the GC can free their bytes
	b.values = b.values[:0]
	b.Rows = b.Rows[:0]
	b.Offsets = b.Offsets[:0]
	b.width = width
	b.Header, b.Errors = Header{}, ErrorBatch{}
	b.MaxEventTime = math.MinInt64
	clear(b.Acks)
	b.Acks = b.Acks[:0]
	b.Derived = false
	b.Deletes = b.Deletes[:0]
	if b.Encoded != nil {
		b.Encoded.Reset()
	}
}

// Append adds a zeroed row (all NULL) and returns it for the caller to fill.
func (b *Batch) Append(offset int64) value.Row {
	n := len(b.values)
	if n+b.width > cap(b.values) {
		b.grow()
	}
	b.values = b.values[:n+b.width]
	row := value.Row(b.values[n : n+b.width : n+b.width])
	b.Rows = append(b.Rows, row)
	b.Offsets = append(b.Offsets, offset)
	return row
}

// Truncate drops the last row, appended by a decode that then failed.
func (b *Batch) Truncate() {
	n := len(b.Rows) - 1
	clear(b.Rows[n])
	b.Rows = b.Rows[:n]
	b.Offsets = b.Offsets[:n]
	b.values = b.values[:len(b.values)-b.width]
}

// grow reallocates the value backing; rows already appended are re-pointed.
func (b *Batch) grow() {
	c := 2 * cap(b.values)
	if c < 64*b.width {
		c = 64 * b.width
	}
	nv := make([]value.Value, len(b.values), c)
	copy(nv, b.values)
	b.values = nv
	for i := range b.Rows {
		b.Rows[i] = nv[i*b.width : (i+1)*b.width : (i+1)*b.width]
	}
}

// CopyHeader gives b the header and error events of src, so that b stands
// for src downstream.
func (b *Batch) CopyHeader(src *Batch) { b.Header, b.Errors = src.Header, src.Errors }

// Ack acknowledges the batch to its origin, and the acknowledgements it
// carries to theirs.
func (b *Batch) Ack() {
	if a, ok := AckOf(b); ok {
		a.Acknowledge()
	}
	for _, a := range b.Acks {
		a.Acknowledge()
	}
}

// DeferredAck returns what Ack would acknowledge, as a function that does
// it later: the batch itself may be reused meanwhile.
func (b *Batch) DeferredAck() func() {
	own, ok := AckOf(b)
	if len(b.Acks) == 0 {
		return func() {
			if ok {
				own.Acknowledge()
			}
		}
	}
	acks := slices.Clone(b.Acks)
	return func() {
		if ok {
			own.Acknowledge()
		}
		for _, a := range acks {
			a.Acknowledge()
		}
	}
}

// Acknowledge gives a to its origin.
func (a Ack) Acknowledge() {
	if a.Origin.Acked != nil {
		a.Origin.Acked(a)
	}
}

// Ack is the acknowledgement of a batch that was consumed upstream of the
// sink.
type Ack struct {
	Origin *Origin
	Seq    uint64
	// Generation is the origin's generation the acknowledged records were
	// read in: those of an earlier one are read again by the partition's
	// next owner, and their acknowledgement says nothing of its reading.
	Generation uint64
	LastOffset int64
	// Statement is the batch's Header.Statement.
	Statement int
}

// AckOf returns the acknowledgement of b; ok is false if b has no origin.
func AckOf(b *Batch) (a Ack, ok bool) {
	if b.Origin == nil {
		return Ack{}, false
	}
	return Ack{Origin: b.Origin, Seq: b.Seq, Generation: b.Generation, LastOffset: b.LastOffset, Statement: b.Statement}, true
}

// Coordinates returns the source coordinates of row i.
func (b *Batch) Coordinates(i int) Coordinates {
	c := Coordinates{Offset: b.Offsets[i]}
	if o := b.Origin; o != nil {
		c.Source, c.Partition, c.File, c.Topic = b.SourceName(), o.Partition, o.File, o.Topic
	}
	return c
}

// SourceName is the source whose rows the batch holds: its Side, else its
// origin's; empty for a batch of no origin.
func (h *Header) SourceName() string {
	switch {
	case h.Side != "":
		return h.Side
	case h.Origin != nil:
		return h.Origin.Source
	}
	return ""
}

// Pool recycles batches so that steady-state processing allocates nothing.
// It keeps up to Keep free batches in a freelist.List rather than a
// sync.Pool, which the garbage collector empties every other cycle: under
// load, with a cycle every few tens of milliseconds, every batch would be
// allocated again. A Pool is safe for concurrent use.
type Pool struct {
	// MaxValues, if set, is the most values a batch may hold to be recycled:
	// a batch that grew far beyond the usual size (a window's results)
	// goes to the garbage collector rather than staying in the pool.
	MaxValues int
	// Keep is the most free batches kept; DefaultPoolKeep when zero. The
	// batches a pipeline has in flight at once are the right number.
	Keep int

	free freelist.List[Batch]
}

// DefaultPoolKeep is how many free batches a Pool keeps unless told.
const DefaultPoolKeep = 64

// Get returns an empty batch for rows of the given width.
func (p *Pool) Get(width int) *Batch {
	b := p.free.Get()
	if b == nil {
		b = new(Batch)
		b.Reset(width)
		return b
	}
	b.width = width // Put reset it
	return b
}

// Put returns a batch that nothing references any more.
func (p *Pool) Put(b *Batch) {
	if b == nil || (p.MaxValues > 0 && cap(b.values) > p.MaxValues) {
		return
	}
	// Reset now, not in Get: a free batch must not keep the buffers its
	// strings point into alive.
	b.Reset(0)
	p.free.Put(b, cmp.Or(p.Keep, DefaultPoolKeep))
}

// ErrorEvent is a record that failed: why, where and what it was.
type ErrorEvent struct {
	CorrelationID string      `json:"correlation_id"`
	Stage         string      `json:"stage"`
	Error         string      `json:"error"`
	Source        Coordinates `json:"source"`
	// Payload is the record as it was read, or as it was to be written.
	Payload []byte `json:"-"`
	// Traceparent is the W3C trace context of the record, if any.
	Traceparent string `json:"traceparent,omitempty"`
	// Statement, of a statement set, names the statement the record
	// failed in; empty for a failure to decode it, which is every
	// statement's.
	Statement string `json:"statement,omitempty"`
}

// MaxDecodePayload bounds the payload a decode error event keeps of its
// record: a record that cannot be decoded may be of any size (a line over
// maxRecordBytes), and its start is enough to find it.
const MaxDecodePayload = 64 << 10

// NewErrorEvent returns the error event of a record of batch b, found at
// coordinates at, that failed at stage for reason. It keeps a copy of
// payload, and b's trace context.
func NewErrorEvent(b *Batch, stage string, at Coordinates, payload []byte, reason string) ErrorEvent {
	ev := ErrorEvent{
		CorrelationID: b.CorrelationID, Stage: stage, Error: reason, Source: at,
		Payload: bytes.Clone(payload),
	}
	if b.Trace.IsValid() {
		ev.Traceparent = b.Trace.Traceparent()
	}
	return ev
}

// ErrorBatch holds the error events of one batch.
type ErrorBatch struct {
	Events []ErrorEvent
	// Records is how many records the events stand for.
	Records int
}

// Kind says what a Message carries.
type Kind uint8

// The message kinds.
const (
	// KindBatch carries a batch of records. Event time travels with it
	// (Batch.MaxEventTime): the stateful stage computes the watermark.
	KindBatch Kind = iota
	// KindEndOfStream says that an origin has no more records. The end of a
	// whole channel is its close, which only its producer does.
	KindEndOfStream
	// KindCheckpoint carries the stateful stage's state after the batches
	// sent before it, to the sink stage, which saves it once it has
	// written those batches (spec.state). On several engines, each carries
	// one partition's; with an exactly-once transaction, one of no
	// partition then ends the round, and the transaction commits at it.
	KindCheckpoint
	// KindLoaded says that an origin, a table source's partition that
	// does not end (a Kafka topic), has had every record it held when the
	// source opened read: a table join may join with the table from here.
	KindLoaded
	// KindRewound follows, from the stateful stage to the sink stage, the
	// results of state that an aborted exactly-once transaction rolled
	// back (connector.ErrTransactionAborted): the stage has since taken
	// its partitions back to their last commit. The sink drops the results
	// and checkpoints between the abort and this message, which that
	// state made.
	KindRewound
)

// Message is one item on a data channel. It is sent by value: a batch travels as
// a pointer, so sending allocates nothing.
type Message struct {
	Kind  Kind
	Batch *Batch
	// Origin is the partition an end of stream is about.
	Origin *Origin
	// Checkpoint is the state a KindCheckpoint message carries.
	Checkpoint *checkpoint.Checkpoint
}
