package hub

import (
	"crypto/sha1"
	"encoding/hex"
	"hash"
	"strconv"
)

// gitBlobID is git's object id of a blob: sha1("blob {len}\x00" + content). The Hub publishes
// it as the oid and ETag of every plain git file.
func gitBlobID(b []byte) string {
	h := newGitBlobHash(int64(len(b)))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// newGitBlobHash starts a git blob hash for content of the given size.
func newGitBlobHash(size int64) hash.Hash {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.FormatInt(size, 10) + "\x00"))
	return h
}
