#!/usr/bin/env bash
# bench/hash.sh: time `verifier digest` against sequential `openssl dgst -sha256` over the same
# model, in the same run, and report the ratio and the verifier's peak memory.
#
#   bench/hash.sh                 # 8 files of 512 MiB plus one 4 GiB file (8 GiB, as in the issue)
#   FILES=4 FILE_MIB=256 BIG_MIB=1024 bench/hash.sh   # a smaller model
#
# Both tools read from the page cache (the model is read once before timing), so the figures
# compare hashing, not the disk. OpenSSL, like Go, uses the CPU's SHA instructions; coreutils
# sha256sum does not, and would flatter us.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-8}
FILE_MIB=${FILE_MIB:-512}
BIG_MIB=${BIG_MIB:-4096}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelverify-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

command -v openssl >/dev/null || { echo "bench/hash.sh: openssl is required" >&2; exit 2; }

echo "building verifier..."
go build -o "$WORK/verifier" ./examples/verifier

mkdir -p "$WORK/model"
gen() { # gen FILE MIB: pseudo-random bytes, fast (AES-CTR keystream)
  (openssl enc -aes-128-ctr -pass pass:modelverify -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c "$(( $2 * 1024 * 1024 ))" >"$1"
}
echo "making a model of $FILES x ${FILE_MIB} MiB + 1 x ${BIG_MIB} MiB in $WORK/model..."
for i in $(seq 1 "$FILES"); do gen "$WORK/model/model-$(printf %05d "$i").safetensors" "$FILE_MIB"; done
[ "$BIG_MIB" -gt 0 ] && gen "$WORK/model/consolidated.bin" "$BIG_MIB"
cat "$WORK"/model/* >/dev/null # into the page cache
TOTAL_MIB=$(( FILES * FILE_MIB + BIG_MIB ))

now() { date +%s.%N; }

t0=$(now)
openssl dgst -sha256 "$WORK"/model/* >/dev/null
t1=$(now)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "%M" -o "$WORK/rss" "$WORK/verifier" digest "$WORK/model" >"$WORK/digest"
else
  "$WORK/verifier" digest "$WORK/model" >"$WORK/digest"
fi
t2=$(now)

ossl=$(echo "$t1 - $t0" | bc -l)
ours=$(echo "$t2 - $t1" | bc -l)
printf 'model:            %d MiB in %d files\n' "$TOTAL_MIB" "$(( FILES + (BIG_MIB > 0) ))"
printf 'openssl dgst:     %.2f s  (%.0f MB/s, sequential)\n' "$ossl" "$(echo "$TOTAL_MIB * 1.048576 / $ossl" | bc -l)"
printf 'verifier digest:  %.2f s  (%.0f MB/s, %d cores)  %s\n' "$ours" "$(echo "$TOTAL_MIB * 1.048576 / $ours" | bc -l)" "$(nproc)" "$(cat "$WORK/digest")"
printf 'ratio:            %.2f  (verifier / openssl; 1/%d = %.2f is every core busy)\n' "$(echo "$ours / $ossl" | bc -l)" "$(nproc)" "$(echo "1 / $(nproc)" | bc -l)"
if [ -f "$WORK/rss" ]; then
  printf 'peak memory:      %.1f MiB (verifier, max RSS)\n' "$(echo "$(cat "$WORK/rss") / 1024" | bc -l)"
fi
