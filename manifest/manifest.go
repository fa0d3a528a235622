package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/digest"
	godigest "github.com/opencontainers/go-digest"
)

// Serialization methods, as recorded in serialization.method.
const (
	MethodFiles  = "files"
	MethodShards = "shards"
)

// Hash algorithms, as recorded in serialization.hash_type.
const (
	SHA256  = string(digest.SHA256)
	BLAKE2b = string(digest.BLAKE2b)
	BLAKE3  = string(digest.BLAKE3)
)

// DefaultShardSize is model_signing's default shard size: one decimal gigabyte.
const DefaultShardSize = 1_000_000_000

// DefaultSignatureFile is the name model_signing gives a signature, beside the model.
const DefaultSignatureFile = "model.sig"

// GitPaths are the top-level entries that are left out of a manifest unless the caller asks
// for them, as model_signing does by default.
var GitPaths = []string{".git", ".gitattributes", ".github", ".gitignore"}

// Serialization records how a manifest was made: the parameters a verifier needs to hash a
// model the same way again.
type Serialization struct {
	Method        string   // MethodFiles or MethodShards
	HashType      string   // SHA256, BLAKE2b or BLAKE3
	ShardSize     int64    // bytes per shard; only with MethodShards
	AllowSymlinks bool     // whether symbolic links inside the model were followed
	IgnorePaths   []string // paths, relative to the model, that were left out
}

// Resource is one file, or one byte range of a file, and its digest.
type Resource struct {
	// Name is the path relative to the model root, with "/" separators ("." for a model that
	// is a single file). For shards it is "path:start:end", the end exclusive.
	Name string
	// Algorithm is the hash type for files ("sha256") and "<hash>-sharded-<size>" for shards.
	Algorithm string
	// Digest is the raw digest.
	Digest []byte
}

// Hex returns the digest as lowercase hex, as the manifest records it.
func (r Resource) Hex() string { return hex.EncodeToString(r.Digest) }

// Path returns the file the resource belongs to. For a shard it strips ":start:end".
func (r Resource) Path() string {
	p, _, _, ok := r.Shard()
	if ok {
		return p
	}
	return r.Name
}

// Shard splits a shard resource's name into its file path and byte range. ok is false for a
// resource that names a whole file. Like the OMS spec (and unlike Python, which splits on every
// ":"), it takes the last two fields, so a path may itself contain ":".
func (r Resource) Shard() (filePath string, start, end int64, ok bool) {
	if !strings.Contains(r.Algorithm, "-sharded-") {
		return "", 0, 0, false
	}
	i := strings.LastIndexByte(r.Name, ':')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(r.Name[:i], ':')
	if j < 0 {
		return "", 0, 0, false
	}
	s, err1 := strconv.ParseInt(r.Name[j+1:i], 10, 64)
	e, err2 := strconv.ParseInt(r.Name[i+1:], 10, 64)
	if err1 != nil || err2 != nil || s < 0 || e < s {
		return "", 0, 0, false
	}
	return r.Name[:j], s, e, true
}

// Manifest is the list of a model's resources with their digests, and how they were made.
// It is what an OMS signature covers.
type Manifest struct {
	// ModelName is informational: the statement's subject name. It takes no part in equality.
	ModelName     string
	Serialization Serialization
	// Resources are in the order they were listed. Python lists them in its own canonical
	// order (see SortResources); a verifier must accept any order.
	Resources []Resource
}

// RootDigest is the manifest's single subject digest: SHA-256 over the concatenated raw digests
// of the resources, in the listed order. It is SHA-256 whatever the resources' hash type.
func (m *Manifest) RootDigest() godigest.Digest {
	h := sha256.New()
	for _, r := range m.Resources {
		h.Write(r.Digest)
	}
	return godigest.NewDigest(godigest.SHA256, h)
}

// Files returns the distinct file paths the manifest covers, in the listed order.
func (m *Manifest) Files() []string {
	seen := make(map[string]bool, len(m.Resources))
	var out []string
	for _, r := range m.Resources {
		p := r.Path()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// ByFile returns the resources of m grouped by the file they belong to, each file's in listed
// order. It is how to look many files up: ResourcesFor scans every resource on each call, which
// for a whole model is quadratic in its number of files.
func (m *Manifest) ByFile() map[string][]Resource {
	// One copy of the resources backs every file's first one (a model of files has one
	// resource a file): no allocation per file, and nothing shared with m.
	backing := slices.Clone(m.Resources)
	out := make(map[string][]Resource, len(m.Resources))
	for i, r := range backing {
		p := r.Path()
		if rs, ok := out[p]; ok {
			out[p] = append(rs, r)
		} else {
			out[p] = backing[i : i+1 : i+1]
		}
	}
	return out
}

// ShardedSize returns the size of the file that the shard resources rs (one file's, as ByFile
// groups them) cover: where the last one ends. ok is false when rs are not shards, whose
// digests alone say nothing of the file's size.
func ShardedSize(rs []Resource) (size int64, ok bool) {
	for _, r := range rs {
		_, _, end, isShard := r.Shard()
		if !isShard {
			return 0, false
		}
		size = max(size, end)
	}
	return size, len(rs) > 0
}

// ResourceAlgorithm returns the algorithm name that a resource made with these parameters
// carries.
func (s Serialization) ResourceAlgorithm() string {
	if s.Method == MethodShards {
		return fmt.Sprintf("%s-sharded-%d", s.HashType, s.ShardSize)
	}
	return s.HashType
}

// Validate checks that the serialization parameters are ones this package can reproduce.
func (s Serialization) Validate() error {
	switch s.Method {
	case MethodFiles:
	case MethodShards:
		if s.ShardSize <= 0 {
			return fmt.Errorf("%w: shard size %d is not positive", ErrInvalid, s.ShardSize)
		}
		if s.ShardSize > 1<<53 {
			return fmt.Errorf("%w: shard size %d is too large", ErrInvalid, s.ShardSize)
		}
	default:
		return fmt.Errorf("%w: unknown serialization method %q", ErrInvalid, s.Method)
	}
	if _, err := digest.ParseAlgorithm(s.HashType); err != nil || s.HashType == "" || s.HashType == "blake2" {
		return fmt.Errorf("%w: unknown hash type %q", ErrInvalid, s.HashType)
	}
	return nil
}

// ValidateName refuses a resource path that could point outside the model root: an absolute
// path, a ".." component, a backslash, an empty or non-canonical path. "." alone is the name of a
// single-file model and is allowed.
func ValidateName(name string) error {
	switch {
	case name == ".":
		return nil
	case name == "":
		return fmt.Errorf("%w: empty resource name", ErrUnsafeName)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w: %q is an absolute path", ErrUnsafeName, name)
	case strings.ContainsAny(name, "\\\x00"):
		return fmt.Errorf("%w: %q contains a backslash or NUL", ErrUnsafeName, name)
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == ".." {
			return fmt.Errorf("%w: %q escapes the model root", ErrUnsafeName, name)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("%w: %q is not a clean relative path", ErrUnsafeName, name)
	}
	return nil
}
