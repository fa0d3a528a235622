#!/bin/sh
# Makes the encrypted test keys in this directory with OpenSSL, in the two encrypted PEM forms
# a publisher's key may come in. Test keys only: the password is in this file, on purpose.
#   ec-p256-pkcs8-encrypted.pem   PKCS#8 "ENCRYPTED PRIVATE KEY", PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC),
#                                 what Python cryptography's BestAvailableEncryption writes
#   ec-p521-legacy-encrypted.pem  SEC 1 "EC PRIVATE KEY" with OpenSSL's legacy Proc-Type/DEK-Info header
#   *.pub.pem                     the matching public keys
set -eu
cd "$(dirname "$0")"
PASS=test-password
openssl ecparam -name prime256v1 -genkey -noout -out p256.tmp
openssl pkcs8 -topk8 -in p256.tmp -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout pass:$PASS -out ec-p256-pkcs8-encrypted.pem
openssl ec -in p256.tmp -pubout -out ec-p256-pkcs8-encrypted.pub.pem
openssl ecparam -name secp521r1 -genkey -noout -out p521.tmp
openssl ec -in p521.tmp -aes256 -passout pass:$PASS -traditional -out ec-p521-legacy-encrypted.pem 2>/dev/null ||
	openssl ec -in p521.tmp -aes256 -passout pass:$PASS -out ec-p521-legacy-encrypted.pem
openssl ec -in p521.tmp -pubout -out ec-p521-legacy-encrypted.pub.pem
rm -f p256.tmp p521.tmp
