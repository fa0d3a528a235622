// Command registrypull is bench/registry.sh's client. "push" uploads a modelcar image (one
// uncompressed layer per file, the files under models/) to a registry on loopback; "pull" runs
// what the load gate will run for an oci:// model through registry.Client (resolve the tag once,
// find and verify the cosign signature with a key, download the layers in parallel, hashed and
// extracted as they stream) and prints the elapsed seconds, the bytes and its peak RSS.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: registrypull push -registry HOST:PORT -repo R -tag T FILE... | pull -ref oci://... -key cosign.pub -dest DIR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "push":
		fs := flag.NewFlagSet("push", flag.ExitOnError)
		reg := fs.String("registry", "", "registry host:port (plain HTTP, loopback)")
		repo := fs.String("repo", "", "repository")
		tag := fs.String("tag", "v1", "tag")
		_ = fs.Parse(os.Args[2:])
		err = push(*reg, *repo, *tag, fs.Args())
	case "pull":
		fs := flag.NewFlagSet("pull", flag.ExitOnError)
		ref := fs.String("ref", "", "oci:// reference")
		key := fs.String("key", "", "cosign public key (PEM)")
		dest := fs.String("dest", "", "staging directory (must not exist or be empty)")
		jobs := fs.Int("jobs", registry.DefaultJobs, "parallel layer downloads")
		_ = fs.Parse(os.Args[2:])
		err = pull(*ref, *key, *dest, *jobs)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registrypull:", err)
		os.Exit(1)
	}
}

func pull(refStr, keyPath, dest string, jobs int) error {
	pub, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	v, err := registry.NewKeyVerifier(pub)
	if err != nil {
		return err
	}
	c, err := registry.NewClient(registry.WithJobs(jobs))
	if err != nil {
		return err
	}
	ref, err := registry.ParseReference(refStr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	art, err := c.Open(ctx, ref)
	if err != nil {
		return err
	}
	opened := time.Now()
	if _, err := c.VerifySignature(ctx, art, v, verify.WithKey()); err != nil {
		return err
	}
	verified := time.Now()
	p, err := c.Pull(ctx, art, dest, registry.Limits{})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	var n int64
	for _, f := range p.Files {
		n += f.Size
	}
	fmt.Fprintf(os.Stderr, "open %.3f s, signature %.3f s, pull %.3f s\n", opened.Sub(start).Seconds(), verified.Sub(opened).Seconds(), time.Since(verified).Seconds())
	fmt.Printf("%.3f %d %d\n", elapsed.Seconds(), n, peakRSSKiB())
	return nil
}

// peakRSSKiB is VmHWM from /proc/self/status.
func peakRSSKiB() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kib)
			return kib
		}
	}
	return -1
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// push makes one uncompressed tar layer per file (models/<name>) on disk, uploads them and the
// manifest, and prints the manifest digest.
func push(reg, repo, tag string, files []string) error {
	var layers []descriptor
	var diffIDs []string
	tmp, err := os.MkdirTemp("", "registrypull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for i, f := range files {
		p := filepath.Join(tmp, fmt.Sprint(i))
		d, err := tarFile(f, p)
		if err != nil {
			return err
		}
		if err := uploadFile(reg, repo, p, d.Digest); err != nil {
			return err
		}
		layers = append(layers, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	cfgDesc := descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digestOf(cfg), Size: int64(len(cfg))}
	if err := upload(reg, repo, bytes.NewReader(cfg), cfgDesc.Digest, cfgDesc.Size); err != nil {
		return err
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfgDesc, "layers": layers})
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", reg, repo, tag), bytes.NewReader(m))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if err := do(req); err != nil {
		return err
	}
	fmt.Println(digestOf(m))
	return nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// tarFile writes a tar holding src as models/<base> to dst and returns its descriptor.
func tarFile(src, dst string) (descriptor, error) {
	in, err := os.Open(src)
	if err != nil {
		return descriptor{}, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return descriptor{}, err
	}
	out, err := os.Create(dst)
	if err != nil {
		return descriptor{}, err
	}
	defer out.Close()
	h := sha256.New()
	w := io.MultiWriter(out, h)
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "models/" + filepath.Base(src), Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return descriptor{}, err
	}
	if _, err := io.Copy(tw, in); err != nil {
		return descriptor{}, err
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, err
	}
	fi, err := out.Stat()
	if err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: fi.Size()}, nil
}

func uploadFile(reg, repo, path, digest string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return upload(reg, repo, f, digest, st.Size())
}

// upload is a monolithic blob upload (POST with ?digest=).
func upload(reg, repo string, body io.Reader, digest string, size int64) error {
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v2/%s/blobs/uploads/?digest=%s", reg, repo, digest), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	return do(req)
}

func do(req *http.Request) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL, resp.StatusCode, msg)
	}
	return nil
}
