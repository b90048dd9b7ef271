package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
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
	if err := u.take(mark(3, upstreamEntry{1, 90, false}, upstreamEntry{0, 1, false})[:8]); err == nil {
		t.Error("a mark cut short was taken")
	}
	if got := u.watermark(); got != 60 {
		t.Errorf("a mark cut short moved the watermark to %d", got)
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

// TestRepartitionedRows: rows encoded by the writer, each to its key's
// partition, read back equal; a record of rows of another schema, or cut
// short, is a decode error, and none of its rows is taken.
func TestRepartitionedRows(t *testing.T) {
	cols := []value.Column{{Name: "k", Type: value.String}, {Name: "n", Type: value.Int}}
	key := func(dst []byte, row value.Row) []byte { return append(dst, row[0].Str()...) }
	rp := &connector.Repartition{Sides: []connector.RepartitionSide{{Source: "t", Key: key, Columns: cols}}}
	w := &Repartitioner{
		sides:      map[string]*writerSide{"t": {key: key, schema: sideSchema(rp, 0)}},
		partitions: 2,
	}
	in := new(message.Batch)
	in.Reset(len(cols))
	in.Origin = &message.Origin{Source: "t"}
	for i := range 10 {
		row := in.Append(int64(i))
		row[0], row[1] = value.StringValue(fmt.Sprintf("key%d", i%3)), value.IntValue(int64(i))
	}
	rows := in.Rows
	var e rowsEncoding
	w.encode(&e, in)
	if e.rowCount() != len(rows) {
		t.Fatalf("%d rows encoded of %d", e.rowCount(), len(rows))
	}
	lane := func(schema []value.Column) *Lane {
		return &Lane{origin: &message.Origin{Source: "t", Topic: "g.repartition.0"}, sides: newLaneSides(&connector.Repartition{Sides: []connector.RepartitionSide{{Source: "t", Columns: schema}}})}
	}
	read := func(l *Lane, v []byte) (*message.Batch, int) {
		b := new(message.Batch)
		b.Reset(len(cols))
		return b, l.decodeRepartitioned(b, &b.Errors, &kgo.Record{Value: v, Topic: "g.repartition.0"})
	}
	got := 0
	for p, part := range e.parts {
		for i, v := range part.values {
			b, n := read(lane(cols), v)
			if n != b.Len() || b.Errors.Records != 0 {
				t.Fatalf("partition %d: %d taken, %d rows, %d failed", p, n, b.Len(), b.Errors.Records)
			}
			for j, row := range b.Rows {
				want := rows[part.rows[i][j]]
				if !slices.EqualFunc(row, want, value.Equal) {
					t.Errorf("partition %d: row %v; want %v", p, row, want)
				}
				if fnv32a([]byte(row[0].Str()))%2 != uint32(p) {
					t.Errorf("key %s in partition %d", row[0].Str(), p)
				}
			}
			got += b.Len()
		}
	}
	if got != len(rows) {
		t.Errorf("%d rows read of %d", got, len(rows))
	}
	v := e.parts[0].values[0]
	other := []value.Column{{Name: "k", Type: value.String}, {Name: "n", Type: value.Double}}
	for name, tc := range map[string]struct {
		l *Lane
		v []byte
	}{"another schema": {lane(other), v}, "cut short": {lane(cols), v[:len(v)-1]}} {
		b, n := read(tc.l, tc.v)
		if n != 1 || b.Len() != 0 || b.Errors.Records != 1 || len(b.Errors.Events) != 1 {
			t.Errorf("%s: %d taken, %d rows, %d failed; want 1 failed record and no row", name, n, b.Len(), b.Errors.Records)
		} else {
			t.Logf("%s: %s", name, b.Errors.Events[0].Error)
		}
	}
}

// TestRepartitionedSides: the rows of a join's two sources share a topic,
// told apart by their schemas, which name the source even where the
// columns are alike: a batch holds one side's rows, with its width, and
// names it; each side's marks, as the writer makes them, move its own
// progress, and the lane's event time is the least of the two, each less
// its source's bound, once both are known, leaving out a side that is all
// idle. A mark without a side is another writer's.
func TestRepartitionedSides(t *testing.T) {
	trades := []value.Column{{Name: "sym", Type: value.String}, {Name: "q", Type: value.Int}}
	marks := []value.Column{{Name: "sym", Type: value.String}, {Name: "q", Type: value.Int}, {Name: "px", Type: value.Int}}
	key := func(dst []byte, row value.Row) []byte { return append(dst, row[0].Str()...) }
	rp := &connector.Repartition{Sides: []connector.RepartitionSide{
		{Source: "t", Key: key, Columns: trades, Idle: time.Minute, Bound: 10},
		{Source: "m", Key: key, Columns: trades, Idle: time.Minute, Bound: 300},
	}}
	if sideSchema(rp, 0) == sideSchema(rp, 1) {
		t.Fatal("two sources of one schema share a rows schema")
	}
	rp.Sides[1].Columns = marks
	ot, om := &message.Origin{Source: "t", Partition: 0}, &message.Origin{Source: "m", Partition: 0}
	now := time.Now()
	w := &Repartitioner{sides: map[string]*writerSide{}, partitions: 1, upstream: []*message.Origin{ot, om}, marks: map[*message.Origin]*upstreamProgress{
		ot: {max: 1000, owned: true, last: now}, om: {max: 500, owned: true, last: now},
	}}
	for i, side := range rp.Sides {
		w.sides[side.Source] = &writerSide{key: side.Key, schema: sideSchema(rp, i), idle: side.Idle, joined: true}
	}
	encode := func(o *message.Origin, cols []value.Column) []byte {
		b := new(message.Batch)
		b.Reset(len(cols))
		b.Origin = o
		row := b.Append(0)
		for i := range row {
			row[i] = value.IntValue(int64(i))
		}
		row[0] = value.StringValue("S1")
		var e rowsEncoding
		w.encode(&e, b)
		return e.parts[0].values[0]
	}
	tRows, mRows := encode(ot, trades), encode(om, marks)
	tMark := w.appendMark(nil, "t", w.sides["t"], now)
	mMark := w.appendMark(nil, "m", w.sides["m"], now)

	read := rp
	read.Sides[0].Key, read.Sides[1].Key = nil, nil
	l := &Lane{origin: &message.Origin{Source: "t", Topic: "g.repartition.0"}, sides: newLaneSides(read)}
	b := new(message.Batch)
	b.Reset(len(trades))
	b.MaxEventTime = math.MinInt64
	take := func(v []byte) int {
		t.Helper()
		if !l.sides.fits(&kgo.Record{Value: v}) {
			t.Fatalf("a record of %q does not fit a batch of side %d", v[:1], l.sides.batch)
		}
		return l.decodeRepartitioned(b, &b.Errors, &kgo.Record{Value: v})
	}
	if n := take(tRows); n != 1 || b.Side != "t" || b.Width() != len(trades) {
		t.Fatalf("rows of t: %d taken, side %q, width %d", n, b.Side, b.Width())
	}
	take(tMark)
	if b.MaxEventTime != math.MinInt64 {
		t.Errorf("event time %d before m's progress is known", b.MaxEventTime)
	}
	if l.sides.fits(&kgo.Record{Value: mRows}) {
		t.Error("rows of m fit a batch of t's")
	}
	take(mMark)
	if want := int64(200); b.MaxEventTime != want { // min(1000-10, 500-300)
		t.Errorf("event time %d; want %d", b.MaxEventTime, want)
	}
	// m's only upstream partition goes idle: t's progress alone counts, as
	// an idle partition's does not on one engine.
	w.marks[om].last = now.Add(-2 * time.Minute)
	take(w.appendMark(nil, "m", w.sides["m"], now))
	if want := int64(990); b.MaxEventTime != want { // 1000-10
		t.Errorf("event time with m idle %d; want %d", b.MaxEventTime, want)
	}
	// The next batch holds m's rows, with m's width.
	l.sides.batch = -1
	b = new(message.Batch)
	b.Reset(len(trades))
	if n := take(mRows); n != 1 || b.Side != "m" || b.Width() != len(marks) || len(b.Rows[0]) != len(marks) {
		t.Fatalf("rows of m: %d taken, side %q, width %d", n, b.Side, b.Width())
	}
	if n := take(append([]byte{markRecord}, mMark[9:]...)); n != 1 || b.Errors.Records != 1 {
		t.Errorf("a mark without a side: %d taken, %d failed; want a failed record", n, b.Errors.Records)
	}
}

// TestResumedMarks: a partition of a repartition topic that moves to
// another engine is read again from its last commit, and the marks read
// before it are gone with the former lane. The upstream partitions' new
// engine, with nothing left to read, marks them with nothing handled, so
// without the marks as of the commit, kept in the partition's checkpoint
// as its reader state, the partition's event time would never again pass
// what the former owner had read (the last windows of a query scaled down
// stayed open). A lane gives no reader state until it took up the
// restored one, lest a checkpoint keep a part of it.
func TestResumedMarks(t *testing.T) {
	rp := &connector.Repartition{Sides: []connector.RepartitionSide{{Source: "t", Columns: []value.Column{{Name: "q", Type: value.Int}}, Idle: time.Minute}}}
	const end, before = 5000, 100
	markOf := func(count int, entries ...upstreamEntry) []byte {
		return append([]byte{markRecord}, mark(count, entries...)...)
	}
	lane := func(gen uint64) *Lane {
		l := &Lane{origin: &message.Origin{Source: "t", Topic: "g.repartition.0"}, sides: newLaneSides(rp), src: &Source{log: slog.New(slog.DiscardHandler)}}
		l.adopt(fetched{gen: gen})
		return l
	}
	take := func(l *Lane, v []byte) *message.Batch {
		t.Helper()
		b := new(message.Batch)
		b.Reset(1)
		l.resume(b)
		b.ReaderState = l.sides.readerState()
		if n := l.decodeRepartitioned(b, &b.Errors, &kgo.Record{Value: v}); n != 0 || b.Errors.Records != 0 {
			t.Fatalf("a mark: %d records, %d failed", n, b.Errors.Records)
		}
		return b
	}

	// The former owner: engine A marks upstream partition 0 at its end,
	// engine B partition 1 behind it; the partition commits there.
	old := lane(1)
	old.origin.Resume.Store(&message.Resume{Generation: 1})
	take(old, markOf(2, upstreamEntry{0, end, false}))
	b := take(old, markOf(2, upstreamEntry{1, before, false}))
	if b.MaxEventTime != before || b.ReaderState == nil {
		t.Fatalf("the former owner: event time %d, reader state %v; want %d and a state", b.MaxEventTime, b.ReaderState, before)
	}
	committed := b.ReaderState

	// The new owner reads from the commit: B's mark of partition 1 at its
	// end, then B's marks of both, partition 0 with nothing handled.
	l := lane(2)
	b = take(l, markOf(2, upstreamEntry{1, end, false}))
	if b.MaxEventTime != math.MinInt64 || b.ReaderState != nil {
		t.Fatalf("before the state is restored: event time %d, reader state %v; want none and none", b.MaxEventTime, b.ReaderState)
	}
	l.origin.Resume.Store(&message.Resume{Generation: 1, State: committed})
	if b = take(l, markOf(2, upstreamEntry{0, math.MinInt64, false}, upstreamEntry{1, end, false})); b.MaxEventTime != math.MinInt64 {
		t.Fatalf("a state restored in another generation was taken up: event time %d", b.MaxEventTime)
	}
	l.origin.Resume.Store(&message.Resume{Generation: 2, State: committed})
	b = take(l, markOf(2, upstreamEntry{0, math.MinInt64, false}, upstreamEntry{1, end, false}))
	if b.MaxEventTime != end || b.ReaderState == nil {
		t.Fatalf("with the state restored: event time %d, reader state %v; want %d and a state", b.MaxEventTime, b.ReaderState, end)
	}
	// Its own reader state now holds both, for the partition's next owner.
	next := lane(3)
	next.origin.Resume.Store(&message.Resume{Generation: 3, State: b.ReaderState})
	if b = take(next, markOf(2, upstreamEntry{0, math.MinInt64, true}, upstreamEntry{1, math.MinInt64, false})); b.MaxEventTime != end {
		t.Errorf("the next owner: event time %d; want %d", b.MaxEventTime, end)
	}

	// A state of another shape adds nothing, and the marks read go on.
	odd := lane(1)
	odd.origin.Resume.Store(&message.Resume{Generation: 1, State: []byte{7}})
	if b = take(odd, markOf(1, upstreamEntry{0, before, false})); b.MaxEventTime != before || b.ReaderState == nil {
		t.Errorf("a malformed state: event time %d, reader state %v; want %d and a state", b.MaxEventTime, b.ReaderState, before)
	}
}

// TestMarkBeforeAck: a batch the writer handled is acknowledged only once
// a mark of its progress is in the topic, so that its upstream offset
// never commits ahead of the progress, which the partition's next owner,
// reading on from the commit, learns from the marks alone; Settle writes
// the last marks and gives what waits for them.
func TestMarkBeforeAck(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := v1alpha1.RepartitionTopic("g")
	var holding atomic.Bool
	release := make(chan struct{})
	// Only the writer produces: its marks wait at the broker while held.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if holding.Load() {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	cols := []value.Column{{Name: "k", Type: value.String}}
	up := []*message.Origin{{Source: "t", Partition: 0, Topic: "in"}, {Source: "t", Partition: 1, Topic: "in"}}
	w, err := OpenRepartitioner(connector.RepartitionEnv{
		Source: &v1alpha1.Source{Name: "t", Kafka: &v1alpha1.KafkaSource{Brokers: c.ListenAddrs(), Topic: "in"}},
		Group:  "g",
		Repartition: &connector.Repartition{Upstream: up, Sides: []connector.RepartitionSide{{
			Source: "t", Columns: cols, Idle: time.Minute,
			Key: func(dst []byte, row value.Row) []byte { return append(dst, row[0].Str()...) },
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	handled := func(maxEvt int64) chan struct{} {
		b := new(message.Batch)
		b.Reset(len(cols))
		b.Origin, b.MaxEventTime = up[0], maxEvt
		acked := make(chan struct{})
		w.Handled(b, func() { close(acked) })
		return acked
	}

	holding.Store(true)
	acked := handled(42)
	select {
	case <-acked:
		t.Fatal("the batch was acknowledged before a mark of its progress was written")
	case <-time.After(500 * time.Millisecond):
	}
	holding.Store(false)
	close(release)
	select {
	case <-acked:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch was not acknowledged 10 s after the marks could be written")
	}
	// Each partition of the topic has the mark.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	marked := map[int32]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(marked) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if len(r.Value) == 0 || r.Value[0] != markRecord {
				return
			}
			if _, entries, err := parseMark(r.Value[1:]); err == nil && entries[0].max == 42 {
				marked[r.Partition] = true
			}
		})
	}
	if len(marked) < 2 {
		t.Fatalf("the partitions with the mark of 42: %v; want both", marked)
	}

	// Settle gives what waits, without waiting for the next marking.
	acked = handled(50)
	settleCtx, cancelSettle := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelSettle()
	w.Settle(settleCtx)
	select {
	case <-acked:
	default:
		t.Error("Settle returned before the batch handled was acknowledged")
	}
}
