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
	if v, ok := parseUTC(b); ok {
		return v, nil
	}
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

// parseUTC parses the common form of a timestamp, as sinks write it:
// YYYY-MM-DDThh:mm:ss[.f{1,9}]Z (or a space for the T), of a year 1678 to
// 2261, without the time package's general parser. ok is false for
// anything else, which ParseTimestamp's layouts take, or refuse with
// their message.
func parseUTC(b []byte) (v value.Value, ok bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return value.Value{}, false
	}
	num := func(s []byte) (int64, bool) {
		n := int64(0)
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1678 || year > 2261 || month < 1 || month > 12 ||
		day < 1 || day > int64(daysIn(month, year)) || hour > 23 || minute > 59 || sec > 59 {
		return value.Value{}, false
	}
	nanos := int64(0)
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return value.Value{}, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return value.Value{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nanos = n
	}
	t := time.Date(int(year), time.Month(month), int(day), int(hour), int(minute), int(sec), int(nanos), time.UTC)
	return value.TimestampValue(t.UnixNano()), true
}

// daysIn returns the days of a month of a year.
func daysIn(month, year int64) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
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
