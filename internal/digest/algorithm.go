package digest

import (
	"crypto/sha256"
	"fmt"
	"hash"

	"golang.org/x/crypto/blake2b"
	"lukechampine.com/blake3"
)

// Algorithm names a content hash by the name model_signing records in a manifest's
// serialization.hash_type and in each resource's algorithm.
type Algorithm string

// The algorithms model_signing knows. SHA-256 is the default and the only one every OMS
// implementation must support; BLAKE2b is 64 bytes wide, as Python's hashlib.blake2b default.
const (
	SHA256  Algorithm = "sha256"
	BLAKE2b Algorithm = "blake2b"
	BLAKE3  Algorithm = "blake3"
)

// Algorithms lists every supported algorithm, default first.
var Algorithms = []Algorithm{SHA256, BLAKE2b, BLAKE3}

// ParseAlgorithm returns the algorithm with the given name. It accepts "blake2" as Python's API
// spells it, and reports every other unknown name as an error.
func ParseAlgorithm(name string) (Algorithm, error) {
	switch name {
	case "sha256", "":
		return SHA256, nil
	case "blake2b", "blake2":
		return BLAKE2b, nil
	case "blake3":
		return BLAKE3, nil
	}
	return "", fmt.Errorf("digest: unsupported hash algorithm %q (want sha256, blake2b or blake3)", name)
}

// Size is the length in bytes of the algorithm's digest.
func (a Algorithm) Size() int {
	switch a {
	case BLAKE2b:
		return blake2b.Size
	default:
		return 32
	}
}

// New returns a fresh hash. It panics on an algorithm that ParseAlgorithm would not return,
// because that is a programming error, not bad input.
func (a Algorithm) New() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New()
	case BLAKE2b:
		h, err := blake2b.New512(nil)
		if err != nil {
			panic(err) // only a key longer than 64 bytes can fail, and there is no key
		}
		return h
	case BLAKE3:
		return blake3.New(32, nil)
	}
	panic(fmt.Sprintf("digest: unknown algorithm %q", string(a)))
}

// String returns the algorithm's recorded name.
func (a Algorithm) String() string { return string(a) }
