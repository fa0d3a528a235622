#!/usr/bin/env bash
# Builds the registry tools the interop tests and the benchmark use, once per version, into a
# cache keyed by version: ${GO_MODELVERIFY_TOOLS:-$HOME/.cache/go-modelverify/tools}/<tool>-<version>/<tool>.
# Prints the path of each tool. cosign takes several minutes on 2 cores; crane seconds.
#
#   testdata/oci/tools.sh [crane] [cosign]      (default: both)
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--buildvcs=false}
cache=${GO_MODELVERIFY_TOOLS:-$HOME/.cache/go-modelverify/tools}
crane_version=v0.21.7   # the go-containerregistry version go.mod requires
cosign_version=v3.1.3

build() { # name version package
	local dir="$cache/$1-$2"
	if [[ ! -x $dir/$1 ]]; then
		mkdir -p "$dir"
		echo "building $1 $2 into $dir" >&2
		GOBIN="$dir" go install "$3@$2"
	fi
	echo "$dir/$1"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(crane cosign)
for t in "${tools[@]}"; do
	case $t in
	crane) build crane "$crane_version" github.com/google/go-containerregistry/cmd/crane ;;
	cosign) build cosign "$cosign_version" github.com/sigstore/cosign/v3/cmd/cosign ;;
	*) echo "unknown tool $t" >&2; exit 2 ;;
	esac
done
