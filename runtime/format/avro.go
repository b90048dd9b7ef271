package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/runtime/value"
)

// WriterSchemas returns the schema a schema registry holds for an id. It
// retries what can be retried itself; an error it returns is the record's,
// unless it says the registry is unavailable, which a decoder does not
// remember.
type WriterSchemas func(id uint32) (WriterSchema, error)

// WriterSchema is a schema of a registry: its type, AVRO or PROTOBUF, its
// text, and the schemas it references, each before those that reference
// it.
type WriterSchema struct {
	Type       string
	Text       string
	References []SchemaReference
}

// SchemaReference is a schema another references: by the name its
// referrer imports it by (a .proto file name; for Avro, unused: the named
// types it defines), and its text.
type SchemaReference struct {
	Name, Text string
}

// Schema types of a registry.
const (
	SchemaAvro     = "AVRO"
	SchemaProtobuf = "PROTOBUF"
)

// AvroDecoder decodes Avro binary records into rows: plain, every record
// written with one schema, or in the schema registry wire format (a zero
// byte, the writer schema's id in four bytes, then the Avro binary), each
// record with the schema of its id.
//
// A writer schema's fields are matched to the columns by name, as Avro
// resolves a writer schema to a reader's: fields the query does not read
// are skipped without being decoded; a column the writer lacks is the
// reader schema's default, or NULL when the columns were declared without
// one. Strings point into the record's bytes.
type AvroDecoder struct {
	cols   []value.Column
	byName map[string]int // the column of each name, and of each reader field alias
	reader *avroNode      // the reader record schema, nil if the columns were declared alone

	keys    bool          // of record keys, whose schema may be one primitive type
	skip    unreadColumns // not read (Prune), their fields skipped
	plain   *avroProgram  // the program of a plain decoder
	writers WriterSchemas // a registry decoder's schemas
	byID    map[uint32]*avroProgram
}

// avroProgram reads records of one writer schema into the columns.
type avroProgram struct {
	id       uint32
	steps    []avroStep
	defaults []columnValue
	err      error // why the writer schema cannot be read, for each record of it
}

type avroStep struct {
	name string
	node *avroNode
	col  int // -1 to skip the field
	to   value.Type
}

// columnValue is the value a column takes when a record lacks its field: a
// reader default, or a Protobuf field's zero value.
type columnValue struct {
	col int
	v   value.Value
}

// NewAvroDecoder returns a decoder into cols. reader, if not empty, is the
// reader schema: a record with a field for each column, whose defaults
// fill fields that writers lack. writers, for the wire format, gives writer
// schemas by id; when it is nil every record is plain Avro written with
// reader.
func NewAvroDecoder(cols []value.Column, reader string, writers WriterSchemas) (*AvroDecoder, error) {
	d := &AvroDecoder{cols: cols, byName: make(map[string]int, len(cols)), writers: writers}
	for i, c := range cols {
		d.byName[c.Name] = i
	}
	if reader != "" {
		nd, err := parseAvroSchema(reader, nil)
		if err != nil {
			return nil, err
		}
		if nd.kind != avroRecord {
			return nil, fmt.Errorf("avro schema: is %s; records are read from a record schema", nd.text)
		}
		d.reader = nd
		for i, c := range cols {
			f := d.readerField(c.Name)
			if f == nil {
				return nil, fmt.Errorf("column %s: the avro schema has no field %s", c.Name, c.Name)
			}
			if err := f.node.readable(c.Type); err != nil {
				return nil, fmt.Errorf("column %s: avro field %s %w", c.Name, c.Name, err)
			}
			if f.def.HasDefault() {
				if _, err := defaultValue(f.def, c.Type); err != nil {
					return nil, fmt.Errorf("column %s: %w", c.Name, err)
				}
			}
			// A writer's field may have the name the reader's had before.
			for _, a := range f.aliases {
				if _, taken := d.byName[a]; !taken {
					d.byName[a] = i
				}
			}
		}
	}
	if writers == nil {
		if d.reader == nil {
			return nil, errors.New("avro: plain records need the schema they were written with")
		}
		d.plain = d.compile(0, d.reader)
		if d.plain.err != nil {
			return nil, d.plain.err
		}
		return d, nil
	}
	d.byID = map[uint32]*avroProgram{}
	return d, nil
}

// NewAvroKeyDecoder returns a decoder of record keys into cols, in the
// registry wire format: as NewAvroDecoder's, but a key whose schema is one
// primitive type, not a record, fills the one column.
func NewAvroKeyDecoder(cols []value.Column, writers WriterSchemas) (*AvroDecoder, error) {
	d, err := NewAvroDecoder(cols, "", writers)
	if err != nil {
		return nil, err
	}
	d.keys = true
	return d, nil
}

// CheckAvroColumns checks that each column is a field of the reader
// schema, of a type that reads as the column's.
func CheckAvroColumns(cols []value.Column, reader string) error {
	_, err := NewAvroDecoder(cols, reader, func(uint32) (WriterSchema, error) { return WriterSchema{}, nil })
	return err
}

// Prune makes the decoder decode only the columns read says, and skip the
// others' fields, which stay NULL: a query's unread columns cost only
// their skipping. Which columns a writer schema must have, and how they
// resolve, is as before: only the decoding is left out.
func (d *AvroDecoder) Prune(read []bool) {
	d.skip = unread(read)
	if d.plain != nil {
		d.plain = d.compile(0, d.reader)
	}
	clear(d.byID)
}

func (d *AvroDecoder) readerField(name string) *avroField {
	for i := range d.reader.fields {
		if d.reader.fields[i].name == name {
			return &d.reader.fields[i]
		}
	}
	return nil
}

// compile plans the reading of records written with w.
func (d *AvroDecoder) compile(id uint32, w *avroNode) *avroProgram {
	p := &avroProgram{id: id}
	if w.kind != avroRecord {
		// A record key is often of one primitive type: its one column.
		if !d.keys || len(d.cols) != 1 {
			p.err = fmt.Errorf("the writer schema is %s, not a record", w.text)
			return p
		}
		if err := w.readable(d.cols[0].Type); err != nil {
			p.err = fmt.Errorf("the writer schema %w (column %s)", err, d.cols[0].Name)
			return p
		}
		p.steps = []avroStep{{name: d.cols[0].Name, node: w, col: 0, to: d.cols[0].Type}}
		return p
	}
	seen := make([]bool, len(d.cols))
	// A reader's alias stands for a writer's field only when the writer
	// has no field of the reader field's own name.
	named := map[string]bool{}
	for _, f := range w.fields {
		named[f.name] = true
	}
	for _, f := range w.fields {
		s := avroStep{name: f.name, node: f.node, col: -1}
		i, ok := d.byName[f.name]
		if ok && d.cols[i].Name != f.name && named[d.cols[i].Name] {
			ok = false
		}
		if ok && !seen[i] {
			if err := f.node.readable(d.cols[i].Type); err != nil {
				p.err = fmt.Errorf("field %s %w (column %s)", f.name, err, d.cols[i].Name)
				return p
			}
			seen[i] = true
			if !d.skip.has(i) {
				s.col, s.to = i, d.cols[i].Type
				if d.reader != nil {
					s.node = resolveEnums(f.node, d.readerField(d.cols[i].Name).node)
				}
			}
		}
		p.steps = append(p.steps, s)
	}
	if d.reader == nil && !slices.Contains(seen, true) {
		// Not one column by name: a schema of something else, or columns
		// misnamed, which would read as NULL in every record.
		p.err = fmt.Errorf("the writer schema %s has none of the columns (%s)", w.text, strings.Join(value.Names(d.cols), ", "))
		return p
	}
	for i, c := range d.cols {
		if seen[i] || d.reader == nil {
			continue // declared columns alone: an absent field is NULL
		}
		f := d.readerField(c.Name).def
		if !f.HasDefault() {
			p.err = fmt.Errorf("the writer schema has no field %s, and the reader schema gives it no default", c.Name)
			return p
		}
		v, err := defaultValue(f, c.Type)
		if err != nil {
			p.err = err
			return p
		}
		if !v.IsNull() && !d.skip.has(i) {
			p.defaults = append(p.defaults, columnValue{col: i, v: v})
		}
	}
	return p
}

// Decode parses one record into row, which has one value per column and is
// all NULL.
func (d *AvroDecoder) Decode(rec []byte, row value.Row) error {
	if d.plain != nil {
		return d.plain.decode(rec, row)
	}
	if len(rec) < 5 || rec[0] != 0 {
		return errors.New("not in the schema registry wire format: want a zero byte and a 4-byte schema id before the Avro data")
	}
	id := binary.BigEndian.Uint32(rec[1:5])
	p := d.byID[id]
	if p == nil {
		var err error
		if p, err = d.writer(id); err != nil {
			return fmt.Errorf("schema id %d: %w", id, err)
		}
		if len(d.byID) >= maxWriterSchemas {
			clear(d.byID) // records with made-up ids: the registry remembers the real ones
		}
		d.byID[id] = p
	}
	if err := p.decode(rec[5:], row); err != nil {
		return fmt.Errorf("schema id %d: %w", id, err)
	}
	return nil
}

// writer returns the program of the writer schema of id, or nil if the
// registry could not be asked, which the next record of id asks again.
func (d *AvroDecoder) writer(id uint32) (*avroProgram, error) {
	ws, err := d.writers(id)
	switch {
	case errors.Is(err, ErrRegistryUnavailable):
		return nil, err
	case err != nil:
		return &avroProgram{id: id, err: err}, nil
	case ws.Type != SchemaAvro:
		return &avroProgram{id: id, err: fmt.Errorf("the registry's schema is %s, not Avro", ws.Type)}, nil
	}
	w, err := parseAvroSchema(ws.Text, ws.References)
	if err != nil {
		return &avroProgram{id: id, err: err}, nil
	}
	return d.compile(id, w), nil
}

func (p *avroProgram) decode(b []byte, row value.Row) error {
	if p.err != nil {
		return p.err
	}
	r := avroReader{b: b}
	for _, s := range p.steps {
		at := r.i
		if s.col < 0 {
			r.skip(s.node, 0)
		} else {
			row[s.col] = r.read(s.node, s.to)
		}
		if r.err != nil {
			return fmt.Errorf("field %s at byte %d: %w", s.name, at, r.err)
		}
	}
	if r.i != len(b) {
		return fmt.Errorf("%d bytes after the record's last field", len(b)-r.i)
	}
	for _, df := range p.defaults {
		row[df.col] = df.v
	}
	return nil
}

// maxWriterSchemas bounds the writer schemas a decoder remembers.
const maxWriterSchemas = 1024

var (
	errAvroShort   = errors.New("the record ends inside a value")
	errAvroVarint  = errors.New("malformed variable-length integer")
	errAvroInt     = errors.New("int beyond 32 bits")
	errAvroBoolean = errors.New("boolean byte neither 0 nor 1")
	errAvroLength  = errors.New("negative length")
	errAvroBranch  = errors.New("union branch out of range")
	errAvroSymbol  = errors.New("enum symbol out of range")
	errAvroDepth   = fmt.Errorf("values nested deeper than %d", maxAvroDepth)
	errAvroRange   = errors.New("out of range for the column's type")
	errAvroDecimal = errors.New("decimal wider than the column's precision")
	errAvroUTF8    = errors.New("invalid UTF-8")
)

// avroReader reads Avro binary values. Its first error stops it: later
// reads return zero values.
type avroReader struct {
	b   []byte
	i   int
	err error
}

func (r *avroReader) fail(err error) {
	if r.err == nil {
		r.err = err
		r.i = len(r.b)
	}
}

// long reads a zig-zag variable-length integer, Avro's int and long.
func (r *avroReader) long() int64 {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.i >= len(r.b) {
			r.fail(errAvroShort)
			return 0
		}
		c := r.b[r.i]
		r.i++
		if shift == 63 && c > 1 {
			break // more than 64 bits
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	r.fail(errAvroVarint)
	return 0
}

// bytes reads n bytes, or a length and that many bytes when n < 0.
func (r *avroReader) bytes(n int64) []byte {
	if n < 0 {
		if n = r.long(); n < 0 {
			r.fail(errAvroLength)
			return nil
		}
	}
	if n > int64(len(r.b)-r.i) {
		r.fail(errAvroShort)
		return nil
	}
	b := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return b
}

// read reads a value of nd as type to, which readable accepted.
func (r *avroReader) read(nd *avroNode, to value.Type) value.Value {
	switch nd.kind {
	case avroNull:
		return value.NullValue()
	case avroBoolean:
		b := r.bytes(1)
		if b == nil {
			return value.NullValue()
		}
		if b[0] > 1 {
			r.fail(errAvroBoolean)
		}
		return value.BoolValue(b[0] != 0)
	case avroInt, avroLong:
		n := r.long()
		if nd.kind == avroInt && n != int64(int32(n)) {
			r.fail(errAvroInt)
		}
		switch to.Kind {
		case value.KindInt:
			return value.IntValue(n)
		case value.KindDouble:
			return value.DoubleValue(float64(n))
		case value.KindDecimal:
			u, err := value.Rescale(n, 0, to.Scale)
			if err != nil || !value.FitsPrecision(u, to.Precision) {
				r.fail(errAvroDecimal)
			}
			return value.DecimalValue(u, to.Scale)
		default: // timestamp
			unit := nd.timeUnit()
			if n > math.MaxInt64/unit || n < math.MinInt64/unit {
				r.fail(errAvroRange)
			}
			return value.TimestampValue(n * unit)
		}
	case avroFloat:
		b := r.bytes(4)
		if b == nil {
			return value.NullValue()
		}
		return value.DoubleValue(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
	case avroDouble:
		b := r.bytes(8)
		if b == nil {
			return value.NullValue()
		}
		return value.DoubleValue(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case avroString, avroBytes, avroFixed:
		n := int64(-1)
		if nd.kind == avroFixed {
			n = int64(nd.size)
		}
		b := r.bytes(n)
		if r.err != nil {
			return value.NullValue()
		}
		if nd.logical == avro.Decimal {
			return r.decimal(b, nd.scale, to)
		}
		if !utf8.Valid(b) {
			r.fail(errAvroUTF8)
		}
		return value.StringValue(bytesString(b))
	case avroEnum:
		n := r.long()
		if n < 0 || n >= int64(len(nd.symbols)) {
			r.fail(errAvroSymbol)
			return value.NullValue()
		}
		if nd.unknown != nil && nd.unknown[n] {
			r.fail(fmt.Errorf("enum symbol %s is not the reader's, which has no default", nd.symbols[n]))
		}
		return value.StringValue(nd.symbols[n])
	case avroUnion:
		n := r.long()
		if n < 0 || n >= int64(len(nd.branches)) {
			r.fail(errAvroBranch)
			return value.NullValue()
		}
		return r.read(nd.branches[n], to)
	}
	// readable refused the other kinds for a column.
	r.fail(fmt.Errorf("%s read as a column", nd.text))
	return value.NullValue()
}

// decimal reads the big-endian two's complement unscaled value of a
// decimal of the given scale.
func (r *avroReader) decimal(b []byte, scale int, to value.Type) value.Value {
	if to.Kind == value.KindDouble && len(b) > 8 {
		// Wider than an int64: as a big integer, rarely.
		u := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		f, _ := new(big.Float).SetInt(u).Float64()
		return value.DoubleValue(f / math.Pow10(scale))
	}
	var u int64
	if len(b) > 0 && b[0]&0x80 != 0 {
		u = -1
	}
	for j, c := range b {
		// A byte shifted out must be the sign's.
		if top := u >> 55; j >= 8 && top != 0 && top != -1 {
			r.fail(errAvroDecimal)
			return value.NullValue()
		}
		u = u<<8 | int64(c)
	}
	if to.Kind == value.KindDouble {
		return value.DoubleValue(float64(u) / math.Pow10(scale))
	}
	u, err := value.Rescale(u, uint8(scale), to.Scale)
	if err != nil || !value.FitsPrecision(u, to.Precision) {
		r.fail(errAvroDecimal)
	}
	return value.DecimalValue(u, to.Scale)
}

// skip reads past a value of nd.
func (r *avroReader) skip(nd *avroNode, depth int) {
	if depth > maxAvroDepth {
		r.fail(errAvroDepth)
		return
	}
	switch nd.kind {
	case avroNull:
	case avroBoolean:
		r.bytes(1)
	case avroInt, avroLong, avroEnum:
		r.long()
	case avroFloat:
		r.bytes(4)
	case avroDouble:
		r.bytes(8)
	case avroString, avroBytes:
		r.bytes(-1)
	case avroFixed:
		r.bytes(int64(nd.size))
	case avroRecord:
		for _, f := range nd.fields {
			if r.skip(f.node, depth+1); r.err != nil {
				return
			}
		}
	case avroUnion:
		n := r.long()
		if n < 0 || n >= int64(len(nd.branches)) {
			r.fail(errAvroBranch)
			return
		}
		r.skip(nd.branches[n], depth+1)
	case avroArray, avroMap:
		for r.err == nil {
			n := r.long()
			if n == 0 {
				return
			}
			if n < 0 {
				// A negative count is followed by the block's size in bytes.
				if r.bytes(-1); r.err != nil {
					return
				}
				continue
			}
			if nd.items.empty && nd.kind == avroArray {
				continue // n values of no bytes each
			}
			for ; n > 0 && r.err == nil; n-- {
				if nd.kind == avroMap {
					r.bytes(-1)
				}
				r.skip(nd.items, depth+1)
			}
		}
	}
}

// ErrRegistryUnavailable marks a writer schema that could not be had for
// want of the registry, not because of the record: a decoder asks again
// for the next record, and a reader stops rather than hand records to the
// error policy.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")
