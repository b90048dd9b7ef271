package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

// A repartition topic holds these kinds of records, told apart by the
// value's first byte:
//
//	rowsRecord      the rows' schema (rowsSchema, 8 bytes), then rows of
//	                the source of one key partition, each value in its
//	                binary form (value.AppendBinary), one after another:
//	                the rows of a pipeline batch that go to one partition,
//	                so that the per-record costs of producing and fetching
//	                are paid once per batch and partition, not per row
//	markRecord      the event-time progress of the upstream partitions one
//	                engine reads: the upstream partition count (uvarint),
//	                the entries (uvarint), and for each its partition
//	                (uvarint), the latest event time handled (varint) and
//	                whether it is idle (a byte), sent to every partition
//	sideMarkRecord  of a topic that holds the rows of a join's two
//	                sources: a markRecord of one source's partitions,
//	                after its rows' schema (8 bytes)
//
// A join's rows schemas name their source, so that a reader tells the
// sides apart even where their columns are alike. A writer sends a
// partition's marks after the rows they cover, on one producer, so a
// reader that has a mark has every row before it.
const (
	rowsRecord     = 'r'
	markRecord     = 'w'
	sideMarkRecord = 'm'
)

// maxRowsRecord bounds the value of a rows record, well under the brokers'
// default largest message (1 MiB).
const maxRowsRecord = 256 << 10

// repartitionRetention bounds how long rows wait in a repartition topic
// for the engines that read them (documented in docs/manifest.md).
const repartitionRetention = 7 * 24 * time.Hour

// markInterval is how often a writer sends the marks that changed, and
// markHeartbeat how often it sends them all the same.
const (
	markInterval  = 100 * time.Millisecond
	markHeartbeat = time.Second
)

// Repartitioner writes a source's rows to its repartition topic, each to
// the partition of its state key, and marks the progress of the upstream
// partitions this engine reads. It is the sink of the stateless part of a
// repartitioned query.
type Repartitioner struct {
	*Sink
	sides    map[string]*writerSide // by source
	upstream []*message.Origin
	// partitions is the topic's partition count when the writer opened:
	// marks go to each. (A partition added later stops the readers.)
	partitions int32
	log        *slog.Logger
	cancel     context.CancelFunc
	done       chan struct{}

	// txn, of an exactly-once upstream part, is the source whose
	// transactions the rows and marks are written in; nil otherwise.
	txn *Source
	// maxRecord, if set, bounds a rows record's value below maxRowsRecord,
	// within a transactional client's batch limit.
	maxRecord int

	mu       sync.Mutex
	marks    map[*message.Origin]*upstreamProgress
	buf      []byte
	lastMark time.Time // when marks were last sent
	// acks are the acknowledgements of the batches handled since marks
	// were last sent, each given once marks of its progress are written:
	// an upstream offset commits only after the progress of its records,
	// which its partition's next owner, reading on from the commit,
	// learns from the marks alone. ackMu guards them, and is never held
	// across a Produce, whose promise may run at once.
	ackMu sync.Mutex
	acks  []func()
}

// writerSide is what a writer knows of one source whose rows it writes.
type writerSide struct {
	key    func(dst []byte, row value.Row) []byte
	schema [8]byte // rowsSchema of the rows
	idle   time.Duration
	// joined says the topic holds a join's two sources: marks name their
	// side.
	joined bool
}

// upstreamProgress is what a writer knows of one upstream partition.
type upstreamProgress struct {
	max   int64     // the latest event time of the batches handled
	last  time.Time // when the last batch was handled, or it came here
	owned bool      // read here at the last marking
	sent  int64     // max and idle at the last mark sent
	idle  bool
	ever  bool // a mark was sent
	// committed, exactly-once, is max when the last transaction
	// committed: an aborted one's rows are written again, after any mark
	// of them, which must not have said they were written.
	committed int64
}

// OpenRepartitioner creates the repartition topic of env's source, with as
// many partitions as the source's topic has, unless it exists, and
// connects its producer: its own, or, exactly-once, the transactional
// client of env's Transaction, whose interval commits take the rows and
// marks in.
func OpenRepartitioner(env connector.RepartitionEnv) (*Repartitioner, error) {
	src := env.Source
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topic := v1alpha1.RepartitionTopic(groupOf(src, env.Group))
	txn, err := joined(env.Transaction)
	switch {
	case err != nil:
		return nil, fmt.Errorf("repartition topic %s: %w", topic, err)
	case txn != nil && (txn.commits != nil || txn.repartitionTopic != topic):
		// Marks are produced between the interval commits, and the
		// partitioner sends the rows where they name.
		return nil, fmt.Errorf("repartition topic %s: the transactions of topic %s's source commit at checkpoints, or send records of %s by key: it cannot write the topic", topic, txn.topic, txn.repartitionTopic)
	}
	cl, err := repartitionProducer(src, txn)
	if err != nil {
		return nil, fmt.Errorf("repartition topic %s: %w", topic, err)
	}
	closeOwn := func() {
		if txn == nil {
			cl.Close()
		}
	}
	rp := env.Repartition
	// As many partitions as the source has, or the larger of a join's.
	perSource := map[string]int32{}
	for _, o := range rp.Upstream {
		perSource[o.Source]++
	}
	count := int32(0)
	for _, n := range perSource {
		count = max(count, n)
	}
	if err := createRepartitionTopic(cl, topic, count, log); err != nil {
		closeOwn()
		return nil, err
	}
	partitions, err := partitionCount(cl, topic, log)
	if err != nil {
		closeOwn()
		return nil, fmt.Errorf("repartition topic %s: %w", topic, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Repartitioner{
		partitions: partitions,
		Sink:       &Sink{cl: cl, topic: topic, keyCol: -1, stopWatch: cancel, shared: txn != nil},
		sides:      map[string]*writerSide{},
		upstream:   rp.Upstream, log: log, cancel: cancel, done: make(chan struct{}),
		marks: map[*message.Origin]*upstreamProgress{}, txn: txn,
	}
	if txn != nil {
		w.maxRecord = min(maxRowsRecord, int(txn.maxRecordBytes)/2)
	}
	for i, side := range rp.Sides {
		w.sides[side.Source] = &writerSide{key: side.Key, schema: sideSchema(rp, i), idle: side.Idle, joined: len(rp.Sides) > 1}
	}
	now := time.Now()
	for _, o := range rp.Upstream {
		w.marks[o] = &upstreamProgress{max: math.MinInt64, last: now, sent: math.MinInt64, committed: math.MinInt64}
	}
	if txn != nil {
		txn.onTransactionEnd(w.transactionEnded)
	} else {
		go w.watch(ctx, cl, "repartition", []string{topic}, log)
	}
	go w.markLoop(ctx)
	return w, nil
}

// repartitionProducer returns the client that writes src's repartition
// topic: txn's transactional one, exactly-once, whose partitioner sends
// the topic's records to the partition they name; else one of its own.
func repartitionProducer(src *v1alpha1.Source, txn *Source) (*kgo.Client, error) {
	if txn != nil {
		return txn.cl, nil
	}
	opts, err := ClientOptions(src.Kafka.Brokers, &src.Kafka.KafkaSecurity)
	if err != nil {
		return nil, err
	}
	// Uncompressed: the rows' binary form is compact, and compressing
	// them once more cost a tenth of the repartitioned query's CPU.
	cl, err := kgo.NewClient(append(append(opts, producerOptions(&v1alpha1.KafkaSink{Compression: v1alpha1.CompressionNone})...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// transactionEnded takes a transaction's outcome: the progress it marked
// is written, or, aborted, its rows are read and written again, and the
// marks go back to the last commit's progress, all sent again at the next
// marking.
func (w *Repartitioner) transactionEnded(committed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.marks {
		if committed {
			m.committed = m.max
		} else {
			m.max, m.ever = m.committed, false
		}
	}
	if !committed {
		w.lastMark = time.Time{}
	}
}

// repartitionExists reports whether env's source's repartition topic
// exists.
func repartitionExists(ctx context.Context, env connector.RepartitionEnv) (bool, error) {
	topic := v1alpha1.RepartitionTopic(groupOf(env.Source, env.Group))
	opts, err := ClientOptions(env.Source.Kafka.Brokers, &env.Source.Kafka.KafkaSecurity)
	if err != nil {
		return false, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return false, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("listing topic %s: %w", topic, err)
	}
	switch td, ok := topics[topic]; {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return false, nil
	case td.Err != nil:
		return false, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	return true, nil
}

// createRepartitionTopic creates topic with partitions partitions, unless
// it exists: with whatever count it has, rows still go by key.
func createRepartitionTopic(cl *kgo.Client, topic string, partitions int32, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	configs := map[string]string{"retention.ms": strconv.FormatInt(repartitionRetention.Milliseconds(), 10)}
	created, refused, err := createTopic(ctx, cl, topic, partitions, configs, nil)
	if err != nil {
		return fmt.Errorf("creating the repartition topic %s: %w", topic, err)
	}
	if refused != nil {
		log.Warn("the brokers refused the repartition topic's retention; created with their default", "component", "kafka", "topic", topic, "error", refused)
	}
	if created {
		log.Info("created the repartition topic", "component", "kafka", "topic", topic, "partitions", partitions)
	}
	return nil
}

// Handled implements connector.ProgressSink: b's rows are in the topic (or
// with the error policy), so its event time may be marked, and b is
// acknowledged once it is.
func (w *Repartitioner) Handled(b *message.Batch, ack func()) {
	o := b.Origin
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.marks[o]
	if o == nil || m == nil {
		ack() // no progress of an upstream partition to mark
		return
	}
	m.last = time.Now()
	if b.Generation == o.Generation.Load() {
		m.max = max(m.max, b.MaxEventTime)
	}
	// After the progress: marks that take the acknowledgement carry it.
	w.ackMu.Lock()
	w.acks = append(w.acks, ack)
	w.ackMu.Unlock()
}

// markLoop sends the marks that changed, every markInterval; exactly-once,
// in the open transaction.
func (w *Repartitioner) markLoop(ctx context.Context) {
	defer close(w.done)
	every(ctx, markInterval, func(now time.Time) {
		if w.txn == nil {
			w.mark(ctx, now)
			return
		}
		w.txn.inTransaction(func() bool { return w.mark(ctx, now) })
	})
}

// mark sends, to every partition of the topic, the progress of the
// upstream partitions this engine reads, when any changed or batches wait
// for it, and reports whether it did; once the brokers have every mark,
// those batches are acknowledged. An upstream partition that sent nothing
// for its source's idle timeout is marked idle.
func (w *Repartitioner) mark(ctx context.Context, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	for _, o := range w.upstream {
		m := w.marks[o]
		owned := !o.Away.Load()
		if owned && !m.owned {
			m.last = now // it came here: it is not idle yet
		}
		m.owned = owned
		if !owned {
			continue
		}
		idle := now.Sub(m.last) >= w.sides[o.Source].idle
		if !m.ever || m.max != m.sent || idle != m.idle {
			changed = true
		}
	}
	w.ackMu.Lock()
	acks := w.acks
	w.acks = nil
	w.ackMu.Unlock()
	if !changed && len(acks) == 0 && now.Sub(w.lastMark) < markHeartbeat {
		return false
	}
	// Unchanged marks go again now and then: a reader that starts after
	// the last change (a restart, a partition that moved) must still hear
	// of every upstream partition, and a mark the brokers lost is sent
	// again.
	w.lastMark = now
	var mu sync.Mutex
	failed, pending := false, len(w.sides)*int(w.partitions)
	written := func(_ *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = true
			if ctx.Err() == nil {
				// A later mark says as much: the readers' watermark waits.
				w.log.Debug("kafka: a watermark mark was not written", "component", "kafka", "topic", w.topic, "error", err)
			}
		}
		if pending--; pending > 0 {
			return
		}
		switch {
		case failed && w.txn == nil:
			// The batches wait for the next marks.
			w.ackMu.Lock()
			w.acks = append(w.acks, acks...)
			w.ackMu.Unlock()
			return
		case failed:
			// Exactly-once, the transaction the mark failed in aborts,
			// and its records are read again; its end waits for these
			// acknowledgements, which must not wait for it.
			w.txn.spoiled.Store(true)
		}
		for _, ack := range acks {
			ack()
		}
	}
	for source, side := range w.sides {
		val := w.appendMark(w.buf[:0], source, side, now)
		w.buf = val
		val = append([]byte(nil), val...) // the producer keeps it until acknowledged
		for p := range w.partitions {
			w.cl.Produce(ctx, &kgo.Record{Topic: w.topic, Partition: p, Value: val}, written)
		}
	}
	return true
}

// appendMark appends the mark of source's upstream partitions that this
// engine owns.
func (w *Repartitioner) appendMark(dst []byte, source string, side *writerSide, now time.Time) []byte {
	if side.joined {
		dst = append(append(dst, sideMarkRecord), side.schema[:]...)
	} else {
		dst = append(dst, markRecord)
	}
	count, entries := 0, 0
	for _, o := range w.upstream {
		if o.Source == source {
			count++
			if w.marks[o].owned {
				entries++
			}
		}
	}
	dst = appendMarkHead(dst, count, entries)
	for _, o := range w.upstream {
		m := w.marks[o]
		if o.Source != source || !m.owned {
			continue
		}
		idle := now.Sub(m.last) >= side.idle
		dst = appendMarkEntry(dst, o.Partition, upstreamMark{max: m.max, idle: idle})
		m.sent, m.idle, m.ever = m.max, idle, true
	}
	return dst
}

// appendMarkHead appends the start of a mark's payload: the upstream
// partition count and how many entries follow, each of appendMarkEntry.
// parseMark reads them.
func appendMarkHead(dst []byte, count, entries int) []byte {
	dst = binary.AppendUvarint(dst, uint64(count))
	return binary.AppendUvarint(dst, uint64(entries))
}

// appendMarkEntry appends a mark's entry of upstream partition p.
func appendMarkEntry(dst []byte, p int32, m upstreamMark) []byte {
	dst = binary.AppendUvarint(dst, uint64(p))
	dst = binary.AppendVarint(dst, m.max)
	return append(dst, boolByte(m.idle))
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Settle implements connector.ProgressSink: it writes the marks the
// handled batches wait for, exactly-once in the open transaction, and
// waits for the brokers to have them, which acknowledges the batches.
func (w *Repartitioner) Settle(ctx context.Context) {
	now := time.Now()
	if w.txn == nil {
		w.mark(ctx, now)
	} else {
		w.txn.inTransaction(func() bool { return w.mark(ctx, now) })
	}
	if err := w.cl.Flush(ctx); err != nil {
		w.log.Warn("kafka: the last watermark marks were not written; the next owners of the partitions read their last records again", "component", "kafka", "topic", w.topic, "error", err)
	}
}

// Close implements connector.Sink.
func (w *Repartitioner) Close() error {
	w.cancel()
	<-w.done
	if w.txn == nil {
		w.cl.Close()
	}
	return nil
}

// rowsEncoding is a batch's rows encoded for the repartition topic: for
// each of its partitions, the values of its records, and the rows each
// holds.
type rowsEncoding struct {
	parts []partitionRows
	key   []byte
}

type partitionRows struct {
	values [][]byte // each a rows record's value
	rows   [][]int  // the batch's rows in each
}

// Reset implements message.Encoding.
func (e *rowsEncoding) Reset() {
	for i := range e.parts {
		p := &e.parts[i]
		for j := range p.values {
			p.values[j], p.rows[j] = p.values[j][:0], p.rows[j][:0]
		}
		p.values, p.rows = p.values[:0], p.rows[:0]
	}
}

// EncodeBatch implements connector.BatchEncoder: the workers encode the
// rows, each into the record of its key's partition.
func (w *Repartitioner) EncodeBatch(b *message.Batch) {
	e, ok := b.Encoded.(*rowsEncoding)
	if !ok {
		e = new(rowsEncoding)
		b.Encoded = e
	}
	w.encode(e, b)
}

// encode fills e from b's rows. It keeps no state of its own: any
// goroutine may call it.
func (w *Repartitioner) encode(e *rowsEncoding, b *message.Batch) {
	if len(e.parts) != int(w.partitions) {
		e.parts = make([]partitionRows, w.partitions)
	}
	side := w.sides[b.SourceName()]
	if side == nil {
		// Not rows of the query's sources: the pipeline gives none.
		return
	}
	limit := maxRowsRecord
	if w.maxRecord > 0 {
		limit = w.maxRecord
	}
	for i, row := range b.Rows {
		e.key = side.key(e.key[:0], row)
		p := &e.parts[fnv32a(e.key)%uint32(w.partitions)]
		n := len(p.values)
		if n == 0 || len(p.values[n-1]) >= limit {
			if n < cap(p.values) {
				p.values, p.rows = p.values[:n+1], p.rows[:n+1]
			} else {
				p.values, p.rows = append(p.values, nil), append(p.rows, nil)
			}
			p.values[n] = append(append(p.values[n][:0], rowsRecord), side.schema[:]...)
			n++
		}
		for _, v := range row {
			p.values[n-1] = value.AppendBinary(p.values[n-1], v)
		}
		p.rows[n-1] = append(p.rows[n-1], i)
	}
}

// rowsSchema identifies the columns of repartitioned rows, names and
// types in order, so that a reader never reads rows of another schema;
// with the source's name, for a join's, which the reader tells apart by
// it.
func rowsSchema(source string, cols []value.Column) [8]byte {
	h := sha256.New()
	if source != "" {
		fmt.Fprintf(h, "source %s\n", source)
	}
	for _, c := range cols {
		fmt.Fprintf(h, "%s %s\n", c.Name, c.Type)
	}
	return [8]byte(h.Sum(nil))
}

// sideSchema is the rowsSchema of rp's side i: of its columns alone when
// the topic holds one source's rows (as before joins were repartitioned),
// of its name and columns when it holds a join's two.
func sideSchema(rp *connector.Repartition, i int) [8]byte {
	side := rp.Sides[i]
	if len(rp.Sides) == 1 {
		return rowsSchema("", side.Columns)
	}
	return rowsSchema(side.Source, side.Columns)
}

// fnv32a is the 32-bit FNV-1a hash of b, which sends a key to its
// partition on every engine alike (hash/fnv's would allocate per row).
func fnv32a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// Write implements connector.Sink.
func (w *Repartitioner) Write(ctx context.Context, b *message.Batch) error {
	return writeSync(ctx, b, w.WriteAsync)
}

// WriteAsync implements connector.AsyncSink: it produces a record of the
// batch's rows to each partition their keys go to, and calls done once
// the brokers answered for all: with nil, or with a *connector.RowsError
// naming the rows of the records that failed.
func (w *Repartitioner) WriteAsync(ctx context.Context, b *message.Batch, done func(error)) {
	if w.sides[b.SourceName()] == nil {
		done(fmt.Errorf("rows of source %s, which the repartition topic %s does not hold", b.SourceName(), w.topic))
		return
	}
	if w.txn != nil && b.Origin != nil && b.Generation != b.Origin.Generation.Load() {
		// Read before the partition moved: the transaction aborts, and
		// its new owner writes them. Produced now, they could fall into
		// the next transaction, or after the end of this one.
		done(nil)
		return
	}
	e, ok := b.Encoded.(*rowsEncoding)
	if !ok || e.rowCount() != len(b.Rows) {
		e = new(rowsEncoding)
		w.encode(e, b)
	}
	type record struct {
		rec  kgo.Record
		rows []int
	}
	var recs []record
	for p, part := range e.parts {
		for i, v := range part.values {
			recs = append(recs, record{rec: kgo.Record{Topic: w.topic, Partition: int32(p), Value: v}, rows: part.rows[i]})
		}
	}
	if len(recs) == 0 {
		done(nil)
		return
	}
	var mu sync.Mutex
	var failed []int
	var firstErr error
	pending := len(recs)
	for i := range recs {
		w.cl.Produce(ctx, &recs[i].rec, func(_ *kgo.Record, err error) {
			mu.Lock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					if f := w.onFailure; f != nil {
						f()
					}
				}
				failed = append(failed, recs[i].rows...)
			}
			pending--
			last := pending == 0
			mu.Unlock()
			if !last {
				return
			}
			if firstErr != nil {
				slices.Sort(failed)
				done(&connector.RowsError{Rows: failed, Err: firstErr})
				return
			}
			done(nil)
		})
	}
}

// rowCount is how many rows e holds.
func (e *rowsEncoding) rowCount() int {
	n := 0
	for _, p := range e.parts {
		for _, rows := range p.rows {
			n += len(rows)
		}
	}
	return n
}

// purgeInterval is how often the readers of a repartition topic delete the
// records of their partitions that their group has committed past.
const purgeInterval = 10 * time.Second

// purgeLoop deletes, every interval, the records of the repartition topic's
// partitions this engine reads that the group's commits are past: no
// reader needs them again (a partition's next owner starts at the commit),
// and the topic then holds what is still to be read, not the retention's
// worth of rows.
func (s *Source) purgeLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func(time.Time) { s.purge(ctx) })
}

// purge deletes the records of the partitions read here that the group's
// commits are past; the loop, and Close after its last commit, call it.
func (s *Source) purge(ctx context.Context) {
	offsets := kadm.Offsets{}
	s.mu.Lock()
	for p, c := range s.committed {
		if s.assigned[p] && c > s.purged[p] {
			offsets.Add(kadm.Offset{Topic: s.topic, Partition: p, At: c})
		}
	}
	s.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	resp, err := kadm.NewClient(s.cl).DeleteRecords(ctx, offsets)
	if err == nil {
		err = resp.Error()
	}
	resp.Each(func(r kadm.DeleteRecordsResponse) {
		if r.Err == nil {
			s.mu.Lock()
			s.purged[r.Partition] = r.LowWatermark
			s.mu.Unlock()
		}
	})
	if err != nil && ctx.Err() == nil && !s.purgeWarned.Swap(true) {
		// The retention still bounds the topic.
		s.log.Warn("kafka: cannot delete the repartition topic's records already read; its retention bounds it", "component", "kafka", "topic", s.topic, "error", err)
	}
}

// upstreamMarks is what a lane of a repartition topic knows of the
// upstream partitions' progress: the latest mark of each.
type upstreamMarks struct {
	count int // the upstream partitions; 0 before a mark
	marks map[int32]upstreamMark
}

type upstreamMark struct {
	max  int64
	idle bool
}

// take reads a mark. A malformed one changes nothing.
func (u *upstreamMarks) take(b []byte) error { return u.merge(b, true) }

// resume adds the marks of a reader state (appendState), read before the
// marks read since.
func (u *upstreamMarks) resume(b []byte) error { return u.merge(b, false) }

// merge adds a mark's entries, read after the marks held (later) or
// before them. Each upstream partition's progress is the later of the two:
// a partition that moved starts over on its new engine, and what was
// handled stays handled. Its idleness, and the count, are the latest read.
func (u *upstreamMarks) merge(b []byte, later bool) error {
	count, entries, err := parseMark(b)
	if err != nil {
		return err
	}
	if u.marks == nil {
		u.marks = map[int32]upstreamMark{}
	}
	for p, m := range entries {
		if held, ok := u.marks[p]; ok {
			m.max = max(m.max, held.max)
			if !later {
				m.idle = held.idle
			}
		}
		u.marks[p] = m
	}
	if later || u.count == 0 {
		u.count = count
	}
	return nil
}

// parseMark reads a mark's upstream partition count and entries.
func parseMark(b []byte) (count int, entries map[int32]upstreamMark, err error) {
	r := value.NewReader(b)
	count = int(r.Uvarint())
	n := r.Count(3)
	entries = make(map[int32]upstreamMark, n)
	for range n {
		entries[int32(r.Uvarint())] = upstreamMark{max: r.Varint(), idle: r.Byte() == 1}
	}
	if err := r.Err(); err != nil {
		return 0, nil, fmt.Errorf("a malformed watermark mark: %w", err)
	}
	return count, entries, nil
}

// appendState appends the marks in a mark's form: what a reader that
// read every mark so far knows.
func (u *upstreamMarks) appendState(dst []byte) []byte {
	parts := slices.Sorted(maps.Keys(u.marks))
	dst = appendMarkHead(dst, u.count, len(parts))
	for _, p := range parts {
		dst = appendMarkEntry(dst, p, u.marks[p])
	}
	return dst
}

// idle reports whether every upstream partition has marked, idle.
func (u *upstreamMarks) idle() bool {
	if u.count == 0 || len(u.marks) < u.count {
		return false
	}
	for _, m := range u.marks {
		if !m.idle {
			return false
		}
	}
	return true
}

// watermark is the least latest event time over the upstream partitions
// that are not idle, as one engine reading them all would have it; the
// least int64 while a partition has sent no mark yet, or all are idle.
func (u *upstreamMarks) watermark() int64 {
	if u.count == 0 || len(u.marks) < u.count {
		return math.MinInt64
	}
	low, active := int64(math.MaxInt64), false
	for _, m := range u.marks {
		if !m.idle {
			low, active = min(low, m.max), true
		}
	}
	if !active {
		return math.MinInt64
	}
	return low
}

// laneSides is what a lane of a repartition topic knows of the sources
// whose rows the topic holds: one, or a join's two.
type laneSides struct {
	sides []laneSide
	// batch is the side of the rows of the batch being filled, -1 before
	// its first: a batch holds rows of one side.
	batch int
	// resumed says the marks include those of the partition's restored
	// reader state in this generation (or that there was none): until
	// then, the marks are only those read since the last commit, and the
	// batches carry no reader state, lest a checkpoint keep a part of it.
	resumed bool
	// state is the marks' reader state, nil when they changed since.
	state []byte
}

// laneSide is one source whose rows a repartition topic holds.
type laneSide struct {
	source string
	schema [8]byte
	width  int
	// bound is the source's maximum out-of-orderness, which a join's lane
	// takes off the side's progress (its stage then takes none off).
	bound int64
	marks upstreamMarks
}

// newLaneSides returns what a lane knows of rp's sources.
func newLaneSides(rp *connector.Repartition) *laneSides {
	ls := &laneSides{batch: -1}
	for i, side := range rp.Sides {
		ls.sides = append(ls.sides, laneSide{source: side.Source, schema: sideSchema(rp, i), width: len(side.Columns), bound: int64(side.Bound)})
	}
	return ls
}

// side returns the index of the side whose rows schema is at the start of
// b, or -1.
func (ls *laneSides) side(b []byte) int {
	if len(b) < 8 {
		return -1
	}
	return slices.IndexFunc(ls.sides, func(s laneSide) bool { return s.schema == [8]byte(b[:8]) })
}

// fits reports whether record r may go into the batch being filled: a
// record of rows of the other side of a join begins the next batch.
func (ls *laneSides) fits(r *kgo.Record) bool {
	if ls.batch < 0 || len(r.Value) == 0 || r.Value[0] != rowsRecord {
		return true
	}
	i := ls.side(r.Value[1:])
	return i < 0 || i == ls.batch
}

// watermark is the least upstream progress over the sides, each less its
// source's bound where there are two; the least int64 until every side's
// is known. A side whose every upstream partition is idle holds nothing
// back, as idle partitions do on one engine; none while all are.
func (ls *laneSides) watermark() int64 {
	if len(ls.sides) == 1 {
		return ls.sides[0].marks.watermark()
	}
	low := int64(math.MaxInt64)
	for i := range ls.sides {
		s := &ls.sides[i]
		if s.marks.idle() {
			continue
		}
		wm := s.marks.watermark()
		if wm == math.MinInt64 {
			return math.MinInt64
		}
		low = min(low, streamop.Behind(wm, s.bound))
	}
	if low == math.MaxInt64 {
		return math.MinInt64
	}
	return low
}

// reset forgets the marks: a partition's records of a generation not read
// before come from its last commit, before the marks read. The reader
// state restored with the partition's state says what was known there.
func (ls *laneSides) reset() {
	for i := range ls.sides {
		ls.sides[i].marks = upstreamMarks{}
	}
	ls.resumed, ls.state = false, nil
}

// readerState returns the marks as a reader state (message.Header), each
// side's marks in a mark's form, or nil while the restored one is not yet
// taken up.
func (ls *laneSides) readerState() []byte {
	if !ls.resumed {
		return nil
	}
	if ls.state == nil {
		var b []byte
		for i := range ls.sides {
			b = value.AppendBytes(b, ls.sides[i].marks.appendState(nil))
		}
		ls.state = b
	}
	return ls.state
}

// resume takes up a restored reader state. One of another shape (of
// another plan, which the checkpoint's fingerprint refuses) or malformed
// adds nothing: the marks read since are still right, and complete once
// every upstream partition marked again.
func (ls *laneSides) resume(state []byte) error {
	ls.resumed, ls.state = true, nil
	if state == nil {
		return nil
	}
	r := value.NewReader(state)
	var parts [][]byte
	for r.Len() > 0 && r.Err() == nil {
		parts = append(parts, r.Bytes())
	}
	if err := r.Err(); err != nil || len(parts) != len(ls.sides) {
		return fmt.Errorf("a restored reader state of %d sides, for %d (%v)", len(parts), len(ls.sides), err)
	}
	for i, b := range parts {
		if err := ls.sides[i].marks.resume(b); err != nil {
			return err
		}
	}
	return nil
}

// decodeRepartitioned takes a record of a repartition topic into b: its
// rows, or a mark, which moves b's event time. It returns how many records
// of the batch it made: its rows, or 1 for a record that failed, and 0 for
// a mark.
func (l *Lane) decodeRepartitioned(b *message.Batch, errs *message.ErrorBatch, r *kgo.Record) int {
	fail := func(err error) int {
		errs.Records++
		errs.Events = append(errs.Events, message.NewErrorEvent(b, "decode",
			message.Coordinates{Source: l.origin.Source, Partition: r.Partition, Offset: r.Offset, Topic: r.Topic},
			r.Value[:min(len(r.Value), message.MaxDecodePayload)], fmt.Sprintf("%s/%d offset %d: %v", r.Topic, r.Partition, r.Offset, err)))
		return 1
	}
	ls := l.sides
	var kind byte
	if len(r.Value) > 0 {
		kind = r.Value[0]
	}
	switch {
	case kind == markRecord || kind == sideMarkRecord:
		side, payload := 0, r.Value[1:]
		if kind == sideMarkRecord {
			side, payload = ls.side(payload), payload[min(len(payload), 8):]
		}
		if side < 0 || (kind == markRecord) != (len(ls.sides) == 1) {
			return fail(errors.New("a watermark mark of another source: the repartition topic holds marks an engine of another version of the query wrote"))
		}
		l.resume(b)
		if err := ls.sides[side].marks.take(payload); err != nil {
			return fail(err)
		}
		ls.state = nil
		b.ReaderState = ls.readerState()
		if wm := ls.watermark(); wm != math.MinInt64 {
			b.MaxEventTime = max(b.MaxEventTime, wm)
		}
		return 0
	case kind == rowsRecord && len(r.Value) > 9:
		side := ls.side(r.Value[1:])
		if side < 0 {
			// Rows of an earlier version of the query, whose source had
			// other columns: read into this one's, they would be wrong.
			return fail(errors.New("rows of another schema of the source: the repartition topic holds rows an engine of another version of the query wrote"))
		}
		if ls.batch < 0 {
			ls.batch = side
			if len(ls.sides) > 1 {
				b.Side = ls.sides[side].source
				b.SetWidth(ls.sides[side].width)
			}
		}
		before := b.Len()
		rd := value.NewReader(r.Value[9:])
		for rd.Len() > 0 && rd.Err() == nil {
			row := b.Append(r.Offset)
			for i := range row {
				row[i] = rd.SharedValue()
			}
		}
		if err := rd.Err(); err != nil {
			for b.Len() > before {
				b.Truncate()
			}
			return fail(fmt.Errorf("a malformed record of repartitioned rows: %w", err))
		}
		return b.Len() - before
	}
	return fail(errors.New("not a record of a repartition topic"))
}
