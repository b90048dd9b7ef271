package kafka

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
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
// checkpoint/<id>/<index>; each chunk says which checkpoint it belongs to,
// how many chunks it has and whether it is a delta. Latest reads the topic
// and returns the newest checkpoint whose chunks, and those of the
// checkpoints back to a whole one, are all there: a write cut short by a
// crash leaves the one before. Like a directory, the store keeps the chains
// of the newest two whole checkpoints; older ones get tombstones, which
// compaction removes with the records they cover.
//
// Written with an exactly-once source's client, the chunks are in the
// transaction of the results and offsets, and become visible with them;
// Latest reads only committed records.
type CheckpointStore struct {
	cl      *kgo.Client
	own     bool // the client is the store's, not a source's
	topic   string
	chunk   int       // the most state bytes a record carries
	clients []kgo.Opt // what a reading client needs: brokers, security
	// stored are the checkpoints in the topic, by id, for the tombstones;
	// partitions those of single partitions, by partition and checkpoint,
	// with their chunks.
	stored  map[uint64]storedCheckpoint
	highest uint64 // the highest ID in the topic at the last Latest
	// mu guards partitions: the saver saves checkpoints of partitions
	// while the stateful stage restores others.
	mu         sync.Mutex
	partitions map[string]map[partitionCheckpoint]int
	log        *slog.Logger // nil: discard
}

// storedCheckpoint is a checkpoint's place in the topic.
type storedCheckpoint struct {
	chunks int
	delta  bool
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
	topic := CheckpointTopic(groupOf(env.Source, env.Group))
	if env.Statement != "" {
		topic += "." + env.Statement
	}
	return OpenCheckpointStore(topic, clients, txn, env.Logger)
}

// OpenCheckpointStore opens the store in topic, creating it (compacted, one
// partition, the brokers' replication factor) if it does not exist. clients
// reach the brokers. With txn, an exactly-once source, checkpoints are
// written in its transaction.
func OpenCheckpointStore(topic string, clients []kgo.Opt, txn *Source, log *slog.Logger) (*CheckpointStore, error) {
	st := &CheckpointStore{topic: topic, chunk: checkpointChunk, clients: clients, stored: map[uint64]storedCheckpoint{}, partitions: map[string]map[partitionCheckpoint]int{}, log: log}
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

// checkpointTopicConfigs bound how much of the checkpoint topic a restore
// reads: its records are compacted once a segment rolls, which by Kafka's
// defaults (1 GiB, 7 days) could keep gigabytes of old checkpoints to read
// through at every start and every partition taken over. Segments roll at
// 64 MiB or 10 minutes, and a rolled one is compacted within 10 minutes,
// or as soon as a tenth of the log is stale.
var checkpointTopicConfigs = map[string]string{
	"cleanup.policy":            "compact",
	"segment.bytes":             strconv.Itoa(64 << 20),
	"segment.ms":                "600000",
	"max.compaction.lag.ms":     "600000",
	"min.cleanable.dirty.ratio": "0.1",
}

// basicTopicConfigs are those of checkpointTopicConfigs that a broker
// without the log cleaner's settings (a test broker, some Kafka-compatible
// ones) takes.
var basicTopicConfigs = []string{"cleanup.policy", "segment.bytes", "segment.ms"}

func (st *CheckpointStore) createTopic() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, refused, err := createTopic(ctx, st.cl, st.topic, 1, checkpointTopicConfigs, basicTopicConfigs)
	if err != nil {
		return fmt.Errorf("spec.state: creating the checkpoint topic %s: %w", st.topic, err)
	}
	if st.log != nil && refused != nil {
		st.log.Warn("the brokers refused the log cleaner's settings of the checkpoint topic; created without them, its stale checkpoints are compacted as the brokers' defaults say", "component", "kafka", "topic", st.topic, "error", refused)
	}
	if st.log != nil && created {
		st.log.Info("created the checkpoint topic", "component", "kafka", "topic", st.topic)
	}
	return nil
}

// createTopic creates topic with partitions and configs, unless it exists
// (created is false then). Brokers that refuse some of the configs
// (InvalidConfig, PolicyViolation: a test broker, some Kafka-compatible
// ones) get the topic with those named in basic only, and refused is why.
func createTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, configs map[string]string, basic []string) (created bool, refused, err error) {
	create := func(names []string) error {
		cfg := map[string]*string{}
		for name, v := range configs {
			if names == nil || slices.Contains(names, name) {
				cfg[name] = &v
			}
		}
		resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		return err
	}
	err = create(nil)
	if errors.Is(err, kerr.InvalidConfig) || errors.Is(err, kerr.PolicyViolation) {
		refused = err
		err = create(basic)
	}
	switch {
	case err == nil:
		return true, refused, nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, refused, nil
	}
	return false, refused, err
}

// Highest implements checkpoint.Store.
func (st *CheckpointStore) Highest() uint64 { return st.highest }

// Describe implements checkpoint.Store.
func (st *CheckpointStore) Describe() string { return "Kafka topic " + st.topic }

// Close implements checkpoint.Store: it closes the store's own client.
func (st *CheckpointStore) Close() error {
	if st.own {
		st.cl.Close()
	}
	return nil
}

func chunkKey(id uint64, index int) []byte {
	return []byte("checkpoint/" + strconv.FormatUint(id, 10) + "/" + strconv.Itoa(index))
}

// Save implements checkpoint.Store: once it returns, the chunks are on the
// brokers (acks=all); in a transaction, they are visible once it commits.
func (st *CheckpointStore) Save(ctx context.Context, c *checkpoint.Checkpoint) error {
	recs := st.records(c, func(i int) []byte { return chunkKey(c.ID, i) })
	n := len(recs)
	st.stored[c.ID] = storedCheckpoint{chunks: n, delta: c.Delta}
	if !c.Delta {
		// Tombstones for the checkpoints before the chain of the whole
		// checkpoint before this one.
		var whole []uint64
		for id, s := range st.stored {
			if !s.delta {
				whole = append(whole, id)
			}
		}
		slices.Sort(whole)
		if len(whole) > 2 {
			for id, s := range st.stored {
				if id >= whole[len(whole)-2] {
					continue
				}
				for i := range s.chunks {
					recs = append(recs, &kgo.Record{Topic: st.topic, Partition: 0, Key: chunkKey(id, i)})
				}
				delete(st.stored, id)
			}
		}
	}
	if err := st.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing to %s: %w", st.topic, err)
	}
	return nil
}

// records cuts c into records of chunks, keyed by keyOf(chunk).
func (st *CheckpointStore) records(c *checkpoint.Checkpoint, keyOf func(int) []byte) []*kgo.Record {
	b := c.Encode()
	n := (len(b) + st.chunk - 1) / st.chunk
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		v := binary.AppendUvarint(nil, c.ID)
		v = binary.AppendUvarint(v, uint64(i))
		v = binary.AppendUvarint(v, uint64(n))
		if c.Delta {
			v = append(v, 1)
		} else {
			v = append(v, 0)
		}
		v = append(v, b[i*st.chunk:min((i+1)*st.chunk, len(b))]...)
		recs = append(recs, &kgo.Record{Topic: st.topic, Partition: 0, Key: keyOf(i), Value: v})
	}
	return recs
}

// Latest implements checkpoint.Store. It reads the topic's committed
// records to their end and returns the newest chain that is whole.
func (st *CheckpointStore) Latest(ctx context.Context) (checkpoint.Chain, error) {
	values, err := st.read(ctx, false)
	if err != nil || values == nil {
		return nil, err
	}
	return st.chain(values)
}

// read returns the latest value of each key of the topic's committed
// records, nil for an empty topic. With settled, it first waits until
// every transaction open when it began has ended: on several engines,
// exactly-once, each engine writes its partitions' checkpoints in
// transactions of its own, and one still open holds back the end a reader
// of committed records reaches, which a partition's checkpoint committed
// after it would then be beyond; the one open may also be a former
// owner's, whose commit or abort decides the partition's state. (One
// engine, the only writer, need not wait for its crashed predecessor's,
// which only aborts.)
func (st *CheckpointStore) read(ctx context.Context, settled bool) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	end, err := st.stableEnd(ctx, settled)
	if err != nil {
		return nil, err
	}
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
	values := map[string][]byte{}
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
				delete(values, string(r.Key))
			default:
				values[string(r.Key)] = r.Value
			}
		})
	}
	return values, nil
}

// stableEnd returns the topic's end for a reader of committed records;
// with settled, once it has reached the end of all its records as of the
// call.
func (st *CheckpointStore) stableEnd(ctx context.Context, settled bool) (kadm.ListedOffset, error) {
	adm := kadm.NewClient(st.cl)
	list := func(what string, f func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffset, error) {
		ends, err := f(ctx, st.topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return kadm.ListedOffset{}, fmt.Errorf("listing the %s of %s: %w", what, st.topic, err)
		}
		end, _ := ends.Lookup(st.topic, 0)
		return end, nil
	}
	var all kadm.ListedOffset
	if settled {
		var err error
		if all, err = list("end", adm.ListEndOffsets); err != nil {
			return all, err
		}
	}
	for {
		stable, err := list("last stable offset", adm.ListCommittedOffsets)
		if err != nil || stable.Offset >= all.Offset {
			return stable, err
		}
		select {
		case <-ctx.Done():
			return stable, fmt.Errorf("reading %s: a transaction open at offset %d did not end: %w", st.topic, stable.Offset, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// chunk is a record of a checkpoint.
type chunk struct {
	index, count int
	data         []byte
}

// chain returns the newest whole chain of the checkpoints values holds, by
// key, and notes which are stored.
func (st *CheckpointStore) chain(values map[string][]byte) (checkpoint.Chain, error) {
	chunks := map[uint64][]chunk{}
	for key, v := range values {
		var id uint64
		var index int
		if _, err := fmt.Sscanf(key, "checkpoint/%d/%d", &id, &index); err != nil {
			continue
		}
		r := value.NewReader(v)
		cid, i, n, delta := r.Uvarint(), r.Uvarint(), r.Uvarint(), r.Byte() == 1
		if r.Err() != nil || cid != id || i != uint64(index) || n == 0 || n > 1<<20 {
			chunks[id] = append(chunks[id], chunk{index: -1}) // unreadable: the checkpoint is
			continue
		}
		chunks[id] = append(chunks[id], chunk{index: index, count: int(n), data: v[len(v)-r.Len():]})
		st.stored[id] = storedCheckpoint{chunks: max(st.stored[id].chunks, index+1), delta: delta}
	}
	ids := make([]uint64, 0, len(chunks))
	for id, cs := range chunks {
		st.highest = max(st.highest, id)
		if !cutShort(cs) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	chain, err := checkpoint.NewestChain(ids, func(id uint64) (*checkpoint.Checkpoint, error) {
		c, err := assemble(id, chunks[id])
		if err == nil && c.Delta != st.stored[id].delta {
			err = fmt.Errorf("checkpoint %d: %w: its chunks say it is not a delta", id, checkpoint.ErrCorrupt)
		}
		return c, err
	})
	if err != nil && chain == nil {
		return nil, fmt.Errorf("%s: %w", st.topic, err)
	}
	return chain, nil
}

// partitionKey is the key of a chunk of a partition's checkpoint.
func partitionKey(source string, partition int32, id uint64, epoch int64, index int) []byte {
	return fmt.Appendf(nil, "partition/%s/%d/%d/%d/%d", source, partition, id, epoch, index)
}

// partitionCheckpoint names a checkpoint of a partition in the topic.
type partitionCheckpoint struct {
	id    uint64
	epoch int64
}

// SavePartition implements checkpoint.PartitionStore. The checkpoints of
// the partition before the one before c get tombstones.
func (st *CheckpointStore) SavePartition(ctx context.Context, c *checkpoint.Checkpoint) error {
	part := c.Partitions[0]
	recs := st.records(c, func(i int) []byte { return partitionKey(part.Source, part.Partition, c.ID, c.Epoch, i) })
	scope := fmt.Sprintf("%s/%d", part.Source, part.Partition)
	st.mu.Lock()
	known := st.partitions[scope]
	if known == nil {
		known = map[partitionCheckpoint]int{}
		st.partitions[scope] = known
	}
	known[partitionCheckpoint{c.ID, c.Epoch}] = len(recs)
	for pc, chunks := range known {
		if pc.id+1 < c.ID {
			for i := range chunks {
				recs = append(recs, &kgo.Record{Topic: st.topic, Partition: 0, Key: partitionKey(part.Source, part.Partition, pc.id, pc.epoch, i)})
			}
			delete(known, pc)
		}
	}
	st.mu.Unlock()
	if err := st.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing to %s: %w", st.topic, err)
	}
	return nil
}

// LatestPartition implements checkpoint.PartitionStore.
func (st *CheckpointStore) LatestPartition(ctx context.Context, source string, partition int32) (*checkpoint.Checkpoint, error) {
	values, err := st.read(ctx, true)
	if err != nil || values == nil {
		return nil, err
	}
	scope := fmt.Sprintf("%s/%d", source, partition)
	chunks := partitionChunks(values)[scope]
	known := map[partitionCheckpoint]int{}
	order := make([]partitionCheckpoint, 0, len(chunks))
	for pc, cs := range chunks {
		if !cutShort(cs) {
			order = append(order, pc)
		}
		known[pc] = len(cs)
	}
	st.mu.Lock()
	st.partitions[scope] = known
	st.mu.Unlock()
	slices.SortFunc(order, func(a, b partitionCheckpoint) int {
		if a.id != b.id {
			return cmp.Compare(b.id, a.id)
		}
		return cmp.Compare(b.epoch, a.epoch)
	})
	var errs []error
	for _, pc := range order {
		c, err := assemble(pc.id, chunks[pc])
		if err == nil && c.Epoch != pc.epoch {
			err = fmt.Errorf("%w: its key says epoch %d", checkpoint.ErrCorrupt, pc.epoch)
		}
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s, partition %s: %w", st.topic, scope, errors.Join(errs...))
	}
	return nil, nil
}

// NewestPartition implements checkpoint.PartitionStore: of the newest
// readable checkpoint of each partition, the latest taken.
func (st *CheckpointStore) NewestPartition(ctx context.Context) (time.Time, bool, error) {
	values, err := st.read(ctx, true)
	if err != nil || values == nil {
		return time.Time{}, false, err
	}
	var newest time.Time
	found := false
	for _, chunks := range partitionChunks(values) {
		for pc, cs := range chunks {
			if cutShort(cs) {
				continue
			}
			if c, err := assemble(pc.id, cs); err == nil && (!found || c.Created.After(newest)) {
				newest, found = c.Created, true
			}
		}
	}
	return newest, found, nil
}

// partitionChunks returns the chunks of the partitions' checkpoints
// values holds, by the partition's scope ("source/partition") and
// checkpoint; an unreadable chunk has index -1.
func partitionChunks(values map[string][]byte) map[string]map[partitionCheckpoint][]chunk {
	scopes := map[string]map[partitionCheckpoint][]chunk{}
	for key, v := range values {
		rest, ok := strings.CutPrefix(key, "partition/")
		if !ok {
			continue
		}
		// The source's name may hold slashes: the four numbers are last.
		fields := strings.Split(rest, "/")
		if len(fields) < 5 {
			continue
		}
		at := len(fields) - 4
		scope := strings.Join(fields[:at+1], "/")
		var pc partitionCheckpoint
		var index int
		if _, err := fmt.Sscanf(strings.Join(fields[at+1:], "/"), "%d/%d/%d", &pc.id, &pc.epoch, &index); err != nil {
			continue
		}
		chunks := scopes[scope]
		if chunks == nil {
			chunks = map[partitionCheckpoint][]chunk{}
			scopes[scope] = chunks
		}
		r := value.NewReader(v)
		cid, i, n, _ := r.Uvarint(), r.Uvarint(), r.Uvarint(), r.Byte()
		if r.Err() != nil || cid != pc.id || i != uint64(index) || n == 0 || n > 1<<20 {
			chunks[pc] = append(chunks[pc], chunk{index: -1})
			continue
		}
		chunks[pc] = append(chunks[pc], chunk{index: index, count: int(n), data: v[len(v)-r.Len():]})
	}
	return scopes
}

// cutShort reports whether a checkpoint's chunks are those of a write a
// crash cut short: each readable and saying how many there are, but fewer
// than that. It was never acknowledged, so it is as if it were not there;
// a chunk unreadable or contradicting the others is damage, and an error.
func cutShort(cs []chunk) bool {
	for _, c := range cs {
		if c.index < 0 || c.count != cs[0].count {
			return false
		}
	}
	return len(cs) > 0 && len(cs) < cs[0].count
}

// assemble decodes checkpoint id from its chunks, which must all be there.
func assemble(id uint64, cs []chunk) (*checkpoint.Checkpoint, error) {
	slices.SortFunc(cs, func(a, b chunk) int { return a.index - b.index })
	var b []byte
	for i, c := range cs {
		if c.index != i || c.count != len(cs) {
			return nil, fmt.Errorf("checkpoint %d: %d of its chunks are readable, in order, of %d", id, i, cs[0].count)
		}
		b = append(b, c.data...)
	}
	c, err := checkpoint.Decode(b)
	if err == nil && c.ID != id {
		err = fmt.Errorf("%w: its chunks say checkpoint %d", checkpoint.ErrCorrupt, id)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", id, err)
	}
	return c, nil
}
