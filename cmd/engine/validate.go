package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/manifest"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "the StreamQuery manifest to check")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *file == "" {
		fmt.Fprintln(stderr, "engine validate: -f manifest is required")
		return exitUsage
	}
	doc, err := load(*file)
	if err != nil {
		if ds, ok := err.(v1alpha1.Problems); ok {
			printProblems(stderr, ds)
		} else {
			fmt.Fprintf(stderr, "engine: %v\n", err)
		}
		return exitFailed
	}
	// The registry's warnings, if it does not answer at once.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, diags := check(ctx, doc, log)
	if len(diags) > 0 {
		printProblems(stderr, diags)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	switch doc.Query.Spec.RunMode() {
	case v1alpha1.Batch:
		fmt.Fprintln(stdout, "Mode: Batch: every source ends; on Kubernetes the query runs once, as a Job")
	default:
		fmt.Fprintln(stdout, "Mode: Continuous: a source reads without end; on Kubernetes the query runs as a Deployment")
	}
	for _, r := range c.resolved {
		fmt.Fprintf(stdout, "Source %s: the fields of the latest schema of subject %s at %s, version %d (schema id %d), read now:\n", r.Source, r.Subject, r.Registry, r.Version, r.ID)
		cols := c.inputs[r.Source]
		for _, col := range cols[:len(cols)-len(schemas.KafkaMeta)] {
			fmt.Fprintf(stdout, "  %s %s\n", col.Name, col.Type)
		}
	}
	group := consumerGroup(doc.Query.Namespace, doc.Query.Name)
	for _, st := range c.statements {
		if st.Name != "" {
			fmt.Fprintf(stdout, "\nStatement %s, to the %s sink:\n", st.Name, st.Spec.Sink.Connector())
		}
		printPlan(stdout, st.Spec, st.Prog, group)
	}
	return exitOK
}

// printPlan shows how a query keeps its state, its plan and the schema of
// its sink's records.
func printPlan(w io.Writer, spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, group string) {
	var steps map[plan.Node]string
	if p, ok := compile.StatePartitioning(spec, prog, group); ok {
		fmt.Fprintf(w, "State: %s\n", p.Describe)
		if p.Repartition && spec.SeveralEngines() {
			// Each engine runs what is below the step over the source's
			// partitions it reads, and what is above over the topic's.
			steps = map[plan.Node]string{}
			for _, in := range prog.StateInputs() {
				steps[in] = fmt.Sprintf("Repartition by %s through topic %s", prog.KeysOf(plan.Sources(in)[0]), p.Topic)
			}
		}
	}
	fmt.Fprint(w, plan.ExplainSteps(prog.Root(), steps))
	printSinkSchema(w, spec, prog)
}

// printSinkSchema shows the schema of an avro or protobuf sink's records.
func printSinkSchema(w io.Writer, spec *v1alpha1.StreamQuerySpec, prog *streamop.Program) {
	schema, _ := compile.SinkSchema(spec.Sink, prog.Output) // Plan accepted it
	if schema == "" {
		return
	}
	if r := spec.Sink.Registry(); r != nil && spec.Sink.Kafka != nil {
		k := spec.Sink.Kafka
		fmt.Fprintf(w, "Sink: %s records in the schema registry wire format, their schema registered under subject %s at %s:\n%s\n", spec.Sink.Format, r.SubjectOf(k.Topic), r.URL, strings.TrimSpace(schema))
		if i := slices.IndexFunc(prog.Output, func(c value.Column) bool { return c.Name == k.Key }); i >= 0 && string(k.KeyFormat) == string(spec.Sink.Format) {
			key, _ := compile.SinkSchema(spec.Sink, prog.Output[i:i+1])
			fmt.Fprintf(w, "Keys: %s, their schema registered under subject %s-key:\n%s\n", k.Key, k.Topic, strings.TrimSpace(key))
		}
		return
	}
	fmt.Fprintf(w, "Sink: plain %s records of the schema:\n%s\n", spec.Sink.Format, strings.TrimSpace(schema))
}

// checked is a manifest's plan.
type checked struct {
	statements []compile.Statement        // one, but of a statement set
	inputs     map[string][]value.Column  // by source
	resolved   []connector.ResolvedSchema // the registries' latest schemas read
}

// check decides what is wrong with a manifest: the problems of its structure,
// its spec and its query, in file order. validate and run both ask it, so
// that they never disagree; there is no plan when there are problems. First
// it reads the registry's latest schema of each source whose columns are
// its fields, into the manifest's spec.
func check(ctx context.Context, doc *manifest.Document, log *slog.Logger) (checked, v1alpha1.Problems) {
	resolved, unread := bundle.All().ResolveSchemas(ctx, &doc.Query.Spec, log)
	stmts, inputs, err := compile.PlanSet(&doc.Query.Spec, connector.Sources(resolved), unread)
	diags := append(doc.Structural(), doc.Locate(err)...)
	if len(diags) > 0 {
		return checked{}, diags.Sorted()
	}
	return checked{statements: stmts, inputs: inputs, resolved: resolved}, nil
}

// load reads a manifest and fills its defaults.
func load(file string) (*manifest.Document, error) {
	doc, err := manifest.Load(file)
	if err != nil {
		return nil, err
	}
	doc.Query.Spec.Default()
	return doc, nil
}

func printProblems(w io.Writer, ds v1alpha1.Problems) {
	for _, d := range ds {
		fmt.Fprintln(w, d.String())
	}
	noun := "problems"
	if len(ds) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "%d %s found\n", len(ds), noun)
}
