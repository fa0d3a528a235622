package hub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
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
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", map[string][]byte{"config.json": []byte("{}")}))
	c, _ := retryClient(t, ts, 1)
	ts.Hub.Close() // nothing listens there any more
	_, err := c.ResolveRevision(context.Background(), Reference{Namespace: "acme", Name: "m"})
	if err == nil || !errors.Is(err, ErrTemporary) {
		t.Fatalf("error %v, want a temporary failure", err)
	}
}
