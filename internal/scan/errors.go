package scan

import "errors"

// Sentinels that classify findings. Every Finding unwraps to exactly one of them.
var (
	// ErrDangerousGlobal: a pickle imports or calls something on the denylist, or
	// something the scanner cannot resolve statically (which a loader could resolve to anything).
	ErrDangerousGlobal = errors.New("dangerous import")
	// ErrUnlistedGlobal: a pickle imports something that is neither allowlisted nor denylisted.
	ErrUnlistedGlobal = errors.New("import not on the allowlist")
	// ErrDangerousOpcode: a pickle uses an opcode in a way that mutates imported objects,
	// calls computed callables, or makes loaders disagree about what the bytes mean.
	ErrDangerousOpcode = errors.New("dangerous opcode use")
	// ErrMalformed: the file breaks a structural rule of its format.
	ErrMalformed = errors.New("malformed file")
	// ErrTruncated: the file ends before its structure does. It is also ErrMalformed.
	ErrTruncated = truncatedError{}
	// ErrUnsupported: content the scanner recognises but cannot inspect (7z, encrypted or
	// unknown compression), so it cannot vouch for it.
	ErrUnsupported = errors.New("content cannot be inspected")
	// ErrLimit: a resource limit (memo size, stack depth, member count, nesting) was hit.
	ErrLimit = errors.New("scan limit exceeded")
	// ErrAmbiguous: the loaders that read this format would read different content from the
	// same bytes (two central directories, members one reader sees and another does not,
	// overlapping members, names that differ between headers). Every reading is scanned, but
	// the file is refused: what loads depends on who loads it.
	ErrAmbiguous = errors.New("loaders would read different content")
	// ErrNote classifies Safe findings that only record an observation.
	ErrNote = errors.New("note")
)

type truncatedError struct{}

func (truncatedError) Error() string { return "truncated file" }

// Is makes a truncated file also count as malformed.
func (truncatedError) Is(target error) bool { return target == ErrMalformed }
