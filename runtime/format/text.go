// Package format decodes source records into rows and encodes result rows, in
// JSON lines and CSV. Decoders and encoders work on byte slices and allocate
// nothing per record in the common case.
//
// Decoded strings point into the input line without copying it, so a caller
// must never modify a line after decoding it while its rows are alive.
package format

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/sluice-dev/sluice/runtime/value"
)

// BytesString views b as a string without copying. b must not change
// afterwards: decoded strings point into their input this way.
func BytesString(b []byte) string { return bytesString(b) }

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// ParseText converts the text form of a value into a value of type t, as a CSV
// field, a quoted JSON number or a string CAST does.
func ParseText(t value.Type, b []byte) (value.Value, error) {
	switch t.Kind {
	case value.KindString:
		return value.StringValue(bytesString(b)), nil
	case value.KindInt:
		i, err := ParseInt(b)
		if err != nil {
			return value.Value{}, err
		}
		return value.IntValue(i), nil
	case value.KindDouble:
		f, err := strconv.ParseFloat(bytesString(b), 64)
		if err != nil {
			return value.Value{}, fmt.Errorf("invalid double %s", quoted(b))
		}
		return value.DoubleValue(f), nil
	case value.KindDecimal:
		return ParseDecimal(t, b)
	case value.KindBool:
		switch bytesString(b) {
		case "true", "TRUE", "True", "t", "1":
			return value.BoolValue(true), nil
		case "false", "FALSE", "False", "f", "0":
			return value.BoolValue(false), nil
		}
		return value.Value{}, fmt.Errorf("invalid bool %s", quoted(b))
	case value.KindTimestamp:
		return ParseTimestamp(b)
	}
	return value.Value{}, fmt.Errorf("cannot parse %s", t)
}

var errIntSyntax = errors.New("invalid int")

// ParseInt parses a base-10 64-bit integer without allocating.
func ParseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errIntSyntax
	}
	neg := false
	i := 0
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i = 1
		if len(b) == 1 {
			return 0, fmt.Errorf("invalid int %s", quoted(b))
		}
	}
	var n uint64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, fmt.Errorf("invalid int %s", quoted(b))
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, fmt.Errorf("int %s out of range", quoted(b))
		}
		n = n*10 + uint64(c)
	}
	if neg {
		if n > 1<<63 {
			return 0, fmt.Errorf("int %s out of range", quoted(b))
		}
		return -int64(n), nil
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("int %s out of range", quoted(b))
	}
	return int64(n), nil
}

// ParseDecimal parses a decimal of type t and checks its precision.
func ParseDecimal(t value.Type, b []byte) (value.Value, error) {
	u, err := value.ParseDecimal(b, t.Scale)
	if err != nil {
		return value.Value{}, fmt.Errorf("invalid %s %s: %w", t, quoted(b), err)
	}
	if !value.FitsPrecision(u, t.Precision) {
		return value.Value{}, fmt.Errorf("%s does not fit %s: %w", quoted(b), t, value.ErrOverflow)
	}
	return value.DecimalValue(u, t.Scale), nil
}

// ParseTimestamp parses an RFC 3339 timestamp, a "YYYY-MM-DD hh:mm:ss[.fff]"
// timestamp in UTC, or a date.
func ParseTimestamp(b []byte) (value.Value, error) {
	s := bytesString(b)
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Before(minTimestamp) || t.After(maxTimestamp) {
				return value.Value{}, fmt.Errorf("timestamp %s is out of range %s to %s", quoted(b), minTimestamp.Format(time.RFC3339), maxTimestamp.Format(time.RFC3339))
			}
			return value.TimeValue(t), nil
		}
	}
	return value.Value{}, fmt.Errorf("invalid timestamp %s (want RFC 3339, e.g. 2024-01-02T15:04:05Z)", quoted(b))
}

// Timestamps are nanoseconds since the epoch in an int64: 1677 to 2262.
var (
	minTimestamp = time.Unix(0, math.MinInt64).UTC()
	maxTimestamp = time.Unix(0, math.MaxInt64).UTC()
)

// TimestampFromMillis converts integer milliseconds since the epoch, checking
// the range.
func TimestampFromMillis(ms int64) (value.Value, error) {
	if ms > math.MaxInt64/1_000_000 || ms < math.MinInt64/1_000_000 {
		return value.Value{}, fmt.Errorf("timestamp of %d ms since the epoch is out of range %s to %s", ms, minTimestamp.Format(time.RFC3339), maxTimestamp.Format(time.RFC3339))
	}
	return value.TimestampValue(ms * 1e6), nil
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// quoted quotes a field for an error message, at most 64 bytes of it: a
// message about a long field must not be longer than the field, since it is
// kept and written for every record that fails.
func quoted[T string | []byte](b T) string {
	const most = 64
	if len(b) <= most {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:most])) + fmt.Sprintf("… (%d bytes)", len(b))
}
