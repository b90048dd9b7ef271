package format

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/value"
)

// slowTimestamp is ParseTimestamp by the time package's layouts alone.
func slowTimestamp(b []byte) (value.Value, bool) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, string(b)); err == nil {
			if t.Before(minTimestamp) || t.After(maxTimestamp) {
				return value.Value{}, false
			}
			return value.TimeValue(t), true
		}
	}
	return value.Value{}, false
}

// TestParseUTC: the common form's parser reads what the time package's
// layouts read, as they read it, and leaves alone what they refuse: over
// timestamps of every fraction's length, and their random mutations.
func TestParseUTC(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lo, hi := time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), time.Date(2261, 12, 31, 0, 0, 0, 0, time.UTC).UnixNano()
	fast := 0
	for i := range 200_000 {
		ns := lo + int64(r.Uint64N(uint64(hi)-uint64(lo)))
		if i%3 == 0 {
			ns -= ns % 1e9
		}
		ts := time.Unix(0, ns).UTC()
		digits := r.IntN(10)
		layout := "2006-01-02T15:04:05"
		if digits > 0 {
			layout += "." + "000000000"[:digits]
		}
		b := []byte(ts.Format(layout + "Z"))
		if r.IntN(4) == 0 {
			b[10] = ' '
		}
		if r.IntN(3) == 0 {
			// A random byte changed: a digit, a separator, or neither.
			b[r.IntN(len(b))] = "0123456789-:.TZ 9x"[r.IntN(18)]
		}
		want, wantOK := slowTimestamp(b)
		got, ok := parseUTC(b)
		switch {
		case ok && (!wantOK || got != want):
			t.Fatalf("parseUTC(%q) = %v; the layouts read %v (%t)", b, got, want, wantOK)
		case ok:
			fast++
		}
	}
	for _, s := range []string{"2023-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
		"2024-04-31T00:00:00Z", "2024-12-31T23:59:59.999999999Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z",
		"2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z", "1677-12-31T00:00:00Z", "2262-01-01T00:00:00Z"} {
		want, wantOK := slowTimestamp([]byte(s))
		if got, ok := parseUTC([]byte(s)); ok && (!wantOK || got != want) {
			t.Errorf("parseUTC(%q) = %v; the layouts read %v (%t)", s, got, want, wantOK)
		}
	}
	if fast < 100_000 {
		t.Errorf("parseUTC read %d of 200,000 timestamps; want most of them", fast)
	}
}

// BenchmarkParseTimestamp parses the common form, with milliseconds, and
// one of the other layouts.
func BenchmarkParseTimestamp(b *testing.B) {
	for _, s := range []string{"2024-01-01T00:00:12.123Z", "2024-01-01T00:00:12+02:00"} {
		b.Run(s, func(b *testing.B) {
			in := []byte(s)
			for b.Loop() {
				if _, err := ParseTimestamp(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
