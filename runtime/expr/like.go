package expr

import (
	"strings"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Like is x [NOT] [I]LIKE pattern, where % matches any run of characters, _ one
// character, and a backslash escapes the next character.
type Like struct {
	X, Pattern Expr
	Not, Fold  bool // Fold: ILIKE, case-insensitive
	compiled   *likePattern
}

// NewLike type-checks x LIKE pattern.
func NewLike(x, pattern Expr, not, fold bool) (Expr, error) {
	for _, e := range []Expr{x, pattern} {
		if k := e.Type().Kind; k != value.KindString && k != value.KindNull {
			return nil, typeErrorf("LIKE applies to strings, not %s", e.Type())
		}
	}
	l := &Like{X: x, Pattern: pattern, Not: not, Fold: fold}
	if c, ok := pattern.(*Const); ok && !c.V.IsNull() {
		p := c.V.Str()
		if fold {
			p = strings.ToLower(p)
		}
		l.compiled = compileLike(p)
	}
	return Fold(l)
}

// Type implements Expr.
func (l *Like) Type() value.Type { return value.Bool }

func (l *Like) String() string {
	op := " LIKE "
	if l.Fold {
		op = " ILIKE "
	}
	if l.Not {
		op = " NOT" + op
	}
	return "(" + l.X.String() + op + l.Pattern.String() + ")"
}

func (l *Like) operands() []Expr { return []Expr{l.X, l.Pattern} }

// Eval implements Expr.
func (l *Like) Eval(row value.Row) (value.Value, error) {
	x, err := l.X.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	s := x.Str()
	if l.Fold {
		s = strings.ToLower(s)
	}
	p := l.compiled
	if p == nil {
		pv, err := l.Pattern.Eval(row)
		if err != nil || pv.IsNull() {
			return value.Value{}, err
		}
		ps := pv.Str()
		if l.Fold {
			ps = strings.ToLower(ps)
		}
		p = compileLike(ps)
	}
	return value.BoolValue(p.match(s) != l.Not), nil
}

type likeKind uint8

const (
	likeExact likeKind = iota
	likePrefix
	likeSuffix
	likeContains
	likeGeneral
)

// likePattern is a compiled LIKE pattern, with fast paths for the common forms.
type likePattern struct {
	kind    likeKind
	literal string
	tokens  []likeToken
}

type likeToken struct {
	any     bool // %
	one     bool // _
	literal string
}

func compileLike(p string) *likePattern {
	var toks []likeToken
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, likeToken{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 < len(p) {
				i++
				lit.WriteByte(p[i])
			}
		case '%':
			flush()
			if len(toks) == 0 || !toks[len(toks)-1].any {
				toks = append(toks, likeToken{any: true})
			}
		case '_':
			flush()
			toks = append(toks, likeToken{one: true})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	lp := &likePattern{kind: likeGeneral, tokens: toks}
	switch {
	case len(toks) == 0:
		lp.kind = likeExact
	case len(toks) == 1 && toks[0].literal != "":
		lp.kind, lp.literal = likeExact, toks[0].literal
	case len(toks) == 2 && toks[0].literal != "" && toks[1].any:
		lp.kind, lp.literal = likePrefix, toks[0].literal
	case len(toks) == 2 && toks[0].any && toks[1].literal != "":
		lp.kind, lp.literal = likeSuffix, toks[1].literal
	case len(toks) == 3 && toks[0].any && toks[1].literal != "" && toks[2].any:
		lp.kind, lp.literal = likeContains, toks[1].literal
	}
	return lp
}

func (p *likePattern) match(s string) bool {
	switch p.kind {
	case likeExact:
		return s == p.literal
	case likePrefix:
		return strings.HasPrefix(s, p.literal)
	case likeSuffix:
		return strings.HasSuffix(s, p.literal)
	case likeContains:
		return strings.Contains(s, p.literal)
	}
	return matchTokens(p.tokens, s)
}

// matchTokens matches s against the tokens without recursion: on a mismatch
// it backtracks only to the last %, letting it take one more character.
// Earlier %s never need to take more, since the last one can take whatever
// they would, so the work is at most len(s) × len(toks) steps, whatever the
// pattern (a recursive matcher is exponential in the number of %s).
func matchTokens(toks []likeToken, s string) bool {
	ti, si := 0, 0
	star, starAt := -1, 0 // the last % seen and where its match ends
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch {
			case t.any:
				star, starAt = ti, si
				ti++
				continue
			case t.one:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], t.literal) {
					si += len(t.literal)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if star < 0 || starAt == len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starAt:])
		starAt += n
		ti, si = star+1, starAt
	}
}
