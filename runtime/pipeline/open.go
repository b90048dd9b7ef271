package pipeline

import (
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
)

// open opens, through the registry, the sources, sink and dead-letter sink
// that opts does not give. What it opened before an error stays on p for
// closeReaders and Run to close.
func (p *Pipeline) open(opts Options) error {
	reg := opts.registry()
	// An exactly-once source's transaction takes in the results and dead
	// letters too.
	var txn connector.Transaction
	p.readers = opts.Readers
	// The part of a repartitioned query after the repartition reads its
	// topic instead of the source's.
	var readRepartitioned *connector.Repartition
	if p.readsRepartition() {
		readRepartitioned = p.repartition
	}
	sources := p.prog.Sources()
	if readRepartitioned != nil {
		// One topic holds the rows of every source: a join's two.
		sources = sources[:1]
	}
	if p.readers == nil {
		for _, name := range sources {
			src := sourceNamed(p.spec, name)
			env := connector.SourceEnv{
				Query: p.spec, Source: src, Columns: p.inputs[name], Stateful: p.prog.Stateful(),
				Group: opts.Group, Instance: opts.Instance, StaticMembership: opts.StaticMembership,
				Transaction: txn, Repartition: readRepartitioned, Logger: p.log,
			}
			if p.spec.SeveralEngines() && p.spec.State != nil && p.prog.Stateful() {
				env.Rewound = func() { p.rewinds.Add(1) }
			}
			if readRepartitioned == nil {
				// A repartition topic's rows come whole.
				env.Read = p.reads[name]
			}
			opened, err := reg.OpenSource(env)
			if err != nil {
				return err
			}
			p.sources = append(p.sources, opened)
			p.readers = append(p.readers, opened.Readers()...)
			txn = firstTransaction(txn, opened)
		}
	}
	p.txn, p.round = txn, opts.round
	if opts.transaction != nil {
		// A statement's: its sink writes in its set's transaction, which
		// the set's source commits; the statement's pipeline has none of
		// its own to commit or checkpoint in.
		txn = opts.transaction
	}
	p.sink = opts.Sink
	if rp := p.repartition; rp != nil && rp.Writes() {
		for _, r := range p.readers {
			rp.Upstream = append(rp.Upstream, r.Origin())
		}
		sink, err := reg.OpenRepartition(connector.RepartitionEnv{Source: sourceNamed(p.spec, p.prog.Source), Group: opts.Group, Repartition: rp, Transaction: txn, Logger: p.log})
		if err != nil {
			return err
		}
		p.sink = sink
	}
	if p.sink == nil {
		sink, err := reg.OpenSink(connector.SinkEnv{Spec: p.spec.Sink, Columns: p.prog.Output, Transaction: txn, Resumable: p.spec.State != nil, Logger: p.log})
		if err != nil {
			return err
		}
		p.sink = sink
	}
	p.dlq = opts.DeadLetter
	if p.dlq == nil && p.strategy == v1alpha1.DeadLetter {
		dlq, err := reg.OpenDeadLetter(connector.SinkEnv{Spec: p.spec.ErrorPolicy.DeadLetter, Transaction: txn, Logger: p.log})
		if err != nil {
			p.sink.Close()
			return err
		}
		p.dlq = dlq
	}
	return nil
}

// firstTransaction is txn, the exactly-once transaction of a source opened
// before, or else opened's, if any.
func firstTransaction(txn connector.Transaction, opened connector.Source) connector.Transaction {
	if t, ok := opened.(connector.Transactional); ok && txn == nil {
		return t.Transaction()
	}
	return txn
}

// registry is the registry of the connectors opts opens.
func (o Options) registry() *connector.Registry {
	if o.Connectors == nil {
		return connector.Builtins()
	}
	return o.Connectors
}

// readsRepartition says the pipeline is the part of a repartitioned query
// that reads the repartition topic (its upstream part writes it).
func (p *Pipeline) readsRepartition() bool { return p.repartition != nil && !p.repartition.Writes() }

// sourceNamed returns the spec of the source the plan reads as name; the
// compiler made sure it exists.
func sourceNamed(spec *v1alpha1.StreamQuerySpec, name string) *v1alpha1.Source {
	for i := range spec.Sources {
		if spec.Sources[i].Name == name {
			return &spec.Sources[i]
		}
	}
	return nil
}
