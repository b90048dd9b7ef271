// Package manifest loads StreamQuery manifests from YAML for the engine's CLI,
// and places every problem found in them at its line and column.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Document is a parsed manifest that remembers where each field was written.
type Document struct {
	File       string
	Query      *v1alpha1.StreamQuery
	nodes      map[string]*yaml.Node
	lines      []string
	structural v1alpha1.Problems
}

// Load reads and parses a manifest file.
func Load(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse parses a manifest. Structural problems (YAML syntax, unknown fields,
// wrong kinds of value) come back as v1alpha1.Problems with positions.
func Parse(file string, data []byte) (*Document, error) {
	d := &Document{File: file, nodes: map[string]*yaml.Node{}, lines: strings.Split(string(data), "\n")}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		diag := v1alpha1.Problem{Offset: -1, File: file, Message: msg}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			diag.Line, _ = strconv.Atoi(m[1])
			diag.Column = 1
			diag.Message = strings.TrimPrefix(msg, m[0]+": ")
		}
		return nil, v1alpha1.Problems{diag}
	}
	if len(root.Content) == 0 {
		return nil, v1alpha1.Problems{{Offset: -1, File: file, Line: 1, Column: 1, Message: "the manifest is empty"}}
	}
	doc := root.Content[0]
	w := walker{doc: d}
	w.walk(doc, reflect.TypeOf(v1alpha1.StreamQuery{}), "")
	d.structural = w.diags
	js, err := json.Marshal(toJSON(doc))
	if err != nil {
		return nil, v1alpha1.Problems{{Offset: -1, File: file, Line: doc.Line, Column: doc.Column, Message: err.Error()}}
	}
	var q v1alpha1.StreamQuery
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return nil, v1alpha1.Problems{d.locate(v1alpha1.Problem{Field: jsonErrorField(err), Offset: -1, Message: err.Error()})}
	}
	var diags v1alpha1.Problems
	if q.APIVersion != v1alpha1.GroupVersion.String() {
		diags = append(diags, d.locate(v1alpha1.Problem{Field: "apiVersion", Offset: -1,
			Message: fmt.Sprintf("want %s, got %q", v1alpha1.GroupVersion, q.APIVersion)}))
	}
	if q.Kind != v1alpha1.Kind {
		diags = append(diags, d.locate(v1alpha1.Problem{Field: "kind", Offset: -1,
			Message: fmt.Sprintf("want %s, got %q", v1alpha1.Kind, q.Kind)}))
	}
	if len(diags) > 0 {
		return nil, append(w.diags, diags...)
	}
	d.Query = &q
	return d, nil
}

// Structural returns the problems found while parsing. The fields they are in
// were left out of Query, so that checking it can report its other problems
// in the same run; a document with structural problems must not run.
func (d *Document) Structural() v1alpha1.Problems { return d.structural }

func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

// Locate turns the problems of a spec into diagnostics at their places; nil
// for a nil error.
func (d *Document) Locate(err error) v1alpha1.Problems {
	if err == nil {
		return nil
	}
	var ps v1alpha1.Problems
	if !errors.As(err, &ps) {
		return v1alpha1.Problems{{Offset: -1, File: d.File, Message: err.Error()}}
	}
	out := make(v1alpha1.Problems, len(ps))
	for i, p := range ps {
		out[i] = d.locate(p)
	}
	return out.Sorted()
}

func (d *Document) locate(p v1alpha1.Problem) v1alpha1.Problem {
	diag := p
	diag.File = d.File
	field := p.Field
	for field != "" {
		if n, ok := d.nodes[field]; ok {
			diag.Line, diag.Column = n.Line, n.Column
			if field == p.Field && p.Offset >= 0 && n.Kind == yaml.ScalarNode {
				diag.Line, diag.Column = d.offsetPosition(n, p.Offset)
			}
			return diag
		}
		field = parentPath(field)
	}
	return diag
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// offsetPosition finds the file position of a byte offset in a scalar's value.
func (d *Document) offsetPosition(n *yaml.Node, offset int) (int, int) {
	line, column := v1alpha1.LineColumn(n.Value, offset)
	nl, col := line-1, column-1 // 0-based within the value
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The text starts on the line after the indicator, at the block's
		// indentation, which the first non-empty line shows.
		first := n.Line // 1-based line of the indicator; its index is the next line
		indent := 0
		for i := first; i < len(d.lines); i++ {
			if strings.TrimSpace(d.lines[i]) != "" {
				indent = len(d.lines[i]) - len(strings.TrimLeft(d.lines[i], " "))
				break
			}
		}
		return first + 1 + nl, indent + col + 1
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if nl == 0 {
			return n.Line, n.Column + 1 + col
		}
	default:
		if nl == 0 {
			return n.Line, n.Column + col
		}
	}
	return n.Line + nl, col + 1
}

// walker checks a YAML tree against the Go type it decodes into, recording
// where each field is and what does not fit.
type walker struct {
	doc   *Document
	diags v1alpha1.Problems
}

var (
	durationType  = reflect.TypeOf(metav1.Duration{})
	unmarshalType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
)

// fail records a problem with n and empties n, so that decoding the rest of the
// document goes on as if the field were not there.
func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.diags = append(w.diags, v1alpha1.Problem{Offset: -1, File: w.doc.File, Line: n.Line, Column: n.Column, Field: path, Message: fmt.Sprintf(format, args...)})
	n.Kind, n.Tag, n.Value, n.Content, n.Style = yaml.ScalarNode, "!!null", "", nil, 0
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		w.doc.nodes[path] = n
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a duration such as 5s or 100ms")
		} else if _, err := time.ParseDuration(n.Value); err != nil {
			w.fail(n, path, "%q is not a duration (write e.g. 5s, 100ms, 1m30s)", n.Value)
		}
		return
	case reflect.PointerTo(t).Implements(unmarshalType) && t.Kind() != reflect.Struct || t.Kind() == reflect.Interface:
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(unmarshalType) {
			return // metav1.Time and the like parse themselves
		}
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want a mapping of fields, got %s", describe(n))
			return
		}
		fields := jsonFields(t)
		kept := n.Content[:0:0]
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if w.duplicate(seen, k, path) {
				continue
			}
			if w.nullKey(k, path) {
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				w.diags = append(w.diags, v1alpha1.Problem{Offset: -1, File: w.doc.File, Line: k.Line, Column: k.Column, Field: join(path, k.Value),
					Message: fmt.Sprintf("unknown field %q (known fields: %s)", k.Value, knownFields(fields))})
				continue
			}
			w.walk(v, f, join(path, k.Value))
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		seen := map[string]*yaml.Node{}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if w.duplicate(seen, k, path) || w.nullKey(k, path) {
				continue
			}
			w.walk(v, t.Elem(), join(path, k.Value))
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			w.fail(n, path, "want a string, got %s; quote it", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			w.fail(n, path, "want true or false, got %s", describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			w.fail(n, path, "want a whole number, got %s", describe(n))
			return
		}
		if _, err := strconv.ParseInt(n.Value, 0, t.Bits()); err != nil {
			w.fail(n, path, "%s does not fit a %d-bit integer", n.Value, t.Bits())
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			w.fail(n, path, "want a number, got %s", describe(n))
		}
	}
}

// nullKey reports whether key k is an unquoted null, and records it as a
// problem if so: yaml.v3 keeps its text, but YAML (and so kubectl, which
// turns the manifest into JSON) reads it as no key at all.
func (w *walker) nullKey(k *yaml.Node, path string) bool {
	if k.Tag != "!!null" {
		return false
	}
	w.diags = append(w.diags, v1alpha1.Problem{Offset: -1, File: w.doc.File, Line: k.Line, Column: k.Column, Field: join(path, k.Value),
		Message: fmt.Sprintf("the key %s is YAML's null, not a name, and kubectl refuses it: quote it, \"%s\"", k.Value, k.Value)})
	return true
}

// duplicate reports whether key k was already seen in its mapping, and records
// it as a problem if so: YAML forbids duplicate keys, and taking the last one
// silently would run a query other than the one the reader of the file sees.
func (w *walker) duplicate(seen map[string]*yaml.Node, k *yaml.Node, path string) bool {
	first, dup := seen[k.Value]
	if !dup {
		seen[k.Value] = k
		return false
	}
	w.diags = append(w.diags, v1alpha1.Problem{Offset: -1, File: w.doc.File, Line: k.Line, Column: k.Column, Field: join(path, k.Value),
		Message: fmt.Sprintf("duplicate key %q: already set at %d:%d", k.Value, first.Line, first.Column)})
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	}
	return strconv.Quote(n.Value)
}

// jsonFields maps the JSON names of a struct's fields, through inlined
// embedded structs, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range jsonFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func knownFields(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// toJSON converts a YAML tree to the values encoding/json marshals. Keys are
// always their text, so that the sink field null is not read as a null key,
// and scalars keep the kind their tag gives them.
func toJSON(n *yaml.Node) any {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return toJSON(n.Content[0])
		}
		return nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = toJSON(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = toJSON(c)
		}
		return s
	}
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	}
	return n.Value
}
