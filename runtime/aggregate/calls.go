package aggregate

import (
	"iter"
	"math/bits"

	"github.com/sluice-dev/sluice/runtime/value"
)

// maxShared is the most COUNT(DISTINCT) calls one set serves: a value's
// calls are the bits of a uint64.
const maxShared = 64

// Calls are the aggregate calls of one aggregation, applied together to a
// group's states, one State per call in order. The COUNT(DISTINCT) calls
// of one argument, each under its own FILTER (Nexmark q16 counts the
// distinct bidders of all bids and of three price ranges), keep one set of
// values, each value with a bit for every call that counted it: a row
// takes one lookup in the set for all of them, not one each, and a value
// is held once. Each call still counts its own values, in its own State.
type Calls struct {
	Funcs []Func
	// sets are the COUNT(DISTINCT) calls sharing each set: the first's
	// State holds the set, and sets[k][j] is its bit 1<<j. A call alone
	// is a set of one.
	sets [][]int
	// set and bit are, per COUNT(DISTINCT) call, the set it counts in and
	// its bit there.
	set []int
	bit []uint64
}

// NewCalls returns the calls funcs. same[i] is the first call whose
// argument is call i's apart from its FILTER (i itself if none is): the
// COUNT(DISTINCT) calls of one argument, and so of one type, share a set.
// same may be nil: then no set is shared.
func NewCalls(funcs []Func, same []int) Calls {
	c := Calls{Funcs: funcs, set: make([]int, len(funcs)), bit: make([]uint64, len(funcs))}
	type arg struct {
		first int // the first call of the argument
		typ   value.Type
	}
	setOf := map[arg]int{} // the set of the calls of one argument that takes more
	for i, f := range funcs {
		if f.Kind != CountDistinct {
			continue
		}
		a := arg{i, f.Arg}
		if same != nil {
			a.first = same[i]
		}
		k, ok := setOf[a]
		if !ok || len(c.sets[k]) == maxShared {
			k = len(c.sets)
			c.sets = append(c.sets, nil)
			setOf[a] = k
		}
		c.set[i], c.bit[i] = k, 1<<len(c.sets[k])
		c.sets[k] = append(c.sets[k], i)
	}
	return c
}

// Add folds the row of event time ts whose arguments are args, one per
// call, into states, as Func.Add does call by call. It stops at the first
// call that fails.
func (c *Calls) Add(states []State, args []value.Value, ts int64) error {
	for i := range c.Funcs {
		if c.Funcs[i].Kind == CountDistinct {
			continue
		}
		if err := c.Funcs[i].Add(&states[i], args[i], ts); err != nil {
			return err
		}
	}
	for _, set := range c.sets {
		// The calls' arguments are one value, or NULL where their FILTER
		// rejects the row: one key, and the bits of the calls that take it.
		// An argument that is not the same each time it is evaluated (a
		// random number) may give another key: it is added on its own.
		var key value.Value
		var calls uint64
		for j, i := range set {
			v := args[i]
			if v.IsNull() {
				continue
			}
			k := c.Funcs[i].key(v)
			if calls != 0 && k != key {
				count(states, set, key, calls)
				calls = 0
			}
			key, calls = k, calls|1<<j
		}
		if calls != 0 {
			count(states, set, key, calls)
		}
	}
	return nil
}

// count adds key to the set of the calls set, for those of them in calls,
// and counts it for each that had not counted it yet.
func count(states []State, set []int, key value.Value, calls uint64) {
	for fresh := states[set[0]].addDistinct(key, calls); fresh != 0; fresh &= fresh - 1 {
		states[set[bits.TrailingZeros64(fresh)]].n++
	}
}

// distinct returns the values call i, a COUNT(DISTINCT), counted: keys
// (Func.key).
func (c *Calls) distinct(states []State, i int) iter.Seq[value.Value] {
	return func(yield func(value.Value) bool) {
		s, bit := &states[c.sets[c.set[i]][0]], c.bit[i]
		for v, calls := range s.set {
			if calls&bit != 0 && !yield(v) {
				return
			}
		}
		for x, calls := range s.ints {
			if calls&bit != 0 && !yield(value.DecimalValue(x, 0)) {
				return
			}
		}
	}
}
