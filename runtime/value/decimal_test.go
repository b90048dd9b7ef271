package value_test

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/value"
)

const (
	maxI = math.MaxInt64
	minI = math.MinInt64
)

func TestPow10(t *testing.T) {
	want := int64(1)
	for n := uint8(0); n <= value.MaxDecimalPrecision; n++ {
		if got := value.Pow10(n); got != want {
			t.Errorf("Pow10(%d) = %d; want %d", n, got, want)
		}
		want *= 10
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in    string
		scale uint8
		want  int64
	}{
		// Plain numbers.
		{"0", 0, 0},
		{"3", 0, 3},
		{"+7", 0, 7},
		{"-12.5", 1, -125},
		{"12.5", 2, 1250},
		{"123.456", 3, 123456},
		{"0.0001", 4, 1},
		{"-0.0001", 4, -1},
		{"1.", 0, 1},
		{"1.", 2, 100},
		{".5", 1, 5},
		{"-.5", 1, -5},
		{"+.25", 2, 25},
		{"007", 0, 7},
		{"-0", 2, 0},
		{"0.000", 0, 0},
		{"00000000000000000000000000000000001", 0, 1}, // leading zeros do not overflow
		{"1.000000000000000000000000000000000", 2, 100},
		{"5", 18, 5e18},
		{"-9", 18, -9e18},
		{"9.223372036854775807", 18, maxI},
		{"9223372036854775807", 0, maxI},
		{"-9223372036854775807", 0, -maxI},
		{"92233720368547758", 2, 9223372036854775800},

		// Rounding half away from zero beyond the scale.
		{"1.25", 1, 13},
		{"1.24", 1, 12},
		{"-1.25", 1, -13},
		{"-1.24", 1, -12},
		{"0.5", 0, 1},
		{"-0.5", 0, -1},
		{"2.5", 0, 3}, // not banker's rounding
		{"-2.5", 0, -3},
		{"0.4999999999", 0, 0},
		{"-0.4999999999", 0, 0},
		{"1.2345", 2, 123},
		{"1.235", 2, 124},
		{"1.2350000000000000000000001", 2, 124},
		{"9.995", 2, 1000},
		{"-9.995", 2, -1000},
		{"99.5", 0, 100},
		{"0.00000000000000000000000000005", 0, 0},
		{"0.00000000000000000000000000005", 18, 0},
		{"0.0000000000000000005", 18, 1},
		{"1.99999999999999999999999", 2, 200},
		{"123.4567", 4, 1234567},
		{"123.45678", 4, 1234568},
		{"-123.45675", 4, -1234568},

		// Exponents.
		{"1e3", 0, 1000},
		{"1E3", 2, 100000},
		{"1e+2", 0, 100},
		{"+1e3", 0, 1000},
		{"-1e3", 1, -10000},
		{"1e0", 0, 1},
		{"1e-0", 0, 1},
		{"1.5E-2", 2, 2}, // 0.015 rounds to 0.02
		{"1.5E-2", 3, 15},
		{"-1.5e-2", 2, -2},
		{"1.4e-2", 2, 1},
		{"25e-1", 0, 3},
		{"-25e-1", 0, -3},
		{"1.23456e2", 2, 12346},
		{"1.e3", 0, 1000},
		{"1e18", 0, 1e18},
		{"1e-20", 2, 0},
		{"5e-3", 2, 1},
		{"0.000000000000000000000000001e30", 0, 1000},
		{"123456789012345678901234567890e-20", 2, 123456789012}, // long mantissa
		{"-123456789012345678901234567890e-20", 2, -123456789012},
		{"123456789012345678901234567890e-27", 0, 123},
		{"12345678901234567890.5e-10", 1, 12345678901}, // 1234567890.12345678905
	}
	for _, tt := range tests {
		got, err := value.ParseDecimal([]byte(tt.in), tt.scale)
		if err != nil || got != tt.want {
			t.Errorf("ParseDecimal(%q, %d) = %v, %v; want %v, nil", tt.in, tt.scale, got, err, tt.want)
		}
	}
}

func TestParseDecimalOverflow(t *testing.T) {
	tests := []struct {
		in    string
		scale uint8
	}{
		{"9223372036854775808", 0},
		{"-9223372036854775809", 0},
		{"9223372036854775807.5", 0}, // rounding up passes the maximum
		{"92233720368547759", 2},
		{"1000000000000000000", 1},
		{"10", 18},
		{"-10", 18},
		{"100000000000000000000", 0},  // a mantissa longer than 64 bits
		{"-100000000000000000000", 0}, // and negative
		{"99999999999999999999999999999.9", 0},
		{"1e19", 0},
		{"-1e19", 0},
		{"1e2", 17},
		{"1e400", 0},
		{"1e999999", 2},
		{"9.3e18", 0},
	}
	for _, tt := range tests {
		got, err := value.ParseDecimal([]byte(tt.in), tt.scale)
		if !errors.Is(err, value.ErrOverflow) {
			t.Errorf("ParseDecimal(%q, %d) = %v, %v; want ErrOverflow", tt.in, tt.scale, got, err)
		}
	}
}

func TestParseDecimalSyntax(t *testing.T) {
	tests := []string{
		"",
		"-",
		"+",
		".",
		"-.",
		"+-1",
		"--1",
		"1.2.3",
		"..1",
		"abc",
		"1a",
		"a1",
		" 1",
		"1 ",
		"1,5",
		"1-",
		"0x10",
		"1_000",
		"Inf",
		"-Inf",
		"NaN",
		"1/2",
		"e3",
		"-e3",
		".e3",
		"1e",
		"1E",
		"1e+",
		"1e-",
		"1e3.5",
		"1ee3",
		"1e3e4",
		"1e 3",
		"1e1_0",
		"1e0x10",
		"1\x00",
		"١",  // an Arabic-Indic digit
		"１２", // full-width digits
	}
	for _, in := range tests {
		got, err := value.ParseDecimal([]byte(in), 2)
		if err == nil {
			t.Errorf("ParseDecimal(%q, 2) = %v, nil; want a syntax error", in, got)
			continue
		}
		if errors.Is(err, value.ErrOverflow) {
			t.Errorf("ParseDecimal(%q, 2) error = %v; want a syntax error, not an overflow", in, err)
		}
		if !strings.Contains(err.Error(), "invalid") {
			t.Errorf("ParseDecimal(%q, 2) error = %q; want it to say invalid", in, err)
		}
	}
}

// TestParseDecimalMinInt64 checks that the most negative unscaled value, which
// AppendDecimal formats, parses back whichever path the parser takes.
func TestParseDecimalMinInt64(t *testing.T) {
	// The slow path (an exponent) accepts it.
	if got, err := value.ParseDecimal([]byte("-922337203685477580.8e1"), 0); err != nil || got != minI {
		t.Errorf("ParseDecimal(%q, 0) = %v, %v; want %v, nil", "-922337203685477580.8e1", got, err, int64(minI))
	}

	for _, tt := range []struct {
		in    string
		scale uint8
	}{
		{"-9223372036854775808", 0},
		{"-9.223372036854775808", 18},
	} {
		if got, err := value.ParseDecimal([]byte(tt.in), tt.scale); err != nil || got != minI {
			t.Errorf("ParseDecimal(%q, %d) = %v, %v; want %v, nil", tt.in, tt.scale, got, err, int64(minI))
		}
	}
}

// TestParseDecimalHugeExponentCost checks that an absurd exponent is rejected
// cheaply: a record can repeat a decimal field many times.
func TestParseDecimalHugeExponentCost(t *testing.T) {

	start := time.Now()
	for range 10 {
		if _, err := value.ParseDecimal([]byte("1e999999"), 2); !errors.Is(err, value.ErrOverflow) {
			t.Fatalf("ParseDecimal(%q, 2) error = %v; want ErrOverflow", "1e999999", err)
		}
		if got, err := value.ParseDecimal([]byte("1e-999999"), 2); got != 0 || err != nil {
			t.Fatalf("ParseDecimal(%q, 2) = %v, %v; want 0, nil", "1e-999999", got, err)
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("20 ParseDecimal calls with exponents of ±999999 took %v; want well under 50ms", d)
	}
}

func TestAppendDecimal(t *testing.T) {
	tests := []struct {
		unscaled int64
		scale    uint8
		want     string
	}{
		{0, 0, "0"},
		{0, 2, "0.00"},
		{123, 0, "123"},
		{-123, 0, "-123"},
		{12345, 2, "123.45"},
		{-12345, 2, "-123.45"},
		{1, 4, "0.0001"},
		{-1, 4, "-0.0001"},
		{5, 1, "0.5"},
		{-5, 1, "-0.5"},
		{100, 2, "1.00"},
		{-1000, 3, "-1.000"},
		{10, 1, "1.0"},
		{7, 18, "0.000000000000000007"},
		{-7, 18, "-0.000000000000000007"},
		{1e18, 18, "1.000000000000000000"},
		{maxI, 0, "9223372036854775807"},
		{minI, 0, "-9223372036854775808"},
		{maxI, 18, "9.223372036854775807"},
		{minI, 18, "-9.223372036854775808"},
		{minI, 4, "-922337203685477.5808"},
	}
	for _, tt := range tests {
		if got := string(value.AppendDecimal(nil, tt.unscaled, tt.scale)); got != tt.want {
			t.Errorf("AppendDecimal(nil, %d, %d) = %q; want %q", tt.unscaled, tt.scale, got, tt.want)
		}
		if got := string(value.AppendDecimal([]byte("x="), tt.unscaled, tt.scale)); got != "x="+tt.want {
			t.Errorf("AppendDecimal(%q, %d, %d) = %q; want %q", "x=", tt.unscaled, tt.scale, got, "x="+tt.want)
		}
	}
}

func TestAppendDecimalAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		buf = value.AppendDecimal(buf[:0], -1234567, 4)
	})
	if allocs != 0 {
		t.Errorf("AppendDecimal into a buffer with room: %v allocations; want 0", allocs)
	}
}

// TestParseDecimalAllocs checks that the common case, a short literal without
// an exponent, does not allocate.
func TestParseDecimalAllocs(t *testing.T) {
	for _, in := range []string{"-123.4567", "42", "0.00005"} {
		b := []byte(in)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := value.ParseDecimal(b, 4); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("ParseDecimal(%q, 4): %v allocations; want 0", in, allocs)
		}
	}
}

func TestRescale(t *testing.T) {
	tests := []struct {
		unscaled int64
		from, to uint8
		want     int64
	}{
		{5, 0, 0, 5},
		{minI, 3, 3, minI},
		// Up: exact.
		{5, 0, 2, 500},
		{-5, 1, 3, -500},
		{0, 0, 18, 0},
		{1, 0, 18, 1e18},
		{-9, 0, 18, -9e18},
		{922337203685477580, 0, 1, 9223372036854775800},
		{-922337203685477580, 0, 1, -9223372036854775800},
		// Down: half away from zero.
		{125, 2, 1, 13},
		{124, 2, 1, 12},
		{-125, 2, 1, -13},
		{-124, 2, 1, -12},
		{15, 1, 0, 2},
		{-15, 1, 0, -2},
		{14, 1, 0, 1},
		{5, 1, 0, 1},
		{-5, 1, 0, -1},
		{4, 1, 0, 0},
		{-4, 1, 0, 0},
		{12345, 4, 0, 1},
		{15000, 4, 0, 2},
		{maxI, 18, 0, 9},
		{minI, 18, 0, -9},
		{maxI, 1, 0, 922337203685477581},
		{minI, 1, 0, -922337203685477581},
		{999999999999999999, 18, 0, 1},
		{500000000000000000, 18, 0, 1},
		{499999999999999999, 18, 0, 0},
		{-500000000000000000, 18, 0, -1},
		{1, 18, 17, 0},
		{5, 18, 17, 1},
	}
	for _, tt := range tests {
		got, err := value.Rescale(tt.unscaled, tt.from, tt.to)
		if err != nil || got != tt.want {
			t.Errorf("Rescale(%d, %d, %d) = %v, %v; want %v, nil", tt.unscaled, tt.from, tt.to, got, err, tt.want)
		}
	}
}

func TestRescaleOverflow(t *testing.T) {
	tests := []struct {
		unscaled int64
		from, to uint8
	}{
		{maxI, 0, 1},
		{minI, 0, 1},
		{922337203685477581, 0, 1},
		{-922337203685477581, 0, 1},
		{10, 0, 18},
		{-10, 0, 18},
		{1 << 62, 0, 2},
	}
	for _, tt := range tests {
		got, err := value.Rescale(tt.unscaled, tt.from, tt.to)
		if !errors.Is(err, value.ErrOverflow) {
			t.Errorf("Rescale(%d, %d, %d) = %v, %v; want ErrOverflow", tt.unscaled, tt.from, tt.to, got, err)
		}
	}
	// Just inside the boundary.
	if got, err := value.Rescale(1, 0, 18); err != nil || got != 1e18 {
		t.Errorf("Rescale(1, 0, 18) = %v, %v; want 1e18, nil", got, err)
	}
}

func TestAddDecimal(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
		want  int64
	}{
		{1, 1, 2, 1, 1, 3},  // 0.1 + 0.2 = 0.3 exactly
		{1, 1, 2, 1, 2, 30}, // at a larger scale
		{1, 1, 2, 1, 18, 3e17},
		{15, 1, 25, 2, 2, 175},   // 1.5 + 0.25
		{-15, 1, 25, 2, 2, -125}, // -1.5 + 0.25
		{3, 1, -1, 1, 1, 2},      // subtraction as negation
		{0, 0, 0, 18, 4, 0},
		{1, 0, 1, 18, 18, 1000000000000000001},
		{maxI, 0, -1, 0, 0, maxI - 1},
		{minI, 0, maxI, 0, 0, -1},
		{maxI, 0, minI, 0, 0, -1},
		{maxI - 1, 0, 1, 0, 0, maxI},
		{minI + 1, 0, -1, 0, 0, minI},
	}
	for _, tt := range tests {
		got, err := value.AddDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if err != nil || got != tt.want {
			t.Errorf("AddDecimal(%d, %d, %d, %d, %d) = %v, %v; want %v, nil", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err, tt.want)
		}
	}
}

func TestAddDecimalOverflow(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
	}{
		{maxI, 0, 1, 0, 0},
		{minI, 0, -1, 0, 0},
		{maxI, 0, maxI, 0, 0},
		{minI, 0, minI, 0, 0},
		{maxI, 0, 0, 0, 1},          // rescaling a
		{0, 0, maxI, 0, 1},          // rescaling b
		{5e18, 18, 5e18, 18, 18},    // 5 + 5 = 10 does not fit at scale 18
		{-5e18, 18, -5e18, 18, 18},  // nor -10
		{9e18, 18, 1, 0, 18},        // 9 + 1
		{-9e18, 18, -1e18, 18, 18},  // -9 - 1
		{1 << 62, 0, 1 << 62, 0, 0}, // exactly 2^63
		{-(1 << 62), 0, -(1 << 62) - 1, 0, 0},
	}
	for _, tt := range tests {
		got, err := value.AddDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if !errors.Is(err, value.ErrOverflow) {
			t.Errorf("AddDecimal(%d, %d, %d, %d, %d) = %v, %v; want ErrOverflow", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err)
		}
	}
	// -2^63 itself fits.
	if got, err := value.AddDecimal(-(1 << 62), 0, -(1 << 62), 0, 0); err != nil || got != minI {
		t.Errorf("AddDecimal(-2^62, 0, -2^62, 0, 0) = %v, %v; want %v, nil", got, err, int64(minI))
	}
}

// TestAddDecimalRoundsOnce checks a sum at a scale below its operands': the
// exact sum must be rounded once, not each operand before adding. The engine
// always adds at max(as, bs), so this path is latent.
func TestAddDecimalRoundsOnce(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
		want  int64
	}{
		{5, 2, 5, 2, 1, 1},   // 0.05 + 0.05 = 0.10 -> 0.1, not 0.1 + 0.1
		{4, 2, 4, 2, 1, 1},   // 0.04 + 0.04 = 0.08 -> 0.1, not 0.0 + 0.0
		{25, 2, 25, 2, 1, 5}, // 0.25 + 0.25 = 0.50 -> 0.5, not 0.3 + 0.3
		{-5, 2, -5, 2, 1, -1},
		{5, 1, 5, 1, 0, 1}, // 0.5 + 0.5 = 1, not 1 + 1
	}

	for _, tt := range tests {
		got, err := value.AddDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if err != nil || got != tt.want {
			t.Errorf("AddDecimal(%d, %d, %d, %d, %d) = %v, %v; want %v, nil", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err, tt.want)
		}
	}
}

func TestMulDecimal(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
		want  int64
	}{
		{15, 1, 2, 0, 1, 30},    // 1.5 × 2 = 3.0
		{15, 1, 15, 1, 2, 225},  // 1.5 × 1.5 = 2.25
		{15, 1, 15, 1, 1, 23},   // 2.25 -> 2.3
		{-15, 1, 15, 1, 1, -23}, // -2.25 -> -2.3
		{15, 1, -15, 1, 1, -23},
		{-15, 1, -15, 1, 1, 23},
		{1, 1, 1, 1, 2, 1}, // 0.1 × 0.1 = 0.01
		{1, 1, 1, 1, 1, 0}, // 0.01 -> 0.0
		{5, 1, 1, 1, 1, 1}, // 0.05 -> 0.1
		{-5, 1, 1, 1, 1, -1},
		{3, 0, 4, 0, 2, 1200},
		{0, 0, maxI, 0, 0, 0},
		{0, 5, -7, 3, 4, 0},
		{maxI, 0, 1, 0, 0, maxI},
		{maxI, 0, -1, 0, 0, -maxI},
		{minI, 0, 1, 0, 0, minI},
		{1e9, 9, 1e9, 9, 18, 1e18},
		// The slow path: products beyond 63 bits.
		{3037000500, 9, 3037000500, 9, 2, 922}, // 9.223372037000250000
		{-3037000500, 9, 3037000500, 9, 2, -922},
		{3037000499, 0, 3037000499, 0, 0, 9223372030926249001},
		{1 << 62, 18, 4, 0, 17, 1844674407370955162},  // 18.446744073709551616 at scale 17
		{maxI, 18, maxI, 18, 17, 8507059173023461585}, // 85.07059173023461584739...
		// The slow path: natural scale beyond 18.
		{1, 10, 1, 10, 2, 0},
		{123, 10, 456, 10, 18, 561}, // 560.88e-20 × 10^18
		{-123, 10, 456, 10, 18, -561},
		{5, 10, 1, 10, 18, 0},  // 5e-20 -> 0 at scale 18
		{50, 10, 1, 10, 18, 1}, // 5e-19 -> 1e-18
	}
	for _, tt := range tests {
		got, err := value.MulDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if err != nil || got != tt.want {
			t.Errorf("MulDecimal(%d, %d, %d, %d, %d) = %v, %v; want %v, nil", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err, tt.want)
		}
	}
}

func TestMulDecimalOverflow(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
	}{
		{maxI, 0, 2, 0, 0},
		{minI, 0, -1, 0, 0},
		{minI, 0, 2, 0, 0},
		{3037000500, 0, 3037000500, 0, 0},
		{-3037000500, 0, 3037000500, 0, 0},
		{1e9, 0, 1e9, 0, 2},      // 1e18 fits, rescaled to scale 2 it does not
		{maxI, 18, maxI, 18, 18}, // 85.07 at scale 18
		{1, 0, 10, 0, 18},
	}
	for _, tt := range tests {
		got, err := value.MulDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if !errors.Is(err, value.ErrOverflow) {
			t.Errorf("MulDecimal(%d, %d, %d, %d, %d) = %v, %v; want ErrOverflow", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err)
		}
	}
}

func TestDivDecimal(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
		want  int64
	}{
		{1, 0, 3, 0, 6, 333333},
		{2, 0, 3, 0, 6, 666667},
		{-2, 0, 3, 0, 6, -666667},
		{2, 0, -3, 0, 6, -666667},
		{-2, 0, -3, 0, 6, 666667},
		{1, 0, 3, 0, 18, 333333333333333333},
		{2, 0, 3, 0, 18, 666666666666666667},
		{0, 0, 5, 0, 2, 0},
		{10, 1, 4, 0, 2, 25}, // 1.0 / 4 = 0.25
		{1, 0, 8, 0, 2, 13},  // 0.125 -> 0.13
		{-1, 0, 8, 0, 2, -13},
		{1, 0, 8, 0, 3, 125},
		{15, 1, 5, 2, 0, 30}, // 1.5 / 0.05 = 30
		{5, 0, 10, 0, 0, 1},  // 0.5 -> 1
		{-5, 0, 10, 0, 0, -1},
		{4, 0, 10, 0, 0, 0},
		{5, 1, 1, 0, 0, 1},     // a scale above the result's
		{1, 18, 1, 0, 0, 0},    // 1e-18 -> 0
		{1, 0, 1, 18, 0, 1e18}, // 1 / 1e-18
		{maxI, 0, 1, 0, 0, maxI},
		{minI, 0, 1, 0, 0, minI},
		{minI, 0, 2, 0, 0, minI / 2},
		{maxI, 18, maxI, 18, 18, 1e18},
		{7, 2, 7, 5, 4, 10000000}, // 0.07 / 0.00007 = 1000
		{22, 0, 7, 0, 6, 3142857},
	}
	for _, tt := range tests {
		got, err := value.DivDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if err != nil || got != tt.want {
			t.Errorf("DivDecimal(%d, %d, %d, %d, %d) = %v, %v; want %v, nil", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err, tt.want)
		}
	}
}

func TestDivDecimalErrors(t *testing.T) {
	tests := []struct {
		a     int64
		as    uint8
		b     int64
		bs    uint8
		scale uint8
		want  error
	}{
		{1, 0, 0, 0, 2, value.ErrDivisionByZero},
		{0, 0, 0, 0, 2, value.ErrDivisionByZero},
		{-5, 3, 0, 7, 0, value.ErrDivisionByZero},
		{minI, 0, -1, 0, 0, value.ErrOverflow},
		{maxI, 0, 1, 18, 0, value.ErrOverflow},
		{1, 0, 1, 0, 18, nil}, // 1 at scale 18 fits
		{10, 0, 1, 0, 18, value.ErrOverflow},
		{1, 0, 1, 1, 18, value.ErrOverflow}, // 1 / 0.1 = 10 at scale 18
	}
	for _, tt := range tests {
		got, err := value.DivDecimal(tt.a, tt.as, tt.b, tt.bs, tt.scale)
		if tt.want == nil {
			if err != nil {
				t.Errorf("DivDecimal(%d, %d, %d, %d, %d) = %v, %v; want nil error", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("DivDecimal(%d, %d, %d, %d, %d) = %v, %v; want %v", tt.a, tt.as, tt.b, tt.bs, tt.scale, got, err, tt.want)
		}
	}
}

func TestCompareDecimal(t *testing.T) {
	tests := []struct {
		a    int64
		as   uint8
		b    int64
		bs   uint8
		want int
	}{
		{5, 0, 5, 0, 0},
		{5, 0, 6, 0, -1},
		{15, 1, 150, 2, 0},
		{1, 0, 1, 1, 1},
		{-1, 0, -1, 1, -1},
		{0, 0, 0, 18, 0},
		{1, 0, 1e18, 18, 0},
		{1, 0, 1e18 + 1, 18, -1},
		{-1, 0, -1e18 - 1, 18, 1},
		{125, 2, 12, 1, 1},
		// Rescaling overflows: compared exactly.
		{maxI, 0, maxI, 18, 1},
		{minI, 0, minI, 18, -1},
		{10, 0, maxI, 18, 1},
		{-10, 0, minI, 18, -1},
		{9, 0, maxI, 18, -1},
		{-9, 0, minI, 18, 1},
		{922337203685477581, 0, maxI, 1, 1},  // 922337203685477581 > 922337203685477580.7
		{922337203685477580, 1, maxI, 2, -1}, // 92233720368547758.0 < 92233720368547758.07
		{maxI, 17, maxI, 18, 1},
		{minI, 17, maxI, 18, -1},
	}
	for _, tt := range tests {
		if got := value.CompareDecimal(tt.a, tt.as, tt.b, tt.bs); got != tt.want {
			t.Errorf("CompareDecimal(%d, %d, %d, %d) = %d; want %d", tt.a, tt.as, tt.b, tt.bs, got, tt.want)
		}
		if got := value.CompareDecimal(tt.b, tt.bs, tt.a, tt.as); got != -tt.want {
			t.Errorf("CompareDecimal(%d, %d, %d, %d) = %d; want %d", tt.b, tt.bs, tt.a, tt.as, got, -tt.want)
		}
	}
}

func TestFitsPrecision(t *testing.T) {
	tests := []struct {
		unscaled  int64
		precision uint8
		want      bool
	}{
		{0, 0, true},
		{1, 0, false},
		{0, 1, true},
		{9, 1, true},
		{10, 1, false},
		{-9, 1, true},
		{-10, 1, false},
		{99, 2, true},
		{100, 2, false},
		{999999999999999999, 18, true},
		{-999999999999999999, 18, true},
		{1e18, 18, false},
		{-1e18, 18, false},
		{maxI, 18, false},
		{minI, 18, false},
		{maxI, 19, true},
		{minI, 19, true},
		{minI, 255, true},
	}
	for _, tt := range tests {
		if got := value.FitsPrecision(tt.unscaled, tt.precision); got != tt.want {
			t.Errorf("FitsPrecision(%d, %d) = %t; want %t", tt.unscaled, tt.precision, got, tt.want)
		}
	}
}

func TestDecimalFromFloat(t *testing.T) {
	tests := []struct {
		f     float64
		scale uint8
		want  int64
	}{
		{0, 2, 0},
		{math.Copysign(0, -1), 2, 0},
		{1.5, 1, 15},
		{2.5, 0, 3},
		{-2.5, 0, -3},
		{0.5, 0, 1},
		{-0.5, 0, -1},
		{0.125, 2, 13}, // exactly representable, so a true half
		{-0.125, 2, -13},
		{0.1, 1, 1},
		// The binary value of 0.1 is 0.1000000000000000055511151231257827...
		{0.1, 18, 100000000000000006},
		// 1.005 is 1.00499999999999989... in binary: rounds down.
		{1.005, 2, 100},
		// 0.15 is 0.1499999999999999944... in binary.
		{0.15, 1, 1},
		{123.456, 3, 123456},
		{-123.456, 3, -123456},
		{1e18, 0, 1e18},
		{-1e18, 0, -1e18},
		{9.2e18, 0, 9200000000000000000},
		{-9223372036854775808, 0, minI},
		{5e-324, 18, 0},
		{-1e-20, 2, 0},
		{0.49999999999999994, 0, 0}, // the largest double below 0.5
		{4503599627370497, 0, 4503599627370497},
	}
	for _, tt := range tests {
		got, err := value.DecimalFromFloat(tt.f, tt.scale)
		if err != nil || got != tt.want {
			t.Errorf("DecimalFromFloat(%v, %d) = %v, %v; want %v, nil", tt.f, tt.scale, got, err, tt.want)
		}
	}
}

func TestDecimalFromFloatOverflow(t *testing.T) {
	tests := []struct {
		f     float64
		scale uint8
	}{
		{math.NaN(), 0},
		{math.Inf(1), 0},
		{math.Inf(-1), 2},
		{1e19, 0},
		{9.3e18, 0},
		{-9.3e18, 0},
		{10, 18},
		{math.MaxFloat64, 0},
		{-math.MaxFloat64, 4},
		{9223372036854775807, 0}, // the double is 2^63
	}
	for _, tt := range tests {
		got, err := value.DecimalFromFloat(tt.f, tt.scale)
		if !errors.Is(err, value.ErrOverflow) {
			t.Errorf("DecimalFromFloat(%v, %d) = %v, %v; want ErrOverflow", tt.f, tt.scale, got, err)
		}
	}
}

// refRound returns r × 10^scale rounded half away from zero, or ok=false if it
// does not fit an int64. It is a reference independent of the package.
func refRound(r *big.Rat, scale uint8) (int64, bool) {
	n := new(big.Int).Mul(r.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	d := r.Denom() // positive
	neg := n.Sign() < 0
	n.Abs(n)
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if m.Lsh(m, 1).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func FuzzParseDecimal(f *testing.F) {
	for _, seed := range []struct {
		s     string
		scale uint8
	}{
		{"0", 0}, {"-12.5", 1}, {"1.25", 1}, {"-1.25", 1}, {"1e3", 0}, {"1.5E-2", 2},
		{"9223372036854775807", 0}, {"9223372036854775807.5", 0}, {"-9.995", 2},
		{"123456789012345678901234567890e-20", 2}, {"0.0000000000000000005", 18},
		{"", 0}, {"-", 0}, {"1.2.3", 2}, {"abc", 2}, {"1e", 0}, {".5", 1}, {"1.", 3},
	} {
		f.Add(seed.s, seed.scale)
	}
	f.Fuzz(func(t *testing.T, s string, scale uint8) {
		scale %= value.MaxDecimalPrecision + 1
		u, err := value.ParseDecimal([]byte(s), scale)

		// Against a reference: big.Rat reads all that ParseDecimal accepts, and the
		// result must be its value rounded half away from zero, or ErrOverflow
		// exactly when that does not fit an int64.
		if err == nil || errors.Is(err, value.ErrOverflow) {
			r, ok := new(big.Rat).SetString(s)
			if !ok {
				// big.Rat refuses exponents beyond its range, which strconv
				// reads as out of range: an overflow, or zero for a tiny one.
				f, perr := strconv.ParseFloat(s, 64)
				switch {
				case errors.Is(perr, strconv.ErrRange) && math.IsInf(f, 0) && errors.Is(err, value.ErrOverflow):
				case (perr == nil || errors.Is(perr, strconv.ErrRange)) && f == 0 && err == nil && u == 0:
				default:
					t.Fatalf("ParseDecimal(%q, %d) = %d, %v, but big.Rat cannot read %q", s, scale, u, err, s)
				}
				return
			}
			want, fits := refRound(r, scale)
			switch {
			case err == nil && (!fits || u != want):
				t.Errorf("ParseDecimal(%q, %d) = %d, nil; want %d (fits int64: %t)", s, scale, u, want, fits)
			case err != nil && fits:
				t.Errorf("ParseDecimal(%q, %d) = %d, %v; want %d, nil", s, scale, u, err, want)
			}
		}
		if err != nil {
			return
		}

		// What it formats parses back to the same unscaled value.
		out := value.AppendDecimal(nil, u, scale)
		if scale > 0 {
			dot := strings.IndexByte(string(out), '.')
			if dot < 0 || len(out)-dot-1 != int(scale) {
				t.Errorf("AppendDecimal(nil, %d, %d) = %q; want exactly %d fractional digits", u, scale, out, scale)
			}
		}
		u2, err := value.ParseDecimal(out, scale)
		if err != nil || u2 != u {
			t.Errorf("ParseDecimal(%q, %d) = %d, %v; want %d, nil (it came from ParseDecimal(%q, %d))", out, scale, u2, err, u, s, scale)
		}
	})
}
