package modelverify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// verifierWith is the gate's Verifier for its policy, with more options.
func (g *gate) verifierWith(opts ...modelverify.Option) *modelverify.Verifier {
	g.t.Helper()
	g.verifier()
	v, err := modelverify.NewVerifier(g.policy, append([]modelverify.Option{
		modelverify.WithEndpoint(g.hub.URL), modelverify.WithCacheDir(g.cacheDir),
	}, opts...)...)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { v.Close() })
	return v
}

func TestVerifyDeadlineEndsAStalledPullAsATemporaryFailure(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, File: "model.safetensors", After: 10}))
	// The Hub client alone would wait a minute per read: the deadline ends it first.
	v := g.verifierWith(modelverify.WithTimeout(300*time.Millisecond), modelverify.WithHubOptions(hub.WithToken("")))
	_, err := v.Verify(context.Background(), "hf://acme/tiny@main")
	for _, target := range []error{context.DeadlineExceeded, modelverify.ErrTemporary, modelverify.ErrHub} {
		if !errors.Is(err, target) {
			t.Errorf("error %v does not match %v", err, target)
		}
	}
	// Nothing published; what was fetched stays as .incomplete files, for the retry to resume.
	repoDir := filepath.Join(g.cacheDir, hub.RepoFolderName("acme/tiny"))
	if entries, _ := os.ReadDir(filepath.Join(repoDir, "snapshots")); len(entries) != 0 {
		t.Errorf("a snapshot was published: %v", entries)
	}
	blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
	for _, b := range blobs {
		if !strings.HasSuffix(b.Name(), ".incomplete") && !strings.HasSuffix(b.Name(), ".prefix") {
			t.Errorf("blob %s was published", b.Name())
		}
	}
	g.assertRefusedRecord(modelverify.ErrHub)
}

func TestTemporaryFailuresAreToldFromRefusals(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifierWith(modelverify.WithHubOptions(hub.WithToken(""),
		hub.WithRetry(1, time.Millisecond, time.Millisecond, time.Second)))
	ctx := context.Background()

	_, err := v.Verify(ctx, "hf://acme/absent@main")
	if !errors.Is(err, modelverify.ErrHub) || errors.Is(err, modelverify.ErrTemporary) {
		t.Errorf("missing repository: %v; want hub-error, not temporary", err)
	}
	g.hub.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 503, Route: hubtest.RouteAPI})
	_, err = v.Verify(ctx, "hf://acme/tiny@main")
	if !errors.Is(err, modelverify.ErrHub) || !errors.Is(err, modelverify.ErrTemporary) {
		t.Errorf("503: %v; want hub-error, temporary", err)
	}
	g.hub.ClearFaults()
	g.hub.Hub.Close()
	_, err = v.Verify(ctx, "hf://acme/tiny@main")
	if !errors.Is(err, modelverify.ErrHub) || !errors.Is(err, modelverify.ErrTemporary) {
		t.Errorf("unreachable Hub: %v; want hub-error, temporary", err)
	}
}
