package sql

import "strings"

// Bounds of a query's size, checked before it is planned.
const (
	// MaxOperators bounds the operators of a query. PostgreSQL's parser
	// nests each operator of a chain such as a+b+c in the one before it,
	// and its C code recurses once per level: about 30,000 of them overflow
	// its stack and kill the process, which no Go code can recover from.
	MaxOperators = 2000
	// MaxOutputColumns bounds a query's select list, which sizes every
	// result row.
	MaxOutputColumns = 1024
)

// operatorChars are the characters PostgreSQL builds operators of.
const operatorChars = "+-*/<>=~!@#%^&|`?"

// operatorOverflow returns the offset of the operator beyond MaxOperators in
// query, or -1 when there are no more than that. A run of operator
// characters is one operator; string literals, quoted identifiers and
// comments are skipped.
func operatorOverflow(query string) int {
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			// A doubled quote inside is an escaped one, skipped as the end
			// of one quoted run and the start of the next.
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				return -1 // unterminated: the parser reports it
			}
			i += end + 1
		case strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				return -1
			}
			i += end
		case strings.HasPrefix(query[i:], "/*"):
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				return -1
			}
			i += end + 3
		case strings.IndexByte(operatorChars, c) >= 0:
			n++
			if n > MaxOperators {
				return i
			}
			for i+1 < len(query) && strings.IndexByte(operatorChars, query[i+1]) >= 0 && !strings.HasPrefix(query[i+1:], "--") && !strings.HasPrefix(query[i+1:], "/*") {
				i++
			}
		}
	}
	return -1
}
