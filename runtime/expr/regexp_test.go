package expr

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

// TestRequiredLiteral: the literal a pattern's every match contains, which
// lets a string without it skip the matcher.
func TestRequiredLiteral(t *testing.T) {
	for src, want := range map[string]string{
		`(&|^)channel_id=([^&]*)`: "channel_id=",
		`abc`:                     "abc",
		`a.c`:                     "a", // the longest of a, c: the first
		`x(hello)+y`:              "hello",
		`(hello)*y`:               "y",
		`(?i)abc`:                 "",
		`ab|cd`:                   "",
		`(ab){2,3}z`:              "ab",
		`[a-z]+`:                  "",
		`^$`:                      "",
	} {
		tree, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := requiredLiteral(tree.Simplify()); got != want {
			t.Errorf("requiredLiteral(%q) = %q; want %q", src, got, want)
		}
	}
}

// TestLiteralPrefilter: with the prefilter, every pattern matches exactly
// the strings it matches without, over random strings of a small alphabet.
func TestLiteralPrefilter(t *testing.T) {
	patterns := []string{`(&|^)ab=([^&]*)`, `a(b|c)+d`, `(ab){2}`, `x?ab`, `^ab$`, `b+a`, `(?i)AB`, `a|ab`}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, src := range patterns {
		p, err := compilePattern("test", NewConst(value.StringValue(src)), 0)
		if err != nil {
			t.Fatal(err)
		}
		plain := regexp.MustCompile(src)
		for range 2000 {
			b := make([]byte, rng.IntN(12))
			for i := range b {
				b[i] = "ab=&cdx"[rng.IntN(7)]
			}
			s := string(b)
			if got, want := p.mayMatch(s) && p.MatchString(s), plain.MatchString(s); got != want {
				t.Fatalf("%q on %q: %v with the prefilter (literal %q); %v without", src, s, got, p.literal, want)
			}
		}
	}
}
