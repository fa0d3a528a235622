package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// inProcessHub serves a hubtest Hub from the test process, so a test can inject faults into
// what the verifier binary receives.
func inProcessHub(t *testing.T, opts ...hubtest.Option) (*hubtest.TestServer, string) {
	t.Helper()
	ts := hubtest.NewServer(t, opts...)
	return ts, ts.CDNHost()
}

// killPoint is a moment of a pull at which the test kills the verifier.
type killPoint struct {
	name string
	// reached reports whether the pull has got there, from the cache's state.
	reached func() bool
}

// TestPullKilledAtAnyPointCompletesOnTheNextRun kills the verifier (SIGKILL) while it downloads,
// while it builds the snapshot and once the snapshot is published, each time running it again
// from what the previous run left. After every kill the snapshot is either absent or whole; the
// last run completes, resumes the interrupted transfer rather than starting over, and leaves
// every file byte-identical and nothing of the gate's behind.
func TestPullKilledAtAnyPointCompletesOnTheNextRun(t *testing.T) {
	key := newTestKey(t)
	files := tinyModel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB, one LFS stream
	files["weights.bin"] = big
	for i := range 1500 {
		files[fmt.Sprintf("shards/part-%04d.json", i)] = []byte(fmt.Sprintf(`{"part":%d}`, i))
	}
	signed := signFiles(t, files, key)
	const stallAfter = 1 << 20
	ts, cdnHost := inProcessHub(t, hubtest.WithModel("acme/big", signed),
		// The first transfer of the weights stops after 1 MiB: the first kill comes then.
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultStall, File: "weights.bin", After: stallAfter, Times: 1}))
	commit, _ := ts.Resolve("acme/big", "main")
	cacheDir := t.TempDir()
	policy := writePolicy(t, ts.URL, cdnHost, key, filepath.Join(t.TempDir(), "audit.jsonl"), nil)
	repoDir := filepath.Join(cacheDir, hub.RepoFolderName("acme/big"))
	snapDir := filepath.Join(repoDir, "snapshots", commit)
	weightsIncomplete := filepath.Join(repoDir, "blobs", sha256Hex(big)+".incomplete")

	points := []killPoint{
		{"while the weights download", func() bool {
			fi, err := os.Stat(weightsIncomplete)
			return err == nil && fi.Size() >= stallAfter
		}},
		{"while the snapshot is built", func() bool {
			entries, _ := os.ReadDir(repoDir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".modelverify-snapshot-") {
					return true
				}
			}
			return false
		}},
		{"once the snapshot is published", func() bool {
			_, err := os.Stat(snapDir)
			return err == nil
		}},
	}
	args := []string{"pull", "--policy", policy, "--endpoint", ts.URL, "--cache-dir", cacheDir, "hf://acme/big@main"}
	for _, p := range points {
		cmd := exec.Command(verifierBin, args...)
		cmd.Env = testEnv(t)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
	poll:
		for {
			select {
			case err := <-exited:
				// The pull got past this point between two looks; the next points still apply.
				t.Logf("%s: the pull ended first (%v); not killed there", p.name, err)
				break poll
			default:
			}
			if p.reached() {
				cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
				<-exited
				killed = true
				break poll
			}
			time.Sleep(200 * time.Microsecond)
		}
		if killed {
			t.Logf("%s: killed", p.name)
		}
		// Whatever the moment, a loader never sees a partial model.
		if _, err := os.Stat(snapDir); err == nil {
			assertModelFiles(t, snapDir, signed, p.name)
		}
	}

	// A kill in the instant a verification record is written leaves its temporary file, and one
	// during an index check its scratch folder: plant one of each, as such a kill would leave
	// them, and age every such leftover past the bound after which the gate takes it to be
	// nobody's (a younger one may be a concurrent pull's, and is left alone).
	planted := []string{
		filepath.Join(cacheDir, ".modelverify", hub.RepoFolderName("acme/big"), ".tmp-2718281828"),
		filepath.Join(cacheDir, ".modelverify-index-3141592653", "model.safetensors.index.json"),
	}
	for _, p := range planted {
		writeFile(t, p, []byte(`{"half":`))
	}
	past := time.Now().Add(-2 * time.Hour)
	_ = filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.HasPrefix(d.Name(), ".tmp-") || strings.HasPrefix(d.Name(), ".modelverify-index-")) {
			os.Chtimes(p, past, past)
		}
		return nil
	})

	out, stderr, code := runVerifierEnv(t, t.TempDir(), testEnv(t), args...)
	if code != 0 {
		t.Fatalf("the run after the kills: exit %d: %s", code, stderr)
	}
	if strings.TrimSpace(out) != snapDir {
		t.Errorf("printed %q, want %s", out, snapDir)
	}
	assertModelFiles(t, snapDir, signed, "after the last run")
	// The interrupted transfer was resumed from the bytes it had, not fetched from zero.
	resumed := false
	for _, r := range ts.Requests() {
		if r.CDN && strings.Contains(r.Query, "path=weights.bin&") && strings.HasPrefix(r.Range, "bytes=") &&
			!strings.HasPrefix(r.Range, "bytes=0-") {
			resumed = true
		}
	}
	if !resumed {
		t.Error("the weights were fetched again from zero after the kill")
	}
	assertNoGateLeftovers(t, cacheDir)
}

// assertModelFiles checks that dir holds exactly the model's files (the signature aside), each
// byte-identical.
func assertModelFiles(t *testing.T, dir string, files map[string][]byte, when string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		want, ok := files[rel]
		if !ok || rel == "model.sig" {
			t.Errorf("%s: unexpected %s in the snapshot", when, rel)
			return nil
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %s differs from the Hub's (%v)", when, rel, err)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files)-1 {
		t.Errorf("%s: the snapshot holds %d files, want %d", when, n, len(files)-1)
	}
}

// assertNoGateLeftovers fails on anything a pull makes only while it runs: partial or staged
// transfers, snapshots being built, index scratch folders, temporary links and files, the
// verification records' temporary files included.
func assertNoGateLeftovers(t *testing.T, cacheDir string) {
	t.Helper()
	_ = filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		if strings.Contains(name, ".incomplete") || strings.HasSuffix(name, ".tmp") || strings.HasPrefix(name, ".tmp-") ||
			(strings.HasPrefix(name, ".modelverify-") && name != ".modelverify") {
			t.Errorf("left over: %s", p)
		}
		return nil
	})
}

func TestPullExitsTwoWhenTheHubFailsAndOneWhenItRefuses(t *testing.T) {
	key := newTestKey(t)
	signed := signFiles(t, tinyModel(), key)
	ts, cdnHost := inProcessHub(t, hubtest.WithModel("acme/tiny", signed), hubtest.WithModel("acme/tampered", tamper(signed, "model.safetensors")))
	policy := writePolicy(t, ts.URL, cdnHost, key, filepath.Join(t.TempDir(), "audit.jsonl"), nil)
	pull := func(ref string) (string, string, int) {
		return runVerifier(t, t.TempDir(), "pull", "--json", "--policy", policy, "--endpoint", ts.URL, "--cache-dir", t.TempDir(), ref)
	}
	// The Hub asks to be retried later than the retry budget: a temporary failure, exit 2.
	ts.AddFault(hubtest.Fault{Kind: hubtest.FaultStatus, Status: 503, RetryAfter: "3600", Route: hubtest.RouteAPI})
	out, stderr, code := pull("hf://acme/tiny@main")
	var res struct {
		Refused   bool `json:"refused"`
		Temporary bool `json:"temporary"`
		Refusal   struct {
			Reasons []string `json:"reasons"`
		} `json:"refusal"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json: %v: %q", err, out)
	}
	if code != 2 || res.Refused || !res.Temporary || strings.Join(res.Refusal.Reasons, ",") != "hub-error" ||
		!strings.Contains(stderr, "retry later") || !strings.Contains(stderr, "beyond") {
		t.Errorf("503 beyond the budget: exit %d, %+v, %q; want 2, temporary hub-error, saying why", code, res, stderr)
	}
	ts.ClearFaults()

	// A refusal of the model still exits 1, and so does a missing repository: it will not load
	// later either. (An unreachable Hub is temporary too; the hub and modelverify tests cover it
	// without the minute of retries the command would spend on it.)
	for _, ref := range []string{"hf://acme/tampered@main", "hf://acme/absent@main"} {
		if _, stderr, code := pull(ref); code != 1 {
			t.Errorf("%s: exit %d, %q; want 1", ref, code, stderr)
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
