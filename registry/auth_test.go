package registry

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestDockerConfigPrefersAHostsHelperThenTheStoreThenInlineAuth(t *testing.T) {
	kc, err := loadDockerKeychain(writeDockerConfig(t, `{
		"auths": {"https://index.docker.io/v1/": {"auth": "aHViOnB3"}, "inline.example": {"username": "u", "password": "p"}},
		"credsStore": "store",
		"credHelpers": {"ghcr.io": "gh"}}`), true)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	kc.helper = func(_ context.Context, helper, host string) (authn.AuthConfig, error) {
		asked = append(asked, helper+"@"+host)
		switch helper {
		case "gh":
			return authn.AuthConfig{Username: "gh-user", Password: "gh-token"}, nil
		case "store":
			if host == "broken.example" {
				return authn.AuthConfig{}, errors.New("store locked")
			}
			return authn.AuthConfig{}, nil // "credentials not found"
		}
		return authn.AuthConfig{}, nil
	}
	for host, want := range map[string]authn.AuthConfig{
		"ghcr.io":         {Username: "gh-user", Password: "gh-token"},
		"inline.example":  {Username: "u", Password: "p"},
		"index.docker.io": {Username: "hub", Password: "pw"},
		"other.example":   {},
	} {
		reg, _ := name.NewRegistry(host)
		a, err := kc.Resolve(reg)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		got, _ := a.Authorization()
		if *got != want {
			t.Errorf("%s: %+v, want %+v", host, *got, want)
		}
	}
	reg, _ := name.NewRegistry("broken.example")
	if _, err := kc.Resolve(reg); err == nil {
		t.Fatal("a failing credential helper was taken for anonymous access")
	}
}
