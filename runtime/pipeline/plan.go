package pipeline

import (
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/kafka"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/operator"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Plan checks a spec and plans its query: the structural checks of the API,
// every source's schema, and the SQL. It is what `engine validate` and the
// operator run; a nil error means the spec can run.
func Plan(spec *v1alpha1.StreamQuerySpec) (*operator.Program, map[string][]format.Column, error) {
	ps := spec.Validate()
	catalog := sql.Catalog{}
	tables := sql.Tables{}
	schemas := map[string][]format.Column{}
	for i, src := range spec.Sources {
		cols, err := sourceSchema(src, i, &ps)
		if cols == nil {
			continue
		}
		if err == nil {
			schemas[src.Name] = cols
		}
		pc := make([]plan.Column, len(cols))
		for j, c := range cols {
			pc[j] = plan.Column{Name: c.Name, Type: c.Type}
		}
		catalog[src.Name] = pc
		if src.Table != nil {
			tables[src.Name] = src.Table.Key
		}
	}
	if spec.Query == "" {
		ps.Add("spec.query", "a query is required")
		return nil, nil, ps
	}
	// The query is planned even when other fields have problems, so that one
	// run of validate reports them all.
	root, err := sql.PlanTables(spec.Query, catalog, tables)
	if err != nil {
		for _, e := range sql.AsErrors(err) {
			ps = append(ps, v1alpha1.Problem{Field: "spec.query", Offset: e.Offset, Message: e.Msg})
		}
		if len(ps) == 0 {
			ps.Add("spec.query", "%v", err)
		}
		return nil, nil, ps
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	prog, err := operator.Compile(root)
	if err != nil {
		ps.Add("spec.query", "%v", err)
		return nil, nil, ps
	}
	for _, c := range prog.Output {
		if c.Type.Kind == value.KindInterval {
			ps.Add("spec.query", "output column %s is an interval, which sinks cannot write; cast it or extract epoch from it", c.Name)
		}
	}
	if k := spec.Sink.Kafka; k != nil && k.Delivery == v1alpha1.ExactlyOnce && prog.Stateful() {
		ps.Add("spec.sink.kafka.delivery", "exactlyOnce is not supported yet for windowed queries and moving aggregates: their results commit when windows close, not with each transaction; use atLeastOnce")
	}
	for i, src := range spec.Sources {
		if et := src.EventTime; et != nil && et.AllowedLateness.Duration > 0 && !prog.Windowed() {
			ps.Add(fmt.Sprintf("spec.sources[%d].eventTime.allowedLateness", i), "applies to queries over TUMBLE or HOP windows only")
		}
		t := prog.EventTimeOf(src.Name)
		if et := src.EventTime; t >= 0 && et != nil && et.Column != schemas[src.Name][t].Name {
			ps.Add(fmt.Sprintf("spec.sources[%d].eventTime.column", i), "is %s, but the query's event time for %s is %s; they must be the same column", et.Column, src.Name, schemas[src.Name][t].Name)
		}
	}
	if k := spec.Sink.Kafka; k != nil && k.Key != "" && !slices.ContainsFunc(prog.Output, func(c plan.Column) bool { return c.Name == k.Key }) {
		ps.Add("spec.sink.kafka.key", "%q is not an output column of the query", k.Key)
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	return prog, schemas, nil
}

// sourceSchema resolves a source's columns: its declared schema, or its
// generator's.
func sourceSchema(src v1alpha1.Source, i int, ps *v1alpha1.Problems) ([]format.Column, error) {
	f := fmt.Sprintf("spec.sources[%d]", i)
	if src.Datagen != nil && len(src.Schema) == 0 {
		cols, err := connector.GeneratorSchema(src.Datagen.Generator)
		if err != nil {
			ps.Add(f+".datagen.generator", "%v", err)
		}
		return cols, err
	}
	cols := make([]format.Column, len(src.Schema))
	var firstErr error
	for j, c := range src.Schema {
		t, err := value.ParseType(c.Type)
		if err != nil {
			// The column stays, typed NULL, so that the query is still checked
			// without an error for every use of it.
			ps.Add(fmt.Sprintf("%s.schema[%d].type", f, j), "%v", err)
			firstErr = err
		}
		cols[j] = format.Column{Name: c.Name, Type: t}
	}
	if src.Kafka != nil {
		// A Kafka record's key, partition, offset and timestamp are columns
		// too, after the schema's. Schema columns read from the key or a
		// header (Column.Key, Column.Header) keep their declared place.
		for _, m := range kafka.MetaColumns {
			if slices.ContainsFunc(cols, func(c format.Column) bool { return c.Name == m.Name }) {
				ps.Add(f+".schema", "column %s is reserved for the Kafka record's metadata", m.Name)
			}
		}
		cols = append(cols, kafka.MetaColumns...)
	}
	if et := src.EventTime; et != nil && firstErr == nil {
		for _, c := range cols {
			if c.Name == et.Column && c.Type.Kind != value.KindTimestamp {
				ps.Add(f+".eventTime.column", "column %s is %s; event time must be a timestamp", c.Name, c.Type)
			}
		}
	}
	return cols, firstErr
}
