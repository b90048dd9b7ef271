package compile

import (
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Statement is one planned statement of a spec: its own spec (see
// v1alpha1.StreamQuerySpec.StatementSpecs), defaulted, and its program.
type Statement struct {
	// Name is the statement's name; empty for a spec of one query.
	Name string
	Spec *v1alpha1.StreamQuerySpec
	Prog *streamop.Program
}

// PlanSet plans each statement of a spec, or its one query, once
// connector.Registry.ResolveSchemas has read the latest schemas its sources
// take their columns from (see PlanRead; nil and nil if none). It returns
// the statements and the columns of each source any of them reads; a nil
// error means the spec can run, and otherwise the error is the spec's
// v1alpha1.Problems, each at its place in the spec: spec.query of a
// statement's spec is spec.statements[i].query.
func PlanSet(spec *v1alpha1.StreamQuerySpec, resolved []string, unread error) ([]Statement, map[string][]value.Column, error) {
	if len(spec.Statements) == 0 {
		prog, inputs, err := PlanRead(spec, resolved, unread)
		if err != nil {
			return nil, nil, err
		}
		one := spec.DeepCopy()
		one.Default()
		return []Statement{{Spec: one, Prog: prog}}, inputs, nil
	}
	spec = spec.DeepCopy()
	spec.Default()
	ps := spec.Validate()
	seen := map[v1alpha1.Problem]bool{}
	for _, p := range ps {
		seen[p] = true
	}
	inputs := map[string][]value.Column{}
	var set []Statement
	for i, one := range spec.StatementSpecs() {
		// Validate refused spec.state and exactly-once sinks, which a set
		// does not support yet: the statements are planned without them,
		// so that what they would need is not said.
		one.State = nil
		if k := one.ExactlyOnceSink(); k != nil {
			sink, kafka := *one.Sink, *k
			kafka.Delivery, sink.Kafka = v1alpha1.AtLeastOnce, &kafka
			one.Sink = &sink
		}
		prog, cols, err := PlanRead(one, resolved, unread)
		if err == nil && spec.SeveralEngines() {
			if p, ok := StatePartitioning(one, prog, ""); ok && p.Repartition {
				err = v1alpha1.Problems{{Field: "spec.query", Offset: -1, Message: fmt.Sprintf("on several engines, this statement's rows would be repartitioned by %s through Kafka, which a statement set does not do yet: run one engine, or make a StreamQuery of this statement", p.Keys)}}
			}
		}
		var more v1alpha1.Problems
		switch {
		case err == nil:
		case errors.As(err, &more):
			for _, p := range more {
				p.Field = spec.StatementField(i, p.Field)
				if !seen[p] {
					seen[p] = true
					ps = append(ps, p)
				}
			}
			continue
		default:
			return nil, nil, err
		}
		for name, c := range cols {
			inputs[name] = c
		}
		set = append(set, Statement{Name: spec.Statements[i].Name, Spec: one, Prog: prog})
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	return set, inputs, nil
}
