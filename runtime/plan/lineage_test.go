package plan

import (
	"testing"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestSourceColumn: a key traces to its source column through filters and
// projections that pass the column on, and not through one that computes.
func TestSourceColumn(t *testing.T) {
	scan := &Scan{Source: "trades", Cols: []value.Column{{Name: "id", Type: value.String}, {Name: "symbol", Type: value.String}}}
	symbol := &expr.Column{Index: 1, Name: "symbol", T: value.String}
	filtered := &Filter{Input: scan, Predicate: expr.NewConst(value.BoolValue(true))}
	renamed := &Project{Input: filtered, Exprs: []expr.Expr{symbol, expr.NewConst(value.IntValue(1))}, Names: []string{"s", "one"}}
	for _, tt := range []struct {
		name string
		n    Node
		e    expr.Expr
		want string // "": not traced
	}{
		{"scan", scan, symbol, "symbol"},
		{"filter", filtered, symbol, "symbol"},
		{"renamed", renamed, &expr.Column{Index: 0, Name: "s"}, "symbol"},
		{"computed", renamed, &expr.Column{Index: 1, Name: "one"}, ""},
		{"not a column", scan, expr.NewConst(value.IntValue(1)), ""},
	} {
		src, col, ok := SourceColumn(tt.n, tt.e)
		if got := col; !ok && tt.want != "" || ok && (got != tt.want || src != "trades") {
			t.Errorf("%s: %s.%s, %v; want trades.%s", tt.name, src, col, ok, tt.want)
		}
	}
}
