package format

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlainPrefix: the scan eight bytes at a time stops where a scan of
// one byte at a time does: at every byte value, at every place in and
// after the first words, after other special bytes too (a word's
// subtraction borrows from a flagged byte into the next), and over random
// strings.
func TestPlainPrefix(t *testing.T) {
	naive := func(s string) int {
		i := 0
		for i < len(s) && plainStringByte[s[i]] {
			i++
		}
		return i
	}
	check := func(s string) {
		t.Helper()
		if got, want := plainPrefix(s), naive(s); got != want {
			t.Fatalf("plainPrefix(%q) = %d; want %d", s, got, want)
		}
		if got, want := plainPrefix([]byte(s)), naive(s); got != want {
			t.Fatalf("plainPrefix([]byte(%q)) = %d; want %d", s, got, want)
		}
	}
	for c := range 256 {
		for at := range 20 {
			for _, after := range []string{"", "abc", "\x00\x00", "\"\\", "\xff\x80", "\x1f\x20\x21"} {
				check(strings.Repeat("a", at) + string([]byte{byte(c)}) + after + strings.Repeat("z", 9))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abcxyz ~!\"\\\x00\x01\x1f\x7f\x80\xc3\xa9\xff")
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(8) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte(0x20 + r.IntN(0x5f))
			}
		}
		check(string(b))
	}
}
