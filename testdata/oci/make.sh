#!/usr/bin/env bash
# Makes the cosign interop fixtures in this directory with the real cosign CLI: a KServe modelcar
# image and a CNCF ModelPack artefact, each signed with a test key in both of cosign's forms
# (the v3 Sigstore bundle referrer, and the legacy sha256-<hex>.sig tag), pushed to a loopback
# `crane registry serve` (no referrers API, so cosign writes the referrers tag schema), checked
# with `cosign verify`, and saved as one OCI image layout, layout/, whose index names every
# manifest by its repository and tag (org.opencontainers.image.ref.name). registry/interop_test.go
# loads the layout into registrytest and verifies it with the registry package.
#
#   testdata/oci/make.sh          (rewrites cosign.key, cosign.pub and layout/)
#
# Test keys only: cosign.key has an empty password and signs nothing but these fixtures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
crane=$("$here/tools.sh" crane)
cosign=$("$here/tools.sh" cosign)
work=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
"$crane" registry serve --address "$reg" >"$work/registry.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

export COSIGN_PASSWORD= COSIGN_YES=true
cd "$here"
rm -f cosign.key cosign.pub
(cd "$work" && "$cosign" generate-key-pair >/dev/null 2>&1 && cp cosign.key cosign.pub "$here/")

# The model: the same two small files in every artefact.
mkdir -p "$work/m/models"
printf '{"model_type":"test","hidden_size":4}\n' >"$work/m/models/config.json"
printf 'not really safetensors, but fixed bytes for a fixture\n' >"$work/m/models/model.safetensors"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/m" -cf "$work/models.tar" models

# A modelcar per signature form (the same image in two repositories).
for repo in modelcar-bundle modelcar-legacy; do
	"$crane" append --oci-empty-base -f "$work/models.tar" -t "$reg/acme/$repo:v1" >/dev/null
done

# A ModelPack artefact per signature form, pushed blob by blob.
push_blob() { # repo file
	local d
	d=sha256:$(sha256sum "$2" | cut -d' ' -f1)
	curl -sf -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
		"http://$reg/v2/$1/blobs/uploads/?digest=$d" >/dev/null
	echo "$d"
}
size() { stat -c %s "$1"; }
printf '{"descriptor":{"name":"test-model","version":"1"},"modelfs":{"type":"layers","diffIds":[]},"config":{"format":"safetensors"}}' >"$work/pack-config.json"
for repo in modelpack-bundle modelpack-legacy; do
	cfg=$(push_blob "acme/$repo" "$work/pack-config.json")
	c1=$(push_blob "acme/$repo" "$work/m/models/config.json")
	c2=$(push_blob "acme/$repo" "$work/m/models/model.safetensors")
	cat >"$work/pack.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.cncf.model.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"$cfg","size":$(size "$work/pack-config.json")},"layers":[{"mediaType":"application/vnd.cncf.model.weight.config.v1.raw","digest":"$c1","size":$(size "$work/m/models/config.json"),"annotations":{"org.cncf.model.filepath":"config.json"}},{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"$c2","size":$(size "$work/m/models/model.safetensors"),"annotations":{"org.cncf.model.filepath":"model.safetensors"}}]}
JSON
	curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$work/pack.json" \
		"http://$reg/v2/acme/$repo/manifests/v1" >/dev/null
done

refs=()
for repo in modelcar-bundle modelcar-legacy modelpack-bundle modelpack-legacy; do
	digest=$("$crane" digest "$reg/acme/$repo:v1")
	flags=(--key cosign.key --tlog-upload=false --use-signing-config=false)
	if [[ $repo == *-legacy ]]; then flags+=(--new-bundle-format=false); fi
	"$cosign" sign "${flags[@]}" "$reg/acme/$repo@$digest" >"$work/sign.log" 2>&1 || { cat "$work/sign.log" >&2; exit 1; }
	"$cosign" verify --key cosign.pub --insecure-ignore-tlog "$reg/acme/$repo@$digest" >/dev/null 2>"$work/verify.log" ||
		{ cat "$work/verify.log" >&2; exit 1; }
	refs+=("$reg/acme/$repo:v1")
	tag=${digest/:/-}
	if [[ $repo == *-legacy ]]; then refs+=("$reg/acme/$repo:$tag.sig"); else refs+=("$reg/acme/$repo:$tag"); fi
	echo "$repo $digest signed and verified by cosign" >&2
done

rm -rf layout
"$crane" pull --format=oci --annotate-ref "${refs[@]}" layout
# Registry-independent names: the host and port of this run mean nothing later.
python3 - "$reg" <<'PY'
import json, sys
reg = sys.argv[1] + "/"
p = "layout/index.json"
idx = json.load(open(p))
for m in idx["manifests"]:
    a = m.get("annotations", {})
    for k in ("org.opencontainers.image.ref.name", "dev.ggcr.image.name"):
        if k in a and a[k].startswith(reg):
            a[k] = a[k][len(reg):]
json.dump(idx, open(p, "w"), indent=1, sort_keys=True)
PY
echo "wrote $here/layout" >&2
