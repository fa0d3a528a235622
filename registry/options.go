package registry

import (
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	dockerConfig  string
	keychain      authn.Keychain
	transport     http.RoundTripper
	userAgent     string
	jobs          int
	retries       int
	backoffBase   time.Duration
	backoffMax    time.Duration
	retryBudget   time.Duration
	headerTimeout time.Duration
	idleTimeout   time.Duration
	progress      func(Progress)
	platform      v1.Platform
	getenv        func(string) string
}

// Defaults of the options.
const (
	// DefaultJobs is how many layers one Pull downloads at once.
	DefaultJobs = 4
	// DefaultRetryBudget is how long a failing request or transfer is retried, from its first failure.
	DefaultRetryBudget = time.Minute
	// DefaultHeaderTimeout is how long a request waits for response headers.
	DefaultHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a read of a response body may wait for a byte.
	DefaultIdleTimeout = 60 * time.Second
)

// DefaultPlatform is the platform an image index resolves to unless WithPlatform says otherwise.
var DefaultPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// WithDockerConfig reads credentials from this Docker config file (or a directory holding
// config.json), as KServe's KSERVE_OCI_DOCKER_CONFIG names one, instead of $DOCKER_CONFIG or
// ~/.docker/config.json. Unlike the default location, the file must exist.
func WithDockerConfig(path string) Option { return func(o *options) { o.dockerConfig = path } }

// WithKeychain sets where credentials come from, replacing the Docker config entirely (for
// example go-containerregistry's cloud keychains).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithTransport sets the HTTP transport the client's layers (credential guard, retry, timeouts)
// wrap.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithUserAgent sets the User-Agent header sent to registries.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithJobs sets how many layers one Pull downloads at once (default DefaultJobs).
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithRetry sets how many times a request or a layer transfer is retried after a transient
// failure (408, 429, 5xx, a dropped connection, a stall), the exponential backoff between tries
// (default 5 retries, 1 s doubling up to 8 s), and the retry budget (default DefaultRetryBudget):
// from its first failure, a request or transfer is retried only while the next wait fits in it.
// A transfer that breaks off is resumed with a Range request where the registry honours it.
func WithRetry(retries int, base, max, budget time.Duration) Option {
	return func(o *options) { o.retries, o.backoffBase, o.backoffMax, o.retryBudget = retries, base, max, budget }
}

// WithTimeouts sets how long a request may wait for response headers (default
// DefaultHeaderTimeout) and how long any read of a response body may wait for a byte (default
// DefaultIdleTimeout); 0 turns a bound off. A stalled answer fails with a *StallError
// (ErrStalled) and is retried within the retry budget. The overall deadline is the context's.
func WithTimeouts(header, idle time.Duration) Option {
	return func(o *options) { o.headerTimeout, o.idleTimeout = header, idle }
}

// WithProgress sets a function that receives layer download progress. Calls are serialised; the
// function must return quickly.
func WithProgress(f func(Progress)) Option { return func(o *options) { o.progress = f } }

// WithPlatform sets the platform an image index resolves to (default DefaultPlatform,
// linux/amd64). OS and Architecture must match; Variant too when given.
func WithPlatform(p v1.Platform) Option { return func(o *options) { o.platform = p } }

// WithEnv replaces os.Getenv as the source of DOCKER_CONFIG and HOME (for tests, and callers
// that keep their configuration elsewhere).
func WithEnv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }
