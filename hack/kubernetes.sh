#!/usr/bin/env bash
# Builds Kubernetes from Go modules, once, into the tools cache, and prints the
# directory that holds the binaries: kube-apiserver, etcd and kubectl (envtest's
# KUBEBUILDER_ASSETS), and kube-controller-manager, kube-scheduler and kubelet
# for the single-node cluster of hack/cluster.sh. Their usual download site is
# not reachable from our machines; the module proxy is. k8s.io/kubernetes
# replaces its staging modules with local paths, so a small build module here
# requires it and points each replace at the published k8s.io module of the
# same version. All five Kubernetes binaries build in one go build call so
# that the packages they share compile once: about eight minutes on two cores
# from an empty build cache.
#
#   K8S_VERSION   Kubernetes version (default 1.37.2)
#   SLUICE_TOOLS  cache directory (default: $XDG_CACHE_HOME/sluice-tools or ~/.cache/sluice-tools)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
STAGING_VERSION="0.${K8S_VERSION#1.}"
tools="${SLUICE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-tools}"
bin="$tools/kubernetes-$K8S_VERSION"
names=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd)

complete() {
	local name
	for name in "${names[@]}"; do
		[[ -x "$bin/$name" ]] || return 1
	done
}
if complete; then
	echo "$bin"
	exit 0
fi

src="$tools/kubernetes-build-$K8S_VERSION"
mkdir -p "$src" "$bin"
cd "$src"
modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
if [[ ! -f "$modfile" ]]; then
	GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" > /dev/null
fi
{
	echo "module kubernetesbuild"
	echo
	echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
	echo
	echo "require k8s.io/kubernetes v$K8S_VERSION"
	echo
	grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" | awk -v v="v$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
echo "hack/kubernetes.sh: resolving k8s.io/kubernetes v$K8S_VERSION" >&2
GOFLAGS=-mod=mod go mod tidy -e > /dev/null 2>&1 || true
export GOFLAGS=-mod=mod CGO_ENABLED=0

# Without the version stamp the node and the API server report v0.0.0-master.
minor="${K8S_VERSION#1.}"
minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

out="$src/out"
rm -rf "$out"
mkdir -p "$out"
echo "hack/kubernetes.sh: building Kubernetes v$K8S_VERSION (about eight minutes from an empty build cache)" >&2
go build -trimpath -ldflags "$ldflags" -o "$out/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler \
	k8s.io/kubernetes/cmd/kubelet \
	k8s.io/kubernetes/cmd/kubectl
echo "hack/kubernetes.sh: building etcd" >&2
go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
for name in "${names[@]}"; do
	mv "$out/$name" "$bin/$name"
done
echo "$bin"
