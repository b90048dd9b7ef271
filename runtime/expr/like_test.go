package expr

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// likeRegexp is LIKE's meaning as a regular expression: the reference the
// matcher is checked against.
func likeRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		case '%':
			b.WriteString(`(?s:.*)`)
		case '_':
			b.WriteString(`(?s:.)`)
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// TestLikeMatchesReference: on random patterns and strings, including
// multi-byte characters, the matcher agrees with the regular expression.
func TestLikeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(alphabet []string, n int) string {
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20_000 {
		p := pick([]string{"a", "b", "é", "%", "_", `\`, `\%`}, 8)
		s := pick([]string{"a", "b", "é", "%", "_"}, 10)
		want := likeRegexp(p).MatchString(s)
		if got := compileLike(p).match(s); got != want {
			t.Fatalf("%q LIKE %q = %v; want %v", s, p, got, want)
		}
	}
}

// TestLikeIsNotExponential: a pattern of many %s against a string that
// almost matches takes len(s) × len(pattern) steps, not exponentially many
// (a recursive matcher takes about 10^12 here and never returns).
func TestLikeIsNotExponential(t *testing.T) {
	s := strings.Repeat("a", 100)
	p := compileLike(strings.Repeat("%a", 12) + "%b")
	if p.match(s) {
		t.Errorf("%q LIKE %q = true; want false", s, "%a…%b")
	}
	if !compileLike(strings.Repeat("%a", 12) + "%").match(s) {
		t.Errorf("%q LIKE %q = false; want true", s, "%a…%")
	}
}
