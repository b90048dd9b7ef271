// Package nexmark holds the queries of the Nexmark benchmark, q0 to q22, as
// manifests over the Nexmark generators (one file each, q0.yaml and on).
// engine bench --nexmark runs them; docs/nexmark.md has the figures.
package nexmark

import (
	"embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/manifest"
)

//go:embed *.yaml
var manifests embed.FS

// Queries returns the names of the queries, in order: q0, q1, ...
func Queries() []string {
	entries, _ := manifests.ReadDir(".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.SortFunc(names, func(a, b string) int { return number(a) - number(b) })
	return names
}

// number is the number of query qN.
func number(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "q"))
	return n
}

// Manifest returns the manifest of query name (q1).
func Manifest(name string) ([]byte, error) {
	b, err := manifests.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no nexmark query %s (there are %s)", name, strings.Join(Queries(), ", "))
	}
	return b, nil
}

// Spec returns the spec of query name's manifest, as written: its
// generators' counts and its sink are the example's.
func Spec(name string) (*v1alpha1.StreamQuerySpec, error) {
	b, err := Manifest(name)
	if err != nil {
		return nil, err
	}
	doc, err := manifest.Parse(name+".yaml", b)
	if err != nil {
		return nil, err
	}
	return &doc.Query.Spec, nil
}
