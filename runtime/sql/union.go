package sql

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// unionAll binds `q1 UNION ALL q2 ...`: each branch a stateless query of a
// source of its own (filters and computed columns, through WITH queries and
// subqueries too), all of one width and of the same types, column by
// column, but that decimals of one scale may differ in precision. The
// union's columns are named as the first branch's.
func (b *binder) unionAll(sel *pg.SelectStmt, emit bool) plan.Node {
	switch {
	case sel.Op != pg.SetOperation_SETOP_UNION:
		b.errorf(firstLocation(sel.Larg), "INTERSECT and EXCEPT are not supported")
		return nil
	case !sel.All:
		b.errorf(firstLocation(sel.Larg), "UNION without ALL removes duplicates, which a stream cannot know it has seen the last of: write UNION ALL")
		return nil
	case emit:
		b.errorf(0, "EMIT CHANGES applies to GROUP BY queries")
		return nil
	case len(sel.SortClause) > 0:
		b.errorf(location(sel.SortClause[0]), "ORDER BY is not supported on a stream; results are written as they come")
		return nil
	case sel.LimitCount != nil || sel.LimitOffset != nil:
		b.errorf(firstLocation(sel.Larg), "LIMIT and OFFSET are not supported on a stream")
		return nil
	}
	var branches []*pg.SelectStmt
	var collect func(s *pg.SelectStmt) bool
	collect = func(s *pg.SelectStmt) bool {
		if s.Op == pg.SetOperation_SETOP_NONE {
			branches = append(branches, s)
			return true
		}
		if s.Op != pg.SetOperation_SETOP_UNION || !s.All || len(s.SortClause) > 0 || s.LimitCount != nil || s.WithClause != nil {
			b.errorf(firstLocation(s.Larg), "a branch of UNION ALL is a SELECT, or another UNION ALL")
			return false
		}
		return collect(s.Larg) && collect(s.Rarg)
	}
	if !collect(sel.Larg) || !collect(sel.Rarg) {
		return nil
	}
	u := &plan.Union{}
	sources := map[string]bool{}
	outer, right, group, over := b.scope, b.right, b.group, b.over
	for i, br := range branches {
		at := firstLocation(br)
		if sel.WithClause != nil {
			if br.WithClause != nil {
				b.errorf(at, "a branch of UNION ALL with a WITH of its own under the union's WITH is not supported; put its WITH queries in the union's")
				return nil
			}
			br.WithClause = sel.WithClause // each branch may read the union's WITH queries
		}
		b.scope, b.right, b.group, b.over, b.unnamed = scope{}, nil, nil, nil, i > 0
		node := b.selectStmt(br, false)
		b.scope, b.right, b.group, b.over, b.unnamed = outer, right, group, over, false
		if node == nil {
			return nil
		}
		if plan.EventTime(node) != nil || hasStateful(node) {
			b.errorf(at, "a branch of UNION ALL filters and computes the columns of a source; aggregating, joining, OVER and top-N are not supported in it yet")
			return nil
		}
		src := plan.Sources(node)
		if len(src) != 1 || sources[src[0]] {
			b.errorf(at, "each branch of UNION ALL reads a source of its own; %s is read by an earlier one", src[0])
			return nil
		}
		sources[src[0]] = true
		cols := node.Columns()
		if i == 0 {
			u.Cols = slices.Clone(cols)
			u.Branches = append(u.Branches, node)
			continue
		}
		if len(cols) != len(u.Cols) {
			b.errorf(at, "each branch of UNION ALL has as many columns as the first, %d; this one has %d", len(u.Cols), len(cols))
			return nil
		}
		for c, col := range cols {
			want := u.Cols[c]
			if col.Type == want.Type {
				continue
			}
			if want.Type.Kind == value.KindNull {
				u.Cols[c].Type = col.Type // NULL in the first branch takes the type of a later one
				continue
			}
			if col.Type.Kind == value.KindNull {
				continue
			}
			if want.Type.Kind == value.KindDecimal && col.Type.Kind == value.KindDecimal && want.Type.Scale == col.Type.Scale {
				// Of one scale, the values are alike: the wider precision holds both.
				u.Cols[c].Type.Precision = max(want.Type.Precision, col.Type.Precision)
				continue
			}
			b.errorf(at, "column %d of UNION ALL, %s, is %s in the first branch and %s in this one: cast one to the other's type", c+1, want.Name, want.Type, col.Type)
			return nil
		}
		u.Branches = append(u.Branches, node)
	}
	return u
}

// hasStateful reports whether n or a node below it keeps state.
func hasStateful(n plan.Node) bool {
	switch n.(type) {
	case *plan.Aggregate, *plan.Over, *plan.Join, *plan.TopN:
		return true
	}
	return slices.ContainsFunc(n.Inputs(), hasStateful)
}
