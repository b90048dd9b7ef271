package sql

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Bounds of a query's size, checked before it is planned.
const (
	// MaxTokens bounds the tokens of a query. PostgreSQL's parser nests
	// each link of a chain such as a+b+c, x::int::int or x IS NULL IS NULL
	// in the one before it, and its C code recurses once per level: about
	// 30,000 levels overflow its stack and kill the process, which no Go
	// code can recover from. A query has more tokens than levels.
	MaxTokens = 10_000
	// MaxOutputColumns bounds a query's select list, which sizes every
	// result row.
	MaxOutputColumns = 1024
)

// tokenOverflow returns the offset of the token beyond MaxTokens in query,
// or -1 when there are no more than that. It counts with PostgreSQL's own
// lexer, which does not recurse, so that no quoting or comment can hide a
// token from it; a query it cannot scan is left to the parser to report.
func tokenOverflow(query string) int {
	scan, err := pg.Scan(query)
	if err != nil || len(scan.Tokens) <= MaxTokens {
		return -1
	}
	return int(scan.Tokens[MaxTokens].Start)
}
