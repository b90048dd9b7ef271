package controllers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCRDValidation: the API server itself rejects malformed queries, with a
// message that says what is wrong.
func TestCRDValidation(t *testing.T) {
	ns := newNamespace(t)
	valid := func() map[string]any {
		return map[string]any{
			"sources": []any{map[string]any{"name": "trades", "datagen": map[string]any{"generator": "trades"}}},
			"query":   "SELECT symbol FROM trades",
			"sink":    map[string]any{"stdout": map[string]any{}},
		}
	}
	tests := []struct {
		name   string
		mutate func(spec map[string]any)
		want   string
	}{
		{"no sources", func(s map[string]any) { s["sources"] = []any{} }, "spec.sources: Invalid value"},
		{"two connectors", func(s map[string]any) {
			s["sources"].([]any)[0].(map[string]any)["stdin"] = map[string]any{}
		}, "set exactly one of kafka, file, stdin and datagen"},
		{"no connector", func(s map[string]any) { delete(s["sources"].([]any)[0].(map[string]any), "datagen") }, "set exactly one of kafka, file, stdin and datagen"},
		{"duplicate source names", func(s map[string]any) {
			s["sources"] = append(s["sources"].([]any), map[string]any{"name": "trades", "stdin": map[string]any{}})
		}, "Duplicate value"},
		{"bad source name", func(s map[string]any) { s["sources"].([]any)[0].(map[string]any)["name"] = "Trades!" }, "spec.sources[0].name: Invalid value"},
		{"bad format", func(s map[string]any) { s["sources"].([]any)[0].(map[string]any)["format"] = "xml" }, `Unsupported value: "xml"`},
		{"two sinks", func(s map[string]any) {
			s["sink"] = map[string]any{"stdout": map[string]any{}, "null": map[string]any{}}
		}, "set exactly one of stdout, file, null and kafka"},
		{"no sink", func(s map[string]any) { s["sink"] = map[string]any{} }, "set exactly one of stdout, file, null and kafka"},
		{"empty query", func(s map[string]any) { s["query"] = "" }, "spec.query: Invalid value"},
		{"dead letter without a sink", func(s map[string]any) { s["errorPolicy"] = map[string]any{"strategy": "DeadLetter"} }, "strategy DeadLetter needs a deadLetter sink"},
		{"unknown strategy", func(s map[string]any) { s["errorPolicy"] = map[string]any{"strategy": "Retry"} }, `Unsupported value: "Retry"`},
		{"zero parallelism", func(s map[string]any) { s["runtime"] = map[string]any{"parallelism": int64(-1)} }, "spec.runtime.parallelism: Invalid value"},
		{"negative replicas", func(s map[string]any) { s["replicas"] = int64(-1) }, "spec.replicas: Invalid value"},
		{"zero replicas, not suspended", func(s map[string]any) { s["replicas"] = int64(0) }, "replicas must be at least 1, or 0 with suspend: true"},
		{"bad duration", func(s map[string]any) { s["runtime"] = map[string]any{"batchLinger": "5 parsecs"} }, "batchLinger must be a duration"},
		{"negative retries", func(s map[string]any) { s["errorPolicy"] = map[string]any{"maxRetries": int64(-2)} }, "spec.errorPolicy.maxRetries: Invalid value"},
		{"bad mode", func(s map[string]any) { s["runtime"] = map[string]any{"mode": "turbo"} }, `Unsupported value: "turbo"`},
	}
	for _, tt := range tests {
		spec := valid()
		tt.mutate(spec)
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "streaming.sluice.dev/v1alpha1",
			"kind":       "StreamQuery",
			"metadata":   map[string]any{"namespace": ns, "name": "invalid"},
			"spec":       spec,
		}}
		err := k8s.Create(context.Background(), obj)
		if err == nil {
			b, _ := json.Marshal(spec)
			t.Errorf("%s: the API server accepted %s", tt.name, b)
			k8s.Delete(context.Background(), obj)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q; want it to contain %q", tt.name, err, tt.want)
		}
	}
	// And the valid one is accepted.
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "streaming.sluice.dev/v1alpha1", "kind": "StreamQuery",
		"metadata": map[string]any{"namespace": ns, "name": "valid"}, "spec": valid(),
	}}
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Errorf("the valid query was rejected: %v", err)
	}
}
