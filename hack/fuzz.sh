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
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	echo "hack/fuzz.sh: $name in $pkg for $fuzztime" >&2
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		status=1
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' api cmd runtime controllers internal | sed 's/:func /:/' | sort)
exit $status
