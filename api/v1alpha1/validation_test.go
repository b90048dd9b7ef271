package v1alpha1

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validSpec() StreamQuerySpec {
	return StreamQuerySpec{
		Sources: []Source{{Name: "trades", Datagen: &DatagenSource{Generator: "trades"}}},
		Query:   "SELECT symbol FROM trades",
		Sink:    &Sink{Stdout: &StdoutSink{}},
	}
}

func TestValidate(t *testing.T) {
	neg := int32(-1)
	tests := []struct {
		name   string
		mutate func(*StreamQuerySpec)
		field  string // "" for a valid spec
		substr string
	}{
		{"valid", func(*StreamQuerySpec) {}, "", ""},
		{"no sources", func(s *StreamQuerySpec) { s.Sources = nil }, "spec.sources", "at least one"},
		{"two connectors", func(s *StreamQuerySpec) { s.Sources[0].Stdin = &StdinSource{} }, "spec.sources[0]", "exactly one"},
		{"bad name", func(s *StreamQuerySpec) { s.Sources[0].Name = "Trades-1" }, "spec.sources[0].name", "not a valid name"},
		{"duplicate name", func(s *StreamQuerySpec) { s.Sources = append(s.Sources, s.Sources[0]) }, "spec.sources[1].name", "already used"},
		{"file without schema", func(s *StreamQuerySpec) { s.Sources[0] = Source{Name: "t", File: &FileSource{Path: "x"}} }, "spec.sources[0].schema", "needs a schema"},
		{"duplicate column", func(s *StreamQuerySpec) {
			s.Sources[0].Schema = []Column{{Name: "a", Type: "int"}, {Name: "a", Type: "int"}}
		}, "spec.sources[0].schema[1].name", "already declared"},
		{"bad format", func(s *StreamQuerySpec) { s.Sources[0].Format = "xml" }, "spec.sources[0].format", "unknown format"},
		{"avro from a file", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", File: &FileSource{Path: "x"}, Format: FormatAvro, Avro: &AvroFormat{Schema: "{}"}}
		}, "spec.sources[0].format", "avro is read from Kafka record values"},
		{"avro without schema or registry", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatAvro, Avro: &AvroFormat{}}
		}, "spec.sources[0].avro", "needs avro.schema"},
		{"avro registry's latest schema", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatAvro,
				Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081"}}}
		}, "", ""},
		{"avro registry's latest schema of a subject", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topics: []string{"t1", "t2"}}, Format: FormatAvro,
				Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081", Subject: "trades"}}}
		}, "", ""},
		{"avro registry's latest schema of several topics", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topics: []string{"t1", "t2"}}, Format: FormatAvro,
				Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081"}}}
		}, "spec.sources[0].avro.registry.subject", "reads 2 topics: name the subject"},
		{"avro source subject with columns", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatAvro,
				Schema: []Column{{Name: "a", Type: "int"}}, Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081", Subject: "s"}}}
		}, "spec.sources[0].avro.registry.subject", "read only when the source declares neither columns of the value nor avro.schema"},
		{"avro registry's latest schema after key columns", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t", KeyFormat: KeyFormatAvro}, Format: FormatAvro,
				Schema: []Column{{Name: "account", Type: "int", Key: true}}, Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081", Subject: "t-value"}}}
		}, "", ""},
		{"protobuf message of the registry's latest schema", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatProtobuf,
				Protobuf: &ProtobufFormat{Message: "m.Trade", Registry: &SchemaRegistry{URL: "http://r:8081"}}}
		}, "", ""},
		{"protobuf message of no schema", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatProtobuf,
				Schema: []Column{{Name: "a", Type: "int"}}, Protobuf: &ProtobufFormat{Message: "m.Trade", Registry: &SchemaRegistry{URL: "http://r:8081"}}}
		}, "spec.sources[0].protobuf.message", "names a message of protobuf.schema, which is not set"},
		{"avro registry url", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatAvro,
				Schema: []Column{{Name: "a", Type: "int"}}, Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "r:8081"}}}
		}, "spec.sources[0].avro.registry.url", "not an http or https URL"},
		{"avro registry password alone", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatAvro,
				Schema: []Column{{Name: "a", Type: "int"}}, Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081", PasswordEnv: "P"}}}
		}, "spec.sources[0].avro.registry", "set usernameEnv or usernameFile"},
		{"avro settings for json", func(s *StreamQuerySpec) { s.Sources[0].Avro = &AvroFormat{Schema: "{}"} }, "spec.sources[0].avro", "applies to format avro"},
		{"avro to stdout", func(s *StreamQuerySpec) { s.Sink.Format = FormatAvro }, "spec.sink.format", "avro records are written to Kafka topics"},
		{"avro sink schema", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "o"}, Format: FormatAvro, Avro: &AvroFormat{Schema: "{}"}}
		}, "spec.sink.avro.schema", "is for sources"},
		{"event time column", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", File: &FileSource{Path: "x"}, Schema: []Column{{Name: "a", Type: "int"}}, EventTime: &EventTime{Column: "ts"}}
		}, "spec.sources[0].eventTime.column", "not in the schema"},
		{"no sink", func(s *StreamQuerySpec) { s.Sink = &Sink{} }, "spec.sink", "exactly one"},
		{"dead letter without sink", func(s *StreamQuerySpec) { s.ErrorPolicy.Strategy = DeadLetter }, "spec.errorPolicy.deadLetter", "needs a deadLetter sink"},
		{"csv dead letters", func(s *StreamQuerySpec) {
			s.ErrorPolicy = ErrorPolicy{Strategy: DeadLetter, DeadLetter: &Sink{Stdout: &StdoutSink{}, Format: FormatCSV}}
		}, "spec.errorPolicy.deadLetter.format", "always json"},
		{"unknown strategy", func(s *StreamQuerySpec) { s.ErrorPolicy.Strategy = "Retry" }, "spec.errorPolicy.strategy", "unknown strategy"},
		{"disruption budget of a word", func(s *StreamQuerySpec) {
			s.PodDisruptionBudget = &DisruptionBudget{MaxUnavailable: ptr(intstr.FromString("lots"))}
		}, "spec.podDisruptionBudget.maxUnavailable", "a percentage"},
		{"template's POD_NAME", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{Env: []corev1.EnvVar{{Name: "POD_NAME"}}}}
		}, "spec.template.spec.env[0].name", "set by the operator"},
		{"template's manifest volume", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{Volumes: []runtime.RawExtension{{Raw: []byte(`{"name":"manifest","emptyDir":{}}`)}}}}
		}, "spec.template.spec.volumes[0].name", `"manifest" is the operator's`},
		{"template's misspelt volume", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{Volumes: []runtime.RawExtension{{Raw: []byte(`{"name":"tls","emptydir":{}}`)}}}}
		}, "spec.template.spec.volumes[0]", `unknown field "emptydir"`},
		{"template's mount over the manifest", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{VolumeMounts: []corev1.VolumeMount{{Name: "x", MountPath: "/etc/sluice/extra"}}}}
		}, "spec.template.spec.volumeMounts[0].mountPath", "/etc/sluice is the operator's"},
		{"template's mount of no volume", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/tls"}}}}
		}, "spec.template.spec.volumeMounts[0].name", `no volume "tls"`},
		{"template's engine container", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{Containers: []runtime.RawExtension{{Raw: []byte(`{"name":"engine","image":"x"}`)}}}}
		}, "spec.template.spec.containers[0].name", `"engine" is the operator's`},
		{"negative retries", func(s *StreamQuerySpec) { s.ErrorPolicy.MaxRetries = &neg }, "spec.errorPolicy.maxRetries", "between 0 and 100, got -1"},
		{"zero backoff", func(s *StreamQuerySpec) { s.ErrorPolicy.RetryBackoff = &metav1.Duration{} }, "spec.errorPolicy.retryBackoff", "positive"},
		{"bad mode", func(s *StreamQuerySpec) { s.Runtime.Mode = "turbo" }, "spec.runtime.mode", "unknown mode"},
		{"negative capacity", func(s *StreamQuerySpec) { s.Runtime.ChannelCapacity = -1 }, "spec.runtime.channelCapacity", "between 1 and 4096, got -1"},

		// Every size, count and duration has an upper bound.
		{"huge capacity", func(s *StreamQuerySpec) { s.Runtime.ChannelCapacity = 2_000_000_000 }, "spec.runtime.channelCapacity", "between 1 and 4096, got 2000000000"},
		{"huge parallelism", func(s *StreamQuerySpec) { s.Runtime.Parallelism = 257 }, "spec.runtime.parallelism", "between 1 and 256"},
		{"huge batches", func(s *StreamQuerySpec) { s.Runtime.BatchSize = 65537 }, "spec.runtime.batchSize", "between 1 and 65536"},
		{"long linger", func(s *StreamQuerySpec) { s.Runtime.BatchLinger = &metav1.Duration{Duration: time.Hour} }, "spec.runtime.batchLinger", "between 0s and 1m, got 1h0m0s"},
		{"long shutdown", func(s *StreamQuerySpec) { s.Runtime.ShutdownTimeout = &metav1.Duration{Duration: 2 * time.Hour} }, "spec.runtime.shutdownTimeout", "at most 1h"},
		{"many retries", func(s *StreamQuerySpec) { r := int32(101); s.ErrorPolicy.MaxRetries = &r }, "spec.errorPolicy.maxRetries", "between 0 and 100"},
		{"long backoff", func(s *StreamQuerySpec) { s.ErrorPolicy.RetryBackoff = &metav1.Duration{Duration: time.Hour} }, "spec.errorPolicy.retryBackoff", "at most 1m"},
		{"many partitions", func(s *StreamQuerySpec) { s.Sources[0].Datagen.Partitions = 1025 }, "spec.sources[0].datagen.partitions", "between 1 and 1024"},
		{"many keys", func(s *StreamQuerySpec) { s.Sources[0].Datagen.Keys = 1_000_001 }, "spec.sources[0].datagen.keys", "between 1 and 1000000"},
		{"many symbols", func(s *StreamQuerySpec) { s.Sources[0].Datagen.Partitions, s.Sources[0].Datagen.Keys = 1024, 1000 }, "spec.sources[0].datagen", "partitions × keys is 1024000"},
		{"long count", func(s *StreamQuerySpec) { s.Sources[0].Datagen.Count = 1e13 }, "spec.sources[0].datagen.count", "between 0 and 1000000000000"},
		{"huge records", func(s *StreamQuerySpec) { s.Sources[0].MaxRecordBytes = 1 << 30 }, "spec.sources[0].maxRecordBytes", "between 64 and 67108864"},
		{"long health window", func(s *StreamQuerySpec) { s.Health.RateBaseline = &metav1.Duration{Duration: 24 * time.Hour} }, "spec.health.rateBaseline", "at most 1h"},
		{"long lateness", func(s *StreamQuerySpec) {
			s.Sources[0].EventTime = &EventTime{Column: "ts", AllowedLateness: metav1.Duration{Duration: 30 * 24 * time.Hour}}
		}, "spec.sources[0].eventTime.allowedLateness", "between 0s and 168h"},
		{"long session", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.SessionTimeout = &metav1.Duration{Duration: time.Hour}
		}, "spec.sources[0].kafka.sessionTimeout", "between 1s and 30m"},
		{"long transactions", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce, TransactionInterval: &metav1.Duration{Duration: time.Minute}}}
		}, "spec.sink.kafka.transactionInterval", "between 10ms and 30s"},
		{"many replicas", func(s *StreamQuerySpec) { r := int32(129); s.Replicas = &r }, "spec.replicas", "at most 128"},
		{"long query", func(s *StreamQuerySpec) { s.Query = "SELECT symbol FROM trades" + strings.Repeat(" ", MaxQueryLength) }, "spec.query", "more than the 262144 allowed"},
		{"negative replicas", func(s *StreamQuerySpec) { s.Replicas = &neg }, "spec.replicas", "at least 1"},
		{"zero replicas, not suspended", func(s *StreamQuerySpec) { s.Replicas = new(int32) }, "spec.replicas", "0 with suspend"},

		{"several topics", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.Topic, s.Sources[0].Kafka.Topics = "", []string{"a", "b"}
		}, "", ""},
		{"topic and topics", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.Topics = []string{"a", "b"}
		}, "spec.sources[0].kafka.topics", "not both"},
		{"no topic", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.Topic = ""
		}, "spec.sources[0].kafka.topic", "needs a topic, or topics"},
		{"a topic twice", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.Topic, s.Sources[0].Kafka.Topics = "", []string{"a", "a"}
		}, "spec.sources[0].kafka.topics[1]", "distinct"},
		{"exactly once from several topics", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.Topic, s.Sources[0].Kafka.Topics = "", []string{"a", "b"}
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
		}, "spec.sink.kafka.delivery", "of one topic"},
		{"exactly once of a join", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), kafkaSource(Column{Name: "a", Type: "int"})}
			s.Sources[1].Name, s.Sources[1].Kafka.Topic = "q", "quotes"
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.State = &StateSpec{}
		}, "", ""},
		{"exactly once of a join without state", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), kafkaSource(Column{Name: "a", Type: "int"})}
			s.Sources[1].Name, s.Sources[1].Kafka.Topic = "q", "quotes"
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
		}, "spec.sink.kafka.delivery", "without spec.state, or in a statement set, needs exactly one source"},
		{"exactly once over two groups", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), kafkaSource(Column{Name: "a", Type: "int"})}
			s.Sources[1].Name, s.Sources[1].Kafka.Topic, s.Sources[1].Kafka.Group = "q", "quotes", "other"
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.State = &StateSpec{}
		}, "spec.sources[1].kafka.group", "one consumer group"},
		{"exactly once over two clusters", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), kafkaSource(Column{Name: "a", Type: "int"})}
			s.Sources[1].Name, s.Sources[1].Kafka.Topic, s.Sources[1].Kafka.Brokers = "q", "quotes", []string{"c:9092"}
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.State = &StateSpec{}
		}, "spec.sources[1].kafka.brokers", "on one cluster"},
		{"exactly once from stdin", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), {Name: "q", Stdin: &StdinSource{}, Schema: []Column{{Name: "a", Type: "int"}}}}
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.State = &StateSpec{}
		}, "spec.sources[1].stdin", "standard input cannot be read again"},
		{"a topic twice in one group", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), kafkaSource(Column{Name: "a", Type: "int"})}
			s.Sources[1].Name = "again"
		}, "spec.sources[1].kafka", "topic trades is read by spec.sources[0] too"},
		{"a topic twice in two groups", func(s *StreamQuerySpec) {
			s.Sources = []Source{kafkaSource(Column{Name: "a", Type: "int"}), kafkaSource(Column{Name: "a", Type: "int"})}
			s.Sources[1].Name, s.Sources[1].Kafka.Group = "again", "another"
		}, "", ""},
		{"partitioned by no column", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.PartitionedBy = []string{"b"}
		}, "spec.sources[0].kafka.partitionedBy[0]", "not a column of the schema"},
		{"state volume", func(s *StreamQuerySpec) {
			s.State = &StateSpec{Volume: &StateVolume{Size: resource.MustParse("1Gi")}}
		}, "", ""},
		{"empty state volume", func(s *StreamQuerySpec) {
			s.State = &StateSpec{Volume: &StateVolume{}}
		}, "spec.state.volume.size", "above 0"},
		{"state volume on several engines", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Replicas = ptr(int32(2))
			s.State = &StateSpec{Volume: &StateVolume{Size: resource.MustParse("1Gi")}}
		}, "spec.state.volume", "one engine's"},
		{"exactly-once state volume", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.State = &StateSpec{Volume: &StateVolume{Size: resource.MustParse("1Gi")}}
		}, "spec.state.volume", "remove volume"},
		{"state volume mounted over", func(s *StreamQuerySpec) {
			s.State = &StateSpec{Dir: "/data", Volume: &StateVolume{Size: resource.MustParse("1Gi")}}
			s.Template = &EngineTemplate{Spec: EnginePodSpec{
				Volumes:      []runtime.RawExtension{{Raw: []byte(`{"name":"data","emptyDir":{}}`)}},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data/"}},
			}}
		}, "spec.template.spec.volumeMounts[0].mountPath", "claim is mounted at /data"},
		{"template's state volume", func(s *StreamQuerySpec) {
			s.Template = &EngineTemplate{Spec: EnginePodSpec{Volumes: []runtime.RawExtension{{Raw: []byte(`{"name":"sluice-state","emptyDir":{}}`)}}}}
		}, "spec.template.spec.volumes[0].name", "spec.state.volume's claim"},
		{"exactly once without kafka", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.State = &StateSpec{Dir: "/state"}
		}, "spec.sink.kafka.delivery", "needs a kafka source"},
		{"start at a time", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.StartOffset = "2026-11-29T10:00:00.5+01:00"
		}, "", ""},
		{"start at a day", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.StartOffset = "2026-11-29"
		}, "spec.sources[0].kafka.startOffset", "RFC 3339 time"},

		// Kafka producer settings.
		{"producer settings", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"b:9092"}, Topic: "out", Compression: CompressionZstd,
				Linger: &metav1.Duration{Duration: 5 * time.Millisecond}, MaxBatchBytes: 1 << 20}}
		}, "", ""},
		{"unknown codec", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"b:9092"}, Topic: "out", Compression: "brotli"}}
		}, "spec.sink.kafka.compression", "unknown codec"},
		{"negative linger", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"b:9092"}, Topic: "out", Linger: &metav1.Duration{Duration: -time.Millisecond}}}
		}, "spec.sink.kafka.linger", "between 0s and 1m"},
		{"tiny dead-letter batches", func(s *StreamQuerySpec) {
			s.ErrorPolicy = ErrorPolicy{Strategy: DeadLetter, DeadLetter: &Sink{Kafka: &KafkaSink{Brokers: []string{"b:9092"}, Topic: "dlq", MaxBatchBytes: 100}}}
		}, "spec.errorPolicy.deadLetter.kafka.maxBatchBytes", "between 1024 and"},

		// Columns from the record key and headers.
		{"key and header columns", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "account", Type: "int", Key: true}, Column{Name: "tenant", Type: "string", Header: "tenant"})
		}, "", ""},
		{"json key columns", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int", Key: true}, Column{Name: "b", Type: "string", Key: true})
			s.Sources[0].Kafka.KeyFormat = KeyFormatJSON
		}, "", ""},
		{"two string key columns", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int", Key: true}, Column{Name: "b", Type: "string", Key: true})
		}, "spec.sources[0].schema[1].key", "already schema[0]"},
		{"key and header", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int", Key: true, Header: "a"})
		}, "spec.sources[0].schema[0]", "not both"},
		{"key column of a file", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", File: &FileSource{Path: "x"}, Schema: []Column{{Name: "a", Type: "int", Key: true}}}
		}, "spec.sources[0].schema[0].key", "only a kafka source"},
		{"header column of stdin", func(s *StreamQuerySpec) {
			s.Sources[0] = Source{Name: "t", Stdin: &StdinSource{}, Schema: []Column{{Name: "a", Type: "int", Header: "a"}}}
		}, "spec.sources[0].schema[0].header", "only a kafka source"},
		{"bad key format", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.KeyFormat = "xml"
		}, "spec.sources[0].kafka.keyFormat", "unknown key format"},
		{"avro keys of json values", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"}, Column{Name: "k", Type: "string", Key: true}, Column{Name: "r", Type: "string", Key: true})
			s.Sources[0].Kafka.KeyFormat = KeyFormatAvro
		}, "spec.sources[0].kafka.keyFormat", "set format avro with avro.registry"},
		{"avro keys without key columns", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Format, s.Sources[0].Kafka.KeyFormat = FormatAvro, KeyFormatAvro
			s.Sources[0].Avro = &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081"}}
		}, "spec.sources[0].kafka.keyFormat", "the schema declares none (key: true)"},
		{"sink keys in avro", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Format: FormatAvro, Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081"}},
				Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Key: "a", KeyFormat: KeyFormatAvro}}
		}, "", ""},
		{"sink keys in json without a key", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", KeyFormat: KeyFormatJSON}}
		}, "spec.sink.kafka.keyFormat", "set key to an output column"},
		{"sink keys in protobuf of json values", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Key: "a", KeyFormat: KeyFormatProtobuf}}
		}, "spec.sink.kafka.keyFormat", "set format protobuf with protobuf.registry"},
		{"sink keys in xml", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Key: "a", KeyFormat: "xml"}}
		}, "spec.sink.kafka.keyFormat", "unknown key format"},

		// TLS and SASL.
		{"tls and sasl", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.TLS = &KafkaTLS{Enabled: true, CAFile: "/etc/kafka/ca.crt", CertFile: "c", KeyFile: "k"}
			s.Sources[0].Kafka.SASL = &KafkaSASL{Mechanism: SASLScramSHA512, UsernameEnv: "KAFKA_USER", PasswordFile: "/etc/kafka/password"}
		}, "", ""},
		{"tls settings, not enabled", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.TLS = &KafkaTLS{CAFile: "/etc/kafka/ca.crt"}
		}, "spec.sources[0].kafka.tls.enabled", "enabled: true"},
		{"certificate without key", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.TLS = &KafkaTLS{Enabled: true, CertFile: "c"}
		}, "spec.sources[0].kafka.tls", "go together"},
		{"unknown mechanism", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.SASL = &KafkaSASL{Mechanism: "GSSAPI", UsernameEnv: "U", PasswordEnv: "P"}
		}, "spec.sources[0].kafka.sasl.mechanism", "unknown mechanism"},
		{"no password", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.SASL = &KafkaSASL{Mechanism: SASLPlain, UsernameEnv: "U"}
		}, "spec.sources[0].kafka.sasl", "set passwordEnv or passwordFile"},
		{"password from env and file", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.SASL = &KafkaSASL{Mechanism: SASLPlain, UsernameEnv: "U", PasswordEnv: "P", PasswordFile: "p"}
		}, "spec.sources[0].kafka.sasl", "only one of passwordEnv and passwordFile"},
		{"bad env name", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.SASL = &KafkaSASL{Mechanism: SASLPlain, UsernameEnv: "1USER", PasswordEnv: "P"}
		}, "spec.sources[0].kafka.sasl.usernameEnv", "not an environment variable name"},
		{"sink sasl", func(s *StreamQuerySpec) {
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", KafkaSecurity: KafkaSecurity{SASL: &KafkaSASL{Mechanism: SASLPlain, PasswordEnv: "P"}}}}
		}, "spec.sink.kafka.sasl", "set usernameEnv or usernameFile"},
		{"dead letter tls", func(s *StreamQuerySpec) {
			s.ErrorPolicy = ErrorPolicy{Strategy: DeadLetter, DeadLetter: &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "dlq", KafkaSecurity: KafkaSecurity{TLS: &KafkaTLS{KeyFile: "k"}}}}}
		}, "spec.errorPolicy.deadLetter.kafka.tls", "go together"},
		{"kafka table", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "sym", Type: "string", Key: true}, Column{Name: "name", Type: "string"})
			s.Sources[0].Table = &TableSource{Key: []string{"sym"}}
			s.Sources[0].Default() // startOffset earliest and a sessionTimeout, as the API server sets them
		}, "", ""},
		{"kafka table keyed by a value column", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "sym", Type: "string"}, Column{Name: "name", Type: "string"})
			s.Sources[0].Table = &TableSource{Key: []string{"sym"}}
		}, "spec.sources[0].table.key[0]", `declare column "sym" with key: true`},
		{"kafka table from latest", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "sym", Type: "string", Key: true})
			s.Sources[0].Table = &TableSource{Key: []string{"sym"}}
			s.Sources[0].Kafka.StartOffset = "latest"
		}, "spec.sources[0].kafka.startOffset", "read from its start (earliest), not latest"},
		{"kafka table in a group", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "sym", Type: "string", Key: true})
			s.Sources[0].Table = &TableSource{Key: []string{"sym"}}
			s.Sources[0].Kafka.Group = "g"
		}, "spec.sources[0].kafka.group", "in no consumer group"},
		{"exactly once to another cluster", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"b:9092"}, Topic: "out", Delivery: ExactlyOnce}}
		}, "spec.sink.kafka.brokers", "use its brokers, [k:9092]"},
		{"exactly once to the cluster, brokers in another order", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sources[0].Kafka.Brokers = []string{"k:9092", "l:9092"}
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"l:9092"}, Topic: "out", Delivery: ExactlyOnce}}
		}, "", ""},
		{"exactly-once dead letters to another cluster", func(s *StreamQuerySpec) {
			s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
			s.Sink = &Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: ExactlyOnce}}
			s.ErrorPolicy = ErrorPolicy{Strategy: DeadLetter, DeadLetter: &Sink{Kafka: &KafkaSink{Brokers: []string{"b:9092"}, Topic: "dlq"}}}
		}, "spec.errorPolicy.deadLetter.kafka.brokers", "dead letters too"},
		{"statement set exactly once", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
		}, "", ""},
		{"statement set exactly once with state", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.State = &StateSpec{}
		}, "", ""},
		{"statement set exactly once with state, of two sources", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.State = &StateSpec{}
			s.Sources = append(s.Sources, kafkaSource(Column{Name: "a", Type: "int"}))
			s.Sources[1].Name, s.Sources[1].Kafka.Topic = "other", "t2"
		}, "spec.statements[1].sink.kafka.delivery", "in a statement set, needs exactly one source"},
		{"statement set exactly once with state, direct", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.State = &StateSpec{}
			s.Runtime.Mode = Direct
		}, "spec.statements[1].sink.kafka.delivery", "runs pipelined"},
		{"statement set exactly once with state on several engines", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.State = &StateSpec{}
			s.Replicas = new(int32(2))
		}, "spec.statements[1].sink.kafka.delivery", "runs on one engine yet"},
		{"statement set exactly once of two transaction intervals", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.Statements[2].Sink.Kafka.TransactionInterval = &metav1.Duration{Duration: time.Second}
		}, "spec.statements[2].sink.kafka.transactionInterval", "the same transactionInterval as the first (unset)"},
		{"statement set exactly once of two compressions", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.Statements[2].Sink.Kafka.Compression = CompressionZstd
		}, "spec.statements[2].sink.kafka.compression", "the same compression"},
		{"statement set exactly once to another cluster", func(s *StreamQuerySpec) {
			exactlyOnceSet(s)
			s.Statements[2].Sink.Kafka.Brokers = []string{"b:9092"}
		}, "spec.statements[2].sink.kafka.brokers", "use its brokers"},
		{"endless datagen table", func(s *StreamQuerySpec) {
			s.Sources[0].Table = &TableSource{Key: []string{"symbol"}}
		}, "spec.sources[0].table", "must end or be a Kafka topic"},
	}
	for _, tt := range tests {
		s := validSpec()
		tt.mutate(&s)
		ps := s.Validate()
		if tt.field == "" {
			if len(ps) != 0 {
				t.Errorf("%s: Validate() = %v; want no problems", tt.name, ps)
			}
			continue
		}
		found := false
		for _, p := range ps {
			if p.Field == tt.field && strings.Contains(p.Message, tt.substr) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: Validate() = %v; want a problem in %s containing %q", tt.name, ps, tt.field, tt.substr)
		}
	}
}

// TestValidateExactlyOnceSetWithState: a statement set that writes exactly
// once with spec.state keeps its checkpoints in Kafka, in the set's
// transactions, which commit at each checkpoint: a directory is refused,
// and each exactly-once statement's transaction interval, at its sink.
func TestValidateExactlyOnceSetWithState(t *testing.T) {
	s := validSpec()
	exactlyOnceSet(&s)
	s.State = &StateSpec{Dir: "/state"}
	for i := 1; i <= 2; i++ {
		s.Statements[i].Sink.Kafka.TransactionInterval = &metav1.Duration{Duration: time.Second}
	}
	var fields []string
	for _, p := range s.Validate() {
		fields = append(fields, p.Field)
	}
	if want := []string{"spec.state.dir", "spec.statements[1].sink.kafka.transactionInterval", "spec.statements[2].sink.kafka.transactionInterval"}; !slices.Equal(slices.Sorted(slices.Values(fields)), want) {
		t.Errorf("Validate() at %v; want problems at %v", fields, want)
	}
}

// exactlyOnceSet makes s a statement set over a Kafka source: a statement
// to stdout, and two that write exactly once.
func exactlyOnceSet(s *StreamQuerySpec) {
	s.Sources[0] = kafkaSource(Column{Name: "a", Type: "int"})
	s.Query, s.Sink = "", nil
	s.Statements = []Statement{
		{Name: "all", Query: "SELECT a FROM trades", Sink: Sink{Stdout: &StdoutSink{}}},
		{Name: "even", Query: "SELECT a FROM trades WHERE a % 2 = 0", Sink: Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "even", Delivery: ExactlyOnce}}},
		{Name: "odd", Query: "SELECT a FROM trades WHERE a % 2 = 1", Sink: Sink{Kafka: &KafkaSink{Brokers: []string{"k:9092"}, Topic: "odd", Delivery: ExactlyOnce}}},
	}
}

// kafkaSource is a Kafka source of the given columns.
func kafkaSource(cols ...Column) Source {
	return Source{Name: "trades", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades"}, Schema: cols}
}

func TestDefault(t *testing.T) {
	s := validSpec()
	s.Default()
	if s.Sources[0].Format != FormatJSON || s.Sink.Format != FormatJSON || s.ErrorPolicy.Strategy != FailFast || s.Runtime.Mode != Pipelined {
		t.Errorf("Default() left %+v", s)
	}
}

func TestRunMode(t *testing.T) {
	file := Source{Name: "f", File: &FileSource{Path: "in.jsonl"}}
	counted := Source{Name: "d", Datagen: &DatagenSource{Generator: "trades", Count: 10}}
	endless := Source{Name: "e", Datagen: &DatagenSource{Generator: "trades"}}
	kafka := Source{Name: "k", Kafka: &KafkaSource{Brokers: []string{"b:9092"}, Topic: "t"}}
	table := Source{Name: "t", File: &FileSource{Path: "dim.csv"}, Table: &TableSource{Key: []string{"id"}}}
	for _, tc := range []struct {
		name    string
		sources []Source
		want    RunMode
	}{
		{"a file", []Source{file}, Batch},
		{"a counted datagen", []Source{counted}, Batch},
		{"stdin", []Source{{Name: "s", Stdin: &StdinSource{}}}, Batch},
		{"a datagen without count", []Source{endless}, Continuous},
		{"kafka", []Source{kafka}, Continuous},
		{"a file and kafka", []Source{file, kafka}, Continuous},
		{"kafka joined with a table", []Source{kafka, table}, Continuous},
		{"a file joined with a table", []Source{file, table}, Batch},
		{"no source", nil, Continuous},
	} {
		s := StreamQuerySpec{Sources: tc.sources}
		if got := s.RunMode(); got != tc.want {
			t.Errorf("%s: %s; want %s", tc.name, got, tc.want)
		}
	}
}

// TestLatestSchemaSubject: which sources take their value's columns from
// the registry's latest schema. One that declares only its key's columns
// reads no value, as before, unless its registry names the subject.
func TestLatestSchemaSubject(t *testing.T) {
	source := func(subject string, cols ...Column) *Source {
		return &Source{Name: "t", Kafka: &KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}, Format: FormatAvro,
			Schema: cols, Avro: &AvroFormat{Registry: &SchemaRegistry{URL: "http://r:8081", Subject: subject}}}
	}
	key := Column{Name: "account", Type: "int", Key: true}
	header := Column{Name: "src", Type: "string", Header: "src"}
	value := Column{Name: "amount", Type: "double"}
	for _, tc := range []struct {
		name string
		src  *Source
		want string
	}{
		{"no columns", source(""), "t-value"},
		{"no columns, a subject", source("payments"), "payments"},
		{"key columns", source("", key), ""},
		{"key and header columns, a subject", source("payments", key, header), "payments"},
		{"a value column", source("payments", key, value), ""},
	} {
		if got := tc.src.LatestSchemaSubject(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	withSchema := source("")
	withSchema.Avro.Schema = `{"type":"record","name":"T","fields":[]}`
	if got := withSchema.LatestSchemaSubject(); got != "" {
		t.Errorf("with avro.schema: %q", got)
	}
}
