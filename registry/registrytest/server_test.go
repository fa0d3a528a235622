package registrytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, u, accept string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestFaultsHitOnlyTheirRouteAndOnlyTimesTimes(t *testing.T) {
	ts := NewServer(t, WithFault(Fault{Kind: FaultStatus, Status: 503, Route: RouteManifests, Times: 1}))
	d := ts.PushManifest(t, "acme/m", "v1", Modelcar(Tar(File("models/a", []byte("x")))))
	if code, _ := get(t, ts.URL+"/v2/acme/m/manifests/v1", MediaTypeOCIManifest); code != 503 {
		t.Fatalf("first GET: %d, want 503", code)
	}
	if code, b := get(t, ts.URL+"/v2/acme/m/manifests/v1", MediaTypeOCIManifest); code != 200 || Digest(b) != d.Digest {
		t.Fatalf("second GET: %d", code)
	}
	ts.AddFault(Fault{Kind: FaultCorrupt, Route: RouteBlobs})
	m := Modelcar(Tar(File("models/a", []byte("x"))))
	if _, b := get(t, ts.URL+"/v2/acme/m/blobs/"+Digest(m.Layers[0].Data), ""); Digest(b) == Digest(m.Layers[0].Data) || len(b) != len(m.Layers[0].Data) {
		t.Fatal("FaultCorrupt served the right bytes, or the wrong length")
	}
}

func TestBasicAuthIsDemandedWithAChallenge(t *testing.T) {
	ts := NewServer(t, WithBasicAuth("u", "p"))
	resp, err := http.Get(ts.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestReferrersAreListedByTheAPIOrTheTagSchema(t *testing.T) {
	for _, api := range []bool{false, true} {
		var opts []Option
		if api {
			opts = append(opts, WithReferrersAPI())
		}
		ts := NewServer(t, opts...)
		subject := ts.PushManifest(t, "acme/m", "v1", Modelcar(Tar(File("models/a", []byte("x")))))
		ref := ts.PushReferrer(t, "acme/m", Manifest{ArtifactType: "application/example", Config: Blob{MediaType: MediaTypeEmptyJSON, Data: []byte("{}")}, Subject: &subject})
		u := ts.URL + "/v2/acme/m/manifests/" + strings.Replace(subject.Digest, ":", "-", 1)
		if api {
			u = ts.URL + "/v2/acme/m/referrers/" + subject.Digest
		}
		code, b := get(t, u, MediaTypeOCIIndex)
		var idx struct{ Manifests []Descriptor }
		if code != 200 || json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ref.Digest {
			t.Fatalf("api=%v: %d %s", api, code, b)
		}
	}
}
