package nexmark

// javaRandom is java.util.Random: the Nexmark generators of Beam and Flink
// seed one with each event's id and draw the event's fields from it, in
// order, so the same arithmetic yields their events.
type javaRandom struct{ seed int64 }

const (
	javaMultiplier = 0x5DEECE66D
	javaMask       = 1<<48 - 1
)

func newJavaRandom(seed int64) javaRandom {
	return javaRandom{seed: (seed ^ javaMultiplier) & javaMask}
}

// next returns the next bits pseudorandom bits, as Java's next(bits).
func (r *javaRandom) next(bits uint) int32 {
	r.seed = (r.seed*javaMultiplier + 0xB) & javaMask
	return int32(r.seed >> (48 - bits))
}

// skip advances the generator n steps, as n calls of next would, in
// O(log n) steps: a step is the affine map x -> multiplier*x + 0xB
// modulo 2^48, and n of them compose by squaring. (The products wrap
// modulo 2^64, of which 2^48 is a divisor.)
func (r *javaRandom) skip(n int) {
	mul, add := int64(javaMultiplier), int64(0xB) // 2^i steps
	nMul, nAdd := int64(1), int64(0)              // the steps taken so far
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			nMul, nAdd = nMul*mul&javaMask, (nAdd*mul+add)&javaMask
		}
		mul, add = mul*mul&javaMask, (add*mul+add)&javaMask
	}
	r.seed = (r.seed*nMul + nAdd) & javaMask
}

// intN is Java's nextInt(bound), for bound > 0.
func (r *javaRandom) intN(bound int32) int32 {
	x := r.next(31)
	m := bound - 1
	if bound&m == 0 {
		return int32(int64(bound) * int64(x) >> 31)
	}
	// Java's rejection test, in its int arithmetic, which wraps.
	for u := x; ; u = r.next(31) {
		x = u % bound
		if u-x+m >= 0 {
			return x
		}
	}
}

// int64 is Java's nextLong().
func (r *javaRandom) int64() int64 {
	hi := int64(r.next(32))
	return hi<<32 + int64(r.next(32))
}

// float64 is Java's nextDouble().
func (r *javaRandom) float64() float64 {
	return float64(int64(r.next(26))<<27+int64(r.next(27))) * (1.0 / (1 << 53))
}

// letter is 'a' plus nextInt(26): the modulus is a constant, which the
// compiler turns into a multiplication, for the strings' many letters.
func (r *javaRandom) letter() byte {
	for {
		u := r.next(31)
		x := u % 26
		if u-x+25 >= 0 {
			return byte('a' + x)
		}
	}
}

// oneIn13 is nextInt(13) == 0, with the modulus a constant.
func (r *javaRandom) oneIn13() bool {
	for {
		u := r.next(31)
		x := u % 13
		if u-x+12 >= 0 {
			return x == 0
		}
	}
}
