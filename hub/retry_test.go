package hub

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// retryClient is a client for ts whose retry waits are recorded instead of slept. Its requests
// are counted in sent.
func retryClient(t *testing.T, ts *hubtest.TestServer, retries int) (*Client, func() []time.Duration) {
	t.Helper()
	rt := &countingTransport{}
	c, err := NewClient(WithEnv(func(string) string { return "" }), WithEndpoint(ts.URL), WithCacheDir(t.TempDir()),
		WithAllowedRedirectHosts(ts.CDNHost()), WithRetry(retries, time.Second, 8*time.Second, time.Minute),
		WithTransport(rt))
	if err != nil {
		t.Fatal(err)
	}
	sentBy.Store(c, rt)
	var mu sync.Mutex
	var waits []time.Duration
	c.retry.sleepCtx = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, func() []time.Duration { mu.Lock(); defer mu.Unlock(); return slices.Clone(waits) }
}

func TestRetriesHonourRateLimitAndRetryAfterThenBackOff(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"config.json": []byte("{}")}))
	ts.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 429, RateLimit: `"api";r=0;t=4`, Route: hubtest.RouteAPI, Times: 1})
	ts.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 503, RetryAfter: "7", Route: hubtest.RouteAPI, Times: 1})
	ts.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 502, Route: hubtest.RouteAPI, Times: 3})
	c, waits := retryClient(t, ts, 6)
	if _, err := c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"}); err != nil {
		t.Fatal(err)
	}
	// RateLimit t=4 means 5 s (t+1, as huggingface_hub), Retry-After 7 s, then 1 s doubling.
	want := []time.Duration{5 * time.Second, 7 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if got := waits(); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
}

func TestRetriesStopAfterTheLimitWithTheHubsAnswer(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"config.json": []byte("{}")}),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 503, Route: hubtest.RouteAPI}))
	c, waits := retryClient(t, ts, 3)
	_, err := c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"})
	var he *HubError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("error %v, want the final 503", err)
	}
	if got := waits(); !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
		t.Errorf("waits %v", got)
	}
	api := 0
	for _, r := range loggedRequests(t, ts, c) {
		if !r.CDN {
			api++
		}
	}
	if api != 4 {
		t.Errorf("%d requests, want 1 + 3 retries", api)
	}
}

func TestRetryAfterLongerThanTheLimitIsNotWaitedFor(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"config.json": []byte("{}")}),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 429, RetryAfter: "3600", Route: hubtest.RouteAPI}))
	c, waits := retryClient(t, ts, 3)
	_, err := c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"})
	if !errors.Is(err, ErrRateLimited) || len(waits()) != 0 {
		t.Fatalf("error %v after waits %v, want ErrRateLimited at once", err, waits())
	}
}

type countingTransport struct {
	mu sync.Mutex
	n  int
}

// loggedRequests returns what ts has received once it has logged every request c sent through
// its countingTransport: hubtest logs a request when its handler returns, which can be after
// the client has its answer.
func loggedRequests(t *testing.T, ts *hubtest.TestServer, c *Client) []hubtest.Request {
	t.Helper()
	v, ok := sentBy.Load(c)
	if !ok {
		t.Fatal("the client was not made by retryClient")
	}
	rt := v.(*countingTransport)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		rt.mu.Lock()
		sent := rt.n
		rt.mu.Unlock()
		if reqs := ts.Requests(); len(reqs) >= sent {
			return reqs
		} else if time.Now().After(deadline) {
			t.Fatalf("the server logged %d requests, but %d were answered", len(reqs), sent)
		}
	}
}

// sentBy holds the countingTransport of each client retryClient made.
var sentBy sync.Map // *Client -> *countingTransport

// RoundTrip counts the requests that got an answer: each of them reached the server's handler.
func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return resp, err
}

func TestWithTransportCarriesEveryRequest(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"model.safetensors": []byte("w")}))
	rt := &countingTransport{}
	c, err := NewClient(WithEnv(func(string) string { return "" }), WithEndpoint(ts.URL), WithCacheDir(t.TempDir()),
		WithAllowedRedirectHosts(ts.CDNHost()), WithTransport(rt))
	if err != nil {
		t.Fatal(err)
	}
	commit, _ := ts.Resolve("acme/m", "main")
	if _, err := c.ReadFile(context.Background(), "acme/m", commit, "model.safetensors", 10); err != nil {
		t.Fatal(err)
	}
	if rt.n != 2 { // the resolve and the CDN hop
		t.Errorf("transport carried %d requests, want 2", rt.n)
	}
}
