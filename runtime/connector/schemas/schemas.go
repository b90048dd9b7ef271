// Package schemas holds the columns connectors give a source beyond what its
// manifest declares: a generator's whole schema, the metadata columns of a
// Kafka record. It imports no connector and no client, so that the compiler,
// and through it the operator, can know them without linking either.
package schemas

import (
	"fmt"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Trades is the schema of the trades generator.
var Trades = []value.Column{
	{Name: "trade_id", Type: value.Int},
	{Name: "symbol", Type: value.String},
	{Name: "price", Type: value.Decimal(18, 4)},
	{Name: "quantity", Type: value.Int},
	{Name: "ts", Type: value.Timestamp},
}

// Generator returns the schema of a named generator.
func Generator(name string) ([]value.Column, error) {
	switch name {
	case "trades":
		return Trades, nil
	}
	return nil, fmt.Errorf("unknown generator %q (want trades)", name)
}

// KafkaMeta are the columns every Kafka source has after its value's schema.
var KafkaMeta = []value.Column{
	{Name: "_key", Type: value.String},
	{Name: "_partition", Type: value.Int},
	{Name: "_offset", Type: value.Int},
	{Name: "_timestamp", Type: value.Timestamp},
}
