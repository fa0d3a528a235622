package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/echelongraph/go-modelverify/internal/httpretry"
)

// maxErrorBody bounds how much of an error answer is read for its message.
const maxErrorBody = 64 << 10

// Client talks to one Hub endpoint and writes into one cache. It is safe for concurrent use.
type Client struct {
	endpoint    *url.URL
	token       string
	hc          *http.Client
	redirect    *redirectPolicy
	retry       *retryPolicy
	jobs        int
	chunkSize   int64
	readTimeout time.Duration
	offline     bool
	cache       *Cache

	progressMu sync.Mutex
	progress   func(Progress)
}

// NewClient returns a client configured from the environment (HF_ENDPOINT, HF_TOKEN,
// HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE) and then opts,
// which override it.
func NewClient(opts ...Option) (*Client, error) {
	o := options{
		jobs: 8, chunkSize: 64 << 20,
		retries: 5, backoffBase: time.Second, backoffMax: 8 * time.Second, retryBudget: DefaultRetryBudget,
		headerTimeout: DefaultHeaderTimeout, readTimeout: DefaultIdleTimeout,
		userAgent: "go-modelverify/hub",
		getenv:    os.Getenv,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.jobs < 1 {
		return nil, fmt.Errorf("hub: jobs must be at least 1, got %d", o.jobs)
	}
	if o.chunkSize < 0 || o.retries < 0 || o.backoffBase < 0 || o.backoffMax < 0 || o.retryBudget < 0 ||
		o.headerTimeout < 0 || o.readTimeout < 0 {
		return nil, errors.New("hub: chunk size and retry settings and timeouts must not be negative")
	}

	raw := envEndpoint(o.getenv)
	if o.endpoint != nil {
		raw = strings.TrimRight(*o.endpoint, "/")
	}
	endpoint, err := url.Parse(raw)
	if err != nil || (endpoint.Scheme != "https" && endpoint.Scheme != "http") || endpoint.Host == "" ||
		endpoint.RawQuery != "" || endpoint.User != nil {
		return nil, fmt.Errorf("hub: endpoint %q is not an http(s) base URL", raw)
	}

	token := ""
	if o.token != nil {
		token = *o.token
	} else if token, err = envToken(o.getenv); err != nil {
		return nil, err
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("hub: token contains a line break")
	}

	offline := envOffline(o.getenv)
	if o.offline != nil {
		offline = *o.offline
	}
	var cacheDir string
	if o.cacheDir != nil {
		cacheDir = *o.cacheDir
	} else if cacheDir, err = envCacheDir(o.getenv); err != nil {
		return nil, err
	}

	hosts := o.redirectHosts
	if !o.redirectSet {
		switch strings.ToLower(endpoint.Hostname()) {
		case "huggingface.co", "hf.co":
			hosts = DefaultRedirectHosts
		}
	}
	c := &Client{
		endpoint:    endpoint,
		token:       token,
		redirect:    &redirectPolicy{endpoint: endpoint, hosts: hosts},
		jobs:        o.jobs,
		chunkSize:   o.chunkSize,
		readTimeout: o.readTimeout,
		offline:     offline,
		cache:       NewCache(cacheDir),
		progress:    o.progress,
	}
	c.retry = &retryPolicy{onRetry: c.reportRequestRetry, Policy: httpretry.Policy{
		Retries: o.retries, Base: o.backoffBase, Max: o.backoffMax, Budget: o.retryBudget}}

	base := o.transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.jobs + 4
		base = t
	}
	var rt http.RoundTripper = &httpretry.Timeouts{Next: base, Header: o.headerTimeout, Idle: o.readTimeout, Stall: stallError}
	rt = &retryTransport{next: rt, policy: c.retry}
	rt = &authTransport{next: rt, endpoint: endpoint, token: token, ua: o.userAgent}
	c.hc = &http.Client{Transport: rt, CheckRedirect: c.redirect.check}
	return c, nil
}

// Endpoint is the Hub base URL the client talks to.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// Cache is the cache the client reads and writes.
func (c *Client) Cache() *Cache { return c.cache }

// Offline reports whether the client is in offline mode.
func (c *Client) Offline() bool { return c.offline }

// apiURL builds {endpoint}/api/models/{repo}/{parts...}; each part is escaped as one segment.
func (c *Client) apiURL(repoID string, parts ...string) string {
	var b strings.Builder
	b.WriteString(c.endpoint.String())
	b.WriteString("/api/models/")
	b.WriteString(repoID)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// resolveURL builds {endpoint}/{repo}/resolve/{rev}/{path}: the revision escaped whole
// ("refs/pr/1" -> "refs%2Fpr%2F1"), the path escaped per segment so its slashes stay.
func (c *Client) resolveURL(repoID, rev, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.endpoint.String() + "/" + repoID + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(segs, "/")
}

// do sends one request and turns an error status into a *HubError. The caller closes the body.
func (c *Client) do(ctx context.Context, method, rawURL string, header http.Header) (*http.Response, error) {
	if c.offline {
		return nil, fmt.Errorf("hub: %s %s: %w", method, rawURL, ErrOffline)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, fmt.Errorf("hub: %s %s: %w", method, rawURL, cause)
		}
		// net/http wraps a refused redirect in a *url.Error that repeats the target with its
		// query: a signed CDN URL, credentials and all. The RedirectError says it all already.
		var re *RedirectError
		if errors.As(err, &re) {
			return nil, re
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, markTemporary(&requestError{method: method, url: redactURLString(rawURL), err: ue})
		}
		return nil, markTemporary(fmt.Errorf("hub: %s %s: %w", method, redactURLString(rawURL), err))
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, c.hubError(resp)
	}
	return resp, nil
}

// requestError is a request that got no answer. It keeps net/http's *url.Error in the chain (a
// net.Error, which is what makes the failure worth retrying) but not in the message, where it
// would say the URL a second time, with its query.
type requestError struct {
	method, url string
	err         *url.Error
}

func (e *requestError) Error() string {
	return fmt.Sprintf("hub: %s %s: %v", e.method, e.url, e.err.Err)
}
func (e *requestError) Unwrap() error { return e.err }

func redactURLString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return redactURL(u)
}

// getJSON GETs an API URL and decodes a JSON body of at most limit bytes into v. A body that
// stalls (the transport's idle timeout) or drops is fetched again, within the retry budget.
func (c *Client) getJSON(ctx context.Context, rawURL string, limit int64, v any) (*http.Response, error) {
	var body []byte
	var resp *http.Response
	err := c.retryTransfer(ctx, "", TreeEntry{}, func(ctx context.Context) error {
		var err error
		resp, err = c.do(ctx, http.MethodGet, rawURL, http.Header{"Accept": {"application/json"}})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return transient(fmt.Errorf("hub: GET %s: reading body: %w", redactURLString(rawURL), err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("hub: GET %s: %w", rawURL, &SizeError{Want: limit, Got: int64(len(body)), Overrun: true})
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("hub: GET %s: %w: %v", rawURL, ErrInvalidResponse, err)
	}
	return resp, nil
}

// hubError maps an error answer to a *HubError, as huggingface_hub's hf_raise_for_status does.
func (c *Client) hubError(resp *http.Response) error {
	e := &HubError{
		Method:     resp.Request.Method,
		URL:        redactURL(resp.Request.URL),
		StatusCode: resp.StatusCode,
		Code:       resp.Header.Get("X-Error-Code"),
		Message:    resp.Header.Get("X-Error-Message"),
		RequestID:  resp.Header.Get("X-Request-Id"),
	}
	if bb, ok := resp.Body.(*budgetBody); ok {
		e.RetryAfter, e.BudgetLeft = bb.asked, bb.left
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if e.Message == "" {
		e.Message = errorMessageFromBody(body)
	}
	fromHub := sameOrigin(resp.Request.URL, c.endpoint)
	switch {
	case e.Code == "RevisionNotFound":
		e.Err = ErrRevisionNotFound
	case e.Code == "EntryNotFound":
		e.Err = ErrEntryNotFound
	case e.Code == "GatedRepo":
		e.Err = ErrGatedRepo
	case e.Code == "RepoNotFound":
		e.Err = ErrRepoNotFound
	case resp.StatusCode == http.StatusForbidden && e.Message == "Access to this resource is disabled.":
		e.Err = ErrRepoDisabled
	case resp.StatusCode == http.StatusUnauthorized && fromHub &&
		e.Message != "" && e.Message != "Invalid credentials in Authorization header":
		// The Hub answers 401 for private repos an anonymous caller cannot see.
		e.Err = ErrRepoNotFound
	case resp.StatusCode == http.StatusUnauthorized:
		e.Err = ErrUnauthorized
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Err = ErrRateLimited
	}
	return e
}

// errorMessageFromBody reads {"error":"…"}, {"error":["…"]} or {"errors":[{"message":"…"}]}.
// A non-JSON body (the Hub's 429 can be HTML) gives no message.
func errorMessageFromBody(body []byte) string {
	var v struct {
		Error  json.RawMessage `json:"error"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(v.Error, &list) == nil {
		return strings.Join(list, "; ")
	}
	msgs := make([]string, 0, len(v.Errors))
	for _, m := range v.Errors {
		msgs = append(msgs, m.Message)
	}
	return strings.Join(msgs, "; ")
}
