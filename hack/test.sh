#!/usr/bin/env bash
# Runs the whole test suite: builds the tools the tests need (once, cached
# outside the work tree: controller-gen, promtool, and kube-apiserver, etcd
# and kubectl for envtest), then go vet and go test with the race detector.
# Extra arguments go to go test, e.g. hack/test.sh -run TestSimpleSelect ./runtime/...
set -euo pipefail
cd "$(dirname "$0")/.."

SLUICE_TOOLS_BIN="$(hack/tools.sh)"
export SLUICE_TOOLS_BIN
# kube-apiserver, etcd and kubectl for the operator's envtest suite.
KUBEBUILDER_ASSETS="$(hack/kubernetes.sh)"
export KUBEBUILDER_ASSETS
# Tests that need a tool fail, rather than skip, when it is missing.
export SLUICE_REQUIRE_TOOLS=1

go vet ./...
if [[ $# -eq 0 ]]; then
	set -- ./...
fi
go test -race -shuffle=on -timeout 20m "$@"
