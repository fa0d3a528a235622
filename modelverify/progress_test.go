package modelverify_test

import (
	"context"
	"sync"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// TestProgressGivesTheTotalAndEachFilesState pins what a log of a pull is built from: the
// download step announces the model's size, and each file reports when it started and when
// it matched the Hub's digest.
func TestProgressGivesTheTotalAndEachFilesState(t *testing.T) {
	g := newGate(t)
	files := baseModel()
	g.serve("acme/tiny", sign(t, files, g.key))
	var want int64
	for _, data := range files {
		want += int64(len(data))
	}
	var mu sync.Mutex
	var total int64
	states := map[string][]string{}
	g.verifier() // for g.policy
	v, err := modelverify.NewVerifier(g.policy, modelverify.WithEndpoint(g.hub.URL), modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithHubOptions(hub.WithToken("")),
		modelverify.WithProgress(func(pr modelverify.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if pr.Step == "download" && pr.File == "" {
				total = pr.Total
			}
			if pr.File != "" && pr.State != "bytes" {
				states[pr.File] = append(states[pr.File], pr.State)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Verify(context.Background(), "acme/tiny"); err != nil {
		t.Fatal(err)
	}
	if total != want {
		t.Errorf("download step total %d, want %d", total, want)
	}
	for name := range files {
		if got := states[name]; len(got) != 2 || got[0] != "started" || got[1] != "verified" {
			t.Errorf("%s: states %v, want [started verified]", name, got)
		}
	}
}
