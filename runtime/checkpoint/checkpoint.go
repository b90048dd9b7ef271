// Package checkpoint holds what a checkpoint of a stateful query is and
// where it is kept: the stateful stage's state (the operator's snapshot and
// the event time of every source partition) with, for each partition, the
// offset of the last record the state includes. A query restarted from a
// checkpoint restores the state and skips the records it already holds, so
// its results are those of a run that never stopped.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Checkpoint is the state of a query's stateful stage at one moment.
type Checkpoint struct {
	// ID numbers the query's checkpoints, from 1, across restarts.
	ID uint64
	// Fingerprint identifies the stateful part of the plan the state was
	// built by: a plan with another one cannot read it.
	Fingerprint string
	// Plan describes that part of the plan, for the message that refuses
	// an incompatible one.
	Plan string
	// Created is when the checkpoint was taken.
	Created time.Time
	// Partitions are the source partitions the state holds records of.
	Partitions []Partition
	// Watermark is the stage's watermark, in ns since the epoch.
	Watermark int64
	// State is the operator's snapshot (streamop.Snapshotter), which names
	// partitions by their index in Partitions, plus one.
	State []byte
	// SinkPosition is the length of the sink's output once the results
	// before the checkpoint were written, for a sink that can be cut back
	// to it (a file); -1 for none.
	SinkPosition int64
	// Delta says State holds only what changed since checkpoint ID-1
	// (streamop.IncrementalSnapshotter): restoring it takes that one's
	// state, and so on back to one that is whole.
	Delta bool
	// Epoch, for a checkpoint of one partition (PartitionStore), is the
	// partition's message.Origin.Epoch: of two checkpoints of the
	// partition with one ID, the one of the later epoch is its owner's.
	Epoch int64
	// Generation is the partition's message.Origin.Generation when the
	// checkpoint was taken, which tells a checkpoint of a partition since
	// taken away; it is not saved.
	Generation uint64
	// Round, of a statement that checkpoints at its set's transaction
	// rounds (connector.RoundTransaction), is the round it was taken at
	// the end of, whose commit the sink waits for; 0 for one taken
	// otherwise (a stop's). It is not saved.
	Round uint64
}

// Partition is a source partition's place in a checkpoint.
type Partition struct {
	Source    string
	Partition int32
	// Offset is the offset of the last record of the partition the state
	// includes; -1 when it includes none.
	Offset int64
	// MaxEventTime is the latest event time the partition sent (ns since
	// the epoch, math.MinInt64 before any); Ended says it ended.
	MaxEventTime int64
	Ended        bool
	// Upstream, for a partition of a repartition topic, is the offset of
	// the last row the state took of each upstream partition, ascending
	// by partition: rows an upstream engine writes again are told by it.
	Upstream []UpstreamOffset
	// ReaderState is what the partition's reader needs besides Offset to
	// read on from there (message.Header.ReaderState): for a partition of
	// a repartition topic, the upstream partitions' event-time progress
	// as of Offset, without which its next reader would wait for a mark
	// of each that may never come. nil for none.
	ReaderState []byte
}

// UpstreamOffset is the offset of the last row of one upstream partition.
type UpstreamOffset struct {
	// Source names the partition's source where the topic holds rows of
	// two (a join's); empty otherwise.
	Source    string
	Partition int32
	Offset    int64
}

// magic and version begin every encoded checkpoint.
var magic = []byte("SLUICECP")

// version 2 added SinkPosition, Delta and Epoch; a version 1 checkpoint
// reads with no position, whole. Version 3 added Partition.Upstream,
// version 4 UpstreamOffset.Source and version 5 Partition.ReaderState; a
// checkpoint is written in the earliest version that holds it, which
// engines of earlier versions can read (a rollback), except that a
// repartition topic's partition always has a reader state, so its
// checkpoints are version 5.
const version = 5

// ErrCorrupt is the error of a checkpoint whose bytes are not one: cut
// short, altered, or of another format.
var ErrCorrupt = errors.New("checkpoint corrupt")

// Encode returns the checkpoint's bytes, which end in their CRC-32C.
func (c *Checkpoint) Encode() []byte {
	head, tail := c.frame()
	b := make([]byte, 0, len(head)+len(c.State)+len(tail))
	return append(append(append(b, head...), c.State...), tail...)
}

// WriteTo writes the checkpoint's bytes, those of Encode, to w without
// copying the state.
func (c *Checkpoint) WriteTo(w io.Writer) (int64, error) {
	head, tail := c.frame()
	var n int64
	for _, b := range [][]byte{head, c.State, tail} {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// frame returns what comes before the state and after it, which ends in
// the checksum of the whole.
func (c *Checkpoint) frame() (head, tail []byte) {
	v := uint64(2)
	for _, p := range c.Partitions {
		for _, u := range p.Upstream {
			v = max(v, 3)
			if u.Source != "" {
				v = max(v, 4)
			}
		}
		if len(p.ReaderState) > 0 {
			v = 5
		}
	}
	head = append(head, magic...)
	head = binary.AppendUvarint(head, v)
	head = binary.AppendUvarint(head, c.ID)
	head = value.AppendBytes(head, c.Fingerprint)
	head = value.AppendBytes(head, c.Plan)
	head = binary.AppendVarint(head, c.Created.UnixNano())
	head = binary.AppendVarint(head, c.Watermark)
	head = binary.AppendUvarint(head, uint64(len(c.Partitions)))
	for _, p := range c.Partitions {
		head = value.AppendBytes(head, p.Source)
		head = binary.AppendVarint(head, int64(p.Partition))
		head = binary.AppendVarint(head, p.Offset)
		head = binary.AppendVarint(head, p.MaxEventTime)
		if p.Ended {
			head = append(head, 1)
		} else {
			head = append(head, 0)
		}
	}
	head = binary.AppendUvarint(head, uint64(len(c.State))) // value.AppendBytes's length
	tail = binary.AppendVarint(tail, c.SinkPosition)
	if c.Delta {
		tail = append(tail, 1)
	} else {
		tail = append(tail, 0)
	}
	tail = binary.AppendVarint(tail, c.Epoch)
	for _, p := range c.Partitions {
		if v < 3 {
			break
		}
		tail = binary.AppendUvarint(tail, uint64(len(p.Upstream)))
		for _, u := range p.Upstream {
			if v >= 4 {
				tail = value.AppendBytes(tail, u.Source)
			}
			tail = binary.AppendVarint(tail, int64(u.Partition))
			tail = binary.AppendVarint(tail, u.Offset)
		}
		if v >= 5 {
			tail = value.AppendBytes(tail, p.ReaderState)
		}
	}
	sum := crc32.Update(crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, c.State), castagnoli, tail)
	return head, binary.LittleEndian.AppendUint32(tail, sum)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decode reads a checkpoint Encode wrote.
func Decode(b []byte) (*Checkpoint, error) {
	if len(b) < len(magic)+4 || !bytes.Equal(b[:len(magic)], magic) {
		return nil, fmt.Errorf("%w: not a checkpoint", ErrCorrupt)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := value.NewReader(body[len(magic):])
	v := r.Uvarint()
	if (v < 1 || v > version) && r.Err() == nil {
		return nil, fmt.Errorf("checkpoint version %d; this engine reads versions 1 to %d", v, version)
	}
	c := &Checkpoint{ID: r.Uvarint(), Fingerprint: r.String(), Plan: r.String()}
	c.Created = time.Unix(0, r.Varint()).UTC()
	c.Watermark = r.Varint()
	for range r.Count(5) {
		c.Partitions = append(c.Partitions, Partition{
			Source: r.String(), Partition: int32(r.Varint()), Offset: r.Varint(), MaxEventTime: r.Varint(), Ended: r.Byte() == 1,
		})
	}
	c.State = bytes.Clone(r.Bytes())
	c.SinkPosition = -1
	if v >= 2 {
		c.SinkPosition = r.Varint()
		c.Delta = r.Byte() == 1
		c.Epoch = r.Varint()
	}
	if v >= 3 {
		for i := range c.Partitions {
			for range r.Count(2) {
				var u UpstreamOffset
				if v >= 4 {
					u.Source = r.String()
				}
				u.Partition, u.Offset = int32(r.Varint()), r.Varint()
				c.Partitions[i].Upstream = append(c.Partitions[i].Upstream, u)
			}
			if v >= 5 {
				if state := r.Bytes(); len(state) > 0 {
					c.Partitions[i].ReaderState = bytes.Clone(state)
				}
			}
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after its end", ErrCorrupt, r.Len())
	}
	return c, nil
}

// Chain is what restores a query's state: a whole checkpoint, then the
// deltas after it in order. The last one's partitions, watermark and sink
// position are those of the state.
type Chain []*Checkpoint

// Last returns the checkpoint the chain restores the state of.
func (ch Chain) Last() *Checkpoint { return ch[len(ch)-1] }

// NewestChain returns the chain of the newest checkpoint among ids
// (ascending) that can be restored: it and each checkpoint back to a whole
// one read back, with consecutive ids. load reads a checkpoint. The errors
// of those passed over are returned only when none can be restored.
func NewestChain(ids []uint64, load func(id uint64) (*Checkpoint, error)) (Chain, error) {
	type loaded struct {
		c   *Checkpoint
		err error
	}
	cache := map[uint64]loaded{}
	get := func(id uint64) (*Checkpoint, error) {
		l, ok := cache[id]
		if !ok {
			l.c, l.err = load(id)
			cache[id] = l
		}
		return l.c, l.err
	}
	var errs []error
	for end := len(ids) - 1; end >= 0; end-- {
		var chain Chain
		for i := end; ; i-- {
			c, err := get(ids[i])
			if err != nil {
				errs = append(errs, err)
				break
			}
			chain = append(chain, c)
			if !c.Delta {
				slices.Reverse(chain)
				return chain, nil
			}
			if i == 0 || ids[i-1] != ids[i]-1 {
				errs = append(errs, fmt.Errorf("checkpoint %d holds the changes since checkpoint %d, which is gone", c.ID, c.ID-1))
				break
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, nil
}
