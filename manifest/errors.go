package manifest

import "errors"

// Sentinel errors. The errors this package returns wrap one of them, so callers can tell the
// reasons apart with errors.Is; the message says what and where.
var (
	// ErrInvalid means a manifest or statement is malformed or inconsistent.
	ErrInvalid = errors.New("invalid manifest")
	// ErrRootDigest means the statement's subject digest does not match its resources.
	ErrRootDigest = errors.New("root digest does not match the resources")
	// ErrUnsafeName means a resource name could escape the model root.
	ErrUnsafeName = errors.New("unsafe resource name")
	// ErrStatementType means the payload is not an in-toto statement v1.
	ErrStatementType = errors.New("unexpected statement type")
	// ErrPredicateType means the statement's predicate is not a model_signing one.
	ErrPredicateType = errors.New("unexpected predicate type")
	// ErrSubject means the statement does not have exactly one subject with a sha256 digest.
	ErrSubject = errors.New("unexpected statement subject")
	// ErrSymlink means the model holds a symbolic link that is not allowed.
	ErrSymlink = errors.New("symbolic link not allowed")
	// ErrFileType means the model holds something that is neither a file nor a directory.
	ErrFileType = errors.New("not a regular file or directory")
	// ErrMismatch means a model does not match its manifest; the error is a *Diff.
	ErrMismatch = errors.New("model does not match its manifest")
)
