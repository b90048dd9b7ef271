package plan

import (
	"strings"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Union is UNION ALL of queries of one width and types: every row of each,
// as it comes. Each branch is a stateless query of a source of its own.
type Union struct {
	Branches []Node
	// Cols are the union's columns: the first branch's names, the types
	// every branch has.
	Cols []value.Column
}

// Columns implements Node.
func (u *Union) Columns() []value.Column { return u.Cols }

// Inputs implements Node.
func (u *Union) Inputs() []Node { return u.Branches }

// Describe implements Node.
func (u *Union) Describe() string {
	sources := make([]string, len(u.Branches))
	for i, b := range u.Branches {
		sources[i] = strings.Join(Sources(b), ", ")
	}
	return "UnionAll of " + strings.Join(sources, ", ")
}
