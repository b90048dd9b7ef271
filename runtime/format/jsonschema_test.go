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
