package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/internal/testtools"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// bigModel pushes a modelcar whose layer is large enough to be cut mid-way.
// The second result is the content of its one file; layerDigest(m) names its layer.
func bigModel(t *testing.T, ts *registrytest.TestServer, repo string) (registrytest.Descriptor, string) {
	t.Helper()
	body := strings.Repeat("weights!", 64<<10) // 512 KiB
	m := registrytest.Modelcar(registrytest.Tar(registrytest.File("models/model.bin", []byte(body))))
	m.Layers[0].MediaType = registrytest.MediaTypeLayerTar
	m.Layers[0].Data = registrytest.Tar(registrytest.File("models/model.bin", []byte(body)))
	d := ts.PushManifest(t, repo, "v1", m)
	bigLayer = m.Layers[0].Descriptor().Digest
	return d, body
}

// bigLayer is the digest of bigModel's layer (the same for every call).
var bigLayer string

func pulledBody(t *testing.T, p *Pulled) string { return readTree(t, p)["model.bin"] }

func TestTransientFaultsAreRetriedAndTheLayerResumed(t *testing.T) {
	for name, f := range map[string]registrytest.Fault{
		"503 on the blob":     {Kind: registrytest.FaultStatus, Status: http.StatusServiceUnavailable, Route: registrytest.RouteBlobs, Times: 2},
		"503 on the manifest": {Kind: registrytest.FaultStatus, Status: http.StatusServiceUnavailable, Route: registrytest.RouteManifests, Times: 2},
		"dropped connection":  {Kind: registrytest.FaultDropConnection, After: 100 << 10, Route: registrytest.RouteBlobs, Times: 1},
		"stall":               {Kind: registrytest.FaultStall, After: 100 << 10, Route: registrytest.RouteBlobs, Times: 1},
		"range ignored":       {Kind: registrytest.FaultIgnoreRange, Route: registrytest.RouteBlobs, Times: 1},
	} {
		t.Run(name, func(t *testing.T) {
			ts := registrytest.NewServer(t)
			_, body := bigModel(t, ts, "acme/big")
			if name == "range ignored" { // a drop first, so that the retry asks for a range
				ts.AddFault(registrytest.Fault{Kind: registrytest.FaultDropConnection, After: 100 << 10, Route: registrytest.RouteBlobs, Digest: bigLayer, Times: 1})
			}
			if f.Route == registrytest.RouteBlobs {
				f.Digest = bigLayer
			}
			ts.AddFault(f)
			var retries int
			c := testClient(t, WithTimeouts(5*time.Second, 200*time.Millisecond), WithProgress(func(p Progress) {
				if p.State == ProgressRetry {
					retries++
				}
			}))
			_, p, err := pull(t, c, ts.Ref("acme/big", "v1"), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if pulledBody(t, p) != body {
				t.Fatal("pulled content differs")
			}
			if (name == "dropped connection" || name == "stall") && retries == 0 {
				t.Fatal("no retry reported")
			}
		})
	}
}

func TestADroppedTransferResumesWithARange(t *testing.T) {
	ts := registrytest.NewServer(t)
	d, _ := bigModel(t, ts, "acme/big")
	_ = d
	ts.AddFault(registrytest.Fault{Kind: registrytest.FaultDropConnection, After: 100 << 10, Route: registrytest.RouteBlobs, Digest: bigLayer, Times: 1})
	var resumedFrom int64 = -1
	c := testClient(t, WithProgress(func(p Progress) {
		if p.State == ProgressRetry && p.Attempt == 1 {
			resumedFrom = p.Complete
		}
	}))
	if _, _, err := pull(t, c, ts.Ref("acme/big", "v1"), Limits{}); err != nil {
		t.Fatal(err)
	}
	if resumedFrom <= 0 {
		t.Fatalf("the retry started from byte %d, want a resumption", resumedFrom)
	}
}

func TestWrongBytesAreRefusedAndNotRetried(t *testing.T) {
	for name, f := range map[string]registrytest.Fault{
		"corrupt":   {Kind: registrytest.FaultCorrupt, Route: registrytest.RouteBlobs},
		"long body": {Kind: registrytest.FaultLongBody, Extra: 10, Route: registrytest.RouteBlobs},
	} {
		t.Run(name, func(t *testing.T) {
			ts := registrytest.NewServer(t)
			bigModel(t, ts, "acme/big")
			c := testClient(t)
			art := openRef(t, c, ts.Ref("acme/big", "v1"))
			f.Digest = bigLayer
			ts.AddFault(f)
			before := blobGets(ts)
			_, err := c.Pull(context.Background(), art, t.TempDir()+"/m", Limits{})
			var de *DigestError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DigestError", err)
			}
			if name == "corrupt" && (!errors.Is(err, ErrDigestMismatch) || de.Expected != art.Layers[0].Descriptor.Digest.String()) {
				t.Fatalf("err = %v, want ErrDigestMismatch naming the layer digest", err)
			}
			if name == "long body" && !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("err = %v, want ErrSizeMismatch", err)
			}
			if n := blobGets(ts) - before; n != 1 {
				t.Fatalf("%d blob requests, want 1: wrong bytes are not retried", n)
			}
		})
	}
}

func TestAPersistent503EndsWithinTheRetryBudget(t *testing.T) {
	ts := registrytest.NewServer(t)
	bigModel(t, ts, "acme/big")
	ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: http.StatusServiceUnavailable, Route: registrytest.RouteBlobs})
	_, _, err := pull(t, testClient(t), ts.Ref("acme/big", "v1"), Limits{})
	if !errors.Is(err, ErrTemporary) {
		t.Fatalf("err = %v, want ErrTemporary", err)
	}
}

func TestATagThatMovesAfterResolutionChangesNothing(t *testing.T) {
	ts := registrytest.NewServer(t)
	first := ts.PushManifest(t, "acme/m", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("first")))))
	c := testClient(t)
	art := openRef(t, c, ts.Ref("acme/m", "v1"))
	ts.PushManifest(t, "acme/m", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("moved")))))
	p, err := c.Pull(context.Background(), art, t.TempDir()+"/m", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, p)["a"]; got != "first" || art.Digest.String() != first.Digest {
		t.Fatalf("pulled %q from %s, want the first image %s", got, art.Digest, first.Digest)
	}
}

func TestCredentialsComeFromTheDockerConfigAndNeverReachTheStorageHost(t *testing.T) {
	ts := registrytest.NewServer(t, registrytest.WithBasicAuth("robot", "s3cret"), registrytest.WithBlobRedirects())
	ts.PushManifest(t, "acme/private", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("private")))))
	auth := base64.StdEncoding.EncodeToString([]byte("robot:s3cret"))
	cfg := writeDockerConfig(t, `{"auths":{"`+ts.Host+`":{"auth":"`+auth+`"}}}`)

	_, p, err := pull(t, testClient(t, WithDockerConfig(cfg)), ts.Ref("acme/private", "v1"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, p); !maps.Equal(got, map[string]string{"a": "private"}) {
		t.Fatalf("files = %v", got)
	}
	seen := ts.StorageAuthorizations()
	if len(seen) == 0 {
		t.Fatal("no blob went through the storage host")
	}
	for _, a := range seen {
		if a != "" {
			t.Fatalf("the storage host received Authorization %q", a)
		}
	}
	// Without credentials: unauthorized, by name.
	_, _, err = pull(t, testClient(t), ts.Ref("acme/private", "v1"), Limits{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous: err = %v, want ErrUnauthorized", err)
	}
}

func TestDockerConfigFromDOCKER_CONFIGAndAnExplicitPath(t *testing.T) {
	ts := registrytest.NewServer(t, registrytest.WithBasicAuth("u", "p"))
	ts.PushManifest(t, "acme/m", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/a", []byte("x")))))
	cfg := writeDockerConfig(t, `{"auths":{"https://`+ts.Host+`":{"username":"u","password":"p"}}}`)
	dir := cfg[:strings.LastIndex(cfg, "/")]
	c, err := NewClient(WithEnv(func(k string) string {
		if k == "DOCKER_CONFIG" {
			return dir
		}
		return ""
	}), WithRetry(0, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pull(t, c, ts.Ref("acme/m", "v1"), Limits{}); err != nil {
		t.Fatalf("DOCKER_CONFIG: %v", err)
	}
	// An explicit config path that does not exist is an error, not anonymous access.
	if _, err := NewClient(WithDockerConfig(dir + "/missing.json")); err == nil {
		t.Fatal("a missing explicit Docker config was accepted")
	}
	if _, err := NewClient(WithDockerConfig(writeDockerConfig(t, `{"auths":{"x.io":{"auth":"!!"}}}`))); err == nil {
		t.Fatal("an undecodable auth entry was accepted")
	}
}

// recorder is a RoundTripper that records the requests it is given.
type recorder struct{ reqs []*http.Request }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.reqs = append(r.reqs, req)
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

func TestPlainHTTPGoesOnlyToLoopbackAndRedirectsCarryNoCredentials(t *testing.T) {
	rec := &recorder{}
	g := &guardTransport{next: rec, registry: "10.0.0.5:5000"}
	// go-containerregistry picks http:// for private addresses: upgraded.
	req, _ := http.NewRequest("GET", "http://10.0.0.5:5000/v2/", nil)
	req.Header.Set("Authorization", "Bearer t")
	if _, err := g.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if got := rec.reqs[0]; got.URL.Scheme != "https" || got.Header.Get("Authorization") != "Bearer t" {
		t.Fatalf("sent %s with %q", got.URL, got.Header.Get("Authorization"))
	}
	// A redirect to plain HTTP elsewhere is refused.
	prev := &http.Response{Request: req}
	r2, _ := http.NewRequest("GET", "http://storage.example/blob", nil)
	r2.Response = prev
	if _, err := g.RoundTrip(r2); !errors.Is(err, ErrPlainHTTP) {
		t.Fatalf("err = %v, want ErrPlainHTTP", err)
	}
	// A redirect to another host over https loses the credential; to the registry it keeps it.
	r3, _ := http.NewRequest("GET", "https://storage.example/blob?sig=x", nil)
	r3.Header.Set("Authorization", "Bearer t")
	r3.Response = prev
	r4, _ := http.NewRequest("GET", "https://10.0.0.5:5000/v2/x", nil)
	r4.Header.Set("Authorization", "Bearer t")
	r4.Response = prev
	g.RoundTrip(r3)
	g.RoundTrip(r4)
	if a := rec.reqs[1].Header.Get("Authorization"); a != "" {
		t.Fatalf("the storage host got %q", a)
	}
	if a := rec.reqs[2].Header.Get("Authorization"); a != "Bearer t" {
		t.Fatalf("the registry lost its credential on a same-host redirect: %q", a)
	}
	// Loopback may use plain HTTP.
	r5, _ := http.NewRequest("GET", "http://127.0.0.1:5000/v2/", nil)
	if _, err := g.RoundTrip(r5); err != nil || rec.reqs[3].URL.Scheme != "http" {
		t.Fatalf("loopback: %v %v", err, rec.reqs[3].URL)
	}
	_ = url.URL{}
}

// blobGets counts the blob downloads the registry served.
func blobGets(ts *registrytest.TestServer) int {
	n := 0
	for _, r := range ts.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/") {
			n++
		}
	}
	return n
}

func TestAnUnreachableRegistryIsATemporaryFailureAfterTheBudget(t *testing.T) {
	ref := "oci://" + testtools.RefusingAddr(t) + "/acme/m:v1" // a port that refuses connections
	_, err := testClient(t).Open(context.Background(), mustParse(t, ref))
	if !errors.Is(err, ErrTemporary) || !errors.Is(err, ErrRetryBudget) {
		t.Fatalf("err = %v, want ErrTemporary and ErrRetryBudget", err)
	}
}
