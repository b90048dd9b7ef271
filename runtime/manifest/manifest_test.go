package manifest

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

const header = `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata:
  name: q
spec:
  sources:
    - name: trades
      datagen: {generator: trades}
`

// locate parses a manifest and places one problem of it.
func locate(t *testing.T, src string, p v1alpha1.Problem) v1alpha1.Problem {
	t.Helper()
	doc, err := Parse("q.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ds := doc.Locate(v1alpha1.Problems{p})
	if len(ds) != 1 {
		t.Fatalf("Locate = %v", ds)
	}
	return ds[0]
}

// TestQueryOffsets places offsets inside queries written in each YAML style.
func TestQueryOffsets(t *testing.T) {
	tests := []struct {
		name, query string
		offset      int
		line, col   int
	}{
		{"plain", "  query: SELECT nope FROM trades\n", 7, 9, 17},
		{"double-quoted", "  query: \"SELECT nope FROM trades\"\n", 7, 9, 18},
		{"single-quoted", "  query: 'SELECT nope FROM trades'\n", 7, 9, 18},
		{"literal", "  query: |\n    SELECT symbol,\n           nope\n    FROM trades\n", 22, 11, 12},
		{"literal first line", "  query: |\n    SELECT nope\n    FROM trades\n", 7, 10, 12},
	}
	for _, tt := range tests {
		src := header + tt.query + "  sink: {stdout: {}}\n"
		if got := tt.query; !strings.Contains(got, "nope") {
			t.Fatal("bad test")
		}
		d := locate(t, src, v1alpha1.Problem{Field: "spec.query", Offset: tt.offset, Message: "x"})
		if d.Line != tt.line || d.Column != tt.col {
			t.Errorf("%s: offset %d at %d:%d; want %d:%d", tt.name, tt.offset, d.Line, d.Column, tt.line, tt.col)
		}
		lines := strings.Split(src, "\n")
		if at := lines[d.Line-1][d.Column-1:]; !strings.HasPrefix(at, "nope") {
			t.Errorf("%s: %d:%d points at %q; want nope", tt.name, d.Line, d.Column, at)
		}
	}
}

// TestFieldPositions places problems of fields, falling back to the nearest
// parent that was written.
func TestFieldPositions(t *testing.T) {
	src := header + "      schema:\n        - {name: a, type: money}\n  query: SELECT a FROM trades\n  sink: {stdout: {}}\n  errorPolicy: {strategy: DeadLetter}\n"
	tests := []struct {
		field     string
		line, col int
	}{
		{"spec.sources[0].schema[0].type", 10, 27},
		{"spec.errorPolicy.deadLetter", 13, 16},
		{"spec.sources[0].datagen.generator", 8, 28},
		{"spec.runtime.parallelism", 6, 3}, // not written: placed at spec
	}
	for _, tt := range tests {
		d := locate(t, src, v1alpha1.Problem{Field: tt.field, Offset: -1, Message: "x"})
		if d.Line != tt.line || d.Column != tt.col {
			t.Errorf("%s at %d:%d; want %d:%d", tt.field, d.Line, d.Column, tt.line, tt.col)
		}
	}
}

// TestStructuralProblems: unknown fields and values of the wrong kind are all
// reported, and the rest of the document still decodes.
func TestStructuralProblems(t *testing.T) {
	src := header + `      formt: json
  query: SELECT symbol FROM trades
  sink: {"null": {}}
  runtime: {parallelism: "4", batchLinger: soon, channelCapacity: 8}
`
	doc, err := Parse("q.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		`q.yaml:9:7: spec.sources[0].formt: unknown field "formt"`,
		`q.yaml:12:26: spec.runtime.parallelism: want a whole number, got the string "4"`,
		`q.yaml:12:44: spec.runtime.batchLinger: "soon" is not a duration`,
	}
	got := doc.Structural()
	if len(got) != len(want) {
		t.Fatalf("Structural() = %v; want %d problems", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].String(), w) {
			t.Errorf("problem %d = %q; want it to start %q", i, got[i], w)
		}
	}
	spec := doc.Query.Spec
	if spec.Sink.Null == nil || spec.Runtime.ChannelCapacity != 8 || spec.Runtime.Parallelism != 0 {
		t.Errorf("decoded spec %+v; want the null sink and capacity 8 kept, the bad parallelism dropped", spec)
	}
}

// TestParseErrors: YAML syntax errors and the wrong kind of document.
func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"spec:\n  sources:\n    - name: a\n   bad: [\n", "q.yaml:"},
		{"", "q.yaml:1:1: the manifest is empty"},
		{"apiVersion: v1\nkind: Pod\n", `q.yaml:1:13: apiVersion: want streaming.sluice.dev/v1alpha1, got "v1"`},
	}
	for _, tt := range tests {
		_, err := Parse("q.yaml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want an error containing %q", tt.src, err, tt.want)
		}
	}
}

// TestDuplicateKeys: a key written twice in one mapping is a problem at the
// second one, wherever it is; the first value is the one decoded.
func TestDuplicateKeys(t *testing.T) {
	src := `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata:
  name: q
  labels: {team: a, team: b}
spec:
  sources:
    - name: trades
      file: {path: t.jsonl}
      schema: [{name: symbol, type: string, type: int}]
  query: SELECT 1 AS x FROM trades
  query: SELECT symbol FROM trades
  sink: {"null": {}}
`
	doc, err := Parse("q.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		`q.yaml:5:21: metadata.labels.team: duplicate key "team": already set at 5:12`,
		`q.yaml:10:45: spec.sources[0].schema[0].type: duplicate key "type": already set at 10:31`,
		`q.yaml:12:3: spec.query: duplicate key "query": already set at 11:3`,
	}
	got := doc.Structural()
	if len(got) != len(want) {
		t.Fatalf("Structural() = %v; want %d problems", got, len(want))
	}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("problem %d = %q; want %q", i, got[i], w)
		}
	}
	if q := doc.Query.Spec.Query; q != "SELECT 1 AS x FROM trades" {
		t.Errorf("query = %q; want the first one kept", q)
	}
}
