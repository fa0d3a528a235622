#!/usr/bin/env bash
# Times a verified download (hub.Client: parallel ranges, sha256 while streaming, verify against
# the Hub's digests, publish into the cache) against curl -L fetching the same files from the same
# hubtest server on loopback, in the same run, and prints the ratio. Target: ratio <= 1.10.
#
#   bench/download.sh [SIZE_MIB_PER_SHARD] [SHARDS] [ROUNDS]     (default 1024 2 3: 2 GiB)
set -euo pipefail

shard_mib=${1:-1024}
shards=${2:-2}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in curl bc go; do
	command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

repo="$work/repos/bench/big-model"
mkdir -p "$repo"
echo "generating $shards x $shard_mib MiB of random shards in $work" >&2
files=(config.json)
printf '{"model_type":"llama","num_hidden_layers":2}\n' >"$repo/config.json"
for i in $(seq 1 "$shards"); do
	name=$(printf 'model-%05d-of-%05d.safetensors' "$i" "$shards")
	head -c "$((shard_mib << 20))" /dev/urandom >"$repo/$name"
	files+=("$name")
done

(cd "$root" && go build -o "$work/hubtest" ./hub/hubtest/cmd/hubtest && go build -o "$work/download" ./bench/download)

"$work/hubtest" -repos "$work/repos" -addr 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 600); do
	[[ $(wc -l <"$work/server.out") -ge 2 ]] && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
	sleep 0.1
done
hub_url=$(sed -n 1p "$work/server.out")
cdn_host=$(sed -n 2p "$work/server.out" | sed 's|^http://||')
[[ -n $hub_url && -n $cdn_host ]] || { echo "hubtest did not start" >&2; exit 1; }
echo "hubtest at $hub_url, CDN at $cdn_host" >&2

now() { date +%s.%N; }
best_curl=
best_ours=
ratios=()
total_bytes=0
for f in "${files[@]}"; do total_bytes=$((total_bytes + $(stat -c %s "$repo/$f"))); done
for round in $(seq 1 "$rounds"); do
	rm -rf "$work/curl" && mkdir -p "$work/curl"
	t0=$(now)
	for f in "${files[@]}"; do
		curl -sSfL -o "$work/curl/$f" "$hub_url/bench/big-model/resolve/main/$f"
	done
	t1=$(now)
	curl_s=$(echo "$t1 - $t0" | bc -l)

	rm -rf "$work/cache"
	t0=$(now)
	"$work/download" -endpoint "$hub_url" -cdn "$cdn_host" -ref bench/big-model@main -cache "$work/cache" >/dev/null
	t1=$(now)
	ours_s=$(echo "$t1 - $t0" | bc -l)
	ratios+=("$(echo "$ours_s / $curl_s" | bc -l)")
	printf 'round %d: curl %.3f s, hub.Client %.3f s (download + sha256 + verify + publish), ratio %.3f\n' \
		"$round" "$curl_s" "$ours_s" "${ratios[-1]}"
	if [[ -z $best_curl ]] || (($(echo "$curl_s < $best_curl" | bc -l))); then best_curl=$curl_s; fi
	if [[ -z $best_ours ]] || (($(echo "$ours_s < $best_ours" | bc -l))); then best_ours=$ours_s; fi
done

for f in "${files[@]}"; do
	cmp -s "$repo/$f" "$work/cache/models--bench--big-model/snapshots/"*/"$f" || { echo "MISMATCH in $f" >&2; exit 1; }
done
ratio=$(echo "$best_ours / $best_curl" | bc -l)
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
printf 'bytes %d; best of %d: curl %.3f s (%.0f MiB/s), hub.Client %.3f s (%.0f MiB/s)\n' \
	"$total_bytes" "$rounds" "$best_curl" "$(echo "$total_bytes / 1048576 / $best_curl" | bc -l)" \
	"$best_ours" "$(echo "$total_bytes / 1048576 / $best_ours" | bc -l)"
printf 'ratio hub.Client / curl: best-of %.3f, median of rounds %.3f (target <= 1.10)\n' "$ratio" "$median"
