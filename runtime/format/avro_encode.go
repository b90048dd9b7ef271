package format

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/sluice-dev/sluice/runtime/value"
)

// AvroRecordName is the full name of the record schema of encoded rows.
const AvroRecordName = "sluice.Row"

// AvroSchemaOf returns the Avro schema of rows of cols: a record with a
// field per column, each a union of null and the column's type. Timestamps
// are timestamp-micros, decimals bytes of logical type decimal.
func AvroSchemaOf(cols []value.Column) (string, error) {
	type logical struct {
		Type        string `json:"type"`
		LogicalType string `json:"logicalType"`
		Precision   uint8  `json:"precision,omitempty"`
		Scale       uint8  `json:"scale,omitempty"`
	}
	type field struct {
		Name    string `json:"name"`
		Type    []any  `json:"type"`
		Default any    `json:"default"`
	}
	type record struct {
		Type      string  `json:"type"`
		Name      string  `json:"name"`
		Namespace string  `json:"namespace"`
		Fields    []field `json:"fields"`
	}
	r := record{Type: "record", Name: "Row", Namespace: "sluice", Fields: make([]field, 0, len(cols))}
	for _, c := range cols {
		if !avroName(c.Name) {
			return "", fmt.Errorf("column %q is not an Avro field name ([A-Za-z_][A-Za-z0-9_]*): give it an alias", c.Name)
		}
		var t any
		switch c.Type.Kind {
		case value.KindBool:
			t = "boolean"
		case value.KindInt:
			t = "long"
		case value.KindDouble:
			t = "double"
		case value.KindString:
			t = "string"
		case value.KindDecimal:
			t = logical{Type: "bytes", LogicalType: "decimal", Precision: c.Type.Precision, Scale: c.Type.Scale}
		case value.KindTimestamp:
			t = logical{Type: "long", LogicalType: "timestamp-micros"}
		default:
			return "", fmt.Errorf("column %s is %s, which Avro records do not hold", c.Name, c.Type)
		}
		r.Fields = append(r.Fields, field{Name: c.Name, Type: []any{"null", t}})
	}
	b, err := json.Marshal(r)
	return string(b), err
}

func avroName(s string) bool {
	for i, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// AvroEncoder encodes rows as Avro binary records of the schema AvroSchemaOf
// gives for their columns, each after a fixed prefix: the schema registry
// wire format's header, or none. It keeps no state, so any goroutine may
// call it.
type AvroEncoder struct {
	cols   []value.Column
	prefix []byte
}

// NewAvroEncoder returns an encoder of rows of cols, each record after
// prefix.
func NewAvroEncoder(cols []value.Column, prefix []byte) *AvroEncoder {
	return &AvroEncoder{cols: cols, prefix: prefix}
}

// AvroWireHeader is the schema registry wire format's header of a record
// written with the schema of id.
func AvroWireHeader(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{0}, id)
}

// Encode appends row as one record.
func (e *AvroEncoder) Encode(dst []byte, row value.Row) []byte {
	dst = append(dst, e.prefix...)
	for i, c := range e.cols {
		v := row[i]
		if v.IsNull() {
			dst = append(dst, 0) // the union's null branch
			continue
		}
		dst = append(dst, 2)
		switch c.Type.Kind {
		case value.KindBool:
			b := byte(0)
			if v.Bool() {
				b = 1
			}
			dst = append(dst, b)
		case value.KindInt:
			dst = appendAvroLong(dst, v.Int())
		case value.KindDouble:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Double()))
		case value.KindString:
			dst = appendAvroLong(dst, int64(len(v.Str())))
			dst = append(dst, v.Str()...)
		case value.KindDecimal:
			u, err := value.Rescale(v.Unscaled(), v.Scale(), c.Type.Scale)
			if err != nil {
				u = v.Unscaled() // not reached: a column's values have its scale
			}
			dst = appendAvroDecimal(dst, u)
		case value.KindTimestamp:
			ns := v.Nanos()
			us := ns / 1e3
			if ns%1e3 < 0 {
				us-- // the microsecond the time falls in, before 1970 too
			}
			dst = appendAvroLong(dst, us)
		}
	}
	return dst
}

func appendAvroLong(dst []byte, n int64) []byte {
	return binary.AppendUvarint(dst, uint64(n<<1)^uint64(n>>63))
}

// appendAvroDecimal appends u as bytes: its length, then its shortest
// big-endian two's complement.
func appendAvroDecimal(dst []byte, u int64) []byte {
	n := 8
	for n > 1 {
		// The top byte can go if the next one's top bit repeats it.
		top, next := byte(u>>(8*(n-1))), byte(u>>(8*(n-2)))
		if !(top == 0 && next&0x80 == 0 || top == 0xff && next&0x80 != 0) {
			break
		}
		n--
	}
	dst = appendAvroLong(dst, int64(n))
	for j := n - 1; j >= 0; j-- {
		dst = append(dst, byte(u>>(8*j)))
	}
	return dst
}

// Header appends nothing: Avro records have no header of their own.
func (e *AvroEncoder) Header(dst []byte) []byte { return dst }
