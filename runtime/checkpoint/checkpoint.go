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
}

// magic and version begin every encoded checkpoint.
var magic = []byte("SLUICECP")

// version 2 added SinkPosition; a version 1 checkpoint reads with none.
const version = 2

// ErrCorrupt is the error of a checkpoint whose bytes are not one: cut
// short, altered, or of another format.
var ErrCorrupt = errors.New("checkpoint corrupt")

// Encode returns the checkpoint's bytes, which end in their CRC-32C.
func (c *Checkpoint) Encode() []byte {
	b := append([]byte{}, magic...)
	b = binary.AppendUvarint(b, version)
	b = binary.AppendUvarint(b, c.ID)
	b = value.AppendBytes(b, c.Fingerprint)
	b = value.AppendBytes(b, c.Plan)
	b = binary.AppendVarint(b, c.Created.UnixNano())
	b = binary.AppendVarint(b, c.Watermark)
	b = binary.AppendUvarint(b, uint64(len(c.Partitions)))
	for _, p := range c.Partitions {
		b = value.AppendBytes(b, p.Source)
		b = binary.AppendVarint(b, int64(p.Partition))
		b = binary.AppendVarint(b, p.Offset)
		b = binary.AppendVarint(b, p.MaxEventTime)
		if p.Ended {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = value.AppendBytes(b, c.State)
	b = binary.AppendVarint(b, c.SinkPosition)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
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
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after its end", ErrCorrupt, r.Len())
	}
	return c, nil
}
