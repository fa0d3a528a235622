package httpretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// errStall is the sentinel the tests' Stall errors match.
var errStall = errors.New("stalled")

type stall struct {
	host    string
	wait    time.Duration
	headers bool
}

func (s *stall) Error() string {
	return fmt.Sprintf("%s stalled for %v (headers %v)", s.host, s.wait, s.headers)
}
func (s *stall) Is(target error) bool { return target == errStall }

func newStall(host string, wait time.Duration, headers bool) error {
	return &stall{host: host, wait: wait, headers: headers}
}

// roundTripFunc answers a request with f.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// stalledBody delivers nothing until the request's context ends, as a connection does whose
// server stopped sending: then it fails as net/http's body does.
type stalledBody struct{ ctx context.Context }

func (b stalledBody) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}
func (b stalledBody) Close() error { return nil }

// tricklingBody delivers one byte a read, each after pause, n in all.
type tricklingBody struct {
	pause time.Duration
	n     int
}

func (b *tricklingBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	b.n--
	p[0] = 'x'
	return 1, nil
}
func (b *tricklingBody) Close() error { return nil }

func get(t *testing.T, rt http.RoundTripper, ctx context.Context) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://example.test/blob", nil)
	if err != nil {
		t.Fatal(err)
	}
	return rt.RoundTrip(req)
}

// readAllWithin reads body to its end, failing the test if that takes longer than a bound far
// beyond any timeout under test: the bound catches a hang, it measures nothing.
func readAllWithin(t *testing.T, body io.Reader) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(body)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(time.Minute):
		t.Fatal("the read did not end")
		return nil, nil
	}
}

func TestIdleTimeoutFailsAStalledBodyWithTheCallersError(t *testing.T) {
	rt := &Timeouts{Idle: 20 * time.Millisecond, Stall: newStall,
		Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: stalledBody{r.Context()}}, nil
		})}
	resp, err := get(t, rt, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = readAllWithin(t, resp.Body)
	var s *stall
	if !errors.As(err, &s) || s.headers || s.host != "example.test" || s.wait != 20*time.Millisecond {
		t.Fatalf("read error = %v, want the body stall of example.test after 20ms", err)
	}
}

func TestIdleTimeoutSparesASlowButMovingBody(t *testing.T) {
	// Each read waits a hundredth of the idle timeout (a wide margin on a loaded machine), and
	// the whole body takes longer than the idle timeout: only a read that waits the whole
	// timeout is a stall, not a transfer that is slow overall.
	const idle = time.Second
	rt := &Timeouts{Idle: idle, Stall: newStall,
		Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: &tricklingBody{pause: idle / 100, n: 150}}, nil
		})}
	resp, err := get(t, rt, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := readAllWithin(t, resp.Body)
	if err != nil || len(b) != 150 {
		t.Fatalf("read %d bytes, err %v; want all 150 and no error", len(b), err)
	}
}

func TestIdleTimeoutDoesNotCountTheCallersPauses(t *testing.T) {
	// The caller stops between reads for longer than the idle timeout (a slow disk): the
	// server is not waiting on anyone, so the body must not fail.
	const idle = 20 * time.Millisecond
	rt := &Timeouts{Idle: idle, Stall: newStall,
		Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("abc"))}, nil
		})}
	resp, err := get(t, rt, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := make([]byte, 1)
	for i := range 3 {
		time.Sleep(3 * idle)
		if n, err := resp.Body.Read(p); n != 1 || err != nil {
			t.Fatalf("read %d after a pause: n=%d err=%v", i, n, err)
		}
	}
}

func TestHeaderTimeoutFailsARequestWithNoAnswer(t *testing.T) {
	rt := &Timeouts{Header: 20 * time.Millisecond, Stall: newStall,
		Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})}
	_, err := get(t, rt, context.Background())
	var s *stall
	if !errors.As(err, &s) || !s.headers || s.wait != 20*time.Millisecond {
		t.Fatalf("error = %v, want the header stall after 20ms", err)
	}
}

func TestTheCallersCancellationIsNotTakenForAStall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Timeouts{Header: time.Hour, Idle: time.Hour, Stall: newStall,
		Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			cancel()
			<-r.Context().Done()
			return nil, r.Context().Err()
		})}
	_, err := get(t, rt, ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, errStall) {
		t.Fatalf("error = %v, want context.Canceled and no stall", err)
	}
}

func TestClosingTheBodyEndsTheRequestsContext(t *testing.T) {
	var reqCtx context.Context
	rt := &Timeouts{Idle: time.Hour, Stall: newStall,
		Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			reqCtx = r.Context()
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
		})}
	resp, err := get(t, rt, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if reqCtx.Err() != nil {
		t.Fatal("the request's context ended before the body was closed")
	}
	resp.Body.Close()
	resp.Body.Close() // a second Close is harmless
	if reqCtx.Err() == nil {
		t.Fatal("closing the body left the request's context (and its timer) alive")
	}
}

func TestNoBoundsPassesTheRequestThrough(t *testing.T) {
	body := io.NopCloser(strings.NewReader("x"))
	rt := &Timeouts{Stall: newStall, Next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: body}, nil
	})}
	resp, err := get(t, rt, context.Background())
	if err != nil || resp.Body != body {
		t.Fatalf("with no bounds the body was wrapped (err %v)", err)
	}
}

func TestCapTimeoutsShortensButNeverLiftsABound(t *testing.T) {
	rt := &Timeouts{Header: 10 * time.Second, Idle: 0}
	for _, c := range []struct {
		cap          time.Duration
		header, idle time.Duration
	}{
		{5 * time.Second, 5 * time.Second, 5 * time.Second}, // an unbounded idle gets the cap
		{time.Minute, 10 * time.Second, time.Minute},
		{-time.Second, time.Millisecond, time.Millisecond}, // a spent budget still bounds
	} {
		h, i := rt.limits(CapTimeouts(context.Background(), c.cap))
		if h != c.header || i != c.idle {
			t.Errorf("cap %v: header %v idle %v, want %v %v", c.cap, h, i, c.header, c.idle)
		}
	}
	if h, i := rt.limits(context.Background()); h != 10*time.Second || i != 0 {
		t.Errorf("uncapped: header %v idle %v, want 10s 0", h, i)
	}
}

func TestBackoffDoublesUpToMax(t *testing.T) {
	p := &Policy{Base: time.Second, Max: 8 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, w := range want {
		if got := p.Backoff(i); got != w*time.Second {
			t.Errorf("Backoff(%d) = %v, want %v", i, got, w*time.Second)
		}
	}
	if got := (&Policy{}).Backoff(5); got != 0 {
		t.Errorf("zero policy Backoff = %v, want 0", got)
	}
}

// fakeClock is a clock that moves only when the policy sleeps on it.
type fakeClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) policy(retries int, budget time.Duration) *Policy {
	return &Policy{Retries: retries, Base: time.Second, Max: 8 * time.Second, Budget: budget,
		Now: func() time.Time { return c.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			c.slept = append(c.slept, d)
			c.now = c.now.Add(d)
			return nil
		}}
}

func TestTheRetryBudgetEndsAnEndlessFailure(t *testing.T) {
	c := &fakeClock{now: time.Unix(1e9, 0)}
	p := c.policy(1000, 30*time.Second)
	var deadline time.Time
	attempt := 0
	for ; attempt < 1000; attempt++ {
		c.now = c.now.Add(2 * time.Second) // each try itself takes time, too
		deadline = p.Deadline(deadline)
		wait := p.Backoff(attempt)
		v := p.Judge(attempt, wait, deadline)
		if v == OutOfBudget {
			break
		}
		if v != Retry {
			t.Fatalf("attempt %d: verdict %v, want Retry or OutOfBudget", attempt, v)
		}
		if err := p.Wait(context.Background(), wait); err != nil {
			t.Fatal(err)
		}
	}
	// 1+2+4+8 s of waits and 5 tries of 2 s fit in 30 s from the first failure; the next 8 s wait does not.
	if attempt != 4 || len(c.slept) != 4 {
		t.Fatalf("gave up at attempt %d after %d waits (%v), want at attempt 4 after 4", attempt, len(c.slept), c.slept)
	}
	if spent := c.now.Sub(deadline.Add(-30 * time.Second)); spent > 30*time.Second {
		t.Fatalf("spent %v of a 30s budget", spent)
	}
}

func TestAServerWaitBeyondTheBudgetIsRefusedAtOnce(t *testing.T) {
	c := &fakeClock{now: time.Unix(1e9, 0)}
	p := c.policy(5, 30*time.Second)
	deadline := p.Deadline(time.Time{})
	if v := p.Judge(0, time.Minute, deadline); v != OutOfBudget {
		t.Fatalf("a Retry-After of 1m within a 30s budget: verdict %v, want OutOfBudget", v)
	}
	if v := p.Judge(0, 30*time.Second, deadline); v != OutOfBudget {
		t.Fatalf("a wait that ends exactly at the deadline leaves no time to try: verdict %v, want OutOfBudget", v)
	}
	if v := p.Judge(0, 29*time.Second, deadline); v != Retry {
		t.Fatalf("a wait within the budget: verdict %v, want Retry", v)
	}
	if len(c.slept) != 0 {
		t.Fatalf("judging slept %v", c.slept)
	}
}

func TestTheRetryCountEndsBeforeTheBudget(t *testing.T) {
	c := &fakeClock{now: time.Unix(1e9, 0)}
	p := c.policy(2, time.Hour)
	deadline := p.Deadline(time.Time{})
	for attempt, want := range []Verdict{Retry, Retry, OutOfRetries} {
		if v := p.Judge(attempt, time.Second, deadline); v != want {
			t.Fatalf("attempt %d: verdict %v, want %v", attempt, v, want)
		}
	}
	if later := p.Deadline(deadline); !later.Equal(deadline) {
		t.Fatal("Deadline moved a budget already running")
	}
}

func TestSleepEndsWithTheContextsCause(t *testing.T) {
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if err := Sleep(ctx, time.Hour); !errors.Is(err, cause) {
		t.Fatalf("Sleep = %v, want the cause", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on an ended context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
	if err := (&Policy{}).Wait(ctx, time.Hour); !errors.Is(err, cause) {
		t.Fatalf("Policy.Wait without a Sleep = %v, want the package's Sleep", err)
	}
}

func TestRetryableStatusIsTimeoutsRateLimitsAndServerErrors(t *testing.T) {
	for code, want := range map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true,
		200: false, 206: false, 400: false, 401: false, 403: false, 404: false, 416: false, 501: false} {
		if RetryableStatus(code) != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", code, !want, want)
		}
	}
}
