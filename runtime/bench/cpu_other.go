//go:build !unix

package bench

import "time"

// ProcessCPU is the CPU time the process used so far; zero here, where it
// is not read.
func ProcessCPU() time.Duration { return 0 }
