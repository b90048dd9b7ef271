#!/usr/bin/env bash
# Builds the engine and manager images, and the pause image the local
# cluster's pods need, as image archives without Docker or a registry
# (hack/ociimage), and prints the directory that holds them:
#
#   engine.tar   ghcr.io/sluice-dev/sluice-engine:$TAG
#   manager.tar  ghcr.io/sluice-dev/sluice-manager:$TAG
#   pause.tar    sluice.local/pause:$TAG
#
# Each is one layer with a static binary, run as user 65532. The same
# source gives the same image digests. Load them with
# `ctr -n k8s.io images import engine.tar` (containerd, as hack/cluster.sh
# does) or `kind load image-archive engine.tar`.
#
#   TAG         the images' tag (default dev)
#   IMAGES_DIR  where to write them (default bin/images)
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${TAG:-dev}"
out="${IMAGES_DIR:-bin/images}"
mkdir -p "$out/bin"
out="$(cd "$out" && pwd)"

# The SQL parser is C: the engine and the manager (which plans queries to
# check them) link it, and the C library, statically.
static=(-trimpath -buildvcs=false -tags netgo,osusergo -ldflags "-s -w -linkmode external -extldflags -static")
echo "hack/images.sh: building the engine and the manager" >&2
CGO_ENABLED=1 go build "${static[@]}" -o "$out/bin/engine" ./cmd/engine
CGO_ENABLED=1 go build "${static[@]}" -o "$out/bin/manager" ./cmd/manager
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/bin/pause" ./hack/pause
CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$out/bin/ociimage" ./hack/ociimage

"$out/bin/ociimage" -binary "$out/bin/engine" -name "ghcr.io/sluice-dev/sluice-engine:$tag" -o "$out/engine.tar"
"$out/bin/ociimage" -binary "$out/bin/manager" -name "ghcr.io/sluice-dev/sluice-manager:$tag" -o "$out/manager.tar"
"$out/bin/ociimage" -binary "$out/bin/pause" -name "sluice.local/pause:$tag" -o "$out/pause.tar"
echo "$out"
