package pipeline

import (
	"context"
	"io"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
)

// runDirect runs the same readers, operator, sink and error policy as the
// pipelined mode, in this one goroutine: a batch from each partition in turn,
// all the way to the sink, before the next. Output is deterministic, which
// makes it the mode for debugging a query.
func (p *Pipeline) runDirect(ctx, readCtx context.Context) {
	w := p.newWorker()
	enc := p.rowEncoder()
	var stage *statefulStage
	if p.prog.Stateful() {
		stage = p.newStatefulStage()
	}
	deliver := func(b *message.Batch) {
		if stage != nil {
			b = stage.batch(b, time.Now())
		}
		if b != nil {
			p.deliver(ctx, b, enc, nil)
		}
	}
	active := slices.Clone(p.readers)
	seqs := make([]uint64, len(active))
	for len(active) > 0 && readCtx.Err() == nil {
		for i := 0; i < len(active); i++ {
			b, err := p.read(readCtx, active[i], &seqs[i])
			if b != nil {
				deliver(w.process(b))
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if err != io.EOF {
					p.fatal(err)
					return
				}
				if stage != nil {
					stage.ended(active[i].Origin())
				}
				active = slices.Delete(active, i, i+1)
				seqs = slices.Delete(seqs, i, i+1)
				i--
			}
		}
	}
	if stage != nil && ctx.Err() == nil && readCtx.Err() == nil {
		if b := stage.end(); b != nil {
			p.deliver(ctx, b, enc, nil)
		}
	}
	if err := p.sink.Flush(ctx); err != nil && ctx.Err() == nil {
		p.fatal(err)
	}
}
