package hub

import (
	"net/http"
	"time"
)

// Option configures a Client. Options override the environment (HF_ENDPOINT, HF_TOKEN, ...).
type Option func(*options)

type options struct {
	endpoint      *string
	token         *string
	transport     http.RoundTripper
	userAgent     string
	redirectHosts []string
	redirectSet   bool
	jobs          int
	chunkSize     int64
	retries       int
	backoffBase   time.Duration
	backoffMax    time.Duration
	retryBudget   time.Duration
	headerTimeout time.Duration
	readTimeout   time.Duration
	progress      func(Progress)
	offline       *bool
	cacheDir      *string
	getenv        func(string) string
}

// WithEndpoint sets the Hub's base URL, overriding HF_ENDPOINT (default https://huggingface.co).
func WithEndpoint(url string) Option { return func(o *options) { o.endpoint = &url } }

// WithToken sets the access token, overriding HF_TOKEN, HUGGING_FACE_HUB_TOKEN and the token file.
// An empty token makes the client anonymous.
func WithToken(token string) Option { return func(o *options) { o.token = &token } }

// WithTransport sets the HTTP transport the client's layers (retry, auth, redirect policy) wrap.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithUserAgent sets the User-Agent header sent to the Hub.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithAllowedRedirectHosts lists the hosts a redirect may lead to, besides the endpoint's own
// host: exact names ("cdn-lfs.hf.co"), "*.suffix" patterns ("*.hf.co", which matches
// subdomains only) or "host:port" entries. A redirect to any other host fails with a *RedirectError. Without this
// option, huggingface.co and hf.co endpoints allow DefaultRedirectHosts and others allow none.
func WithAllowedRedirectHosts(hosts ...string) Option {
	return func(o *options) { o.redirectHosts, o.redirectSet = append([]string(nil), hosts...), true }
}

// WithJobs sets how many transfers (whole files or byte ranges) one Download runs at once, and
// how many files it hashes at once (default 8).
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithChunkSize sets the byte-range size for parallel downloads: a file larger than this is
// fetched in ranges of this size, in parallel (default 64 MiB; 0 never splits a file).
func WithChunkSize(n int64) Option { return func(o *options) { o.chunkSize = n } }

// Defaults of WithRetry and WithTimeouts.
const (
	// DefaultRetryBudget is how long a failing request or transfer is retried, from its first failure.
	DefaultRetryBudget = time.Minute
	// DefaultHeaderTimeout is how long a request waits for response headers.
	DefaultHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a read of a response body may wait for a byte.
	DefaultIdleTimeout = 60 * time.Second
)

// WithRetry sets how many times a request or a transfer is retried after a transient failure
// (408, 429, 5xx, a dropped connection, a stall), the exponential backoff between tries
// (default 5 retries, 1 s doubling up to 8 s), and the retry budget (default DefaultRetryBudget):
// from its first failure, a request or transfer is retried only while the waits and the
// retries' own header and idle timeouts fit in the budget. Retry-After and RateLimit headers
// take precedence over the backoff; a server asking for a wait beyond what is left of the
// budget is not retried, and the *HubError says so (it matches ErrRetryBudget).
//
// So a server that stops sending fails a transfer after at most the idle timeout (WithTimeouts)
// plus the budget: 2 minutes with the defaults.
func WithRetry(retries int, base, max, budget time.Duration) Option {
	return func(o *options) { o.retries, o.backoffBase, o.backoffMax, o.retryBudget = retries, base, max, budget }
}

// WithTimeouts sets how long a request may wait for response headers (default
// DefaultHeaderTimeout, 30 s) and how long any read of a response body (an API answer, a
// signature, a file) may wait for a byte (default DefaultIdleTimeout, 60 s); 0 turns a bound
// off. A stalled answer fails with a *StallError (ErrStalled) and is retried within the retry
// budget (WithRetry). The overall deadline is the context's.
func WithTimeouts(header, idle time.Duration) Option {
	return func(o *options) { o.headerTimeout, o.readTimeout = header, idle }
}

// WithProgress sets a function that receives download progress. Calls are serialised; the
// function must return quickly.
func WithProgress(f func(Progress)) Option { return func(o *options) { o.progress = f } }

// WithOffline turns offline mode on or off, overriding HF_HUB_OFFLINE. Offline, the client
// answers from the cache only and makes no request at all.
func WithOffline(offline bool) Option { return func(o *options) { o.offline = &offline } }

// WithCacheDir sets the cache directory, overriding HF_HUB_CACHE and HF_HOME.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = &dir } }

// WithEnv replaces os.Getenv as the source of HF_* variables, for callers that keep their
// configuration elsewhere (and for tests).
func WithEnv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }
