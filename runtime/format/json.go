package format

import (
	"bytes"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/runtime/value"
)

// JSONDecoder decodes one JSON object per line into a row. Keys that are not in
// the schema are skipped; missing keys and JSON null are NULL. A number may be
// quoted. Timestamps are RFC 3339 strings or integer milliseconds since the epoch.
type JSONDecoder struct {
	cols  []value.Column
	index map[string]int
	keys  [][]byte      // per column: its name as a JSON string and a colon
	skip  unreadColumns // not read (Prune), their values skipped
	// schema, if set, checks each value first (CheckSchema).
	schema *JSONSchema
}

// NewJSONDecoder returns a decoder for rows of the given columns.
func NewJSONDecoder(cols []value.Column) *JSONDecoder {
	d := &JSONDecoder{cols: cols, index: make(map[string]int, len(cols)), keys: make([][]byte, len(cols))}
	for i, c := range cols {
		d.index[c.Name] = i
		d.keys[i] = append(AppendJSONString(nil, c.Name), ':')
	}
	return d
}

// CheckSchema makes the decoder check each value against s before it
// decodes it: a value that breaks it is the record's error, a
// *SchemaViolation.
func (d *JSONDecoder) CheckSchema(s *JSONSchema) { d.schema = s }

// Prune makes the decoder parse only the columns read says, and skip the
// others' values, which stay NULL: a query's unread columns cost only
// their scan. A value skipped is checked as JSON, not as its column's type.
func (d *JSONDecoder) Prune(read []bool) { d.skip = unread(read) }

// Pruner is a decoder that can leave the columns a query does not read
// undecoded: Prune says which it reads (JSON, Avro, Protobuf).
type Pruner interface {
	Prune(read []bool)
}

// unreadColumns are the columns a decoder leaves NULL (Prune); nil when
// it decodes all.
type unreadColumns []bool

// has reports whether column i is not read.
func (u unreadColumns) has(i int) bool { return u != nil && u[i] }

// unread is the complement of read, or nil when every column is read.
func unread(read []bool) unreadColumns {
	var skip unreadColumns
	for i, r := range read {
		if !r {
			if skip == nil {
				skip = make([]bool, len(read))
			}
			skip[i] = true
		}
	}
	return skip
}

// SyntaxError is malformed JSON at a byte offset of the line.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset+1, e.Msg)
}

// Decode parses line into row, which has one value per column and is all NULL.
func (d *JSONDecoder) Decode(line []byte, row value.Row) error {
	if d.schema != nil {
		if err := d.schema.Check(line); err != nil {
			return err
		}
	}
	p := jsonParser{b: line}
	p.space()
	if !p.consume('{') {
		return p.fail("want an object")
	}
	p.space()
	if p.consume('}') {
		return p.end()
	}
	next := 0 // the column expected next: records mostly keep one field order
	for {
		p.space()
		var i int
		var ok bool
		if next < len(d.keys) && bytes.HasPrefix(p.b[p.i:], d.keys[next]) {
			// The expected key, and its colon, as written most often.
			p.i += len(d.keys[next])
			i, ok = next, true
		} else {
			key, escaped, _, err := p.stringBytes()
			if err != nil {
				return err
			}
			if escaped {
				key = unescape(key)
			}
			p.space()
			if !p.consume(':') {
				return p.fail("want ':' after a key")
			}
			i, ok = d.index[bytesString(key)]
		}
		p.space()
		if ok && d.skip.has(i) {
			ok, next = false, i+1
		}
		if ok {
			v, err := p.value(d.cols[i])
			if err != nil {
				return err
			}
			row[i] = v
			next = i + 1
		} else if err := p.skip(0); err != nil {
			return err
		}
		p.space()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return p.end()
		}
		return p.fail("want ',' or '}'")
	}
}

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) fail(msg string) error { return &SyntaxError{Offset: p.i, Msg: msg} }

func (p *jsonParser) space() {
	// Every whitespace byte is at most ' ': one comparison settles the
	// usual case, no space at all.
	for p.i < len(p.b) && p.b[p.i] <= ' ' {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) end() error {
	p.space()
	if p.i != len(p.b) {
		return p.fail("unexpected data after the object")
	}
	return nil
}

// stringBytes reads a string token and returns its raw contents, whether it
// holds escapes and whether it is all ASCII (and so valid UTF-8).
func (p *jsonParser) stringBytes() (s []byte, escaped, ascii bool, err error) {
	if !p.consume('"') {
		return nil, false, false, p.fail("want a string")
	}
	start := p.i
	i := start + plainPrefix(p.b[start:])
	if i < len(p.b) && p.b[i] == '"' {
		p.i = i + 1
		return p.b[start:i], false, true, nil
	}
	// Escapes, control characters or bytes beyond ASCII: byte by byte.
	p.i = i
	ascii = true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, escaped, ascii, nil
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.b) {
				p.i = len(p.b)
				return nil, false, false, p.fail("unterminated string")
			}
			if p.b[p.i+1] >= utf8.RuneSelf {
				ascii = false
			}
			p.i += 2
		case c < 0x20:
			return nil, false, false, p.fail("control character in a string")
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			p.i++
		}
		p.i += plainPrefix(p.b[p.i:])
	}
	return nil, false, false, p.fail("unterminated string")
}

// plainPrefix returns the length of the longest prefix of s of bytes a
// JSON string holds as they are (plainStringByte), eight bytes at a time.
func plainPrefix[T string | []byte](s T) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		// Loaded as one word: the compiler combines the eight loads.
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if m := specialBytes(w); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(s) && plainStringByte[s[i]] {
		i++
	}
	return i
}

// Words of a byte repeated eight times.
const (
	eachByte  = 0x0101010101010101
	highBits  = 0x8080808080808080
	quotes    = eachByte * '"'
	backslash = eachByte * '\\'
)

// specialBytes returns the high bits of the bytes of w, the first string
// byte lowest, that a JSON string cannot hold as they are: control
// characters, the quote, the backslash, and bytes beyond ASCII; 0 if
// there is none. A subtraction's borrow may flag bytes after a flagged
// one, never before, so the lowest bit set is exact.
func specialBytes(w uint64) uint64 {
	q, b := w^quotes, w^backslash
	return ((w-eachByte*0x20)&^w | (q-eachByte)&^q | (b-eachByte)&^b | w) & highBits
}

// plainStringByte holds the bytes a string's scan passes without a second
// look: printable ASCII but the quote and the backslash.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// literalEnd holds the bytes that end a number or a bare word.
var literalEnd = func() (t [256]bool) {
	for _, c := range []byte(",}] \t\r\n") {
		t[c] = true
	}
	return t
}()

// literal reads a number or a bare word (true, false, null).
func (p *jsonParser) literal() []byte {
	start := p.i
	for p.i < len(p.b) && !literalEnd[p.b[p.i]] {
		p.i++
	}
	return p.b[start:p.i]
}

func (p *jsonParser) value(col value.Column) (value.Value, error) {
	if p.i >= len(p.b) {
		return value.Value{}, p.fail("want a value")
	}
	start := p.i
	switch c := p.b[p.i]; {
	case c == '"':
		s, escaped, ascii, err := p.stringBytes()
		if err != nil {
			return value.Value{}, err
		}
		if escaped {
			if !validEscapes(s) {
				return value.Value{}, &SyntaxError{Offset: start, Msg: "invalid escape in a string"}
			}
			s = unescape(s)
		}
		if col.Type.Kind == value.KindBool {
			return value.Value{}, typeError(col, "string")
		}
		if !ascii && !utf8.Valid(s) {
			return value.Value{}, fmt.Errorf("column %s: invalid UTF-8", col.Name)
		}
		v, err := ParseText(col.Type, s)
		if err != nil {
			return value.Value{}, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return v, nil
	case c == '{' || c == '[':
		if err := p.skip(0); err != nil {
			return value.Value{}, err
		}
		return value.Value{}, typeError(col, kindOfToken(c))
	default:
		if col.Type.Kind == value.KindInt {
			if n, end, ok := plainInt(p.b, p.i); ok {
				p.i = end
				return value.IntValue(n), nil
			}
		}
		lit := p.literal()
		switch c {
		case 'n', 't', 'f':
			switch string(lit) {
			case "null":
				return value.Value{}, nil
			case "true", "false":
				if col.Type.Kind != value.KindBool {
					return value.Value{}, typeError(col, "bool")
				}
				return value.BoolValue(lit[0] == 't'), nil
			}
		}
		if !validNumber(lit) {
			return value.Value{}, &SyntaxError{Offset: start, Msg: "want a value"}
		}
		return numberValue(col, lit)
	}
}

// numberValue converts lit, a valid JSON number, to col's type.
func numberValue(col value.Column, lit []byte) (value.Value, error) {
	switch col.Type.Kind {
	case value.KindInt:
		i, err := ParseInt(lit)
		if err != nil {
			return value.Value{}, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return value.IntValue(i), nil
	case value.KindDouble:
		f, err := strconv.ParseFloat(bytesString(lit), 64)
		if err != nil {
			return value.Value{}, fmt.Errorf("column %s: invalid number %s", col.Name, quoted(lit))
		}
		return value.DoubleValue(f), nil
	case value.KindDecimal:
		v, err := ParseDecimal(col.Type, lit)
		if err != nil {
			return value.Value{}, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return v, nil
	case value.KindTimestamp:
		ms, err := ParseInt(lit)
		if err != nil {
			return value.Value{}, fmt.Errorf("column %s: a numeric timestamp must be integer milliseconds since the epoch, got %s", col.Name, quoted(lit))
		}
		v, err := TimestampFromMillis(ms)
		if err != nil {
			return value.Value{}, fmt.Errorf("column %s: %w", col.Name, err)
		}
		return v, nil
	}
	return value.Value{}, typeError(col, "number")
}

func typeError(col value.Column, got string) error {
	return fmt.Errorf("column %s: want %s, got a JSON %s", col.Name, col.Type, got)
}

func kindOfToken(c byte) string {
	if c == '{' {
		return "object"
	}
	return "array"
}

// skip passes over one value of any kind.
func (p *jsonParser) skip(depth int) error {
	if depth > 64 {
		return p.fail("nested too deeply")
	}
	if p.i >= len(p.b) {
		return p.fail("want a value")
	}
	switch p.b[p.i] {
	case '"':
		_, _, _, err := p.stringBytes()
		return err
	case '{', '[':
		closing := byte('}')
		if p.b[p.i] == '[' {
			closing = ']'
		}
		p.i++
		p.space()
		if p.consume(closing) {
			return nil
		}
		for {
			p.space()
			if closing == '}' {
				if _, _, _, err := p.stringBytes(); err != nil {
					return err
				}
				p.space()
				if !p.consume(':') {
					return p.fail("want ':' after a key")
				}
				p.space()
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.space()
			if p.consume(',') {
				continue
			}
			if p.consume(closing) {
				return nil
			}
			return p.fail("want ',' or a closing bracket")
		}
	default:
		start := p.i
		switch lit := p.literal(); {
		case string(lit) == "true", string(lit) == "false", string(lit) == "null", validNumber(lit):
			return nil
		}
		p.i = start
		return p.fail("want a value")
	}
}

// plainInt parses the common case of a JSON integer at b[i:] in one pass:
// -?[0-9]+ without a leading zero, at most 18 digits so that it cannot
// overflow, ended by the end of b or a byte that ends a literal. It returns
// the index after it; ok is false for anything else, which the general path
// then reads or rejects.
func plainInt(b []byte, i int) (n int64, end int, ok bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			if !literalEnd[b[i]] {
				return 0, 0, false
			}
			break
		}
		n = n*10 + int64(c)
	}
	if digits := i - start; digits == 0 || digits > 18 || digits > 1 && b[start] == '0' {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// validNumber reports whether b is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

func validEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		i++
		if i >= len(s) {
			return false
		}
		switch s[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if i+4 >= len(s) {
				return false
			}
			if _, err := strconv.ParseUint(string(s[i+1:i+5]), 16, 16); err != nil {
				return false
			}
			i += 4
		default:
			return false
		}
	}
	return true
}

// unescape decodes a JSON string's escapes into new memory.
func unescape(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		j := bytes.IndexByte(s[i:], '\\')
		if j < 0 || i+j+1 >= len(s) {
			return append(out, s[i:]...)
		}
		out = append(out, s[i:i+j]...)
		i += j + 1
		switch s[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(s) {
				return out
			}
			r1, _ := strconv.ParseUint(string(s[i+1:i+5]), 16, 16)
			i += 4
			r := rune(r1)
			if utf16.IsSurrogate(r) && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2, err := strconv.ParseUint(string(s[i+3:i+7]), 16, 16); err == nil {
					if dec := utf16.DecodeRune(r, rune(r2)); dec != utf8.RuneError {
						r = dec
						i += 6
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, s[i])
		}
	}
	return out
}
