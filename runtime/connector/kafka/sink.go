package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/freelist"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// deliveryTimeout bounds how long a produced record may wait for the brokers.
const deliveryTimeout = 30 * time.Second

// Encoder turns rows into record values.
type Encoder interface {
	Encode(dst []byte, row value.Row) []byte
}

// Sink produces result rows to a topic with an idempotent producer and
// acks=all. Records with the same key go to the same partition, in order.
// It is an AsyncSink: several batches are in flight at once, which is what
// lets the producer fill its own batches and keep the brokers busy.
type Sink struct {
	reachability
	stopWatch context.CancelFunc // ends the watch of its own client; a shared one's source watches it
	cl        *kgo.Client
	topic     string
	enc       Encoder
	lines     bool // enc writes lines, whose line break a record does not keep
	keyCol    int  // -1: no key
	// keyEnc, if set, encodes the key column (alone in its row) as the
	// record key, in lines if keyLines; otherwise the key is its text.
	keyEnc   Encoder
	keyLines bool
	shared   bool // the client is an exactly-once source's; it closes it

	// writes are free batchWrites, each with a batch's records, tens of
	// kilobytes: as many as can be in flight.
	writes freelist.List[batchWrite]
	// onFailure, if set, is told of each failed record at once.
	onFailure func()
}

// OnFailure implements connector.FailureReporter. It must be called before
// the first write.
func (s *Sink) OnFailure(f func()) { s.onFailure = f }

// Destination implements connector.Destination.
func (s *Sink) Destination() (system, name string, partition int32) { return "kafka", s.topic, -1 }

// OpenSink connects a producer. keyCol is the output column whose text is
// the record key, or -1. With txn, an exactly-once source, the sink produces
// with txn's transactional client instead of its own.
func OpenSink(spec *v1alpha1.KafkaSink, enc Encoder, keyCol int, txn *Source, log *slog.Logger) (*Sink, error) {
	cl, shared, err := producer(spec, txn)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	var binary bool
	switch enc.(type) {
	case *format.AvroEncoder, *format.ProtobufEncoder:
		binary = true
	}
	s := &Sink{cl: cl, topic: spec.Topic, enc: enc, keyCol: keyCol, shared: shared, lines: !binary}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !shared {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch = cancel
		go s.watch(ctx, cl, "sink", []string{spec.Topic}, log)
	}
	return s, nil
}

// producer returns the client that produces to spec's topic: txn's
// transactional client (shared), or a new one.
func producer(spec *v1alpha1.KafkaSink, txn *Source) (cl *kgo.Client, shared bool, err error) {
	if txn != nil {
		return txn.cl, true, nil
	}
	opts, err := ClientOptions(spec.Brokers, &spec.KafkaSecurity)
	if err != nil {
		return nil, false, err
	}
	cl, err = kgo.NewClient(append(producerOptions(spec), opts...)...)
	if err != nil {
		return nil, false, fmt.Errorf("kafka client: %w", err)
	}
	return cl, false, nil
}

// producerOptions are the settings of every producer spec configures: of
// results, of dead letters, and the transactional client of an exactly-once
// source.
func producerOptions(spec *v1alpha1.KafkaSink) []kgo.Opt {
	if spec == nil {
		spec = &v1alpha1.KafkaSink{}
	}
	codec := kgo.SnappyCompression()
	switch spec.Compression {
	case v1alpha1.CompressionNone:
		codec = kgo.NoCompression()
	case v1alpha1.CompressionGzip:
		codec = kgo.GzipCompression()
	case v1alpha1.CompressionLZ4:
		codec = kgo.Lz4Compression()
	case v1alpha1.CompressionZstd:
		codec = kgo.ZstdCompression()
	}
	// No linger by default: records arrive a pipeline batch at a time, and
	// while a request is in flight the next ones gather anyway, so batches
	// grow with the load. A linger holds up the window of batches the sink
	// stage keeps in flight (measured: 10ms halved the rate, 2ms cost a
	// sixth of it).
	var linger time.Duration
	if spec.Linger != nil {
		linger = spec.Linger.Duration
	}
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// A write fails, rather than stalls, when the brokers stay away: the
		// pipeline then retries it and applies the error policy.
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		// Brokers too old for the codec get the batches uncompressed.
		kgo.ProducerBatchCompression(codec, kgo.NoCompression()),
		kgo.ProducerLinger(linger),
	}
	if spec.MaxBatchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(spec.MaxBatchBytes))
	}
	return opts
}

// Write implements connector.Sink: it produces the batch's rows and waits
// until the brokers acknowledged every one.
func (s *Sink) Write(ctx context.Context, b *message.Batch) error {
	return writeSync(ctx, b, s.WriteAsync)
}

// writeSync writes b with writeAsync and waits for its outcome.
func writeSync(ctx context.Context, b *message.Batch, writeAsync func(context.Context, *message.Batch, func(error))) error {
	done := make(chan error, 1)
	writeAsync(ctx, b, func(err error) { done <- err })
	return <-done
}

// WriteAsync implements connector.AsyncSink: it hands the batch's rows to the
// producer and calls done once the brokers answered for every one: with nil,
// or with a *connector.RowsError naming the rows that failed. The batch's
// trace context, unless it is a local stand-in, goes with each record as a
// traceparent header.
func (s *Sink) WriteAsync(ctx context.Context, b *message.Batch, done func(error)) {
	if len(b.Rows) == 0 {
		done(nil)
		return
	}
	// The producer keeps records, keys and values until they are
	// acknowledged, so each batch in flight has its own, recycled once the
	// brokers answered for all of its records.
	w := s.writes.Get()
	if w == nil {
		w = &batchWrite{sink: s}
	}
	w.done, w.err = done, nil
	w.recs = slices.Grow(w.recs[:0], len(b.Rows))[:len(b.Rows)]
	// A worker may have encoded the rows already; the batch stays
	// untouched until done is called, so the records can point into it.
	var buf []byte
	var ends []int
	if e, ok := b.Encoded.(*encoding); ok && len(e.ends) == 2*len(b.Rows) {
		buf, ends = e.buf, e.ends
	} else {
		w.buf, w.ends = s.encode(w.buf[:0], w.ends[:0], b.Rows)
		buf, ends = w.buf, w.ends
	}
	var headers []kgo.RecordHeader
	if b.Trace.IsValid() && !b.Trace.Local {
		headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte(b.Trace.Traceparent())}}
	}
	// One timestamp for the batch: the producer would read the clock for
	// every record.
	now := time.Now()
	start := 0
	for i := range w.recs {
		valueEnd, keyEnd := ends[2*i], ends[2*i+1]
		w.recs[i] = kgo.Record{Topic: s.topic, Value: buf[start:valueEnd:valueEnd], Headers: headers, Timestamp: now}
		if keyEnd > valueEnd {
			w.recs[i].Key = buf[valueEnd:keyEnd:keyEnd]
		}
		start = keyEnd
	}
	w.pending.Store(int64(len(w.recs)))
	for i := range w.recs {
		s.cl.Produce(ctx, &w.recs[i], w.promise)
	}
}

// encoding is a batch's rows encoded ahead by a worker: for row i, its
// value ends at ends[2i] in buf and its key, after it, at ends[2i+1].
type encoding struct {
	buf  []byte
	ends []int
}

// Reset implements message.Encoding.
func (e *encoding) Reset() { e.buf, e.ends = e.buf[:0], e.ends[:0] }

// EncodeBatch implements connector.BatchEncoder.
func (s *Sink) EncodeBatch(b *message.Batch) {
	e, ok := b.Encoded.(*encoding)
	if !ok {
		e = new(encoding)
		b.Encoded = e
	}
	e.buf, e.ends = s.encode(e.buf[:0], e.ends[:0], b.Rows)
}

// encode appends each row's value, without its line break, and key to buf,
// and their ends to ends. The encoders keep no state, so any goroutine may
// call it.
func (s *Sink) encode(buf []byte, ends []int, rows []value.Row) ([]byte, []int) {
	for _, row := range rows {
		buf = s.enc.Encode(buf, row)
		if n := len(buf); s.lines && n > 0 && buf[n-1] == '\n' {
			buf = buf[:n-1]
		}
		ends = append(ends, len(buf))
		switch {
		case s.keyCol < 0 || row[s.keyCol].IsNull():
		case s.keyEnc != nil:
			buf = s.keyEnc.Encode(buf, row[s.keyCol:s.keyCol+1])
			if n := len(buf); s.keyLines && n > 0 && buf[n-1] == '\n' {
				buf = buf[:n-1]
			}
		default:
			buf = row[s.keyCol].AppendText(buf)
		}
		ends = append(ends, len(buf))
	}
	return buf, ends
}

// batchWrite tracks one batch's records until the brokers answered for all.
type batchWrite struct {
	sink    *Sink
	recs    []kgo.Record
	buf     []byte // values and keys
	ends    []int  // per record: end of its value, end of its key in buf
	pending atomic.Int64
	mu      sync.Mutex
	err     error
	failed  []int // indexes of the records that failed
	unknown bool  // a failed record was not found: failed is not all of them
	done    func(error)
}

func (w *batchWrite) promise(r *kgo.Record, err error) {
	if err != nil {
		if f := w.sink.onFailure; f != nil {
			f()
		}
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		if i := w.index(r); i >= 0 && !w.unknown {
			w.failed = append(w.failed, i)
		} else {
			w.unknown = true // the whole batch counts as failed
		}
		w.mu.Unlock()
	}
	if w.pending.Add(-1) != 0 {
		return
	}
	w.mu.Lock()
	err, done := w.err, w.done
	if err != nil && !w.unknown {
		// Only these rows go again, so that a retry writes no row twice and
		// puts none after the later rows of its key; w is reused after done.
		slices.Sort(w.failed)
		err = &connector.RowsError{Rows: slices.Clone(w.failed), Err: err}
	}
	w.failed, w.unknown = w.failed[:0], false
	w.mu.Unlock()
	// Every promise has run: the producer holds none of w any more. Its
	// records are not cleared, which would cost a pass over them: the next
	// batch overwrites them. Until then a free batchWrite keeps what they
	// point into alive, one batch's encoded rows and headers at most.
	w.done = nil
	w.sink.writes.Put(w, connector.MaxWritesInFlight)
	done(err)
}

// index returns the index of r in w.recs, or -1 if it is not one of them.
func (w *batchWrite) index(r *kgo.Record) int {
	// The producer hands back the pointers it was given, into w.recs: the
	// distance from the first is the index, checked.
	i := int((uintptr(unsafe.Pointer(r)) - uintptr(unsafe.Pointer(unsafe.SliceData(w.recs)))) / unsafe.Sizeof(*r))
	if i < 0 || i >= len(w.recs) || &w.recs[i] != r {
		return -1
	}
	return i
}

// Flush implements connector.Sink.
func (s *Sink) Flush(ctx context.Context) error { return s.cl.Flush(ctx) }

// Close implements connector.Sink.
func (s *Sink) Close() error {
	if !s.shared {
		s.stopWatch()
		s.cl.Close()
	}
	return nil
}

// DeadLetter writes error events to a topic: the original payload as the
// value, the original key is not known, and headers for the rest.
type DeadLetter struct {
	cl     *kgo.Client
	topic  string
	shared bool // the client is an exactly-once source's; it closes it
}

// OpenDeadLetter connects a producer to the dead-letter topic. With txn, an
// exactly-once source, dead letters go in its transaction.
func OpenDeadLetter(spec *v1alpha1.KafkaSink, txn *Source) (*DeadLetter, error) {
	cl, shared, err := producer(spec, txn)
	if err != nil {
		return nil, fmt.Errorf("dead-letter sink: %w", err)
	}
	return &DeadLetter{cl: cl, topic: spec.Topic, shared: shared}, nil
}

// Write produces one record per event and waits for all to be acknowledged.
func (d *DeadLetter) Write(ctx context.Context, events []message.ErrorEvent) error {
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		src, _ := json.Marshal(ev.Source)
		headers := []kgo.RecordHeader{
			{Key: "sluice.error", Value: []byte(ev.Error)},
			{Key: "sluice.stage", Value: []byte(ev.Stage)},
			{Key: "sluice.correlation_id", Value: []byte(ev.CorrelationID)},
			{Key: "sluice.source", Value: src},
		}
		if ev.Statement != "" {
			headers = append(headers, kgo.RecordHeader{Key: "sluice.statement", Value: []byte(ev.Statement)})
		}
		if ev.Source.Topic != "" {
			headers = append(headers,
				kgo.RecordHeader{Key: "sluice.original.topic", Value: []byte(ev.Source.Topic)},
				kgo.RecordHeader{Key: "sluice.original.partition", Value: strconv.AppendInt(nil, int64(ev.Source.Partition), 10)},
				kgo.RecordHeader{Key: "sluice.original.offset", Value: strconv.AppendInt(nil, ev.Source.Offset, 10)},
			)
		}
		if ev.Traceparent != "" {
			headers = append(headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(ev.Traceparent)})
		}
		recs[i] = &kgo.Record{Topic: d.topic, Value: ev.Payload, Headers: headers}
	}
	return d.cl.ProduceSync(ctx, recs...).FirstErr()
}

// Close flushes and closes the producer.
func (d *DeadLetter) Close() error {
	if !d.shared {
		d.cl.Close()
	}
	return nil
}
