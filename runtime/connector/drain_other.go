//go:build !linux

package connector

import (
	"os"
	"time"
)

// awaitDrained returns at once: the wait for a pipe's reader is Linux's
// (drain_linux.go), where engines run in containers.
func awaitDrained(*os.File, time.Duration) {}
