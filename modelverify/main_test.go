package modelverify_test

import (
	"os"
	"testing"
)

// TestMain gives the tests a configuration directory of their own, so that the record key a
// Verifier makes on first use (modelverify/record.key under os.UserConfigDir) is not left in
// the home directory of whoever runs them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modelverify-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
