package controllers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestCRDValidation: the API server itself rejects malformed queries, with
// a message that says what is wrong, and the engine's own validation
// (v1alpha1's Validate, which `engine validate` and `engine run` use)
// accepts and rejects the same table of manifests.
func TestCRDValidation(t *testing.T) {
	ns := newNamespace(t)
	valid := func() map[string]any {
		return map[string]any{
			"sources": []any{map[string]any{"name": "trades", "datagen": map[string]any{"generator": "trades"}}},
			"query":   "SELECT symbol FROM trades",
			"sink":    map[string]any{"stdout": map[string]any{}},
		}
	}
	source := func(s map[string]any) map[string]any { return s["sources"].([]any)[0].(map[string]any) }
	kafkaSource := func(s map[string]any, kafka map[string]any) map[string]any {
		kafka["brokers"] = []any{"k:9092"}
		if _, ok := kafka["topics"]; !ok {
			kafka["topic"] = "trades"
		}
		src := map[string]any{"name": "trades", "kafka": kafka, "schema": []any{
			map[string]any{"name": "symbol", "type": "text"},
			map[string]any{"name": "ts", "type": "timestamp"},
		}}
		s["sources"] = []any{src}
		return src
	}
	kafkaSink := func(s map[string]any, kafka map[string]any) {
		kafka["brokers"] = []any{"k:9092"}
		kafka["topic"] = "out"
		s["sink"] = map[string]any{"kafka": kafka}
	}
	tests := []struct {
		name   string
		mutate func(spec map[string]any)
		want   string // "": both accept
	}{
		{"valid", func(map[string]any) {}, ""},
		{"no sources", func(s map[string]any) { s["sources"] = []any{} }, "spec.sources: Invalid value"},
		{"two connectors", func(s map[string]any) { source(s)["stdin"] = map[string]any{} }, "set exactly one of kafka, file, stdin and datagen"},
		{"no connector", func(s map[string]any) { delete(source(s), "datagen") }, "set exactly one of kafka, file, stdin and datagen"},
		{"duplicate source names", func(s map[string]any) {
			s["sources"] = append(s["sources"].([]any), map[string]any{"name": "trades", "stdin": map[string]any{}, "schema": []any{map[string]any{"name": "a", "type": "text"}}})
		}, "Duplicate value"},
		{"bad source name", func(s map[string]any) { source(s)["name"] = "Trades!" }, "spec.sources[0].name: Invalid value"},
		{"bad format", func(s map[string]any) { source(s)["format"] = "xml" }, `Unsupported value: "xml"`},
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
		{"zero replicas, suspended", func(s map[string]any) { s["replicas"], s["suspend"] = int64(0), true }, ""},
		{"replicas of a datagen source", func(s map[string]any) { s["replicas"] = int64(2) }, "replicas above 1 need kafka sources"},
		{"replicas of a kafka source", func(s map[string]any) { kafkaSource(s, map[string]any{}); s["replicas"] = int64(3) }, ""},
		{"bad duration", func(s map[string]any) { s["runtime"] = map[string]any{"batchLinger": "5 parsecs"} }, "batchLinger must be a duration"},
		{"longest batch linger", func(s map[string]any) { s["runtime"] = map[string]any{"batchLinger": "1m"} }, ""},
		{"shutdown timeout of 0", func(s map[string]any) { s["runtime"] = map[string]any{"shutdownTimeout": "0s"} }, "shutdownTimeout must be a positive duration"},
		{"negative retries", func(s map[string]any) { s["errorPolicy"] = map[string]any{"maxRetries": int64(-2)} }, "spec.errorPolicy.maxRetries: Invalid value"},
		{"retry backoff too long", func(s map[string]any) { s["errorPolicy"] = map[string]any{"retryBackoff": "2m"} }, "retryBackoff must be a positive duration"},
		{"bad mode", func(s map[string]any) { s["runtime"] = map[string]any{"mode": "turbo"} }, `Unsupported value: "turbo"`},
		{"health window too long", func(s map[string]any) { s["health"] = map[string]any{"errorWindow": "2h"} }, "errorWindow must be a positive duration"},
		{"disruption budget", func(s map[string]any) { s["podDisruptionBudget"] = map[string]any{"maxUnavailable": "25%"} }, ""},
		{"disruption budget of 150%", func(s map[string]any) { s["podDisruptionBudget"] = map[string]any{"maxUnavailable": "150%"} }, "maxUnavailable must be a number of engines or a percentage"},
		{"disruption budget below 0", func(s map[string]any) { s["podDisruptionBudget"] = map[string]any{"maxUnavailable": int64(-1)} }, "maxUnavailable must be a number of engines or a percentage"},
		{"lag bounds", func(s map[string]any) {
			s["health"] = map[string]any{"maxLagRecords": int64(1000), "maxLagTime": "24h"}
		}, ""},
		{"lag bound of 0 records", func(s map[string]any) { s["health"] = map[string]any{"maxLagRecords": int64(0)} }, "spec.health.maxLagRecords: Invalid value"},
		{"lag bound too long", func(s map[string]any) { s["health"] = map[string]any{"maxLagTime": "25h"} }, "maxLagTime must be a positive duration"},
		{"stall timeout of 0: never", func(s map[string]any) { s["health"] = map[string]any{"stallTimeout": "0s"} }, ""},
		{"stall timeout too long", func(s map[string]any) { s["health"] = map[string]any{"stallTimeout": "25h"} }, "stallTimeout must be a duration between"},
		{"negative stall timeout", func(s map[string]any) { s["health"] = map[string]any{"stallTimeout": "-1s"} }, "stallTimeout must be a duration between"},
		{"kafka source", func(s map[string]any) { kafkaSource(s, map[string]any{}) }, ""},
		{"autoscaling", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["autoscaling"] = map[string]any{"minReplicas": int64(2), "maxReplicas": int64(6), "backpressure": "Medium", "scaleDownStabilization": "10m"}
		}, ""},
		{"state of a datagen without dir", func(s map[string]any) { s["state"] = map[string]any{} }, "spec.state.dir or spec.state.volume is required"},
		{"state of a datagen in a volume", func(s map[string]any) { s["state"] = map[string]any{"volume": map[string]any{"size": "1Gi"}} }, ""},
		{"state volume without a size", func(s map[string]any) { s["state"] = map[string]any{"volume": map[string]any{}} }, "spec.state.volume.size: Required value"},
		{"exactly-once state in a volume", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			kafkaSink(s, map[string]any{"delivery": "exactlyOnce"})
			s["state"] = map[string]any{"volume": map[string]any{"size": "1Gi"}}
		}, "remove spec.state.dir and spec.state.volume"},
		{"state on several engines in a volume", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["replicas"], s["state"] = int64(3), map[string]any{"volume": map[string]any{"size": "1Gi"}}
		}, "remove spec.state.dir and spec.state.volume"},
		{"state of a datagen in a dir", func(s map[string]any) { s["state"] = map[string]any{"dir": "/state"} }, ""},
		{"state of a kafka source in its topic", func(s map[string]any) { kafkaSource(s, map[string]any{}); s["state"] = map[string]any{} }, ""},
		{"exactly-once state in a dir", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			kafkaSink(s, map[string]any{"delivery": "exactlyOnce"})
			s["state"] = map[string]any{"dir": "/state"}
		}, "an exactly-once query keeps its checkpoints in the Kafka topic"},
		{"exactly-once state in its topic", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			kafkaSink(s, map[string]any{"delivery": "exactlyOnce"})
			s["state"] = map[string]any{"checkpointInterval": "1s"}
		}, ""},
		{"state on several engines in its topic", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["replicas"], s["state"] = int64(3), map[string]any{}
		}, ""},
		{"state on several engines in a dir", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["replicas"], s["state"] = int64(3), map[string]any{"dir": "/state"}
		}, "state on several engines moves with its partitions through Kafka"},
		{"exactly-once state on several engines", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			kafkaSink(s, map[string]any{"delivery": "exactlyOnce"})
			s["replicas"], s["state"] = int64(2), map[string]any{}
		}, ""},
		{"autoscaling a datagen", func(s map[string]any) { s["autoscaling"] = map[string]any{"maxReplicas": int64(3)} }, "autoscaling needs kafka sources"},
		{"autoscaling min above max", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["autoscaling"] = map[string]any{"minReplicas": int64(4), "maxReplicas": int64(3)}
		}, "minReplicas must not be above maxReplicas"},
		{"autoscaling without max", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["autoscaling"] = map[string]any{"minReplicas": int64(1)}
		}, "spec.autoscaling.maxReplicas: Required value"},
		{"autoscaling window too long", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["autoscaling"] = map[string]any{"maxReplicas": int64(3), "scaleUpStabilization": "2h"}
		}, "scaleUpStabilization must be a duration between"},
		{"autoscaling on an unknown level", func(s map[string]any) {
			kafkaSource(s, map[string]any{})
			s["autoscaling"] = map[string]any{"maxReplicas": int64(3), "backpressure": "Severe"}
		}, `Unsupported value: "Severe"`},
		{"topic and topics", func(s map[string]any) { kafkaSource(s, map[string]any{"topic": "a", "topics": []any{"b"}}) }, "topic"},
		{"session timeout too short", func(s map[string]any) { kafkaSource(s, map[string]any{"sessionTimeout": "500ms"}) }, "sessionTimeout"},
		{"longest session timeout", func(s map[string]any) { kafkaSource(s, map[string]any{"sessionTimeout": "30m"}) }, ""},
		{"tls files without tls", func(s map[string]any) { kafkaSource(s, map[string]any{"tls": map[string]any{"caFile": "/ca.pem"}}) }, "tls"},
		{"client certificate without its key", func(s map[string]any) {
			kafkaSource(s, map[string]any{"tls": map[string]any{"enabled": true, "certFile": "/c.pem"}})
		}, "certFile"},
		{"sasl username twice", func(s map[string]any) {
			kafkaSource(s, map[string]any{"sasl": map[string]any{"mechanism": "PLAIN", "usernameEnv": "U", "usernameFile": "/u", "passwordEnv": "P"}})
		}, "username"},
		{"key column of a file", func(s map[string]any) {
			s["sources"] = []any{map[string]any{"name": "trades", "file": map[string]any{"path": "/t"}, "schema": []any{map[string]any{"name": "a", "type": "text", "key": true}}}}
		}, "only a kafka source has record keys"},
		{"key and header", func(s map[string]any) {
			src := kafkaSource(s, map[string]any{})
			src["schema"] = []any{map[string]any{"name": "a", "type": "text", "key": true, "header": "h"}}
		}, "a column comes from the record key or from a header, not both"},
		{"two string key columns", func(s map[string]any) {
			src := kafkaSource(s, map[string]any{})
			src["schema"] = []any{map[string]any{"name": "a", "type": "text", "key": true}, map[string]any{"name": "b", "type": "text", "key": true}}
		}, "keyFormat"},
		{"idle timeout too long", func(s map[string]any) {
			kafkaSource(s, map[string]any{})["eventTime"] = map[string]any{"column": "ts", "idleTimeout": "25h"}
		}, "idleTimeout"},
		{"out-of-orderness too long", func(s map[string]any) {
			kafkaSource(s, map[string]any{})["eventTime"] = map[string]any{"column": "ts", "maxOutOfOrderness": "169h"}
		}, "maxOutOfOrderness"},
		{"allowed lateness at its bound", func(s map[string]any) {
			kafkaSource(s, map[string]any{})["eventTime"] = map[string]any{"column": "ts", "allowedLateness": "168h"}
		}, ""},
		{"transaction interval too short", func(s map[string]any) { kafkaSink(s, map[string]any{"transactionInterval": "5ms"}) }, "transactionInterval"},
		{"shortest transaction interval", func(s map[string]any) { kafkaSink(s, map[string]any{"transactionInterval": "10ms"}) }, ""},
		{"linger too long", func(s map[string]any) { kafkaSink(s, map[string]any{"linger": "2m"}) }, "linger"},
		{"engine template", func(s map[string]any) {
			s["template"] = map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"team": "payments"}},
				"spec": map[string]any{
					"serviceAccountName": "reader",
					"env":                []any{map[string]any{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://collector:4318"}},
					"volumes":            []any{map[string]any{"name": "tls", "secret": map[string]any{"secretName": "kafka-tls"}}},
					"volumeMounts":       []any{map[string]any{"name": "tls", "mountPath": "/etc/kafka-tls"}},
					"containers":         []any{map[string]any{"name": "shipper", "image": "example.com/shipper:1"}},
				},
			}
		}, ""},
		{"statements", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			s["statements"] = []any{
				map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"stdout": map[string]any{}}},
				map[string]any{"name": "prices", "query": "SELECT price FROM trades", "sink": map[string]any{"null": map[string]any{}}},
			}
		}, ""},
		{"statements and a query", func(s map[string]any) {
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"stdout": map[string]any{}}}}
		}, "set query and sink, or statements"},
		{"neither statements nor a sink", func(s map[string]any) { delete(s, "sink") }, "set query and sink, or statements"},
		{"statement names twice", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			st := map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"stdout": map[string]any{}}}
			s["statements"] = []any{st, st}
		}, "Duplicate value"},
		{"statement without a sink", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{}}}
		}, "set exactly one of stdout, file, null and kafka"},
		{"statement set with state", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"stdout": map[string]any{}}}}
			s["state"] = map[string]any{"dir": "/state"}
		}, ""},
		{"statement set with state on several engines", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			kafkaSource(s, map[string]any{})
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"stdout": map[string]any{}}}}
			s["state"] = map[string]any{}
			s["replicas"] = int64(2)
		}, ""},
		{"statement set exactly once", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			s["sources"] = []any{map[string]any{"name": "trades", "kafka": map[string]any{"brokers": []any{"k:9092"}, "topic": "t"}, "schema": []any{map[string]any{"name": "symbol", "type": "text"}}}}
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"kafka": map[string]any{"brokers": []any{"k:9092"}, "topic": "o", "delivery": "exactlyOnce"}}}}
		}, ""},
		{"statement set exactly once with state", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			s["sources"] = []any{map[string]any{"name": "trades", "kafka": map[string]any{"brokers": []any{"k:9092"}, "topic": "t"}, "schema": []any{map[string]any{"name": "symbol", "type": "text"}}}}
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"kafka": map[string]any{"brokers": []any{"k:9092"}, "topic": "o", "delivery": "exactlyOnce"}}}}
			s["state"] = map[string]any{}
		}, ""},
		{"statement set exactly once with state in a directory", func(s map[string]any) {
			delete(s, "query")
			delete(s, "sink")
			s["sources"] = []any{map[string]any{"name": "trades", "kafka": map[string]any{"brokers": []any{"k:9092"}, "topic": "t"}, "schema": []any{map[string]any{"name": "symbol", "type": "text"}}}}
			s["statements"] = []any{map[string]any{"name": "copy", "query": "SELECT symbol FROM trades", "sink": map[string]any{"kafka": map[string]any{"brokers": []any{"k:9092"}, "topic": "o", "delivery": "exactlyOnce"}}}}
			s["state"] = map[string]any{"dir": "/state"}
		}, "a statement set that writes exactly once with spec.state keeps its checkpoints in the Kafka topics"},
		{"engine template setting POD_NAME", func(s map[string]any) {
			s["template"] = map[string]any{"spec": map[string]any{"env": []any{map[string]any{"name": "POD_NAME", "value": "x"}}}}
		}, "POD_NAME and POD_NAMESPACE are set by the operator"},
	}
	for _, tt := range tests {
		spec := valid()
		tt.mutate(spec)
		b, _ := json.Marshal(spec)
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "streaming.sluice.dev/v1alpha1",
			"kind":       "StreamQuery",
			"metadata":   map[string]any{"namespace": ns, "name": "q"},
			"spec":       spec,
		}}
		err := k8s.Create(context.Background(), obj, client.DryRunAll)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: the API server rejected %s: %v", tt.name, b, err)
		case tt.want != "" && err == nil:
			t.Errorf("%s: the API server accepted %s", tt.name, b)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("%s: error %q; want it to contain %q", tt.name, err, tt.want)
		}

		var typed v1alpha1.StreamQuerySpec
		if err := json.Unmarshal(b, &typed); err != nil {
			if tt.want == "" {
				t.Errorf("%s: the engine cannot read %s: %v", tt.name, b, err)
			}
			continue // a manifest the engine cannot read, it refuses
		}
		typed.Default()
		switch ps := typed.Validate(); {
		case tt.want == "" && len(ps) > 0:
			t.Errorf("%s: Validate rejected what the API server accepts, %s: %v", tt.name, b, ps)
		case tt.want != "" && len(ps) == 0:
			t.Errorf("%s: Validate accepted what the API server rejects: %s", tt.name, b)
		}
	}
}
