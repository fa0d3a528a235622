package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// An error names the package once, however many layers of the client wrapped it: people read
// these lines in kubectl logs and audit records.
func TestErrorsSayRegistryOnce(t *testing.T) {
	ts := registrytest.NewServer(t)
	ts.PushManifest(t, "acme/m", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("weights")))))
	c := testClient(t)
	ctx := context.Background()
	var errs []error

	_, err := c.Open(ctx, mustParse(t, ts.Ref("acme/m", "missing")))
	errs = append(errs, err)
	_, err = c.Open(ctx, mustParse(t, ts.Ref("acme/nothing", "v1")))
	errs = append(errs, err)
	_, err = c.Open(ctx, mustParse(t, "oci://"+ts.Host+"/acme/m@sha256:"+strings.Repeat("0", 64)))
	errs = append(errs, err)

	art, err := c.Open(ctx, mustParse(t, ts.Ref("acme/m", "v1")))
	if err != nil {
		t.Fatal(err)
	}
	ts.AddFault(registrytest.Fault{Kind: registrytest.FaultCorrupt, Route: registrytest.RouteBlobs})
	_, err = c.Pull(ctx, art, t.TempDir()+"/m", Limits{})
	errs = append(errs, err)
	ts.ClearFaults()
	ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: 503, Route: registrytest.RouteBlobs})
	_, err = c.Pull(ctx, art, t.TempDir()+"/m", Limits{})
	errs = append(errs, err)
	// A layer whose bytes stop coming is an outage, not a malformed archive: the gzip and tar
	// readers' complaints about the cut stream must not turn it into a refusal of the content.
	if !errors.Is(err, ErrTemporary) || errors.Is(err, ErrUnsafeArchive) {
		t.Errorf("a layer that kept failing with 503: %v; want ErrTemporary, not ErrUnsafeArchive", err)
	}
	ts.ClearFaults()
	ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: 503, Route: registrytest.RouteManifests})
	_, err = c.Signatures(ctx, art.Reference, art.Digest)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if n := strings.Count(err.Error(), "registry: "); n != 1 || !strings.HasPrefix(err.Error(), "registry: ") {
			t.Errorf("case %d: %q says \"registry: \" %d times", i, err, n)
		}
	}
}
