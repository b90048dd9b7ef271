package v1alpha1

import (
	"github.com/sluice-dev/sluice/api/enginestatus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StreamQuerySpec is what a user asks for: sources, one SQL query over them, a sink
// for its results and a policy for records that cannot be processed.
// +kubebuilder:validation:XValidation:rule="has(self.statements) ? !has(self.query) && !has(self.sink) : has(self.query) && has(self.sink)",message="set query and sink, or statements (each with its query and sink)"
// +kubebuilder:validation:XValidation:rule="!has(self.statements) || !has(self.state) || self.statements.all(s, !has(s.sink.kafka) || !has(s.sink.kafka.delivery) || s.sink.kafka.delivery != 'exactlyOnce') || (!has(self.state.dir) && !has(self.state.volume) && (!has(self.replicas) || self.replicas <= 1) && !has(self.autoscaling))",message="a statement set that writes exactly once with spec.state keeps its checkpoints in the Kafka topics <group>.checkpoints.<statement>, in the transactions of its results, on one engine: remove spec.state.dir and spec.state.volume, replicas above 1 and autoscaling"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas >= 1 || (has(self.suspend) && self.suspend)",message="replicas must be at least 1, or 0 with suspend: true"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || self.sources.all(s, has(s.kafka) || has(s.table))",message="replicas above 1 need kafka sources: each engine would read any other source whole and write every result once per engine"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || self.sources.all(s, has(s.kafka) || has(s.table))",message="autoscaling needs kafka sources: only a consumer group divides a source between engines"
// +kubebuilder:validation:XValidation:rule="!has(self.state) || ((!has(self.replicas) || self.replicas <= 1) && !has(self.autoscaling)) || (!has(self.state.dir) && !has(self.state.volume))",message="state on several engines moves with its partitions through Kafka: remove spec.state.dir and spec.state.volume"
// +kubebuilder:validation:XValidation:rule="!has(self.state) || has(self.state.dir) || has(self.state.volume) || self.sources.exists(s, has(s.kafka))",message="spec.state.dir or spec.state.volume is required: only a query that reads Kafka can keep its checkpoints in a topic"
// +kubebuilder:validation:XValidation:rule="!has(self.state) || (!has(self.state.dir) && !has(self.state.volume)) || !has(self.sink) || !has(self.sink.kafka) || !has(self.sink.kafka.delivery) || self.sink.kafka.delivery != 'exactlyOnce'",message="an exactly-once query keeps its checkpoints in the Kafka topic <group>.checkpoints, in the transaction of its results: remove spec.state.dir and spec.state.volume"
type StreamQuerySpec struct {
	// sources are the inputs of the query. Each source's name is the table name the
	// query reads it by.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	Sources []Source `json:"sources"`

	// query is one SQL SELECT statement in the PostgreSQL dialect, at most
	// 262144 characters. Required unless statements are given.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Query string `json:"query,omitempty"`

	// sink receives the query's results. Required with query.
	// +optional
	Sink *Sink `json:"sink,omitempty"`

	// statements, instead of query and sink, are several queries over the
	// sources, each with a sink of its own (a statement set): the sources
	// are read and decoded once, and each statement takes every record. At
	// most 16.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Statements []Statement `json:"statements,omitempty"`

	// errorPolicy decides what happens to a record that cannot be decoded, evaluated
	// or written.
	// +optional
	// +kubebuilder:default={}
	ErrorPolicy ErrorPolicy `json:"errorPolicy,omitempty"`

	// runtime tunes the engine's execution.
	// +optional
	// +kubebuilder:default={}
	Runtime RuntimeSpec `json:"runtime,omitempty"`

	// health tunes the checks behind the engine's health verdict.
	// +optional
	// +kubebuilder:default={}
	Health HealthSpec `json:"health,omitempty"`

	// state makes a windowed query, a moving aggregate or an interval join
	// save its state in checkpoints and restore it when it starts again, so
	// that a restart neither loses state nor reads again the input of open
	// windows.
	// +optional
	State *StateSpec `json:"state,omitempty"`

	// metrics are business metrics computed from the rows the query
	// writes, served on the engine's /metrics as sluice_user_<name>: at
	// most 32.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Metrics []UserMetric `json:"metrics,omitempty"`

	// replicas is the number of engine pods, at most 128. Ignored by
	// `engine run`.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// suspend stops every engine pod while keeping the query's definition.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// image overrides the operator's engine image for this query.
	// +optional
	Image string `json:"image,omitempty"`

	// resources are the engine container's compute resources.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// podDisruptionBudget, when set, has the operator keep a
	// PodDisruptionBudget of the engine pods: a voluntary disruption (a node
	// drain, a cluster upgrade) then takes at most maxUnavailable engines at
	// once, and their partitions move to the others meanwhile.
	// +optional
	PodDisruptionBudget *DisruptionBudget `json:"podDisruptionBudget,omitempty"`

	// autoscaling, when set, has the operator choose the number of engines
	// of a Continuous query from their own lag and backpressure, between
	// minReplicas and maxReplicas; replicas is then ignored. Kafka sources
	// only: a consumer group divides them between engines.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// template customises the engine pods: labels and annotations,
	// placement, the service account, variables and volumes of the engine
	// container, sidecars. What the engine needs to run stays the
	// operator's (docs/manifest.md, "Engine pods").
	// +optional
	Template *EngineTemplate `json:"template,omitempty"`
}

// Statement is one query of a statement set, with the sink of its results.
type Statement struct {
	// name names the statement in the engine's status, logs and dead
	// letters, and business metrics name it to count its rows.
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9-]*$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// query is one SQL SELECT statement in the PostgreSQL dialect, at most
	// 262144 characters.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Query string `json:"query"`

	// sink receives the statement's results.
	Sink Sink `json:"sink"`
}

// Source is one input of a query. Exactly one connector field is set.
// +kubebuilder:validation:XValidation:rule="(has(self.kafka) ? 1 : 0) + (has(self.file) ? 1 : 0) + (has(self.stdin) ? 1 : 0) + (has(self.datagen) ? 1 : 0) == 1",message="set exactly one of kafka, file, stdin and datagen"
// +kubebuilder:validation:XValidation:rule="has(self.kafka) || !has(self.schema) || self.schema.all(c, !(has(c.key) && c.key) && !has(c.header))",message="only a kafka source has record keys and headers to take columns from"
// +kubebuilder:validation:XValidation:rule="!has(self.kafka) || (has(self.kafka.keyFormat) && self.kafka.keyFormat != 'string') || !has(self.schema) || self.schema.filter(c, has(c.key) && c.key).size() <= 1",message="with keyFormat string the whole key is one column; use keyFormat json, avro or protobuf for several key columns"
type Source struct {
	// name is the table name of this source in the query.
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// kafka reads a Kafka topic.
	// +optional
	Kafka *KafkaSource `json:"kafka,omitempty"`
	// file reads a file of JSON lines or CSV.
	// +optional
	File *FileSource `json:"file,omitempty"`
	// stdin reads the engine's standard input.
	// +optional
	Stdin *StdinSource `json:"stdin,omitempty"`
	// datagen generates deterministic records.
	// +optional
	Datagen *DatagenSource `json:"datagen,omitempty"`

	// format is the encoding of each record: json (one object per line), csv
	// (with a header line), avro or protobuf (Kafka record values; see avro
	// and protobuf). Ignored by datagen, which produces typed records.
	// +kubebuilder:validation:Enum=json;csv;avro;protobuf
	// +kubebuilder:default=json
	// +optional
	Format Format `json:"format,omitempty"`

	// avro says how records of format avro are written: with one schema,
	// or with the schemas a schema registry holds. Set one of its schema and
	// registry, or both.
	// +optional
	Avro *AvroFormat `json:"avro,omitempty"`

	// protobuf says how records of format protobuf are written: as
	// messages of one type of a .proto schema, or with the schemas a schema
	// registry holds. Set one of its schema and registry, or both.
	// +optional
	Protobuf *ProtobufFormat `json:"protobuf,omitempty"`
	// jsonSchema, of format json, is a JSON Schema (draft 2020-12 unless
	// its $schema names another) that each record's value must satisfy
	// before it is decoded: one that does not is an error for the error
	// policy, naming the places that break it. It may refer to its own
	// parts only. At most 256 KiB.
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	JSONSchema string `json:"jsonSchema,omitempty"`

	// schema lists the columns of the source, in order. A datagen source may omit
	// it: it then has its generator's schema.
	// +optional
	// +kubebuilder:validation:MaxItems=1024
	// +listType=map
	// +listMapKey=name
	Schema []Column `json:"schema,omitempty"`

	// eventTime names the column that carries each record's event time.
	// +optional
	EventTime *EventTime `json:"eventTime,omitempty"`

	// table reads the source as a table, the latest row per key, which a
	// query joins streams with: FROM stream JOIN table ON the whole key. A
	// file, stdin or datagen with a count is read to its end before streams
	// join; a Kafka topic (compacted, typically) is read by every engine
	// whole, from its start, in no group, up to where it ended when the
	// engine started, before streams join; later rows update it, and a
	// tombstone (a record without a value) deletes its key's row.
	// +optional
	Table *TableSource `json:"table,omitempty"`

	// maxRecordBytes bounds the size of one encoded record. A longer record is an
	// error handled by the error policy. Defaults to 1 MiB, at most 64 MiB.
	// +kubebuilder:validation:Minimum=64
	// +kubebuilder:validation:Maximum=67108864
	// +optional
	// +kubebuilder:default=1048576
	MaxRecordBytes int32 `json:"maxRecordBytes,omitempty"`
}

// Format is the encoding of records in a source or sink.
type Format string

// The record encodings.
const (
	FormatJSON     Format = "json"
	FormatCSV      Format = "csv"
	FormatAvro     Format = "avro"
	FormatProtobuf Format = "protobuf"
)

// AvroFormat is how Avro records are written.
type AvroFormat struct {
	// schema is an Avro record schema in its JSON form. For a source
	// without registry, every record value is plain Avro binary written
	// with it. With a registry it is the reader schema: each record's
	// writer schema is resolved to it by field name, and its defaults fill
	// the fields an older writer lacks. A source that declares no columns
	// has one per field of it. Sources only, at most 1 MiB.
	// +kubebuilder:validation:MaxLength=1048576
	// +optional
	Schema string `json:"schema,omitempty"`
	// registry is a Confluent-compatible schema registry: records are in
	// its wire format, a zero byte and a 4-byte schema id before the Avro
	// data. A source reads each writer schema by its id, once, and without
	// schema and value columns takes its reader schema from the latest version
	// of its subject when the engine starts; a sink registers the results'
	// schema under its subject when it starts.
	// +optional
	Registry *SchemaRegistry `json:"registry,omitempty"`
}

// ProtobufFormat is how Protobuf messages are written.
type ProtobufFormat struct {
	// schema is the text of a .proto file, which may import the standard
	// files (google/protobuf/timestamp.proto, ...). For a source without
	// registry, every record value is a plain message of its type message.
	// With a registry it names the columns: each record's writer schema is
	// read and its fields matched to them by name. A source that declares
	// no columns has one per field of message. Sources only, at most 1 MiB.
	// +kubebuilder:validation:MaxLength=1048576
	// +optional
	Schema string `json:"schema,omitempty"`
	// message is the full name of the message type in schema, or in the
	// registry's latest schema, such as markets.Trade. Defaults to the
	// file's first message.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Message string `json:"message,omitempty"`
	// registry is a Confluent-compatible schema registry: records are in
	// its wire format, a zero byte, a 4-byte schema id and the message's
	// indexes in that schema before the message. A source without schema
	// and value columns takes its columns from message (or the first message) of
	// the latest version of its subject when the engine starts.
	// +optional
	Registry *SchemaRegistry `json:"registry,omitempty"`
}

// SchemaRegistry is a Confluent-compatible schema registry, with optional
// basic authentication whose username and password are read, when the
// engine starts, from environment variables or files.
// +kubebuilder:validation:XValidation:rule="!(has(self.usernameEnv) && has(self.usernameFile)) && !(has(self.passwordEnv) && has(self.passwordFile))",message="set at most one of usernameEnv and usernameFile, and of passwordEnv and passwordFile"
// +kubebuilder:validation:XValidation:rule="(has(self.usernameEnv) || has(self.usernameFile)) == (has(self.passwordEnv) || has(self.passwordFile))",message="basic authentication needs both a username and a password"
type SchemaRegistry struct {
	// url is the registry's base URL, such as http://schema-registry:8081.
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`
	// subject, of a sink, is the subject it registers its schema under;
	// of a source that declares neither value columns nor a schema, the
	// subject whose latest schema, read when the engine starts, gives the
	// value's columns and is its reader schema. Defaults to <topic>-value,
	// the topic name strategy; a source of several topics names it, and so
	// does one that declares columns of its key or headers, which reads
	// no value without it.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Subject string `json:"subject,omitempty"`
	// usernameEnv names the environment variable that holds the basic
	// authentication username.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +optional
	UsernameEnv string `json:"usernameEnv,omitempty"`
	// usernameFile is the path of a file that holds the username. A
	// trailing line break is ignored.
	// +kubebuilder:validation:MinLength=1
	// +optional
	UsernameFile string `json:"usernameFile,omitempty"`
	// passwordEnv names the environment variable that holds the password.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +optional
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// passwordFile is the path of a file that holds the password. A
	// trailing line break is ignored.
	// +kubebuilder:validation:MinLength=1
	// +optional
	PasswordFile string `json:"passwordFile,omitempty"`
	// caFile is a PEM file of the certificates that verify an https
	// registry, instead of the system's.
	// +kubebuilder:validation:MinLength=1
	// +optional
	CAFile string `json:"caFile,omitempty"`
}

// KafkaSource reads a Kafka topic, or several as one stream.
// +kubebuilder:validation:XValidation:rule="!has(self.sessionTimeout) || (duration(self.sessionTimeout) >= duration('1s') && duration(self.sessionTimeout) <= duration('30m'))",message="sessionTimeout must be a duration between 1s and 30m"
// +kubebuilder:validation:XValidation:rule="has(self.topic) != has(self.topics)",message="set exactly one of topic and topics"
type KafkaSource struct {
	// brokers are the bootstrap brokers, host:port; at most 64.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Brokers []string `json:"brokers"`
	// topic is the topic to read.
	// +optional
	Topic string `json:"topic,omitempty"`
	// topics are several topics read as one stream, instead of topic: their
	// records all have the source's schema, and every partition of each is
	// one ordered lane. At most 16.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	Topics []string `json:"topics,omitempty"`
	// group is the consumer group; defaults to one derived from the query's
	// namespace and name.
	// +optional
	Group string `json:"group,omitempty"`
	// startOffset is where a consumer group without a committed offset
	// starts: earliest, latest, or an RFC 3339 time such as
	// 2026-11-29T00:00:00Z, for each partition's first record at or after
	// that time (its end when there is none).
	// +kubebuilder:validation:Pattern=`^(earliest|latest|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$`
	// +kubebuilder:default=earliest
	// +optional
	StartOffset string `json:"startOffset,omitempty"`
	// sessionTimeout is how long the group waits for a silent member (a
	// killed engine) before giving its partitions to others. Defaults to 45s;
	// 1s to 30m.
	// +optional
	// +kubebuilder:default="45s"
	SessionTimeout *metav1.Duration `json:"sessionTimeout,omitempty"`
	// keyFormat is how the schema's key columns are read from the record
	// key: string, the whole key as the one key column's text; json, an
	// object whose fields fill the key columns of the same names; avro or
	// protobuf, a key in the schema registry wire format of the source's
	// format and registry, a record or message whose fields fill the key
	// columns of the same names (an Avro key of one primitive type fills
	// the one key column).
	// +kubebuilder:validation:Enum=string;json;avro;protobuf
	// +kubebuilder:default=string
	// +optional
	KeyFormat KeyFormat `json:"keyFormat,omitempty"`
	// partitionedBy declares the schema columns the topic's producer
	// partitions by: records with equal values of them are in one
	// partition. Without it, a topic whose schema has key columns is taken
	// to be partitioned by them (the producer's default partitioner hashes
	// the record key). A stateful query on several engines needs its keys
	// to include these columns, so that each engine holds whole keys. At
	// most 16.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	PartitionedBy []string `json:"partitionedBy,omitempty"`

	// KafkaSecurity holds the tls and sasl settings.
	KafkaSecurity `json:",inline"`
}

// KeyFormat is the encoding of a Kafka record key.
type KeyFormat string

// The key encodings.
const (
	// KeyFormatString reads the whole key as the text of one column.
	KeyFormatString KeyFormat = "string"
	// KeyFormatJSON reads the key as a JSON object, one field per key column.
	KeyFormatJSON KeyFormat = "json"
	// KeyFormatAvro and KeyFormatProtobuf read the key in the schema
	// registry wire format, one field per key column.
	KeyFormatAvro     KeyFormat = "avro"
	KeyFormatProtobuf KeyFormat = "protobuf"
)

// KafkaSecurity is how a Kafka client protects its connections and
// authenticates. Secrets are never written in the manifest: they are read,
// when the engine starts, from environment variables or files, which
// Kubernetes fills from Secrets.
type KafkaSecurity struct {
	// tls encrypts the connections to the brokers.
	// +optional
	TLS *KafkaTLS `json:"tls,omitempty"`
	// sasl authenticates the client to the brokers.
	// +optional
	SASL *KafkaSASL `json:"sasl,omitempty"`
}

// KafkaTLS configures TLS to the brokers. Without caFile, the system's root
// certificates verify the brokers.
// +kubebuilder:validation:XValidation:rule="(has(self.enabled) && self.enabled) || !(has(self.caFile) || has(self.certFile) || has(self.keyFile) || has(self.serverName) || (has(self.insecureSkipVerify) && self.insecureSkipVerify))",message="set enabled: true to use the other tls settings"
// +kubebuilder:validation:XValidation:rule="has(self.certFile) == has(self.keyFile)",message="certFile and keyFile go together: set both for a client certificate, or neither"
type KafkaTLS struct {
	// enabled dials the brokers with TLS.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// caFile is a PEM file of the certificates that verify the brokers,
	// instead of the system's.
	// +kubebuilder:validation:MinLength=1
	// +optional
	CAFile string `json:"caFile,omitempty"`
	// certFile is a PEM file of the client certificate, for brokers that
	// authenticate clients by certificate (mutual TLS). Needs keyFile.
	// +kubebuilder:validation:MinLength=1
	// +optional
	CertFile string `json:"certFile,omitempty"`
	// keyFile is a PEM file of the client certificate's private key.
	// +kubebuilder:validation:MinLength=1
	// +optional
	KeyFile string `json:"keyFile,omitempty"`
	// insecureSkipVerify accepts any broker certificate. For tests only: it
	// leaves the connection open to interception.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// serverName is the name the brokers' certificates must carry. Defaults
	// to the host of each broker's address.
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// SASLMechanism is a SASL authentication mechanism.
// +kubebuilder:validation:Enum=PLAIN;SCRAM-SHA-256;SCRAM-SHA-512
type SASLMechanism string

// The SASL mechanisms.
const (
	SASLPlain       SASLMechanism = "PLAIN"
	SASLScramSHA256 SASLMechanism = "SCRAM-SHA-256"
	SASLScramSHA512 SASLMechanism = "SCRAM-SHA-512"
)

// KafkaSASL authenticates to the brokers with a username and password, each
// read from exactly one of an environment variable or a file.
// +kubebuilder:validation:XValidation:rule="has(self.usernameEnv) != has(self.usernameFile)",message="set exactly one of usernameEnv and usernameFile"
// +kubebuilder:validation:XValidation:rule="has(self.passwordEnv) != has(self.passwordFile)",message="set exactly one of passwordEnv and passwordFile"
type KafkaSASL struct {
	// mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. PLAIN sends the
	// password as it is: use it only with tls.
	Mechanism SASLMechanism `json:"mechanism"`
	// usernameEnv names the environment variable that holds the username.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +optional
	UsernameEnv string `json:"usernameEnv,omitempty"`
	// usernameFile is the path of a file that holds the username, such as a
	// mounted Secret key. A trailing line break is ignored.
	// +kubebuilder:validation:MinLength=1
	// +optional
	UsernameFile string `json:"usernameFile,omitempty"`
	// passwordEnv names the environment variable that holds the password.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +optional
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// passwordFile is the path of a file that holds the password, such as a
	// mounted Secret key. A trailing line break is ignored.
	// +kubebuilder:validation:MinLength=1
	// +optional
	PasswordFile string `json:"passwordFile,omitempty"`
}

// FileSource reads records from a file.
type FileSource struct {
	// path is the file's path, relative to the engine's working directory.
	// +kubebuilder:validation:MinLength=1
	Path string `json:"path"`
}

// StdinSource reads records from the engine's standard input until it closes.
type StdinSource struct{}

// DatagenSource generates deterministic records: the same seed yields the same
// records in the same order.
type DatagenSource struct {
	// generator names what is generated. trades: trade_id, symbol, price,
	// quantity, ts. nexmark-person, nexmark-auction and nexmark-bid: the
	// Nexmark benchmark's events of that type, as its Beam and Flink
	// generators make them (docs/nexmark.md); each partition makes every
	// partitions-th event of the type, and seed and keys do not apply.
	// nexmark-side-input: key and value, the rows (i, 'i') of Nexmark
	// q13's side input, to read as a table.
	// +kubebuilder:validation:Enum=trades;nexmark-person;nexmark-auction;nexmark-bid;nexmark-side-input
	Generator string `json:"generator"`
	// count is the number of records per partition; unset or 0 generates
	// forever. At most 10^12.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000000000
	// +optional
	Count int64 `json:"count,omitempty"`
	// rate limits generation to this many records per second per partition; 0 is
	// as fast as the pipeline takes them. At most 10^9.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000000
	// +optional
	Rate int64 `json:"rate,omitempty"`
	// seed makes the data reproducible; partitions derive their own seed from it.
	// +optional
	Seed int64 `json:"seed,omitempty"`
	// partitions is the number of independent partitions, each read by its own
	// reader. Defaults to 1, at most 1024.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	// +optional
	// +kubebuilder:default=1
	Partitions int32 `json:"partitions,omitempty"`
	// keys is the number of distinct symbols. Defaults to 10, at most 10^6;
	// partitions × keys is at most 10^6 too.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	// +kubebuilder:default=10
	Keys int32 `json:"keys,omitempty"`
}

// Column is one typed column of a source's schema. It is read from the
// record's value unless key or header says otherwise (Kafka sources only).
// +kubebuilder:validation:XValidation:rule="!(has(self.key) && self.key && has(self.header))",message="a column comes from the record key or from a header, not both"
type Column struct {
	// name is the column's name; JSON records carry it as the key, CSV records
	// in the header.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// type is one of string, bool, int, double, decimal(p,s), timestamp.
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`
	// key reads the column from the Kafka record key instead of its value, as
	// the source's keyFormat says. A record without a key gives NULL.
	// +optional
	Key bool `json:"key,omitempty"`
	// header reads the column from the first Kafka record header of this
	// name, its bytes as text. A record without the header gives NULL.
	// +kubebuilder:validation:MinLength=1
	// +optional
	Header string `json:"header,omitempty"`
}

// TableSource says how a source is read as a table.
type TableSource struct {
	// key are the columns that identify a row: a later row with the same
	// key replaces it. At most 64.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Key []string `json:"key"`
}

// EventTime says which column holds a record's event time.
// +kubebuilder:validation:XValidation:rule="!has(self.maxOutOfOrderness) || (duration(self.maxOutOfOrderness) >= duration('0s') && duration(self.maxOutOfOrderness) <= duration('168h'))",message="maxOutOfOrderness must be a duration between 0s and 168h, e.g. 5s"
// +kubebuilder:validation:XValidation:rule="!has(self.idleTimeout) || (duration(self.idleTimeout) >= duration('1ms') && duration(self.idleTimeout) <= duration('24h'))",message="idleTimeout must be a duration between 1ms and 24h"
// +kubebuilder:validation:XValidation:rule="!has(self.allowedLateness) || (duration(self.allowedLateness) >= duration('0s') && duration(self.allowedLateness) <= duration('168h'))",message="allowedLateness must be a duration between 0s and 168h"
type EventTime struct {
	// column is a timestamp column of the source.
	Column string `json:"column"`
	// maxOutOfOrderness is how late a record may arrive behind the newest one seen
	// before it counts as late. At most 168h.
	// +optional
	MaxOutOfOrderness metav1.Duration `json:"maxOutOfOrderness,omitempty"`
	// idleTimeout is how long a partition may send nothing before the
	// watermark stops waiting for it. Defaults to 30s, at most 24h.
	// +optional
	// +kubebuilder:default="30s"
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
	// lateRecords is what happens to a record that arrives behind the
	// watermark: Drop counts it (records.late), ErrorPolicy hands it to the
	// error policy as an error of stage late (a dead letter, a skip or a
	// stop).
	// +kubebuilder:validation:Enum=Drop;ErrorPolicy
	// +kubebuilder:default=Drop
	// +optional
	LateRecords LateRecords `json:"lateRecords,omitempty"`
	// allowedLateness keeps a window's state this long past its end: a late
	// record within it updates the window, which is written again with the
	// update. Windowed aggregations only. Defaults to 0, at most 168h.
	// +optional
	AllowedLateness metav1.Duration `json:"allowedLateness,omitempty"`
}

// LateRecords is the handling of records behind the watermark.
type LateRecords string

// The handlings of late records.
const (
	// LateDrop drops and counts late records.
	LateDrop LateRecords = "Drop"
	// LateErrorPolicy hands late records to the error policy.
	LateErrorPolicy LateRecords = "ErrorPolicy"
)

// Sink is where results, or dead-letter entries, are written. Exactly one connector
// field is set.
// +kubebuilder:validation:XValidation:rule="(has(self.stdout) ? 1 : 0) + (has(self.file) ? 1 : 0) + (has(self.__null__) ? 1 : 0) + (has(self.kafka) ? 1 : 0) == 1",message="set exactly one of stdout, file, null and kafka"
type Sink struct {
	// stdout writes to the engine's standard output.
	// +optional
	Stdout *StdoutSink `json:"stdout,omitempty"`
	// file writes to a file, truncating it first.
	// +optional
	File *FileSink `json:"file,omitempty"`
	// null discards results after counting them; for benchmarks.
	// +optional
	Null *NullSink `json:"null,omitempty"`
	// kafka writes to a Kafka topic.
	// +optional
	Kafka *KafkaSink `json:"kafka,omitempty"`

	// format is the encoding of each result: json, csv (with a header
	// line), avro or protobuf (a Kafka sink's record values; see avro and
	// protobuf). Dead-letter entries are always json.
	// +kubebuilder:validation:Enum=json;csv;avro;protobuf
	// +kubebuilder:default=json
	// +optional
	Format Format `json:"format,omitempty"`

	// avro, for format avro, names the schema registry the results' schema
	// is registered with. Without it, each record is plain Avro binary of
	// the schema `engine validate` shows. The schema is always derived from
	// the query's output columns; avro.schema is not for sinks.
	// +optional
	Avro *AvroFormat `json:"avro,omitempty"`

	// protobuf, for format protobuf, names the schema registry the
	// results' schema is registered with. Without it, each record is a
	// plain message of the schema `engine validate` shows. The schema is
	// always derived from the query's output columns.
	// +optional
	Protobuf *ProtobufFormat `json:"protobuf,omitempty"`
}

// StdoutSink writes results to standard output.
type StdoutSink struct{}

// NullSink discards results.
type NullSink struct{}

// FileSink writes results to a file.
type FileSink struct {
	// path is the file's path; the file is created or truncated.
	// +kubebuilder:validation:MinLength=1
	Path string `json:"path"`
}

// KafkaSink writes results to a Kafka topic, with an idempotent producer and
// acks from all in-sync replicas.
// +kubebuilder:validation:XValidation:rule="!has(self.transactionInterval) || (duration(self.transactionInterval) >= duration('10ms') && duration(self.transactionInterval) <= duration('30s'))",message="transactionInterval must be a duration between 10ms and 30s"
// +kubebuilder:validation:XValidation:rule="!has(self.linger) || (duration(self.linger) >= duration('0s') && duration(self.linger) <= duration('1m'))",message="linger must be a duration between 0 and 1m"
type KafkaSink struct {
	// brokers are the bootstrap brokers, host:port; at most 64.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Brokers []string `json:"brokers"`
	// topic is the topic to write.
	Topic string `json:"topic"`
	// key is the output column that makes each record's key. Records with
	// the same key go to the same partition, in order. Unset: no key.
	// +optional
	Key string `json:"key,omitempty"`
	// keyFormat is how the key column is written: string, its text; json,
	// an object with the column as its one field; avro or protobuf, in
	// the schema registry wire format of the sink's format and registry, a
	// record or message with the column as its one field, whose schema
	// the engine registers under the subject <topic>-key. A source's key
	// columns read all four back.
	// +kubebuilder:validation:Enum=string;json;avro;protobuf
	// +kubebuilder:default=string
	// +optional
	KeyFormat KeyFormat `json:"keyFormat,omitempty"`
	// delivery is the guarantee for results written here. atLeastOnce (the
	// default) may write a record again after a crash; exactlyOnce writes
	// results, dead letters and the source's offsets in one Kafka
	// transaction, so that readers with isolation read_committed see every
	// result exactly once. exactlyOnce needs a Kafka source.
	// +kubebuilder:validation:Enum=atLeastOnce;exactlyOnce
	// +kubebuilder:default=atLeastOnce
	// +optional
	Delivery Delivery `json:"delivery,omitempty"`
	// transactionInterval is how often, with delivery exactlyOnce, the
	// transaction commits and a new one begins: results become visible to
	// read_committed readers at this pace. Defaults to 1s; 10ms to 30s, within
	// the producer's 40s transaction timeout. With spec.state the
	// transactions commit at the checkpoints instead, and it must be unset:
	// so the engine defaults it, not the API server.
	// +optional
	TransactionInterval *metav1.Duration `json:"transactionInterval,omitempty"`
	// compression is the codec of the record batches produced: none, gzip,
	// snappy, lz4 or zstd. Defaults to snappy, the codec that costs the
	// least CPU in the Go client.
	// +kubebuilder:validation:Enum=none;gzip;snappy;lz4;zstd
	// +optional
	// +kubebuilder:default=snappy
	Compression Compression `json:"compression,omitempty"`
	// linger is how long the producer waits for more records to fill a
	// partition's batch before it sends it. Defaults to 0: records are sent
	// as soon as a request can go, and while one is in flight the next ones
	// gather, so batches grow with the load. A linger trades latency for
	// fewer, larger requests; it also holds up the batches in flight, so it
	// can lower throughput.
	// +optional
	Linger *metav1.Duration `json:"linger,omitempty"`
	// maxBatchBytes bounds a record batch for one partition, before
	// compression. It must not exceed the topic's max.message.bytes.
	// Defaults to 1000012, Kafka's default for that setting.
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=104857600
	// +optional
	// +kubebuilder:default=1000012
	MaxBatchBytes int32 `json:"maxBatchBytes,omitempty"`

	// KafkaSecurity holds the tls and sasl settings.
	KafkaSecurity `json:",inline"`
}

// Compression is a Kafka producer's record batch codec.
type Compression string

// The compression codecs.
const (
	CompressionNone   Compression = "none"
	CompressionGzip   Compression = "gzip"
	CompressionSnappy Compression = "snappy"
	CompressionLZ4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
)

// Delivery is a Kafka sink's delivery guarantee.
type Delivery string

// The delivery guarantees.
const (
	// AtLeastOnce commits a source offset once every result derived from it
	// was acknowledged; a crash can write some results twice.
	AtLeastOnce Delivery = "atLeastOnce"
	// ExactlyOnce writes results and source offsets in one transaction.
	ExactlyOnce Delivery = "exactlyOnce"
)

// ErrorStrategy is what the pipeline does with a record that failed.
// +kubebuilder:validation:Enum=FailFast;DeadLetter;Skip
type ErrorStrategy string

// The error strategies.
const (
	// FailFast stops the pipeline at the first failed record and exits non-zero.
	FailFast ErrorStrategy = "FailFast"
	// DeadLetter writes the failed record to the dead-letter sink and goes on.
	DeadLetter ErrorStrategy = "DeadLetter"
	// Skip logs and counts the failed record and goes on.
	Skip ErrorStrategy = "Skip"
)

// ErrorPolicy decides the fate of records that fail.
// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || self.strategy != 'DeadLetter' || has(self.deadLetter)",message="strategy DeadLetter needs a deadLetter sink"
// +kubebuilder:validation:XValidation:rule="!has(self.retryBackoff) || (duration(self.retryBackoff) > duration('0s') && duration(self.retryBackoff) <= duration('1m'))",message="retryBackoff must be a positive duration of at most 1m, e.g. 100ms"
type ErrorPolicy struct {
	// strategy is FailFast, DeadLetter or Skip. Defaults to FailFast.
	// +kubebuilder:default=FailFast
	// +optional
	Strategy ErrorStrategy `json:"strategy,omitempty"`
	// maxRetries is how many times a failed sink write is retried, with
	// exponential backoff, before the strategy applies. Defaults to 3, at
	// most 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	// +kubebuilder:default=3
	MaxRetries *int32 `json:"maxRetries,omitempty"`
	// retryBackoff is the wait before the first retry; it doubles on each
	// following one, up to 30s. Defaults to 100ms, at most 1m.
	// +optional
	// +kubebuilder:default="100ms"
	RetryBackoff *metav1.Duration `json:"retryBackoff,omitempty"`
	// deadLetter is where DeadLetter writes failed records, as JSON entries.
	// +optional
	DeadLetter *Sink `json:"deadLetter,omitempty"`
}

// ExecutionMode selects how the engine runs the query's operators.
// +kubebuilder:validation:Enum=pipelined;direct
type ExecutionMode string

// The execution modes.
const (
	// Pipelined runs sources, partition workers and sinks as goroutines joined by
	// bounded channels. The default.
	Pipelined ExecutionMode = "pipelined"
	// Direct runs the same operators in one goroutine, deterministically; for
	// debugging.
	Direct ExecutionMode = "direct"
)

// RuntimeSpec tunes the engine.
// +kubebuilder:validation:XValidation:rule="!has(self.batchLinger) || (duration(self.batchLinger) >= duration('0s') && duration(self.batchLinger) <= duration('1m'))",message="batchLinger must be a duration between 0s and 1m, e.g. 5ms"
// +kubebuilder:validation:XValidation:rule="!has(self.shutdownTimeout) || (duration(self.shutdownTimeout) > duration('0s') && duration(self.shutdownTimeout) <= duration('1h'))",message="shutdownTimeout must be a positive duration of at most 1h, e.g. 30s"
// +kubebuilder:validation:XValidation:rule="!has(self.emitInterval) || (duration(self.emitInterval) >= duration('0s') && duration(self.emitInterval) <= duration('1h'))",message="emitInterval must be a duration between 0s and 1h, e.g. 1s"
type RuntimeSpec struct {
	// mode is pipelined (the default) or direct.
	// +optional
	// +kubebuilder:default=pipelined
	Mode ExecutionMode `json:"mode,omitempty"`
	// parallelism is the number of partition workers. Defaults to the number of
	// source partitions, at most the number of CPUs. At most 256.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	// +optional
	Parallelism int32 `json:"parallelism,omitempty"`
	// channelCapacity is the number of batches each channel between stages holds.
	// Defaults to 16, at most 4096.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	// +optional
	// +kubebuilder:default=16
	ChannelCapacity int32 `json:"channelCapacity,omitempty"`
	// batchSize is the most records one batch carries. Defaults to 512, at
	// most 65536.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	// +optional
	// +kubebuilder:default=512
	BatchSize int32 `json:"batchSize,omitempty"`
	// batchLinger is how long a source waits to fill a batch before sending it
	// partly full. Defaults to 5ms, at most 1m.
	// +optional
	// +kubebuilder:default="5ms"
	BatchLinger *metav1.Duration `json:"batchLinger,omitempty"`
	// shutdownTimeout bounds the drain after a stop signal. Defaults to 30s,
	// at most 1h.
	// +optional
	// +kubebuilder:default="30s"
	ShutdownTimeout *metav1.Duration `json:"shutdownTimeout,omitempty"`
	// emitInterval, for a GROUP BY without a window (a continuous
	// aggregation), writes each changed group's row at most once per
	// interval, its latest, instead of after every batch that changed it:
	// fewer rows for the same final table. Held rows are written before
	// each checkpoint and at the end of the input. Unset or 0: after every
	// batch. At most 1h.
	// +optional
	EmitInterval *metav1.Duration `json:"emitInterval,omitempty"`
	// profiling serves Go's /debug/pprof on 127.0.0.1:6060 (ProfilingAddr),
	// where only a process in the pod, or kubectl port-forward, reaches it;
	// never on the status port. Off by default: profiles show the query's
	// data in memory.
	// +optional
	Profiling bool `json:"profiling,omitempty"`
}

// ProfilingAddr is where an engine whose spec sets runtime.profiling serves
// /debug/pprof, unless engine run's --pprof says otherwise.
const ProfilingAddr = "127.0.0.1:6060"

// HealthSpec sets the thresholds of the engine's health checks. A check that
// crosses its threshold turns the verdict Degraded.
// +kubebuilder:validation:XValidation:rule="!has(self.queueSustained) || (duration(self.queueSustained) > duration('0s') && duration(self.queueSustained) <= duration('1h'))",message="queueSustained must be a positive duration of at most 1h"
// +kubebuilder:validation:XValidation:rule="!has(self.rateBaseline) || (duration(self.rateBaseline) > duration('0s') && duration(self.rateBaseline) <= duration('1h'))",message="rateBaseline must be a positive duration of at most 1h"
// +kubebuilder:validation:XValidation:rule="!has(self.errorWindow) || (duration(self.errorWindow) > duration('0s') && duration(self.errorWindow) <= duration('1h'))",message="errorWindow must be a positive duration of at most 1h"
// +kubebuilder:validation:XValidation:rule="!has(self.stallTimeout) || (duration(self.stallTimeout) >= duration('0s') && duration(self.stallTimeout) <= duration('24h'))",message="stallTimeout must be a duration between 0s (never) and 24h"
// +kubebuilder:validation:XValidation:rule="!has(self.maxLagTime) || (duration(self.maxLagTime) > duration('0s') && duration(self.maxLagTime) <= duration('24h'))",message="maxLagTime must be a positive duration of at most 24h"
type HealthSpec struct {
	// queueUtilizationPercent: a channel fuller than this, for all of
	// queueSustained, is congested. Defaults to 80.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	// +kubebuilder:default=80
	QueueUtilizationPercent int32 `json:"queueUtilizationPercent,omitempty"`
	// queueSustained is how long a channel must stay above the threshold.
	// Defaults to 30s, at most 1h.
	// +optional
	// +kubebuilder:default="30s"
	QueueSustained *metav1.Duration `json:"queueSustained,omitempty"`
	// processingRatePercent: processing slower than this share of its own
	// baseline, while input is waiting, is degraded. Defaults to 50.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	// +kubebuilder:default=50
	ProcessingRatePercent int32 `json:"processingRatePercent,omitempty"`
	// rateBaseline is the window the processing-rate baseline is taken over.
	// Defaults to 5m, at most 1h.
	// +optional
	// +kubebuilder:default="5m"
	RateBaseline *metav1.Duration `json:"rateBaseline,omitempty"`
	// errorRatePercent: more failed records than this share, over errorWindow,
	// is degraded. Defaults to 5.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	// +kubebuilder:default=5
	ErrorRatePercent *int32 `json:"errorRatePercent,omitempty"`
	// errorWindow is the window of the error rate. Defaults to 1m, at most 1h.
	// +optional
	// +kubebuilder:default="1m"
	ErrorWindow *metav1.Duration `json:"errorWindow,omitempty"`
	// memoryPercent: a heap larger than this share of the Go memory limit
	// (GOMEMLIMIT) is degraded. Defaults to 90.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	// +kubebuilder:default=90
	MemoryPercent int32 `json:"memoryPercent,omitempty"`
	// stallTimeout: an engine with work pending (input waiting in its
	// channels, or records in flight) that completes no record
	// for this long, while its sources and sink are reachable, is stalled:
	// its health is Unhealthy and /healthz fails, so that Kubernetes
	// restarts it. An outage of a broker is not a stall (a restart would not
	// end it). 0s: never. Defaults to 5m, at most 24h.
	// +optional
	// +kubebuilder:default="5m"
	StallTimeout *metav1.Duration `json:"stallTimeout,omitempty"`
	// maxLagRecords: the query is Lagging (a condition of its status) while
	// its engines' consumer lag, summed, is above this many records. Unset:
	// no bound in records.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxLagRecords *int64 `json:"maxLagRecords,omitempty"`
	// maxLagTime: the query is Lagging while catching up with its lag would
	// take longer than this at the engines' current input rate, or while
	// they have lag and read nothing. Unset: no bound in time. At most 24h.
	// +optional
	MaxLagTime *metav1.Duration `json:"maxLagTime,omitempty"`
}

// StreamQueryStatus is what the operator observed of a running query.
type StreamQueryStatus struct {
	// mode is Continuous, for a query that reads without end (a Kafka
	// source), run by a Deployment; or Batch, for one whose every source
	// ends (files, stdin, a datagen with a count), run once by a Job.
	// +optional
	Mode RunMode `json:"mode,omitempty"`
	// phase summarises the query: Pending, Running, Degraded, Failed or
	// Suspended; a Batch query ends Succeeded or Failed.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions are Ready, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// replicas is the number of engine pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// readyReplicas is the number of engine pods that are ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// ready is readyReplicas/replicas, for display.
	// +optional
	Ready string `json:"ready,omitempty"`
	// selector is the label selector of the engine pods, for the scale
	// subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// health is Healthy, Degraded, Unhealthy or Unknown.
	// +optional
	Health Health `json:"health,omitempty"`
	// backpressure is the worst backpressure over the engine pods.
	// +optional
	Backpressure *Backpressure `json:"backpressure,omitempty"`
	// throughput is the sum of the engine pods' rates.
	// +optional
	Throughput *Throughput `json:"throughput,omitempty"`
	// statements, of a statement set, are each statement's rates, summed
	// over the engine pods, and its last error.
	// +optional
	// +listType=map
	// +listMapKey=name
	Statements []StatementStatus `json:"statements,omitempty"`
	// lag is how far behind its input the query is, for engines that know
	// (Kafka sources, stateful queries).
	// +optional
	Lag *Lag `json:"lag,omitempty"`

	// state says how a stateful query's state is divided between its
	// engines: each holds whole keys of the partitions it reads, or the
	// rows are repartitioned by the state's key through a Kafka topic
	// (named), or one engine holds it all.
	// +optional
	State string `json:"state,omitempty"`

	// checkpoint is how recent the saved state is, for a query with
	// spec.state whose engines have completed a checkpoint.
	// +optional
	Checkpoint *CheckpointStatus `json:"checkpoint,omitempty"`
	// restarts counts the engine containers' restarts over the life of the
	// query, those of pods since replaced included.
	// +optional
	Restarts int32 `json:"restarts"`
	// lastRestartTime is when an engine container last restarted.
	// +optional
	LastRestartTime *metav1.Time `json:"lastRestartTime,omitempty"`
	// podRestarts are the restart counts last seen of the current engine
	// pods' containers, by pod name, from which restarts grows.
	// +optional
	PodRestarts map[string]int32 `json:"podRestarts,omitempty"`
	// lastError is the most recent error an engine reported.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// autoscaling is what the autoscaler decided, with spec.autoscaling.
	// +optional
	Autoscaling *AutoscalingStatus `json:"autoscaling,omitempty"`
	// completion is the outcome of a Batch query's run of its current
	// spec, once the run has ended.
	// +optional
	Completion *Completion `json:"completion,omitempty"`
}

// StatementStatus is how one statement of a statement set is doing.
type StatementStatus struct {
	// name is the statement's.
	Name string `json:"name"`
	// outputRecordsPerSecond is the rate the statement writes its
	// results.
	// +optional
	OutputRecordsPerSecond string `json:"outputRecordsPerSecond,omitempty"`
	// errorRecordsPerSecond is the rate records fail in the statement.
	// +optional
	ErrorRecordsPerSecond string `json:"errorRecordsPerSecond,omitempty"`
	// lastError is the most recent error an engine reported of the
	// statement.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// AutoscalingStatus is what the autoscaler decided and why.
type AutoscalingStatus struct {
	// desiredReplicas is the number of engines the autoscaler runs.
	DesiredReplicas int32 `json:"desiredReplicas"`
	// partitions is the number of source partitions the engines read: the
	// most engines that get work. 0 while unknown.
	// +optional
	Partitions int32 `json:"partitions,omitempty"`
	// limit says what holds the engines below what the lag asks for: the
	// partitions, or maxReplicas.
	// +optional
	Limit string `json:"limit,omitempty"`
	// lastScaleTime is when the autoscaler last changed the engines.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// lastScaleReason says why.
	// +optional
	LastScaleReason string `json:"lastScaleReason,omitempty"`
}

// RunMode says how a query runs: without end, or once.
// +kubebuilder:validation:Enum=Continuous;Batch
type RunMode string

// The run modes.
const (
	Continuous RunMode = "Continuous"
	Batch      RunMode = "Batch"
)

// Completion is how a Batch query's run ended.
type Completion struct {
	// startTime is when the run's Job started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when it ended.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// records are the run's final counts, as the engine wrote them when it
	// exited; absent when it could not (killed).
	// +optional
	Records *RecordCounts `json:"records,omitempty"`
	// summary is the engine's last line.
	// +optional
	Summary string `json:"summary,omitempty"`
	// templateHash is the pod template the run had: a run of the same spec
	// is not made again, even if its Job is deleted.
	TemplateHash string `json:"templateHash"`
}

// RecordCounts are a run's final record counts: in = out + filtered +
// deadLettered + skipped + failed + aggregated + late; results are the rows
// aggregations and joins wrote.
type RecordCounts struct {
	In           int64 `json:"in"`
	Out          int64 `json:"out"`
	Filtered     int64 `json:"filtered"`
	DeadLettered int64 `json:"deadLettered"`
	Skipped      int64 `json:"skipped"`
	Failed       int64 `json:"failed"`
	Aggregated   int64 `json:"aggregated"`
	Late         int64 `json:"late"`
	Results      int64 `json:"results"`
}

// Phase summarises a query's state.
type Phase string

// The phases.
const (
	PhasePending   Phase = "Pending"
	PhaseRunning   Phase = "Running"
	PhaseDegraded  Phase = "Degraded"
	PhaseFailed    Phase = "Failed"
	PhaseSuspended Phase = "Suspended"
	// PhaseSucceeded is a Batch query whose run ended without error.
	PhaseSucceeded Phase = "Succeeded"
)

// Health is the verdict of an engine's health checks.
type Health string

// The health verdicts.
const (
	Healthy       Health = "Healthy"
	Degraded      Health = "Degraded"
	Unhealthy     Health = "Unhealthy"
	HealthUnknown Health = "Unknown"
)

// Backpressure says how full the engine's channels are.
type Backpressure struct {
	// level is None, Low, Medium or High.
	Level enginestatus.Level `json:"level"`
	// maxQueueUtilization is the fullest channel's depth over its capacity, 0 to 1.
	// +optional
	MaxQueueUtilization string `json:"maxQueueUtilization,omitempty"`
	// since is when the level last changed.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// Lag is how far behind its input a query is.
type Lag struct {
	// records is the consumer lag summed over the engines: records of
	// their partitions not handled yet.
	// +optional
	Records *int64 `json:"records,omitempty"`
	// seconds estimates how long the engines take to catch up: records over
	// their summed input rate, rounded up. Absent while they read nothing.
	// +optional
	Seconds *int64 `json:"seconds,omitempty"`
	// watermarkDelaySeconds is how far the oldest engine watermark is
	// behind the wall clock, for a stateful query: the age of the newest
	// results it can have written.
	// +optional
	WatermarkDelaySeconds *int64 `json:"watermarkDelaySeconds,omitempty"`
}

// CheckpointStatus is how recent the query's saved state is (spec.state).
type CheckpointStatus struct {
	// lastTime is when the oldest of the engines' newest checkpoints was
	// taken: every engine's state is saved at least as of then.
	// +optional
	LastTime *metav1.Time `json:"lastTime,omitempty"`
	// ageSeconds is how long ago lastTime was, at the last poll: a restart
	// now would read again about that much input.
	// +optional
	AgeSeconds *int64 `json:"ageSeconds,omitempty"`
}

// Throughput holds record rates, as decimal strings.
type Throughput struct {
	// inputRecordsPerSecond is the rate records are read.
	// +optional
	InputRecordsPerSecond string `json:"inputRecordsPerSecond,omitempty"`
	// outputRecordsPerSecond is the rate results are written.
	// +optional
	OutputRecordsPerSecond string `json:"outputRecordsPerSecond,omitempty"`
}

// StreamQuery is a streaming SQL query that runs continuously.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=sq,categories=sluice
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health`
// +kubebuilder:printcolumn:name="Backpressure",type=string,JSONPath=`.status.backpressure.level`
// +kubebuilder:printcolumn:name="Restarts",type=integer,JSONPath=`.status.restarts`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`,priority=1
// +kubebuilder:printcolumn:name="Input/s",type=string,JSONPath=`.status.throughput.inputRecordsPerSecond`,priority=1
// +kubebuilder:printcolumn:name="Lag",type=integer,JSONPath=`.status.lag.records`,priority=1
// +kubebuilder:printcolumn:name="Lag Seconds",type=integer,JSONPath=`.status.lag.seconds`,priority=1
// +kubebuilder:printcolumn:name="Watermark Delay",type=integer,JSONPath=`.status.lag.watermarkDelaySeconds`,priority=1
// +kubebuilder:printcolumn:name="Last Error",type=string,JSONPath=`.status.lastError`,priority=1
type StreamQuery struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   StreamQuerySpec   `json:"spec"`
	Status StreamQueryStatus `json:"status,omitempty"`
}

// StreamQueryList is a list of StreamQuery.
//
// +kubebuilder:object:root=true
type StreamQueryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StreamQuery `json:"items"`
}

// StateVolume is the PersistentVolumeClaim of a query's checkpoints.
type StateVolume struct {
	// size is the storage the claim requests, e.g. 1Gi. A larger size later
	// expands the claim, where its storage class allows it; a smaller one
	// is refused by Kubernetes and left as it is.
	Size resource.Quantity `json:"size"`

	// storageClassName is the claim's storage class; the cluster's default
	// class when unset. Fixed once the claim exists.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// StateSpec is where and how often a stateful query checkpoints its state.
// +kubebuilder:validation:XValidation:rule="!has(self.checkpointInterval) || (duration(self.checkpointInterval) >= duration('100ms') && duration(self.checkpointInterval) <= duration('1h'))",message="checkpointInterval must be between 100ms and 1h, e.g. 10s"
// +kubebuilder:validation:XValidation:rule="!has(self.ttl) || (duration(self.ttl) >= duration('1s') && duration(self.ttl) <= duration('8784h'))",message="ttl must be between 1s and 8784h (366 days), e.g. 24h"
type StateSpec struct {
	// dir is the directory the checkpoints are kept in: a local path for
	// `engine run`; on Kubernetes, where volume's claim is mounted (by
	// default /var/lib/sluice/state), or the mount path of a volume the
	// engine pod has through spec.template, since the container's file
	// system is read-only and a pod's own storage goes with it. Without
	// dir or volume, a query
	// that reads Kafka keeps its checkpoints in the compacted topic
	// `<group>.checkpoints` on its first Kafka source's brokers, which the
	// engine creates; an exactly-once query must (its checkpoints commit in
	// the transaction of its results and offsets).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Dir string `json:"dir,omitempty"`

	// checkpointInterval is how often a checkpoint is taken: 100ms to 1h,
	// 10s by default. After a crash, the records since the last one are
	// read again. With exactly-once delivery it is also the transaction
	// interval: results become visible to read_committed consumers at each
	// checkpoint.
	// +optional
	CheckpointInterval *metav1.Duration `json:"checkpointInterval,omitempty"`

	// volume, on Kubernetes, keeps the checkpoints in a PersistentVolumeClaim
	// the operator creates for the query (`<name>-state`, owned by it, so
	// deleted with it), mounted at dir. The engines are then replaced, on a
	// spec change, by stopping the old one before the new one starts: the
	// claim is ReadWriteOnce, and one directory has one writer. One engine
	// only, and not with exactlyOnce.
	// +optional
	Volume *StateVolume `json:"volume,omitempty"`

	// ttl, for a GROUP BY without a window (a continuous aggregation),
	// drops a group that no row has changed for this long, in processing
	// time: readers of the changelog keep its last row, and a later row of
	// its key starts it again from nothing. 1s to 8784h (366 days). Unset,
	// every group is kept, and the state grows with the distinct keys.
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// reset starts the query from empty state when the saved state was
	// built by a query whose stateful part differs (other windows, keys or
	// aggregates), instead of refusing to start.
	// +optional
	Reset bool `json:"reset,omitempty"`
}
