package v1alpha1

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Problem is one thing wrong with a StreamQuery: the field it is in and, for a
// field that holds text such as the query, the byte offset in that text.
type Problem struct {
	// Field is the JSON path of the field, e.g. spec.sources[0].schema[1].type.
	Field string
	// Offset is a byte offset in the field's string value, or -1.
	Offset int
	// Message says what is wrong.
	Message string
	// File, Line and Column place the problem in the manifest file it was
	// read from (manifest.Document.Locate); empty and 0 when not known.
	File         string
	Line, Column int
}

// String is "file:line:column: field: message" for a problem placed in a
// file, else "field (offset n): message".
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "":
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
		}
		b.WriteString(": ")
		if p.Field != "" {
			b.WriteString(p.Field + ": ")
		}
	case p.Offset >= 0:
		fmt.Fprintf(&b, "%s (offset %d): ", p.Field, p.Offset)
	default:
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// InQuery is the problem's message as a resource shows it: a problem inside
// spec.query, or a statement's query, is placed by line and column of the
// spec's query it is in.
func (p Problem) InQuery(spec *StreamQuerySpec) string {
	if p.Offset < 0 {
		return p.Message
	}
	query, ok := spec.Query, p.Field == "spec.query"
	for i := range spec.Statements {
		if p.Field == fmt.Sprintf("spec.statements[%d].query", i) {
			query, ok = spec.Statements[i].Query, true
		}
	}
	if !ok {
		return p.Message
	}
	line, col := LineColumn(query, p.Offset)
	return fmt.Sprintf("line %d, column %d: %s", line, col, p.Message)
}

// Problems is every problem found in a spec or its manifest; an error when
// not empty.
type Problems []Problem

// Error joins the problems, "; " between them, or a line each when they are
// placed in a file.
func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	sep := "; "
	for i, p := range ps {
		parts[i] = p.String()
		if p.File != "" {
			sep = "\n"
		}
	}
	return strings.Join(parts, sep)
}

// Sorted returns the problems in file order.
func (ps Problems) Sorted() Problems {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return out
}

// LineColumn returns the 1-based line and column of a byte offset in text.
func LineColumn(text string, offset int) (line, column int) {
	offset = min(max(offset, 0), len(text))
	before := text[:offset]
	return strings.Count(before, "\n") + 1, offset - strings.LastIndexByte(before, '\n')
}

// Add records a problem in a field.
func (ps *Problems) Add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Offset: -1, Message: fmt.Sprintf(format, args...)})
}

// Validate checks what the structure of a spec can say, without planning its
// query: exactly one connector per source and sink, unique source names, a
// dead-letter sink where the policy needs one, and values in range.
func (s *StreamQuerySpec) Validate() Problems { return s.validate(false) }

// ValidateStatement is Validate of the spec of a statement of a set
// (StatementSpecs), but for what spec.state asks of the sources, which the
// set's planner checks of the sources the statements that keep state read.
func (s *StreamQuerySpec) ValidateStatement() Problems { return s.validate(true) }

func (s *StreamQuerySpec) validate(statement bool) Problems {
	var ps Problems
	if len(s.Sources) == 0 {
		ps.Add("spec.sources", "at least one source is required")
	}
	if len(s.Sources) > MaxSources {
		ps.Add("spec.sources", "at most %d sources are allowed, found %d", MaxSources, len(s.Sources))
	}
	if len(s.Statements) == 0 {
		validateQuery(&ps, "spec.query", s.Query)
	} else if s.Query != "" {
		ps.Add("spec.query", "set query and sink, or statements, each with its query and sink, not both")
	}
	seen := map[string]int{}
	for i, src := range s.Sources {
		f := fmt.Sprintf("spec.sources[%d]", i)
		switch {
		case src.Name == "":
			ps.Add(f+".name", "a source needs a name: the table name the query reads it by")
		case !validName(src.Name):
			ps.Add(f+".name", "%q is not a valid name: use lower-case letters, digits and _, starting with a letter or _", src.Name)
		}
		if j, dup := seen[src.Name]; dup && src.Name != "" {
			ps.Add(f+".name", "source name %q is already used by spec.sources[%d]", src.Name, j)
		}
		seen[src.Name] = i
		n := countSet(src.Kafka != nil, src.File != nil, src.Stdin != nil, src.Datagen != nil)
		if n != 1 {
			ps.Add(f, "set exactly one of kafka, file, stdin and datagen (found %d)", n)
		}
		switch src.Format {
		case "", FormatJSON, FormatCSV:
		case FormatAvro, FormatProtobuf:
			validateSchemaSource(&ps, f, &src)
		default:
			ps.Add(f+".format", "unknown format %q (want json, csv, avro or protobuf)", src.Format)
		}
		validateFormatFields(&ps, f, src.Format, src.Avro != nil, src.Protobuf != nil)
		if k := src.Kafka; k != nil {
			validateBrokers(&ps, f+".kafka.brokers", k.Brokers)
			if len(k.Topics) > MaxTopics {
				ps.Add(f+".kafka.topics", "at most %d topics are allowed, found %d", MaxTopics, len(k.Topics))
			}
			switch {
			case k.Topic == "" && len(k.Topics) == 0:
				ps.Add(f+".kafka.topic", "a kafka source needs a topic, or topics")
			case k.Topic != "" && len(k.Topics) > 0:
				ps.Add(f+".kafka.topics", "set topic or topics, not both")
			}
			for j, t := range k.Topics {
				if t == "" || slices.Contains(k.Topics[:j], t) {
					ps.Add(fmt.Sprintf("%s.kafka.topics[%d]", f, j), "topic names must be non-empty and distinct")
				}
			}
			ps.checkDuration(f+".kafka.sessionTimeout", k.SessionTimeout, time.Second, MaxSessionTimeout, false)
			if _, err := k.StartTime(); err != nil {
				ps.Add(f+".kafka.startOffset", "%v", err)
			}
			switch k.KeyFormat {
			case "", KeyFormatString, KeyFormatJSON:
			case KeyFormatAvro, KeyFormatProtobuf:
				if _, _, reg := src.FormatSchema(); string(src.Format) != string(k.KeyFormat) || reg == nil {
					ps.Add(f+".kafka.keyFormat", "keyFormat %[1]s reads keys in the schema registry wire format: set format %[1]s with %[1]s.registry, which holds the keys' schemas too", k.KeyFormat)
				}
				if !slices.ContainsFunc(src.Schema, func(c Column) bool { return c.Key }) {
					ps.Add(f+".kafka.keyFormat", "keyFormat %s reads key columns, and the schema declares none (key: true)", k.KeyFormat)
				}
			default:
				ps.Add(f+".kafka.keyFormat", "unknown key format %q (want string, json, avro or protobuf)", k.KeyFormat)
			}
			validateKafkaSecurity(&ps, f+".kafka", &k.KafkaSecurity)
		}
		if n := utf8.RuneCountInString(src.JSONSchema); n > MaxJSONSchema {
			ps.Add(f+".jsonSchema", "is %d characters long, more than the %d allowed", n, MaxJSONSchema)
		}
		if src.File != nil && src.File.Path == "" {
			ps.Add(f+".file.path", "a file source needs a path")
		}
		if d := src.Datagen; d != nil {
			if d.Generator == "" {
				ps.Add(f+".datagen.generator", "name a generator (trades, nexmark-person, nexmark-auction, nexmark-bid or nexmark-side-input)")
			}
			ps.checkRange(f+".datagen.count", d.Count, 0, MaxDatagenCount)
			ps.checkRange(f+".datagen.rate", d.Rate, 0, MaxDatagenRate)
			if d.Partitions != 0 {
				ps.checkRange(f+".datagen.partitions", int64(d.Partitions), 1, MaxDatagenPartitions)
			}
			if d.Keys != 0 {
				ps.checkRange(f+".datagen.keys", int64(d.Keys), 1, MaxDatagenKeys)
			}
			if n := int64(cmp.Or(d.Partitions, 1)) * int64(cmp.Or(d.Keys, DefaultDatagenKeys)); n > MaxDatagenSymbols && d.Partitions <= MaxDatagenPartitions && d.Keys <= MaxDatagenKeys {
				ps.Add(f+".datagen", "partitions × keys is %d, more than %d: each partition keeps a price per symbol", n, MaxDatagenSymbols)
			}
		}
		_, formatSchema, _ := src.FormatSchema()
		// The columns are the fields of the format's schema, or of the
		// registry's latest.
		fromSchema := formatSchema != "" || src.LatestSchemaSubject() != ""
		if c := src.Connector(); c != "" && c != "datagen" && len(src.Schema) == 0 && !fromSchema {
			ps.Add(f+".schema", "a %s source needs a schema", src.Connector())
		}
		if len(src.Schema) > MaxColumns {
			ps.Add(f+".schema", "at most %d columns are allowed, found %d", MaxColumns, len(src.Schema))
		}
		cols := map[string]int{}
		keyCol := -1 // the first key column
		for j, c := range src.Schema {
			cf := fmt.Sprintf("%s.schema[%d]", f, j)
			if c.Name == "" {
				ps.Add(cf+".name", "a column needs a name")
			}
			if k, dup := cols[c.Name]; dup {
				ps.Add(cf+".name", "column %q is already declared at schema[%d]", c.Name, k)
			}
			cols[c.Name] = j
			switch {
			case c.Key && c.Header != "":
				ps.Add(cf, "a column comes from the record key or from a header, not both")
			case src.Kafka == nil && c.Key:
				ps.Add(cf+".key", "only a kafka source has record keys; this source reads every column from its records")
			case src.Kafka == nil && c.Header != "":
				ps.Add(cf+".header", "only a kafka source has record headers; this source reads every column from its records")
			case c.Key && (src.Kafka.KeyFormat == "" || src.Kafka.KeyFormat == KeyFormatString):
				if keyCol >= 0 {
					ps.Add(cf+".key", "with keyFormat string the whole key is one column, already schema[%d]; set kafka.keyFormat: json (or avro, protobuf) to read several fields of a structured key", keyCol)
				}
			}
			if c.Key && keyCol < 0 {
				keyCol = j
			}
		}
		if k := src.Kafka; k != nil {
			for j, name := range k.PartitionedBy {
				if _, ok := cols[name]; !ok && !fromSchema || slices.Contains(k.PartitionedBy[:j], name) {
					ps.Add(fmt.Sprintf("%s.kafka.partitionedBy[%d]", f, j), "%q is not a column of the schema, or is named twice", name)
				}
			}
		}
		if et := src.EventTime; et != nil {
			// Columns from a generator or a format's schema are checked when planned.
			if _, ok := cols[et.Column]; !ok && src.Datagen == nil && !fromSchema {
				ps.Add(f+".eventTime.column", "column %q is not in the schema", et.Column)
			}
			ps.checkDuration(f+".eventTime.maxOutOfOrderness", &et.MaxOutOfOrderness, 0, MaxOutOfOrderness, false)
			ps.checkDuration(f+".eventTime.idleTimeout", et.IdleTimeout, time.Millisecond, MaxIdleTimeout, false)
			switch et.LateRecords {
			case "", LateDrop, LateErrorPolicy:
			default:
				ps.Add(f+".eventTime.lateRecords", "unknown handling %q (want Drop or ErrorPolicy)", et.LateRecords)
			}
			ps.checkDuration(f+".eventTime.allowedLateness", &et.AllowedLateness, 0, MaxAllowedLateness, false)
		}
		if tb := src.Table; tb != nil {
			if len(tb.Key) == 0 {
				ps.Add(f+".table.key", "name the key columns of the table")
			}
			if len(tb.Key) > MaxTableKeys {
				ps.Add(f+".table.key", "at most %d key columns are allowed, found %d", MaxTableKeys, len(tb.Key))
			}
			for k, c := range tb.Key {
				if _, ok := cols[c]; !ok && src.Datagen == nil {
					ps.Add(fmt.Sprintf("%s.table.key[%d]", f, k), "column %q is not in the schema", c)
				}
			}
			if src.Datagen != nil && src.Datagen.Count == 0 {
				ps.Add(f+".table", "a table source must end or be a Kafka topic: a file, stdin, datagen with a count, or kafka")
			}
			if src.Kafka != nil {
				validateKafkaTable(&ps, f, &src)
			}
		}
		if src.MaxRecordBytes != 0 {
			ps.checkRange(f+".maxRecordBytes", int64(src.MaxRecordBytes), 64, MaxRecordBytesMax)
		}
	}
	switch {
	case len(s.Statements) > 0:
		if s.Sink != nil {
			ps.Add("spec.sink", "set query and sink, or statements, each with its query and sink, not both")
		}
		validateStatements(&ps, s)
	case s.Sink == nil:
		ps.Add("spec.sink", "a sink for the query's results is required")
	default:
		validateResultSink(&ps, "spec.sink", s, s.Sink)
	}
	ep := s.ErrorPolicy
	switch ep.Strategy {
	case "", FailFast, Skip:
	case DeadLetter:
		if ep.DeadLetter == nil {
			ps.Add("spec.errorPolicy.deadLetter", "strategy DeadLetter needs a deadLetter sink")
		}
	default:
		ps.Add("spec.errorPolicy.strategy", "unknown strategy %q (want FailFast, DeadLetter or Skip)", ep.Strategy)
	}
	if ep.DeadLetter != nil {
		validateSink(&ps, "spec.errorPolicy.deadLetter", ep.DeadLetter)
		if f := ep.DeadLetter.Format; f != "" && f != FormatJSON {
			ps.Add("spec.errorPolicy.deadLetter.format", "dead-letter entries are always json")
		}
		if k := ep.DeadLetter.Kafka; k != nil && (k.Key != "" || k.KeyFormat != "" && k.KeyFormat != KeyFormatString) {
			ps.Add("spec.errorPolicy.deadLetter.kafka.key", "dead letters are written without a key: remove key and keyFormat")
		}
	}
	if ep.MaxRetries != nil {
		ps.checkRange("spec.errorPolicy.maxRetries", int64(*ep.MaxRetries), 0, MaxRetriesMax)
	}
	ps.checkDuration("spec.errorPolicy.retryBackoff", ep.RetryBackoff, 0, MaxRetryBackoff, true)
	rt := s.Runtime
	switch rt.Mode {
	case "", Pipelined, Direct:
	default:
		ps.Add("spec.runtime.mode", "unknown mode %q (want pipelined or direct)", rt.Mode)
	}
	for _, n := range []struct {
		field string
		v     int32
		max   int64
	}{{"parallelism", rt.Parallelism, MaxParallelism}, {"channelCapacity", rt.ChannelCapacity, MaxChannelCapacity}, {"batchSize", rt.BatchSize, MaxBatchSize}} {
		if n.v != 0 {
			ps.checkRange("spec.runtime."+n.field, int64(n.v), 1, n.max)
		}
	}
	ps.checkDuration("spec.runtime.batchLinger", rt.BatchLinger, 0, MaxBatchLinger, false)
	ps.checkDuration("spec.runtime.shutdownTimeout", rt.ShutdownTimeout, 0, MaxShutdownTimeout, true)
	ps.checkDuration("spec.runtime.emitInterval", rt.EmitInterval, 0, MaxEmitInterval, false)
	h := s.Health
	for _, pc := range []struct {
		field string
		v     int32
	}{{"queueUtilizationPercent", h.QueueUtilizationPercent}, {"processingRatePercent", h.ProcessingRatePercent}, {"memoryPercent", h.MemoryPercent}} {
		if pc.v < 0 || pc.v > 100 {
			ps.Add("spec.health."+pc.field, "must be a percentage from 1 to 100")
		}
	}
	if h.ErrorRatePercent != nil && (*h.ErrorRatePercent < 0 || *h.ErrorRatePercent > 100) {
		ps.Add("spec.health.errorRatePercent", "must be a percentage from 0 to 100")
	}
	for _, d := range []struct {
		field string
		v     *metav1.Duration
	}{{"queueSustained", h.QueueSustained}, {"rateBaseline", h.RateBaseline}, {"errorWindow", h.ErrorWindow}} {
		ps.checkDuration("spec.health."+d.field, d.v, 0, MaxHealthWindow, true)
	}
	ps.checkDuration("spec.health.maxLagTime", h.MaxLagTime, 0, MaxLagTime, true)
	ps.checkDuration("spec.health.stallTimeout", h.StallTimeout, 0, MaxStallTimeout, false)
	if r := h.MaxLagRecords; r != nil && *r < 1 {
		ps.Add("spec.health.maxLagRecords", "must be at least 1, got %d", *r)
	}
	if s.Template != nil {
		validateTemplate(&ps, &s.Template.Spec)
	}
	if b := s.PodDisruptionBudget; b != nil && b.MaxUnavailable != nil {
		if _, err := intstr.GetScaledValueFromIntOrPercent(b.MaxUnavailable, 100, true); err != nil || b.MaxUnavailable.IntValue() < 0 ||
			b.MaxUnavailable.Type == intstr.String && !percent.MatchString(b.MaxUnavailable.StrVal) {
			ps.Add("spec.podDisruptionBudget.maxUnavailable", "want a number of engines or a percentage such as 25%%, got %s", b.MaxUnavailable.String())
		}
	}
	if a := s.Autoscaling; a != nil {
		validateAutoscaling(&ps, s)
	}
	validateTopicsRead(&ps, s.Sources)
	validateMetrics(&ps, s.Metrics)
	validateMetricStatements(&ps, s)
	if st := s.State; st != nil {
		if st.Dir == "" && st.Volume == nil && !slices.ContainsFunc(s.Sources, func(src Source) bool { return src.Kafka != nil }) {
			ps.Add("spec.state.dir", "a directory to keep checkpoints in, or a volume, is required: only a query that reads Kafka can keep them in a topic")
		}
		if st.Volume != nil {
			validateStateVolume(&ps, s)
		}
		if k := s.ExactlyOnceSink(); k != nil {
			if st.Dir != "" && st.Volume == nil {
				ps.Add("spec.state.dir", "an exactly-once query commits its checkpoints in the Kafka transaction of its results and offsets, so they are kept in the topic <group>.checkpoints: remove dir")
			}
			// A set's statements' sinks are told at each (validateStatements).
			if k.TransactionInterval != nil && len(s.Statements) == 0 {
				ps.Add("spec.sink.kafka.transactionInterval", "with spec.state, the transaction commits at each checkpoint: set spec.state.checkpointInterval instead")
			}
		}
		ps.checkDuration("spec.state.checkpointInterval", st.CheckpointInterval, MinCheckpointInterval, MaxCheckpointInterval, false)
		ps.checkDuration("spec.state.ttl", st.TTL, MinStateTTL, MaxStateTTL, false)
		if s.SeveralEngines() && st.Volume == nil && st.Dir != "" {
			ps.Add("spec.state", "state on several engines moves with its partitions through Kafka: remove spec.state.dir")
		}
		if len(s.Statements) == 0 && !statement {
			// Of a set, those of sources its stateful statements read,
			// which its planner knows.
			for i := range s.Sources {
				ps = append(ps, s.StateSourceProblems(i)...)
			}
		}
	}
	switch r := s.Replicas; {
	case r == nil:
	case *r < 0 || *r == 0 && !s.Suspend:
		ps.Add("spec.replicas", "must be at least 1, or 0 with suspend: true")
	case *r > MaxReplicas:
		ps.Add("spec.replicas", "must be at most %d, got %d", MaxReplicas, *r)
	case *r > 1:
		// Only a consumer group divides a source between engines; every
		// engine would read any other source whole and write its results
		// once per engine. A table is loaded whole by each engine anyway.
		for i, src := range s.Sources {
			if c := src.Connector(); c != "" && c != "kafka" && src.Table == nil {
				ps.Add("spec.replicas", "%d engines would each read all of spec.sources[%d] (a %s source) and write every result %d times: only kafka sources are divided between engines; use replicas: 1", *r, i, c, *r)
			}
		}
	}
	return ps
}

// validateResultSink checks a query's sink, at f: its connector, and what
// its Kafka producer is told.
func validateResultSink(ps *Problems, f string, s *StreamQuerySpec, sink *Sink) {
	validateSink(ps, f, sink)
	ep := s.ErrorPolicy
	if k := sink.Kafka; k != nil {
		switch k.Delivery {
		case "", AtLeastOnce:
		case ExactlyOnce:
			const why = "exactlyOnce writes in the transaction of the first kafka source's client, on its cluster"
			src := s.transactionSource()
			if src != nil && !sameCluster(k.Brokers, src.Brokers) {
				ps.Add(f+".kafka.brokers", "%s: use its brokers, %v", why, src.Brokers)
			}
			if k != s.ExactlyOnceSink() {
				break // a set's later statement: the first's problems are the set's
			}
			validateExactlyOnceSources(ps, f+".kafka.delivery", s)
			switch dl := ep.DeadLetter; {
			case dl == nil:
			case dl.Kafka == nil && dl.Null == nil:
				ps.Add(f+".kafka.delivery", "exactlyOnce writes dead letters in the same transaction, so the deadLetter sink must be kafka (or null)")
			case dl.Kafka != nil && src != nil && !sameCluster(dl.Kafka.Brokers, src.Brokers):
				ps.Add("spec.errorPolicy.deadLetter.kafka.brokers", "%s, dead letters too: use its brokers, %v", why, src.Brokers)
			}
		default:
			ps.Add(f+".kafka.delivery", "unknown delivery %q (want atLeastOnce or exactlyOnce)", k.Delivery)
		}
		ps.checkDuration(f+".kafka.transactionInterval", k.TransactionInterval, 10*time.Millisecond, MaxTransactionInterval, false)
		switch k.KeyFormat {
		case "", KeyFormatString:
		case KeyFormatJSON, KeyFormatAvro, KeyFormatProtobuf:
			if k.Key == "" {
				ps.Add(f+".kafka.keyFormat", "keyFormat %s writes the key column: set key to an output column", k.KeyFormat)
			}
			if k.KeyFormat != KeyFormatJSON && (string(sink.Format) != string(k.KeyFormat) || sink.Registry() == nil) {
				ps.Add(f+".kafka.keyFormat", "keyFormat %[1]s writes keys in the schema registry wire format: set format %[1]s with %[1]s.registry, which registers the keys' schema too", k.KeyFormat)
			}
		default:
			ps.Add(f+".kafka.keyFormat", "unknown key format %q (want string, json, avro or protobuf)", k.KeyFormat)
		}
	}
}

// validateQuery checks that a query, at f, is there and not too long.
func validateQuery(ps *Problems, f, query string) {
	if query == "" {
		ps.Add(f, "a query is required")
	}
	if n := utf8.RuneCountInString(query); n > MaxQueryLength {
		ps.Add(f, "is %d characters long, more than the %d allowed", n, MaxQueryLength)
	}
}

// validateStatements checks a statement set: named statements, each with
// a query and a sink, and none of what a set does not support yet.
func validateStatements(ps *Problems, s *StreamQuerySpec) {
	if len(s.Statements) > MaxStatements {
		ps.Add("spec.statements", "at most %d statements are allowed, found %d", MaxStatements, len(s.Statements))
	}
	seen := map[string]int{}
	for i := range s.Statements {
		st := &s.Statements[i]
		f := fmt.Sprintf("spec.statements[%d]", i)
		switch {
		case st.Name == "":
			ps.Add(f+".name", "a statement needs a name, which its status, logs and metrics show")
		case !statementName.MatchString(st.Name):
			ps.Add(f+".name", "%q is not a valid name: use lower-case letters, digits and -, starting with a letter, at most 63", st.Name)
		}
		if j, dup := seen[st.Name]; dup && st.Name != "" {
			ps.Add(f+".name", "statement name %q is already used by spec.statements[%d]", st.Name, j)
		}
		seen[st.Name] = i
		validateQuery(ps, f+".query", st.Query)
		sink := st.Sink
		if k := sink.Kafka; k != nil && k.Delivery == ExactlyOnce {
			validateSharedTransaction(ps, f+".sink.kafka", s, k)
			if s.State != nil && k.TransactionInterval != nil {
				ps.Add(f+".sink.kafka.transactionInterval", "with spec.state, the set's transaction commits at each checkpoint, which every statement with state takes: set spec.state.checkpointInterval instead")
			}
			if s.State != nil && s.SeveralEngines() {
				ps.Add(f+".sink.kafka.delivery", "a statement set that writes exactly once with spec.state runs on one engine yet: remove replicas above 1 and autoscaling, use atLeastOnce, or a StreamQuery of its own for this statement")
			}
			if s.State != nil && s.Runtime.Mode == Direct {
				ps.Add(f+".sink.kafka.delivery", "a statement set that writes exactly once with spec.state runs pipelined: its stateful statements look for each transaction's end as time passes, which direct mode does not; remove spec.runtime.mode: direct")
			}
		}
		validateResultSink(ps, f+".sink", s, &sink)
	}
}

// validateSharedTransaction checks an exactly-once sink of a statement
// set, at f, against the first, whose settings the transactional producer
// they write through takes.
func validateSharedTransaction(ps *Problems, f string, s *StreamQuerySpec, k *KafkaSink) {
	first := s.ExactlyOnceSink()
	if k == first {
		return
	}
	const why = "the exactly-once statements of a set write through one transactional producer, with the first one's settings"
	// Each setting shown, "unset" for none: equal settings show alike.
	for _, c := range []struct{ field, own, first string }{
		{"transactionInterval", shownDuration(k.TransactionInterval), shownDuration(first.TransactionInterval)},
		{"compression", cmp.Or(string(k.Compression), "unset"), cmp.Or(string(first.Compression), "unset")},
		{"linger", shownDuration(k.Linger), shownDuration(first.Linger)},
		{"maxBatchBytes", shownBytes(k.MaxBatchBytes), shownBytes(first.MaxBatchBytes)},
	} {
		if c.own != c.first {
			ps.Add(f+"."+c.field, "%s: set the same %s as the first (%s)", why, c.field, c.first)
		}
	}
}

// shownDuration shows an optional duration, "unset" for none.
func shownDuration(d *metav1.Duration) string {
	if d == nil {
		return "unset"
	}
	return d.Duration.String()
}

// shownBytes shows a byte limit, "unset" for 0.
func shownBytes(n int32) string {
	if n == 0 {
		return "unset"
	}
	return fmt.Sprint(n)
}

// StateSourceProblems are the problems of source i of a query that keeps
// its state in checkpoints (spec.state), which it reads.
func (s *StreamQuerySpec) StateSourceProblems(i int) Problems {
	var ps Problems
	src := &s.Sources[i]
	if src.Kafka != nil && len(src.Kafka.Topics) > 1 {
		ps.Add(fmt.Sprintf("spec.sources[%d].kafka.topics", i), "spec.state does not support a source of several topics yet: make one source per topic")
	}
	if src.Stdin != nil {
		ps.Add(fmt.Sprintf("spec.sources[%d].stdin", i), "standard input cannot be read again from a position, so a checkpoint of it means nothing to the next run: spec.state needs sources that can (kafka, file, datagen)")
	}
	return ps
}

// validateMetricStatements checks that each business metric of a statement
// set names one of its statements, and none of a single query does.
func validateMetricStatements(ps *Problems, s *StreamQuerySpec) {
	for i, m := range s.Metrics {
		f := fmt.Sprintf("spec.metrics[%d].statement", i)
		switch {
		case len(s.Statements) == 0 && m.Statement != "":
			ps.Add(f, "names a statement of spec.statements, which this query has none of: remove it")
		case len(s.Statements) == 0:
		case m.Statement == "":
			ps.Add(f, "name the statement whose rows the metric counts, one of %s", statementNames(s.Statements))
		case !slices.ContainsFunc(s.Statements, func(st Statement) bool { return st.Name == m.Statement }):
			ps.Add(f, "%q is not a statement: want one of %s", m.Statement, statementNames(s.Statements))
		}
	}
}

// statementNames lists the statements' names for a message.
func statementNames(sts []Statement) string {
	names := make([]string, len(sts))
	for i, st := range sts {
		names[i] = st.Name
	}
	return strings.Join(names, ", ")
}

// validateMetrics checks what spec.metrics says without the query's
// output columns, which the planner checks them against.
func validateMetrics(ps *Problems, ms []UserMetric) {
	if len(ms) > MaxMetrics {
		ps.Add("spec.metrics", "at most %d metrics are allowed, found %d", MaxMetrics, len(ms))
	}
	seen := map[string]int{}
	for i, m := range ms {
		f := fmt.Sprintf("spec.metrics[%d]", i)
		switch {
		case !metricName.MatchString(m.Name):
			ps.Add(f+".name", "%q is not a valid metric name: use lower-case letters, digits and _, starting with a letter", m.Name)
		case m.Type == Counter && !strings.HasSuffix(m.Name, "_total"):
			ps.Add(f+".name", "a counter's name ends in _total, as Prometheus names counters: %s_total", m.Name)
		case m.Type != Counter && strings.HasSuffix(m.Name, "_total"):
			ps.Add(f+".name", "only a counter's name ends in _total")
		}
		if j, dup := seen[m.Name]; dup {
			ps.Add(f+".name", "metric %q is already defined by spec.metrics[%d]", m.Name, j)
		}
		seen[m.Name] = i
		switch m.Type {
		case Counter:
		case Gauge, Histogram:
			if m.Value == "" {
				ps.Add(f+".value", "a %s needs a value column", strings.ToLower(string(m.Type)))
			}
		default:
			ps.Add(f+".type", "want Counter, Gauge or Histogram, got %q", m.Type)
		}
		if len(m.Labels) > MaxMetricLabels {
			ps.Add(f+".labels", "at most %d labels are allowed, found %d", MaxMetricLabels, len(m.Labels))
		}
		for j, l := range m.Labels {
			if slices.Index(m.Labels, l) != j {
				ps.Add(fmt.Sprintf("%s.labels[%d]", f, j), "%q is listed twice", l)
			}
		}
		if len(m.Buckets) > 0 && m.Type != Histogram {
			ps.Add(f+".buckets", "only a Histogram has buckets")
		}
		if len(m.Buckets) > MaxMetricBuckets {
			ps.Add(f+".buckets", "at most %d buckets are allowed, found %d", MaxMetricBuckets, len(m.Buckets))
		}
		for j := 1; j < len(m.Buckets); j++ {
			if !(m.Buckets[j] > m.Buckets[j-1]) {
				ps.Add(fmt.Sprintf("%s.buckets[%d]", f, j), "%g is not above the bucket before it, %g: bounds increase", m.Buckets[j], m.Buckets[j-1])
				break
			}
		}
		if m.MaxSeries < 1 || m.MaxSeries > MaxMetricSeries {
			ps.Add(f+".maxSeries", "must be between 1 and %d, got %d", MaxMetricSeries, m.MaxSeries)
		}
	}
	// A histogram h is served as h_bucket, h_sum and h_count.
	for i, m := range ms {
		for _, h := range ms {
			if h.Type == Histogram && (m.Name == h.Name+"_bucket" || m.Name == h.Name+"_sum" || m.Name == h.Name+"_count") {
				ps.Add(fmt.Sprintf("spec.metrics[%d].name", i), "%s is a series of the histogram %s", m.Name, h.Name)
			}
		}
	}
}

var metricName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// statementName is what a statement may be named: a DNS label, as it may name
// things of Kubernetes one day.
var statementName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// validateAutoscaling checks spec.autoscaling, which Default has filled.
func validateAutoscaling(ps *Problems, s *StreamQuerySpec) {
	a := s.Autoscaling
	const f = "spec.autoscaling"
	ps.checkRange(f+".minReplicas", int64(a.MinReplicas), 1, MaxReplicas)
	ps.checkRange(f+".maxReplicas", int64(a.MaxReplicas), 1, MaxReplicas)
	if a.MinReplicas > a.MaxReplicas {
		ps.Add(f+".minReplicas", "must not be above maxReplicas (%d), got %d", a.MaxReplicas, a.MinReplicas)
	}
	ps.checkRange(f+".targetLagSeconds", int64(a.TargetLagSeconds), 1, MaxTargetLagSeconds)
	ps.checkRange(f+".maxStep", int64(a.MaxStep), 1, MaxReplicas)
	if a.Backpressure.Rank() < 0 {
		ps.Add(f+".backpressure", "unknown level %q (want None, Low, Medium or High)", a.Backpressure)
	}
	ps.checkDuration(f+".scaleUpStabilization", a.ScaleUpStabilization, 0, MaxScaleWindow, false)
	ps.checkDuration(f+".scaleDownStabilization", a.ScaleDownStabilization, 0, MaxScaleWindow, false)
	for i, src := range s.Sources {
		if c := src.Connector(); c != "" && c != "kafka" && src.Table == nil {
			ps.Add(f, "spec.sources[%d] is a %s source, which every engine would read whole: only kafka sources are divided between engines, so only their queries autoscale", i, c)
		}
	}
}

// validateTopicsRead refuses two Kafka sources that read one topic in one
// consumer group: the group would divide its partitions between them, and
// each would read part of it.
func validateTopicsRead(ps *Problems, sources []Source) {
	type read struct{ brokers, group, topic string }
	first := map[read]int{}
	for i, src := range sources {
		k := src.Kafka
		if k == nil {
			continue
		}
		for _, topic := range k.TopicNames() {
			r := read{strings.Join(k.Brokers, ","), k.Group, topic}
			if j, dup := first[r]; dup && j != i {
				ps.Add(fmt.Sprintf("spec.sources[%d].kafka", i), "topic %s is read by spec.sources[%d] too, in the same consumer group, which would divide its partitions between them, each reading part: give one its own kafka.group (exactlyOnce, which commits in one group, cannot read a topic twice)", topic, j)
				continue
			}
			first[r] = i
		}
	}
}

// validateStateVolume checks spec.state.volume: a claim of some size, for
// one engine that is not exactly-once, mounted where nothing else is.
func validateStateVolume(ps *Problems, s *StreamQuerySpec) {
	const f = "spec.state.volume"
	v := s.State.Volume
	if v.Size.Sign() <= 0 {
		ps.Add(f+".size", "a claim needs a size above 0, e.g. 1Gi")
	}
	if s.SeveralEngines() {
		ps.Add(f, "a volume is one engine's: on several engines the state moves with its partitions through Kafka; remove volume (and dir)")
	}
	if s.ExactlyOnceSink() != nil {
		ps.Add(f, "an exactly-once query commits its checkpoints in the Kafka transaction of its results and offsets, so they are kept in the topic <group>.checkpoints: remove volume (and dir)")
	}
	if s.Template == nil || s.State.Dir == "" {
		return
	}
	for i, m := range s.Template.Spec.VolumeMounts {
		if path.Clean(m.MountPath) == path.Clean(s.State.Dir) {
			ps.Add(fmt.Sprintf("spec.template.spec.volumeMounts[%d].mountPath", i), "spec.state.volume's claim is mounted at %s, spec.state.dir", s.State.Dir)
		}
	}
}

// validateExactlyOnceSources checks that an exactly-once query's input
// positions can commit in its transactions. Without state they are one
// topic's offsets, polled. With state, the transaction of each checkpoint
// commits the offsets of every Kafka topic read, in one group on one
// cluster, and a file or generator is read again from the checkpoint's
// position.
func validateExactlyOnceSources(ps *Problems, f string, s *StreamQuerySpec) {
	if s.State == nil || len(s.Statements) > 0 {
		// A set's transaction is its source's, with state too.
		if len(s.Sources) != 1 || s.Sources[0].Kafka == nil || len(s.Sources[0].Kafka.Topics) > 1 {
			ps.Add(f, "exactlyOnce without spec.state, or in a statement set, needs exactly one source, a kafka one of one topic: the transaction commits its offsets with the results")
		}
		return
	}
	first := s.transactionSource()
	for i, src := range s.Sources {
		switch k := src.Kafka; {
		case k == nil: // stdin is refused with spec.state
		case src.Table != nil: // read whole by every engine, committing nothing
		case k == first:
		case !slices.Equal(k.Brokers, first.Brokers):
			ps.Add(fmt.Sprintf("spec.sources[%d].kafka.brokers", i), "exactlyOnce commits every source's offsets in one transaction, on one cluster: use the brokers of the first kafka source, %v", first.Brokers)
		case k.Group != first.Group:
			ps.Add(fmt.Sprintf("spec.sources[%d].kafka.group", i), "exactlyOnce commits every source's offsets in one transaction, for one consumer group: use the group of the first kafka source, %q", first.Group)
		}
	}
	if first == nil {
		ps.Add(f, "exactlyOnce needs a kafka source, whose transactions commit the results with the input's offsets")
	}
}

// sameCluster says two lists of bootstrap brokers may be of one cluster:
// they share a broker. (Lists in another order, or a part of the other,
// are; the same brokers under other names cannot be told.)
func sameCluster(a, b []string) bool {
	return slices.ContainsFunc(a, func(broker string) bool { return slices.Contains(b, broker) })
}

// transactionSource is the Kafka source whose client an exactly-once
// query's transactions run on: its first that is not a table.
func (s *StreamQuerySpec) transactionSource() *KafkaSource {
	for _, src := range s.Sources {
		if src.Kafka != nil && src.Table == nil {
			return src.Kafka
		}
	}
	return nil
}

func validateSink(ps *Problems, f string, s *Sink) {
	n := countSet(s.Stdout != nil, s.File != nil, s.Null != nil, s.Kafka != nil)
	if n != 1 {
		ps.Add(f, "set exactly one of stdout, file, null and kafka (found %d)", n)
	}
	if s.File != nil && s.File.Path == "" {
		ps.Add(f+".file.path", "a file sink needs a path")
	}
	switch s.Format {
	case "", FormatJSON, FormatCSV:
	case FormatAvro, FormatProtobuf:
		if s.Kafka == nil && s.Null == nil {
			ps.Add(f+".format", "%s records are written to Kafka topics; a file or stdout takes json or csv lines", s.Format)
		}
		if a := s.Avro; a != nil {
			if a.Schema != "" {
				ps.Add(f+".avro.schema", "is for sources: a sink's schema is derived from the query's output columns (engine validate shows it)")
			}
			validateRegistry(ps, f+".avro.registry", a.Registry)
		}
		if p := s.Protobuf; p != nil {
			if p.Schema != "" || p.Message != "" {
				ps.Add(f+".protobuf", "schema and message are for sources: a sink's schema is derived from the query's output columns (engine validate shows it)")
			}
			validateRegistry(ps, f+".protobuf.registry", p.Registry)
		}
	default:
		ps.Add(f+".format", "unknown format %q (want json, csv, avro or protobuf)", s.Format)
	}
	validateFormatFields(ps, f, s.Format, s.Avro != nil, s.Protobuf != nil)
	if k := s.Kafka; k != nil {
		validateBrokers(ps, f+".kafka.brokers", k.Brokers)
		validateKafkaSecurity(ps, f+".kafka", &k.KafkaSecurity)
		switch k.Compression {
		case "", CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd:
		default:
			ps.Add(f+".kafka.compression", "unknown codec %q (want none, gzip, snappy, lz4 or zstd)", k.Compression)
		}
		ps.checkDuration(f+".kafka.linger", k.Linger, 0, MaxLinger, false)
		if k.MaxBatchBytes != 0 {
			// The client refuses batches beyond what it may write to a broker
			// in one request, 100 MiB.
			ps.checkRange(f+".kafka.maxBatchBytes", int64(k.MaxBatchBytes), 1024, MaxBatchBytesMax)
		}
	}
}

// validateFormatFields checks that the avro and protobuf settings are set
// only for their formats.
func validateFormatFields(ps *Problems, f string, format Format, avro, protobuf bool) {
	if avro && format != FormatAvro {
		ps.Add(f+".avro", "applies to format avro")
	}
	if protobuf && format != FormatProtobuf {
		ps.Add(f+".protobuf", "applies to format protobuf")
	}
}

// validateSchemaSource checks the settings of a source of format avro or
// protobuf.
func validateSchemaSource(ps *Problems, f string, src *Source) {
	if src.Kafka == nil {
		ps.Add(f+".format", "%s is read from Kafka record values; a file or stdin holds json or csv lines", src.Format)
	}
	field, schema, reg := src.FormatSchema()
	if n := utf8.RuneCountInString(schema); n > MaxFormatSchema {
		ps.Add(f+"."+field+".schema", "is %d characters long, more than the %d allowed", n, MaxFormatSchema)
	}
	if schema == "" && reg == nil {
		what := "every record is written with"
		if field == "protobuf" {
			what = "of the messages of every record"
		}
		ps.Add(f+"."+field, "format %s needs %s.schema, the schema %s, or %s.registry, the schema registry that holds each record's", src.Format, field, what, field)
		return
	}
	latest := src.LatestSchemaSubject() != ""
	if p := src.Protobuf; p != nil && p.Message != "" && p.Schema == "" && !latest {
		ps.Add(f+".protobuf.message", "names a message of protobuf.schema, which is not set, or of the registry's latest schema, which is read only when the source declares no columns: each record names its own")
	}
	if reg != nil {
		switch {
		case reg.Subject != "" && !latest:
			ps.Add(f+"."+field+".registry.subject", "names the subject whose latest schema gives a source's columns, read only when the source declares neither columns of the value nor %s.schema: each record's schema is read by the id it carries", field)
		case latest && reg.Subject == "" && len(src.Kafka.Topics) > 1:
			ps.Add(f+"."+field+".registry.subject", "the source reads %d topics: name the subject whose latest schema gives its columns, or declare them", len(src.Kafka.Topics))
		}
	}
	validateRegistry(ps, f+"."+field+".registry", reg)
}

// LatestSchemaSources returns the indexes of the sources whose columns
// are their registries' latest schemas (LatestSchemaSubject), which only
// the engines read, with their credentials, when they start: the operator
// cannot plan the query.
func (s *StreamQuerySpec) LatestSchemaSources() []int {
	var out []int
	for i := range s.Sources {
		if s.Sources[i].LatestSchemaSubject() != "" {
			out = append(out, i)
		}
	}
	return out
}

// LatestSchemaSubject returns the subject whose latest schema gives the
// value's columns of a Kafka source of format avro or protobuf with a
// registry that declares neither value columns nor a schema, or "" for
// other sources. A source that declares columns of its key or headers
// reads no value unless its registry names the subject.
// An engine reads the schema before it plans the query, which it then
// plans as if the schema had been given as the format's, and the value's
// columns declared after those of the key and headers
// (connector.Registry.ResolveSchemas).
func (s *Source) LatestSchemaSubject() string {
	_, schema, reg := s.FormatSchema()
	fromValue := slices.ContainsFunc(s.Schema, func(c Column) bool { return !c.Key && c.Header == "" })
	if reg == nil || schema != "" || fromValue || s.Kafka == nil || len(s.Schema) > 0 && reg.Subject == "" {
		return ""
	}
	if reg.Subject != "" {
		return reg.Subject
	}
	topic := s.Kafka.Topic
	if topic == "" && len(s.Kafka.Topics) > 0 {
		topic = s.Kafka.Topics[0] // the only one: several need a subject
	}
	return reg.SubjectOf(topic)
}

// KafkaPartitionedBy returns a Kafka source's kafka.partitionedBy, or nil
// for other sources.
func (s *Source) KafkaPartitionedBy() []string {
	if s.Kafka == nil {
		return nil
	}
	return s.Kafka.PartitionedBy
}

// SubjectOf returns the subject a sink's schema is registered under for
// topic: subject, or <topic>-value, the topic name strategy.
func (r *SchemaRegistry) SubjectOf(topic string) string {
	if r.Subject != "" {
		return r.Subject
	}
	return topic + "-value"
}

// Registry returns the schema registry of a sink of format avro or
// protobuf, or nil.
func (s *Sink) Registry() *SchemaRegistry {
	switch {
	case s.Format == FormatAvro && s.Avro != nil:
		return s.Avro.Registry
	case s.Format == FormatProtobuf && s.Protobuf != nil:
		return s.Protobuf.Registry
	}
	return nil
}

// FormatSchema returns the settings of a source of format avro or
// protobuf: the name of its settings' field, their schema, and registry.
// All are empty for other formats.
func (s *Source) FormatSchema() (field, schema string, registry *SchemaRegistry) {
	switch {
	case s.Format == FormatAvro && s.Avro != nil:
		return "avro", s.Avro.Schema, s.Avro.Registry
	case s.Format == FormatAvro:
		return "avro", "", nil
	case s.Format == FormatProtobuf && s.Protobuf != nil:
		return "protobuf", s.Protobuf.Schema, s.Protobuf.Registry
	case s.Format == FormatProtobuf:
		return "protobuf", "", nil
	}
	return "", "", nil
}

// validateRegistry checks a schema registry's address and credentials.
func validateRegistry(ps *Problems, f string, r *SchemaRegistry) {
	if r == nil {
		return
	}
	if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.Add(f+".url", "%q is not an http or https URL, such as http://schema-registry:8081", r.URL)
	}
	user, pass := r.UsernameEnv != "" || r.UsernameFile != "", r.PasswordEnv != "" || r.PasswordFile != ""
	if user || pass {
		validateSecretRef(ps, f, "username", r.UsernameEnv, r.UsernameFile)
		validateSecretRef(ps, f, "password", r.PasswordEnv, r.PasswordFile)
	}
}

// validateBrokers checks a Kafka connector's bootstrap brokers.
func validateBrokers(ps *Problems, f string, brokers []string) {
	switch {
	case len(brokers) == 0:
		ps.Add(f, "name at least one broker, host:port")
	case len(brokers) > MaxBrokers:
		ps.Add(f, "at most %d brokers are allowed, found %d", MaxBrokers, len(brokers))
	}
}

// TopicNames returns the topics the source reads: topic, or topics.
func (k *KafkaSource) TopicNames() []string {
	if k.Topic != "" {
		return []string{k.Topic}
	}
	return k.Topics
}

// StartTime returns the time startOffset names, or the zero time when it is
// earliest, latest or unset; an error when it is none of these.
func (k *KafkaSource) StartTime() (time.Time, error) {
	switch k.StartOffset {
	case "", "earliest", "latest":
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, k.StartOffset)
	if err != nil {
		return time.Time{}, fmt.Errorf("want earliest, latest or an RFC 3339 time such as 2026-11-29T00:00:00Z, got %q", k.StartOffset)
	}
	return t, nil
}

// validateKafkaSecurity checks the tls and sasl settings of a Kafka
// connector at f.
func validateKafkaSecurity(ps *Problems, f string, sec *KafkaSecurity) {
	if t := sec.TLS; t != nil {
		if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
			ps.Add(f+".tls.enabled", "set enabled: true to use the other tls settings")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			ps.Add(f+".tls", "certFile and keyFile go together: set both for a client certificate, or neither")
		}
	}
	if s := sec.SASL; s != nil {
		switch s.Mechanism {
		case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		case "":
			ps.Add(f+".sasl.mechanism", "name a mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		default:
			ps.Add(f+".sasl.mechanism", "unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
		}
		validateSecretRef(ps, f+".sasl", "username", s.UsernameEnv, s.UsernameFile)
		validateSecretRef(ps, f+".sasl", "password", s.PasswordEnv, s.PasswordFile)
	}
}

// validateSecretRef checks that a secret, such as the SASL password, is read
// from exactly one of an environment variable and a file.
func validateSecretRef(ps *Problems, f, what, env, file string) {
	switch {
	case env == "" && file == "":
		ps.Add(f, "set %[1]sEnv or %[1]sFile: the %[1]s is read from an environment variable or a file, never written in the manifest", what)
	case env != "" && file != "":
		ps.Add(f, "set only one of %[1]sEnv and %[1]sFile", what)
	case env != "" && !validEnvName(env):
		ps.Add(f+"."+what+"Env", "%q is not an environment variable name: use letters, digits and _, not starting with a digit", env)
	}
}

func validEnvName(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// PartitionColumns are the columns a Kafka source's topic is partitioned
// by: kafka.partitionedBy, else the column that is the whole record key
// (keyFormat string); nil when they are not known, or for another source.
// A JSON key's fields are not known to be its whole bytes, which the
// producer hashes, in one order.
func (s *Source) PartitionColumns() []string {
	if s.Kafka == nil {
		return nil
	}
	if len(s.Kafka.PartitionedBy) > 0 {
		return s.Kafka.PartitionedBy
	}
	if s.Kafka.KeyFormat != "" && s.Kafka.KeyFormat != KeyFormatString {
		return nil
	}
	for _, c := range s.Schema {
		if c.Key {
			return []string{c.Name}
		}
	}
	return nil
}

// Connector returns the spec key of the source's connector ("kafka",
// "file", "stdin" or "datagen"), or "" when none is set.
func (s *Source) Connector() string {
	switch {
	case s.Kafka != nil:
		return "kafka"
	case s.File != nil:
		return "file"
	case s.Stdin != nil:
		return "stdin"
	case s.Datagen != nil:
		return "datagen"
	}
	return ""
}

// Connector returns the spec key of the sink's connector ("stdout",
// "file", "null" or "kafka"), or "" when none is set.
func (s *Sink) Connector() string {
	switch {
	case s.Stdout != nil:
		return "stdout"
	case s.File != nil:
		return "file"
	case s.Null != nil:
		return "null"
	case s.Kafka != nil:
		return "kafka"
	}
	return ""
}

func countSet(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

func validName(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != "" && len(s) <= 63
}

// validateTemplate refuses what a template may not change of what the
// engine needs: its variables, the volume of its manifest and where it is
// mounted, its container's name.
func validateTemplate(ps *Problems, t *EnginePodSpec) {
	const f = "spec.template.spec"
	for i, e := range t.Env {
		if e.Name == "POD_NAME" || e.Name == "POD_NAMESPACE" {
			ps.Add(fmt.Sprintf("%s.env[%d].name", f, i), "%s is set by the operator", e.Name)
		}
	}
	volumes, err := t.DecodeVolumes()
	if err != nil {
		ps.Add(f+".volumes"+indexOf(err), "not a Kubernetes Volume: %v", errors.Unwrap(err))
	}
	for i, v := range volumes {
		switch v.Name {
		case "manifest":
			ps.Add(fmt.Sprintf("%s.volumes[%d].name", f, i), `the volume "manifest" is the operator's: the engine's manifest; name yours otherwise`)
		case StateVolumeName:
			ps.Add(fmt.Sprintf("%s.volumes[%d].name", f, i), `the volume %q is the operator's: spec.state.volume's claim; name yours otherwise`, StateVolumeName)
		}
	}
	names := map[string]bool{"manifest": true, StateVolumeName: true}
	for _, v := range volumes {
		names[v.Name] = true
	}
	for i, m := range t.VolumeMounts {
		if !names[m.Name] {
			ps.Add(fmt.Sprintf("%s.volumeMounts[%d].name", f, i), "no volume %q in spec.template.spec.volumes", m.Name)
		}
		if p := path.Clean(m.MountPath); p == EngineManifestDir || strings.HasPrefix(p, EngineManifestDir+"/") {
			ps.Add(fmt.Sprintf("%s.volumeMounts[%d].mountPath", f, i), "%s is the operator's: the engine reads its manifest there", EngineManifestDir)
		}
	}
	containers, err := t.DecodeContainers()
	if err != nil {
		ps.Add(f+".containers"+indexOf(err), "not a Kubernetes Container: %v", errors.Unwrap(err))
	}
	for i, c := range containers {
		if c.Name == "engine" {
			ps.Add(fmt.Sprintf("%s.containers[%d].name", f, i), `the container "engine" is the operator's; name a sidecar otherwise`)
		}
	}
}

// EngineManifestDir is where the operator mounts an engine's manifest.
const EngineManifestDir = "/etc/sluice"

// StateVolumeName is the engine pod's volume of spec.state.volume's claim.
const StateVolumeName = "sluice-state"

// indexOf is "[i]" for the item of a list that did not decode.
func indexOf(err error) string {
	var d *decodeError
	if errors.As(err, &d) {
		return fmt.Sprintf("[%d]", d.index)
	}
	return ""
}

// percent is a percentage from 0% to 100%.
var percent = regexp.MustCompile(`^(100|[1-9]?[0-9])%$`)

// validateKafkaTable checks what a Kafka table source needs: key columns
// read from the record key, where a tombstone names the row it deletes,
// and none of a group member's settings.
func validateKafkaTable(ps *Problems, f string, src *Source) {
	k := src.Kafka
	for i, name := range src.Table.Key {
		for _, c := range src.Schema {
			if c.Name == name && !c.Key {
				ps.Add(fmt.Sprintf("%s.table.key[%d]", f, i), "a Kafka table's key columns come from the record key, where a tombstone names the row it deletes: declare column %q with key: true", name)
			}
		}
	}
	// sessionTimeout, which the API server defaults, does not apply.
	if k.StartOffset != "" && k.StartOffset != "earliest" {
		ps.Add(f+".kafka.startOffset", "a Kafka table is read from its start (earliest), not %s", k.StartOffset)
	}
	if k.Group != "" {
		ps.Add(f+".kafka.group", "a Kafka table is read whole by every engine, in no consumer group; remove group")
	}
}
