package hub_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func TestEnvironmentConfiguresTheClientAndOptionsOverrideIt(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "token"), []byte("  hf_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()),
		hubtest.WithToken("hf_env", "a"), hubtest.WithToken("hf_legacy", "b"), hubtest.WithToken("hf_from_file", "c"), hubtest.WithToken("hf_option", "d"))

	tokenSent := func(env map[string]string, opts ...hub.Option) string {
		t.Helper()
		env["HF_ENDPOINT"] = ts.URL + "/"
		c, err := hub.NewClient(append([]hub.Option{hub.WithEnv(func(k string) string { return env[k] }), hub.WithTransport(counterFor(ts))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		if c.Endpoint() != ts.URL {
			t.Errorf("endpoint %s, want %s without the trailing slash", c.Endpoint(), ts.URL)
		}
		resetRequests(t, ts)
		if _, err := c.ResolveRevision(context.Background(), hub.Reference{Namespace: "acme", Name: "tiny-model"}); err != nil {
			t.Fatal(err)
		}
		return settled(t, ts)[0].Authorization
	}
	cases := []struct {
		name string
		env  map[string]string
		opts []hub.Option
		want string
	}{
		{"HF_TOKEN first", map[string]string{"HF_TOKEN": "hf_env", "HUGGING_FACE_HUB_TOKEN": "hf_legacy", "HF_HOME": home}, nil, "Bearer hf_env"},
		{"then HUGGING_FACE_HUB_TOKEN", map[string]string{"HUGGING_FACE_HUB_TOKEN": "hf_legacy", "HF_HOME": home}, nil, "Bearer hf_legacy"},
		{"then the token file under HF_HOME", map[string]string{"HF_HOME": home}, nil, "Bearer hf_from_file"},
		{"none", map[string]string{"HF_HOME": t.TempDir()}, nil, ""},
		{"WithToken overrides", map[string]string{"HF_TOKEN": "hf_env"}, []hub.Option{hub.WithToken("hf_option")}, "Bearer hf_option"},
		{"WithToken empty is anonymous", map[string]string{"HF_TOKEN": "hf_env"}, []hub.Option{hub.WithToken("")}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenSent(tc.env, tc.opts...); got != tc.want {
				t.Errorf("Authorization %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCacheDirAndOfflineResolution(t *testing.T) {
	cases := []struct {
		name        string
		env         map[string]string
		opts        []hub.Option
		wantDir     string
		wantOffline bool
	}{
		{"HF_HUB_CACHE", map[string]string{"HF_HUB_CACHE": "/c/hub", "HF_HOME": "/h"}, nil, "/c/hub", false},
		{"legacy HUGGINGFACE_HUB_CACHE", map[string]string{"HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HOME": "/h"}, nil, "/legacy", false},
		{"HF_HOME/hub", map[string]string{"HF_HOME": "/h"}, nil, "/h/hub", false},
		{"XDG_CACHE_HOME", map[string]string{"XDG_CACHE_HOME": "/x"}, nil, "/x/huggingface/hub", false},
		{"home", map[string]string{"HOME": "/home/u"}, nil, "/home/u/.cache/huggingface/hub", false},
		{"tilde and vars", map[string]string{"HOME": "/home/u", "HF_HOME": "~/$SUB", "SUB": "hf"}, nil, "/home/u/hf/hub", false},
		{"offline", map[string]string{"HF_HOME": "/h", "HF_HUB_OFFLINE": "yes"}, nil, "/h/hub", true},
		{"transformers offline", map[string]string{"HF_HOME": "/h", "TRANSFORMERS_OFFLINE": "1"}, nil, "/h/hub", true},
		{"options override", map[string]string{"HF_HUB_CACHE": "/c", "HF_HUB_OFFLINE": "1"},
			[]hub.Option{hub.WithCacheDir("/opt"), hub.WithOffline(false)}, "/opt", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := hub.NewClient(append([]hub.Option{hub.WithEnv(func(k string) string { return tc.env[k] })}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Cache().Dir != tc.wantDir || c.Offline() != tc.wantOffline {
				t.Errorf("dir %s offline %v, want %s %v", c.Cache().Dir, c.Offline(), tc.wantDir, tc.wantOffline)
			}
			if c.Endpoint() != hub.DefaultEndpoint {
				t.Errorf("endpoint %s", c.Endpoint())
			}
		})
	}
}

func TestNewClientRejectsBadSettings(t *testing.T) {
	env := hub.WithEnv(func(string) string { return "" })
	for name, opt := range map[string]hub.Option{
		"ftp endpoint":        hub.WithEndpoint("ftp://example.com"),
		"endpoint with query": hub.WithEndpoint("https://example.com?x=1"),
		"zero jobs":           hub.WithJobs(0),
		"token with newline":  hub.WithToken("hf_a\nX-Evil: 1"),
	} {
		if _, err := hub.NewClient(env, hub.WithCacheDir(t.TempDir()), opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
