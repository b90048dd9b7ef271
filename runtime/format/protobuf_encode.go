package format

import (
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluice-dev/sluice/runtime/value"
)

// ProtobufSchemaOf returns the .proto schema of rows of cols: a proto3
// message sluice.Row with a field per column, numbered from 1 in order,
// each with presence so that NULL is an absent field. Decimals are strings
// of their text, as google.type.Decimal holds them; timestamps are
// google.protobuf.Timestamp.
func ProtobufSchemaOf(cols []value.Column) (string, error) {
	var b strings.Builder
	b.WriteString("syntax = \"proto3\";\n\npackage sluice;\n\n")
	for _, c := range cols {
		if c.Type.Kind == value.KindTimestamp {
			b.WriteString("import \"google/protobuf/timestamp.proto\";\n\n")
			break
		}
	}
	b.WriteString("message Row {\n")
	for i, c := range cols {
		if !avroName(c.Name) {
			return "", fmt.Errorf("column %q is not a Protobuf field name ([A-Za-z_][A-Za-z0-9_]*): give it an alias", c.Name)
		}
		var t string
		switch c.Type.Kind {
		case value.KindBool:
			t = "optional bool"
		case value.KindInt:
			t = "optional int64"
		case value.KindDouble:
			t = "optional double"
		case value.KindString:
			t = "optional string"
		case value.KindDecimal:
			t = fmt.Sprintf("optional string /* decimal(%d,%d) */", c.Type.Precision, c.Type.Scale)
		case value.KindTimestamp:
			t = "google.protobuf.Timestamp"
		default:
			return "", fmt.Errorf("column %s is %s, which Protobuf messages do not hold", c.Name, c.Type)
		}
		fmt.Fprintf(&b, "  %s %s = %d;\n", t, c.Name, i+1)
	}
	b.WriteString("}\n")
	// protoc refuses some column names together (x_1 and x1 have the same
	// JSON name): what registries and code generators would refuse is
	// refused when the query is planned.
	if _, err := compileProto(b.String(), nil); err != nil {
		return "", fmt.Errorf("the results' Protobuf schema: %w; give the columns other names", err)
	}
	return b.String(), nil
}

// ProtobufEncoder encodes rows as messages of the schema ProtobufSchemaOf
// gives for their columns, each after a fixed prefix: the schema registry
// wire format's header, or none. It keeps no state, so any goroutine may
// call it.
type ProtobufEncoder struct {
	cols   []value.Column
	prefix []byte
}

// NewProtobufEncoder returns an encoder of rows of cols, each message after
// prefix.
func NewProtobufEncoder(cols []value.Column, prefix []byte) *ProtobufEncoder {
	return &ProtobufEncoder{cols: cols, prefix: prefix}
}

// ProtobufWireHeader is the schema registry wire format's header of a
// message of the first message type of the schema of id.
func ProtobufWireHeader(id uint32) []byte { return append(AvroWireHeader(id), 0) }

// Header appends nothing: messages have no header of their own.
func (e *ProtobufEncoder) Header(dst []byte) []byte { return dst }

// Encode appends row as one message.
func (e *ProtobufEncoder) Encode(dst []byte, row value.Row) []byte {
	dst = append(dst, e.prefix...)
	for i, c := range e.cols {
		v := row[i]
		if v.IsNull() {
			continue
		}
		num := protowire.Number(i + 1)
		switch c.Type.Kind {
		case value.KindBool:
			dst = protowire.AppendTag(dst, num, protowire.VarintType)
			dst = protowire.AppendVarint(dst, protowire.EncodeBool(v.Bool()))
		case value.KindInt:
			dst = protowire.AppendTag(dst, num, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(v.Int()))
		case value.KindDouble:
			dst = protowire.AppendTag(dst, num, protowire.Fixed64Type)
			dst = protowire.AppendFixed64(dst, math.Float64bits(v.Double()))
		case value.KindString:
			dst = protowire.AppendTag(dst, num, protowire.BytesType)
			dst = protowire.AppendString(dst, v.Str())
		case value.KindDecimal:
			dst = protowire.AppendTag(dst, num, protowire.BytesType)
			// The text is at most 21 bytes: its length fits in one byte.
			at := len(dst)
			dst = v.AppendText(append(dst, 0))
			dst[at] = byte(len(dst) - at - 1)
		case value.KindTimestamp:
			ns := v.Nanos()
			secs, nanos := ns/1e9, ns%1e9
			if nanos < 0 {
				secs, nanos = secs-1, nanos+1e9
			}
			var ts [24]byte
			body := ts[:0]
			if secs != 0 {
				body = protowire.AppendVarint(protowire.AppendTag(body, 1, protowire.VarintType), uint64(secs))
			}
			if nanos != 0 {
				body = protowire.AppendVarint(protowire.AppendTag(body, 2, protowire.VarintType), uint64(nanos))
			}
			dst = protowire.AppendTag(dst, num, protowire.BytesType)
			dst = protowire.AppendBytes(dst, body)
		}
	}
	return dst
}
