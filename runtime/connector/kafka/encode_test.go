package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestEncodedAhead: the sink writes the rows a worker encoded ahead
// (EncodeBatch), not the rows as they are at write time; and once the
// batch is reset for another use, the old encoding is never written for
// its new rows.
func TestEncodedAhead(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	spec := &v1alpha1.KafkaSink{Brokers: c.ListenAddrs(), Topic: "out"}
	sink, err := OpenSink(spec, format.NewJSONEncoder([]string{"n"}), -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var b message.Batch
	b.Reset(1)
	b.Append(0)[0] = value.IntValue(1)
	sink.EncodeBatch(&b)
	b.Rows[0][0] = value.IntValue(2) // after the encoding: not written
	if err := sink.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	b.Reset(1) // the batch's next use: its encoding is stale
	b.Append(0)[0] = value.IntValue(3)
	if err := sink.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 2 || got[0] != `{"n":1}` || got[1] != `{"n":3}` {
		t.Errorf("records %q; want the encoded-ahead {\"n\":1}, then {\"n\":3} encoded at write time", got)
	}
}

// TestMissingTopicUnavailable: a sink whose topic does not exist says so
// as its unavailability (the engine's connectivity check and readiness),
// rather than retrying in silence, and is available once the topic is
// created.
func TestMissingTopicUnavailable(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sink, err := OpenSink(&v1alpha1.KafkaSink{Brokers: c.ListenAddrs(), Topic: "out"}, format.NewJSONEncoder([]string{"n"}), -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	deadline := time.Now().Add(10 * time.Second)
	for err := sink.Unavailable(); err == nil || !strings.Contains(err.Error(), "sink: topic out does not exist"); err = sink.Unavailable() {
		if time.Now().After(deadline) {
			t.Fatalf("Unavailable() = %v after 10s; want the missing topic named", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, nil, "out"); err != nil {
		t.Fatal(err)
	}
	for deadline = time.Now().Add(10 * time.Second); sink.Unavailable() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Unavailable() = %v 10s after the topic was created; want nil", sink.Unavailable())
		}
	}
}
