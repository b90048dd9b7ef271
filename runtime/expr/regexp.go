package expr

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Regular expressions are RE2's (Go's regexp): matching is linear in the
// input whatever the pattern, which an engine fed by others' records needs,
// so backreferences and lookaround are refused when the query is planned.
// Patterns must be constants, compiled once.

// pattern is a compiled regular expression, with a literal every match
// contains, if it has one: a string without it is not matched at all,
// which strings.Contains finds much faster than the matcher, whose
// unanchored search tries every position.
type pattern struct {
	*regexp.Regexp
	literal string
	// If the pattern is a concatenation of parts one of which is the
	// literal at, after parts that match at most lead bytes, no match
	// starts more than lead bytes before at's first place in a string:
	// the search starts there, in later, the pattern with \A (^) made
	// one that never matches (it cannot, past the text's start). Nil if
	// the pattern is not of that form, or holds an assertion that reads
	// the byte before it (multi-line ^, \b, \B), which a search from
	// within the text would not see.
	at    string
	lead  int
	later *regexp.Regexp
}

// mayMatch reports whether s holds the literal every match contains.
func (p *pattern) mayMatch(s string) bool {
	return p.literal == "" || strings.Contains(s, p.literal)
}

// search returns the regular expression to search s with and the place
// to search from, past which every match starts: its indexes in s[from:]
// are from less than in s. ok is false if s holds no match.
func (p *pattern) search(s string) (re *regexp.Regexp, from int, ok bool) {
	if p.later == nil {
		return p.Regexp, 0, p.mayMatch(s)
	}
	i := strings.Index(s, p.at)
	if i < 0 {
		return nil, 0, false
	}
	// A search from within a character would read its other bytes as
	// bytes of invalid UTF-8, each a rune (U+FFFD) of its own: it starts
	// at the character's first byte.
	from = i - p.lead
	for from > 0 && !utf8.RuneStart(s[from]) {
		from--
	}
	if from <= 0 {
		return p.Regexp, 0, true
	}
	return p.later, from, true
}

// findSubmatchIndex is FindStringSubmatchIndex, searching from where a
// match can start.
func (p *pattern) findSubmatchIndex(s string) []int {
	re, from, ok := p.search(s)
	if !ok {
		return nil
	}
	m := re.FindStringSubmatchIndex(s[from:])
	shift(m, from)
	return m
}

// shift adds from to each index of the match m that is not -1.
func shift(m []int, from int) {
	for i, x := range m {
		if x >= 0 {
			m[i] = x + from
		}
	}
}

// anchor finds the literal part of re (a group of one, too), a parsed tree, that follows
// parts of the fewest bytes at most (of the longest literals, the first),
// and how many, for pattern.at and pattern.lead; ok is false if re is not
// a concatenation with such a part, or holds an assertion that reads the
// byte before it, other than \A.
func anchor(re *syntax.Regexp) (at string, lead int, ok bool) {
	if re.Op != syntax.OpConcat || readsBefore(re) {
		return "", 0, false
	}
	for i, sub := range re.Sub {
		for sub.Op == syntax.OpCapture {
			sub = sub.Sub[0]
		}
		if sub.Op != syntax.OpLiteral || sub.Flags&syntax.FoldCase != 0 || len(string(sub.Rune)) < len(at) {
			continue
		}
		n := 0
		for _, before := range re.Sub[:i] {
			w := maxBytes(before)
			if w < 0 {
				n = -1
				break
			}
			n += w
		}
		if n >= 0 && (len(string(sub.Rune)) > len(at) || n < lead) {
			at, lead, ok = string(sub.Rune), n, true
		}
	}
	return at, lead, ok
}

// readsBefore reports whether re holds a multi-line ^, \b or \B: an
// assertion whose answer depends on the byte before it, which a search
// starting within the text would take for its start.
func readsBefore(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	for _, sub := range re.Sub {
		if readsBefore(sub) {
			return true
		}
	}
	return false
}

// maxBytes is the most bytes re matches, or -1 if unbounded. The matcher
// reads a byte of invalid UTF-8 as a rune of its own, so a rune is at
// most utf8.UTFMax bytes whatever it is.
func maxBytes(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpNoMatch:
		return 0
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return len(re.Rune) * utf8.UTFMax // a rune's case may be of other bytes (k, U+212A)
		}
		return len(string(re.Rune))
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return maxBytes(re.Sub[0])
	case syntax.OpRepeat:
		if w := maxBytes(re.Sub[0]); w >= 0 && re.Max >= 0 {
			return w * re.Max
		}
	case syntax.OpConcat, syntax.OpAlternate:
		n := 0
		for _, sub := range re.Sub {
			w := maxBytes(sub)
			if w < 0 {
				return -1
			}
			if re.Op == syntax.OpConcat {
				n += w
			} else {
				n = max(n, w)
			}
		}
		return n
	}
	return -1 // star, plus
}

// neverAtStart returns re with each \A (^) made an empty class, which
// matches nothing: a search that starts past the text's start, where \A
// cannot match, searches in it.
func neverAtStart(re *syntax.Regexp) *syntax.Regexp {
	if re.Op == syntax.OpBeginText {
		return &syntax.Regexp{Op: syntax.OpNoMatch}
	}
	out := *re
	out.Sub = make([]*syntax.Regexp, len(re.Sub))
	for i, sub := range re.Sub {
		out.Sub[i] = neverAtStart(sub)
	}
	return &out
}

// requiredLiteral is the longest literal that every match of re contains,
// or "" (a case-folded literal is not one).
func requiredLiteral(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return ""
		}
		return string(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiteral(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiteral(re.Sub[0])
		}
	case syntax.OpConcat:
		longest := ""
		for _, sub := range re.Sub {
			if l := requiredLiteral(sub); len(l) > len(longest) {
				longest = l
			}
		}
		return longest
	}
	return ""
}

// Flags of compilePattern.
const (
	// foldCase ignores case (~*, flag i).
	foldCase = 1 << iota
	// dotNewline lets . and [^...] match a newline, as PostgreSQL's do
	// (Java's, and so Flink's, do not).
	dotNewline
)

// compilePattern compiles the constant pattern argument p of the function
// or operator name, with flags. A NULL pattern gives a nil pattern: the
// result is NULL.
func compilePattern(name string, p Expr, flags int) (*pattern, error) {
	c, ok := p.(*Const)
	if !ok {
		return nil, typeErrorf("%s takes a constant pattern, not %s", name, p)
	}
	if c.V.IsNull() {
		return nil, nil
	}
	if c.T.Kind != value.KindString {
		return nil, typeErrorf("%s takes a string pattern, not %s", name, c.T)
	}
	src := c.V.Str()
	if flags&dotNewline != 0 {
		src = "(?s)" + src
	}
	if flags&foldCase != 0 {
		src = "(?i)" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, typeErrorf("%s: pattern %s: %v (patterns are RE2: no backreferences or lookaround)", name, c, err)
	}
	compiled := &pattern{Regexp: re}
	tree, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return compiled, nil
	}
	compiled.literal = requiredLiteral(tree.Simplify())
	if strings.ContainsRune(compiled.literal, utf8.RuneError) {
		// The matcher reads a byte of invalid UTF-8 as U+FFFD, which
		// strings.Contains does not.
		compiled.literal = ""
	}
	// The tree as parsed, not simplified: simplifying repeats a group's
	// capture, which compiled again would be groups of their own.
	if at, lead, ok := anchor(tree); ok && !strings.ContainsRune(at, utf8.RuneError) {
		later, err := regexp.Compile(neverAtStart(tree).String())
		if err == nil && later.NumSubexp() == re.NumSubexp() {
			compiled.at, compiled.lead, compiled.later = at, lead, later
		}
	}
	return compiled, nil
}

// RegexpMatch is x ~ pattern (POSIX regular expression match, PostgreSQL's
// operator), ~* ignoring case, and their negations !~ and !~*: whether the
// pattern matches anywhere in x.
type RegexpMatch struct {
	X, Pattern Expr
	Not, Fold  bool
	re         *pattern
}

// NewRegexpMatch type-checks x ~ pattern and compiles the pattern.
func NewRegexpMatch(x, pattern Expr, not, fold bool) (Expr, error) {
	m := &RegexpMatch{X: x, Pattern: pattern, Not: not, Fold: fold}
	if k := x.Type().Kind; k != value.KindString && k != value.KindNull {
		return nil, typeErrorf("%s applies to strings, not %s", m.op(), x.Type())
	}
	flags := dotNewline
	if fold {
		flags |= foldCase
	}
	re, err := compilePattern(m.op(), pattern, flags)
	if err != nil {
		return nil, err
	}
	if re == nil {
		return &Const{T: value.Bool}, nil
	}
	m.re = re
	return Fold(m)
}

func (m *RegexpMatch) op() string {
	op := "~"
	if m.Fold {
		op += "*"
	}
	if m.Not {
		op = "!" + op
	}
	return op
}

// Type implements Expr.
func (m *RegexpMatch) Type() value.Type { return value.Bool }

func (m *RegexpMatch) String() string {
	return "(" + m.X.String() + " " + m.op() + " " + m.Pattern.String() + ")"
}

func (m *RegexpMatch) operands() []Expr { return []Expr{m.X, m.Pattern} }

// Eval implements Expr.
func (m *RegexpMatch) Eval(row value.Row) (value.Value, error) {
	x, err := m.X.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	s := x.Str()
	re, from, ok := m.re.search(s)
	return value.BoolValue((ok && re.MatchString(s[from:])) != m.Not), nil
}

// regexpExtract is regexp_extract(s, pattern[, group]), as in Flink: the
// text the group (0, the default, is the whole match) matched in the
// pattern's first match in s; NULL when the pattern does not match or the
// group took no part in the match.
type regexpExtract struct {
	x, pattern, group Expr // group nil: 0
	re                *pattern
}

func bindRegexpExtract(name string, a []Expr) (Expr, error) {
	kinds := []value.Kind{value.KindString, value.KindString, value.KindInt}
	if err := wantKinds(name, a, kinds[:len(a)]...); err != nil {
		return nil, err
	}
	re, err := compilePattern(name, a[1], 0)
	if err != nil {
		return nil, err
	}
	if re == nil {
		return &Const{T: value.String}, nil
	}
	e := &regexpExtract{x: a[0], pattern: a[1], re: re}
	if len(a) == 3 {
		e.group = a[2]
		if c, ok := a[2].(*Const); ok && !c.V.IsNull() {
			if _, err := e.groupOf(c.V); err != nil {
				return nil, typeErrorf("%s: %v", name, err)
			}
		}
	}
	return e, nil
}

func (e *regexpExtract) Type() value.Type { return value.String }

func (e *regexpExtract) String() string {
	s := "regexp_extract(" + e.x.String() + ", " + e.pattern.String()
	if e.group != nil {
		s += ", " + e.group.String()
	}
	return s + ")"
}

func (e *regexpExtract) operands() []Expr {
	if e.group == nil {
		return []Expr{e.x, e.pattern}
	}
	return []Expr{e.x, e.pattern, e.group}
}

// groupOf checks a group number against the pattern's groups.
func (e *regexpExtract) groupOf(v value.Value) (int, error) {
	n := v.Int()
	if n < 0 || n > int64(e.re.NumSubexp()) {
		return 0, fmt.Errorf("group %d of a pattern with %d groups", n, e.re.NumSubexp())
	}
	return int(n), nil
}

func (e *regexpExtract) Eval(row value.Row) (value.Value, error) {
	x, err := e.x.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	group := 0
	if e.group != nil {
		g, err := e.group.Eval(row)
		if err != nil || g.IsNull() {
			return value.Value{}, err
		}
		if group, err = e.groupOf(g); err != nil {
			return value.Value{}, evalErr(e, err)
		}
	}
	s := x.Str()
	// One allocation, the match's indexes: Go's regexp has no form that
	// fills a slice of the caller's.
	m := e.re.findSubmatchIndex(s)
	if m == nil || m[2*group] < 0 {
		return value.Value{}, nil
	}
	return value.StringValue(s[m[2*group]:m[2*group+1]]), nil
}

// regexpReplace is regexp_replace(s, pattern, replacement[, flags]), as in
// PostgreSQL: the first match replaced, or every one with flag g; flag i
// ignores case. In the replacement, \1 to \9 are the groups' text, \& the
// whole match's, and \\ a backslash.
type regexpReplace struct {
	x, pattern, replacement, flags Expr // flags nil: none
	re                             *pattern
	all                            bool
	template                       string // in Go's Expand form
}

func bindRegexpReplace(name string, a []Expr) (Expr, error) {
	kinds := []value.Kind{value.KindString, value.KindString, value.KindString, value.KindString}
	if err := wantKinds(name, a, kinds[:len(a)]...); err != nil {
		return nil, err
	}
	e := &regexpReplace{x: a[0], pattern: a[1], replacement: a[2]}
	flags := dotNewline
	if len(a) == 4 {
		e.flags = a[3]
		c, ok := a[3].(*Const)
		if !ok {
			return nil, typeErrorf("%s takes constant flags, not %s", name, a[3])
		}
		if c.V.IsNull() {
			return &Const{T: value.String}, nil // strict, as PostgreSQL's
		}
		for _, f := range c.V.Str() {
			switch f {
			case 'g':
				e.all = true
			case 'i':
				flags |= foldCase
			default:
				return nil, typeErrorf("%s: unknown flag %q (g replaces every match, i ignores case)", name, f)
			}
		}
	}
	re, err := compilePattern(name, a[1], flags)
	if err != nil {
		return nil, err
	}
	c, ok := a[2].(*Const)
	if !ok {
		return nil, typeErrorf("%s takes a constant replacement, not %s", name, a[2])
	}
	if re == nil || c.V.IsNull() {
		return &Const{T: value.String}, nil
	}
	e.re, e.template = re, expandTemplate(c.V.Str())
	return e, nil
}

// expandTemplate rewrites a PostgreSQL replacement into Go's Expand form.
func expandTemplate(r string) string {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(r):
			i++
			switch d := r[i]; {
			case d >= '1' && d <= '9':
				b.WriteString("${" + string(d) + "}")
			case d == '&':
				b.WriteString("${0}")
			case d == '\\':
				b.WriteByte('\\')
			default:
				// As PostgreSQL: a backslash before anything else stays.
				b.WriteByte('\\')
				i-- // the next character is written as it is
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (e *regexpReplace) Type() value.Type { return value.String }

func (e *regexpReplace) String() string {
	s := "regexp_replace(" + e.x.String() + ", " + e.pattern.String() + ", " + e.replacement.String()
	if e.flags != nil {
		s += ", " + e.flags.String()
	}
	return s + ")"
}

func (e *regexpReplace) operands() []Expr {
	if e.flags == nil {
		return []Expr{e.x, e.pattern, e.replacement}
	}
	return []Expr{e.x, e.pattern, e.replacement, e.flags}
}

func (e *regexpReplace) Eval(row value.Row) (value.Value, error) {
	x, err := e.x.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	s := x.Str()
	re, from, ok := e.re.search(s)
	if !ok {
		return x, nil
	}
	var matches [][]int
	if e.all {
		matches = re.FindAllStringSubmatchIndex(s[from:], -1)
	} else if m := re.FindStringSubmatchIndex(s[from:]); m != nil {
		matches = [][]int{m}
	}
	if matches == nil {
		return x, nil
	}
	for _, m := range matches {
		shift(m, from)
	}
	var out []byte
	last := 0
	for _, m := range matches {
		out = append(out, s[last:m[0]]...)
		out = e.re.ExpandString(out, e.template, s, m)
		last = m[1]
		if len(out) > MaxStringBytes {
			return value.Value{}, evalErr(e, errStringTooLong("regexp_replace", int64(len(out))))
		}
	}
	out = append(out, s[last:]...)
	if len(out) > MaxStringBytes {
		return value.Value{}, evalErr(e, errStringTooLong("regexp_replace", int64(len(out))))
	}
	return value.StringValue(string(out)), nil
}
