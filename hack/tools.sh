#!/usr/bin/env bash
# Builds the tools the tests and code generation need, once, into a cache
# outside the work tree, and prints the directory that holds them.
#
#   SLUICE_TOOLS  cache directory (default: $XDG_CACHE_HOME/sluice-tools or ~/.cache/sluice-tools)
#
# Each tool is built from its Go module at a pinned version; a tool already in
# the cache at that version is not built again.
set -euo pipefail

tools="${SLUICE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-tools}"
mkdir -p "$tools/bin"

# name module@version
want=(
	"controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0"
	"promtool github.com/prometheus/prometheus/cmd/promtool@v0.316.0"
	"prometheus github.com/prometheus/prometheus/cmd/prometheus@v0.316.0"
)

for entry in "${want[@]}"; do
	name=${entry%% *}
	module=${entry#* }
	stamp="$tools/bin/.$name.version"
	if [[ -x "$tools/bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$module" ]]; then
		continue
	fi
	echo "hack/tools.sh: building $module" >&2
	GOBIN="$tools/bin" go install "$module"
	echo "$module" > "$stamp"
done

# Jaeger v2, for the tracing tests. Its module has replace directives, which
# go install refuses: it is built from a module of our own that requires it.
jaeger="github.com/jaegertracing/jaeger@v1.76.0"
stamp="$tools/bin/.jaeger.version"
if [[ ! -x "$tools/bin/jaeger" || ! -f "$stamp" || "$(cat "$stamp")" != "$jaeger" ]]; then
	echo "hack/tools.sh: building $jaeger" >&2
	mod="$(mktemp -d)"
	trap 'rm -rf "$mod"' EXIT
	cat > "$mod/go.mod" <<-EOF
		module sluice.dev/tools/jaeger

		go 1.26

		require ${jaeger/@/ }
	EOF
	(cd "$mod" && GOFLAGS=-mod=mod go build -o "$tools/bin/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
	echo "$jaeger" > "$stamp"
fi

echo "$tools/bin"
