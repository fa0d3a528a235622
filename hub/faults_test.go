package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/internal/testtools"
)

// bigFile is larger than the chunk size the fault tests use, so it is fetched in ranges.
var bigFile = bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB

func faultRepo() map[string][]byte {
	return map[string][]byte{
		"config.json":       []byte(`{"model_type":"gpt2"}`),
		"model.safetensors": bytes.Repeat([]byte("tensor"), 40_000), // 240 KB, one stream
		"big.bin":           bigFile,
	}
}

// download runs the whole pipeline against ts and returns the snapshot and the client used.
func download(t *testing.T, ts *hubtest.TestServer, opts ...hub.Option) (*hub.Snapshot, *hub.Client, error) {
	t.Helper()
	opts = append([]hub.Option{hub.WithChunkSize(256 << 10)}, opts...)
	c := newClient(t, ts, opts...)
	ctx := context.Background()
	commit, err := c.ResolveRevision(ctx, hub.Reference{Namespace: "acme", Name: "tiny-model"})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(ctx, repoID, commit, tree, hub.WithRef("main"))
	return snap, c, err
}

func assertComplete(t *testing.T, snap *hub.Snapshot, err error, files map[string][]byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("download failed: %v", err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(snap.Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", p)
		}
	}
}

// assertCleanFailure checks that a failed download left no blob, snapshot, ref or staging file,
// except interrupted transfers kept for resuming.
func assertCleanFailure(t *testing.T, c *hub.Client, err error, target error, path string) {
	t.Helper()
	if err == nil {
		t.Fatal("download succeeded, want a failure")
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v does not match %v", err, target)
	}
	var fe *hub.FileError
	if path != "" && (!errors.As(err, &fe) || fe.Path != path) {
		t.Errorf("error %v does not name %s", err, path)
	}
	repoDir := c.Cache().RepoDir(repoID)
	for _, b := range listDir(t, filepath.Join(repoDir, "blobs")) {
		if !strings.HasSuffix(b, ".incomplete") && !strings.HasSuffix(b, ".incomplete.prefix") {
			t.Errorf("blob %s left after a failure", b)
		}
	}
	if s := listDir(t, filepath.Join(repoDir, "snapshots")); len(s) != 0 {
		t.Errorf("snapshots left after a failure: %v", s)
	}
	if r := listDir(t, filepath.Join(repoDir, "refs")); len(r) != 0 {
		t.Errorf("refs left after a failure: %v", r)
	}
	assertOnlyResumable(t, c.Cache().Dir)
}

// rangesFor lists the Range headers the CDN received for an LFS file.
func rangesFor(t *testing.T, ts *hubtest.TestServer, path string) []string {
	var out []string
	for _, r := range settled(t, ts) {
		if r.CDN && strings.Contains(r.Query, "path="+path+"&") {
			if r.Range != "" {
				out = append(out, r.Range)
			}
		}
	}
	return out
}

// assertResumedFromWhatItHad checks what the client guarantees after a connection drops
// mid-body: it asks again, and a Range it sends starts exactly at a byte count it had received
// (never past what the server sent before the drop). The offset itself is not the client's to
// choose: a reset discards whatever was still in flight, so it may hold anything from none of
// the 100,000 bytes sent (and then asks for the whole file, without Range) to all of them.
func assertResumedFromWhatItHad(t *testing.T, ts *hubtest.TestServer, received map[int64]bool) {
	t.Helper()
	var gets int
	for _, r := range settled(t, ts) {
		if r.CDN && strings.Contains(r.Query, "path=model.safetensors&") {
			gets++
		}
	}
	if gets < 2 {
		t.Fatalf("%d requests for model.safetensors: the drop was not followed by another", gets)
	}
	var prev int64
	for i, rng := range rangesFor(t, ts, "model.safetensors") {
		var from int64
		if _, err := fmt.Sscanf(rng, "bytes=%d-", &from); err != nil || rng != fmt.Sprintf("bytes=%d-", from) {
			t.Fatalf("resume range %q is not bytes=N-", rng)
		}
		switch {
		case from <= 0 || from < prev:
			t.Errorf("resume range %q: offsets must be positive and never go back (previous %d)", rng, prev)
		case i == 0 && from > 100_000:
			t.Errorf("resume range %q starts past the 100,000 bytes sent before the drop", rng)
		case !received[from]:
			t.Errorf("resume range %q starts at %d bytes, a count the client never reported holding", rng, from)
		}
		prev = from
	}
}

func TestTransientFaultsRecoverAndDownloadCompletesCorrectly(t *testing.T) {
	cases := []struct {
		name  string
		fault hubtest.Fault
		check func(t *testing.T, ts *hubtest.TestServer, received map[int64]bool)
	}{
		{"503 twice on resolve", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 503, Route: hubtest.RouteResolve, File: "config.json", Times: 2}, nil},
		{"502 on the CDN", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 502, Route: hubtest.RouteCDN, Times: 3}, nil},
		{"500 on the API", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 500, Route: hubtest.RouteAPI, Times: 2}, nil},
		{"429 with RateLimit", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 429, Route: hubtest.RouteResolve, RateLimit: `"resolvers";r=0;t=0`, Times: 1}, nil},
		{"429 with Retry-After", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 429, Route: hubtest.RouteAPI, RetryAfter: "1", Times: 1}, nil},
		{"408", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 408, File: "model.safetensors", Times: 1}, nil},
		{"dropped connection resumes with Range", hubtest.Fault{Kind: hubtest.FaultDropConnection, File: "model.safetensors", After: 100_000, Times: 1},
			assertResumedFromWhatItHad},
		{"dropped plain git file resumes", hubtest.Fault{Kind: hubtest.FaultDropConnection, File: "config.json", After: 5, Times: 1}, nil},
		{"dropped range of a parallel download", hubtest.Fault{Kind: hubtest.FaultDropConnection, File: "big.bin", After: 1000, Times: 2}, nil},
		{"corrupted bytes of the right length", hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "model.safetensors", Times: 1}, nil},
		{"corrupted range", hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "big.bin", Times: 1}, nil},
		{"ignored Range on a parallel download", hubtest.Fault{Kind: hubtest.FaultIgnoreRange, File: "big.bin", Times: 2}, nil},
		{"stall", hubtest.Fault{Kind: hubtest.FaultStall, File: "model.safetensors", After: 1000, Times: 1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := faultRepo()
			ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files), hubtest.WithFault(tc.fault))
			// Every byte count the client reported holding of model.safetensors (calls are
			// serialised by the client).
			received := map[int64]bool{}
			snap, c, err := download(t, ts, hub.WithTimeouts(10*time.Second, 300*time.Millisecond),
				hub.WithProgress(func(p hub.Progress) {
					if p.Path == "model.safetensors" && p.State == hub.ProgressBytes {
						received[p.Bytes] = true
					}
				}))
			assertComplete(t, snap, err, files)
			assertNoStaging(t, c.Cache().Dir)
			if tc.check != nil {
				tc.check(t, ts, received)
			}
		})
	}
}

func TestResumeAfterDropRestartsWhenServerIgnoresRange(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultDropConnection, File: "model.safetensors", After: 50_000, Times: 1}))
	// The second request (the resume) gets a 200 with the whole file; the client must start over.
	ts.AddFault(hubtest.Fault{Kind: hubtest.FaultIgnoreRange, File: "model.safetensors", Times: 1})
	snap, _, err := download(t, ts)
	assertComplete(t, snap, err, files)
}

func TestPersistentFaultsFailCleanly(t *testing.T) {
	cases := []struct {
		name   string
		fault  hubtest.Fault
		target error
		path   string
	}{
		{"500 forever on the CDN", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 500, Route: hubtest.RouteCDN, File: "model.safetensors"}, nil, "model.safetensors"},
		{"429 forever", hubtest.Fault{Kind: hubtest.FaultStatus, Status: 429, Route: hubtest.RouteResolve, File: "config.json"}, hub.ErrRateLimited, "config.json"},
		{"corrupt forever", hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "model.safetensors"}, hub.ErrDigestMismatch, "model.safetensors"},
		{"corrupt git file forever", hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "config.json"}, hub.ErrDigestMismatch, "config.json"},
		{"drop forever", hubtest.Fault{Kind: hubtest.FaultDropConnection, File: "model.safetensors", After: 10}, nil, "model.safetensors"},
		{"range ignored forever", hubtest.Fault{Kind: hubtest.FaultIgnoreRange, File: "big.bin"}, hub.ErrRangeNotHonoured, "big.bin"},
		{"body longer than announced", hubtest.Fault{Kind: hubtest.FaultLongBody, File: "model.safetensors", Extra: 4096}, hub.ErrSizeExceeded, "model.safetensors"},
		{"range body longer than announced", hubtest.Fault{Kind: hubtest.FaultLongBody, File: "big.bin", Extra: 10}, hub.ErrSizeExceeded, "big.bin"},
		{"stall forever", hubtest.Fault{Kind: hubtest.FaultStall, File: "model.safetensors", After: 10}, nil, "model.safetensors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()), hubtest.WithFault(tc.fault))
			_, c, err := download(t, ts, hub.WithTimeouts(10*time.Second, 200*time.Millisecond))
			assertCleanFailure(t, c, err, tc.target, tc.path)
		})
	}
}

func TestRedirectToUnapprovedHostIsRefused(t *testing.T) {
	var hits int
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer elsewhere.Close()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultRedirect, File: "model.safetensors", Location: elsewhere.URL + "/steal"}))
	_, c, err := download(t, ts)
	assertCleanFailure(t, c, err, hub.ErrRedirectNotAllowed, "model.safetensors")
	var re *hub.RedirectError
	if !errors.As(err, &re) || !strings.HasPrefix(re.To, elsewhere.URL) {
		t.Errorf("error %v is not a RedirectError to %s", err, elsewhere.URL)
	}
	if hits != 0 {
		t.Errorf("the unapproved host received %d requests", hits)
	}
}

func TestRedirectOnlyToApprovedHosts(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()))
	// The CDN is not approved: every LFS download must be refused before reaching it.
	_, c, err := download(t, ts, hub.WithAllowedRedirectHosts("*.hf.co"))
	assertCleanFailure(t, c, err, hub.ErrRedirectNotAllowed, "")
	for _, r := range settled(t, ts) {
		if r.CDN {
			t.Fatalf("the CDN was contacted: %+v", r)
		}
	}
}

// A CDN on a loopback port is allowed only by host:port: "127.0.0.1" alone means ports 80 and
// 443. The refusal names the host:port to allow, says the port is the cause, and never repeats
// the signed URL's query (its credentials, and most of a 900-character message).
func TestRedirectRefusalNamesTheHostPortOnceWithoutTheQuery(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()))
	_, c, err := download(t, ts, hub.WithAllowedRedirectHosts("127.0.0.1"))
	assertCleanFailure(t, c, err, hub.ErrRedirectNotAllowed, "")
	var re *hub.RedirectError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RedirectError", err)
	}
	cdn := ts.CDNHost()
	if re.Host != cdn || !slices.Equal(re.Allowed, []string{"127.0.0.1"}) {
		t.Errorf("RedirectError host %q, allowed %q; want %q, [127.0.0.1]", re.Host, re.Allowed, cdn)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "?") || strings.Contains(msg, "Signature=") || strings.Contains(msg, "Expires=") {
		t.Errorf("the message carries the signed URL's query: %s", msg)
	}
	if !strings.Contains(msg, cdn+" is not an allowed redirect host") || !strings.Contains(msg, "without a port allows only ports 80 and 443") {
		t.Errorf("the message does not say the port is why %s was refused: %s", cdn, msg)
	}
	if n := strings.Count(msg, re.To); n != 1 {
		t.Errorf("the target URL appears %d times: %s", n, msg)
	}
}

func TestTokenNeverReachesTheCDN(t *testing.T) {
	const token = "hf_test_token_secret"
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithToken(token, "alice"),
		hubtest.WithModel(repoID, files, hubtest.Gated("manual"), hubtest.GrantAccess(token)))
	snap, _, err := download(t, ts, hub.WithToken(token))
	assertComplete(t, snap, err, files)
	var hubReqs, cdnReqs int
	for _, r := range settled(t, ts) {
		if r.CDN {
			cdnReqs++
			if r.Authorization != "" {
				t.Errorf("CDN received Authorization %q on %s", r.Authorization, r.Path)
			}
		} else {
			hubReqs++
			if r.Authorization != "Bearer "+token {
				t.Errorf("Hub request %s without the token", r.Path)
			}
		}
	}
	if hubReqs == 0 || cdnReqs == 0 {
		t.Fatalf("expected traffic to both the Hub (%d) and the CDN (%d)", hubReqs, cdnReqs)
	}
}

func TestCancellationStopsADownloadAndLeavesNothing(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, faultRepo()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, File: "model.safetensors", After: 10}))
	var cancel context.CancelFunc
	c := newClient(t, ts, hub.WithProgress(func(p hub.Progress) {
		if p.Path == "model.safetensors" && p.State == hub.ProgressBytes {
			cancel() // the stalled file has started: give up
		}
	}))
	ctx, cancelFn := context.WithCancel(context.Background())
	cancel = cancelFn
	commit, _ := ts.Resolve(repoID, "main")
	tree, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Download(ctx, repoID, commit, tree)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	assertCleanFailure(t, c, err, context.Canceled, "")
}

func TestParallelRangesAssembleTheFile(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	snap, _, err := download(t, ts, hub.WithJobs(4))
	assertComplete(t, snap, err, files)
	ranges := rangesFor(t, ts, "big.bin")
	if len(ranges) != 4 {
		t.Fatalf("big.bin fetched with ranges %v, want 4 ranges of 256 KiB", ranges)
	}
	for i := range 4 {
		want := fmt.Sprintf("bytes=%d-%d", i*256<<10, (i+1)*256<<10-1)
		found := false
		for _, r := range ranges {
			found = found || r == want
		}
		if !found {
			t.Errorf("no request for %s in %v", want, ranges)
		}
	}
}

// An endpoint nobody listens on: each retry is reported with its attempt and cause, and the
// final error says the URL once (net/http's *url.Error would say it again, with its query),
// and is still temporary.
func TestUnreachableEndpointSaysTheURLOnceAndReportsEachRetry(t *testing.T) {
	endpoint := "http://" + testtools.RefusingAddr(t) // every dial is refused
	var retries []hub.Progress
	c, err := hub.NewClient(hub.WithEndpoint(endpoint), hub.WithCacheDir(t.TempDir()),
		hub.WithRetry(2, time.Millisecond, time.Millisecond, time.Minute),
		hub.WithProgress(func(p hub.Progress) {
			if p.State == hub.ProgressRetrying {
				retries = append(retries, p)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := hub.ParseReference("hf://" + repoID + "@main")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolveRevision(context.Background(), ref)
	if !errors.Is(err, hub.ErrTemporary) {
		t.Fatalf("error %v is not temporary", err)
	}
	msg := err.Error()
	if strings.Count(msg, endpoint) != 1 || strings.Contains(msg, "?") || !strings.Contains(msg, "connection refused") {
		t.Errorf("the message should name %s once, without a query, and say why: %s", endpoint, msg)
	}
	if len(retries) != 2 || retries[0].Attempt != 1 || retries[0].Err == nil || !strings.HasPrefix(retries[0].URL, endpoint) {
		t.Errorf("retries reported: %+v; want 2, with their attempt, URL and cause", retries)
	}
}
