package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The happy path runs in examples/kserve's README test; these are the refusals before serving.
func TestRunRefusesBadArguments(t *testing.T) {
	models := t.TempDir()
	os.MkdirAll(filepath.Join(models, "acme", "tiny"), 0o755)
	os.WriteFile(filepath.Join(models, "acme", "tiny", "config.json"), []byte("{}"), 0o644)
	key := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(key, []byte("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-models is required"},
		{[]string{"-models", models, "-sign", "acme/tiny"}, "-sign needs -key"},
		{[]string{"-models", models, "-sign", "acme/tiny", "-key", key}, "not an unencrypted private key"},
		{[]string{"-models", t.TempDir()}, "no <org>/<name>/ model directories"},
		{[]string{"-models", models, "-addr", "0.0.0.0:0"}, "only a loopback address"},
	} {
		err := run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
