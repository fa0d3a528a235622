package scan

// Option configures a scan.
type Option func(*config)

type config struct {
	allowed         map[string]bool
	name            string
	maxMemo         int
	maxStack        int
	maxMembers      int
	maxNestedPickle int64
	maxDepth        int
	maxJSONIndex    int64
	maxDecompressed int64
	decompressed    int64 // decompressed bytes produced so far in this scan
	progress        func(Progress)
	alone           bool // the file is not among the model's other files (WithFileAlone)
}

// Progress is reported to the callback given with WithProgress as the scan reads bytes.
type Progress struct {
	BytesRead int64 // bytes of the file read so far (bytes reread are counted again)
	Size      int64 // size of the file
}

func newConfig(opts []Option) *config {
	c := &config{
		maxMemo:         1 << 18,
		maxStack:        1 << 17,
		maxMembers:      65536,
		maxNestedPickle: 16 << 20,
		maxDepth:        4,
		maxJSONIndex:    256 << 20,
		maxDecompressed: DefaultMaxDecompressed,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithAllowedGlobals adds "module.name" imports to the allowlist, as
// torch.serialization.add_safe_globals does for torch.load. A denylisted import stays dangerous.
func WithAllowedGlobals(globals ...string) Option {
	return func(c *config) {
		if c.allowed == nil {
			c.allowed = map[string]bool{}
		}
		for _, g := range globals {
			c.allowed[g] = true
		}
	}
}

// WithName gives the file's name for Scan (ScanFile uses the path). The name decides two things
// only: a file whose content matches no format, but whose extension names a weight format, is
// validated as that format and reported, instead of passing as unknown; and content without
// magic that an unpickler would read as far as an import off the allowlist is a pickle when
// loaders unpickle files of that name (model.pkl, pytorch_model.bin), even if it is text.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithMaxMemo bounds the pickle memo entries tracked (default 1<<18; a state dict uses about
// ten per tensor); beyond it the scan reports ErrLimit.
func WithMaxMemo(n int) Option { return func(c *config) { c.maxMemo = n } }

// WithMaxStack bounds the pickle stack depth (default 1<<17; picklers batch container items
// by the thousand, so real pickles stay far below it). Deeper stacks end the scan as malformed.
func WithMaxStack(n int) Option { return func(c *config) { c.maxStack = n } }

// WithMaxMembers bounds the number of archive members scanned (default 65536).
func WithMaxMembers(n int) Option { return func(c *config) { c.maxMembers = n } }

// WithMaxNestedPickle bounds the size of a bytes or string literal inside a pickle that is
// buffered to be scanned as a nested pickle (default 16 MiB). Pickles themselves are streamed.
func WithMaxNestedPickle(n int64) Option { return func(c *config) { c.maxNestedPickle = n } }

// WithMaxDepth bounds archive-in-archive and pickle-in-pickle nesting (default 4).
func WithMaxDepth(n int) Option { return func(c *config) { c.maxDepth = n } }

// DefaultMaxDecompressed is how many bytes a compressed stream (or a deflated archive member
// that must be read whole) may expand to before the scan calls it a compression bomb.
const DefaultMaxDecompressed = 64 << 30

// WithMaxDecompressed bounds the bytes the compressed streams and deflated archive members of
// one file may decompress to, together (default DefaultMaxDecompressed). Past it the scan
// stops reading and reports ErrLimit (rule compress.bomb); the load gate passes its policy's
// maxFileSize here.
func WithMaxDecompressed(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxDecompressed = n
		}
	}
}

// WithProgress reports bytes read to fn as the scan goes. fn is called from the scanning goroutine.
func WithProgress(fn func(Progress)) Option { return func(c *config) { c.progress = fn } }
