package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// volumeUse is the space dir's files take on disk: their allocated blocks, each file counted
// once however many names it has, since a hard link takes no space. Files that vanish while it
// walks (renamed, removed) are skipped; a renamed file seen twice is still one inode.
func volumeUse(dir string) int64 {
	seen := map[[2]uint64]bool{}
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if !seen[key] {
			seen[key] = true
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}

// bigFixture serves a signed model of three 4 MiB shards, large enough that a second copy of
// it cannot hide in the metadata allowance.
func bigFixture(t *testing.T) (*fixture, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		"config.json":                      []byte(`{"model_type":"tiny"}`),
		"model-00001-of-00003.safetensors": safetensors(1 << 20),
		"model-00002-of-00003.safetensors": safetensors(1<<20 + 1),
		"model-00003-of-00003.safetensors": safetensors(1<<20 + 2),
	}
	f := newFixtureWith(t, files)
	return f, files
}

// inProcess runs the initializer in this process, so that the test can watch the volume at
// the points the initializer names, and returns its exit status and log lines.
func inProcess(t *testing.T, f *fixture, observe func(string), extraEnv map[string]string, args ...string) (int, []map[string]any) {
	t.Helper()
	env := map[string]string{"MODELVERIFY_POLICY": f.policyText}
	for k, v := range extraEnv {
		env[k] = v
	}
	// The Hub client reads its endpoint and token from the process environment.
	t.Setenv("HF_ENDPOINT", f.hub.URL)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	var logs bytes.Buffer
	in := newInitializer(&logs, func(k string) string { return env[k] })
	if observe != nil {
		in.observe = observe
	}
	code := in.run(context.Background(), args, &logs)
	var lines []map[string]any
	sc := bufio.NewScanner(&logs)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		lines = append(lines, rec)
	}
	return code, lines
}

// TestInitializerPeakVolumeUseIsTheModelOnce pins issue 11.7: staging, verifying and
// publishing a model needs room for the model once, plus at most one file, not twice (the old
// initializer copied the verified files out of a staging cache on the same volume). The volume
// is measured at every progress report of the pull and at each step after it.
func TestInitializerPeakVolumeUseIsTheModelOnce(t *testing.T) {
	f, files := bigFixture(t)
	var modelBytes, largest int64
	for _, data := range files {
		modelBytes += int64(len(data))
		largest = max(largest, int64(len(data)))
	}
	for _, tc := range []struct{ name, cache string }{
		{"default staging cache", ""},
		{"HF_HUB_CACHE inside dest, as the ClusterStorageContainer sets it", ".cache/huggingface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "mnt", "models")
			env := map[string]string{}
			if tc.cache != "" {
				env["HF_HUB_CACHE"] = filepath.Join(dest, tc.cache)
			}
			var mu sync.Mutex
			var peak int64
			points := map[string]int{}
			observe := func(point string) {
				mu.Lock()
				defer mu.Unlock()
				points[point]++
				peak = max(peak, volumeUse(dest))
				// Until the model is published, nothing but the hidden staging cache is in dest.
				if point == "download" || point == "verified" {
					entries, _ := os.ReadDir(dest)
					for _, e := range entries {
						if top, _ := topEntryWithin(dest, cacheOr(env, dest)); filepath.Join(dest, e.Name()) != top {
							t.Errorf("at %s dest shows %s before the model was published", point, e.Name())
						}
					}
				}
			}
			code, lines := inProcess(t, f, observe, env, "hf://acme/tiny-llm", dest)
			if code != 0 {
				t.Fatalf("exit %d: %v", code, lines)
			}
			if points["download"] < len(files) || points["published"] != 1 || points["before removing the staging cache"] != 1 {
				t.Fatalf("observed %v: the pull was not watched", points)
			}
			// 64 KiB covers the signature, the verification record, the evidence file and
			// block rounding; a second copy of any shard does not fit in it.
			const metadata = 64 << 10
			limit := modelBytes + largest + metadata
			t.Logf("model %d bytes, largest file %d; peak volume use %d bytes (%.2f× the model)", modelBytes, largest, peak, float64(peak)/float64(modelBytes))
			if peak < modelBytes {
				t.Fatalf("peak %d is less than the model (%d): the measurement missed the pull", peak, modelBytes)
			}
			if peak > limit {
				t.Fatalf("peak volume use %d bytes, more than the model (%d) plus one file (%d) and %d of metadata", peak, modelBytes, largest, metadata)
			}
			if end := volumeUse(dest); end > modelBytes+metadata {
				t.Errorf("after the run dest uses %d bytes for a %d-byte model", end, modelBytes)
			}
			for name, data := range files {
				got, err := os.ReadFile(filepath.Join(dest, name))
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%s: %v", name, err)
				}
			}
			if last := lines[len(lines)-1]; last["published"] != "linked" {
				t.Errorf("published %v, want linked", last["published"])
			}
		})
	}
}

func cacheOr(env map[string]string, dest string) string {
	if c := env["HF_HUB_CACHE"]; c != "" {
		return c
	}
	return filepath.Join(dest, stagingCache)
}

// TestInitializerRefusalNeverShowsUnverifiedFiles watches dest while a tampered model is
// pulled: only the hidden staging cache is ever there, and at the end nothing is.
func TestInitializerRefusalNeverShowsUnverifiedFiles(t *testing.T) {
	f := newFixture(t)
	dest := filepath.Join(t.TempDir(), "models")
	var seen []string
	observe := func(point string) {
		entries, _ := os.ReadDir(dest)
		for _, e := range entries {
			if e.Name() != stagingCache && !slices.Contains(seen, e.Name()) {
				seen = append(seen, e.Name())
			}
		}
	}
	code, lines := inProcess(t, f, observe, nil, "hf://acme/tiny-llm-tampered", dest)
	if code != exitRefused {
		t.Fatalf("exit %d: %v", code, lines)
	}
	if len(seen) != 0 {
		t.Errorf("dest showed %v while a refused model was pulled", seen)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Errorf("a refused model left %d entries in dest", len(entries))
	}
}

// TestInitializerCopiesWhenTheCacheIsElsewhere keeps a cache outside dest independent: dest
// gets its own copy, not links a later change to the cache would reach.
func TestInitializerCopiesWhenTheCacheIsElsewhere(t *testing.T) {
	f := newFixture(t)
	cache, dest := t.TempDir(), t.TempDir()
	code, lines := inProcess(t, f, nil, map[string]string{"HF_HUB_CACHE": cache}, "hf://acme/tiny-llm", dest)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, lines)
	}
	if last := lines[len(lines)-1]; last["published"] != "copied" {
		t.Errorf("published %v, want copied", last["published"])
	}
	fi, err := os.Stat(filepath.Join(dest, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if n := fi.Sys().(*syscall.Stat_t).Nlink; n != 1 {
		t.Errorf("dest's file has %d links: it shares the kept cache's file", n)
	}
}
