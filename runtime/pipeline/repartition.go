package pipeline

import (
	"slices"

	"github.com/sluice-dev/sluice/runtime/checkpoint"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// upstreamSeen is, for each partition of a repartition topic this stage
// reads, the offset of the last row of each upstream partition its state
// took. An upstream engine that stopped without committing (a crash) has
// its rows since its last commit written again by the partition's next
// owner, after the first copies: those rows, at or before the offset seen,
// are dropped, as a restored state drops the records it holds.
type upstreamSeen struct {
	partCol, offCol int // the rows' _partition and _offset
	parts           map[*message.Origin]*seenOffsets
}

type seenOffsets struct {
	gen uint64 // the partition's generation the offsets are of
	// last is by upstream partition, -1 for none: a row's lookup is an
	// index, not a hash.
	last []int64
}

// maxUpstreamPartitions bounds the partition numbers taken from rows.
const maxUpstreamPartitions = 1 << 16

// see notes the row of upstream partition p at off, and reports whether
// the state took it already.
func (s *seenOffsets) see(p, off int64) (again bool) {
	if p < 0 || p >= maxUpstreamPartitions {
		return false // not a partition: the row is not the engine's
	}
	for int64(len(s.last)) <= p {
		s.last = append(s.last, -1)
	}
	if off <= s.last[p] {
		return true
	}
	s.last[p] = off
	return false
}

// newUpstreamSeen returns the tracker of rows of the given columns.
func newUpstreamSeen(cols []value.Column) *upstreamSeen {
	index := func(name string) int {
		return slices.IndexFunc(cols, func(c value.Column) bool { return c.Name == name })
	}
	return &upstreamSeen{partCol: index("_partition"), offCol: index("_offset"), parts: map[*message.Origin]*seenOffsets{}}
}

// of returns the offsets seen of partition o in generation gen: none in
// a generation not seen before, whose state starts over.
func (u *upstreamSeen) of(o *message.Origin, gen uint64) *seenOffsets {
	s := u.parts[o]
	if s == nil || s.gen != gen {
		s = &seenOffsets{gen: gen}
		u.parts[o] = s
	}
	return s
}

// drop takes out of b the rows the state took already, and returns how
// many it took out.
func (u *upstreamSeen) drop(b *message.Batch) int {
	if b.Origin == nil || u.partCol < 0 || u.offCol < 0 {
		return 0
	}
	seen := u.of(b.Origin, b.Generation)
	kept := 0
	for i, row := range b.Rows {
		if seen.see(row[u.partCol].Int(), row[u.offCol].Int()) {
			continue
		}
		b.Rows[kept], b.Offsets[kept] = row, b.Offsets[i]
		kept++
	}
	dropped := len(b.Rows) - kept
	b.Rows, b.Offsets = b.Rows[:kept], b.Offsets[:kept]
	return dropped
}

// offsets returns the offsets seen of partition o, for its checkpoint.
func (u *upstreamSeen) offsets(o *message.Origin) []checkpoint.UpstreamOffset {
	s := u.parts[o]
	if s == nil || s.gen != o.Generation.Load() {
		return nil
	}
	var out []checkpoint.UpstreamOffset
	for p, off := range s.last {
		if off >= 0 {
			out = append(out, checkpoint.UpstreamOffset{Partition: int32(p), Offset: off})
		}
	}
	return out
}

// restore sets the offsets seen of partition o from its checkpoint.
func (u *upstreamSeen) restore(o *message.Origin, gen uint64, offsets []checkpoint.UpstreamOffset) {
	s := u.of(o, gen)
	for _, up := range offsets {
		s.see(int64(up.Partition), up.Offset)
	}
}
