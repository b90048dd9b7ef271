package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pingInterval is how often a client's brokers are checked.
const pingInterval = time.Second

// reachability remembers whether a client could reach a broker at its last
// check: the readiness of an engine whose Kafka brokers went away is false
// until they come back, while the client itself keeps retrying.
type reachability struct {
	err atomic.Pointer[error]
}

// watch pings cl's brokers every interval until ctx ends, logging when they
// become unreachable and when they are back.
func (r *reachability) watch(ctx context.Context, cl *kgo.Client, what string, log *slog.Logger) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*pingInterval)
		err := cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		was := r.err.Load()
		switch {
		case err != nil && was == nil:
			err = fmt.Errorf("%s: no Kafka broker reachable: %w", what, err)
			r.err.Store(&err)
			log.Warn("kafka brokers unreachable; retrying", "component", "kafka", "client", what, "error", err)
		case err == nil && was != nil:
			r.err.Store(nil)
			log.Info("kafka brokers reachable again", "component", "kafka", "client", what)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Unavailable returns why the brokers are unreachable, or nil.
func (r *reachability) Unavailable() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}
