package compile

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestStateProblems: spec.state and exactly-once delivery are refused, with
// what to do, where the query cannot honour them, and accepted where it can.
// checkPlan checks that spec plans when want is empty, and otherwise fails
// with a problem that says want.
func checkPlan(t *testing.T, name string, spec *v1alpha1.StreamQuerySpec, want string) {
	t.Helper()
	_, _, err := Plan(spec)
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v", name, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v; want %q", name, err, want)
	}
}

func TestStateProblems(t *testing.T) {
	windowed := "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"
	tests := []struct {
		name, query string
		exactly     bool
		state       *v1alpha1.StateSpec
		want        string // "": accepted
	}{
		{"windows, at least once, no state", windowed, false, nil, ""},
		{"windows, exactly once, no state", windowed, true, nil, "exactlyOnce for a stateful query commits its state with its results and offsets: add spec.state"},
		{"windows, exactly once, state", windowed, true, &v1alpha1.StateSpec{}, ""},
		{"stateless, exactly once, no state", "SELECT symbol FROM trades", true, nil, ""},
		{"stateless, state", "SELECT symbol FROM trades", false, &v1alpha1.StateSpec{}, "the query keeps no state to checkpoint"},
	}
	for _, tt := range tests {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades"},
				Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}}},
			Query: tt.query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: tt.state,
		}
		if tt.exactly {
			spec.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce
		}
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestContinuousProblems: a GROUP BY without a window over Kafka needs
// spec.state, and its Kafka sink a key that names the group; over a file,
// or with both, it plans.
func TestContinuousProblems(t *testing.T) {
	bySymbol := "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol"
	// Each symbol's latest row, and its three latest.
	latest := "SELECT symbol, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) t WHERE r <= 1"
	top3 := "SELECT symbol || '/' || CAST(r AS string) AS k, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) t WHERE r < 4"
	tests := []struct {
		name, query string
		file        bool // the source is a file, not Kafka
		state       bool
		key         string // the sink's
		want        string // "": accepted
	}{
		{"over Kafka, no state", bySymbol, false, false, "symbol", "a GROUP BY without a window keeps its groups for as long as the query runs: over Kafka, add spec.state"},
		{"over a file, no state", bySymbol, true, false, "symbol", ""},
		{"no sink key", bySymbol, false, true, "", "set key to the output column that names the group (GROUP BY symbol)"},
		{"keyed by an aggregate", bySymbol, false, true, "n", `"n" does not name the group`},
		{"keyed by one of two keys", "SELECT symbol, ts, count(*) AS n FROM trades GROUP BY symbol, ts", false, true, "symbol", `"symbol" does not name the group: the key of a GROUP BY without a window is computed from the group's keys alone, all of them (GROUP BY symbol, ts; with several, an expression of them all, such as symbol || '/' || ts AS k)`},
		{"keyed by both keys", "SELECT symbol || '/' || CAST(ts AS string) AS k, count(*) AS n FROM trades GROUP BY symbol, ts", false, true, "k", ""},
		{"keyed by a computed aggregate", "SELECT symbol, count(*) + 0 AS n FROM trades GROUP BY symbol", false, true, "n", `does not name the group`},
		{"keyed by the group", bySymbol, false, true, "symbol", ""},
		{"one group", "SELECT 'all' AS k, count(*) AS n FROM trades", false, true, "k", ""},
		{"allowed lateness", bySymbol, false, true, "symbol", "applies to queries over TUMBLE or HOP windows only"},
		{"ttl", bySymbol, false, true, "symbol", ""},
		{"ttl too short", bySymbol, false, true, "symbol", "spec.state.ttl"},
		{"distinct, no state", "SELECT DISTINCT symbol FROM trades", false, false, "", "SELECT DISTINCT keeps the rows it has written for as long as the query runs (or spec.state.ttl): over Kafka, add spec.state"},
		{"distinct, no sink key", "SELECT DISTINCT symbol FROM trades", false, true, "", ""},
		{"distinct with ttl", "SELECT DISTINCT symbol, ts FROM trades", false, true, "", ""},
		{"emit interval", bySymbol, false, true, "symbol", ""},
		{"emit interval of windows", "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol", false, true, "symbol", "spec.runtime.emitInterval: applies to a GROUP BY without a window"},
		{"emit interval of distinct", "SELECT DISTINCT symbol FROM trades", false, true, "", "spec.runtime.emitInterval: applies to a GROUP BY without a window"},
		{"emit interval too long", bySymbol, false, true, "symbol", "spec.runtime.emitInterval"},
		{"ttl of windows", "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol", false, true, "symbol", "spec.state.ttl: applies to a GROUP BY without a window"},
		{"top-N, no state", latest, false, false, "symbol", "a top-N without a window keeps each partition's top rows for as long as the query runs (or spec.state.ttl): over Kafka, add spec.state"},
		{"top-N, no sink key", latest, false, true, "", "set key to the output column that names the partition and rank (PARTITION BY symbol)"},
		{"top-N keyed by its partition", latest, false, true, "symbol", ""},
		{"top-N keyed by another column", latest, false, true, "ts", `"ts" does not name the partition and rank`},
		{"top 3 keyed by its partition", top3, false, true, "symbol", `"symbol" does not name the partition and rank: the key of a top-N without a window is computed from its PARTITION BY columns alone, all of them, and its rank if it keeps more than one row (symbol, and r)`},
		{"top 3 keyed by partition and rank", top3, false, true, "k", ""},
		{"top-N ttl", latest, false, true, "symbol", ""},
		{"top 3 ttl", top3, false, true, "k", "spec.state.ttl: applies to a top-N without a window of one row per partition"},
		{"top-N emit interval", latest, false, true, "symbol", ""},
		{"top-N of RANK", "SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY symbol ORDER BY ts DESC) AS r FROM trades) t WHERE r <= 1", false, true, "symbol", "it ranks with ROW_NUMBER, whose ranks are each one row's"},
	}
	for _, tt := range tests {
		src := v1alpha1.Source{Name: "trades", Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}}
		if tt.file {
			src.File = &v1alpha1.FileSource{Path: "trades.json"}
		} else {
			src.Kafka = &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades"}
		}
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{src},
			Query:   tt.query,
			Sink:    &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Key: tt.key}},
		}
		if tt.state {
			spec.State = &v1alpha1.StateSpec{}
		}
		switch tt.name {
		case "allowed lateness":
			spec.Sources[0].EventTime = &v1alpha1.EventTime{Column: "ts", AllowedLateness: metav1.Duration{Duration: time.Minute}}
		case "ttl", "ttl of windows", "distinct with ttl", "top-N ttl", "top 3 ttl":
			spec.State.TTL = &metav1.Duration{Duration: time.Hour}
		case "emit interval", "emit interval of windows", "emit interval of distinct", "top-N emit interval":
			spec.Runtime.EmitInterval = &metav1.Duration{Duration: time.Second}
		case "emit interval too long":
			spec.Runtime.EmitInterval = &metav1.Duration{Duration: 2 * time.Hour}
		case "ttl too short":
			spec.State.TTL = &metav1.Duration{Duration: time.Millisecond}
		}
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestKeysFollowPartitions: a stateful query on several engines runs as it
// is when its state's keys include what its topic is partitioned by (its
// key columns, or kafka.partitionedBy); a windowed or moving aggregate by
// other keys is repartitioned through Kafka, as is an interval join, even
// of topics partitioned by its keys (the group assigns their partitions
// apart); an aggregate of all rows, or a join of a source that is not one
// topic, does not run; a table join and a stateless query always do.
func TestKeysFollowPartitions(t *testing.T) {
	// The venues of each window, or each symbol's, of the most rows.
	topN := func(partition string) string {
		return "SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY " + partition + " ORDER BY n DESC) AS r FROM (" +
			"SELECT window_start, window_end, symbol, venue, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol, venue) c) t WHERE r <= 2"
	}
	// Each window's, or each symbol's, trades of the highest price.
	topRows := func(partition string) string {
		return "SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY " + partition + " ORDER BY price DESC) AS r FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)) t WHERE r <= 2"
	}
	bySymbol := "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"
	tests := []struct {
		name, query string
		key         string   // the schema's key column, if any
		by          []string // kafka.partitionedBy
		want        string   // "": accepted
		repartition bool     // accepted, repartitioned
	}{
		{"stateless", "SELECT symbol FROM trades", "", nil, "", false},
		{"by the record key", bySymbol, "symbol", nil, "", false},
		{"by partitionedBy", bySymbol, "", []string{"symbol"}, "", false},
		{"by a key among several", "SELECT window_start, symbol, venue, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol, venue", "", []string{"symbol"}, "", false},
		{"moving, by the record key", "SELECT symbol, avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '1' MINUTE PRECEDING AND CURRENT ROW) AS a FROM trades", "symbol", nil, "", false},
		{"unknown partitioning", bySymbol, "", nil, "", true},
		{"by the record key itself", "SELECT window_start, _key, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, _key", "", nil, "", false},
		{"by the partition", "SELECT window_start, _partition, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, _partition", "", nil, "", false},
		{"keyed by another column", bySymbol, "id", nil, "", true},
		{"moving, keyed by another column", "SELECT symbol, avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '1' MINUTE PRECEDING AND CURRENT ROW) AS a FROM trades", "id", nil, "", true},
		{"partitioned by more than the key", bySymbol, "", []string{"symbol", "venue"}, "", true},
		{"all rows", "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end", "symbol", nil, "one group of all rows", false},
		{"top-N per symbol, by the record key", topN("window_start, symbol"), "symbol", nil, "", false},
		{"top-N per symbol, keyed by another column", topN("window_start, symbol"), "id", nil, "", true},
		{"top-N of all groups", topN("window_start, window_end"), "symbol", nil, "this top-N ranks all groups or rows of a window together", false},
		{"top-N of rows per symbol, by the record key", topRows("window_start, symbol"), "symbol", nil, "", false},
		{"top-N of rows per symbol, keyed by another column", topRows("window_start, symbol"), "id", nil, "", true},
		{"top-N of all rows", topRows("window_end"), "symbol", nil, "this top-N ranks all groups or rows of a window together", false},
		{"interval join", "SELECT t.symbol FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND", "symbol", nil, "", true},
		{"table join", "SELECT t.symbol, s.name FROM trades t JOIN names s ON t.symbol = s.symbol", "id", nil, "", false},
	}
	for _, tt := range tests {
		cols := []v1alpha1.Column{{Name: "id", Type: "text"}, {Name: "symbol", Type: "text"}, {Name: "venue", Type: "text"}, {Name: "price", Type: "double"}, {Name: "ts", Type: "timestamp"}}
		for i := range cols {
			cols[i].Key = cols[i].Name == tt.key
		}
		kafka := func(topic string) *v1alpha1.KafkaSource {
			return &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: topic, PartitionedBy: tt.by}
		}
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{
				{Name: "trades", Kafka: kafka("trades"), Schema: cols},
				{Name: "quotes", Kafka: kafka("quotes"), Schema: cols},
				{Name: "names", File: &v1alpha1.FileSource{Path: "names.csv"}, Format: v1alpha1.FormatCSV, Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "name", Type: "text"}}, Table: &v1alpha1.TableSource{Key: []string{"symbol"}}},
			},
			Query:    tt.query,
			Sink:     &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			Replicas: new(int32(3)),
		}
		if tt.repartition {
			// Repartitioned, a partition's state moves with its
			// checkpoints, which it needs.
			spec.Default()
			checkPlan(t, tt.name+", no state", spec, "each partition's state must move between engines with its checkpoints: add spec.state")
			spec.State = &v1alpha1.StateSpec{}
		}
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
		if prog, _, err := Plan(spec); err == nil {
			p, _ := StatePartitioning(spec, prog, "")
			want := "repartitioned by symbol through the topic <group>.repartition.0"
			if strings.HasPrefix(tt.name, "interval join") {
				want = "the rows of both sources are repartitioned by the keys through the topic <group>.repartition.0"
			}
			if p.Repartition != tt.repartition || tt.repartition && !strings.Contains(p.Describe, want) {
				t.Errorf("%s: partitioning %+v; want repartition %v", tt.name, p, tt.repartition)
			}
		}
		// Exactly-once on several engines holds for windows, moving
		// aggregates and interval joins, repartitioned or not.
		if prog, _, err := Plan(spec); err == nil && prog.Stateful() && !prog.TableJoin() {
			eos := spec.DeepCopy()
			eos.Sink.Kafka.Delivery, eos.State = v1alpha1.ExactlyOnce, &v1alpha1.StateSpec{}
			eos.Sink.Kafka.TransactionInterval = nil // the checkpoints pace the transactions
			eos.Default()
			checkPlan(t, tt.name+", exactly once", eos, "")
			if tt.repartition && prog.Join() {
				// The upstream transaction commits both topics' offsets,
				// for one group.
				eos.Sources[1].Kafka.Group = "other"
				checkPlan(t, tt.name+", exactly once, two groups", eos, "exactlyOnce commits every source's offsets in one transaction, for one consumer group")
			}
		}
		// On one engine every one of them runs.
		spec.Replicas = new(int32(1))
		checkPlan(t, tt.name+", one engine", spec, "")
	}
	// A JSON key's fields are not known to be how its producer hashes it.
	cols := []v1alpha1.Column{{Name: "symbol", Type: "text", Key: true}, {Name: "ts", Type: "timestamp"}}
	spec := &v1alpha1.StreamQuerySpec{
		Sources:  []v1alpha1.Source{{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades", KeyFormat: v1alpha1.KeyFormatJSON}, Schema: cols}},
		Query:    bySymbol,
		Sink:     &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
		Replicas: new(int32(2)),
		State:    &v1alpha1.StateSpec{},
	}
	spec.Default()
	checkPlan(t, "a JSON key", spec, "")
	// Two topics of one source are not repartitioned.
	spec.Sources[0].Kafka.Topics = []string{"trades.eu", "trades.us"}
	spec.Sources[0].Kafka.Topic, spec.State = "", nil
	checkPlan(t, "two topics", spec, "it reads several topics, which are not repartitioned")
	// A join of a source of two topics neither.
	spec.Sources = append(spec.Sources, v1alpha1.Source{Name: "quotes", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "quotes"}, Schema: cols})
	spec.Query = "SELECT t.symbol FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND"
	spec.Default()
	checkPlan(t, "a join of two topics", spec, "which needs each source to be one Kafka topic: source trades is not")
}

// TestTopNLateness: a window top-N ranks a window once, so late records
// cannot update it.
func TestTopNLateness(t *testing.T) {
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{Name: "trades", File: &v1alpha1.FileSource{Path: "trades.csv"}, Format: v1alpha1.FormatCSV,
			Schema:    []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}},
			EventTime: &v1alpha1.EventTime{Column: "ts", AllowedLateness: metav1.Duration{Duration: time.Minute}}}},
		Query: "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM (" +
			"SELECT window_start AS ws, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol) c) t WHERE r <= 2",
		Sink: &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}},
	}
	spec.Default()
	checkPlan(t, "allowed lateness", spec, "spec.sources[0].eventTime.allowedLateness: a window top-N ranks a window's rows once")
	spec.Sources[0].EventTime.AllowedLateness.Duration = 0
	checkPlan(t, "no allowed lateness", spec, "")
}

// TestAvroProblems: a source's columns come from its Avro schema, or are
// checked against it; an Avro sink's columns must make an Avro record.
func TestAvroProblems(t *testing.T) {
	const trade = `{"type":"record","name":"T","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":["null","int"]},
		{"name":"tags","type":{"type":"array","items":"string"}}]}`
	tests := []struct {
		name, schema, query string
		cols                []v1alpha1.Column
		want                string
	}{
		{"derived", `{"type":"record","name":"T","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":["null","int"]}]}`,
			"SELECT symbol, qty + 1 AS q FROM trades", nil, ""},
		{"derived array", trade, "SELECT symbol FROM trades", nil, "spec.sources[0].avro.schema: avro schema: field tags is array; columns are scalar"},
		{"declared", trade, "SELECT symbol, qty FROM trades", []v1alpha1.Column{{Name: "qty", Type: "double"}, {Name: "symbol", Type: "string"}}, ""},
		{"declared, no field", trade, "SELECT symbol FROM trades", []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "venue", Type: "string"}},
			"column venue: the avro schema has no field venue"},
		{"declared, wrong type", trade, "SELECT symbol FROM trades", []v1alpha1.Column{{Name: "symbol", Type: "int"}},
			"column symbol: avro field symbol is string, which does not read as int"},
		{"declared key column", trade, "SELECT symbol, k FROM trades", []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "k", Type: "string", Key: true}}, ""},
		{"bad json", `{"type":`, "SELECT 1 AS one FROM trades", nil, "spec.sources[0].avro.schema: avro schema:"},
		{"sink name", `{"type":"record","name":"T","fields":[{"name":"qty","type":"int"}]}`, "SELECT qty + 1 FROM trades", nil,
			"spec.sink.format: column \"?column?\" is not an Avro field name"},
	}
	for _, tt := range tests {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades"},
				Format: v1alpha1.FormatAvro, Avro: &v1alpha1.AvroFormat{Schema: tt.schema}, Schema: tt.cols}},
			Query: tt.query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}, Format: v1alpha1.FormatAvro},
		}
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestAvroEventTime: the event time column of a source whose columns come
// from its Avro schema is checked against the schema's fields.
func TestAvroEventTime(t *testing.T) {
	for col, want := range map[string]string{
		"ts":   "",
		"when": `spec.sources[0].eventTime.column: column "when" is not a field of avro.schema`,
		"n":    "spec.sources[0].eventTime.column: column n is int; event time must be a timestamp",
	} {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "s", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "s"},
				Format: v1alpha1.FormatAvro, EventTime: &v1alpha1.EventTime{Column: col},
				Avro: &v1alpha1.AvroFormat{Schema: `{"type":"record","name":"T","fields":[{"name":"n","type":"long"},
					{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}}]}`}}},
			Query: "SELECT n FROM s",
			Sink:  &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}},
		}
		checkPlan(t, col, spec, want)
	}
}

// TestAvroFromFile: a file source of format avro is refused, and planning
// it does not fail on its missing Kafka settings (a review found a panic).
func TestAvroFromFile(t *testing.T) {
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{Name: "s", File: &v1alpha1.FileSource{Path: "x"}, Format: v1alpha1.FormatAvro,
			Avro: &v1alpha1.AvroFormat{Schema: `{"type":"record","name":"T","fields":[{"name":"n","type":"long"}]}`}}},
		Query: "SELECT n FROM s",
		Sink:  &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}},
	}
	checkPlan(t, "file", spec, "spec.sources[0].format: avro is read from Kafka record values")
}

// TestKafkaTableProblems: a Kafka table is a join's table only, commits
// nothing, so it is no exactly-once source, and joined as of a time needs
// its version time.
func TestKafkaTableProblems(t *testing.T) {
	kafkaStream := v1alpha1.Source{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades", Group: "g"},
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}}
	fileStream := v1alpha1.Source{Name: "trades", File: &v1alpha1.FileSource{Path: "trades.csv"}, Format: v1alpha1.FormatCSV,
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}}
	table := v1alpha1.Source{Name: "names", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "names"},
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "text", Key: true}, {Name: "name", Type: "text"}, {Name: "ts", Type: "timestamp"}},
		Table:  &v1alpha1.TableSource{Key: []string{"symbol"}}}
	versioned := table
	versioned.EventTime = &v1alpha1.EventTime{Column: "ts"}
	join := "SELECT t.symbol, n.name FROM trades t LEFT JOIN names n ON t.symbol = n.symbol"
	asOf := "SELECT t.symbol, n.name FROM trades t LEFT JOIN names FOR SYSTEM_TIME AS OF t.ts AS n ON t.symbol = n.symbol"
	tests := []struct {
		name    string
		sources []v1alpha1.Source
		query   string
		exactly bool
		want    string // "": accepted
	}{
		{"joined", []v1alpha1.Source{kafkaStream, table}, join, false, ""},
		{"read alone", []v1alpha1.Source{kafkaStream, table}, "SELECT symbol, name FROM names", false, "names is a table, which a query reads only joined with a stream"},
		// The stream's group is the transaction's; the table has none.
		{"exactly once with a Kafka stream", []v1alpha1.Source{kafkaStream, table}, join, true, ""},
		{"exactly once with a file stream", []v1alpha1.Source{fileStream, table}, join, true, "exactlyOnce needs a kafka source"},
		{"as of, versioned", []v1alpha1.Source{kafkaStream, versioned}, asOf, false, ""},
		{"as of, no version time", []v1alpha1.Source{kafkaStream, table}, asOf, false, "give source names an eventTime"},
		{"as of, two engines", []v1alpha1.Source{kafkaStream, versioned}, asOf, false, "run one engine for a join FOR SYSTEM_TIME AS OF"},
		{"as read, two engines", []v1alpha1.Source{kafkaStream, table}, join, false, ""},
	}
	for _, tt := range tests {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: tt.sources, Query: tt.query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: &v1alpha1.StateSpec{},
		}
		if tt.exactly {
			spec.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce
		}
		if strings.HasSuffix(tt.name, "two engines") {
			two := int32(2)
			spec.Replicas, spec.State = &two, nil
		}
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestAfterJoinProblems: an aggregation of a join's rows runs on one
// engine, at least once, without allowed lateness.
func TestAfterJoinProblems(t *testing.T) {
	schema := []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "qty", Type: "bigint"}, {Name: "ts", Type: "timestamp"}}
	stream := func(name string) v1alpha1.Source {
		return v1alpha1.Source{Name: name, Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: name, Group: "g"},
			Schema: schema, EventTime: &v1alpha1.EventTime{Column: "ts"}}
	}
	const windowed = `WITH j AS (SELECT a.symbol, a.qty, b.ts FROM a JOIN b ON a.symbol = b.symbol AND a.ts BETWEEN b.ts - INTERVAL '1' SECOND AND b.ts)
		SELECT window_start, symbol, sum(qty) AS q FROM TUMBLE(j, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol`
	tests := []struct {
		name string
		edit func(*v1alpha1.StreamQuerySpec)
		want string // "": accepted
	}{
		{"one engine", func(*v1alpha1.StreamQuerySpec) {}, ""},
		{"two engines", func(s *v1alpha1.StreamQuerySpec) { two := int32(2); s.Replicas, s.State = &two, nil }, "run one engine to aggregate or rank a join's rows"},
		{"exactly once", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce }, "exactlyOnce is not supported yet for an aggregation, OVER or top-N of a join's rows"},
		{"allowed lateness", func(s *v1alpha1.StreamQuerySpec) {
			s.Sources[1].EventTime.AllowedLateness = metav1.Duration{Duration: time.Second}
		}, "a join drops late records before its rows reach what reads them"},
	}
	for _, tt := range tests {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{stream("a"), stream("b")}, Query: windowed,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: &v1alpha1.StateSpec{},
		}
		tt.edit(spec)
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestJSONSchemaProblems: a source's jsonSchema is compiled when the query
// is planned, and applies to JSON records read from bytes only.
func TestJSONSchemaProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*v1alpha1.Source)
		want string
	}{
		{"valid", func(*v1alpha1.Source) {}, ""},
		{"not a schema", func(s *v1alpha1.Source) { s.JSONSchema = `{"type": "nope"}` }, "spec.sources[0].jsonSchema: \"jsonSchema#\" is not valid against metaschema"},
		{"a file", func(s *v1alpha1.Source) { s.JSONSchema = `{"$ref": "file:///etc/passwd"}` }, "spec.sources[0].jsonSchema: failing loading"},
		{"csv", func(s *v1alpha1.Source) { s.Format = v1alpha1.FormatCSV }, "spec.sources[0].jsonSchema: checks the records of a source of format json"},
		{"no value column", func(s *v1alpha1.Source) {
			s.File, s.Kafka = nil, &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "t"}
			s.Schema[0].Key = true
		}, "spec.sources[0].jsonSchema: checks record values, and this source reads no column from them"},
	} {
		src := v1alpha1.Source{Name: "trades", File: &v1alpha1.FileSource{Path: "trades.jsonl"},
			Schema:     []v1alpha1.Column{{Name: "symbol", Type: "text"}},
			JSONSchema: `{"type": "object", "required": ["symbol"]}`}
		c.edit(&src)
		spec := &v1alpha1.StreamQuerySpec{Sources: []v1alpha1.Source{src}, Query: "SELECT symbol FROM trades", Sink: &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}}}
		spec.Default()
		checkPlan(t, c.name, spec, c.want)
	}
}

// TestChangesProblems: an aggregation of a GROUP BY's rows runs on one
// engine, at least once, with spec.state over Kafka, and keyed by its
// groups; no ttl yet.
func TestChangesProblems(t *testing.T) {
	const query = `SELECT initial, count(*) AS symbols, sum(n) AS n
		FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, count(*) AS n FROM trades GROUP BY symbol) s GROUP BY initial`
	tests := []struct {
		name string
		edit func(*v1alpha1.StreamQuerySpec)
		want string // "": accepted
	}{
		{"one engine", func(*v1alpha1.StreamQuerySpec) {}, ""},
		{"two engines", func(s *v1alpha1.StreamQuerySpec) { two := int32(2); s.Replicas = &two }, "run one engine to aggregate a GROUP BY's rows"},
		{"exactly once", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce }, "exactlyOnce is not supported yet for an aggregation of a GROUP BY's rows"},
		{"ttl", func(s *v1alpha1.StreamQuerySpec) { s.State.TTL = &metav1.Duration{Duration: time.Hour} }, "spec.state.ttl: is not supported yet for an aggregation of a GROUP BY's rows"},
		{"no state", func(s *v1alpha1.StreamQuerySpec) { s.State = nil }, "a GROUP BY without a window keeps its groups for as long as the query runs"},
		{"key of the inner group", func(s *v1alpha1.StreamQuerySpec) {
			s.Query = strings.Replace(query, "SELECT initial,", "SELECT initial, max(initial) AS k,", 1)
		}, "max of the rows of a GROUP BY is not supported yet"},
		{"no key", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Key = "" }, "set key to the output column that names the group"},
	}
	for _, tt := range tests {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades", Group: "g"},
				Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}}},
			Query: query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Key: "initial"}},
			State: &v1alpha1.StateSpec{},
		}
		tt.edit(spec)
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestOverChangesProblems: OVER of a GROUP BY's rows runs on one engine,
// at least once, with spec.state over Kafka, and keyed by its inner
// groups; an emit interval paces it; no ttl yet.
func TestOverChangesProblems(t *testing.T) {
	const query = `SELECT symbol, initial, sum(n) OVER (PARTITION BY initial ORDER BY symbol ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS n4
		FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, count(*) AS n FROM trades GROUP BY symbol) s`
	tests := []struct {
		name string
		edit func(*v1alpha1.StreamQuerySpec)
		want string // "": accepted
	}{
		{"one engine", func(*v1alpha1.StreamQuerySpec) {}, ""},
		{"emit interval", func(s *v1alpha1.StreamQuerySpec) { s.Runtime.EmitInterval = &metav1.Duration{Duration: time.Second} }, ""},
		{"two engines", func(s *v1alpha1.StreamQuerySpec) { two := int32(2); s.Replicas = &two }, "run one engine for OVER of a GROUP BY's rows"},
		{"exactly once", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce }, "exactlyOnce is not supported yet for OVER of a GROUP BY's rows"},
		{"ttl", func(s *v1alpha1.StreamQuerySpec) { s.State.TTL = &metav1.Duration{Duration: time.Hour} }, "spec.state.ttl: is not supported yet for OVER of a GROUP BY's rows"},
		{"no state", func(s *v1alpha1.StreamQuerySpec) { s.State = nil }, "OVER of a GROUP BY's rows keeps the groups and their rows"},
		{"no key", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Key = "" }, "set key to the output column that names the inner group (GROUP BY symbol)"},
		{"key of the group and its frame", func(s *v1alpha1.StreamQuerySpec) {
			s.Query = strings.Replace(query, "AS n4", "AS n4, symbol || '/' || CAST(sum(n) OVER (PARTITION BY initial ORDER BY symbol ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS string) AS k", 1)
			s.Sink.Kafka.Key = "k"
		}, `"k" does not name the inner group`},
		{"key of a constant", func(s *v1alpha1.StreamQuerySpec) {
			s.Query = strings.Replace(query, "SELECT symbol,", "SELECT symbol, 'all' AS k,", 1)
			s.Sink.Kafka.Key = "k"
		}, `"k" does not name the inner group`},
		{"key of an aggregate", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Key = "n4" }, `"n4" does not name the inner group`},
	}
	for _, tt := range tests {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades", Group: "g"},
				Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}}},
			Query: query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Key: "symbol"}},
			State: &v1alpha1.StateSpec{},
		}
		tt.edit(spec)
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestWindowJoinProblems: a window join runs on one engine, joins each
// window once (no allowed lateness), and keeps its event times.
func TestWindowJoinProblems(t *testing.T) {
	const query = `SELECT T.symbol, T.ws, T.n, Q.n AS quotes
		FROM (SELECT symbol, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY symbol, window_start, window_end) T
		JOIN (SELECT symbol, window_start AS ws, count(*) AS n FROM TUMBLE(quotes, ts, INTERVAL '1' SECOND) GROUP BY symbol, window_start, window_end) Q
		ON T.symbol = Q.symbol AND T.ws = Q.ws`
	tests := []struct {
		name string
		edit func(*v1alpha1.StreamQuerySpec)
		want string // "": accepted
	}{
		{"one engine", func(*v1alpha1.StreamQuerySpec) {}, ""},
		{"exactly once", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce }, ""},
		{"two engines", func(s *v1alpha1.StreamQuerySpec) { two := int32(2); s.Replicas = &two }, "run one engine for a window join"},
		{"allowed lateness", func(s *v1alpha1.StreamQuerySpec) {
			s.Sources[1].EventTime = &v1alpha1.EventTime{Column: "ts", AllowedLateness: metav1.Duration{Duration: time.Second}}
		}, "a window join joins each window's rows once"},
		{"another event time", func(s *v1alpha1.StreamQuerySpec) {
			s.Sources[1].Schema = append(s.Sources[1].Schema, v1alpha1.Column{Name: "at", Type: "timestamp"})
			s.Sources[1].EventTime = &v1alpha1.EventTime{Column: "at"}
		}, "the query's event time for quotes is ts"},
	}
	for _, tt := range tests {
		kafka := func(topic string) *v1alpha1.KafkaSource {
			return &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: topic, Group: "g"}
		}
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{
				{Name: "trades", Kafka: kafka("trades"), Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}},
				{Name: "quotes", Kafka: kafka("quotes"), Schema: []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}},
			},
			Query: query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: &v1alpha1.StateSpec{},
		}
		tt.edit(spec)
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestProcessingTimeProblems: windows of processing time take no late
// records, so allowedLateness is refused.
func TestProcessingTimeProblems(t *testing.T) {
	for _, c := range []struct {
		name     string
		lateness time.Duration
		want     string
	}{
		{"plain", 0, ""},
		{"allowed lateness", time.Second, "windows of processing time (PROCTIME()) take every record when it is processed: none is late"},
	} {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", File: &v1alpha1.FileSource{Path: "trades.csv"}, Format: v1alpha1.FormatCSV,
				Schema:    []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}},
				EventTime: &v1alpha1.EventTime{Column: "ts", AllowedLateness: metav1.Duration{Duration: c.lateness}}}},
			Query: "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, PROCTIME(), INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol",
			Sink:  &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}},
		}
		spec.Default()
		checkPlan(t, c.name, spec, c.want)
	}
}

// TestMoreStreamsProblems: a join of more than two streams runs on one
// engine, at least once.
func TestMoreStreamsProblems(t *testing.T) {
	const query = `SELECT t.symbol, q.ts, f.ts AS fts FROM trades t JOIN quotes q
		ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts + INTERVAL '1' SECOND
		JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND`
	tests := []struct {
		name string
		edit func(*v1alpha1.StreamQuerySpec)
		want string // "": accepted
	}{
		{"one engine", func(*v1alpha1.StreamQuerySpec) {}, ""},
		{"exactly once", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce },
			"exactlyOnce is not supported yet for a join of more than two streams"},
		{"two engines", func(s *v1alpha1.StreamQuerySpec) { two := int32(2); s.Replicas = &two },
			"run one engine to join more than two streams"},
		{"another event time", func(s *v1alpha1.StreamQuerySpec) {
			s.Sources[2].Schema = append(s.Sources[2].Schema, v1alpha1.Column{Name: "at", Type: "timestamp"})
			s.Sources[2].EventTime = &v1alpha1.EventTime{Column: "at"}
		}, "the query's event time for fills is ts"},
	}
	for _, tt := range tests {
		kafka := func(topic string) *v1alpha1.KafkaSource {
			return &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: topic, Group: "g"}
		}
		columns := []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{
				{Name: "trades", Kafka: kafka("trades"), Schema: columns},
				{Name: "quotes", Kafka: kafka("quotes"), Schema: columns},
				{Name: "fills", Kafka: kafka("fills"), Schema: slices.Clone(columns)},
			},
			Query: query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: &v1alpha1.StateSpec{},
		}
		tt.edit(spec)
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}

// TestPairsLookedUpProblems: two streams joined and then looked up in a
// table run on one engine, at least once.
func TestPairsLookedUpProblems(t *testing.T) {
	const query = `SELECT t.symbol, q.ts, s.name FROM trades t JOIN quotes q
		ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts + INTERVAL '1' SECOND
		LEFT JOIN symbols s ON s.symbol = t.symbol`
	tests := []struct {
		name string
		edit func(*v1alpha1.StreamQuerySpec)
		want string // "": accepted
	}{
		{"one engine", func(*v1alpha1.StreamQuerySpec) {}, ""},
		{"exactly once", func(s *v1alpha1.StreamQuerySpec) { s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce },
			"exactlyOnce is not supported yet for a join of two streams with tables"},
		{"two engines", func(s *v1alpha1.StreamQuerySpec) { two := int32(2); s.Replicas = &two },
			"run one engine to join two streams with tables"},
	}
	for _, tt := range tests {
		kafka := func(topic string) *v1alpha1.KafkaSource {
			return &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: topic, Group: "g"}
		}
		columns := []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{
				{Name: "trades", Kafka: kafka("trades"), Schema: columns},
				{Name: "quotes", Kafka: kafka("quotes"), Schema: columns},
				{Name: "symbols", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "symbols"}, Schema: []v1alpha1.Column{{Name: "symbol", Type: "text", Key: true}, {Name: "name", Type: "text"}},
					Table: &v1alpha1.TableSource{Key: []string{"symbol"}}},
			},
			Query: query,
			Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: &v1alpha1.StateSpec{},
		}
		tt.edit(spec)
		spec.Default()
		checkPlan(t, tt.name, spec, tt.want)
	}
}
