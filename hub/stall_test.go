package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// stallClient is a client with short timeouts, many retries and a small retry budget, so that
// only the budget can end a persistent fault.
func stallClient(t *testing.T, ts *hubtest.TestServer) *hub.Client {
	return newClient(t, ts, hub.WithTimeouts(time.Second, 100*time.Millisecond),
		hub.WithRetry(1000, time.Millisecond, time.Millisecond, 400*time.Millisecond))
}

func TestStalledAPIBodyFailsWithinTheBudget(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, Route: hubtest.RouteAPI, After: 3}))
	c := stallClient(t, ts)
	_, err := c.ResolveRevision(context.Background(), hub.Reference{Namespace: "acme", Name: "tiny-model"})
	for _, target := range []error{hub.ErrStalled, hub.ErrRetryBudget, hub.ErrTemporary} {
		if !errors.Is(err, target) {
			t.Errorf("error %v does not match %v", err, target)
		}
	}
}

func TestStalledAPIBodyOnceIsFetchedAgain(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, Route: hubtest.RouteAPI, After: 3, Times: 1}))
	c := stallClient(t, ts)
	want, _ := ts.Resolve(repoID, "main")
	got, err := c.ResolveRevision(context.Background(), hub.Reference{Namespace: "acme", Name: "tiny-model"})
	if err != nil || got != want {
		t.Fatalf("resolve: %s, %v; want %s", got, err, want)
	}
}

func TestStalledSignatureBodyFailsWithinTheBudget(t *testing.T) {
	files := faultRepo()
	files["model.sig"] = []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, File: "model.sig", After: 5}))
	c := stallClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	_, err := c.ReadFile(context.Background(), repoID, commit, "model.sig", 1<<20)
	if !errors.Is(err, hub.ErrStalled) || !errors.Is(err, hub.ErrTemporary) {
		t.Fatalf("error %v, want a stall (temporary)", err)
	}
}

func TestEndlessEmptyTreePagesEnd(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultEndlessPages, Route: hubtest.RouteAPI}))
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	_, err := c.ListTree(context.Background(), repoID, commit)
	if !errors.Is(err, hub.ErrInvalidResponse) || !strings.Contains(err.Error(), "empty page") {
		t.Fatalf("error %v, want an invalid response naming the empty page", err)
	}
	if n := len(ts.Requests()); n > 1 {
		t.Errorf("%d tree requests, want the first page only", n)
	}
}

func TestPersistentlyStalledDownloadEndsOnTheRetryBudget(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, File: "model.safetensors", After: 10}))
	c := stallClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	tree, err := c.ListTree(context.Background(), repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Download(context.Background(), repoID, commit, tree)
	// 1000 retries are allowed: only the budget can have ended it.
	assertCleanFailure(t, c, err, hub.ErrRetryBudget, "model.safetensors")
	for _, target := range []error{hub.ErrStalled, hub.ErrTemporary} {
		if !errors.Is(err, target) {
			t.Errorf("error %v does not match %v", err, target)
		}
	}
}
