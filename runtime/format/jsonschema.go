package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
		return nil, fmt.Errorf("%s", joinBounded(errorLines(strings.ReplaceAll(err.Error(), jsonSchemaURL, "jsonSchema"))))
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

// Bounds on the numbers of a value that is checked: the schema library
// makes an exact rational of each number a keyword compares, whose size,
// and time, grow with the exponent.
const (
	maxNumberDigits   = 400
	maxNumberExponent = 1000
)

// maxViolations and maxViolationBytes bound a SchemaViolation's message,
// which a dead letter carries.
const (
	maxViolations     = 8
	maxViolationBytes = 2048
)

// Check returns a *SchemaViolation if value, one JSON document, does not
// satisfy the schema; a value that is not JSON does not, nor one with a
// number of more than 400 digits or an exponent past ±1000.
func (s *JSONSchema) Check(value []byte) (err error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return &SchemaViolation{Msg: "the value is not JSON: " + err.Error()}
	}
	if err := checkNumbers(doc, nil); err != nil {
		return err
	}
	defer func() {
		// The library's failure on a value is the value's.
		if r := recover(); r != nil {
			err = &SchemaViolation{Msg: fmt.Sprintf("the value could not be checked: %v", r)}
		}
	}()
	err = s.schema.Validate(doc)
	if err == nil {
		return nil
	}
	// The first line names the schema; each of the others a violation.
	parts := errorLines(err.Error())
	if len(parts) > 1 {
		parts = parts[1:]
	}
	slices.Sort(parts) // by place: the library's order varies
	return &SchemaViolation{Msg: joinBounded(parts)}
}

// errorLines are the lines of the library's message, each without its
// indent and list mark, the empty ones left out.
func errorLines(msg string) []string {
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// joinBounded joins parts with "; ", the first maxViolations of them, and
// cuts the text at maxViolationBytes.
func joinBounded(parts []string) string {
	msg := strings.Join(parts[:min(len(parts), maxViolations)], "; ")
	if len(msg) > maxViolationBytes {
		msg = strings.ToValidUTF8(msg[:maxViolationBytes], "") + "…"
	}
	if n := len(parts) - maxViolations; n > 0 {
		msg += fmt.Sprintf("; and %d more", n)
	}
	return msg
}

// checkNumbers refuses the numbers in doc, at path, too long or of too
// large an exponent for the schema library to compare in bounded time.
func checkNumbers(doc any, path []string) error {
	switch v := doc.(type) {
	case json.Number:
		if !boundedNumber(string(v)) {
			return &SchemaViolation{Msg: fmt.Sprintf("at '%s': the number %.40s... has more than %d digits or an exponent past ±%d, which a schema does not check", pointer(path), v, maxNumberDigits, maxNumberExponent)}
		}
	case []any:
		for i, e := range v {
			if err := checkNumbers(e, append(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range v {
			if err := checkNumbers(e, append(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// boundedNumber reports whether n, a JSON number, has at most
// maxNumberDigits characters and an exponent within ±maxNumberExponent.
func boundedNumber(n string) bool {
	if len(n) > maxNumberDigits {
		return false
	}
	i := strings.IndexAny(n, "eE")
	if i < 0 {
		return true
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
	return err == nil && exp >= -maxNumberExponent && exp <= maxNumberExponent
}

// pointer is path as a JSON pointer.
func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}
