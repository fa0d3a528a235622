package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/internal/testtools"
)

func TestRetryAfterBeyondTheBudgetFailsAtOnceSayingSo(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"config.json": []byte("{}")}),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 503, RetryAfter: "120", Route: hubtest.RouteAPI}))
	c, waits := retryClient(t, ts, 5) // budget: one minute
	_, err := c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"})
	var he *HubError
	if !errors.As(err, &he) || he.RetryAfter != 2*time.Minute || !errors.Is(err, ErrRetryBudget) || !errors.Is(err, ErrTemporary) {
		t.Fatalf("error %v, want the 503 marked with its Retry-After beyond the budget", err)
	}
	if !strings.Contains(err.Error(), "retry after 2m0s, beyond") {
		t.Errorf("message %q does not say why it was not retried", err)
	}
	if len(waits()) != 0 {
		t.Errorf("waited %v before failing", waits())
	}
}

func TestNotFoundIsNotTemporaryButServerErrorsAre(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"config.json": []byte("{}")}))
	c, _ := retryClient(t, ts, 1)
	_, err := c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "absent"})
	if !errors.Is(err, ErrRepoNotFound) || errors.Is(err, ErrTemporary) {
		t.Errorf("missing repo: %v; want ErrRepoNotFound, not temporary", err)
	}
	ts.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 500, Route: hubtest.RouteAPI})
	_, err = c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"})
	if !errors.Is(err, ErrTemporary) {
		t.Errorf("500: %v; want temporary", err)
	}
}

func TestUnreachableHubIsTemporary(t *testing.T) {
	// A port that refuses every connection for the whole test (a closed server's port could be
	// taken by another server meanwhile, and answer).
	c, err := NewClient(WithEnv(func(string) string { return "" }), WithEndpoint("http://"+testtools.RefusingAddr(t)),
		WithCacheDir(t.TempDir()), WithRetry(1, time.Millisecond, time.Millisecond, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"})
	if err == nil || !errors.Is(err, ErrTemporary) {
		t.Fatalf("error %v, want a temporary failure", err)
	}
}

func TestDiskAndNetworkFailuresAreTemporaryButAnswersAboutTheModelAreNot(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "write", Path: "blobs/x.incomplete", Err: syscall.ENOSPC}, true},
		{&FileError{Path: "a", Err: fmt.Errorf("writing staging file: %w", &os.PathError{Op: "write", Err: syscall.EIO})}, true},
		{&os.PathError{Op: "open", Path: ".locks/x.lock", Err: syscall.EMFILE}, true},
		{&os.PathError{Op: "open", Path: "blobs", Err: syscall.EACCES}, false},
		{&FileError{Path: "a", Err: &DigestError{Algorithm: "sha256"}}, false},
		{&HubError{StatusCode: 404, Err: ErrRepoNotFound}, false},
		{&HubError{StatusCode: 502}, true},
		{fmt.Errorf("hub: GET x: %w", &StallError{Host: "h", Wait: time.Second}), true},
		{context.Canceled, false},
	} {
		if got := errors.Is(markTemporary(tc.err), ErrTemporary); got != tc.want {
			t.Errorf("%v: temporary %v, want %v", tc.err, got, tc.want)
		}
	}
}
