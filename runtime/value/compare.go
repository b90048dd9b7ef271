package value

import (
	"cmp"
	"strings"
)

// Comparable reports whether values of types a and b can be compared: both
// numeric, or both of the same kind.
func Comparable(a, b Type) bool {
	if a.Kind == KindNull || b.Kind == KindNull {
		return true
	}
	if a.Numeric() && b.Numeric() {
		return true
	}
	return a.Kind == b.Kind
}

// Compare orders two non-NULL values of comparable types: -1, 0 or 1. Numbers of
// different kinds compare by value: exactly between ints and decimals, as
// doubles when either is a double.
func Compare(a, b Value) int {
	if a.kind == b.kind {
		switch a.kind {
		case KindInt, KindTimestamp, KindInterval:
			return cmp.Compare(int64(a.n), int64(b.n))
		case KindDouble:
			return cmp.Compare(a.Double(), b.Double())
		case KindString:
			return strings.Compare(a.s, b.s)
		case KindBool:
			return cmp.Compare(a.n, b.n)
		case KindDecimal:
			return CompareDecimal(int64(a.n), a.scale, int64(b.n), b.scale)
		}
		return 0
	}
	if a.kind == KindDouble || b.kind == KindDouble {
		return cmp.Compare(a.Float(), b.Float())
	}
	// int against decimal: an int is a decimal of scale 0.
	return CompareDecimal(int64(a.n), a.scale, int64(b.n), b.scale)
}
