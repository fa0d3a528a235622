#!/bin/sh
# Make the 7z fixtures for internal/scan's tests with Debian's p7zip (apt-get install p7zip-full).
# The payload pickles are written by hand as bytes; nothing is unpickled.
set -eu
cd "$(dirname "$0")"
rm -rf sevenzip && mkdir sevenzip && cd sevenzip
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# x86-like bytes full of CALL/JMP (E8/E9) instructions, so the BCJ filter changes them.
python3 - "$work/x86.bin" <<'PY'
import random, struct, sys
rng = random.Random(7)
out = bytearray()
while len(out) < 60000:
    out += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
    out += bytes([rng.choice((0xE8, 0xE9))]) + struct.pack("<i", rng.randrange(-70000, 70000))
open(sys.argv[1], "wb").write(bytes(out))
PY
cp "$work/x86.bin" bcj_plain.bin
printf '\200\002}q\000.' > "$work/benign.pkl"
printf '\200\002cos\nsystem\nX\002\000\000\000id\205R.' > "$work/evil.pkl"
(cd "$work" && 7z a -bd -t7z -m0=BCJ -m1=LZMA2 -ms=on "$OLDPWD/ok_bcj_lzma2_solid.7z" x86.bin benign.pkl >/dev/null)
(cd "$work" && 7z a -bd -t7z -m0=LZMA "$OLDPWD/bad_lzma.7z" benign.pkl evil.pkl >/dev/null)
(cd "$work" && 7z a -bd -t7z -m0=Copy "$OLDPWD/bad_copy.7z" evil.pkl >/dev/null)
(cd "$work" && 7z a -bd -t7z -m0=Deflate "$OLDPWD/bad_deflate.7z" evil.pkl >/dev/null)
(cd "$work" && 7z a -bd -t7z -pnot-a-secret -mhe=off "$OLDPWD/encrypted.7z" benign.pkl >/dev/null)
# Formats only the library reads (since the reader became github.com/bodgit/sevenzip): the
# header itself encrypted, PPMd, and the ARM64 branch filter.
(cd "$work" && 7z a -bd -t7z -pnot-a-secret -mhe=on "$OLDPWD/encrypted_header.7z" benign.pkl >/dev/null)
(cd "$work" && 7z a -bd -t7z -m0=PPMd "$OLDPWD/bad_ppmd.7z" benign.pkl evil.pkl >/dev/null)
(cd "$work" && 7z a -bd -t7z -m0=BCJ2 -m1=LZMA "$OLDPWD/bad_bcj2.7z" evil.pkl >/dev/null) || true
