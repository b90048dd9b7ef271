#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each (FUZZTIME,
# default 20s). A crasher the fuzzer finds is written under the package's
# testdata/fuzz/<target>/ and fails the run: commit it with the fix, and
# `go test` replays it from then on as a regression test.
#
#   FUZZTIME  time per target, e.g. 20s or 10m (default 20s)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-20s}"
status=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	for attempt in 1 2; do
		echo "hack/fuzz.sh: $name in $pkg for $fuzztime" >&2
		if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; then
			break
		fi
		# The fuzzer's coordinator sometimes gives up on a busy worker as
		# the time ends ("context deadline exceeded") with no input at
		# fault: that is not a finding, so the target runs once more. A
		# crasher is always a failure.
		if [[ $attempt == 1 ]] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
			echo "hack/fuzz.sh: $name: the fuzzer timed out a worker without a failing input; running it again" >&2
			continue
		fi
		status=1
		break
	done
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' api cmd runtime controllers internal | sed 's/:func /:/' | sort)
exit $status
