package format

import (
	"errors"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/runtime/value"
)

// JSONEncoder encodes rows as JSON objects, one per line.
type JSONEncoder struct {
	keys [][]byte // `"name":` with the separator before it
}

// NewJSONEncoder returns an encoder of rows with the given column names.
func NewJSONEncoder(names []string) *JSONEncoder {
	e := &JSONEncoder{keys: make([][]byte, len(names))}
	for i, n := range names {
		var k []byte
		if i == 0 {
			k = append(k, '{')
		} else {
			k = append(k, ',')
		}
		k = AppendJSONString(k, n)
		e.keys[i] = append(k, ':')
	}
	return e
}

// Header appends nothing: JSON lines have no header.
func (e *JSONEncoder) Header(dst []byte) []byte { return dst }

// Encode appends row as a JSON object and a newline.
func (e *JSONEncoder) Encode(dst []byte, row value.Row) []byte {
	if len(row) == 0 {
		return append(dst, "{}\n"...)
	}
	for i, v := range row {
		dst = append(dst, e.keys[i]...)
		dst = AppendJSONValue(dst, v)
	}
	return append(dst, '}', '\n')
}

// AppendJSONValue appends v as a JSON value. Decimals are exact JSON numbers;
// timestamps are RFC 3339 strings; NaN and infinities, which JSON lacks, are null.
func AppendJSONValue(dst []byte, v value.Value) []byte {
	switch v.Kind() {
	case value.KindNull:
		return append(dst, "null"...)
	case value.KindString:
		return AppendJSONString(dst, v.Str())
	case value.KindTimestamp:
		dst = append(dst, '"')
		dst = value.AppendTimestamp(dst, v.Nanos())
		return append(dst, '"')
	case value.KindDouble:
		f := v.Double()
		if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
			return append(dst, "null"...)
		}
	}
	return v.AppendText(dst)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if i += plainPrefix(s[i:]); i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			// Bytes that are not UTF-8 become U+FFFD, as encoding/json does,
			// so that the output is always valid JSON.
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\\ufffd"...)
				start = i + 1
				continue
			}
			i += size - 1
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ErrEmpty is the error for an empty line where a record should be.
var ErrEmpty = errors.New("empty record")
