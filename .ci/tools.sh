#!/usr/bin/env bash
# Builds the admission engines the tests run against the generated policies (kyverno CLI, gator,
# kubeconform) into a cache keyed by tool and version, so that a second run costs nothing and a
# version bump builds afresh. The Go tests look for the binaries in the same place
# (examples/verifier/enginetools_test.go) and skip, saying why, when one is missing.
#
#   .ci/tools.sh [kyverno|gator|kubeconform]...   build the named tools (default: all)
#   .ci/tools.sh dir                              print the cache directory
#
# The cache is $MODELVERIFY_TOOLS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/modelverify-tools,
# one directory per tool: kyverno-v1.19.1/kyverno, gator-v3.23.1/gator,
# kubeconform-v0.8.0/{kubeconform,openapi2jsonschema.py}.
# Builds run one at a time (a lock), niced, and land atomically: an interrupted build leaves
# nothing a test could mistake for a tool.
#
# Cold build times measured on this project's 2-core machine while five other jobs kept its load
# average between 10 and 30 (so an upper bound): kubeconform 196 s, gator 1741 s, kyverno 1227 s
# (after gator, whose Kubernetes dependencies it partly shares through the Go build cache). On
# two idle cores the kyverno build takes about 10 minutes and gator about 2.5. Warm (the cache
# directory kept between CI runs), each tool costs nothing.
set -euo pipefail

KYVERNO_VERSION=v1.19.1
GATOR_VERSION=v3.23.1
KUBECONFORM_VERSION=v0.8.0

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export PATH="$PATH:/usr/local/go/bin"

cache="${MODELVERIFY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelverify-tools}"
mkdir -p "$cache"

if [ "${1:-}" = dir ]; then
  echo "$cache"
  exit 0
fi

# One build at a time, also across concurrent invocations (CI and a developer's test run): the
# kyverno build alone wants both cores of a small machine.
exec 9>"$cache/.lock"
flock 9

# build NAME VERSION: runs build_NAME into a fresh directory, then renames it into place.
build() {
  local name=$1 version=$2
  local dir="$cache/$name-$version"
  if [ -x "$dir/$name" ]; then
    echo "$name $version: cached in $dir"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$cache/.$name-$version.XXXXXX")
  local start=$SECONDS
  echo "$name $version: building into $dir"
  if ! "build_$name" "$version" "$tmp"; then
    rm -rf "$tmp"
    echo "$name $version: build failed" >&2
    return 1
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "$name $version: built in $((SECONDS - start)) s"
}

# The kyverno CLI cannot be go-installed (its go.mod has replace directives, which go install
# refuses), so it is built inside a copy of its module, where those replaces apply.
build_kyverno() {
  local version=$1 out=$2
  local src
  src=$(go mod download -json "github.com/kyverno/kyverno@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { echo "kyverno: go mod download gave no directory" >&2; return 1; }
  cp -r "$src" "$out/src"
  chmod -R u+w "$out/src"
  (cd "$out/src" && nice -n 10 go build -trimpath -o "$out/kyverno" ./cmd/cli/kubectl-kyverno)
  rm -rf "$out/src"
}

build_gator() {
  local version=$1 out=$2
  GOBIN="$out" nice -n 10 go install -trimpath "github.com/open-policy-agent/gatekeeper/v3/cmd/gator@$version"
}

# kubeconform validates against JSON schemas; its own script makes them from CRDs, so the
# script is kept next to the binary, at the same version.
build_kubeconform() {
  local version=$1 out=$2
  GOBIN="$out" nice -n 10 go install -trimpath "github.com/yannh/kubeconform/cmd/kubeconform@$version"
  local src
  src=$(go mod download -json "github.com/yannh/kubeconform@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp "$src/scripts/openapi2jsonschema.py" "$out/openapi2jsonschema.py"
  chmod u+w "$out/openapi2jsonschema.py"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kubeconform gator kyverno)
for tool in "${tools[@]}"; do
  case $tool in
    kyverno) build kyverno "$KYVERNO_VERSION" ;;
    gator) build gator "$GATOR_VERSION" ;;
    kubeconform) build kubeconform "$KUBECONFORM_VERSION" ;;
    *) echo "tools.sh: unknown tool $tool (kyverno, gator, kubeconform)" >&2; exit 2 ;;
  esac
done
