package sql

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// location returns the byte offset of a node, or -1 if it carries none.
func location(n *pg.Node) int32 {
	if n == nil {
		return -1
	}
	switch v := n.Node.(type) {
	case *pg.Node_ColumnRef:
		return v.ColumnRef.Location
	case *pg.Node_AConst:
		return v.AConst.Location
	case *pg.Node_AExpr:
		if l := location(v.AExpr.Lexpr); l >= 0 && l < v.AExpr.Location {
			return l
		}
		return v.AExpr.Location
	case *pg.Node_BoolExpr:
		if len(v.BoolExpr.Args) > 0 {
			if l := location(v.BoolExpr.Args[0]); l >= 0 && l < v.BoolExpr.Location {
				return l
			}
		}
		return v.BoolExpr.Location
	case *pg.Node_NullTest:
		return v.NullTest.Location
	case *pg.Node_BooleanTest:
		return v.BooleanTest.Location
	case *pg.Node_CaseExpr:
		return v.CaseExpr.Location
	case *pg.Node_TypeCast:
		if v.TypeCast.Location >= 0 {
			return v.TypeCast.Location
		}
		return location(v.TypeCast.Arg)
	case *pg.Node_FuncCall:
		return v.FuncCall.Location
	case *pg.Node_CoalesceExpr:
		return v.CoalesceExpr.Location
	case *pg.Node_MinMaxExpr:
		return v.MinMaxExpr.Location
	case *pg.Node_SqlvalueFunction:
		return v.SqlvalueFunction.Location
	case *pg.Node_SubLink:
		return v.SubLink.Location
	case *pg.Node_ResTarget:
		return v.ResTarget.Location
	case *pg.Node_RangeVar:
		return v.RangeVar.Location
	case *pg.Node_SortBy:
		if v.SortBy.Location >= 0 {
			return v.SortBy.Location
		}
		return location(v.SortBy.Node)
	case *pg.Node_WindowDef:
		return v.WindowDef.Location
	case *pg.Node_ParamRef:
		return v.ParamRef.Location
	case *pg.Node_AArrayExpr:
		return v.AArrayExpr.Location
	case *pg.Node_JoinExpr:
		return location(v.JoinExpr.Larg)
	case *pg.Node_RangeSubselect:
		return -1
	case *pg.Node_RangeFunction:
		if len(v.RangeFunction.Functions) > 0 {
			if l := v.RangeFunction.Functions[0].GetList().GetItems(); len(l) > 0 {
				return location(l[0])
			}
		}
	case *pg.Node_GroupingSet:
		return v.GroupingSet.Location
	}
	return -1
}

func firstNodeLocation(nodes []*pg.Node) int32 {
	for _, n := range nodes {
		if l := location(n); l >= 0 {
			return l
		}
	}
	return 0
}

func firstLocation(sel *pg.SelectStmt) int32 {
	if sel == nil {
		return 0
	}
	return firstNodeLocation(sel.TargetList)
}
