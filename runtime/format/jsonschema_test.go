package format

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

const paymentSchema = `{
	"type": "object",
	"required": ["account", "amount"],
	"properties": {
		"account": {"type": "integer"},
		"amount": {"type": "number", "minimum": 0},
		"tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}
	},
	"$defs": {"tag": {"type": "string", "maxLength": 8}}
}`

// TestJSONSchema: a value that breaks the schema is a SchemaViolation
// naming each place that breaks it, before the value is decoded; a schema
// that is not one, or reads a file or URL, is refused.
func TestJSONSchema(t *testing.T) {
	s, err := CompileJSONSchema(paymentSchema)
	if err != nil {
		t.Fatal(err)
	}
	d := NewJSONDecoder([]value.Column{{Name: "account", Type: value.Int}, {Name: "amount", Type: value.Double}})
	d.CheckSchema(s)
	for _, c := range []struct{ value, want string }{
		{`{"account":7,"amount":2.5,"tags":["a"]}`, ""},
		{`{"account":7,"amount":"2.5"}`, "jsonSchema: at '/amount': got string, want number"},
		{`{"account":7}`, "jsonSchema: at '': missing property 'amount'"},
		{`{"account":7.5,"amount":-1,"tags":["abcdefghij"]}`, "jsonSchema: at '/account': got number, want integer; at '/amount': minimum: got -1, want 0; at '/tags/0': maxLength: got 10, want 8"},
		{`{"account":7,"amount":1`, "jsonSchema: the value is not JSON"},
	} {
		row := make(value.Row, 2)
		err := d.Decode([]byte(c.value), row)
		var v *SchemaViolation
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v; want it decoded", c.value, err)
		case c.want != "" && (!errors.As(err, &v) || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: %v; want %q", c.value, err, c.want)
		}
	}
	// Numbers the library would take hours over, or fail on, are refused
	// first; many violations make a message of bounded length.
	huge := `{"account":7,"amount":1e1000001}`
	if err := d.Decode([]byte(huge), make(value.Row, 2)); err == nil || !strings.Contains(err.Error(), "at '/amount': the number 1e1000001") {
		t.Errorf("%s: %v; want the number refused", huge, err)
	}
	unique, err := CompileJSONSchema(`{"uniqueItems": true}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := unique.Check([]byte(`[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,2e999999]`)); err == nil {
		t.Error("an array with a number of a huge exponent passed uniqueItems")
	}
	tags := `{"account":7,"amount":1,"tags":[` + strings.Repeat(`"abcdefghijklmnop",`, 5000) + `"a"]}`
	if err := d.Decode([]byte(tags), make(value.Row, 2)); err == nil || len(err.Error()) > 2200 || !strings.HasSuffix(err.Error(), "; and 4992 more") {
		t.Errorf("5000 violations: a message of %d bytes, ending %q; want at most about 2 KiB, with the rest counted", len(err.Error()), err.Error()[max(0, len(err.Error())-40):])
	}
	for _, c := range []struct{ schema, want string }{
		{`{"$ref": "file:///etc/passwd"}`, `no URLLoader registered for "file:///etc/passwd"`},
		{`{"$ref": "https://example.com/schema.json"}`, "no URLLoader registered"},
		{`{"type": "nope"}`, "is not valid against metaschema"},
		{`{"type": `, "not JSON"},
	} {
		if _, err := CompileJSONSchema(c.schema); err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("CompileJSONSchema(%s) = %v; want one line containing %q", c.schema, err, c.want)
		}
	}
}

// BenchmarkJSONSchema decodes a payment with and without its schema's
// check: the check decodes the value into generic values first.
func BenchmarkJSONSchema(b *testing.B) {
	s, err := CompileJSONSchema(paymentSchema)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(`{"account":7,"amount":2.5,"tags":["a","b"],"note":"a payment of some length, as records are"}`)
	cols := []value.Column{{Name: "account", Type: value.Int}, {Name: "amount", Type: value.Double}}
	for _, checked := range []bool{false, true} {
		name := "plain"
		if checked {
			name = "checked"
		}
		b.Run(name, func(b *testing.B) {
			d := NewJSONDecoder(cols)
			if checked {
				d.CheckSchema(s)
			}
			row := make(value.Row, 2)
			b.ReportAllocs()
			for b.Loop() {
				clear(row)
				if err := d.Decode(line, row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
