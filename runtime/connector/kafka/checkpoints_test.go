package kafka

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestCheckpointStore saves whole checkpoints and deltas of 1 and of
// several chunks to a topic the store creates compacted, and reads back the
// newest chain; the chains of the two newest whole checkpoints stay and
// older ones get tombstones; a write cut short leaves the one before it to
// restore; a new store, as after a restart, finds what the last one wrote.
func TestCheckpointStore(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	topic := CheckpointTopic(fmt.Sprintf("store-%d", time.Now().UnixNano()))
	open := func() *CheckpointStore {
		st, err := OpenCheckpointStore(topic, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	ctx := context.Background()
	st := open()
	if c, err := st.Latest(ctx); err != nil || c != nil {
		t.Fatalf("an empty store's latest: %v, %v", c, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	configs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	// kfake knows no log cleaner settings, and refuses them: the topic is
	// made with the others; real brokers take them all.
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	for _, name := range basicTopicConfigs {
		if want := checkpointTopicConfigs[name]; got[name] != want {
			t.Errorf("the topic's %s is %q; want %q", name, got[name], want)
		}
	}

	state := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rand.N(256))
		}
		return b
	}
	saved := map[uint64]*checkpoint.Checkpoint{}
	save := func(st *CheckpointStore, id uint64, size int, delta bool) {
		c := &checkpoint.Checkpoint{ID: id, Fingerprint: "fp", Plan: "plan", Created: time.Now().UTC().Truncate(time.Microsecond),
			Partitions: []checkpoint.Partition{{Source: "t", Partition: 3, Offset: int64(id) * 10}}, State: state(size), Delta: delta}
		if err := st.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
		saved[id] = c
	}
	latest := func(st *CheckpointStore, want ...uint64) {
		t.Helper()
		ch, err := st.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for i, c := range ch {
			ids = append(ids, c.ID)
			if !bytes.Equal(c.Encode(), saved[c.ID].Encode()) {
				t.Fatalf("link %d, checkpoint %d, differs from the one saved", i, c.ID)
			}
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("latest: the chain %v; want %v", ids, want)
		}
	}
	save(st, 1, 100, false)
	latest(st, 1)
	save(st, 2, 3*checkpointChunk+17, true) // four chunks
	latest(st, 1, 2)
	save(st, 3, 10, false)
	save(st, 4, 50, true)
	save(st, 5, 20, false) // 1 and 2 go: the chains of 3 and 5 stay
	st = open()
	latest(st, 5)
	if _, ok := st.stored[2]; ok || len(st.stored) != 3 {
		t.Errorf("checkpoints left in the topic: %v; want 3 to 5, the others under tombstones", st.stored)
	}

	// A crash in the middle of delta 6's write: its first chunk of two is
	// there, so 5 is restored.
	big := &checkpoint.Checkpoint{ID: 6, Fingerprint: "fp", State: state(2 * checkpointChunk), Delta: true}
	b := big.Encode()
	v := append([]byte{6, 0, 2, 1}, b[:checkpointChunk]...)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: chunkKey(6, 0), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cut := open()
	latest(cut, 5)
	if cut.Highest() != 6 {
		t.Errorf("Highest = %d; want 6, so that the next checkpoint is numbered after the one cut short", cut.Highest())
	}
	save(st, 6, 30, true)
	save(st, 7, 30, true)
	latest(open(), 5, 6, 7)

	// Read back by a transactional store's rules: a transaction left open
	// by a crashed writer hides nothing committed before it.
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("store-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: chunkKey(8, 0), Value: []byte{8, 0, 1, 1, 'x'}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	latest(open(), 5, 6, 7)
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	// Checkpoints of single partitions, of two engines: of one ID, the later
	// epoch's wins, whichever was written last; older ones go.
	savePart := func(id uint64, epoch int64) *checkpoint.Checkpoint {
		c := &checkpoint.Checkpoint{ID: id, Epoch: epoch, Fingerprint: "fp", Created: time.Now().UTC().Truncate(time.Microsecond),
			Partitions: []checkpoint.Partition{{Source: "t", Partition: 2, Offset: int64(id)}}, State: state(100)}
		if err := st.SavePartition(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	latestPart := func(st *CheckpointStore, want *checkpoint.Checkpoint) {
		t.Helper()
		c, err := st.LatestPartition(ctx, "t", 2)
		if err != nil || c == nil || !bytes.Equal(c.Encode(), want.Encode()) {
			t.Fatalf("latest of partition 2: %v, %v; want checkpoint %d of epoch %d", c, err, want.ID, want.Epoch)
		}
	}
	if c, err := st.LatestPartition(ctx, "t", 2); c != nil || err != nil {
		t.Fatalf("latest of a partition without checkpoints: %v, %v", c, err)
	}
	savePart(1, 4)
	savePart(2, 4)
	b3 := savePart(3, 5) // the new owner's
	savePart(3, 4)       // its former owner's, late
	latestPart(open(), b3)
	b4 := savePart(4, 5)
	st = open()
	latestPart(st, b4)
	if n := len(st.partitions["t/2"]); n != 3 {
		t.Errorf("%d checkpoints of partition 2 left; want 3 and 4 (two of 3)", n)
	}

	// A first checkpoint cut short is as if there were none: nothing was
	// acknowledged after it.
	first := CheckpointTopic(fmt.Sprintf("first-%d", time.Now().UnixNano()))
	fst, err := OpenCheckpointStore(first, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fst.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: first, Key: chunkKey(1, 0), Value: append([]byte{1, 0, 2, 0}, "half"...)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if c, err := fst.Latest(ctx); c != nil || err != nil || fst.Highest() != 1 {
		t.Errorf("a store whose only checkpoint was cut short: %v, %v, highest %d; want none, and 1", c, err, fst.Highest())
	}
}

// TestFollowerMoved: once the group takes partitions of a follower (a
// join's second topic) away, its owner refuses to commit a checkpoint,
// whose offsets of those partitions would go with state that no longer
// holds their rows: the engine stops, and its restart restores the last
// committed checkpoint.
func TestFollowerMoved(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "trades", "quotes"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	spec := func(topic string) *v1alpha1.KafkaSource {
		return &v1alpha1.KafkaSource{Brokers: brokers, Topic: topic, SessionTimeout: &metav1.Duration{Duration: 6 * time.Second}}
	}
	cols := append([]value.Column{{Name: "v", Type: value.String}}, schemas.KafkaMeta...)
	owner, err := Open(spec("trades"), "t", v1alpha1.FormatJSON, cols, Options{
		Group: "moved", Stateful: true, TransactionalID: "moved.a", Checkpointed: true,
		Producer: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	follower, err := Open(spec("quotes"), "q", v1alpha1.FormatJSON, cols, Options{Group: "moved", Stateful: true, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for follower.lag(0) < 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // until it is assigned quotes
	}
	if err := owner.CommitCheckpoint(ctx, map[*message.Origin]int64{}); err != nil {
		t.Fatalf("a checkpoint before any move: %v", err)
	}
	// Another member takes some of the quotes' partitions.
	other, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("moved"), kgo.ConsumeTopics("quotes"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for !follower.moved.Load() && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		other.PollRecords(pctx, 1) // joins the group
		cancel()
	}
	if !follower.moved.Load() {
		t.Fatal("the follower kept its partitions when another member joined")
	}
	err = owner.CommitCheckpoint(ctx, map[*message.Origin]int64{})
	if err == nil || !strings.Contains(err.Error(), "took partitions of topic quotes") {
		t.Errorf("a checkpoint after the group took quotes' partitions: %v; want it refused", err)
	}
}
