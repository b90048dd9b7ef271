// Command engine runs Sluice streaming SQL queries.
//
//	engine run -f query.yaml        run a StreamQuery manifest
//	engine validate -f query.yaml   check a manifest and print its plan
//	engine bench                    measure the engine on generated data
//	engine version                  print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	// The engine's images hold nothing but the binary: when the system has
	// no certificate roots, TLS to Kafka brokers with public certificates
	// verifies against these (Mozilla's, as Go's x509roots packages them).
	_ "golang.org/x/crypto/x509roots/fallback"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

const usage = `usage: engine <command> [flags]

commands:
  run       run a StreamQuery manifest:      engine run -f query.yaml
  validate  check a manifest, print its plan: engine validate -f query.yaml
  bench     measure throughput and latency:  engine bench -records 10000000
  version   print the version

Run 'engine <command> -h' for a command's flags.
`

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the query is invalid or the run failed
	exitUsage  = 2
	// exitStopped: a Batch run (every source ends) stopped by a signal
	// before its input ended: unfinished, for its Job to run again.
	exitStopped = 3
	exitAborted = 130 // forced by a second signal
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stderr)
	case "validate":
		return validateCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, buildVersion())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "engine: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
