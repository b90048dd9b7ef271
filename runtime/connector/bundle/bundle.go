// Package bundle assembles the connectors an engine ships. Adding a
// connector is its own package and one line here.
package bundle

import (
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/kafka"
)

// All returns a registry of every connector Sluice has: the builtins (file,
// stdin, datagen, stdout, null) and Kafka.
func All() *connector.Registry {
	r := connector.Builtins()
	kafka.Register(r)
	return r
}
