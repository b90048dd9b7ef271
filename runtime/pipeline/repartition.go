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
	sides []seenSide
	parts map[*message.Origin]*seenOffsets
}

// seenSide is a source whose rows the topic holds: the one of an
// aggregate, or either of a join's, whose upstream partitions are apart.
type seenSide struct {
	source          string
	partCol, offCol int // the rows' _partition and _offset
}

type seenOffsets struct {
	gen uint64 // the partition's generation the offsets are of
	// last is by side, then by upstream partition, -1 for none: a row's
	// lookup is an index, not a hash.
	last [][]int64
}

// maxUpstreamPartitions bounds the partition numbers taken from rows.
const maxUpstreamPartitions = 1 << 16

// see notes the row of upstream partition p of side at off, and reports
// whether the state took it already.
func (s *seenOffsets) see(side int, p, off int64) (again bool) {
	if p < 0 || p >= maxUpstreamPartitions {
		return false // not a partition: the row is not the engine's
	}
	last := &s.last[side]
	for int64(len(*last)) <= p {
		*last = append(*last, -1)
	}
	if off <= (*last)[p] {
		return true
	}
	(*last)[p] = off
	return false
}

// newUpstreamSeen returns the tracker of rows of the given sources, by
// their columns.
func newUpstreamSeen(sources []string, inputs map[string][]value.Column) *upstreamSeen {
	u := &upstreamSeen{parts: map[*message.Origin]*seenOffsets{}}
	for _, source := range sources {
		cols := inputs[source]
		index := func(name string) int {
			return slices.IndexFunc(cols, func(c value.Column) bool { return c.Name == name })
		}
		u.sides = append(u.sides, seenSide{source: source, partCol: index("_partition"), offCol: index("_offset")})
	}
	return u
}

// side returns the index of source's side, or -1.
func (u *upstreamSeen) side(source string) int {
	return slices.IndexFunc(u.sides, func(s seenSide) bool { return s.source == source })
}

// of returns the offsets seen of partition o in generation gen: none in
// a generation not seen before, whose state starts over.
func (u *upstreamSeen) of(o *message.Origin, gen uint64) *seenOffsets {
	s := u.parts[o]
	if s == nil || s.gen != gen {
		s = &seenOffsets{gen: gen, last: make([][]int64, len(u.sides))}
		u.parts[o] = s
	}
	return s
}

// drop takes out of b the rows the state took already, and returns how
// many it took out.
func (u *upstreamSeen) drop(b *message.Batch) int {
	side := u.side(b.SourceName())
	if b.Origin == nil || side < 0 {
		return 0
	}
	cols := u.sides[side]
	if cols.partCol < 0 || cols.offCol < 0 {
		return 0
	}
	seen := u.of(b.Origin, b.Generation)
	kept := 0
	for i, row := range b.Rows {
		if seen.see(side, row[cols.partCol].Int(), row[cols.offCol].Int()) {
			continue
		}
		b.Rows[kept], b.Offsets[kept] = row, b.Offsets[i]
		kept++
	}
	dropped := len(b.Rows) - kept
	b.Rows, b.Offsets = b.Rows[:kept], b.Offsets[:kept]
	return dropped
}

// offsets returns the offsets seen of partition o, for its checkpoint: a
// join's name their side's source.
func (u *upstreamSeen) offsets(o *message.Origin) []checkpoint.UpstreamOffset {
	s := u.parts[o]
	if s == nil || s.gen != o.Generation.Load() {
		return nil
	}
	var out []checkpoint.UpstreamOffset
	for side, last := range s.last {
		source := ""
		if len(u.sides) > 1 {
			source = u.sides[side].source
		}
		for p, off := range last {
			if off >= 0 {
				out = append(out, checkpoint.UpstreamOffset{Source: source, Partition: int32(p), Offset: off})
			}
		}
	}
	return out
}

// restore sets the offsets seen of partition o from its checkpoint.
// Offsets of a source the query does not read are not its own: the
// checkpoint's plan, which names the sources, would have been refused.
func (u *upstreamSeen) restore(o *message.Origin, gen uint64, offsets []checkpoint.UpstreamOffset) {
	s := u.of(o, gen)
	for _, up := range offsets {
		side := 0
		if up.Source != "" {
			side = u.side(up.Source)
		}
		if side >= 0 {
			s.see(side, int64(up.Partition), up.Offset)
		}
	}
}
