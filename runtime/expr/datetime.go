package expr

import (
	"strings"
	"time"

	"github.com/sluice-dev/sluice/runtime/value"
)

// constString returns the value of a constant string argument.
func constString(what string, e Expr) (string, error) {
	c, ok := e.(*Const)
	if !ok || c.V.Kind() != value.KindString {
		return "", typeErrorf("%s must be a constant string", what)
	}
	return strings.ToLower(c.V.Str()), nil
}

// truncUnits are the units of date_trunc, with fixed widths where a unit has one.
var truncUnits = map[string]time.Duration{
	"microseconds": time.Microsecond, "milliseconds": time.Millisecond,
	"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
	"week": 0, "month": 0, "quarter": 0, "year": 0,
}

func bindDateTrunc(name string, a []Expr) (Expr, error) {
	unit, err := constString("the unit of date_trunc", a[0])
	if err != nil {
		return nil, err
	}
	width, ok := truncUnits[unit]
	if !ok {
		return nil, typeErrorf("date_trunc unit %q is not one of microseconds, milliseconds, second, minute, hour, day, week, month, quarter, year", unit)
	}
	if err := wantKinds(name, a[1:], value.KindTimestamp); err != nil {
		return nil, err
	}
	return &call1{name: name, lead: "'" + unit + "', ", x: a[1], t: value.Timestamp, f: func(v value.Value) (value.Value, error) {
		ns := v.Nanos()
		if width > 0 {
			w := int64(width)
			r := ns % w
			if r < 0 {
				r += w
			}
			return value.TimestampValue(ns - r), nil
		}
		t := v.Time()
		y, m, d := t.Date()
		switch unit {
		case "week":
			wd := (int(t.Weekday()) + 6) % 7 // ISO weeks start on Monday
			return value.TimeValue(time.Date(y, m, d-wd, 0, 0, 0, 0, time.UTC)), nil
		case "month":
			return value.TimeValue(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)), nil
		case "quarter":
			return value.TimeValue(time.Date(y, (m-1)/3*3+1, 1, 0, 0, 0, 0, time.UTC)), nil
		}
		return value.TimeValue(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	}}, nil
}

// extractFields are the fields of EXTRACT and date_part. second, milliseconds
// and epoch are doubles with their fraction; the others are ints.
var extractFields = map[string]func(time.Time) value.Value{
	"year":    func(t time.Time) value.Value { return value.IntValue(int64(t.Year())) },
	"quarter": func(t time.Time) value.Value { return value.IntValue(int64(t.Month()-1)/3 + 1) },
	"month":   func(t time.Time) value.Value { return value.IntValue(int64(t.Month())) },
	"week": func(t time.Time) value.Value {
		_, w := t.ISOWeek()
		return value.IntValue(int64(w))
	},
	"day":    func(t time.Time) value.Value { return value.IntValue(int64(t.Day())) },
	"dow":    func(t time.Time) value.Value { return value.IntValue(int64(t.Weekday())) },
	"isodow": func(t time.Time) value.Value { return value.IntValue(int64((t.Weekday()+6)%7 + 1)) },
	"doy":    func(t time.Time) value.Value { return value.IntValue(int64(t.YearDay())) },
	"hour":   func(t time.Time) value.Value { return value.IntValue(int64(t.Hour())) },
	"minute": func(t time.Time) value.Value { return value.IntValue(int64(t.Minute())) },
	"second": func(t time.Time) value.Value {
		return value.DoubleValue(float64(t.Second()) + float64(t.Nanosecond())/1e9)
	},
	"milliseconds": func(t time.Time) value.Value {
		return value.DoubleValue(float64(t.Second())*1e3 + float64(t.Nanosecond())/1e6)
	},
	"epoch": func(t time.Time) value.Value { return value.DoubleValue(float64(t.UnixNano()) / 1e9) },
}

func bindExtract(name string, a []Expr) (Expr, error) {
	field, err := constString("the field of "+name, a[0])
	if err != nil {
		return nil, err
	}
	f, ok := extractFields[field]
	if !ok {
		return nil, typeErrorf("%s field %q is not one of year, quarter, month, week, day, dow, isodow, doy, hour, minute, second, milliseconds, epoch", name, field)
	}
	k := a[1].Type().Kind
	if k == value.KindInterval && field == "epoch" {
		return &call1{name: name, lead: "'epoch', ", x: a[1], t: value.Double, f: func(v value.Value) (value.Value, error) {
			return value.DoubleValue(float64(v.Nanos()) / 1e9), nil
		}}, nil
	}
	if err := wantKinds(name, a[1:], value.KindTimestamp); err != nil {
		return nil, err
	}
	t := value.Int
	if field == "second" || field == "milliseconds" || field == "epoch" {
		t = value.Double
	}
	return &call1{name: name, lead: "'" + field + "', ", x: a[1], t: t, f: func(v value.Value) (value.Value, error) {
		return f(v.Time()), nil
	}}, nil
}
