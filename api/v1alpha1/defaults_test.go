package v1alpha1

import (
	"encoding/json"
	"testing"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
)

// TestCRDDefaults: the API server, defaulting a spec with the generated
// CRD's schema, and Default fill the same fields with the same values, for
// manifests that reach every struct with defaults.
func TestCRDDefaults(t *testing.T) {
	spec := crdSpecSchema(t)
	manifests := map[string]string{
		"minimal": `{"sources": [{"name": "t", "file": {"path": "t.jsonl"}, "schema": [{"name": "a", "type": "bigint"}]}],
			"query": "SELECT a FROM t", "sink": {"stdout": {}}}`,
		"kafka and event time": `{"sources": [{"name": "t", "kafka": {"brokers": ["k:9092"], "topic": "t"},
				"schema": [{"name": "ts", "type": "timestamp"}], "eventTime": {"column": "ts"}}],
			"query": "SELECT ts FROM t", "sink": {"kafka": {"brokers": ["k:9092"], "topic": "out"}},
			"errorPolicy": {"strategy": "DeadLetter", "deadLetter": {"kafka": {"brokers": ["k:9092"], "topic": "dlq"}}},
			"autoscaling": {"maxReplicas": 4}}`,
		"datagen and set values": `{"sources": [{"name": "trades", "datagen": {"generator": "trades", "keys": 7}, "format": "csv"}],
			"query": "SELECT * FROM trades", "sink": {"null": {}},
			"runtime": {"batchSize": 64, "shutdownTimeout": "5s"}, "health": {"errorRatePercent": 0}, "replicas": 0,
			"podDisruptionBudget": {}}`,
	}
	for name, manifest := range manifests {
		t.Run(name, func(t *testing.T) {
			var byServer map[string]any
			if err := json.Unmarshal([]byte(manifest), &byServer); err != nil {
				t.Fatal(err)
			}
			defaulting.Default(byServer, spec)
			server := decodeSpec(t, byServer)

			var local StreamQuerySpec
			if err := json.Unmarshal([]byte(manifest), &local); err != nil {
				t.Fatal(err)
			}
			local.Default()
			if a, b := indented(t, server), indented(t, local); a != b {
				t.Errorf("CRD defaults and Default differ:\nthe API server's:\n%s\nDefault's:\n%s", a, b)
			}
		})
	}
}

// crdSpecSchema returns the structural schema of the CRD's spec.
func crdSpecSchema(t *testing.T) *structuralschema.Structural {
	t.Helper()
	v1 := crdSchema(t).Properties["spec"]
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&v1, &internal, nil); err != nil {
		t.Fatal(err)
	}
	s, err := structuralschema.NewStructural(&internal)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeSpec(t *testing.T, obj map[string]any) StreamQuerySpec {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var s StreamQuerySpec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func indented(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
