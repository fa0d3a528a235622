#!/usr/bin/env bash
# Times a verified pull of a signed modelcar (registry.Client: resolve once, find and verify the
# cosign signature, parallel layer downloads hashed and extracted as they stream, into a staging
# directory) against `crane pull --format=oci` of the same image from the same loopback
# `crane registry serve`, in the same run, and prints the ratio and our peak RSS.
# Targets (issue 12): ratio <= 1.10, peak RSS <= 64 MiB.
#
#   bench/registry.sh [SIZE_MIB_PER_FILE] [FILES] [ROUNDS]     (default 512 2 3: a 1 GiB model)
#
# The layers are uncompressed tars of random bytes: crane does not decompress what it pulls, so a
# gzip layer would time gunzip against nothing.
set -euo pipefail

file_mib=${1:-512}
nfiles=${2:-2}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in bc go python3 curl; do
	command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
crane=$("$root/testdata/oci/tools.sh" crane)
cosign=$("$root/testdata/oci/tools.sh" cosign)
(cd "$root" && go build -o "$work/registrypull" ./bench/registrypull)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
"$crane" registry serve --address "$reg" >"$work/registry.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

echo "generating $nfiles x $file_mib MiB of random files in $work" >&2
files=()
for i in $(seq 1 "$nfiles"); do
	f="$work/shard-$i.bin"
	head -c "$((file_mib << 20))" /dev/urandom >"$f"
	files+=("$f")
done
digest=$("$work/registrypull" push -registry "$reg" -repo bench/model -tag v1 "${files[@]}")
COSIGN_PASSWORD= COSIGN_YES=true "$cosign" sign --key "$root/testdata/oci/cosign.key" --tlog-upload=false \
	--use-signing-config=false "$reg/bench/model@$digest" >"$work/sign.log" 2>&1 || { cat "$work/sign.log" >&2; exit 1; }
echo "pushed and signed $reg/bench/model@$digest" >&2

now() { date +%s.%N; }
best_crane= best_ours= peak=0
ratios=()
for round in $(seq 1 "$rounds"); do
	rm -rf "$work/crane" "$work/ours"
	sync # each run starts with no other run's dirty pages to write back
	t0=$(now)
	"$crane" pull --format=oci "$reg/bench/model:v1" "$work/crane" 2>/dev/null
	t1=$(now)
	crane_s=$(echo "$t1 - $t0" | bc -l)

	sync
	t0=$(now)
	read -r _ bytes rss < <("$work/registrypull" pull -ref "oci://$reg/bench/model:v1" -key "$root/testdata/oci/cosign.pub" -dest "$work/ours")
	t1=$(now)
	ours_s=$(echo "$t1 - $t0" | bc -l)
	((rss > peak)) && peak=$rss
	ratios+=("$(echo "$ours_s / $crane_s" | bc -l)")
	printf 'round %d: crane pull %.3f s, registry pull+verify %.3f s, ratio %.3f, peak RSS %d MiB\n' \
		"$round" "$crane_s" "$ours_s" "${ratios[-1]}" "$((rss / 1024))"
	if [[ -z $best_crane ]] || (($(echo "$crane_s < $best_crane" | bc -l))); then best_crane=$crane_s; fi
	if [[ -z $best_ours ]] || (($(echo "$ours_s < $best_ours" | bc -l))); then best_ours=$ours_s; fi
done
for f in "${files[@]}"; do
	cmp -s "$f" "$work/ours/$(basename "$f")" || { echo "MISMATCH in $(basename "$f")" >&2; exit 1; }
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
printf 'bytes %d; best of %d: crane %.3f s, registry %.3f s\n' "$bytes" "$rounds" "$best_crane" "$best_ours"
printf 'ratio registry / crane pull: best-of %.3f, median of rounds %.3f (target <= 1.10); peak RSS %d MiB (target <= 64)\n' \
	"$(echo "$best_ours / $best_crane" | bc -l)" "$median" "$((peak / 1024))"
