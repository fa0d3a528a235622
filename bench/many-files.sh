#!/usr/bin/env bash
# Pulls signed models of many small files through the load gate (verifier pull: resolve, list,
# verify the signature, download, check every file, publish) from a hubtest server on loopback,
# with the open-file limit at 1,024, then pulls each again from the cache. Prints the wall and
# CPU times at each size and their ratio to the smallest: a gate linear in the file count gives
# 2 and 4 for 2x and 4x the files. The server's own work is not in the CPU figures.
#
#   bench/many-files.sh [SIZES...]        (default: 5000 10000 20000)
set -euo pipefail

sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(5000 10000 20000)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in openssl bc go python3; do
	command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

(cd "$root" && go build -o "$work/verifier" ./examples/verifier && go build -o "$work/hubtest" ./hub/hubtest/cmd/hubtest)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key.pem" 2>/dev/null
openssl pkey -in "$work/key.pem" -pubout -out "$work/key.pub"

for n in "${sizes[@]}"; do
	repo="$work/repos/bench/files-$n"
	echo "writing and signing $n files" >&2
	python3 - "$repo" "$n" <<'PY'
import os, sys
repo, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(repo, "shards"), exist_ok=True)
with open(os.path.join(repo, "config.json"), "w") as f:
    f.write('{"model_type":"many"}')
for i in range(n - 1):
    with open(os.path.join(repo, "shards", "part-%05d.json" % i), "w") as f:
        f.write('{"part":%d}' % i)
PY
	"$work/verifier" sign key "$repo" --private-key "$work/key.pem" --signature "$repo/model.sig" >/dev/null
done

"$work/hubtest" -repos "$work/repos" -addr 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 600); do
	[[ $(wc -l <"$work/server.out") -ge 2 ]] && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
	sleep 0.1
done
hub_url=$(sed -n 1p "$work/server.out")
cdn_host=$(sed -n 2p "$work/server.out" | sed 's|^http://||')
cat >"$work/policy.yaml" <<POLICY
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - name: local
    url: $hub_url
    cdnHosts: ["$cdn_host"]
publishers:
  - name: bench
    namespaces: [bench]
    identities:
      - publicKey: {path: $work/key.pub}
content:
  maxFiles: 100000
audit:
  path: $work/audit.jsonl
POLICY

pull() { # n cache
	(ulimit -n 1024 && "$work/verifier" pull --policy "$work/policy.yaml" --endpoint "$hub_url" \
		--cache-dir "$2" "hf://bench/files-$1@main" >/dev/null 2>>"$work/pull.err") ||
		{ cat "$work/pull.err" >&2; exit 1; }
}
# timed n cache: "wall cpu" seconds of one pull; cpu (user + sys of the verifier) is what a
# shared, loaded machine disturbs least.
timed() {
	local t
	t=$( { TIMEFORMAT='%R %U %S'; time pull "$1" "$2"; } 2>&1 )
	awk '{printf "%.2f %.2f", $1, $2 + $3}' <<<"$t"
}
declare -A fresh cached freshcpu cachedcpu
for n in "${sizes[@]}"; do
	cache="$work/cache-$n"
	read -r fresh[$n] freshcpu[$n] <<<"$(timed "$n" "$cache")"
	read -r cached[$n] cachedcpu[$n] <<<"$(timed "$n" "$cache")"
	printf '%6d files (ulimit -n 1024): pull %.2f s (cpu %.2f s), pull again from the cache %.2f s (cpu %.2f s)\n' \
		"$n" "${fresh[$n]}" "${freshcpu[$n]}" "${cached[$n]}" "${cachedcpu[$n]}"
done
base=${sizes[0]}
ratio() { echo "$1 / $2" | bc -l; }
for n in "${sizes[@]}"; do
	printf '%6d files: %.2fx the files; pull %.2fx (cpu %.2fx), pull again %.2fx (cpu %.2fx) those of %d files\n' "$n" \
		"$(ratio "$n" "$base")" "$(ratio "${fresh[$n]}" "${fresh[$base]}")" "$(ratio "${freshcpu[$n]}" "${freshcpu[$base]}")" \
		"$(ratio "${cached[$n]}" "${cached[$base]}")" "$(ratio "${cachedcpu[$n]}" "${cachedcpu[$base]}")" "$base"
done
