package pipeline

import (
	"context"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

// worker is a partition worker: the stage that runs the plan's stateless
// operator (filter, projection, the pre-aggregation of a stateful plan) over
// the batches of the partitions it is given. There are parallelism of them.
type worker struct {
	p  *Pipeline
	op streamop.Operator
	// passThrough says the operator leaves every row as it is: the input
	// batch goes on, not a copy of it.
	passThrough bool
	failures
}

func (p *Pipeline) newWorker() *worker {
	w := &worker{p: p, op: p.prog.New(), failures: p.inputFailures()}
	if m, ok := w.op.(*streamop.Map); ok {
		w.passThrough = m.PassesThrough()
	}
	return w
}

// take implements stage.
func (w *worker) take(_ context.Context, m message.Message, emit emitFunc) bool {
	if m.Kind != message.KindBatch {
		// Ends of partitions matter to a stateful stage only.
		return !w.p.prog.Stateful() || emit(m)
	}
	return emit(message.Message{Kind: message.KindBatch, Batch: w.process(m.Batch)})
}

// finish implements stage: a worker holds nothing between batches.
func (w *worker) finish(context.Context, emitFunc) {}

// process runs one batch through the operator, releasing the input batch.
// The result carries the input's error events and the operator's.
func (w *worker) process(in *message.Batch) *message.Batch {
	if w.p.readsRepartition() {
		// Rows of a repartition topic passed the filter upstream, and
		// come from many upstream partitions at once: their batch carries
		// those partitions' progress. They go on as they are.
		return in
	}
	start := time.Now()
	maxEvt := int64(math.MinInt64)
	if in.Origin != nil {
		if t := w.p.eventTimes[in.Origin.Source]; t >= 0 {
			// The watermark follows every record read, filtered or not,
			// but for those the stateful operators refuse.
			for _, row := range in.Rows {
				if v := row[t]; !v.IsNull() && streamop.InEventTimeRange(v.Nanos()) {
					maxEvt = max(maxEvt, v.Nanos())
				}
			}
		}
	}
	if w.p.prog.Join() {
		// A join's rows go to the stateful stage as they are, or to the
		// repartition topic.
		in.MaxEventTime = maxEvt
		if w.p.batchEncoder != nil {
			w.p.batchEncoder.EncodeBatch(in)
		}
		return in
	}
	out := in
	if !w.passThrough {
		out = w.p.pool.Get(w.p.prog.WorkerWidth())
		out.CopyHeader(in)
	}
	out.MaxEventTime = maxEvt
	// The span is the batch's before the operator runs, so that the error
	// events of the rows it fails on carry it.
	span := w.p.startSpan("batch.process", stageParent(in), start, trace.SpanKindInternal)
	out.Trace = span.context(in.Trace)
	events, records := len(out.Errors.Events), out.Errors.Records
	filtered := 0
	if !w.passThrough {
		w.out = out
		filtered = w.op.Process(in, out, w)
		w.p.stats.filtered.Add(int64(filtered))
	}
	if w.p.batchEncoder != nil {
		w.p.batchEncoder.EncodeBatch(out)
	}
	n := in.Len()
	if !w.passThrough {
		w.p.pool.Put(in)
	}
	span.failed(out.Errors.Records-records, out.Errors.Events[events:])
	span.end(out, out.Len(), attribute.Int("sluice.records_in", n), attribute.Int("sluice.filtered", filtered))
	w.p.observer.ObserveBatch(StageProcess, time.Since(start), n, w.p.recorded(out.Trace))
	return out
}

// failures turns the rows an operator could not process into error events
// on the batch being produced (streamop.Failures).
type failures struct {
	encs     map[string]*format.JSONEncoder // by source: encode failed rows for their events
	fallback string                         // the source of rows without an origin
	out      *message.Batch                 // the batch whose errors Fail adds to
	scratch  []byte
	// read, by source, are the positions of the columns encs encode, when
	// the query reads (and the source decodes) only some: the others are
	// NULL, not the record's, and are left out. row holds them.
	read map[string][]int
	row  value.Row
}

// inputFailures returns failures for rows of the plan's sources.
func (p *Pipeline) inputFailures() failures {
	f := failures{encs: map[string]*format.JSONEncoder{}, fallback: p.prog.Source, read: map[string][]int{}}
	for source, cols := range p.inputs {
		read := p.reads[source]
		if read == nil || !slices.Contains(read, false) {
			f.encs[source] = format.NewJSONEncoder(value.Names(cols))
			continue
		}
		var names []string
		for i, c := range cols {
			if i < len(read) && read[i] {
				names = append(names, c.Name)
				f.read[source] = append(f.read[source], i)
			}
		}
		if f.read[source] == nil {
			f.read[source] = []int{} // no column read: an empty object
		}
		f.encs[source] = format.NewJSONEncoder(names)
	}
	return f
}

// encode appends a row of source (or, of a source it has no encoder of,
// the fallback's) as a JSON object, of the columns read.
func (f *failures) encode(dst []byte, source string, row value.Row) []byte {
	enc, ok := f.encs[source]
	if !ok {
		source = f.fallback
		enc = f.encs[source]
	}
	if read, ok := f.read[source]; ok {
		f.row = f.row[:0]
		for _, c := range read {
			f.row = append(f.row, row[c])
		}
		row = f.row
	}
	return enc.Encode(dst, row)
}

// Fail implements streamop.Failures.
func (f *failures) Fail(in *message.Batch, i int, stage string, err error) {
	f.scratch = f.encode(f.scratch[:0], in.SourceName(), in.Rows[i])
	eb := &f.out.Errors
	eb.Records++
	ev := message.NewErrorEvent(in, stage, in.Coordinates(i), f.scratch[:len(f.scratch)-1], err.Error())
	if f.out.Trace.IsValid() {
		// The span of the stage that failed the row: a worker's
		// batch.process. The stateful stage's results have none yet.
		ev.Traceparent = f.out.Trace.Traceparent()
	}
	eb.Events = append(eb.Events, ev)
}
