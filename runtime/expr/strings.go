package expr

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Concat joins the text of its arguments, skipping NULLs, as PostgreSQL's
// concat does; the || operator is planned as Concat too, but NULL-strict.
type Concat struct {
	Args   []Expr
	Strict bool
}

// Type implements Expr.
func (c *Concat) Type() value.Type { return value.String }

func (c *Concat) String() string {
	if c.Strict {
		parts := make([]string, len(c.Args))
		for i, a := range c.Args {
			parts[i] = a.String()
		}
		return "(" + strings.Join(parts, " || ") + ")"
	}
	return "concat(" + joinExprs(c.Args) + ")"
}

func (c *Concat) operands() []Expr { return c.Args }

// Eval implements Expr.
func (c *Concat) Eval(row value.Row) (value.Value, error) {
	var b []byte
	for _, a := range c.Args {
		v, err := a.Eval(row)
		if err != nil {
			return value.Value{}, err
		}
		if v.IsNull() {
			if c.Strict {
				return value.Value{}, nil
			}
			continue
		}
		b = v.AppendText(b)
		if len(b) > MaxStringBytes {
			return value.Value{}, errStringTooLong("concatenation", int64(len(b)))
		}
	}
	return value.StringValue(string(b)), nil
}

func errStringTooLong(what string, size int64) error {
	return fmt.Errorf("the result of %s would be %d bytes, more than the %d a string may hold", what, size, MaxStringBytes)
}

func substring(s string, start, n int64) string {
	// 1-based, counting characters; positions before 1 shorten the length, as
	// in PostgreSQL.
	end := int64(math.MaxInt64)
	if n != math.MaxInt64 && (start <= 0 || n <= math.MaxInt64-start) {
		end = start + n // else beyond any string: to its end, as PostgreSQL
	}
	if start < 1 {
		start = 1
	}
	if end <= start {
		return ""
	}
	i := int64(1)
	from, to := len(s), len(s)
	for pos := range s {
		if i == start {
			from = pos
		}
		if i == end {
			to = pos
			break
		}
		i++
	}
	if from > to {
		return ""
	}
	return s[from:to]
}

func splitPart(s, delim, n value.Value) (value.Value, error) {
	k := n.Int()
	if k == 0 {
		return value.Value{}, errors.New("field position must not be zero")
	}
	str, d := s.Str(), delim.Str()
	if d == "" {
		// The whole string is the one field.
		if k == 1 || k == -1 {
			return s, nil
		}
		return value.StringValue(""), nil
	}
	if k < 0 {
		// From the end: the fields as strings.Split cuts them, left to
		// right, which a delimiter that overlaps itself ("aa" in "aaa")
		// makes differ from cutting right to left.
		k += int64(strings.Count(str, d)) + 2
		if k < 1 {
			return value.StringValue(""), nil
		}
	}
	// The k-th field, a substring of s: no copy, no slice of fields.
	for ; k > 1; k-- {
		i := strings.Index(str, d)
		if i < 0 {
			return value.StringValue(""), nil
		}
		str = str[i+len(d):]
	}
	if i := strings.Index(str, d); i >= 0 {
		str = str[:i]
	}
	return value.StringValue(str), nil
}

func reverseString(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

func initcap(s string) string {
	prevLetter := false
	return strings.Map(func(r rune) rune {
		l := unicode.IsLetter(r) || unicode.IsDigit(r)
		defer func() { prevLetter = l }()
		if l && !prevLetter {
			return unicode.ToUpper(r)
		}
		return unicode.ToLower(r)
	}, s)
}
