package v1alpha1

// MetricType is how a business metric turns rows into a value.
// +kubebuilder:validation:Enum=Counter;Gauge;Histogram
type MetricType string

// The metric types.
const (
	// Counter adds each row's value (1 when there is no value column).
	Counter MetricType = "Counter"
	// Gauge takes each row's value: the latest row of a series wins.
	Gauge MetricType = "Gauge"
	// Histogram observes each row's value in its buckets.
	Histogram MetricType = "Histogram"
)

// UserMetric is a business metric computed from the rows the query writes
// and served on the engine's /metrics as sluice_user_<name>, one series per
// value of its label columns.
type UserMetric struct {
	// name is the metric's name after sluice_user_: lower-case letters,
	// digits and _, starting with a letter. A counter's ends in _total.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9_]*$`
	Name string `json:"name"`

	// type is Counter, Gauge or Histogram.
	Type MetricType `json:"type"`

	// help is the metric's description, served as its HELP.
	// +optional
	// +kubebuilder:validation:MaxLength=500
	Help string `json:"help,omitempty"`

	// value is the numeric output column a row contributes: added by a
	// Counter (without it, each row counts 1), the latest value of a
	// Gauge, observed by a Histogram. A row whose value is NULL, or
	// negative for a Counter, is not counted and shows as skipped on
	// /status.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value,omitempty"`

	// labels are output columns whose values label the series, at most 8.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=256
	Labels []string `json:"labels,omitempty"`

	// buckets are a Histogram's upper bounds, increasing, at most 64;
	// Prometheus's defaults (0.005 to 10) when empty. Numbers, which the
	// Kubernetes API otherwise avoids, because bucket bounds are.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Buckets []float64 `json:"buckets,omitempty"`

	// maxSeries bounds the metric's series, so that a label column with
	// unbounded values cannot exhaust the engine or Prometheus: rows with
	// label values beyond the first maxSeries go to one series whose every
	// label is __overflow__, and /status warns. 1 to 100000.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxSeries int32 `json:"maxSeries,omitempty"`

	// statement, of a statement set (spec.statements), names the
	// statement whose rows the metric is computed from. Required then, and
	// only then.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Statement string `json:"statement,omitempty"`
}
