package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// maxDockerConfig bounds the Docker config file read; real ones are a few KiB.
const maxDockerConfig = 4 << 20

// dockerConfig is the part of Docker's config.json that holds credentials.
type dockerConfig struct {
	Auths       map[string]dockerAuth `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// DockerConfigPath is where the Docker config is read from when WithDockerConfig is not given:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json, as docker and crane read it.
func DockerConfigPath(getenv func(string) string) string {
	if dir := getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// parseDockerConfig reads a config.json. A credential entry that cannot be decoded is an error:
// silently going anonymous would turn a typo into a confusing "unauthorized" later.
func parseDockerConfig(data []byte) (*dockerConfig, error) {
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("not a Docker config: %w", err)
	}
	for host, a := range cfg.Auths {
		if a.Auth == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return nil, fmt.Errorf("auths[%q].auth is not base64: %w", host, err)
		}
		if _, _, ok := strings.Cut(string(raw), ":"); !ok {
			return nil, fmt.Errorf("auths[%q].auth is not base64 of user:password", host)
		}
	}
	return &cfg, nil
}

// normalizeRegistryHost maps the spellings config.json keys use ("https://ghcr.io",
// "https://index.docker.io/v1/", "ghcr.io") to a host.
func normalizeRegistryHost(key string) string {
	h := strings.ToLower(key)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "registry-1.docker.io":
		return "index.docker.io"
	}
	return h
}

// dockerKeychain answers credentials for a registry host from a Docker config: its auths
// entries, its credHelpers and its credsStore, in docker's order (a host's own helper first,
// then the store, then the inline entry).
type dockerKeychain struct {
	path string
	cfg  *dockerConfig
	// helper runs a credential helper; tests replace it.
	helper func(ctx context.Context, helper, host string) (authn.AuthConfig, error)
}

// loadDockerKeychain reads the config at path. A missing file at the default path means
// anonymous; a missing file the caller named explicitly is an error.
func loadDockerKeychain(path string, explicit bool) (*dockerKeychain, error) {
	if path == "" {
		return &dockerKeychain{cfg: &dockerConfig{}, helper: runCredentialHelper}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && !explicit {
			return &dockerKeychain{path: path, cfg: &dockerConfig{}, helper: runCredentialHelper}, nil
		}
		return nil, fmt.Errorf("registry: Docker config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return loadDockerKeychain(filepath.Join(path, "config.json"), explicit)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxDockerConfig+1))
	if err != nil {
		return nil, fmt.Errorf("registry: Docker config %s: %w", path, err)
	}
	if len(data) > maxDockerConfig {
		return nil, fmt.Errorf("registry: Docker config %s: larger than %d bytes", path, maxDockerConfig)
	}
	cfg, err := parseDockerConfig(data)
	if err != nil {
		return nil, fmt.Errorf("registry: Docker config %s: %w", path, err)
	}
	return &dockerKeychain{path: path, cfg: cfg, helper: runCredentialHelper}, nil
}

// Resolve implements authn.Keychain.
func (k *dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (k *dockerKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := normalizeRegistryHost(r.RegistryStr())
	helper := ""
	for key, h := range k.cfg.CredHelpers {
		if normalizeRegistryHost(key) == host {
			helper = h
		}
	}
	if helper == "" {
		helper = k.cfg.CredsStore
	}
	if helper != "" {
		cfg, err := k.helper(ctx, helper, r.RegistryStr())
		if err != nil {
			return nil, fmt.Errorf("registry: credential helper docker-credential-%s for %s (from %s): %w", helper, host, k.path, err)
		}
		if cfg != (authn.AuthConfig{}) {
			return authn.FromConfig(cfg), nil
		}
	}
	for key, a := range k.cfg.Auths {
		if normalizeRegistryHost(key) != host {
			continue
		}
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			raw, _ := base64.StdEncoding.DecodeString(a.Auth) // checked when the config was read
			cfg.Username, cfg.Password, _ = strings.Cut(string(raw), ":")
		}
		return authn.FromConfig(cfg), nil
	}
	return authn.Anonymous, nil
}

// maxHelperOutput bounds what a credential helper may print.
const maxHelperOutput = 1 << 20

// runCredentialHelper asks docker-credential-<helper> for host's credentials, as docker does:
// "get" with the server on stdin, JSON {ServerURL, Username, Secret} on stdout. A helper that
// knows nothing of the host says "credentials not found"; that means anonymous.
func runCredentialHelper(ctx context.Context, helper, host string) (authn.AuthConfig, error) {
	if strings.ContainsAny(helper, `/\`) {
		return authn.AuthConfig{}, fmt.Errorf("helper name %q must be a bare name", helper)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(host)
	var out, errOut bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &out, left: maxHelperOutput}
	cmd.Stderr = &limitedBuffer{buf: &errOut, left: 4096}
	if err := cmd.Run(); err != nil {
		if strings.Contains(out.String()+errOut.String(), "credentials not found") {
			return authn.AuthConfig{}, nil
		}
		return authn.AuthConfig{}, fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	var resp struct{ Username, Secret string }
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		return authn.AuthConfig{}, fmt.Errorf("unreadable answer: %w", err)
	}
	if resp.Username == "<token>" {
		return authn.AuthConfig{IdentityToken: resp.Secret}, nil
	}
	return authn.AuthConfig{Username: resp.Username, Password: resp.Secret}, nil
}

// limitedBuffer keeps at most left bytes and drops the rest, so a runaway helper cannot fill memory.
type limitedBuffer struct {
	buf  *bytes.Buffer
	left int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.left)
	b.buf.Write(p[:n])
	b.left -= n
	return len(p), nil
}
