package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pingInterval is how often a client's brokers are checked.
const pingInterval = time.Second

// reachability remembers whether a client could reach a broker, and find
// its topics, at its last check: the readiness of an engine whose Kafka
// brokers went away, or whose topic does not exist, is false until that
// ends, while the client itself keeps retrying.
type reachability struct {
	err atomic.Pointer[error]
}

// watch checks cl's brokers and topics every interval until ctx ends,
// logging when they become unavailable and when they are back.
func (r *reachability) watch(ctx context.Context, cl *kgo.Client, what string, topics []string, log *slog.Logger) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*pingInterval)
		err := cl.Ping(pctx)
		if err != nil {
			err = fmt.Errorf("%s: no Kafka broker reachable: %w", what, err)
		} else if err = missingTopics(pctx, cl, topics); err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		was := r.err.Load()
		switch {
		case err != nil && (was == nil || (*was).Error() != err.Error()):
			r.err.Store(&err)
			log.Warn("kafka unavailable; retrying", "component", "kafka", "client", what, "error", err)
		case err == nil && was != nil:
			r.err.Store(nil)
			log.Info("kafka available again", "component", "kafka", "client", what)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// missingTopics asks the brokers for the topics' metadata, never creating
// them: an error names those that do not exist. Without it, a sink to a
// missing topic would retry in silence until its channels filled, and a
// source of one would read nothing and say nothing.
func missingTopics(ctx context.Context, cl *kgo.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("reading the metadata of %s: %w", strings.Join(topics, ", "), err)
	}
	var missing []string
	for _, rt := range resp.Topics {
		if rt.ErrorCode == kerr.UnknownTopicOrPartition.Code && rt.Topic != nil {
			missing = append(missing, *rt.Topic)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("topic %s does not exist; create it (the engine does not)", missing[0])
	}
	return fmt.Errorf("topics %s do not exist; create them (the engine does not)", strings.Join(missing, ", "))
}

// Unavailable returns why the brokers or topics are unavailable, or nil.
func (r *reachability) Unavailable() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}
