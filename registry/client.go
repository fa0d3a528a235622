package registry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Client talks to OCI registries: it resolves references to digests, reads manifests, downloads
// layers into a staging directory (checking each against its digest as it streams) and finds
// cosign signatures. It is safe for concurrent use.
type Client struct {
	keychain  authn.Keychain
	base      http.RoundTripper
	policy    *retryPolicy
	header    time.Duration
	idle      time.Duration
	userAgent string
	jobs      int
	platform  platformMatcher
	progress  func(Progress)
	progMu    sync.Mutex

	// authMu guards auth: one authenticated transport per repository, so that the registry is
	// pinged and a token fetched once, not for every manifest and blob.
	authMu sync.Mutex
	auth   map[string]http.RoundTripper
}

// NewClient makes a Client. Credentials come from the Docker config (WithDockerConfig, else
// $DOCKER_CONFIG/config.json or ~/.docker/config.json), unless WithKeychain replaces them.
func NewClient(opts ...Option) (*Client, error) {
	o := options{
		jobs:          DefaultJobs,
		retries:       5,
		backoffBase:   time.Second,
		backoffMax:    8 * time.Second,
		retryBudget:   DefaultRetryBudget,
		headerTimeout: DefaultHeaderTimeout,
		idleTimeout:   DefaultIdleTimeout,
		platform:      DefaultPlatform,
		getenv:        os.Getenv,
		userAgent:     "go-modelverify-registry",
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.jobs < 1 {
		return nil, fmt.Errorf("registry: WithJobs(%d): at least one job is needed", o.jobs)
	}
	if o.retries < 0 || o.backoffBase < 0 || o.backoffMax < o.backoffBase || o.retryBudget < 0 {
		return nil, fmt.Errorf("registry: WithRetry(%d, %v, %v, %v): retries and durations must be >= 0 and max >= base", o.retries, o.backoffBase, o.backoffMax, o.retryBudget)
	}
	if o.platform.OS == "" || o.platform.Architecture == "" {
		return nil, fmt.Errorf("registry: WithPlatform: OS and Architecture are both needed, got %q/%q", o.platform.OS, o.platform.Architecture)
	}
	kc := o.keychain
	if kc == nil {
		path, explicit := o.dockerConfig, o.dockerConfig != ""
		if !explicit {
			path = DockerConfigPath(o.getenv)
		}
		dk, err := loadDockerKeychain(path, explicit)
		if err != nil {
			return nil, err
		}
		kc = dk
	}
	base := o.transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(o.jobs, 2) + 2
		base = t
	}
	return &Client{
		keychain:  kc,
		base:      base,
		policy:    &retryPolicy{retries: o.retries, base: o.backoffBase, max: o.backoffMax, budget: o.retryBudget, sleep: sleepCtx},
		header:    o.headerTimeout,
		idle:      o.idleTimeout,
		userAgent: o.userAgent,
		jobs:      o.jobs,
		platform:  platformMatcher(o.platform),
		progress:  o.progress,
		auth:      map[string]http.RoundTripper{},
	}, nil
}

// inner is the client's own transport stack for one registry host (see transport.go).
func (c *Client) inner(registryHost string) http.RoundTripper {
	return &guardTransport{
		registry: registryHost,
		next: &retryTransport{policy: c.policy,
			next: &timeoutTransport{next: c.base, header: c.header, idle: c.idle}},
	}
}

// never is a retry predicate that declines: retries happen in the client's own layer, once.
func never(error) bool { return false }

// remoteOptions are the go-containerregistry options for requests about ref's repository.
func (c *Client) remoteOptions(ctx context.Context, ref Reference) ([]remote.Option, error) {
	rt, _, err := c.authTransport(ctx, ref)
	if err != nil {
		return nil, err
	}
	// go-containerregistry uses an authenticated transport (a *transport.Wrapper) as it is: no
	// second ping, no retry layer of its own (the client's retryTransport is inside).
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithRetryPredicate(never),
		remote.WithRetryStatusCodes(),
		remote.WithJobs(c.jobs),
	}, nil
}

// authTransport is the authenticated transport for ref's repository (pull scope), made once:
// go-containerregistry's ping and token handshake over the client's own layers.
func (c *Client) authTransport(ctx context.Context, ref Reference) (http.RoundTripper, name.Repository, error) {
	repo, err := ref.repository(false)
	if err != nil {
		return nil, name.Repository{}, err
	}
	key := ref.Registry + "/" + ref.Repository
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if rt, ok := c.auth[key]; ok {
		return rt, repo, nil
	}
	auth, err := authn.Resolve(ctx, c.keychain, repo)
	if err != nil {
		return nil, name.Repository{}, fmt.Errorf("registry: credentials for %s: %w", ref.Registry, err)
	}
	inner := transport.NewUserAgent(c.inner(ref.Registry), c.userAgent)
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, inner, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, name.Repository{}, fmt.Errorf("registry: %s: %w", ref.Registry, registryError(http.MethodGet, err))
	}
	c.auth[key] = rt
	return rt, repo, nil
}

// blobClient is an authenticated HTTP client for ref's repository, for the blob downloads the
// client makes itself (to resume, hash once, and report progress).
func (c *Client) blobClient(ctx context.Context, ref Reference) (*http.Client, name.Repository, error) {
	rt, repo, err := c.authTransport(ctx, ref)
	if err != nil {
		return nil, name.Repository{}, err
	}
	return &http.Client{Transport: rt, CheckRedirect: checkRedirect}, repo, nil
}

// checkRedirect bounds redirect chains; the credential and plain-HTTP rules are guardTransport's.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("registry: more than 10 redirects, last to %s", redactURL(req.URL.String()))
	}
	return nil
}

// ProgressState says what happened to a layer download.
type ProgressState int

// The states a Progress reports.
const (
	// ProgressStarted: the download began (or began again, on a retry).
	ProgressStarted ProgressState = iota + 1
	// ProgressBytes: more bytes arrived.
	ProgressBytes
	// ProgressRetry: the download failed and will be retried (Err says why).
	ProgressRetry
	// ProgressDone: the layer arrived whole and matches its digest.
	ProgressDone
)

// Progress is one report about one layer download.
type Progress struct {
	// Digest and MediaType name the layer.
	Digest, MediaType string
	State             ProgressState
	// Complete and Total are bytes received and expected.
	Complete, Total int64
	// Attempt counts retries of this layer (0 on the first try).
	Attempt int
	// Err is why a retry happens.
	Err error
}

func (c *Client) report(p Progress) {
	if c.progress == nil {
		return
	}
	c.progMu.Lock()
	defer c.progMu.Unlock()
	c.progress(p)
}
