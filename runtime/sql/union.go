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
	if emit {
		b.errorf(0, "EMIT CHANGES applies to GROUP BY queries")
		return nil
	}
	var branches []*pg.SelectStmt
	var collect func(s *pg.SelectStmt) bool
	collect = func(s *pg.SelectStmt) bool {
		if s.Op == pg.SetOperation_SETOP_NONE {
			branches = append(branches, s)
			return true
		}
		return b.setOperation(s, s == sel) && collect(s.Larg) && collect(s.Rarg)
	}
	if !collect(sel) {
		return nil
	}
	u := &plan.Union{}
	sources := map[string]bool{}
	typedBy := []int{} // the branch each column's type comes from
	outer, joined, group, over := b.scope, b.joined, b.group, b.over
	for i, br := range branches {
		at := firstLocation(br)
		if sel.WithClause != nil {
			if br.WithClause != nil {
				b.errorf(at, "a branch of UNION ALL with a WITH of its own under the union's WITH is not supported; put its WITH queries in the union's")
				return nil
			}
			br.WithClause = sel.WithClause // each branch may read the union's WITH queries
		}
		errs := len(b.errs)
		b.scope, b.joined, b.group, b.over, b.unnamed = scope{}, nil, nil, nil, i > 0
		node := b.selectStmt(br, false)
		b.scope, b.joined, b.group, b.over, b.unnamed = outer, joined, group, over, false
		if node == nil || len(b.errs) > errs {
			// A column that failed to bind is missing: its columns would
			// not compare.
			return nil
		}
		if hasStateful(node) {
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
			typedBy = make([]int, len(cols))
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
				u.Cols[c].Type, typedBy[c] = col.Type, i // NULL so far takes the type of a later branch
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
			b.errorf(at, "column %d of UNION ALL, %s, is %s in branch %d and %s in this one: cast one to the other's type", c+1, want.Name, want.Type, typedBy[c]+1, col.Type)
			return nil
		}
		u.Branches = append(u.Branches, node)
	}
	return u
}

// setOperation reports whether s, a set operation of the query (top, its
// whole statement), is one of UNION ALL, and says why not where it is not.
func (b *binder) setOperation(s *pg.SelectStmt, top bool) bool {
	at := firstLocation(leftmost(s))
	switch {
	case s.Op != pg.SetOperation_SETOP_UNION:
		b.errorf(at, "INTERSECT and EXCEPT are not supported")
	case !s.All:
		b.errorf(at, "UNION without ALL removes duplicates, which a stream cannot know it has seen the last of: write UNION ALL")
	case len(s.SortClause) > 0:
		b.errorf(location(s.SortClause[0]), "ORDER BY is not supported on a stream; results are written as they come")
	case s.LimitCount != nil:
		b.errorf(location(s.LimitCount), "LIMIT and OFFSET are not supported on a stream")
	case s.LimitOffset != nil:
		b.errorf(location(s.LimitOffset), "LIMIT and OFFSET are not supported on a stream")
	case s.IntoClause != nil || len(s.LockingClause) > 0:
		b.errorf(at, "only SELECT statements are supported")
	case s.WithClause != nil && !top:
		b.errorf(at, "a WITH inside UNION ALL is not supported; put its WITH queries at the start of the query")
	default:
		return true
	}
	return false
}

// leftmost is the first SELECT of a tree of set operations.
func leftmost(s *pg.SelectStmt) *pg.SelectStmt {
	for s.Op != pg.SetOperation_SETOP_NONE {
		s = s.Larg
	}
	return s
}

// hasStateful reports whether n or a node below it keeps state.
func hasStateful(n plan.Node) bool {
	switch n.(type) {
	case *plan.Aggregate, *plan.Over, *plan.Join, *plan.TopN:
		return true
	}
	return slices.ContainsFunc(n.Inputs(), hasStateful)
}
