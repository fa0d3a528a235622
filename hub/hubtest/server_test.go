package hubtest_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

var files = map[string][]byte{
	"config.json":       []byte(`{"model_type":"bert"}`),
	"model.safetensors": bytes.Repeat([]byte{7}, 1000),
	"sub/dir/vocab.txt": []byte("a\nb\n"),
}

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, method, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestModelInfoUsesTheHubsFieldsAndSiblingShape(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", files))
	commit, _ := ts.Resolve("acme/m", "main")
	resp, body := get(t, "GET", ts.URL+"/api/models/acme/m/revision/main?blobs=true", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var info struct {
		ID, ModelID, Author, SHA string
		Private, Disabled        bool
		Gated                    any
		Siblings                 []struct {
			RFilename string
			Size      int64
			BlobID    string
			LFS       *struct {
				Size        int64
				SHA256      string
				PointerSize int
			}
		}
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if info.ID != "acme/m" || info.Author != "acme" || info.SHA != commit || info.Gated != false {
		t.Errorf("info %+v", info)
	}
	for _, s := range info.Siblings {
		content := files[s.RFilename]
		if s.Size != int64(len(content)) {
			t.Errorf("%s size %d", s.RFilename, s.Size)
		}
		if s.RFilename == "model.safetensors" {
			if s.LFS == nil || s.LFS.SHA256 != sha256Hex(content) || s.LFS.PointerSize == 0 {
				t.Errorf("LFS sibling %+v", s.LFS)
			}
		} else if s.LFS != nil || s.BlobID != gitSHA1(content) {
			t.Errorf("git sibling %s: blobId %s lfs %v", s.RFilename, s.BlobID, s.LFS)
		}
	}
	// Without blobs=true, siblings carry only rfilename; expand keeps only what is asked.
	_, body = get(t, "GET", ts.URL+"/api/models/acme/m", nil)
	if strings.Contains(string(body), `"blobId"`) {
		t.Errorf("blob fields without blobs=true: %s", body)
	}
	_, body = get(t, "GET", ts.URL+"/api/models/acme/m/revision/HEAD?expand=sha&expand=private", nil)
	var only map[string]any
	_ = json.Unmarshal(body, &only)
	if len(only) != 4 || only["sha"] != commit {
		t.Errorf("expand answer %s", body)
	}
}

func TestTreeListingUsesLFSOidAndPaginatesWithLink(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", files), hubtest.WithTreePageSize(2))
	next := ts.URL + "/api/models/acme/m/tree/main?recursive=true"
	var all []map[string]any
	pages := 0
	for next != "" {
		resp, body := get(t, "GET", next, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var page []map[string]any
		_ = json.Unmarshal(body, &page)
		all = append(all, page...)
		pages++
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = strings.TrimPrefix(strings.Split(l, ">")[0], "<")
			if !strings.HasPrefix(next, ts.URL+"/api/models/acme/m/tree/main?") || !strings.HasSuffix(l, `; rel="next"`) {
				t.Fatalf("Link %q", l)
			}
		}
	}
	// 3 files and 2 directories ("sub", "sub/dir"), 2 a page.
	if len(all) != 5 || pages != 3 {
		t.Fatalf("%d entries in %d pages", len(all), pages)
	}
	for _, e := range all {
		if e["path"] == "model.safetensors" {
			lfs := e["lfs"].(map[string]any)
			if lfs["oid"] != sha256Hex(files["model.safetensors"]) || e["size"].(float64) != 1000 {
				t.Errorf("LFS entry %v", e)
			}
		}
		if e["path"] == "config.json" && e["oid"] != gitSHA1(files["config.json"]) {
			t.Errorf("git entry %v", e)
		}
	}
	resp, _ := get(t, "GET", ts.URL+"/api/models/acme/m/tree/main/nope", nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Error-Code") != "EntryNotFound" {
		t.Errorf("missing folder: %d %s", resp.StatusCode, resp.Header.Get("X-Error-Code"))
	}
}

func TestResolveServesGitFilesAndRedirectsLFSToTheCDN(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", files))
	commit, _ := ts.Resolve("acme/m", "main")
	// A plain git file: 200, ETag = git blob id, X-Repo-Commit, ranges, 304 on If-None-Match.
	resp, body := get(t, "GET", ts.URL+"/acme/m/resolve/main/config.json", map[string]string{"Accept-Encoding": "identity"})
	etag := `"` + gitSHA1(files["config.json"]) + `"`
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != etag || resp.Header.Get("X-Repo-Commit") != commit ||
		resp.Header.Get("Accept-Ranges") != "bytes" || !bytes.Equal(body, files["config.json"]) {
		t.Errorf("git file: %d %v", resp.StatusCode, resp.Header)
	}
	// Text files go gzip-encoded, chunked, without a Content-Length, to clients that accept it.
	resp, body = get(t, "GET", ts.URL+"/acme/m/resolve/main/config.json", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != -1 || bytes.Equal(body, files["config.json"]) {
		t.Errorf("gzip: %v, %d bytes", resp.Header, len(body))
	}
	if resp, _ := get(t, "GET", ts.URL+"/acme/m/resolve/main/config.json", map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	// An LFS file: 302 to another host, with the linked digest and size on the redirect itself.
	resp, _ = get(t, "HEAD", ts.URL+"/acme/m/resolve/"+commit+"/model.safetensors", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 302 || resp.Header.Get("X-Linked-Etag") != `"`+sha256Hex(files["model.safetensors"])+`"` ||
		resp.Header.Get("X-Linked-Size") != "1000" || resp.Header.Get("ETag") != "" || !strings.HasPrefix(loc, ts.CDNURL+"/") {
		t.Fatalf("LFS resolve: %d %v", resp.StatusCode, resp.Header)
	}
	// The CDN serves ranges with its own ETag, and refuses a request that carries a token.
	resp, body = get(t, "GET", loc, map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 10-19/1000" || len(body) != 10 ||
		strings.Contains(resp.Header.Get("ETag"), sha256Hex(files["model.safetensors"])) {
		t.Errorf("CDN range: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := get(t, "GET", loc, map[string]string{"Range": "bytes=5000-"}); resp.StatusCode != 416 {
		t.Errorf("unsatisfiable range: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "GET", loc, map[string]string{"Authorization": "Bearer hf_x"}); resp.StatusCode != 400 {
		t.Errorf("CDN accepted a token: %d", resp.StatusCode)
	}
	tampered := strings.Replace(loc, "path=model.safetensors", "path=other", 1)
	if resp, _ := get(t, "GET", tampered, nil); resp.StatusCode != 403 {
		t.Errorf("CDN accepted a tampered signature: %d", resp.StatusCode)
	}
	// /raw/ gives the LFS pointer; an escaped PR ref and a missing file behave as on the Hub.
	_, body = get(t, "GET", ts.URL+"/acme/m/raw/main/model.safetensors", nil)
	if !strings.HasPrefix(string(body), "version https://git-lfs.github.com/spec/v1\noid sha256:"+sha256Hex(files["model.safetensors"])) {
		t.Errorf("raw pointer %q", body)
	}
	resp, _ = get(t, "GET", ts.URL+"/acme/m/resolve/main/missing.bin", nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Error-Code") != "EntryNotFound" || resp.Header.Get("X-Repo-Commit") != commit {
		t.Errorf("missing entry: %d %v", resp.StatusCode, resp.Header)
	}
	ref, prCommit, _ := ts.OpenPR("acme/m", files)
	resp, _ = get(t, "HEAD", ts.URL+"/acme/m/resolve/"+url.PathEscape(ref)+"/config.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Repo-Commit") != prCommit {
		t.Errorf("PR ref: %d %s", resp.StatusCode, resp.Header.Get("X-Repo-Commit"))
	}
}

func TestPathsInfoAcceptsFormAndJSON(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", files))
	u := ts.URL + "/api/models/acme/m/paths-info/main"
	for ct, body := range map[string]string{
		"application/x-www-form-urlencoded": "paths=config.json&paths=model.safetensors&paths=nope&expand=False",
		"application/json":                  `{"paths":["config.json","model.safetensors","nope"],"expand":false}`,
	} {
		resp, err := http.Post(u, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if len(out) != 2 || out[1]["lfs"] == nil {
			t.Errorf("%s: %v", ct, out)
		}
	}
}

func TestCommitIDDependsOnlyOnContent(t *testing.T) {
	write := func(dir string, extra string) {
		for p, b := range files {
			full := filepath.Join(dir, filepath.FromSlash(p))
			_ = os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, append(append([]byte(nil), b...), extra...), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	write(a, "")
	write(b, "")
	write(c, "changed")
	s := hubtest.New(hubtest.WithModelDir("o/a", a), hubtest.WithModelDir("o/b", b), hubtest.WithModelDir("o/c", c))
	ca, _ := s.Resolve("o/a", "main")
	cb, _ := s.Resolve("o/b", "main")
	cc, _ := s.Resolve("o/c", "main")
	mem := hubtest.New(hubtest.WithModel("o/m", files))
	cm, _ := mem.Resolve("o/m", "main")
	if ca != cb || ca != cm || ca == cc || len(ca) != 40 {
		t.Errorf("commits a=%s b=%s mem=%s c=%s", ca, cb, cm, cc)
	}
}

func TestStatusFaultsCountDownAndCarryRetryAfter(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/m", files),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 429, RetryAfter: "3", RateLimit: `"api";r=0;t=2`, Route: hubtest.RouteAPI, Times: 2}))
	for i, want := range []int{429, 429, 200} {
		resp, body := get(t, "GET", ts.URL+"/api/models/acme/m", nil)
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if want == 429 && (resp.Header.Get("Retry-After") != "3" || !strings.Contains(resp.Header.Get("RateLimit"), "r=0") ||
			!strings.Contains(string(body), "<html>")) {
			t.Errorf("429 answer %v %s", resp.Header, body)
		}
	}
}

func TestAccessRulesFollowTheHub(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithToken("hf_a", "alice"),
		hubtest.WithModel("acme/gated", files, hubtest.Gated("manual")),
		hubtest.WithModel("acme/private", files, hubtest.Private()))
	for _, tc := range []struct {
		url, token, code string
		status           int
	}{
		{"/api/models/acme/gated", "", "", 200}, // metadata of a gated repo is public
		{"/acme/gated/resolve/main/config.json", "", "GatedRepo", 401},
		{"/acme/gated/resolve/main/config.json", "hf_a", "GatedRepo", 403},
		{"/api/models/acme/private", "", "RepoNotFound", 401},
		{"/api/models/acme/private", "hf_a", "RepoNotFound", 404},
		{"/api/models/acme/none", "hf_bad", "", 401},
		{"/api/whoami-v2", "hf_a", "", 200},
	} {
		hdr := map[string]string{}
		if tc.token != "" {
			hdr["Authorization"] = "Bearer " + tc.token
		}
		resp, body := get(t, "GET", ts.URL+tc.url, hdr)
		if resp.StatusCode != tc.status || resp.Header.Get("X-Error-Code") != tc.code {
			t.Errorf("%s (%q): %d %q %s", tc.url, tc.token, resp.StatusCode, resp.Header.Get("X-Error-Code"), body)
		}
	}
}
