package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInspectBundleNamesTheClaimedSignerOfEachKind(t *testing.T) {
	for dir, want := range map[string]string{
		"v1.1.0-sigstore":     "sigstore identity stefanb@us.ibm.com issued by https://sigstore.verify.ibm.com/oauth2",
		"v1.1.0-elliptic-key": "key with hint e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e",
		"v1.1.0-certificate":  `certificate "CN=intermediate-ca" issued by "CN=intermediate-ca"`,
		"v1.0.1-elliptic-key": "key sha256:",
	} {
		data, err := os.ReadFile(filepath.Join(interop, "signed", dir, "model.sig"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := InspectBundle(data)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		got := info.String()
		if len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("%s: %q, want %q", dir, got, want)
		}
	}
	if _, err := InspectBundle([]byte(`{}`)); err == nil {
		t.Fatal("an empty bundle inspected")
	}
}
