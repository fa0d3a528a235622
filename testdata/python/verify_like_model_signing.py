#!/usr/bin/env python3
"""Verify an OMS key-signed model the way Python model_signing v1.1's `verify key` does.

An independent check of bundles that go-modelverify writes, using only the Python standard
library and `cryptography` (the library model_signing itself uses), for machines where
model_signing cannot be installed. It follows model_signing's steps: the exact v0.3 media type,
the key hint (hex SHA-256 of the public key's PEM), an ECDSA signature over the DSSE PAE with the
curve's hash, the in-toto statement and predicate types, one subject whose digest is SHA-256 over
the resources' raw digests in listed order, and every file's SHA-256 matching, both ways.

usage: verify_like_model_signing.py MODEL_DIR SIGNATURE PUBLIC_KEY_PEM
Prints "Verification succeeded" and exits 0, or prints the reason and exits 1.
"""
import base64
import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
GIT_PATHS = [".git", ".gitattributes", ".github", ".gitignore"]


def fail(msg):
    print("Verification failed with error: " + msg)
    sys.exit(1)


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def main():
    model, sig_path, key_path = (pathlib.Path(a) for a in sys.argv[1:4])
    bundle = json.loads(sig_path.read_text())
    if bundle.get("mediaType") != MEDIA_TYPE:
        fail("media type %r" % bundle.get("mediaType"))

    key = serialization.load_pem_public_key(key_path.read_bytes())
    if not isinstance(key, ec.EllipticCurvePublicKey):
        fail("only elliptic curve keys are supported")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hint = bundle["verificationMaterial"]["publicKey"].get("hint")
    if hint is not None and hint != hashlib.sha256(pem).hexdigest():
        fail("key mismatch: the hint %s is not this key's" % hint)
    algorithm = {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}[key.curve.name]

    envelope = bundle["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key.verify(signature, pae(envelope["payloadType"], payload), ec.ECDSA(algorithm))  # raises InvalidSignature

    if envelope["payloadType"] != PAYLOAD_TYPE:
        fail("payload type %r" % envelope["payloadType"])
    statement = json.loads(payload)
    if statement["_type"] != STATEMENT_TYPE or statement["predicateType"] != PREDICATE_TYPE:
        fail("statement %r / predicate %r" % (statement["_type"], statement["predicateType"]))
    if len(statement["subject"]) != 1:
        fail("expected one subject, got %d" % len(statement["subject"]))
    resources = statement["predicate"]["resources"]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    if root != statement["subject"][0]["digest"]["sha256"]:
        fail("manifest is inconsistent: root digest %s, resources hash to %s" % (statement["subject"][0]["digest"]["sha256"], root))
    serialization_ = statement["predicate"]["serialization"]
    if serialization_["method"] != "files" or serialization_["hash_type"] != "sha256":
        fail("this check knows files/sha256 manifests only")

    ignored = {model / p for p in GIT_PATHS + serialization_.get("ignore_paths", [])}
    ignored.add(sig_path.resolve())
    actual = {}
    for path in sorted(model.glob("**/*")):
        if any(path == i or i in path.parents for i in ignored) or path.resolve() == sig_path.resolve():
            continue
        if path.is_symlink():
            fail("%s is a symlink" % path)
        if path.is_file():
            actual[path.relative_to(model).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    signed = {r["name"]: r["digest"] for r in resources if r["algorithm"] == "sha256"}
    if signed != actual:
        extra = sorted(set(actual) - set(signed))
        missing = sorted(set(signed) - set(actual))
        changed = sorted(n for n in set(signed) & set(actual) if signed[n] != actual[n])
        fail("signature mismatch: extra %s, missing %s, changed %s" % (extra, missing, changed))
    print("Verification succeeded")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # InvalidSignature, KeyError on a malformed bundle, ...
        fail("%s: %s" % (type(e).__name__, e))
