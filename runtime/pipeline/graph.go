package pipeline

import (
	"context"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
)

// A stage is one step of the graph after the readers: a partition worker,
// the stateful operator, the sink writer. It owns its state and each
// message it takes: it passes a batch on through emit or releases it. emit
// reports false when the run is ending, and the stage then stops.
//
// The same stages make both modes. Pipelined, each runs in a goroutine of
// its own between two bounded edges (runStage); direct, they are called one
// after another on one goroutine, each batch going all the way to the sink
// before the next is read (runDirect).
type stage interface {
	// take handles one message; false stops the stage.
	take(ctx context.Context, m message.Message, emit emitFunc) bool
	// finish is called once, after the last take. When the input ended, it
	// emits what the stage still has to; when ctx ended, it only releases
	// what the stage holds.
	finish(ctx context.Context, emit emitFunc)
}

// emitFunc passes a message to the next stage; false means the run is
// ending.
type emitFunc func(message.Message) bool

// ticker is a stage that also acts as time passes: the stateful stage moves
// the watermark past partitions gone idle.
type ticker interface {
	stage
	interval() time.Duration
	tick(ctx context.Context, now time.Time, emit emitFunc) bool
}

// runStage runs a stage on the calling goroutine: it takes from in until in
// closes or the stage stops, emitting to out (nil for the sink, which emits
// nothing). Only a producer closes an edge: the caller closes out once every
// stage that sends on it has returned.
func runStage(ctx context.Context, st stage, in, out *edge[message.Message]) {
	emit := func(message.Message) bool { return false }
	if out != nil {
		emit = func(m message.Message) bool { return out.send(ctx, m) }
	}
	defer st.finish(ctx, emit)
	if t, ok := st.(ticker); ok {
		tick := time.NewTicker(t.interval())
		defer tick.Stop()
		for {
			// Time in the select with nothing to take is the stage's
			// receive wait, whether a message or a tick ends it.
			var m message.Message
			var ok, ticked bool
			var now time.Time
			select {
			case m, ok = <-in.ch:
			case now = <-tick.C:
				ticked = true
			default:
				in.stats.waitedFor.start(time.Now())
				select {
				case m, ok = <-in.ch:
				case now = <-tick.C:
					ticked = true
				}
				in.stats.waitedFor.stop(time.Now())
			}
			if ticked {
				if !t.tick(ctx, now, emit) {
					return
				}
				continue
			}
			if !ok || !st.take(ctx, m, emit) {
				return
			}
		}
	}
	for {
		m, ok := in.recv()
		if !ok || !st.take(ctx, m, emit) {
			return
		}
	}
}

// runPipelined runs the graph with a goroutine per reader and stage: each
// reader sends to a worker (partition k to worker k mod parallelism), the
// workers to the stateful stage if the plan has one, and that to the sink.
func (p *Pipeline) runPipelined(ctx, readCtx context.Context) {
	n := p.parallelism
	workerIn := make([]*edge[message.Message], n)
	producers := make([]atomic.Int32, n)
	for w := range n {
		workerIn[w] = newEdge[message.Message](p, "source->worker-"+strconv.Itoa(w), p.capacity, true)
	}
	var toSink, fromWorkers *edge[message.Message]
	if p.prog.Stateful() {
		fromWorkers = p.newEdge("workers->stateful")
		toSink = p.newEdge("stateful->sink")
	} else {
		toSink = p.newEdge("workers->sink")
		fromWorkers = toSink
	}
	for k := range p.readers {
		producers[k%n].Add(1)
	}
	for w := range n {
		if producers[w].Load() == 0 {
			close(workerIn[w].ch) // more workers than partitions
		}
	}

	var wg, workersWG sync.WaitGroup
	ends := p.newTableEnds(p.readers)
	for k, r := range p.readers {
		w := k % n
		wg.Go(func() {
			defer func() {
				if producers[w].Add(-1) == 0 {
					close(workerIn[w].ch)
				}
			}()
			p.readLoop(readCtx, r, func(m message.Message) bool { return workerIn[w].send(ctx, m) }, ends)
		})
	}
	for w := range n {
		workersWG.Go(func() {
			p.stats.activeWorkers.Add(1)
			defer p.stats.activeWorkers.Add(-1)
			runStage(ctx, p.newWorker(), workerIn[w], fromWorkers)
		})
	}
	wg.Go(func() {
		workersWG.Wait()
		close(fromWorkers.ch)
	})
	if fromWorkers != toSink {
		wg.Go(func() {
			defer close(toSink.ch)
			runStage(ctx, p.newStatefulStage(), fromWorkers, toSink)
		})
	}
	wg.Go(func() { runStage(ctx, p.newSinkStage(ctx, true), toSink, nil) })
	wg.Wait()
}

// runDirect runs the same readers and stages as the pipelined mode on this
// one goroutine: a batch from each partition in turn, all the way to the
// sink, before the next. Output is deterministic, which makes it the mode
// for debugging a query.
func (p *Pipeline) runDirect(ctx, readCtx context.Context) {
	stages := []stage{p.newWorker()}
	if p.prog.Stateful() {
		stages = append(stages, p.newStatefulStage())
	}
	stages = append(stages, p.newSinkStage(ctx, false))
	// emits[i] is stage i's emit: the next stage's take.
	emits := make([]emitFunc, len(stages))
	emits[len(stages)-1] = func(message.Message) bool { return false }
	for i := len(stages) - 2; i >= 0; i-- {
		next, emit := stages[i+1], emits[i+1]
		emits[i] = func(m message.Message) bool { return next.take(ctx, m, emit) }
	}
	first := func(m message.Message) bool { return stages[0].take(ctx, m, emits[0]) }
	defer func() {
		for i, st := range stages {
			st.finish(ctx, emits[i])
		}
	}()

	active := slices.Clone(p.readers)
	cursors := make([]readCursor, len(active))
	for len(active) > 0 && readCtx.Err() == nil {
		for i := 0; i < len(active); i++ {
			r := active[i]
			b, err := p.read(readCtx, r, &cursors[i])
			if b != nil && !first(message.Message{Kind: message.KindBatch, Batch: b}) || ctx.Err() != nil {
				return
			}
			switch err {
			case nil:
				continue
			case connector.ErrLoaded:
				// Read further, a Kafka table would wait for records
				// between the streams' batches: the table is as it was
				// at the start, which keeps the run deterministic, and
				// has ended for this run.
				if st, ok := r.(connector.Stopper); ok {
					st.Stop()
				}
				first(message.Message{Kind: message.KindEndOfStream, Origin: r.Origin()})
			case io.EOF:
				first(message.Message{Kind: message.KindEndOfStream, Origin: r.Origin()})
			default:
				p.fatal(err)
				return
			}
			active = slices.Delete(active, i, i+1)
			cursors = slices.Delete(cursors, i, i+1)
			i--
		}
	}
}
