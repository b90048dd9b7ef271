#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) and kubectl from Go
# modules, once, into the tools cache, and prints the directory to use as
# KUBEBUILDER_ASSETS. Their usual download site is not reachable from our
# machines; the module proxy is. k8s.io/kubernetes replaces its staging
# modules with local paths, so a small build module here requires it and
# points each replace at the published k8s.io module of the same version.
# The first build takes about ten minutes on two cores.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
STAGING_VERSION="0.${K8S_VERSION#1.}"
tools="${SLUICE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-tools}"
assets="$tools/envtest-$K8S_VERSION"
if [[ -x "$assets/kube-apiserver" && -x "$assets/etcd" && -x "$assets/kubectl" ]]; then
	echo "$assets"
	exit 0
fi

src="$tools/envtest-build-$K8S_VERSION"
mkdir -p "$src" "$assets"
cd "$src"
modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
if [[ ! -f "$modfile" ]]; then
	GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" > /dev/null
fi
{
	echo "module envtestbuild"
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
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
echo "hack/envtest.sh: resolving k8s.io/kubernetes v$K8S_VERSION" >&2
GOFLAGS=-mod=mod go mod tidy -e > /dev/null 2>&1 || true
export GOFLAGS=-mod=mod
for target in kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver kubectl:k8s.io/kubernetes/cmd/kubectl etcd:go.etcd.io/etcd/server/v3; do
	name=${target%%:*}
	pkg=${target#*:}
	if [[ ! -x "$assets/$name" ]]; then
		echo "hack/envtest.sh: building $name" >&2
		CGO_ENABLED=0 go build -trimpath -o "$assets/$name.tmp" "$pkg"
		mv "$assets/$name.tmp" "$assets/$name"
	fi
done
echo "$assets"
