package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/value"
)

// CheckpointStore is a checkpoint.Store in a compacted topic of one
// partition, <group>.checkpoints, so that a query on Kafka needs nothing
// else to keep its state.
//
// A checkpoint is cut into chunks a record can hold, keyed
// checkpoint/<slot>/<index>, the slot being the checkpoint's id modulo 2:
// a checkpoint overwrites the one before the last, never the last, so a
// crash in the middle of a write leaves the last whole. Each chunk says
// which checkpoint it belongs to and how many chunks it has; Latest takes
// the newest slot whose chunks are all there and agree. Compaction keeps
// the newest record of each key, so the topic holds two checkpoints.
//
// Written with an exactly-once source's client, the chunks are in the
// transaction of the results and offsets, and become visible with them;
// Latest reads only committed records.
type CheckpointStore struct {
	cl      *kgo.Client
	own     bool // the client is the store's, not a source's
	topic   string
	chunk   int          // the most state bytes a record carries
	clients []kgo.Opt    // what a reading client needs: brokers, security
	slots   [2]int       // chunks of each slot's checkpoint, for the tombstones of a shorter one
	log     *slog.Logger // nil: discard
}

// checkpointChunk is the most bytes of a checkpoint a record carries, well
// within Kafka's default max.message.bytes (1 MB).
const checkpointChunk = 512 << 10

// CheckpointTopic names the topic of a group's checkpoints.
func CheckpointTopic(group string) string { return group + ".checkpoints" }

func openCheckpointStore(env connector.StateStoreEnv) (checkpoint.Store, error) {
	txn, err := joined(env.Transaction)
	if err != nil {
		return nil, fmt.Errorf("spec.state: %w", err)
	}
	src := env.Source.Kafka
	clients, err := ClientOptions(src.Brokers, &src.KafkaSecurity)
	if err != nil {
		return nil, fmt.Errorf("spec.state: %w", err)
	}
	return OpenCheckpointStore(CheckpointTopic(groupOf(env.Source, env.Group)), clients, txn, env.Logger)
}

// OpenCheckpointStore opens the store in topic, creating it (compacted, one
// partition, the brokers' replication factor) if it does not exist. clients
// reach the brokers. With txn, an exactly-once source, checkpoints are
// written in its transaction.
func OpenCheckpointStore(topic string, clients []kgo.Opt, txn *Source, log *slog.Logger) (*CheckpointStore, error) {
	st := &CheckpointStore{topic: topic, chunk: checkpointChunk, clients: clients, log: log}
	if txn != nil {
		st.cl = txn.cl
		if most := int(txn.maxRecordBytes) - 1024; most < st.chunk {
			st.chunk = max(most, 256)
		}
	} else {
		cl, err := kgo.NewClient(append(producerOptions(nil), clients...)...)
		if err != nil {
			return nil, fmt.Errorf("spec.state: kafka client: %w", err)
		}
		st.cl, st.own = cl, true
	}
	if err := st.createTopic(); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func (st *CheckpointStore) createTopic() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	compact := "compact"
	resp, err := kadm.NewClient(st.cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, st.topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		if st.log != nil {
			st.log.Info("created the checkpoint topic", "component", "kafka", "topic", st.topic)
		}
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		return fmt.Errorf("spec.state: creating the checkpoint topic %s: %w", st.topic, err)
	}
	return nil
}

// Describe implements checkpoint.Store.
func (st *CheckpointStore) Describe() string { return "Kafka topic " + st.topic }

// Close implements checkpoint.Store: it closes the store's own client.
func (st *CheckpointStore) Close() error {
	if st.own {
		st.cl.Close()
	}
	return nil
}

func chunkKey(slot, index int) []byte {
	return []byte("checkpoint/" + strconv.Itoa(slot) + "/" + strconv.Itoa(index))
}

// Save implements checkpoint.Store: once it returns, the chunks are on the
// brokers (acks=all); in a transaction, they are visible once it commits.
func (st *CheckpointStore) Save(ctx context.Context, c *checkpoint.Checkpoint) error {
	b := c.Encode()
	slot := int(c.ID % 2)
	n := (len(b) + st.chunk - 1) / st.chunk
	recs := make([]*kgo.Record, 0, max(n, st.slots[slot]))
	for i := range n {
		v := binary.AppendUvarint(nil, c.ID)
		v = binary.AppendUvarint(v, uint64(i))
		v = binary.AppendUvarint(v, uint64(n))
		v = append(v, b[i*st.chunk:min((i+1)*st.chunk, len(b))]...)
		recs = append(recs, &kgo.Record{Topic: st.topic, Partition: 0, Key: chunkKey(slot, i), Value: v})
	}
	for i := n; i < st.slots[slot]; i++ {
		// A tombstone, so that compaction drops the longer checkpoint's rest.
		recs = append(recs, &kgo.Record{Topic: st.topic, Partition: 0, Key: chunkKey(slot, i)})
	}
	if err := st.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing to %s: %w", st.topic, err)
	}
	st.slots[slot] = n
	return nil
}

// Latest implements checkpoint.Store. It reads the topic's committed
// records to their end and returns the newest whole checkpoint.
func (st *CheckpointStore) Latest(ctx context.Context) (*checkpoint.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(st.cl).ListCommittedOffsets(ctx, st.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end of %s: %w", st.topic, err)
	}
	end, _ := ends.Lookup(st.topic, 0)
	if end.Offset <= 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(st.clients,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{st.topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The commit markers count: the last record before the end may be
		// one.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: kafka client: %w", st.topic, err)
	}
	defer cl.Close()
	chunks := map[string][]byte{}
	for next := int64(0); next < end.Offset; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: reached offset %d of %d: %w", st.topic, next, end.Offset, ctx.Err())
		}
		if err := fetches.Err0(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", st.topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			next = max(next, r.Offset+1)
			switch {
			case r.Attrs.IsControl():
			case r.Value == nil:
				delete(chunks, string(r.Key))
			default:
				chunks[string(r.Key)] = r.Value
			}
		})
	}
	return st.assemble(chunks)
}

// assemble returns the newest checkpoint whose chunks are all in chunks,
// noting how many chunks each slot holds.
func (st *CheckpointStore) assemble(chunks map[string][]byte) (*checkpoint.Checkpoint, error) {
	for key := range chunks {
		var slot, index int
		if _, err := fmt.Sscanf(key, "checkpoint/%d/%d", &slot, &index); err == nil && slot >= 0 && slot < 2 {
			st.slots[slot] = max(st.slots[slot], index+1)
		}
	}
	var best *checkpoint.Checkpoint
	var errs []error
	for slot := range 2 {
		c, err := readSlot(chunks, slot)
		if err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", slot, err))
			continue
		}
		if c != nil && (best == nil || c.ID > best.ID) {
			best = c
		}
	}
	if best == nil && len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", st.topic, errors.Join(errs...))
	}
	if best != nil && len(errs) > 0 && st.log != nil {
		// A write cut short by a crash leaves its slot incomplete.
		st.log.Warn("passed over an incomplete checkpoint", "component", "kafka", "topic", st.topic, "restoring", best.ID, "error", errors.Join(errs...))
	}
	return best, nil
}

// readSlot decodes the checkpoint of a slot; nil if the slot is empty.
func readSlot(chunks map[string][]byte, slot int) (*checkpoint.Checkpoint, error) {
	var b []byte
	var id uint64
	for i, n := 0, 1; i < n; i++ {
		v, ok := chunks[string(chunkKey(slot, i))]
		if !ok {
			if i == 0 {
				return nil, nil
			}
			return nil, fmt.Errorf("checkpoint %d: chunk %d of %d is missing", id, i, n)
		}
		r := value.NewReader(v)
		cid, index, count := r.Uvarint(), r.Uvarint(), r.Uvarint()
		if r.Err() != nil || index != uint64(i) || count == 0 || count > 1<<20 {
			return nil, fmt.Errorf("%w: chunk %d's header", checkpoint.ErrCorrupt, i)
		}
		if i == 0 {
			id, n = cid, int(count)
		} else if cid != id || int(count) != n {
			return nil, fmt.Errorf("checkpoint %d: chunk %d belongs to checkpoint %d", id, i, cid)
		}
		b = append(b, v[len(v)-r.Len():]...)
	}
	return checkpoint.Decode(b)
}
