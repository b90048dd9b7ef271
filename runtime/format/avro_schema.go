package format

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/runtime/value"
)

// avroKind is the type of an Avro schema node.
type avroKind uint8

const (
	avroNull avroKind = iota
	avroBoolean
	avroInt
	avroLong
	avroFloat
	avroDouble
	avroBytes
	avroString
	avroFixed
	avroEnum
	avroRecord
	avroArray
	avroMap
	avroUnion
)

// maxAvroDepth bounds the nesting of a decoded value, which a recursive
// schema leaves to the data.
const maxAvroDepth = 256

// avroNode is a schema in the form the decoder walks: one node per type,
// named types shared, so a recursive schema is a cyclic graph.
type avroNode struct {
	kind     avroKind
	text     string           // the type as a message names it
	logical  avro.LogicalType // "" for none
	prec     int              // decimal precision
	scale    int              // decimal scale
	size     int              // fixed size
	symbols  []string         // enum symbols
	unknown  []bool           // symbols a reader's enum lacks, without default; nil for none
	enumDef  string           // an enum's default symbol, if hasDef
	hasDef   bool
	fields   []avroField // record fields
	items    *avroNode   // array items, map values
	branches []*avroNode // union branches
	empty    bool        // encodes in no bytes (null, a record of such)
}

type avroField struct {
	name    string
	aliases []string
	node    *avroNode
	def     *avro.Field // for its default
}

// parseAvroSchema parses the JSON text of an Avro schema after the schemas
// it references, whose named types it may use. Each parse has a cache of
// its own, so that a name defined by one schema (an earlier version of the
// same record) is never taken for another's.
func parseAvroSchema(text string, refs []SchemaReference) (*avroNode, error) {
	cache := &avro.SchemaCache{}
	for _, r := range refs {
		if _, err := avro.ParseWithCache(r.Text, "", cache); err != nil {
			return nil, fmt.Errorf("avro schema %s, referenced: %w", r.Name, err)
		}
	}
	s, err := avro.ParseWithCache(text, "", cache)
	if err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	return buildAvroNode(s, map[string]*avroNode{}), nil
}

func buildAvroNode(s avro.Schema, named map[string]*avroNode) *avroNode {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		if nd, ok := named[n.FullName()]; ok {
			return nd
		}
	}
	nd := &avroNode{text: string(s.Type())}
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		nd.logical = l.Logical().Type()
		nd.text = string(nd.logical)
		if d, ok := l.Logical().(*avro.DecimalLogicalSchema); ok {
			nd.prec, nd.scale = d.Precision(), d.Scale()
			nd.text = fmt.Sprintf("decimal(%d,%d)", nd.prec, nd.scale)
		}
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		nd.kind, nd.empty = avroNull, true
	case *avro.PrimitiveSchema:
		nd.kind = map[avro.Type]avroKind{
			avro.Boolean: avroBoolean, avro.Int: avroInt, avro.Long: avroLong,
			avro.Float: avroFloat, avro.Double: avroDouble, avro.Bytes: avroBytes,
			avro.String: avroString, avro.Null: avroNull,
		}[s.Type()]
		nd.empty = nd.kind == avroNull
	case *avro.FixedSchema:
		nd.kind, nd.size = avroFixed, s.Size()
		nd.empty = nd.size == 0
		named[s.FullName()] = nd
	case *avro.EnumSchema:
		nd.kind, nd.symbols = avroEnum, s.Symbols()
		nd.enumDef, nd.hasDef = s.Default(), s.HasDefault()
		nd.text = "enum " + s.FullName()
		named[s.FullName()] = nd
	case *avro.RecordSchema:
		nd.kind, nd.text = avroRecord, "record "+s.FullName()
		named[s.FullName()] = nd
		nd.empty = true
		for _, f := range s.Fields() {
			c := buildAvroNode(f.Type(), named)
			nd.fields = append(nd.fields, avroField{name: f.Name(), aliases: f.Aliases(), node: c, def: f})
			// A field of the record itself is in a union, never empty.
			nd.empty = nd.empty && c.empty && c != nd
		}
	case *avro.ArraySchema:
		nd.kind, nd.items = avroArray, buildAvroNode(s.Items(), named)
		nd.text = "array"
	case *avro.MapSchema:
		nd.kind, nd.items = avroMap, buildAvroNode(s.Values(), named)
		nd.text = "map"
	case *avro.UnionSchema:
		nd.kind = avroUnion
		var names []string
		for _, b := range s.Types() {
			bn := buildAvroNode(b, named)
			nd.branches = append(nd.branches, bn)
			names = append(names, bn.text)
		}
		nd.text = "[" + strings.Join(names, ", ") + "]"
	}
	return nd
}

// nullable returns the one non-null branch of a union of null and one other
// type, or nd itself when it is not a union.
func (nd *avroNode) nullable() (*avroNode, bool) {
	if nd.kind != avroUnion {
		return nd, true
	}
	var t *avroNode
	for _, b := range nd.branches {
		if b.kind == avroNull {
			continue
		}
		if t != nil {
			return nil, false
		}
		t = b
	}
	return t, t != nil
}

// sqlType is the column type an Avro type is read as, when the columns come
// from the schema.
func (nd *avroNode) sqlType() (value.Type, error) {
	t, ok := nd.nullable()
	if !ok {
		return value.Type{}, fmt.Errorf("is the union %s; a column takes a union of null and one type", nd.text)
	}
	switch t.kind {
	case avroBoolean:
		return value.Bool, nil
	case avroInt, avroLong:
		switch t.logical {
		case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros, avro.Date:
			return value.Timestamp, nil
		}
		return value.Int, nil
	case avroFloat, avroDouble:
		return value.Double, nil
	case avroString, avroEnum:
		return value.String, nil
	case avroBytes, avroFixed:
		if t.logical == avro.Decimal {
			if t.prec > value.MaxDecimalPrecision {
				return value.Type{}, fmt.Errorf("is %s, wider than the %d digits of a Sluice decimal; declare the source's columns with this one as double", t.text, value.MaxDecimalPrecision)
			}
			return value.DecimalType(t.prec, t.scale)
		}
		return value.Type{}, fmt.Errorf("is %s, which has no SQL type here; declare the source's columns without it (unread fields are skipped), or as string if it holds UTF-8 text", t.text)
	}
	return value.Type{}, fmt.Errorf("is %s; columns are scalar: declare the source's columns without it, and unread fields are skipped", t.text)
}

// AvroColumns returns the columns of an Avro record schema: one per field,
// of the field's SQL type.
func AvroColumns(schema string) ([]value.Column, error) {
	nd, err := parseAvroSchema(schema, nil)
	if err != nil {
		return nil, err
	}
	if nd.kind != avroRecord {
		return nil, fmt.Errorf("avro schema: is %s; records are read from a record schema", nd.text)
	}
	cols := make([]value.Column, 0, len(nd.fields))
	for _, f := range nd.fields {
		t, err := f.node.sqlType()
		if err != nil {
			return nil, fmt.Errorf("avro schema: field %s %w", f.name, err)
		}
		cols = append(cols, value.Column{Name: f.name, Type: t})
	}
	return cols, nil
}

// readable reports why values of nd cannot be read into a column of type
// to, or nil if they can.
func (nd *avroNode) readable(to value.Type) error {
	if nd.kind == avroUnion {
		for _, b := range nd.branches {
			if err := b.readable(to); err != nil {
				return err
			}
		}
		return nil
	}
	ok := false
	switch nd.kind {
	case avroNull:
		ok = true
	case avroBoolean:
		ok = to.Kind == value.KindBool
	case avroInt, avroLong:
		switch to.Kind {
		case value.KindInt, value.KindDouble, value.KindDecimal:
			ok = true
		case value.KindTimestamp:
			ok = nd.timeUnit() != 0
		}
	case avroFloat, avroDouble:
		ok = to.Kind == value.KindDouble
	case avroString, avroEnum:
		ok = to.Kind == value.KindString
	case avroBytes, avroFixed:
		if nd.logical == avro.Decimal {
			ok = to.Kind == value.KindDouble || to.Kind == value.KindDecimal && int(to.Scale) >= nd.scale
		} else {
			ok = to.Kind == value.KindString
		}
	}
	if !ok {
		return fmt.Errorf("is %s, which does not read as %s", nd.text, to)
	}
	return nil
}

// timeUnit is the nanoseconds in one unit of an int or long that holds a
// time, or 0 if it holds none.
func (nd *avroNode) timeUnit() int64 {
	switch nd.logical {
	case avro.TimestampMillis, avro.LocalTimestampMillis:
		return 1e6
	case avro.TimestampMicros, avro.LocalTimestampMicros:
		return 1e3
	case avro.Date:
		return 86400e9
	}
	return 0
}

// defaultValue converts a reader field's default, as the schema parser
// holds it, to a value of type to.
func defaultValue(f *avro.Field, to value.Type) (value.Value, error) {
	d := f.Default()
	if d == nil {
		return value.NullValue(), nil
	}
	nd := buildAvroNode(f.Type(), map[string]*avroNode{})
	if nd.kind == avroUnion && len(nd.branches) > 0 {
		nd = nd.branches[0] // a union's default is of its first branch
	}
	bad := fmt.Errorf("field %s: default %v does not read as %s", f.Name(), d, to)
	if b, ok := defaultBytes(d); ok {
		// bytes and fixed defaults: text, or a decimal's unscaled value.
		r := avroReader{b: b}
		var v value.Value
		if nd.logical == avro.Decimal {
			v = r.decimal(b, nd.scale, to)
		} else if to.Kind == value.KindString && utf8.Valid(b) {
			v = value.StringValue(string(b))
		} else {
			return value.Value{}, bad
		}
		if r.err != nil {
			return value.Value{}, fmt.Errorf("field %s: default: %w", f.Name(), r.err)
		}
		return v, nil
	}
	switch to.Kind {
	case value.KindBool:
		if b, ok := d.(bool); ok {
			return value.BoolValue(b), nil
		}
	case value.KindString:
		switch d := d.(type) {
		case string:
			return value.StringValue(d), nil
		case []byte:
			return value.StringValue(string(d)), nil
		}
	case value.KindInt, value.KindDouble, value.KindDecimal, value.KindTimestamp:
		var n float64
		switch d := d.(type) {
		case int:
			n = float64(d)
		case int32:
			n = float64(d)
		case int64:
			n = float64(d)
		case float32:
			n = float64(d)
		case float64:
			n = d
		case json.Number:
			var err error
			if n, err = d.Float64(); err != nil {
				return value.Value{}, bad
			}
		default:
			return value.Value{}, bad
		}
		switch to.Kind {
		case value.KindInt:
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return value.IntValue(int64(n)), nil
			}
		case value.KindDouble:
			return value.DoubleValue(n), nil
		case value.KindDecimal:
			u, err := value.DecimalFromFloat(n, to.Scale)
			if err == nil && value.FitsPrecision(u, to.Precision) {
				return value.DecimalValue(u, to.Scale), nil
			}
		case value.KindTimestamp:
			if u := nd.timeUnit(); u != 0 && n == math.Trunc(n) && math.Abs(n) < float64(math.MaxInt64/u) {
				return value.TimestampValue(int64(n) * u), nil
			}
		}
	}
	return value.Value{}, bad
}

// defaultBytes returns the bytes of a bytes or fixed default, which the
// schema parser holds as a byte slice or array.
func defaultBytes(d any) ([]byte, bool) {
	if b, ok := d.([]byte); ok {
		return b, true
	}
	v := reflect.ValueOf(d)
	if v.Kind() != reflect.Array || v.Type().Elem().Kind() != reflect.Uint8 {
		return nil, false
	}
	b := make([]byte, v.Len())
	reflect.Copy(reflect.ValueOf(b), v)
	return b, true
}

// resolveEnums returns w, a writer's type, with the symbols of its enums
// resolved to the reader's enum r, as Avro resolves them: a symbol the
// reader lacks reads as the reader's default, or fails the record.
func resolveEnums(w, r *avroNode) *avroNode {
	rt, ok := r.nullable()
	if !ok || rt.kind != avroEnum {
		return w
	}
	c := *w
	switch w.kind {
	case avroEnum:
		c.symbols, c.unknown = make([]string, len(w.symbols)), make([]bool, len(w.symbols))
		for i, sym := range w.symbols {
			switch {
			case slices.Contains(rt.symbols, sym):
				c.symbols[i] = sym
			case rt.hasDef:
				c.symbols[i] = rt.enumDef
			default:
				c.symbols[i], c.unknown[i] = sym, true
			}
		}
	case avroUnion:
		c.branches = make([]*avroNode, len(w.branches))
		for i, b := range w.branches {
			c.branches[i] = resolveEnums(b, r)
		}
	default:
		return w
	}
	return &c
}
