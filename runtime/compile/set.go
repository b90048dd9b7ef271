package compile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

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
//
// A statement is planned as the query it would be alone on one engine;
// what the statements share is checked of them all: the sources'
// allowedLateness and runtime.emitInterval apply if they apply to one
// statement, the channels of all of them must fit the memory limit, and on
// several engines each statement must hold whole keys.
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
	add := func(p v1alpha1.Problem) {
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	inputs := map[string][]value.Column{}
	var set []Statement
	for i, one := range spec.StatementSpecs() {
		prog, cols, err := PlanRead(alone(one), resolved, unread)
		if spec.State != nil && (err == nil && prog.Stateful() || needsState(err)) {
			// Again with spec.state, which it keeps.
			withState := alone(one)
			withState.State = one.State.DeepCopy()
			withState.State.TTL = nil // checkShared
			// Not PlanRead: checkShared refuses the registries' latest
			// schemas of the sources it reads, not all, and checks what
			// spec.state asks of them.
			prog, cols, err = plan(withState, (*v1alpha1.StreamQuerySpec).ValidateStatement)
		}
		var more v1alpha1.Problems
		switch {
		case err == nil:
		case errors.As(err, &more):
			for _, p := range more {
				if !seen[p] { // else the set's own, found by Validate
					add(statementProblem(spec, i, p))
				}
			}
			continue
		default:
			return nil, nil, err
		}
		if spec.ExactlyOnceSink() != nil && spec.State == nil && prog.Stateful() {
			add(exactlyOnceStateful(spec, i))
		}
		maps.Copy(inputs, cols)
		set = append(set, Statement{Name: spec.Statements[i].Name, Spec: ownSettings(one, prog), Prog: prog})
	}
	if len(set) == len(spec.Statements) {
		for _, p := range checkShared(spec, set, inputs, resolved) {
			add(p)
		}
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	if len(set) < len(spec.Statements) {
		// A statement's problems were all the set's own: there are some.
		return nil, nil, errors.New("compile: a statement of the set could not be planned, and no problem says why")
	}
	return set, inputs, nil
}

// exactlyOnceStateful is the problem of statement i, which keeps state, in
// a set that writes exactly once without spec.state. Written exactly once,
// its state needs a checkpoint in each transaction, which spec.state
// takes. Written at least once, it would hold the set's commits back: a
// transaction commits once every statement has handled every record read,
// and without checkpoints it handles a record only when its results are
// written (a window's when the window closes), while the set reads nothing
// more until the commit.
func exactlyOnceStateful(spec *v1alpha1.StreamQuerySpec, i int) v1alpha1.Problem {
	if k := spec.Statements[i].Sink.Kafka; k != nil && k.Delivery == v1alpha1.ExactlyOnce {
		return v1alpha1.Problem{Field: fmt.Sprintf("spec.statements[%d].sink.kafka.delivery", i), Offset: -1,
			Message: "this statement keeps state (windows, OVER, joins, GROUP BY), which exactly once needs checkpointed in each transaction: add spec.state, or use atLeastOnce in a set without exactly-once statements"}
	}
	return v1alpha1.Problem{Field: fmt.Sprintf("spec.statements[%d].query", i), Offset: -1,
		Message: "this statement keeps state (windows, OVER, joins, GROUP BY), which in a statement set with exactly-once statements needs spec.state: each transaction waits for every statement to handle every record read, and without checkpoints this one handles a record only once its results are written; add spec.state, or make it a StreamQuery of its own"}
}

// alone returns the spec a statement is planned by: as one engine's query,
// without what the set shares, which checkShared checks of all
// statements, without spec.state, which a statement that keeps state is
// planned with again, and without exactlyOnce, whose one need in a set,
// a stateless statement, PlanSet says: a query alone is told what it would
// need of spec.state.
func alone(one *v1alpha1.StreamQuerySpec) *v1alpha1.StreamQuerySpec {
	a := *one
	a.State, a.Replicas, a.Autoscaling = nil, nil, nil
	a.Runtime.EmitInterval = nil
	a.Resources = corev1.ResourceRequirements{}
	if k := a.ExactlyOnceSink(); k != nil {
		sink, kafka := *a.Sink, *k
		kafka.Delivery, sink.Kafka = v1alpha1.AtLeastOnce, &kafka
		a.Sink = &sink
	}
	a.Sources = withoutLateness(a.Sources)
	return &a
}

// withoutLateness returns a copy of sources without eventTime's
// allowedLateness, the caller's left as they are.
func withoutLateness(sources []v1alpha1.Source) []v1alpha1.Source {
	sources = slices.Clone(sources)
	for i := range sources {
		if et := sources[i].EventTime; et != nil && et.AllowedLateness.Duration > 0 {
			et := *et
			et.AllowedLateness.Duration = 0
			sources[i].EventTime = &et
		}
	}
	return sources
}

// needsState says err has a problem of spec.state, which a query planned
// without it has only if it needs it.
func needsState(err error) bool {
	var ps v1alpha1.Problems
	return errors.As(err, &ps) && slices.ContainsFunc(ps, func(p v1alpha1.Problem) bool { return p.Field == "spec.state" })
}

// ownSettings returns the spec a statement runs by: without the shared
// settings that do not apply to it, which its pipeline would otherwise
// apply as a single query's (allowedLateness judges late records against
// the watermark minus it; a stateless statement checkpoints nothing).
func ownSettings(one *v1alpha1.StreamQuerySpec, prog *streamop.Program) *v1alpha1.StreamQuerySpec {
	own := *one
	switch {
	case own.State == nil:
	case !prog.Stateful():
		own.State = nil
	case own.State.TTL != nil && ttlProblem(prog) != "":
		own.State = own.State.DeepCopy()
		own.State.TTL = nil
	}
	if !emitsChanges(prog) {
		own.Runtime.EmitInterval = nil
	}
	if latenessProblem(prog) != "" {
		own.Sources = withoutLateness(own.Sources)
	}
	return &own
}

// statementProblem places p, a problem of statement i's own spec, in the
// set's spec; one of a field the statements share names the statement.
func statementProblem(spec *v1alpha1.StreamQuerySpec, i int, p v1alpha1.Problem) v1alpha1.Problem {
	if own := spec.StatementField(i, p.Field); own != p.Field {
		p.Field = own
	} else if !strings.HasPrefix(p.Field, "spec.metrics[") {
		p.Message = "statement " + spec.Statements[i].Name + ": " + p.Message
	}
	return p
}

// checkShared checks what the statements of a set share (see PlanSet).
func checkShared(spec *v1alpha1.StreamQuerySpec, set []Statement, inputs map[string][]value.Column, resolved []string) v1alpha1.Problems {
	var ps v1alpha1.Problems
	for i, src := range spec.Sources {
		if et := src.EventTime; et == nil || et.AllowedLateness.Duration == 0 {
			continue
		}
		f := fmt.Sprintf("spec.sources[%d].eventTime.allowedLateness", i)
		windowed := false
		for _, st := range set {
			if !slices.Contains(st.Prog.Sources(), src.Name) {
				continue
			}
			switch msg := latenessProblem(st.Prog); msg {
			case "":
				windowed = true
			case lateWindowsOnly:
				// Nothing to it: it keeps no windows open.
			default:
				ps.Add(f, "statement %s: %s", st.Name, msg)
			}
		}
		if !windowed {
			ps.Add(f, "%s; no statement reading %s has one", lateWindowsOnly, src.Name)
		}
	}
	if ei := spec.Runtime.EmitInterval; ei != nil && ei.Duration > 0 && !slices.ContainsFunc(set, func(st Statement) bool { return emitsChanges(st.Prog) }) {
		ps.Add("spec.runtime.emitInterval", "%s; no statement is one", emitChangesOnly)
	}
	if st := spec.State; st != nil {
		if !slices.ContainsFunc(set, func(st Statement) bool { return st.Prog.Stateful() }) {
			ps.Add("spec.state", "no statement keeps state to checkpoint: none has a GROUP BY, OVER or join")
		}
		for i, src := range spec.Sources {
			if slices.ContainsFunc(set, func(st Statement) bool { return st.Prog.Stateful() && slices.Contains(st.Prog.Sources(), src.Name) }) {
				ps = append(ps, spec.StateSourceProblems(i)...)
			}
		}
		if st.TTL != nil {
			applies := false
			for _, s := range set {
				switch msg := ttlProblem(s.Prog); msg {
				case "":
					applies = true
				case ttlChangesOnly:
				default:
					ps.Add("spec.state.ttl", "statement %s: %s", s.Name, msg)
				}
			}
			if !applies {
				ps.Add("spec.state.ttl", "%s; no statement is one", ttlChangesOnly)
			}
		}
	}
	var edges int64
	width := 0
	for _, st := range set {
		// Its pipeline's, and those from each source it reads.
		edges += bufferEdges(spec, st.Prog) + int64(len(st.Prog.Sources()))
		width = max(width, bufferWidth(st.Prog, inputs))
	}
	checkChannels(spec, edges, width, &ps)
	for _, st := range set {
		if st.Prog.Stateful() && (spec.State != nil || spec.SeveralEngines()) {
			// Its state outlives an engine's run: a new version of a
			// latest schema it reads would change its columns.
			var read []string
			for _, name := range resolved {
				if slices.Contains(st.Prog.Sources(), name) {
					read = append(read, name)
				}
			}
			ps = append(ps, changingSchemaProblems(spec, read)...)
		}
	}
	if !spec.SeveralEngines() {
		return ps
	}
	field := "spec.replicas"
	if spec.Autoscaling != nil {
		field = "spec.autoscaling"
	}
	for i, st := range set {
		if spec.State != nil && st.Prog.TableJoin() && !st.Prog.PairsLookedUp() {
			ps.Add("spec.state", "statement %s: %s", st.Name, tableStateOnOneEngine)
			continue
		}
		several := *st.Spec
		several.State = nil
		p, ok := StatePartitioning(&several, st.Prog, "")
		switch {
		case !ok || p.Whole:
		case p.Repartition:
			ps.Add(spec.StatementField(i, "spec.query"), "on several engines, this statement's rows would be repartitioned by %s through Kafka, which a statement set does not do yet: run one engine, or make a StreamQuery of its own for this statement", p.Keys)
		default:
			ps.Add(field, "statement %s: %s", st.Name, p.Problem)
		}
	}
	return ps
}
