#!/usr/bin/env bash
# Runs the whole test suite: builds the tools the tests need (once, cached
# outside the work tree: controller-gen, promtool, the Prometheus server,
# Jaeger, and Kubernetes and etcd for envtest and the cluster), then go vet, go test
# with the race detector,
# every fuzz target for a bounded time (hack/fuzz.sh), and the end-to-end
# suite on a real single-node cluster (test/e2e, which needs root and the
# Debian packages .ci/run installs).
# Extra arguments run only go test with them, e.g.
# hack/test.sh -run TestSimpleSelect ./runtime/...
set -euo pipefail
cd "$(dirname "$0")/.."

SLUICE_TOOLS_BIN="$(hack/tools.sh)"
export SLUICE_TOOLS_BIN
# kube-apiserver, etcd and kubectl for the operator's envtest suite.
KUBEBUILDER_ASSETS="$(hack/kubernetes.sh)"
export KUBEBUILDER_ASSETS
# Tests that need a tool or the cluster fail, rather than skip, without it.
export SLUICE_REQUIRE_TOOLS=1

go vet ./...
if [[ $# -gt 0 ]]; then
	exec go test -race -shuffle=on -timeout 20m "$@"
fi
go test -race -shuffle=on -timeout 30m $(go list ./... | grep -v /test/e2e)
FUZZTIME="${FUZZTIME:-15s}" hack/fuzz.sh
# The suite tears its cluster down itself; should it be killed, this does.
trap 'hack/cluster.sh down >&2 || true' EXIT
SLUICE_E2E=1 go test -count=1 -timeout 30m -v ./test/e2e/
