package kafka

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// useSchema has the source's lanes fill the columns that schema, the
// source's declared schema, takes from each record's key or headers rather
// than from its value. cols are the columns Open was given: schema's, typed,
// then schemas.KafkaMeta. When no column comes from a key or header it changes
// nothing, and the lanes decode whole values straight into their rows.
// Open calls it before the lanes are read.
func (s *Source) useSchema(spec *v1alpha1.KafkaSource, f v1alpha1.Format, schema []v1alpha1.Column, cols []value.Column) error {
	if !slices.ContainsFunc(schema, func(c v1alpha1.Column) bool { return c.Key || c.Header != "" }) {
		return nil
	}
	if len(cols) != len(schema)+len(schemas.KafkaMeta) {
		return fmt.Errorf("schema: %d columns declared, but the source has %d besides its metadata", len(schema), len(cols)-len(schemas.KafkaMeta))
	}
	for _, l := range s.lanes {
		d, err := s.newRecordDecoder(spec.KeyFormat, f, schema, cols[:len(schema)])
		if err != nil {
			return err
		}
		l.rec = d
	}
	return nil
}

// recordDecoder fills a row from a record whose schema takes some columns
// from its key or headers. The row is in schema order, with value, key and
// header columns interleaved as declared, so the value decoder fills a
// scratch row that is then copied into place.
type recordDecoder struct {
	value    decoder   // of the value columns; nil if there are none
	valueRow value.Row // what value decodes into
	valuePos []int     // the row position of each of valueRow's columns

	keyDec  decoder   // keyFormat json, avro or protobuf; nil for string
	keyRow  value.Row // what keyDec decodes into
	keyCols []value.Column
	keyPos  []int

	headers []headerColumn
}

// headerColumn is a column filled from a record header.
type headerColumn struct {
	header string
	col    value.Column
	pos    int
}

// newRecordDecoder returns the decoder of one lane. cols are schema's
// columns, typed.
func (s *Source) newRecordDecoder(keyFormat v1alpha1.KeyFormat, f v1alpha1.Format, schema []v1alpha1.Column, cols []value.Column) (*recordDecoder, error) {
	d := &recordDecoder{}
	var valueCols []value.Column
	for j, c := range schema {
		switch {
		case c.Key && c.Header != "":
			return nil, fmt.Errorf("schema[%d] %s: a column comes from the record key or from a header, not both", j, c.Name)
		case c.Key:
			d.keyCols = append(d.keyCols, cols[j])
			d.keyPos = append(d.keyPos, j)
		case c.Header != "":
			d.headers = append(d.headers, headerColumn{header: c.Header, col: cols[j], pos: j})
		default:
			valueCols = append(valueCols, cols[j])
			d.valuePos = append(d.valuePos, j)
		}
	}
	switch keyFormat {
	case "", v1alpha1.KeyFormatString:
		if len(d.keyCols) > 1 {
			return nil, fmt.Errorf("schema: %d key columns, but with keyFormat string the whole key is one column", len(d.keyCols))
		}
	case v1alpha1.KeyFormatJSON:
		d.keyDec = format.NewJSONDecoder(d.keyCols)
	case v1alpha1.KeyFormatAvro, v1alpha1.KeyFormatProtobuf:
		// Keys have schemas of their own in the values' registry.
		var err error
		if d.keyDec, err = s.valueDecoder(v1alpha1.Format(keyFormat), d.keyCols, true, s.readOf(d.keyPos, 0)); err != nil {
			return nil, fmt.Errorf("keyFormat %s: %w", keyFormat, err)
		}
	default:
		return nil, fmt.Errorf("keyFormat: unknown key format %q (want string, json, avro or protobuf)", keyFormat)
	}
	if d.keyDec != nil {
		d.keyRow = make(value.Row, len(d.keyCols))
	}
	// A value none of whose columns are declared is not decoded at all;
	// one none of whose columns are read still is, for its errors.
	if len(valueCols) > 0 {
		var err error
		if d.value, err = s.valueDecoder(f, valueCols, false, s.readOf(d.valuePos, 0)); err != nil {
			return nil, err
		}
		d.valueRow = make(value.Row, len(valueCols))
	}
	return d, nil
}

// readOf returns which of the columns at pos (or, without pos, the first
// n) the query reads; nil when it reads all of the source's.
func (s *Source) readOf(pos []int, n int) []bool {
	if s.read == nil {
		return nil
	}
	if pos == nil {
		return s.read[:n]
	}
	read := make([]bool, len(pos))
	for i, p := range pos {
		read[i] = s.read[p]
	}
	return read
}

// valueDecoder returns a decoder of record values of format f into cols,
// or of keys: keys of format avro or protobuf have no schema in the
// manifest, only the registry's. Each lane has its own: decoders keep
// state. read, if not nil, says which of cols are read: the others are
// not decoded, where the format allows.
func (s *Source) valueDecoder(f v1alpha1.Format, cols []value.Column, keys bool, read []bool) (decoder, error) {
	d, err := s.formatDecoder(f, cols, keys)
	if p, ok := d.(format.Pruner); ok && err == nil && read != nil {
		p.Prune(read)
	}
	return d, err
}

// formatDecoder returns the decoder valueDecoder prunes.
func (s *Source) formatDecoder(f v1alpha1.Format, cols []value.Column, keys bool) (decoder, error) {
	switch f {
	case v1alpha1.FormatCSV:
		return format.NewCSVDecoderInOrder(cols), nil
	case v1alpha1.FormatAvro, v1alpha1.FormatProtobuf:
		var writers format.WriterSchemas
		if s.registry != nil {
			writers = s.registry.writerSchema
		}
		switch {
		case keys && writers == nil:
			return nil, fmt.Errorf("%s keys are read in the schema registry wire format: the source's format needs a registry", f)
		case keys && f == v1alpha1.FormatAvro:
			return format.NewAvroKeyDecoder(cols, writers)
		case keys:
			return format.NewProtobufDecoder(cols, "", "", writers)
		case s.avro != nil:
			return format.NewAvroDecoder(cols, s.avro.Schema, writers)
		case s.protobuf != nil:
			return format.NewProtobufDecoder(cols, s.protobuf.Schema, s.protobuf.Message, writers)
		}
		return nil, fmt.Errorf("format %s needs %[1]s.schema or %[1]s.registry", f)
	}
	d := format.NewJSONDecoder(cols)
	if !keys && s.jsonSchema != nil {
		d.CheckSchema(s.jsonSchema)
	}
	return d, nil
}

// decode fills row, all NULL, from r. Strings point into the record's bytes.
func (d *recordDecoder) decode(r *kgo.Record, row value.Row) error {
	if d.value != nil {
		clear(d.valueRow)
		if err := d.value.Decode(r.Value, d.valueRow); err != nil {
			return err
		}
		for i, p := range d.valuePos {
			row[p] = d.valueRow[i]
		}
	}
	if err := d.decodeKey(r.Key, row); err != nil {
		return err
	}
	for _, h := range d.headers {
		b := headerValue(r, h.header)
		if b == nil {
			continue // absent: NULL
		}
		v, err := parseText(h.col, b)
		if err != nil {
			return fmt.Errorf("column %s (header %s): %w", h.col.Name, h.header, err)
		}
		row[h.pos] = v
	}
	return nil
}

// decodeKey fills the key columns from key; a record without a key leaves
// them NULL.
func (d *recordDecoder) decodeKey(key []byte, row value.Row) error {
	if key == nil || len(d.keyCols) == 0 {
		return nil
	}
	if d.keyDec == nil {
		v, err := parseText(d.keyCols[0], key)
		if err != nil {
			return fmt.Errorf("column %s (key): %w", d.keyCols[0].Name, err)
		}
		row[d.keyPos[0]] = v
		return nil
	}
	clear(d.keyRow)
	if err := d.keyDec.Decode(key, d.keyRow); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	for i, p := range d.keyPos {
		row[p] = d.keyRow[i]
	}
	return nil
}

var errInvalidUTF8 = errors.New("invalid UTF-8")

// parseText parses the text of a key or header into col's type.
func parseText(col value.Column, b []byte) (value.Value, error) {
	if col.Type.Kind == value.KindString && !utf8.Valid(b) {
		return value.Value{}, errInvalidUTF8
	}
	return format.ParseText(col.Type, b)
}

// headerValue returns the value of r's first header named name, or nil if
// there is none. A header present with no value is NULL too.
func headerValue(r *kgo.Record, name string) []byte {
	for _, h := range r.Headers {
		if h.Key == name {
			return h.Value
		}
	}
	return nil
}
