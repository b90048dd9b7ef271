package expr

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
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

// TestSearchFromLiteral: a search that starts a bounded distance before
// the first place of a literal part of the pattern finds the very matches,
// groups and all, of the search from the start, for patterns with \A
// before the literal or after it, groups repeated, classes of multi-byte
// runes and case folded parts before it, over random strings that hold
// the literal, multi-byte runes and invalid UTF-8; patterns whose
// assertions read the byte before them search from the start.
func TestSearchFromLiteral(t *testing.T) {
	anchored := []string{`(&|^)ab=([^&]*)`, `(&|^)ab=`, `x?ab`, `(?i:é)ab(c)?`, `[é&]{1,2}ab`, `(c|&){2}ab(=)`,
		`(^|&)(ab)(=|$)`, `.ab`, `(?s).ab`, `(a|^)(b|^)ab`, `(ab){2}x`, `^ab`,
		// U+FFFD matches a byte of invalid UTF-8, which a search from
		// within a character would make of its other bytes.
		`\x{FFFD}?ab`, `(\x{FFFD})abab`, `(^|\x{FFFD})ab`}
	whole := []string{`(?m)(&|^)ab`, `\bab`, `\Bab`, `a*ab`, `(?i)ab`, `[a-c]+ab`, `ab`, `(x)?(ab)+`}
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "b", "ab", "=", "&", "c", "x", "é", "\xff", "\n", " ", "😀", "\xf0\x9f", "\x80", "\uFFFD"}
	for _, src := range append(anchored, whole...) {
		p, err := compilePattern("test", NewConst(value.StringValue(src)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if (p.later != nil) != slices.Contains(anchored, src) {
			t.Fatalf("%q: searched from its literal %q: %v", src, p.at, p.later != nil)
		}
		plain := regexp.MustCompile(src)
		for range 3000 {
			var b strings.Builder
			for range rng.IntN(14) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := b.String()
			want := plain.FindStringSubmatchIndex(s)
			if got := p.findSubmatchIndex(s); !slices.Equal(got, want) {
				t.Fatalf("%q on %q: %v searching from %q's place less %d; %v from the start", src, s, got, p.at, p.lead, want)
			}
			re, from, ok := p.search(s)
			var all [][]int
			if ok {
				all = re.FindAllStringSubmatchIndex(s[from:], -1)
				for _, m := range all {
					shift(m, from)
				}
			}
			if wantAll := plain.FindAllStringSubmatchIndex(s, -1); !slices.EqualFunc(all, wantAll, slices.Equal) {
				t.Fatalf("%q on %q: all matches %v searching from %d; %v from the start", src, s, all, from, wantAll)
			}
			if got := ok && re.MatchString(s[from:]); got != (want != nil) {
				t.Fatalf("%q on %q: matches %v searching from %d", src, s, got, from)
			}
		}
	}
}
