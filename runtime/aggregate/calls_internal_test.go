package aggregate

import (
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

// TestNewCallsSets: the COUNT(DISTINCT) calls of one argument and type
// share a set whatever kind of call the argument's first is, sets hold at
// most 64 calls, and calls of other arguments or types have sets of their
// own.
func TestNewCallsSets(t *testing.T) {
	sum, _ := New(Sum, value.Int)
	ints, _ := New(CountDistinct, value.Int)
	strs, _ := New(CountDistinct, value.String)
	funcs := []Func{sum, ints, strs, ints, ints}
	same := []int{0, 0, 0, 0, 4} // call 2's argument is call 0's, of another type
	for range 70 {
		funcs, same = append(funcs, ints), append(same, 0)
	}
	c := NewCalls(funcs, same)
	var sizes []int
	for _, set := range c.sets {
		sizes = append(sizes, len(set))
	}
	want := []int{64, 1, 1, 8} // calls 1, 3 and 5-66; 2; 4; 67-74
	if len(sizes) != len(want) {
		t.Fatalf("sets of %v calls, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("sets of %v calls, want %v", sizes, want)
		}
	}
	if c.sets[0][1] != 3 || c.set[3] != 0 || c.bit[3] != 2 || c.set[67] != 3 || c.bit[67] != 1 {
		t.Errorf("call 3 in set %d as bit %#x, call 67 in set %d as bit %#x; want 0, 0x2 and 3, 0x1", c.set[3], c.bit[3], c.set[67], c.bit[67])
	}
}
