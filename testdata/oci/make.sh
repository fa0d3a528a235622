#!/usr/bin/env bash
# Makes the cosign interop fixtures in this directory with the real cosign CLI, pushed to a
# loopback `crane registry serve` (no referrers API, so cosign writes the referrers tag schema),
# checked with `cosign verify`, and saved as one OCI image layout, layout/, whose index names
# every manifest by its repository and tag (org.opencontainers.image.ref.name).
# registry/interop_test.go and modelverify load the layout into registrytest and verify it.
#
# Two sets, each made by a part of this script:
#   key          a KServe modelcar image and a CNCF ModelPack artefact, each signed with the test
#                key cosign.key (cosign sign --key) in both of cosign's forms (the v3 Sigstore
#                bundle referrer, and the legacy sha256-<hex>.sig tag): acme/modelcar-bundle,
#                acme/modelcar-legacy, acme/modelpack-bundle, acme/modelpack-legacy.
#   certificate  a test CA made with openssl (ca/root.pem, ca/intermediate.pem; a code-signing
#                leaf ca/release.pem with the e-mail SAN releases@acme.example, and a TLS server
#                leaf ca/tls-server.pem of the same intermediate with the same e-mail SAN), and a
#                modelcar whose files are a valid config.json and safetensors file, signed with
#                cosign sign --key K --certificate C --certificate-chain CHAIN --tlog-upload=false
#                in both forms by the release leaf (acme/cert-modelcar-bundle,
#                acme/cert-modelcar-legacy) and by the TLS server leaf (acme/cert-tls-bundle,
#                acme/cert-tls-legacy; see below why those carry no chain); and by the release
#                leaf with --certificate alone, no chain (acme/cert-leafonly-bundle,
#                acme/cert-leafonly-legacy), which carry only the leaf. Offline: cosign
#                verify checks a v3 bundle's certificate only against a trusted root (made here
#                with cosign trusted-root create, the CA as its "Fulcio") and a .sig's with
#                --ca-roots/--ca-intermediates; neither form needs a log or a timestamp.
#
#   testdata/oci/make.sh [key] [certificate]   (neither: both)
#
# A part rewrites its own files and its own repositories' entries in layout/ and leaves the
# other part's entries byte for byte as they are (blobs no entry reaches any more are removed),
# so the key-signed fixtures, whose digests examples/verifier pins, survive a run of
# `make.sh certificate`.
#
# Test keys only: cosign.key has an empty password and signs nothing but these fixtures. The
# CA's and the leaves' private keys live only in a temporary directory for the run; ca/ keeps
# the certificates alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(key certificate)
for p in "${parts[@]}"; do
	case $p in key | certificate) ;; *) echo "make.sh: unknown part $p (key, certificate)" >&2; exit 2 ;; esac
done
want() { [[ " ${parts[*]} " == *" $1 "* ]]; }

crane=$("$here/../../.ci/tools.sh" path crane)
cosign=$("$here/../../.ci/tools.sh" path cosign)
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

# refs lists what the layout keeps of this run: every artefact and its signature, by tag.
refs=()
repos=()

# sign REPO FLAGS...: signs REPO:v1 by digest with cosign sign FLAGS (in the legacy form for a
# repository named *-legacy), records the artefact and its signature for the layout, and sets
# signed to the reference by digest (not printed: refs must grow in this shell, not a subshell).
sign() {
	local repo=$1
	shift
	local digest flags=("$@" --tlog-upload=false --use-signing-config=false)
	digest=$("$crane" digest "$reg/acme/$repo:v1")
	if [[ $repo == *-legacy ]]; then flags+=(--new-bundle-format=false); fi
	"$cosign" sign "${flags[@]}" "$reg/acme/$repo@$digest" >"$work/sign.log" 2>&1 || { cat "$work/sign.log" >&2; exit 1; }
	refs+=("$reg/acme/$repo:v1")
	repos+=("acme/$repo")
	local tag=${digest/:/-}
	if [[ $repo == *-legacy ]]; then refs+=("$reg/acme/$repo:$tag.sig"); else refs+=("$reg/acme/$repo:$tag"); fi
	signed=$reg/acme/$repo@$digest
}

# cosign_verify REF FLAGS...: cosign verify must accept the signature of REF.
cosign_verify() {
	local ref=$1
	shift
	"$cosign" verify "$@" "$ref" >/dev/null 2>"$work/verify.log" || { cat "$work/verify.log" >&2; exit 1; }
	echo "${ref#"$reg"/} signed and verified by cosign" >&2
}

# cosign_refuses WHY REF FLAGS...: cosign verify must refuse the signature of REF.
cosign_refuses() {
	local why=$1 ref=$2
	shift 2
	if "$cosign" verify "$@" "$ref" >/dev/null 2>"$work/verify.log"; then
		echo "make.sh: cosign verify accepted ${ref#"$reg"/} $why" >&2
		exit 1
	fi
	echo "${ref#"$reg"/} refused by cosign $why: $(grep '^Error' "$work/verify.log")" >&2
}

if want key; then
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

	for repo in modelcar-bundle modelcar-legacy modelpack-bundle modelpack-legacy; do
		sign "$repo" --key cosign.key
		cosign_verify "$signed" --key cosign.pub --insecure-ignore-tlog
	done
fi

if want certificate; then
	# The test CA: a root, an intermediate that signs the leaves (as a company PKI does), and
	# two leaves for P-256 keys. Valid for 100 years from the run, as the gate checks a
	# certificate signature without a log entry or timestamp against the current time. The TLS
	# server leaf carries the release e-mail SAN too, so that only its usage tells it apart: a
	# verifier that refuses it refuses it for that (and sigstore-go, which reads only e-mail and
	# URI SANs, would otherwise refuse it for having no SAN before looking at the usage).
	ca=$work/ca
	mkdir -p "$ca" ca
	cat >"$ca/ext.cnf" <<'CNF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[release]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectAltName = email:releases@acme.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[tls-server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:models.acme.example, email:releases@acme.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
	days=36500
	# certify NAME SUBJECT ISSUER: a fresh key and NAME.pem, issued by ISSUER (self-signed if none).
	certify() {
		local name=$1 subject=$2 issuer=${3:-}
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/$name.key" 2>/dev/null
		openssl req -new -key "$ca/$name.key" -subj "$subject" -out "$ca/$name.csr"
		local by=(-signkey "$ca/$name.key")
		if [[ -n $issuer ]]; then by=(-CA "$ca/$issuer.pem" -CAkey "$ca/$issuer.key"); fi
		openssl x509 -req -in "$ca/$name.csr" "${by[@]}" -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
			-extfile "$ca/ext.cnf" -extensions "$name" -out "$ca/$name.pem" 2>/dev/null
	}
	certify root "/O=Acme ML/CN=Acme Test Root CA"
	certify intermediate "/O=Acme ML/CN=Acme Test Signing CA" root
	certify release "/O=Acme ML/CN=Acme release" intermediate
	certify tls-server "/O=Acme ML/CN=models.acme.example" intermediate
	# cosign's --certificate-chain: the intermediate, then the root.
	cat "$ca/intermediate.pem" "$ca/root.pem" >"$ca/chain.pem"
	openssl verify -CAfile "$ca/root.pem" -untrusted "$ca/intermediate.pem" -purpose any "$ca/release.pem" "$ca/tls-server.pem" >/dev/null
	rm -f ca/*.pem
	cp "$ca/root.pem" "$ca/intermediate.pem" "$ca/chain.pem" "$ca/release.pem" "$ca/tls-server.pem" ca/
	# cosign sign --key takes cosign's encrypted key format, not a PEM private key: import them.
	for leaf in release tls-server; do
		(cd "$ca" && "$cosign" import-key-pair --key "$leaf.key" --output-key-prefix "cosign-$leaf" >/dev/null 2>&1)
	done

	# The model: a config and a valid safetensors file (one F32 tensor of four ones), so that
	# the gate can allow it whole, not only verify its signature.
	mkdir -p "$work/c/models"
	printf '{"model_type":"test","hidden_size":4}\n' >"$work/c/models/config.json"
	python3 - "$work/c/models/model.safetensors" <<'PY'
import json, struct, sys
header = json.dumps({"weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, separators=(",", ":")).encode()
header += b" " * (-len(header) % 8)  # the data starts 8-byte aligned
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<4f", 1, 1, 1, 1))
PY
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/c" -cf "$work/cert-models.tar" models
	for repo in cert-modelcar-bundle cert-modelcar-legacy cert-leafonly-bundle cert-leafonly-legacy cert-tls-bundle cert-tls-legacy; do
		"$crane" append --oci-empty-base -f "$work/cert-models.tar" -t "$reg/acme/$repo:v1" >/dev/null
	done

	# cosign verify checks the certificate a v3 bundle carries against a trusted root only
	# (--ca-roots and --certificate-chain are refused with the bundle format): the CA as its
	# "Fulcio". --allow-certificate-chain: without it the bundle, whose verification material is
	# an x509CertificateChain, does not parse, cosign falls back to the .sig tag and finds none.
	"$cosign" trusted-root create --fulcio="url=https://ca.acme.example,certificate-chain=ca/chain.pem" \
		--out "$ca/trusted_root.json" >/dev/null
	for repo in cert-modelcar-bundle cert-modelcar-legacy; do
		sign "$repo" --key "$ca/cosign-release.key" --certificate ca/release.pem --certificate-chain ca/chain.pem
		# The certificate the signature carries must chain to the CA and name the release SAN;
		# it has no OIDC issuer (no Fulcio extension), which the regexp .* matches.
		trust=(--trusted-root "$ca/trusted_root.json" --allow-certificate-chain)
		if [[ $repo == *-legacy ]]; then trust=(--ca-roots ca/root.pem --ca-intermediates ca/intermediate.pem); fi
		cosign_verify "$signed" "${trust[@]}" \
			--certificate-identity releases@acme.example --certificate-oidc-issuer-regexp '.*' \
			--insecure-ignore-tlog --insecure-ignore-sct
		cosign_refuses "for another SAN" "$signed" "${trust[@]}" \
			--certificate-identity ops@acme.example --certificate-oidc-issuer-regexp '.*' \
			--insecure-ignore-tlog --insecure-ignore-sct
	done

	# Without --certificate-chain the signature carries the leaf alone, and a verifier must know
	# the intermediate: cosign verify is given it, as a policy lists it in roots.
	for repo in cert-leafonly-bundle cert-leafonly-legacy; do
		sign "$repo" --key "$ca/cosign-release.key" --certificate ca/release.pem
		trust=(--trusted-root "$ca/trusted_root.json")
		if [[ $repo == *-legacy ]]; then trust=(--ca-roots ca/root.pem --ca-intermediates ca/intermediate.pem); fi
		cosign_verify "$signed" "${trust[@]}" \
			--certificate-identity releases@acme.example --certificate-oidc-issuer-regexp '.*' \
			--insecure-ignore-tlog --insecure-ignore-sct
	done

	# cosign itself refuses to sign with a TLS server certificate and its chain: it checks the
	# chain with the code-signing usage required (pkg/cosign.TrustedCert). With --certificate
	# alone it signs, the leaf being all the signature carries; that is the signature a gate has
	# to refuse for the certificate's usage.
	digest=$("$crane" digest "$reg/acme/cert-tls-bundle:v1")
	if "$cosign" sign --key "$ca/cosign-tls-server.key" --certificate ca/tls-server.pem --certificate-chain ca/chain.pem \
		--tlog-upload=false --use-signing-config=false "$reg/acme/cert-tls-bundle@$digest" >"$work/sign.log" 2>&1; then
		echo "make.sh: cosign signed with a TLS server certificate and its chain; it used to refuse" >&2
		exit 1
	fi
	for repo in cert-tls-bundle cert-tls-legacy; do
		sign "$repo" --key "$ca/cosign-tls-server.key" --certificate ca/tls-server.pem
		echo "acme/$repo signed by cosign with the TLS server certificate" >&2
		# cosign verify refuses it too, for its usage, though it names the release SAN.
		trust=(--trusted-root "$ca/trusted_root.json")
		if [[ $repo == *-legacy ]]; then trust=(--ca-roots ca/root.pem --ca-intermediates ca/intermediate.pem); fi
		cosign_refuses "for its TLS server certificate" "$signed" "${trust[@]}" \
			--certificate-identity releases@acme.example --certificate-oidc-issuer-regexp '.*' \
			--insecure-ignore-tlog --insecure-ignore-sct
	done
fi

# The layout: this run's entries replace the ones of the same repositories; the rest stay.
"$crane" pull --format=oci --annotate-ref "${refs[@]}" "$work/layout"
if [[ ! -f layout/index.json ]]; then rm -rf layout; fi
python3 - "$reg" "$work/layout" layout "${repos[@]}" <<'PY'
import json, os, shutil, sys
reg, new, out, repos = sys.argv[1] + "/", sys.argv[2], sys.argv[3], set(sys.argv[4:])
REF = "org.opencontainers.image.ref.name"

def repo_of(m):
    return m.get("annotations", {}).get(REF, "").split(":", 1)[0]

def blob(root, digest):
    return os.path.join(root, "blobs", *digest.split(":", 1))

os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
shutil.copyfile(os.path.join(new, "oci-layout"), os.path.join(out, "oci-layout"))
try:
    kept = [m for m in json.load(open(os.path.join(out, "index.json")))["manifests"] if repo_of(m) not in repos]
except FileNotFoundError:
    kept = []
added = json.load(open(os.path.join(new, "index.json")))["manifests"]
# Registry-independent names: the host and port of this run mean nothing later.
for m in added:
    a = m.get("annotations", {})
    for k in (REF, "dev.ggcr.image.name"):
        if k in a and a[k].startswith(reg):
            a[k] = a[k][len(reg):]
for name in os.listdir(os.path.join(new, "blobs", "sha256")):
    shutil.copyfile(os.path.join(new, "blobs", "sha256", name), os.path.join(out, "blobs", "sha256", name))
idx = {"manifests": kept + added, "mediaType": "application/vnd.oci.image.index.v1+json", "schemaVersion": 2}
json.dump(idx, open(os.path.join(out, "index.json"), "w"), indent=1, sort_keys=True)

# Remove the blobs no entry reaches any more (the replaced entries' signatures).
reached, todo = set(), [m["digest"] for m in idx["manifests"]]
while todo:
    d = todo.pop()
    if d in reached:
        continue
    reached.add(d)
    try:
        doc = json.load(open(blob(out, d)))
    except (ValueError, UnicodeDecodeError):
        continue  # a layer or config that is not a manifest
    if not isinstance(doc, dict) or "schemaVersion" not in doc:
        continue
    todo += [c["digest"] for c in doc.get("manifests", [])]
    todo += [c["digest"] for c in doc.get("layers", [])]
    if "config" in doc:
        todo.append(doc["config"]["digest"])
for name in os.listdir(os.path.join(out, "blobs", "sha256")):
    if "sha256:" + name not in reached:
        os.remove(os.path.join(out, "blobs", "sha256", name))
PY
echo "wrote $here/layout" >&2
