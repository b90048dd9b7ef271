package v1alpha1

import (
	"fmt"
	"strings"
)

// ExactlyOnceSink returns the query's Kafka sink if it writes exactly once,
// else nil. Of a statement set, it is the first statement's that does: the
// statements' exactly-once sinks write through one transactional producer,
// with the settings of that one, which the others' match (Validate).
func (s *StreamQuerySpec) ExactlyOnceSink() *KafkaSink {
	for i := range s.Statements {
		if k := s.Statements[i].Sink.Kafka; k != nil && k.Delivery == ExactlyOnce {
			return k
		}
	}
	if s.Sink == nil || s.Sink.Kafka == nil || s.Sink.Kafka.Delivery != ExactlyOnce {
		return nil
	}
	return s.Sink.Kafka
}

// StatementSpecs returns the spec of each statement of a statement set as
// a query of its own: the spec with the statement's query and sink, the
// business metrics that name it, and no statements. Each shares the
// sources, error policy and runtime, which its planner and pipeline read as
// those of a single query. A spec without statements is its only one.
func (s *StreamQuerySpec) StatementSpecs() []*StreamQuerySpec {
	if len(s.Statements) == 0 {
		return []*StreamQuerySpec{s}
	}
	specs := make([]*StreamQuerySpec, len(s.Statements))
	for i := range s.Statements {
		st := &s.Statements[i]
		one := *s
		one.Statements = nil
		one.Query = st.Query
		one.Sink = &st.Sink
		one.Metrics = nil
		for _, m := range s.Metrics {
			if m.Statement == st.Name {
				m.Statement = ""
				one.Metrics = append(one.Metrics, m)
			}
		}
		specs[i] = &one
	}
	return specs
}

// StatementField returns the field of a statement set's spec that field,
// a field of statement i's own spec (StatementSpecs), stands for:
// spec.query and spec.sink are the statement's, and a business metric is
// found among the spec's by its name; the rest is the spec's own.
func (s *StreamQuerySpec) StatementField(i int, field string) string {
	if len(s.Statements) == 0 {
		return field
	}
	for _, own := range []string{"spec.query", "spec.sink"} {
		if field == own || strings.HasPrefix(field, own+".") || strings.HasPrefix(field, own+"[") {
			return fmt.Sprintf("spec.statements[%d].%s", i, strings.TrimPrefix(field, "spec."))
		}
	}
	if rest, ok := strings.CutPrefix(field, "spec.metrics["); ok {
		// The statement's k-th metric is the spec's k-th that names it.
		if k, tail, ok := strings.Cut(rest, "]"); ok {
			var n int
			if _, err := fmt.Sscan(k, &n); err == nil {
				for j, m := range s.Metrics {
					if m.Statement != s.Statements[i].Name {
						continue
					}
					if n == 0 {
						return fmt.Sprintf("spec.metrics[%d]%s", j, tail)
					}
					n--
				}
			}
		}
	}
	return field
}
