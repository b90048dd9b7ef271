package sql

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// asOf is a FOR SYSTEM_TIME AS OF clause of the query: `table FOR
// SYSTEM_TIME AS OF s.ts [AS] t`, as Flink SQL writes a join with a
// versioned table as of the stream row's time. PostgreSQL has no such
// clause, so it is blanked out before parsing, keeping every offset.
type asOf struct {
	at     int32         // offset of FOR
	table  int32         // offset of the table name before it: its RangeVar's location
	column *pg.ColumnRef // the time column after AS OF
	used   bool
}

// splitAsOf returns query with its FOR SYSTEM_TIME AS OF clauses blanked
// out, and the clauses. A clause whose time is not a column reference
// stays, for the parser to report.
func splitAsOf(query string) (string, []*asOf) {
	scan, err := pg.Scan(query)
	if err != nil {
		return query, nil // the parser says what is wrong
	}
	// Comments may come between the clause's words.
	toks := slices.DeleteFunc(scan.Tokens, func(t *pg.ScanToken) bool {
		return t.Token == pg.Token_SQL_COMMENT || t.Token == pg.Token_C_COMMENT
	})
	word := func(i int) string { return strings.ToLower(query[toks[i].Start:toks[i].End]) }
	var clauses []*asOf
	blank := []byte(query)
	// A name: an identifier, or a keyword PostgreSQL takes as one.
	name := func(i int) bool {
		return toks[i].Token == pg.Token_IDENT || toks[i].KeywordKind == pg.KeywordKind_UNRESERVED_KEYWORD || toks[i].KeywordKind == pg.KeywordKind_COL_NAME_KEYWORD
	}
	for i := 1; i+4 < len(toks); i++ {
		if toks[i].Token != pg.Token_FOR || toks[i+1].Token != pg.Token_IDENT || word(i+1) != "system_time" ||
			toks[i+2].Token != pg.Token_AS || toks[i+3].Token != pg.Token_OF || !name(i-1) {
			continue
		}
		// The time: a column, qualified or not.
		j := i + 4
		if !name(j) {
			continue
		}
		fields := []*pg.Node{pg.MakeStrNode(identifier(query[toks[j].Start:toks[j].End]))}
		// After a dot, any keyword is a name (t.end).
		if j+2 < len(toks) && toks[j+1].Token == pg.Token_ASCII_46 && (name(j+2) || toks[j+2].KeywordKind != pg.KeywordKind_NO_KEYWORD) {
			fields = append(fields, pg.MakeStrNode(identifier(query[toks[j+2].Start:toks[j+2].End])))
			j += 2
		}
		c := &asOf{at: toks[i].Start, table: toks[i-1].Start, column: &pg.ColumnRef{Fields: fields, Location: toks[i+4].Start}}
		for k := toks[i].Start; k < toks[j].End; k++ {
			if blank[k] != '\n' {
				blank[k] = ' '
			}
		}
		clauses = append(clauses, c)
		i = j
	}
	return string(blank), clauses
}

// identifier is the name an identifier token stands for: folded to lower
// case, or as written between double quotes.
func identifier(tok string) string {
	if len(tok) >= 2 && tok[0] == '"' {
		return strings.ReplaceAll(tok[1:len(tok)-1], `""`, `"`)
	}
	return strings.ToLower(tok)
}

// asOfAt returns the FOR SYSTEM_TIME AS OF clause of the table named at
// offset loc, if it has one.
func (b *binder) asOfAt(loc int32) *asOf {
	for _, c := range b.asOfs {
		if c.table == loc {
			return c
		}
	}
	return nil
}

// temporal makes j, a join of a stream with a table, a join as of the
// stream row's time: c's column, of the stream, and the table's version
// time, its event-time column.
func (b *binder) temporal(j *plan.Join, c *asOf, leftWidth int) bool {
	c.used = true
	if j.AsOf = b.asOfColumn(c, j.Left.Source, leftWidth); j.AsOf == nil {
		return false
	}
	j.TableTime = b.versionTime(j.Right, c)
	return j.TableTime != nil
}

// asOfColumn binds the time column of c, which must be a timestamp column
// of stream, whose columns are the first leftWidth of the join's.
func (b *binder) asOfColumn(c *asOf, stream string, leftWidth int) *expr.Column {
	e, err := b.columnRef(c.column)
	if err != nil {
		return nil
	}
	col := e.(*expr.Column)
	if col.Index >= leftWidth {
		b.errorf(c.column.Location, "FOR SYSTEM_TIME AS OF takes the time of the stream's row, a column of %s, not of the table", stream)
		return nil
	}
	if col.T.Kind != value.KindTimestamp {
		b.errorf(c.column.Location, "FOR SYSTEM_TIME AS OF takes a timestamp column; %s is %s", col.Name, col.T)
		return nil
	}
	return col
}

// versionTime is the column of table's rows that versions them, its event
// time, for c, a join of it as of a time.
func (b *binder) versionTime(table *plan.Scan, c *asOf) *expr.Column {
	name := b.tables[table.Source].Time
	if name == "" {
		b.errorf(c.at, "a join FOR SYSTEM_TIME AS OF joins each row with the version of the table's row at its time: give source %s an eventTime, the column of its rows' version time", table.Source)
		return nil
	}
	for i, rc := range table.Cols {
		if rc.Name == name {
			return &expr.Column{Index: i, Name: table.Source + "." + name, T: rc.Type}
		}
	}
	b.errorf(c.at, "table %s has no column %s, its eventTime", table.Source, name)
	return nil
}

// unusedAsOf reports the FOR SYSTEM_TIME AS OF clauses no join took: of a
// stream, or of a source read alone. A query with other errors may not
// have reached its join: they say what is wrong.
func (b *binder) unusedAsOf() {
	if len(b.errs) > 0 {
		return
	}
	for _, c := range b.asOfs {
		if !c.used {
			b.errorf(c.at, "FOR SYSTEM_TIME AS OF applies to the table of a join: stream JOIN table FOR SYSTEM_TIME AS OF stream.time")
		}
	}
}
