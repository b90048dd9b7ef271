package sql

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

func (b *binder) constant(c *pg.A_Const) (expr.Expr, error) {
	switch {
	case c.Isnull:
		return &expr.Const{}, nil
	case c.GetIval() != nil:
		return expr.NewConst(value.IntValue(int64(c.GetIval().Ival))), nil
	case c.GetFval() != nil:
		s := c.GetFval().Fval
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return expr.NewConst(value.IntValue(i)), nil
			}
		}
		return decimalLiteral(s)
	case c.GetBoolval() != nil:
		return expr.NewConst(value.BoolValue(c.GetBoolval().Boolval)), nil
	case c.GetSval() != nil:
		e := expr.NewConst(value.StringValue(c.GetSval().Sval))
		if b.untyped == nil {
			b.untyped = map[expr.Expr]bool{}
		}
		b.untyped[e] = true
		return e, nil
	}
	return b.fail(c.Location, "unsupported constant")
}

// decimalLiteral types a numeric literal with a fraction as an exact decimal
// with the literal's own scale, as PostgreSQL's numeric does.
func decimalLiteral(s string) (expr.Expr, error) {
	// The scale is the digits after the point, less the exponent: 1.5e-2 is
	// 0.015, of scale 3; 2.5e1 is 25, of scale 0.
	mantissa, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mantissa = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return nil, fmt.Errorf("invalid numeric literal %s", s)
		}
		exp = e
	}
	scale := 0
	if i := strings.IndexByte(mantissa, '.'); i >= 0 {
		scale = len(mantissa) - i - 1
	}
	scale = max(scale-exp, 0)
	if scale > value.MaxDecimalPrecision {
		scale = value.MaxDecimalPrecision
	}
	u, err := value.ParseDecimal([]byte(s), uint8(scale))
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return nil, err
		}
		return expr.NewConst(value.DoubleValue(f)), nil
	}
	return expr.NewConst(value.DecimalValue(u, uint8(scale))), nil
}

func (b *binder) typeCast(tc *pg.TypeCast) (expr.Expr, error) {
	t, mask, err := b.typeName(tc.TypeName)
	if err != nil {
		return nil, err
	}
	x, err := b.bind(tc.Arg)
	if err != nil {
		return nil, err
	}
	if t.Kind == value.KindInterval {
		c, ok := x.(*expr.Const)
		if !ok || c.V.Kind() != value.KindString {
			return b.fail(tc.Location, "INTERVAL needs a constant string, e.g. INTERVAL '15' MINUTE")
		}
		d, err := parseInterval(c.V.Str(), mask)
		if err != nil {
			return b.fail(location(tc.Arg), "%v", err)
		}
		return expr.NewConst(value.IntervalValue(d)), nil
	}
	if b.untyped[x] {
		delete(b.untyped, x)
	}
	return expr.NewCast(x, t)
}

// typeName maps a SQL type name to a value type; for INTERVAL it also returns
// the field mask of forms like INTERVAL '15' MINUTE.
func (b *binder) typeName(tn *pg.TypeName) (value.Type, int32, error) {
	name := tn.Names[len(tn.Names)-1].GetString_().GetSval()
	var mods []int64
	for _, m := range tn.Typmods {
		c := m.GetAConst()
		if c == nil || c.GetIval() == nil {
			_, err := b.fail(tn.Location, "type modifiers must be integer constants")
			return value.Type{}, 0, err
		}
		mods = append(mods, int64(c.GetIval().Ival))
	}
	if len(tn.ArrayBounds) > 0 {
		_, err := b.fail(tn.Location, "array types are not supported")
		return value.Type{}, 0, err
	}
	switch name {
	case "int2", "int4", "int8", "integer", "bigint", "smallint":
		return value.Int, 0, nil
	case "float4", "float8", "real":
		return value.Double, 0, nil
	case "numeric", "decimal":
		p, s := int64(value.MaxDecimalPrecision), int64(0)
		if len(mods) > 0 {
			p = mods[0]
		}
		if len(mods) > 1 {
			s = mods[1]
		}
		t, err := value.DecimalType(int(p), int(s))
		if err != nil {
			_, err = b.fail(tn.Location, "%v", err)
		}
		return t, 0, err
	case "text", "varchar", "bpchar", "char", "string":
		return value.String, 0, nil
	case "bool", "boolean":
		return value.Bool, 0, nil
	case "timestamp", "timestamptz":
		return value.Timestamp, 0, nil
	case "interval":
		var mask int32
		if len(mods) > 0 {
			mask = int32(mods[0])
		}
		return value.Interval, mask, nil
	}
	t, err := value.ParseType(name)
	if err != nil {
		_, err = b.fail(tn.Location, "unsupported type %s", name)
	}
	return t, 0, err
}

// parseInterval reads '15 minutes', '1 hour 30 minutes', '1.5 hours',
// 'hh:mm:ss' or, with a field mask, a bare number of that field's unit.
// Months and years have no fixed length and are not supported.
func parseInterval(s string, mask int32) (int64, error) {
	if mask&(maskMonth|maskYear) != 0 && mask != intervalFullRange {
		return 0, errors.New("interval months and years have no fixed length; use days")
	}
	fields := strings.Fields(strings.ToLower(s))
	if len(fields) == 0 {
		return 0, errors.New("empty interval")
	}
	if len(fields) == 1 && strings.Count(fields[0], ":") == 2 {
		var h, m int64
		var sec float64
		parts := strings.Split(fields[0], ":")
		var err1, err2, err3 error
		h, err1 = strconv.ParseInt(parts[0], 10, 64)
		m, err2 = strconv.ParseInt(parts[1], 10, 64)
		sec, err3 = strconv.ParseFloat(parts[2], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return 0, errors.New("invalid interval " + strconv.Quote(s))
		}
		return intervalNanos(s, float64(h)*3600e9+float64(m)*60e9+sec*1e9)
	}
	if len(fields) == 1 {
		unit := int64(0)
		switch {
		case mask&maskSecond != 0:
			unit = 1e9
		case mask&maskMinute != 0:
			unit = 60e9
		case mask&maskHour != 0:
			unit = 3600e9
		case mask&maskDay != 0:
			unit = 86400e9
		}
		if unit != 0 {
			f, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				return 0, errors.New("invalid interval " + strconv.Quote(s))
			}
			return intervalNanos(s, f*float64(unit))
		}
	}
	if len(fields)%2 != 0 {
		return 0, errors.New("invalid interval " + strconv.Quote(s) + ": want pairs of number and unit, e.g. '15 minutes'")
	}
	var total float64
	for i := 0; i < len(fields); i += 2 {
		f, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return 0, errors.New("invalid interval " + strconv.Quote(s) + ": " + strconv.Quote(fields[i]) + " is not a number")
		}
		unit, ok := intervalUnits[fields[i+1]]
		if !ok {
			if strings.HasPrefix(fields[i+1], "month") || strings.HasPrefix(fields[i+1], "year") {
				return 0, errors.New("interval months and years have no fixed length; use days")
			}
			return 0, errors.New("invalid interval unit " + strconv.Quote(fields[i+1]))
		}
		total += f * float64(unit)
	}
	return intervalNanos(s, total)
}

// intervalNanos rounds an interval computed in floating point to whole
// nanoseconds, refusing what is not a number or beyond ±maxIntervalDays.
func intervalNanos(s string, ns float64) (int64, error) {
	if math.IsNaN(ns) || math.Abs(ns) > maxIntervalDays*86400e9 {
		return 0, fmt.Errorf("interval %q is beyond the ±%d days an interval may span", s, maxIntervalDays)
	}
	return int64(math.Round(ns)), nil
}
