package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/sluice-dev/sluice/runtime/manifest"
	"github.com/sluice-dev/sluice/runtime/pipeline"
	"github.com/sluice-dev/sluice/runtime/plan"
)

func validateCmd(args []string, stdout, stderr io.Writer) int {
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
	doc, ok := load(*file, stderr)
	if !ok {
		return exitFailed
	}
	prog, _, err := pipeline.Plan(&doc.Query.Spec)
	if diags := append(doc.Structural(), doc.Locate(err)...); len(diags) > 0 {
		printDiagnostics(stderr, diags.Sorted())
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	fmt.Fprint(stdout, plan.Explain(prog.Root()))
	return exitOK
}

// load parses a manifest, printing its problems.
func load(file string, stderr io.Writer) (*manifest.Document, bool) {
	doc, err := manifest.Load(file)
	if err != nil {
		if ds, ok := err.(manifest.Diagnostics); ok {
			printDiagnostics(stderr, ds)
		} else {
			fmt.Fprintf(stderr, "engine: %v\n", err)
		}
		return nil, false
	}
	doc.Query.Spec.Default()
	return doc, true
}

func printDiagnostics(w io.Writer, ds manifest.Diagnostics) {
	for _, d := range ds {
		fmt.Fprintln(w, d.String())
	}
	noun := "problems"
	if len(ds) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "%d %s found\n", len(ds), noun)
}
