package aggregate

import (
	"encoding/binary"
	"math"

	"github.com/sluice-dev/sluice/runtime/value"
)

// AppendState appends s's binary form to dst, for a checkpoint: every
// field, so that a state read back goes on exactly as s would, down to the
// compensated sums' rounding residue.
func AppendState(dst []byte, s *State) []byte {
	dst = binary.AppendVarint(dst, s.n)
	dst = binary.AppendVarint(dst, s.sum.hi)
	dst = binary.AppendUvarint(dst, s.sum.lo)
	for _, f := range [...]float64{s.fsum.hi, s.fsum.lo, s.mean, s.m2} {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	dst = binary.AppendVarint(dst, s.ts)
	dst = value.AppendBinary(dst, s.v)
	if s.set == nil {
		return binary.AppendUvarint(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.set))+1)
	for v := range s.set {
		dst = value.AppendBinary(dst, v)
	}
	return dst
}

// ReadState reads into s what AppendState wrote; r's error says whether it
// could.
func ReadState(r *value.Reader, s *State) {
	s.n = r.Varint()
	s.sum.hi = r.Varint()
	s.sum.lo = r.Uvarint()
	s.fsum.hi, s.fsum.lo, s.mean, s.m2 = r.Float64(), r.Float64(), r.Float64(), r.Float64()
	s.ts = r.Varint()
	s.v = r.Value()
	s.set = nil
	if n := r.Count(1); n > 0 {
		s.set = make(map[value.Value]struct{}, n-1)
		for range n - 1 {
			s.set[r.Value()] = struct{}{}
		}
	}
}
