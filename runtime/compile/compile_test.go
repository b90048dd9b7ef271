package compile

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestStateProblems: spec.state and exactly-once delivery are refused, with
// what to do, where the query cannot honour them, and accepted where it can.
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
			Sink:  v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out"}},
			State: tt.state,
		}
		if tt.exactly {
			spec.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce
		}
		spec.Default()
		_, _, err := Plan(spec)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}
}
