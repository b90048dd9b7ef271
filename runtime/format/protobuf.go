package format

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluice-dev/sluice/runtime/value"
)

// protoMainFile is the name a schema's own .proto text compiles under.
const protoMainFile = "schema.proto"

// compileProto compiles the .proto text main, which may import the
// standard files (google/protobuf/timestamp.proto, ...) and refs by name.
func compileProto(main string, refs []SchemaReference) (protoreflect.FileDescriptor, error) {
	srcs := map[string]string{protoMainFile: main}
	for _, r := range refs {
		srcs[r.Name] = r.Text
	}
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(srcs)}),
		MaxParallelism: 1,
	}
	files, err := c.Compile(context.Background(), protoMainFile)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema: %w", err)
	}
	return files[0], nil
}

// protoMessage returns the message of fd named name, a full name such as
// markets.Trade, or fd's first message when name is empty.
func protoMessage(fd protoreflect.FileDescriptor, name string) (protoreflect.MessageDescriptor, error) {
	if name == "" {
		if fd.Messages().Len() == 0 {
			return nil, errors.New("protobuf schema: the file defines no message")
		}
		return fd.Messages().Get(0), nil
	}
	var found protoreflect.MessageDescriptor
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			if m := ms.Get(i); string(m.FullName()) == name {
				found = m
			} else {
				walk(m.Messages())
			}
		}
	}
	walk(fd.Messages())
	if found == nil {
		return nil, fmt.Errorf("protobuf schema: no message %s (messages are named in full, with the package: %s.%s)", name, fd.Package(), name)
	}
	return found, nil
}

// protoByIndexes returns the message at a path of message indexes, as the
// schema registry wire format gives it: [1, 0] is the first message nested
// in the file's second.
func protoByIndexes(fd protoreflect.FileDescriptor, path []int) (protoreflect.MessageDescriptor, error) {
	ms := fd.Messages()
	var m protoreflect.MessageDescriptor
	for _, i := range path {
		if i < 0 || i >= ms.Len() {
			return nil, fmt.Errorf("message index %v is not in the schema", path)
		}
		m = ms.Get(i)
		ms = m.Messages()
	}
	return m, nil
}

// protoWrapped is the kind a well-known message type holds: a Timestamp,
// or a wrapper such as google.protobuf.Int64Value; 0 for other messages.
func protoWrapped(m protoreflect.MessageDescriptor) (k protoreflect.Kind, timestamp bool) {
	switch m.FullName() {
	case "google.protobuf.Timestamp":
		return protoreflect.Int64Kind, true
	case "google.protobuf.DoubleValue":
		return protoreflect.DoubleKind, false
	case "google.protobuf.FloatValue":
		return protoreflect.FloatKind, false
	case "google.protobuf.Int64Value":
		return protoreflect.Int64Kind, false
	case "google.protobuf.UInt64Value":
		return protoreflect.Uint64Kind, false
	case "google.protobuf.Int32Value":
		return protoreflect.Int32Kind, false
	case "google.protobuf.UInt32Value":
		return protoreflect.Uint32Kind, false
	case "google.protobuf.BoolValue":
		return protoreflect.BoolKind, false
	case "google.protobuf.StringValue":
		return protoreflect.StringKind, false
	case "google.protobuf.BytesValue":
		return protoreflect.BytesKind, false
	}
	return 0, false
}

// protoSQLType is the column type a field is read as, when the columns
// come from the schema.
func protoSQLType(f protoreflect.FieldDescriptor) (value.Type, error) {
	if f.IsList() || f.IsMap() {
		return value.Type{}, fmt.Errorf("is repeated; columns are scalar: declare the source's columns without it, and unread fields are skipped")
	}
	k := f.Kind()
	if k == protoreflect.MessageKind {
		inner, ts := protoWrapped(f.Message())
		switch {
		case ts:
			return value.Timestamp, nil
		case inner == 0:
			return value.Type{}, fmt.Errorf("is the message %s; columns are scalar: declare the source's columns without it, and unread fields are skipped", f.Message().FullName())
		}
		k = inner
	}
	switch k {
	case protoreflect.BoolKind:
		return value.Bool, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return value.Int, nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return value.Double, nil
	case protoreflect.StringKind, protoreflect.EnumKind:
		return value.String, nil
	}
	return value.Type{}, fmt.Errorf("is %s, which has no SQL type here; declare the source's columns without it (unread fields are skipped), or as string if it holds UTF-8 text", k)
}

// ProtobufColumns returns the columns of a message of a .proto schema: one
// per field, of the field's SQL type. message is the message's full name,
// or empty for the file's first.
func ProtobufColumns(schema, message string) ([]value.Column, error) {
	fd, err := compileProto(schema, nil)
	if err != nil {
		return nil, err
	}
	m, err := protoMessage(fd, message)
	if err != nil {
		return nil, err
	}
	fields := m.Fields()
	cols := make([]value.Column, 0, fields.Len())
	for i := range fields.Len() {
		f := fields.Get(i)
		t, err := protoSQLType(f)
		if err != nil {
			return nil, fmt.Errorf("protobuf schema: field %s %w", f.Name(), err)
		}
		cols = append(cols, value.Column{Name: string(f.Name()), Type: t})
	}
	return cols, nil
}

// protoStep reads one field of a message into a column.
type protoStep struct {
	name  string
	col   int
	to    value.Type
	kind  protoreflect.Kind // of the value, inside a wrapper
	wire  protowire.Type
	msg   bool // a wrapper or Timestamp message around the value
	ts    bool // a Timestamp
	enum  protoreflect.EnumValueDescriptors
	oneof []int // the columns of the other fields of its oneof
	// clear, of a field of a oneof that is not read (no column names it,
	// or Prune), skips its value: it only makes the oneof's fields read
	// NULL, as it is the oneof's value now.
	clear bool
}

// protoProgram reads messages of one writer message type into the columns.
type protoProgram struct {
	steps []protoStep
	byNum map[protowire.Number]int // the step of each read field
	dense []int16                  // byNum for small field numbers, step+1
	zeros []columnValue            // columns of fields without presence
	err   error
}

// ProtobufDecoder decodes Protobuf messages into rows: plain, every record
// one message type, or in the schema registry wire format (a zero byte,
// the writer schema's 4-byte id, the message's indexes in that schema, then
// the message), each record with the schema of its id. Fields are matched
// to the columns by name; fields no column names are skipped without being
// decoded. An absent field is NULL when it has presence (optional,
// messages, proto2), else its zero value, as Protobuf reads it.
type ProtobufDecoder struct {
	cols    []value.Column
	byName  map[string]int
	plain   *protoProgram
	writers WriterSchemas
	byKey   map[string]*protoProgram // by the id and indexes bytes of the wire header
	files   map[uint32]protoreflect.FileDescriptor
	skip    unreadColumns                  // not read (Prune), their fields skipped
	message protoreflect.MessageDescriptor // a plain decoder's
}

// Prune makes the decoder decode only the columns read says, and skip the
// others' fields, which stay NULL: a query's unread columns cost only
// their skipping. Which columns a message must have is as before.
func (d *ProtobufDecoder) Prune(read []bool) {
	d.skip = unread(read)
	if d.plain != nil {
		d.plain = d.compile(d.message)
	}
	clear(d.byKey)
}

// NewProtobufDecoder returns a decoder into cols. schema, if not empty, is
// a .proto text and message its message (full name, or empty for the
// first): the columns must be its fields, and without writers every record
// is a plain message of it. writers gives a registry's schemas by id.
func NewProtobufDecoder(cols []value.Column, schema, message string, writers WriterSchemas) (*ProtobufDecoder, error) {
	d := &ProtobufDecoder{cols: cols, byName: make(map[string]int, len(cols)), writers: writers}
	for i, c := range cols {
		d.byName[c.Name] = i
	}
	if schema != "" {
		fd, err := compileProto(schema, nil)
		if err != nil {
			return nil, err
		}
		m, err := protoMessage(fd, message)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			f := m.Fields().ByName(protoreflect.Name(c.Name))
			if f == nil {
				return nil, fmt.Errorf("column %s: message %s has no field %s", c.Name, m.FullName(), c.Name)
			}
			if err := protoReadable(f, c.Type); err != nil {
				return nil, fmt.Errorf("column %s: protobuf field %s %w", c.Name, c.Name, err)
			}
		}
		if writers == nil {
			d.plain, d.message = d.compile(m), m
			return d, d.plain.err
		}
	}
	if writers == nil {
		return nil, errors.New("protobuf: plain records need the schema they were written with")
	}
	d.byKey, d.files = map[string]*protoProgram{}, map[uint32]protoreflect.FileDescriptor{}
	return d, nil
}

// CheckProtobufColumns checks that each column is a field of the message
// of schema, of a type that reads as the column's.
func CheckProtobufColumns(cols []value.Column, schema, message string) error {
	_, err := NewProtobufDecoder(cols, schema, message, func(uint32) (WriterSchema, error) { return WriterSchema{}, nil })
	return err
}

// protoReadable reports why values of field f cannot be read into a
// column of type to, or nil if they can.
func protoReadable(f protoreflect.FieldDescriptor, to value.Type) error {
	if f.IsList() || f.IsMap() {
		return errors.New("is repeated, which does not read as a column")
	}
	k := f.Kind()
	what := k.String()
	if k == protoreflect.MessageKind {
		inner, ts := protoWrapped(f.Message())
		what = string(f.Message().FullName())
		if ts {
			if to.Kind == value.KindTimestamp {
				return nil
			}
			return fmt.Errorf("is %s, which does not read as %s", what, to)
		}
		if inner == 0 {
			return fmt.Errorf("is the message %s, which does not read as a column", what)
		}
		k = inner
	}
	ok := false
	switch k {
	case protoreflect.BoolKind:
		ok = to.Kind == value.KindBool
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		ok = to.Kind == value.KindInt || to.Kind == value.KindDouble || to.Kind == value.KindDecimal
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		ok = to.Kind == value.KindDouble
	case protoreflect.StringKind, protoreflect.EnumKind, protoreflect.BytesKind:
		ok = to.Kind == value.KindString
	}
	if !ok {
		return fmt.Errorf("is %s, which does not read as %s", what, to)
	}
	return nil
}

// compile plans the reading of messages of m.
func (d *ProtobufDecoder) compile(m protoreflect.MessageDescriptor) *protoProgram {
	p := &protoProgram{byNum: map[protowire.Number]int{}}
	fields := m.Fields()
	if !slices.ContainsFunc(d.cols, func(c value.Column) bool { return fields.ByName(protoreflect.Name(c.Name)) != nil }) {
		// Not one column by name: a message of something else, or columns
		// misnamed, which would read as NULL in every record.
		p.err = fmt.Errorf("message %s has none of the columns (%s)", m.FullName(), strings.Join(value.Names(d.cols), ", "))
		return p
	}
	var unread []protoreflect.FieldDescriptor // fields of oneofs not read
	for i := range fields.Len() {
		f := fields.Get(i)
		col, ok := d.byName[string(f.Name())]
		if !ok {
			unread = append(unread, f)
			continue
		}
		to := d.cols[col].Type
		if err := protoReadable(f, to); err != nil {
			p.err = fmt.Errorf("field %s %w (column %s)", f.Name(), err, d.cols[col].Name)
			return p
		}
		if d.skip.has(col) {
			unread = append(unread, f) // skipped as any field no column names
			continue
		}
		s := protoStep{name: string(f.Name()), col: col, to: to, kind: f.Kind()}
		if s.kind == protoreflect.MessageKind {
			s.msg = true
			s.kind, s.ts = protoWrapped(f.Message())
		}
		if s.kind == protoreflect.EnumKind {
			s.enum = f.Enum().Values()
		}
		s.wire = protoWire(s.kind)
		if s.msg {
			s.wire = protowire.BytesType
		}
		if !f.HasPresence() {
			// An absent field is its zero value.
			zero, err := protoConvert(s.kind, 0, nil, s.enum, to)
			if err != nil {
				p.err = fmt.Errorf("field %s: %w", f.Name(), err)
				return p
			}
			p.zeros = append(p.zeros, columnValue{col: col, v: zero})
		}
		p.add(s, f.Number())
	}
	read := len(p.steps)
	for _, f := range unread {
		if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
			p.add(protoStep{name: string(f.Name()), col: -1, clear: true}, f.Number())
		}
	}
	for i := range p.steps {
		o := fields.ByName(protoreflect.Name(p.steps[i].name)).ContainingOneof()
		if o == nil || o.IsSynthetic() {
			continue // a proto3 optional field is a oneof of its own
		}
		for j := range p.steps[:read] {
			if j != i && fields.ByName(protoreflect.Name(p.steps[j].name)).ContainingOneof() == o {
				p.steps[i].oneof = append(p.steps[i].oneof, p.steps[j].col)
			}
		}
	}
	return p
}

// add adds a step for field number num.
func (p *protoProgram) add(s protoStep, num protowire.Number) {
	p.byNum[num] = len(p.steps)
	if num < 256 {
		for len(p.dense) <= int(num) {
			p.dense = append(p.dense, 0)
		}
		p.dense[num] = int16(len(p.steps) + 1)
	}
	p.steps = append(p.steps, s)
}

// protoWire is the wire type of a scalar kind.
func protoWire(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind:
		return protowire.BytesType
	}
	return protowire.VarintType
}

// Decode parses one record into row, which has one value per column and is
// all NULL.
func (d *ProtobufDecoder) Decode(rec []byte, row value.Row) error {
	if d.plain != nil {
		return d.plain.decode(rec, row)
	}
	if len(rec) < 5 || rec[0] != 0 {
		return errors.New("not in the schema registry wire format: want a zero byte and a 4-byte schema id before the message")
	}
	id := binary.BigEndian.Uint32(rec[1:5])
	path, n, err := protoIndexes(rec[5:])
	if err != nil {
		return fmt.Errorf("schema id %d: %w", id, err)
	}
	key := rec[1 : 5+n]
	p := d.byKey[string(key)]
	if p == nil {
		if p, err = d.writer(id, path); err != nil {
			return fmt.Errorf("schema id %d: %w", id, err)
		}
		if len(d.byKey) >= maxWriterSchemas {
			clear(d.byKey) // records with made-up ids or indexes
			clear(d.files)
		}
		d.byKey[string(key)] = p
	}
	if err := p.decode(rec[5+n:], row); err != nil {
		return fmt.Errorf("schema id %d: %w", id, err)
	}
	return nil
}

// protoIndexes reads the message indexes of the wire format: a zig-zag
// count and as many zig-zag indexes, or a single 0 for the first message.
func protoIndexes(b []byte) (path []int, n int, err error) {
	count, m := protowire.ConsumeVarint(b)
	if m < 0 {
		return nil, 0, errors.New("malformed message indexes")
	}
	c := protowire.DecodeZigZag(count)
	n = m
	if c == 0 {
		return []int{0}, n, nil
	}
	if c < 0 || c > 64 {
		return nil, 0, fmt.Errorf("%d message indexes", c)
	}
	for range c {
		v, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			return nil, 0, errors.New("malformed message indexes")
		}
		path = append(path, int(protowire.DecodeZigZag(v)))
		n += m
	}
	return path, n, nil
}

// writer returns the program of the message at path in the writer schema
// of id; an error only when the registry could not be asked.
func (d *ProtobufDecoder) writer(id uint32, path []int) (*protoProgram, error) {
	fd, ok := d.files[id]
	if !ok {
		ws, err := d.writers(id)
		switch {
		case errors.Is(err, ErrRegistryUnavailable):
			return nil, err
		case err != nil:
			return &protoProgram{err: err}, nil
		case ws.Type != SchemaProtobuf:
			return &protoProgram{err: fmt.Errorf("the registry's schema is %s, not Protobuf", ws.Type)}, nil
		}
		if fd, err = compileProto(ws.Text, ws.References); err != nil {
			return &protoProgram{err: err}, nil
		}
		d.files[id] = fd
	}
	m, err := protoByIndexes(fd, path)
	if err != nil {
		return &protoProgram{err: err}, nil
	}
	return d.compile(m), nil
}

func (p *protoProgram) step(num protowire.Number) *protoStep {
	if int(num) < len(p.dense) {
		if i := p.dense[num]; i > 0 {
			return &p.steps[i-1]
		}
		return nil
	}
	if i, ok := p.byNum[num]; ok {
		return &p.steps[i]
	}
	return nil
}

func (p *protoProgram) decode(b []byte, row value.Row) error {
	if p.err != nil {
		return p.err
	}
	for _, z := range p.zeros {
		row[z.col] = z.v
	}
	for at := 0; at < len(b); {
		start := at // errors point at the field's tag
		num, typ, n := protowire.ConsumeTag(b[at:])
		if n < 0 {
			return fmt.Errorf("byte %d: %w", start, protowire.ParseError(n))
		}
		at += n
		s := p.step(num)
		if s == nil || s.clear {
			n = protowire.ConsumeFieldValue(num, typ, b[at:])
			if n < 0 {
				return fmt.Errorf("field %d at byte %d: %w", num, start, protowire.ParseError(n))
			}
			at += n
			if s != nil {
				for _, o := range s.oneof {
					row[o] = value.NullValue() // the oneof's value is this field's now
				}
			}
			continue
		}
		if typ != s.wire {
			return fmt.Errorf("field %s at byte %d: wire type %d, want %d", s.name, start, typ, s.wire)
		}
		// A message field read before in this record merges with this
		// one; a message column is NULL until its field is read.
		v, n, err := s.read(b[at:], row[s.col])
		if err != nil {
			return fmt.Errorf("field %s at byte %d: %w", s.name, start, err)
		}
		row[s.col] = v
		for _, o := range s.oneof {
			row[o] = value.NullValue() // the oneof's last field read is its value
		}
		at += n
	}
	return nil
}

var (
	errProtoRange = errors.New("out of range for the column's type")
	errProtoUTF8  = errors.New("invalid UTF-8")
)

// read reads the field's value at the start of b, of the step's wire type.
// A message field merges into prev, its value so far, unless that is NULL.
func (s *protoStep) read(b []byte, prev value.Value) (value.Value, int, error) {
	if !s.msg {
		return readProtoScalar(s.kind, s.wire, b, s.enum, s.to)
	}
	body, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return value.Value{}, 0, protowire.ParseError(n)
	}
	// A wrapper's value is field 1; a Timestamp's seconds 1 and nanos 2.
	// Absent fields are zero, or what an earlier occurrence set.
	var secs, nanos int64
	v, err := protoConvert(s.kind, 0, nil, s.enum, s.to)
	if !prev.IsNull() {
		v = prev
		if s.ts {
			secs, nanos = prev.Nanos()/1e9, prev.Nanos()%1e9
			if nanos < 0 {
				secs, nanos = secs-1, nanos+1e9
			}
		}
	}
	for at := 0; at < len(body) && err == nil; {
		num, typ, m := protowire.ConsumeTag(body[at:])
		if m < 0 {
			return value.Value{}, 0, protowire.ParseError(m)
		}
		at += m
		switch {
		case s.ts && num <= 2 && typ == protowire.VarintType:
			x, m := protowire.ConsumeVarint(body[at:])
			if m < 0 {
				return value.Value{}, 0, protowire.ParseError(m)
			}
			if num == 1 {
				secs = int64(x)
			} else {
				nanos = int64(int32(x))
			}
			at += m
		case !s.ts && num == 1 && typ == protoWire(s.kind):
			v, m, err = readProtoScalar(s.kind, typ, body[at:], s.enum, s.to)
			at += m
		default:
			if m = protowire.ConsumeFieldValue(num, typ, body[at:]); m < 0 {
				return value.Value{}, 0, protowire.ParseError(m)
			}
			at += m
		}
	}
	if err != nil {
		return value.Value{}, 0, err
	}
	if s.ts {
		if nanos < 0 || nanos >= 1e9 || secs > math.MaxInt64/1_000_000_000-1 || secs < math.MinInt64/1_000_000_000+1 {
			return value.Value{}, 0, errProtoRange
		}
		return value.TimestampValue(secs*1e9 + nanos), n, nil
	}
	return v, n, nil
}

// readProtoScalar reads a value of kind k, of wire type typ, as type to.
func readProtoScalar(k protoreflect.Kind, typ protowire.Type, b []byte, enum protoreflect.EnumValueDescriptors, to value.Type) (value.Value, int, error) {
	var x uint64
	var n int
	var raw []byte
	switch typ {
	case protowire.VarintType:
		x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		var u uint32
		u, n = protowire.ConsumeFixed32(b)
		x = uint64(u)
	case protowire.Fixed64Type:
		x, n = protowire.ConsumeFixed64(b)
	default:
		raw, n = protowire.ConsumeBytes(b)
	}
	if n < 0 {
		return value.Value{}, 0, protowire.ParseError(n)
	}
	v, err := protoConvert(k, x, raw, enum, to)
	return v, n, err
}

// protoConvert converts a field's raw value, x for numbers or raw for
// strings and bytes, to a value of type to.
func protoConvert(k protoreflect.Kind, x uint64, raw []byte, enum protoreflect.EnumValueDescriptors, to value.Type) (value.Value, error) {
	var i int64
	switch k {
	case protoreflect.BoolKind:
		return value.BoolValue(x != 0), nil
	case protoreflect.FloatKind:
		return value.DoubleValue(float64(math.Float32frombits(uint32(x)))), nil
	case protoreflect.DoubleKind:
		return value.DoubleValue(math.Float64frombits(x)), nil
	case protoreflect.StringKind, protoreflect.BytesKind:
		if !utf8.Valid(raw) {
			return value.Value{}, errProtoUTF8
		}
		return value.StringValue(bytesString(raw)), nil
	case protoreflect.EnumKind:
		num := protoreflect.EnumNumber(int32(x))
		if ev := enum.ByNumber(num); ev != nil {
			return value.StringValue(string(ev.Name())), nil
		}
		// An open enum keeps numbers it does not name.
		return value.StringValue(strconv.Itoa(int(num))), nil
	case protoreflect.Int32Kind, protoreflect.Sfixed32Kind:
		i = int64(int32(x))
	case protoreflect.Sint32Kind:
		i = int64(int32(protowire.DecodeZigZag(x & math.MaxUint32)))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		i = int64(uint32(x))
	case protoreflect.Sint64Kind:
		i = protowire.DecodeZigZag(x)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if x > math.MaxInt64 {
			return value.Value{}, errProtoRange
		}
		i = int64(x)
	default: // int64, sfixed64
		i = int64(x)
	}
	switch to.Kind {
	case value.KindDouble:
		return value.DoubleValue(float64(i)), nil
	case value.KindDecimal:
		u, err := value.Rescale(i, 0, to.Scale)
		if err != nil || !value.FitsPrecision(u, to.Precision) {
			return value.Value{}, errProtoRange
		}
		return value.DecimalValue(u, to.Scale), nil
	}
	return value.IntValue(i), nil
}
