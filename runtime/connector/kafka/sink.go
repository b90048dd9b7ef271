package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
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
type Sink struct {
	cl     *kgo.Client
	topic  string
	enc    Encoder
	keyCol int // -1: no key
	buf    []byte
	recs   []*kgo.Record
	pool   []kgo.Record
}

// OpenSink connects a producer. keyCol is the output column whose text is
// the record key, or -1.
func OpenSink(spec *v1alpha1.KafkaSink, enc Encoder, keyCol int) (*Sink, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(spec.Brokers...),
		kgo.DefaultProduceTopic(spec.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// A write fails, rather than stalls, when the brokers stay away: the
		// pipeline then retries it and applies the error policy.
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)
	if err != nil {
		return nil, fmt.Errorf("sink: kafka client: %w", err)
	}
	return &Sink{cl: cl, topic: spec.Topic, enc: enc, keyCol: keyCol}, nil
}

// Write implements connector.Sink: it produces the batch's rows and waits
// until the brokers acknowledged every one. The batch's trace context goes
// with each record as a traceparent header.
func (s *Sink) Write(ctx context.Context, b *message.Batch) error {
	s.buf = s.buf[:0]
	ends := make([]int, len(b.Rows))
	for i, row := range b.Rows {
		s.buf = s.enc.Encode(s.buf, row)
		if n := len(s.buf); n > 0 && s.buf[n-1] == '\n' {
			s.buf = s.buf[:n-1]
		}
		ends[i] = len(s.buf)
	}
	// The producer keeps the values until acknowledged: give it its own copy.
	values := append([]byte(nil), s.buf...)
	if cap(s.pool) < len(b.Rows) {
		s.pool = make([]kgo.Record, len(b.Rows))
	}
	s.recs = s.recs[:0]
	var headers []kgo.RecordHeader
	if b.Trace.IsValid() {
		headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte(b.Trace.Traceparent())}}
	}
	start := 0
	for i, row := range b.Rows {
		r := &s.pool[i]
		*r = kgo.Record{Value: values[start:ends[i]:ends[i]], Headers: headers}
		if s.keyCol >= 0 && !row[s.keyCol].IsNull() {
			r.Key = row[s.keyCol].AppendText(nil)
		}
		start = ends[i]
		s.recs = append(s.recs, r)
	}
	return s.cl.ProduceSync(ctx, s.recs...).FirstErr()
}

// Flush implements connector.Sink.
func (s *Sink) Flush(ctx context.Context) error { return s.cl.Flush(ctx) }

// Close implements connector.Sink.
func (s *Sink) Close() error {
	s.cl.Close()
	return nil
}

// DeadLetter writes error events to a topic: the original payload as the
// value, the original key is not known, and headers for the rest.
type DeadLetter struct {
	cl *kgo.Client
}

// OpenDeadLetter connects a producer to the dead-letter topic.
func OpenDeadLetter(spec *v1alpha1.KafkaSink) (*DeadLetter, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(spec.Brokers...),
		kgo.DefaultProduceTopic(spec.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("dead-letter sink: kafka client: %w", err)
	}
	return &DeadLetter{cl: cl}, nil
}

// Write produces one record per event and waits for all to be acknowledged.
func (d *DeadLetter) Write(events []message.ErrorEvent) error {
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		src, _ := json.Marshal(ev.Source)
		headers := []kgo.RecordHeader{
			{Key: "sluice.error", Value: []byte(ev.Error)},
			{Key: "sluice.stage", Value: []byte(ev.Stage)},
			{Key: "sluice.correlation_id", Value: []byte(ev.CorrelationID)},
			{Key: "sluice.source", Value: src},
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
		recs[i] = &kgo.Record{Value: ev.Payload, Headers: headers}
	}
	return d.cl.ProduceSync(context.Background(), recs...).FirstErr()
}

// Close flushes and closes the producer.
func (d *DeadLetter) Close() error {
	d.cl.Close()
	return nil
}
