package modelverify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/registry"
)

// Option configures a Verifier.
type Option func(*config)

type config struct {
	endpoint   string
	cacheDir   string
	hubOptions []hub.Option
	sink       Sink
	sinkSet    bool
	logger     *slog.Logger
	now        func() time.Time
	progress   func(Progress)
	recordKey  string
	timeout    time.Duration
	// environment is false when the Verifier must read no environment variable
	// (WithEnvironment).
	environment bool
	// registryOptions configure the OCI registry client (WithRegistryOptions).
	registryOptions []registry.Option
}

// WithEndpoint sets the Hub to fetch from, by URL or by the name the policy gives it. The
// default is HF_ENDPOINT, else https://huggingface.co. The policy must list it either way.
func WithEndpoint(nameOrURL string) Option { return func(c *config) { c.endpoint = nameOrURL } }

// WithCacheDir sets the Hugging Face cache that verified snapshots are published into. The
// default is HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithHubOptions passes options to the Hub client: a token, a transport, parallelism, retries.
// The endpoint, the allowed redirect hosts and the cache are the Verifier's to set.
func WithHubOptions(opts ...hub.Option) Option {
	return func(c *config) { c.hubOptions = append(c.hubOptions, opts...) }
}

// WithAuditSink sends decisions to sink instead of the sinks the policy's audit section names.
// The Verifier closes it in Close.
func WithAuditSink(sink Sink) Option { return func(c *config) { c.sink, c.sinkSet = sink, true } }

// WithLogger is the logger the policy's slog audit sink writes to. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithProgress asks for progress reports while models are downloaded and checked.
func WithProgress(fn func(Progress)) Option { return func(c *config) { c.progress = fn } }

// WithRecordKeyFile is the file holding the key verification records are authenticated with,
// overriding MODELVERIFY_RECORD_KEY_FILE and the policy's records.keyFile (see RecordRules).
func WithRecordKeyFile(path string) Option { return func(c *config) { c.recordKey = path } }

// WithTimeout bounds each Verify as a whole: a verification still running after d is stopped
// and refused as hub-error, with a cause that matches context.DeadlineExceeded and
// ErrTemporary. The Hub client's own bounds (an idle timeout on every read, a retry budget; see
// hub.WithTimeouts and hub.WithRetry) apply within it. 0, the default, leaves the deadline to
// the caller's context.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// deadlineError is the cause a verification stopped by WithTimeout fails with.
type deadlineError struct{ d time.Duration }

func (e deadlineError) Error() string {
	return fmt.Sprintf("modelverify: the verification took longer than its %v deadline", e.d)
}

// Is matches context.DeadlineExceeded, as a context's deadline does, and ErrTemporary: the
// same verification may finish in time later.
func (e deadlineError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == ErrTemporary
}

// WithEnvironment(false) makes the Verifier read no environment variable at all, for a
// service whose configuration must come from its own code and files alone: no HF_ENDPOINT (the
// endpoint is WithEndpoint, else https://huggingface.co), no HF_TOKEN or token file (a token
// comes only from WithHubOptions(hub.WithToken(...))), no HF_HUB_OFFLINE, no HF_HOME or
// HF_HUB_CACHE (the cache is WithCacheDir, which is then required), and no
// MODELVERIFY_RECORD_KEY_FILE and no XDG_CONFIG_HOME or HOME (the record key is
// WithRecordKeyFile or the policy's records.keyFile; without either, records are off and every
// load is verified in full), and no HTTPS_PROXY, HTTP_PROXY or NO_PROXY (connections are direct
// unless WithHubOptions gives a transport). The default, true, reads them as NewVerifier
// documents.
func WithEnvironment(use bool) Option { return func(c *config) { c.environment = use } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Progress reports what a verification is doing.
type Progress struct {
	// Ref is the reference being verified.
	Ref string
	// Step is "resolve", "signature", "download", "check" or "publish".
	Step string
	// File, Bytes and Size describe a download in progress. In VerifyDir's "check" step,
	// Bytes and Size count the whole directory's hashing, and File is empty.
	File        string
	Bytes, Size int64
	// State is what a download report is about: "started", "bytes", "retrying", "verified"
	// (the file matched the Hub's digest), "cached" or "cache-corrupt" (hub.ProgressState).
	// Err says why, for "retrying" and "cache-corrupt".
	State string
	Err   error
	// Total is the size of every file of the model, in the report that starts the download step.
	Total int64
}
