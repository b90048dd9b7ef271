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

// The Nexmark benchmark's three event types, as its Flink SQL form names
// their fields, lowercased as SQL reads names that are not quoted
// (dateTime is datetime), so that its queries run as written. Prices are
// in cents.
var (
	NexmarkPerson = []value.Column{
		{Name: "id", Type: value.Int},
		{Name: "name", Type: value.String},
		{Name: "emailaddress", Type: value.String},
		{Name: "creditcard", Type: value.String},
		{Name: "city", Type: value.String},
		{Name: "state", Type: value.String},
		{Name: "datetime", Type: value.Timestamp},
		{Name: "extra", Type: value.String},
	}
	NexmarkAuction = []value.Column{
		{Name: "id", Type: value.Int},
		{Name: "itemname", Type: value.String},
		{Name: "description", Type: value.String},
		{Name: "initialbid", Type: value.Int},
		{Name: "reserve", Type: value.Int},
		{Name: "datetime", Type: value.Timestamp},
		{Name: "expires", Type: value.Timestamp},
		{Name: "seller", Type: value.Int},
		{Name: "category", Type: value.Int},
		{Name: "extra", Type: value.String},
	}
	// NexmarkSideInput is q13's side input, as the suites' side_input.txt
	// (read as CSV into key BIGINT, value VARCHAR).
	NexmarkSideInput = []value.Column{
		{Name: "key", Type: value.Int},
		{Name: "value", Type: value.String},
	}
	NexmarkBid = []value.Column{
		{Name: "auction", Type: value.Int},
		{Name: "bidder", Type: value.Int},
		{Name: "price", Type: value.Int},
		{Name: "channel", Type: value.String},
		{Name: "url", Type: value.String},
		{Name: "datetime", Type: value.Timestamp},
		{Name: "extra", Type: value.String},
	}
)

// Generator returns the schema of a named generator.
func Generator(name string) ([]value.Column, error) {
	switch name {
	case "trades":
		return Trades, nil
	case "nexmark-person":
		return NexmarkPerson, nil
	case "nexmark-auction":
		return NexmarkAuction, nil
	case "nexmark-bid":
		return NexmarkBid, nil
	case "nexmark-side-input":
		return NexmarkSideInput, nil
	}
	return nil, fmt.Errorf("unknown generator %q (want trades, nexmark-person, nexmark-auction, nexmark-bid or nexmark-side-input)", name)
}

// KafkaMeta are the columns every Kafka source has after its value's schema.
var KafkaMeta = []value.Column{
	{Name: "_key", Type: value.String},
	{Name: "_partition", Type: value.Int},
	{Name: "_offset", Type: value.Int},
	{Name: "_timestamp", Type: value.Timestamp},
}
