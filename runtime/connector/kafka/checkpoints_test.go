package kafka

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
)

// TestCheckpointStore saves checkpoints of 1 and of several chunks to a
// topic the store creates compacted, and reads back the newest; a write
// cut short (the chunks of one checkpoint half overwritten by the next)
// leaves the one before it to restore, and a new store, as after a
// restart, finds what the last one wrote.
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
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Errorf("the topic's cleanup.policy is %q; want compact", policy)
	}

	state := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rand.N(256))
		}
		return b
	}
	saved := map[uint64]*checkpoint.Checkpoint{}
	save := func(st *CheckpointStore, id uint64, size int) {
		c := &checkpoint.Checkpoint{ID: id, Fingerprint: "fp", Plan: "plan", Created: time.Now().UTC().Truncate(time.Microsecond),
			Partitions: []checkpoint.Partition{{Source: "t", Partition: 3, Offset: int64(id) * 10}}, State: state(size)}
		if err := st.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
		saved[id] = c
	}
	latest := func(st *CheckpointStore, want uint64) {
		t.Helper()
		c, err := st.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c == nil || c.ID != want || !bytes.Equal(c.Encode(), saved[want].Encode()) {
			t.Fatalf("latest: %v; want checkpoint %d as saved", c, want)
		}
	}
	save(st, 1, 100)
	latest(st, 1)
	save(st, 2, 3*checkpointChunk+17) // four chunks in slot 0
	latest(st, 2)
	save(st, 3, 10)
	save(st, 4, 50) // one chunk in slot 0: tombstones for the other three
	st = open()
	latest(st, 4)
	if st.slots != [2]int{1, 1} {
		t.Errorf("chunks left in the slots: %v; want the tombstones of checkpoint 2's last three", st.slots)
	}

	// A crash in the middle of checkpoint 6's write: slot 0 holds a first
	// chunk of 6 and the tombstones of 4, so 5 is restored.
	save(st, 5, 2*checkpointChunk)
	big := &checkpoint.Checkpoint{ID: 6, Fingerprint: "fp", State: state(2 * checkpointChunk)}
	b := big.Encode()
	v := append([]byte{6, 0, 3}, b[:checkpointChunk]...)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: chunkKey(0, 0), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	latest(open(), 5)

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
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: chunkKey(1, 0), Value: []byte{7, 0, 1, 'x'}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	latest(open(), 5)
}
