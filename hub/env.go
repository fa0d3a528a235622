package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultEndpoint is the Hub's public endpoint.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRedirectHosts are the hosts the Hub's own endpoints redirect downloads to (its CDN and
// Xet bridges); they apply only when the endpoint is huggingface.co or hf.co.
var DefaultRedirectHosts = []string{"*.hf.co", "*.huggingface.co"}

// envEndpoint is HF_ENDPOINT, or the default, without trailing slashes.
func envEndpoint(getenv func(string) string) string {
	if v := strings.TrimRight(getenv("HF_ENDPOINT"), "/"); v != "" {
		return v
	}
	return DefaultEndpoint
}

// envToken follows huggingface_hub's order: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token
// file (HF_TOKEN_PATH, default $HF_HOME/token). A missing token file means anonymous.
func envToken(getenv func(string) string) (string, error) {
	for _, name := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v, nil
		}
	}
	path := expandPath(getenv("HF_TOKEN_PATH"), getenv)
	if path == "" {
		home, err := envHome(getenv)
		if err != nil {
			return "", nil // no home and no token file: anonymous
		}
		path = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hub: reading token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// envHome is HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func envHome(getenv func(string) string) (string, error) {
	if v := expandPath(getenv("HF_HOME"), getenv); v != "" {
		return v, nil
	}
	if v := expandPath(getenv("XDG_CACHE_HOME"), getenv); v != "" {
		return filepath.Join(v, "huggingface"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("hub: no HF_HOME and no home directory: %w", err)
		}
	}
	return filepath.Join(home, ".cache", "huggingface"), nil
}

// envCacheDir is HF_HUB_CACHE (or the legacy HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub.
func envCacheDir(getenv func(string) string) (string, error) {
	for _, name := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := expandPath(getenv(name), getenv); v != "" {
			return v, nil
		}
	}
	home, err := envHome(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "hub"), nil
}

// envOffline is HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), true for 1, ON, YES or TRUE.
func envOffline(getenv func(string) string) bool {
	return envTrue(getenv("HF_HUB_OFFLINE")) || envTrue(getenv("TRANSFORMERS_OFFLINE"))
}

func envTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// expandPath expands a leading "~" and $VARS, as huggingface_hub does for its path variables.
func expandPath(p string, getenv func(string) string) string {
	if p == "" {
		return ""
	}
	p = os.Expand(p, getenv)
	if p == "~" || strings.HasPrefix(p, "~/") {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		if home != "" {
			p = filepath.Join(home, p[1:])
		}
	}
	return p
}
