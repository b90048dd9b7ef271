package v1alpha1

// RunMode says how the query runs: Batch when every source that is not a
// table ends (a file, stdin, a datagen with a count), so the run ends when
// they have been read; Continuous when one reads without end (Kafka, a
// datagen without a count). Tables are read whole before the streams and
// do not decide it.
func (s *StreamQuerySpec) RunMode() RunMode {
	streams := 0
	for i := range s.Sources {
		src := &s.Sources[i]
		if src.Table != nil {
			continue
		}
		streams++
		switch {
		case src.File != nil, src.Stdin != nil:
		case src.Datagen != nil && src.Datagen.Count > 0:
		default:
			return Continuous
		}
	}
	if streams == 0 {
		return Continuous
	}
	return Batch
}

// SeveralEngines says the query may run on more than one engine at once
// (replicas above 1, or autoscaling), which divide its Kafka partitions
// between them.
func (s *StreamQuerySpec) SeveralEngines() bool {
	return (s.Replicas != nil && *s.Replicas > 1) || s.Autoscaling != nil
}

// ConsumerGroup is the Kafka consumer group of the engines of the query
// namespace/name, for its sources that name none: it also names the
// query's internal topics (<group>.checkpoints, <group>.repartition.0).
func ConsumerGroup(namespace, name string) string {
	return "sluice." + namespace + "." + name
}

// RepartitionTopic is the topic through which the engines of the query
// whose consumer group is group pass its rows on by key.
func RepartitionTopic(group string) string { return group + ".repartition.0" }
