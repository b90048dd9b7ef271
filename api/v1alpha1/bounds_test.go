package v1alpha1

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestCRDBounds: the generated CRD bounds every size, count and duration
// with the same number as Validate, so that the API server and the engine
// refuse the same manifests.
func TestCRDBounds(t *testing.T) {
	root := crdSchema(t)
	numbers := []struct {
		path string
		max  int64
	}{
		{"spec.sources", MaxSources},
		{"spec.metrics", MaxMetrics},
		{"spec.metrics[].labels", MaxMetricLabels},
		{"spec.metrics[].buckets", MaxMetricBuckets},
		{"spec.metrics[].maxSeries", MaxMetricSeries},
		{"spec.sources[].schema", MaxColumns},
		{"spec.query", MaxQueryLength},
		{"spec.sources[].avro.schema", MaxFormatSchema},
		{"spec.sources[].protobuf.schema", MaxFormatSchema},
		{"spec.sources[].jsonSchema", MaxJSONSchema},
		{"spec.sources[].table.key", MaxTableKeys},
		{"spec.sources[].kafka.brokers", MaxBrokers},
		{"spec.sink.kafka.brokers", MaxBrokers},
		{"spec.errorPolicy.deadLetter.kafka.brokers", MaxBrokers},
		{"spec.sources[].kafka.topics", MaxTopics},
		{"spec.sources[].maxRecordBytes", MaxRecordBytesMax},
		{"spec.sources[].datagen.count", MaxDatagenCount},
		{"spec.sources[].datagen.rate", MaxDatagenRate},
		{"spec.sources[].datagen.partitions", MaxDatagenPartitions},
		{"spec.sources[].datagen.keys", MaxDatagenKeys},
		{"spec.runtime.parallelism", MaxParallelism},
		{"spec.runtime.channelCapacity", MaxChannelCapacity},
		{"spec.runtime.batchSize", MaxBatchSize},
		{"spec.errorPolicy.maxRetries", MaxRetriesMax},
		{"spec.sink.kafka.maxBatchBytes", MaxBatchBytesMax},
		{"spec.errorPolicy.deadLetter.kafka.maxBatchBytes", MaxBatchBytesMax},
		{"spec.replicas", MaxReplicas},
	}
	for _, n := range numbers {
		s := schemaAt(t, root, n.path)
		if s == nil {
			continue
		}
		var got *int64
		switch s.Type {
		case "array":
			got = s.MaxItems
		case "string":
			got = s.MaxLength
		default:
			if s.Maximum != nil {
				m := int64(*s.Maximum)
				got = &m
			}
		}
		if got == nil || *got != n.max {
			t.Errorf("%s: the CRD's bound is %v; want %d, as Validate", n.path, deref(got), n.max)
		}
	}
	durations := []struct {
		object, field string
		max           time.Duration
	}{
		{"spec.sources[].kafka", "sessionTimeout", MaxSessionTimeout},
		{"spec.sink.kafka", "transactionInterval", MaxTransactionInterval},
		{"spec.sink.kafka", "linger", MaxLinger},
		{"spec.errorPolicy.deadLetter.kafka", "linger", MaxLinger},
		{"spec.sources[].eventTime", "maxOutOfOrderness", MaxOutOfOrderness},
		{"spec.sources[].eventTime", "idleTimeout", MaxIdleTimeout},
		{"spec.sources[].eventTime", "allowedLateness", MaxAllowedLateness},
		{"spec.errorPolicy", "retryBackoff", MaxRetryBackoff},
		{"spec.runtime", "batchLinger", MaxBatchLinger},
		{"spec.runtime", "shutdownTimeout", MaxShutdownTimeout},
		{"spec.runtime", "emitInterval", MaxEmitInterval},
		{"spec.state", "checkpointInterval", MaxCheckpointInterval},
		{"spec.health", "queueSustained", MaxHealthWindow},
		{"spec.health", "rateBaseline", MaxHealthWindow},
		{"spec.health", "errorWindow", MaxHealthWindow},
		{"spec.health", "maxLagTime", MaxLagTime},
		{"spec.health", "stallTimeout", MaxStallTimeout},
		{"spec.autoscaling", "scaleUpStabilization", MaxScaleWindow},
		{"spec.autoscaling", "scaleDownStabilization", MaxScaleWindow},
	}
	for _, d := range durations {
		s := schemaAt(t, root, d.object)
		if s == nil {
			continue
		}
		bound := regexp.MustCompile(`duration\(self\.` + d.field + `\) <= duration\('([^']+)'\)`)
		var got time.Duration
		for _, r := range s.XValidations {
			if m := bound.FindStringSubmatch(r.Rule); m != nil {
				got, _ = time.ParseDuration(m[1])
			}
		}
		if got != d.max {
			t.Errorf("%s.%s: the CRD's bound is %s; want %s, as Validate", d.object, d.field, got, d.max)
		}
	}
}

// schemaAt walks a CRD schema along a path of fields; [] steps into a list.
func schemaAt(t *testing.T, s *apiextensionsv1.JSONSchemaProps, path string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	for _, step := range strings.Split(path, ".") {
		name, list := strings.CutSuffix(step, "[]")
		p, ok := s.Properties[name]
		if !ok {
			t.Errorf("%s: the CRD has no field %q", path, name)
			return nil
		}
		s = &p
		if list {
			s = s.Items.Schema
		}
	}
	return s
}

func deref(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}

// crdSchema returns the generated CRD's schema of a StreamQuery.
func crdSchema(t *testing.T) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	b, err := os.ReadFile("../../config/crd/bases/streaming.sluice.dev_streamqueries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}
