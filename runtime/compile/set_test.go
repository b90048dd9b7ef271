package compile

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestPlanSet: a statement set plans each statement as the query it would
// be alone, places each statement's problems in it, and checks what the
// statements share of them all.
func TestPlanSet(t *testing.T) {
	const (
		plain    = "SELECT symbol FROM trades"
		windowed = "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"
		allRows  = "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end"
		changes  = "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol"
		joined   = "WITH j AS (SELECT t.symbol, q.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts) " +
			"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(j, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"
	)
	set := func(kafka bool, queries ...string) *v1alpha1.StreamQuerySpec {
		spec := &v1alpha1.StreamQuerySpec{Sources: []v1alpha1.Source{{Name: "trades", File: &v1alpha1.FileSource{Path: "t.jsonl"},
			Schema:    []v1alpha1.Column{{Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}},
			EventTime: &v1alpha1.EventTime{Column: "ts"}}}}
		quotes := spec.Sources[0]
		quotes.Name, quotes.EventTime = "quotes", &v1alpha1.EventTime{Column: "ts"}
		spec.Sources = append(spec.Sources, quotes)
		if kafka {
			for i := range spec.Sources {
				spec.Sources[i].File, spec.Sources[i].Kafka = nil, &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: spec.Sources[i].Name}
			}
		}
		for i, q := range queries {
			spec.Statements = append(spec.Statements, v1alpha1.Statement{Name: string(rune('a' + i)), Query: q, Sink: v1alpha1.Sink{Null: &v1alpha1.NullSink{}}})
		}
		return spec
	}
	late := func(spec *v1alpha1.StreamQuerySpec) *v1alpha1.StreamQuerySpec {
		spec.Sources[0].EventTime.AllowedLateness = metav1.Duration{Duration: time.Minute}
		return spec
	}
	engines := func(spec *v1alpha1.StreamQuerySpec) *v1alpha1.StreamQuerySpec {
		spec.Replicas = new(int32(3))
		return spec
	}
	state := func(spec *v1alpha1.StreamQuerySpec, ttl bool) *v1alpha1.StreamQuerySpec {
		spec.State = &v1alpha1.StateSpec{}
		if ttl {
			spec.State.TTL = &metav1.Duration{Duration: time.Hour}
		}
		return spec
	}
	// keyed: the topics are partitioned by symbol, and quotes is a table
	// of a symbol's latest quote.
	keyed := func(spec *v1alpha1.StreamQuerySpec) *v1alpha1.StreamQuerySpec {
		for i := range spec.Sources {
			spec.Sources[i].Kafka.PartitionedBy = []string{"symbol"}
		}
		quotes := &spec.Sources[1]
		quotes.EventTime, quotes.Table = nil, &v1alpha1.TableSource{Key: []string{"symbol"}}
		quotes.Schema = slices.Clone(quotes.Schema)
		quotes.Schema[0].Key = true
		return spec
	}
	// exactly: over trades alone, each statement writes exactly once, or
	// those given.
	exactly := func(spec *v1alpha1.StreamQuerySpec, only ...int) *v1alpha1.StreamQuerySpec {
		spec.Sources = spec.Sources[:1]
		for i := range spec.Statements {
			st := &spec.Statements[i]
			st.Sink = v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: st.Name}}
			if len(only) == 0 || slices.Contains(only, i) {
				st.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce
			}
		}
		return spec
	}
	emit := func(spec *v1alpha1.StreamQuerySpec) *v1alpha1.StreamQuerySpec {
		spec.Runtime.EmitInterval = &metav1.Duration{Duration: time.Second}
		return spec
	}
	tests := []struct {
		name string
		spec *v1alpha1.StreamQuerySpec
		want string // "": accepted
	}{
		{"two statements", set(false, plain, windowed), ""},
		{"a problem placed in its statement", set(false, plain, "SELECT symbl FROM trades"), `spec.statements[1].query (offset 7): unknown column "symbl"`},
		{"allowedLateness of one windowed statement", late(set(false, plain, windowed)), ""},
		{"allowedLateness of none", late(set(false, plain, plain)), "allowedLateness: applies to queries over TUMBLE or HOP windows only; no statement reading trades has one"},
		{"allowedLateness of a join's rows", late(set(false, windowed, joined)), "allowedLateness: statement b: a join drops late records"},
		{"emitInterval of one GROUP BY", emit(set(false, plain, changes)), ""},
		{"emitInterval of none", emit(set(false, plain, windowed)), "spec.runtime.emitInterval: applies to a GROUP BY without a window"},
		{"GROUP BY without a window over Kafka", set(true, plain, changes), "spec.state: statement b: a GROUP BY without a window keeps its groups"},
		{"GROUP BY without a window over Kafka, with state", state(set(true, plain, changes), false), ""},
		{"state of stateless statements", state(set(true, plain, plain), false), "spec.state: no statement keeps state to checkpoint"},
		{"ttl of one GROUP BY", state(set(true, plain, windowed, changes), true), ""},
		{"ttl of none", state(set(true, plain, windowed), true), "spec.state.ttl: applies to a GROUP BY without a window, whose groups live until they expire; the state of windows, OVER frames and joins ends with their time bounds; no statement is one"},
		{"several engines, stateless", engines(set(true, plain, plain)), ""},
		{"exactly once, stateless", exactly(set(true, plain, plain)), ""},
		{"exactly once, a window", exactly(set(true, plain, windowed)), "spec.statements[1].sink.kafka.delivery: this statement keeps state (windows, OVER, joins, GROUP BY), which exactly once needs checkpointed in each transaction: add spec.state"},
		{"exactly once, state", state(exactly(set(true, plain, windowed)), false), ""},
		{"exactly once beside a window at least once", exactly(set(true, plain, windowed), 0), "spec.statements[1].query: this statement keeps state (windows, OVER, joins, GROUP BY), which in a statement set with exactly-once statements needs spec.state"},
		{"exactly once beside a window at least once, state", state(exactly(set(true, plain, windowed), 0), false), ""},
		{"exactly once beside a filter at least once", exactly(set(true, plain, plain), 0), ""},
		{"several engines, repartitioned", engines(set(true, plain, windowed)), "spec.statements[1].query: on several engines, this statement's rows would be repartitioned by symbol through Kafka, which a statement set does not do yet"},
		{"several engines, one group", engines(set(true, allRows)), "spec.replicas: statement a: on several engines, each engine aggregates"},
		{"several engines, state", state(engines(keyed(set(true, plain, windowed, "SELECT symbol, ts, count(*) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS n FROM trades"))), false), ""},
		{"several engines, a table join", engines(keyed(set(true, windowed, "SELECT t.symbol, t.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol"))), ""},
		{"several engines, state of a table join", state(engines(keyed(set(true, windowed, "SELECT t.symbol, t.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol"))), false),
			"spec.state: statement b: on several engines, state moves with its partitions for windows and moving aggregates; a table join's table is every engine's"},
	}
	for _, tt := range tests {
		_, _, err := PlanSet(tt.spec, nil, nil)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}

	// A statement runs without the shared settings that do not apply to it.
	stmts, _, err := PlanSet(emit(late(set(false, plain, windowed, changes))), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, w := stmts[0].Spec, stmts[1].Spec; p.Sources[0].EventTime.AllowedLateness.Duration != 0 || p.Runtime.EmitInterval != nil ||
		w.Sources[0].EventTime.AllowedLateness.Duration != time.Minute {
		t.Errorf("the plain statement's allowedLateness %v and emitInterval %v; the windowed one's allowedLateness %v; want none, none and 1m",
			p.Sources[0].EventTime.AllowedLateness, p.Runtime.EmitInterval, w.Sources[0].EventTime.AllowedLateness)
	}

	// Of spec.state, a stateless statement keeps nothing, and only a
	// GROUP BY without a window its ttl.
	stmts, _, err = PlanSet(state(set(true, plain, windowed, changes), true), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, w, c := stmts[0].Spec.State, stmts[1].Spec.State, stmts[2].Spec.State; p != nil || w == nil || w.TTL != nil || c == nil || c.TTL == nil {
		t.Errorf("states %+v, %+v, %+v; want none, one without ttl, one with", p, w, c)
	}

	// With spec.state, a source only stateless statements read needs not
	// be read again from a position, nor keep its columns across runs.
	stdin := state(set(false, windowed, "SELECT symbol FROM quotes"), false)
	stdin.Sources[0].File.Path = "t.jsonl"
	stdin.Sources[1].File, stdin.Sources[1].Stdin = nil, &v1alpha1.StdinSource{}
	stdin.State.Dir = "state"
	if _, _, err := PlanSet(stdin, nil, nil); err != nil {
		t.Errorf("stdin read by a stateless statement: %v", err)
	}
	if _, _, err := PlanSet(stdin, []string{"quotes"}, nil); err != nil {
		t.Errorf("a latest schema read by a stateless statement: %v", err)
	}
	if _, _, err := PlanSet(stdin, []string{"trades"}, nil); err == nil || !strings.Contains(err.Error(), "the columns are the fields of the registry's latest schema") {
		t.Errorf("a latest schema read by a stateful statement: %v; want it refused", err)
	}
	stdin.Statements[1].Query = "SELECT symbol, count(*) AS n FROM quotes GROUP BY symbol"
	if _, _, err := PlanSet(stdin, nil, nil); err == nil || !strings.Contains(err.Error(), "spec.sources[1].stdin: standard input cannot be read again") {
		t.Errorf("stdin read by a stateful statement: %v; want it refused", err)
	}

	// The channels of every statement, and those from the source to each,
	// count against the memory limit: each statement alone fits.
	spec := set(false, plain, plain, plain, plain)
	spec.Runtime.ChannelCapacity, spec.Runtime.BatchSize = 64, 4096
	spec.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("150Mi")}
	if _, _, err := PlanSet(spec, nil, nil); err == nil || !strings.Contains(err.Error(), "the channels alone need at least 192 MiB when full (12 edges") {
		t.Errorf("four statements' channels: %v; want them refused together", err)
	}
	spec.Statements = spec.Statements[:1]
	if _, _, err := PlanSet(spec, nil, nil); err != nil {
		t.Errorf("one statement's channels: %v", err)
	}
}
