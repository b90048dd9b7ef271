package enginestatus

// Health is a health verdict: of the engine, or of one check.
type Health string

// The verdicts.
const (
	Healthy   Health = "Healthy"
	Degraded  Health = "Degraded"
	Unhealthy Health = "Unhealthy"
)

// Level grades backpressure by how full the fullest channel is.
type Level string

// The levels, from the least to the most.
const (
	LevelNone   Level = "None"
	LevelLow    Level = "Low"
	LevelMedium Level = "Medium"
	LevelHigh   Level = "High"
)

// Rank orders the levels: None 0 to High 3; an unknown level ranks -1.
func (l Level) Rank() int {
	switch l {
	case LevelNone:
		return 0
	case LevelLow:
		return 1
	case LevelMedium:
		return 2
	case LevelHigh:
		return 3
	}
	return -1
}

// LevelOf grades a channel utilization: None below 50%, Low below 80%,
// Medium below 95%, High from there.
func LevelOf(utilization float64) Level {
	switch {
	case utilization >= 0.95:
		return LevelHigh
	case utilization >= 0.8:
		return LevelMedium
	case utilization >= 0.5:
		return LevelLow
	}
	return LevelNone
}

// State is where the pipeline is in its life.
type State string

// The states, in the order a run goes through them.
const (
	Starting State = "Starting"
	Running  State = "Running"
	Draining State = "Draining"
	Finished State = "Finished"
	Failed   State = "Failed"
)

// CheckName names a health check.
type CheckName string

// The checks, described in docs/status.md.
const (
	CheckPipeline        CheckName = "pipeline"
	CheckChannelCapacity CheckName = "channel_capacity"
	CheckProcessingRate  CheckName = "processing_rate"
	CheckErrorRate       CheckName = "error_rate"
	CheckConnectivity    CheckName = "connectivity"
	CheckProgress        CheckName = "progress"
	CheckMemory          CheckName = "memory"
)
