package sql

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/sluice-dev/sluice/runtime/expr"
)

func opName(a *pg.A_Expr) string {
	if len(a.Name) == 0 {
		return ""
	}
	return a.Name[len(a.Name)-1].GetString_().GetSval()
}

func (b *binder) aExpr(a *pg.A_Expr) (expr.Expr, error) {
	op := opName(a)
	switch a.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		if a.Lexpr == nil {
			x, err := b.bind(a.Rexpr)
			if err != nil {
				return nil, err
			}
			switch op {
			case "-":
				return expr.NewNegate(x)
			case "+":
				return x, nil
			}
			return b.fail(a.Location, "unsupported prefix operator %s", op)
		}
		if op == "||" {
			// Concatenation takes the text of any type: no literal is coerced.
			args, err := b.bindList([]*pg.Node{a.Lexpr, a.Rexpr})
			if err != nil {
				return nil, err
			}
			for _, e := range args {
				delete(b.untyped, e)
			}
			return expr.Fold(&expr.Concat{Args: args, Strict: true})
		}
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		if aop, ok := arithOps[op]; ok {
			return expr.NewArith(aop, l, r)
		}
		if cop, ok := cmpOps[op]; ok {
			return expr.NewCompare(cop, l, r)
		}
		switch op {
		case "~~", "!~~", "~~*", "!~~*":
			return expr.NewLike(l, r, op[0] == '!', strings.HasSuffix(op, "*"))
		case "~", "!~", "~*", "!~*":
			e, err := expr.NewRegexpMatch(l, r, op[0] == '!', strings.HasSuffix(op, "*"))
			if err != nil {
				return b.fail(a.Location, "%v", err)
			}
			return e, nil
		}
		return b.fail(a.Location, "unsupported operator %s", op)
	case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE:
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		return expr.NewLike(l, r, strings.HasPrefix(op, "!"), a.Kind == pg.A_Expr_Kind_AEXPR_ILIKE)
	case pg.A_Expr_Kind_AEXPR_IN:
		x, err := b.bind(a.Lexpr)
		if err != nil {
			return nil, err
		}
		items := a.Rexpr.GetList().GetItems()
		if items == nil {
			return b.fail(a.Location, "IN needs a list of values; subqueries are not supported")
		}
		list, err := b.bindList(items)
		if err != nil {
			return nil, err
		}
		for i := range list {
			if _, list[i], err = b.pair(x, list[i]); err != nil {
				return nil, err
			}
		}
		return expr.NewIn(x, list, op == "<>")
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return b.between(a)
	case pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		return expr.NewDistinct(l, r, a.Kind == pg.A_Expr_Kind_AEXPR_NOT_DISTINCT)
	case pg.A_Expr_Kind_AEXPR_NULLIF:
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		return expr.Call("nullif", []expr.Expr{l, r})
	}
	return b.fail(a.Location, "unsupported operator form %s", strings.TrimPrefix(a.Kind.String(), "AEXPR_"))
}

// operands binds both sides of a binary operator, an untyped literal on one
// side taking the other side's type.
func (b *binder) operands(a *pg.A_Expr) (expr.Expr, expr.Expr, error) {
	l, err := b.bind(a.Lexpr)
	if err != nil {
		return nil, nil, err
	}
	r, err := b.bind(a.Rexpr)
	if err != nil {
		return nil, nil, err
	}
	return b.pair(l, r)
}

func (b *binder) between(a *pg.A_Expr) (expr.Expr, error) {
	x, err := b.bind(a.Lexpr)
	if err != nil {
		return nil, err
	}
	bounds, err := b.bindList(a.Rexpr.GetList().GetItems())
	if err != nil {
		return nil, err
	}
	if len(bounds) != 2 {
		return b.fail(a.Location, "BETWEEN needs two bounds")
	}
	lo, hi := bounds[0], bounds[1]
	if _, lo, err = b.pair(x, lo); err != nil {
		return nil, err
	}
	if _, hi, err = b.pair(x, hi); err != nil {
		return nil, err
	}
	within := func(lo, hi expr.Expr) (expr.Expr, error) {
		ge, err := expr.NewCompare(expr.Ge, x, lo)
		if err != nil {
			return nil, err
		}
		le, err := expr.NewCompare(expr.Le, x, hi)
		if err != nil {
			return nil, err
		}
		return expr.NewLogic(false, ge, le)
	}
	e, err := within(lo, hi)
	if err != nil {
		return nil, err
	}
	if a.Kind == pg.A_Expr_Kind_AEXPR_BETWEEN_SYM || a.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM {
		swapped, err := within(hi, lo)
		if err != nil {
			return nil, err
		}
		if e, err = expr.NewLogic(true, e, swapped); err != nil {
			return nil, err
		}
	}
	if a.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN || a.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM {
		return expr.NewNot(e)
	}
	return e, nil
}

func (b *binder) boolExpr(be *pg.BoolExpr) (expr.Expr, error) {
	args, err := b.bindList(be.Args)
	if err != nil {
		return nil, err
	}
	switch be.Boolop {
	case pg.BoolExprType_NOT_EXPR:
		return expr.NewNot(args[0])
	case pg.BoolExprType_OR_EXPR:
		return expr.NewLogic(true, args...)
	}
	return expr.NewLogic(false, args...)
}

func (b *binder) booleanTest(t *pg.BooleanTest) (expr.Expr, error) {
	x, err := b.bind(t.Arg)
	if err != nil {
		return nil, err
	}
	switch t.Booltesttype {
	case pg.BoolTestType_IS_TRUE:
		return expr.NewBoolTest(x, true, false)
	case pg.BoolTestType_IS_NOT_TRUE:
		return expr.NewBoolTest(x, true, true)
	case pg.BoolTestType_IS_FALSE:
		return expr.NewBoolTest(x, false, false)
	case pg.BoolTestType_IS_NOT_FALSE:
		return expr.NewBoolTest(x, false, true)
	case pg.BoolTestType_IS_UNKNOWN:
		return expr.NewIsNull(x, false)
	}
	return expr.NewIsNull(x, true)
}

func (b *binder) caseExpr(c *pg.CaseExpr) (expr.Expr, error) {
	var subject expr.Expr
	if c.Arg != nil {
		var err error
		if subject, err = b.bind(c.Arg); err != nil {
			return nil, err
		}
	}
	var whens []expr.When
	var thens []expr.Expr
	for _, n := range c.Args {
		w := n.GetCaseWhen()
		cond, err := b.bind(w.Expr)
		if err != nil {
			return nil, err
		}
		if subject != nil {
			s, v, err := b.pair(subject, cond)
			if err != nil {
				return nil, err
			}
			if cond, err = expr.NewCompare(expr.Eq, s, v); err != nil {
				return nil, err
			}
		}
		then, err := b.bind(w.Result)
		if err != nil {
			return nil, err
		}
		whens = append(whens, expr.When{Cond: cond, Then: then})
		thens = append(thens, then)
	}
	var els expr.Expr
	if c.Defresult != nil {
		var err error
		if els, err = b.bind(c.Defresult); err != nil {
			return nil, err
		}
		thens = append(thens, els)
	}
	settled := b.settle(thens)
	for i := range whens {
		whens[i].Then = settled[i]
	}
	if els != nil {
		els = settled[len(settled)-1]
	}
	return expr.NewCase(whens, els)
}
