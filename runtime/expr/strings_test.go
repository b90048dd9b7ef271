package expr

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

// TestSplitPart: split_part finds the field strings.Split would give, from
// the start or the end, over random strings and delimiters, overlapping
// ones and the empty one among them.
func TestSplitPart(t *testing.T) {
	want := func(s, d string, k int64) string {
		parts := []string{s}
		if d != "" {
			parts = strings.Split(s, d)
		}
		if k < 0 {
			k = int64(len(parts)) + k + 1
		}
		if k < 1 || k > int64(len(parts)) {
			return ""
		}
		return parts[k-1]
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 50_000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = "ab/"[r.IntN(3)]
		}
		d := []string{"", "/", "a", "aa", "ab", "//", "aba"}[r.IntN(7)]
		k := r.Int64N(13) - 6
		if k == 0 {
			continue
		}
		got, err := splitPart(value.StringValue(string(b)), value.StringValue(d), value.IntValue(k))
		if err != nil || got.Str() != want(string(b), d, k) {
			t.Fatalf("split_part(%q, %q, %d) = %q, %v; want %q", b, d, k, got.Str(), err, want(string(b), d, k))
		}
	}
}
