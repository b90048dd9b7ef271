// Package bench defines the engine's standard benchmark workload, shared by
// `engine bench` and the testing.B benchmarks so that both measure the same
// thing.
package bench

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Query is the baseline query: a filter and a projection with arithmetic.
const Query = "SELECT symbol, price, quantity, price * quantity AS notional FROM trades WHERE quantity > 500 AND symbol <> 'IBM'"

// Config describes a datagen → query → sink run.
type Config struct {
	Query string
	// Records is the total over all partitions; 0 generates forever.
	Records     int64
	Partitions  int
	Parallelism int
	// Rate limits each partition, in records per second; 0 is unthrottled.
	Rate int64
	// Keys is the number of distinct symbols; 0 is the generator's default.
	Keys            int32
	ChannelCapacity int
	BatchSize       int
	Linger          time.Duration
	Mode            v1alpha1.ExecutionMode
}

// Spec returns the StreamQuery spec of a run: the trades generator, the query,
// and the null sink. Zero fields take the engine's defaults.
func Spec(c Config) *v1alpha1.StreamQuerySpec {
	if c.Query == "" {
		c.Query = Query
	}
	parts := max(c.Partitions, 1)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name: "trades",
			Datagen: &v1alpha1.DatagenSource{
				Generator: "trades", Count: c.Records / int64(parts), Partitions: int32(parts), Seed: 7, Rate: c.Rate, Keys: c.Keys,
			},
		}},
		Query: c.Query,
		Sink:  &v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		Runtime: v1alpha1.RuntimeSpec{
			Mode: c.Mode, Parallelism: int32(c.Parallelism),
			ChannelCapacity: int32(c.ChannelCapacity), BatchSize: int32(c.BatchSize),
		},
	}
	if c.Linger > 0 {
		spec.Runtime.BatchLinger = &metav1.Duration{Duration: c.Linger}
	}
	return spec
}
