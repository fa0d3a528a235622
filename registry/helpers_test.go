package registry

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// registryModes runs f against a registry with the referrers API and one without: clients must
// work against both (and go-containerregistry's referrers API misreports artifact types).
func registryModes(t *testing.T, f func(t *testing.T, ts *registrytest.TestServer)) {
	t.Helper()
	for _, mode := range []struct {
		name string
		opts []registrytest.Option
	}{{"tag-schema", nil}, {"referrers-api", []registrytest.Option{registrytest.WithReferrersAPI()}}} {
		t.Run(mode.name, func(t *testing.T) { f(t, registrytest.NewServer(t, mode.opts...)) })
	}
}

// testClient is a client with quick retries and no Docker config from the machine.
func testClient(t testing.TB, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithEnv(func(string) string { return "" }),
		WithDockerConfig(writeDockerConfig(t, `{}`)),
		WithRetry(3, time.Millisecond, 5*time.Millisecond, 10*time.Second),
		WithTimeouts(5*time.Second, 2*time.Second),
	}
	c, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeDockerConfig(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t testing.TB, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pull opens and pulls ref into a fresh staging directory.
func pull(t *testing.T, c *Client, ref string, limits Limits) (*Artifact, *Pulled, error) {
	t.Helper()
	ctx := context.Background()
	art, err := c.Open(ctx, mustParse(t, ref))
	if err != nil {
		return nil, nil, err
	}
	p, err := c.Pull(ctx, art, filepath.Join(t.TempDir(), "model"), limits)
	return art, p, err
}

// readTree reads every file of a pulled model.
func readTree(t *testing.T, p *Pulled) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(p.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(p.Dir, path)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
