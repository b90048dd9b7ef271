package format

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// JSONSchema checks JSON values against a JSON Schema. It is safe for
// concurrent use.
type JSONSchema struct {
	schema *jsonschema.Schema
}

// jsonSchemaURL is where a source's schema is, to the compiler: it is
// known by no other name.
const jsonSchemaURL = "sluice:///jsonSchema.json"

// CompileJSONSchema compiles text, a JSON Schema (of draft 2020-12 unless
// its $schema names another draft). It may refer to its own parts only: a
// $ref to a file or URL is refused, as the engine reads no schema the
// manifest does not hold.
func CompileJSONSchema(text string) (*JSONSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no scheme: nothing is loaded
	if err := c.AddResource(jsonSchemaURL, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(jsonSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), jsonSchemaURL, "jsonSchema")), " "))
	}
	return &JSONSchema{schema: s}, nil
}

// SchemaViolation is the error of a value that does not satisfy its
// JSON Schema.
type SchemaViolation struct {
	// Msg names the places in the value that break the schema, and how.
	Msg string
}

func (e *SchemaViolation) Error() string { return "jsonSchema: " + e.Msg }

// Check returns a *SchemaViolation if value, one JSON document, does not
// satisfy the schema; a value that is not JSON does not.
func (s *JSONSchema) Check(value []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return &SchemaViolation{Msg: "the value is not JSON: " + err.Error()}
	}
	err = s.schema.Validate(doc)
	if err == nil {
		return nil
	}
	// The first line names the schema; each of the others a violation.
	lines := strings.Split(err.Error(), "\n")
	var parts []string
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")); l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		parts = lines
	}
	return &SchemaViolation{Msg: strings.Join(parts, "; ")}
}
