package format

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/runtime/value"
)

// CSVDecoder decodes CSV records, one per line, after a header line that names
// the columns. An empty unquoted field is NULL. Header columns that are not in
// the schema are skipped; schema columns missing from the header are NULL.
// Quoted fields may hold commas and doubled quotes, but not line breaks.
type CSVDecoder struct {
	cols []value.Column
	// fieldCol maps each header field to a schema column, or -1.
	fieldCol []int
	fields   [][]byte
}

// NewCSVDecoder returns a decoder for rows of the given columns. Its first call
// must be to Header.
func NewCSVDecoder(cols []value.Column) *CSVDecoder {
	return &CSVDecoder{cols: cols}
}

// NewCSVDecoderInOrder returns a decoder of CSV records without a header line,
// whose fields are the columns in order, as in Kafka messages.
func NewCSVDecoderInOrder(cols []value.Column) *CSVDecoder {
	d := &CSVDecoder{cols: cols, fieldCol: make([]int, len(cols))}
	for i := range cols {
		d.fieldCol[i] = i
	}
	return d
}

// HasHeader reports whether the header line has been read.
func (d *CSVDecoder) HasHeader() bool { return d.fieldCol != nil }

// Header reads the header line.
func (d *CSVDecoder) Header(line []byte) error {
	fields, err := splitCSV(line, nil, maxHeaderFields)
	if err != nil {
		return fmt.Errorf("csv header: %w", err)
	}
	fieldCol := make([]int, len(fields))
	found := 0
	for i, f := range fields {
		name := string(bytes.TrimSpace(f))
		fieldCol[i] = slices.IndexFunc(d.cols, func(c value.Column) bool { return c.Name == name })
		if fieldCol[i] >= 0 {
			found++
		}
	}
	if found == 0 {
		return fmt.Errorf("csv header %s names none of the schema's columns", quoted(line))
	}
	d.fieldCol = fieldCol
	return nil
}

// Decode parses one CSV line into row, which is all NULL.
func (d *CSVDecoder) Decode(line []byte, row value.Row) error {
	var err error
	d.fields, err = splitCSV(line, d.fields[:0], len(d.fieldCol))
	if err != nil {
		return err
	}
	if len(d.fields) != len(d.fieldCol) {
		return fmt.Errorf("csv record has %d fields, want %d", len(d.fields), len(d.fieldCol))
	}
	for i, f := range d.fields {
		c := d.fieldCol[i]
		if c < 0 || f == nil {
			continue
		}
		v, err := ParseText(d.cols[c].Type, f)
		if err != nil {
			return fmt.Errorf("column %s (field %d): %w", d.cols[c].Name, i+1, err)
		}
		row[c] = v
	}
	return nil
}

// maxHeaderFields bounds the fields of a CSV header.
const maxHeaderFields = 1 << 16

// splitCSV splits line into fields, at most most of them. An empty unquoted
// field is nil; a quoted one is never nil. Fields with doubled quotes are
// copied; others alias line.
func splitCSV(line []byte, fields [][]byte, most int) ([][]byte, error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	i := 0
	for {
		if len(fields) == most {
			// Stop before a line of commas makes a slice many times its size.
			return fields, fmt.Errorf("csv record has more than %d fields, want %d", most, most)
		}
		if i < len(line) && line[i] == '"' {
			start := i + 1
			var buf []byte
			j := start
			for {
				k := bytes.IndexByte(line[j:], '"')
				if k < 0 {
					return fields, fmt.Errorf("unterminated quoted field at byte %d", start)
				}
				j += k
				if j+1 < len(line) && line[j+1] == '"' {
					buf = append(buf, line[start:j+1]...)
					j += 2
					start = j
					continue
				}
				break
			}
			if buf != nil {
				buf = append(buf, line[start:j]...)
			} else {
				buf = line[start:j:j]
			}
			fields = append(fields, buf)
			i = j + 1
			if i < len(line) && line[i] != ',' {
				return fields, fmt.Errorf("unexpected %q after a quoted field at byte %d", line[i], i+1)
			}
		} else {
			k := bytes.IndexByte(line[i:], ',')
			end := len(line)
			if k >= 0 {
				end = i + k
			}
			f := line[i:end:end]
			if len(f) == 0 {
				f = nil
			}
			fields = append(fields, f)
			i = end
		}
		if i >= len(line) {
			return fields, nil
		}
		i++ // the comma
		if i == len(line) {
			return append(fields, nil), nil
		}
	}
}

// CSVEncoder encodes rows as CSV lines under a header line.
type CSVEncoder struct {
	names []string
}

// NewCSVEncoder returns an encoder of rows with the given column names.
func NewCSVEncoder(names []string) *CSVEncoder { return &CSVEncoder{names: names} }

// Header appends the header line.
func (e *CSVEncoder) Header(dst []byte) []byte {
	for i, n := range e.names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCSVField(dst, n)
	}
	return append(dst, '\n')
}

// Encode appends row as a CSV line. NULL is an empty field.
func (e *CSVEncoder) Encode(dst []byte, row value.Row) []byte {
	for i, v := range row {
		if i > 0 {
			dst = append(dst, ',')
		}
		if v.Kind() == value.KindString {
			dst = appendCSVField(dst, v.Str())
			continue
		}
		dst = v.AppendText(dst)
	}
	return append(dst, '\n')
}

func appendCSVField(dst []byte, f string) []byte {
	if strings.IndexAny(f, ",\"\r\n") < 0 && len(f) > 0 {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	for _, c := range []byte(f) {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
