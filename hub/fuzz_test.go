package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"org/name", "org/name@main", "hf://org/name@refs/pr/1", "hf://org/name:v1",
		"google-bert/bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594", "a/b@../x", "org--x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		if ValidateRepoID(r.RepoID()) != nil {
			t.Fatalf("%q: invalid repo id %q accepted", s, r.RepoID())
		}
		if r.Revision != "" && ValidateRevision(r.Revision) != nil {
			t.Fatalf("%q: invalid revision %q accepted", s, r.Revision)
		}
		if strings.Contains(r.Revision, "..") || strings.HasPrefix(r.Revision, "/") {
			t.Fatalf("%q: revision %q could escape refs/", s, r.Revision)
		}
		again, err := ParseReference(r.String())
		if err != nil || again != r {
			t.Fatalf("%q: %s does not round-trip: %+v %v", s, r, again, err)
		}
	})
}

// bertTree is the Hub's listing of google-bert/bert-base-uncased (reference §1.2).
const bertTree = `[{"type":"file","oid":"dc08351d4dc0732d9c8af04070ced089b201ce2f","path":".gitattributes","size":345},
 {"type":"file","oid":"fca794a5f07ff8f963fe8b61e3694b0fb7f955df","path":"config.json","size":313},
 {"type":"file","oid":"ba5d19791be1dd7992e33bd61f20207b0f7f50a5","path":"pytorch_model.bin","size":440473133,
  "lfs":{"oid":"097417381d6c7230bd9e3557456d726de6e83245ec8b24f529f60198a67b203a","size":440473133,"pointerSize":134},
  "xetHash":"2d8408d3a894d02517d04956e2f7546ff08362594072f3527ce144b5212a3296"},
 {"type":"directory","oid":"fb140275c155a9c7c5a3b3e0e77a9e839594a938","path":"onnx","size":0},
 {"type":"file","oid":"fb140275c155a9c7c5a3b3e0e77a9e839594a938","path":"vocab.txt","size":231508}]`

func FuzzTreePage(f *testing.F) {
	f.Add([]byte(bertTree))
	f.Add([]byte(`[{"type":"file","oid":"dc08351d4dc0732d9c8af04070ced089b201ce2f","path":"../../etc/passwd","size":1}]`))
	f.Add([]byte(`[{"type":"file","oid":"x","path":"a","size":-1,"lfs":{"oid":"y","size":2}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var page []apiTreeEntry
		if json.Unmarshal(b, &page) != nil {
			return
		}
		for _, a := range page {
			e, err := treeEntryFromAPI(a)
			if err != nil {
				continue
			}
			if ValidatePath(e.Path) != nil || e.Size < 0 || len(e.OID) != 40 || !isLowerHex(e.OID) {
				t.Fatalf("unsafe entry accepted: %+v", e)
			}
			if e.LFS != nil && (!isSHA256Hex(e.LFS.SHA256) || e.LFS.Size != e.Size) {
				t.Fatalf("bad LFS accepted: %+v", e.LFS)
			}
			if b := e.BlobName(); strings.ContainsAny(b, "/.\\") || b == "" {
				t.Fatalf("blob name %q", b)
			}
		}
	})
}

func TestTreeEntryFromTheHubsOwnListing(t *testing.T) {
	var page []apiTreeEntry
	if err := json.Unmarshal([]byte(bertTree), &page); err != nil {
		t.Fatal(err)
	}
	e, err := treeEntryFromAPI(page[2])
	if err != nil {
		t.Fatal(err)
	}
	if e.LFS == nil || e.LFS.SHA256 != "097417381d6c7230bd9e3557456d726de6e83245ec8b24f529f60198a67b203a" ||
		e.BlobName() != e.LFS.SHA256 || e.Size != 440473133 || e.XetHash == "" || e.LFS.PointerSize != 134 {
		t.Errorf("pytorch_model.bin parsed as %+v", e)
	}
	if string(e.Digest()) != "sha256:097417381d6c7230bd9e3557456d726de6e83245ec8b24f529f60198a67b203a" {
		t.Errorf("digest %s", e.Digest())
	}
	if _, err := treeEntryFromAPI(page[3]); err == nil {
		t.Error("a directory was accepted as a file")
	}
}

func FuzzRateLimitHeaders(f *testing.F) {
	f.Add(`"resolvers";r=0;t=2`, "5")
	f.Add(`"api";r=10;t=100`, "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, rl, ra string) {
		h := http.Header{}
		h.Set("RateLimit", rl)
		h.Set("Retry-After", ra)
		if d, ok := serverWait(h); ok && d < 0 {
			t.Fatalf("negative wait %v from %q %q", d, rl, ra)
		}
	})
}

func TestServerWaitFollowsHuggingfaceHub(t *testing.T) {
	for _, tc := range []struct {
		rl, ra string
		want   string
		ok     bool
	}{
		{`"resolvers";r=0;t=2`, "", "3s", true}, // t+1, as huggingface_hub sleeps
		{`"api";r=5;t=100`, "7", "7s", true},    // quota left: fall back to Retry-After
		{"", "Wed, 21 Oct 2015 07:28:00 GMT", "0s", false},
		{"", "", "0s", false},
	} {
		h := http.Header{}
		if tc.rl != "" {
			h.Set("RateLimit", tc.rl)
		}
		if tc.ra != "" {
			h.Set("Retry-After", tc.ra)
		}
		d, ok := serverWait(h)
		if d.String() != tc.want || ok != tc.ok {
			t.Errorf("%q %q: %v %v, want %s %v", tc.rl, tc.ra, d, ok, tc.want, tc.ok)
		}
	}
}

func FuzzLinkHeader(f *testing.F) {
	f.Add(`<https://huggingface.co/api/models/a/b/tree/main?cursor=xyz>; rel="next"`)
	f.Add(`<https://evil.example/x>; rel="next"`)
	f.Add(`</api/models/a/b/tree/main?cursor=2>; rel=next, <https://x>; rel="prev"`)
	endpoint, _ := url.Parse("https://huggingface.co")
	c := &Client{endpoint: endpoint}
	f.Fuzz(func(t *testing.T, link string) {
		next, err := c.nextPage(endpoint, []string{link})
		if err != nil || next == "" {
			return
		}
		u, err := url.Parse(next)
		if err != nil || !sameOrigin(u, endpoint) {
			t.Fatalf("Link %q led off the endpoint to %q", link, next)
		}
	})
}

func FuzzErrorBody(f *testing.F) {
	f.Add([]byte(`{"error":"Repository not found"}`))
	f.Add([]byte(`{"error":["a","b"]}`))
	f.Add([]byte(`{"errors":[{"message":"x"}]}`))
	f.Add([]byte(`<html>429</html>`))
	f.Fuzz(func(t *testing.T, b []byte) { _ = errorMessageFromBody(b) })
}
