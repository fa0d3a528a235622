// Command modelcar-registry serves directories of model files as KServe modelcar images from an
// OCI registry on loopback, signing the ones it is told to as cosign does, so that the storage
// initializer's oci:// path can be tried without docker, cosign or a cluster:
//
//	modelcar-registry -models DIR [-key KEY.pem] [-sign ORG/NAME]... [-legacy] [-addr 127.0.0.1:0]
//
// Each DIR/<org>/<name>/ directory becomes the image <org>/<name>:v1, its files under /models in
// one layer. Each -sign names an image to sign with -key (an ECDSA P-256 private key in PEM, as
// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` or `cosign generate-key-pair`
// writes it, unencrypted): as `cosign sign --key` does, a Sigstore bundle stored as an OCI 1.1
// referrer (cosign 3's default), or with -legacy the sha256-<hex>.sig tag (cosign 2's). The
// registry serves the OCI referrers API. Once every image is pushed, the first line of stdout
// is the registry's host:port; then one line per image, "<org>/<name>:v1 <digest> signed" or
// "... unsigned". It serves until it is killed. It is a demonstration and test tool: it keeps
// everything in memory and accepts pushes from anyone on the machine.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/echelongraph/go-modelverify/examples/kserve/internal/modelcar"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// tag is the tag every image is pushed under.
const tag = "v1"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "modelcar-registry:", err)
		os.Exit(1)
	}
}

type repoFlags []string

func (r *repoFlags) String() string     { return strings.Join(*r, ",") }
func (r *repoFlags) Set(v string) error { *r = append(*r, v); return nil }

func run(args []string) error {
	fs := flag.NewFlagSet("modelcar-registry", flag.ContinueOnError)
	models := fs.String("models", "", "directory of <org>/<name>/ model directories (required)")
	keyFile := fs.String("key", "", "PEM ECDSA P-256 private key to sign with")
	legacy := fs.Bool("legacy", false, "sign with the legacy sha256-<hex>.sig tag (cosign 2) instead of a bundle referrer (cosign 3)")
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	var sign repoFlags
	fs.Var(&sign, "sign", "ORG/NAME: an image to sign with -key (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *models == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-models is required")
	}
	var key *modelcar.Key
	if len(sign) > 0 {
		if *keyFile == "" {
			return errors.New("-sign needs -key")
		}
		pemBytes, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		if key, err = modelcar.ParseKey(pemBytes); err != nil {
			return err
		}
	}
	images, err := readModels(*models)
	if err != nil {
		return err
	}
	for _, repo := range sign {
		if images[repo] == nil {
			return fmt.Errorf("-sign %s: no directory %s under %s", repo, filepath.FromSlash(repo), *models)
		}
	}

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		// Plain HTTP and no authentication: loopback only.
		return fmt.Errorf("-addr %s: only a loopback address is allowed", *addr)
	}
	srv, err := registrytest.New(registrytest.WithReferrersAPI())
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- http.Serve(l, srv) }()
	reg := l.Addr().String()

	var lines []string
	for _, repo := range slices.Sorted(maps.Keys(images)) {
		d, err := push(reg, repo, tag, modelcar.Image(images[repo]))
		if err != nil {
			return err
		}
		state := "unsigned"
		if slices.Contains(sign, repo) {
			if err := signImage(reg, repo, d, key, *legacy); err != nil {
				return fmt.Errorf("signing %s: %w", repo, err)
			}
			state = "signed"
		}
		lines = append(lines, fmt.Sprintf("%s:%s %s %s", repo, tag, d.Digest, state))
	}
	fmt.Println(reg)
	for _, line := range lines {
		fmt.Println(line)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	select {
	case <-stop:
		return nil
	case err := <-served:
		return err
	}
}

// readModels reads DIR/<org>/<name>/ directories: repository -> file path -> bytes.
func readModels(dir string) (map[string]map[string][]byte, error) {
	orgs, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]byte{}
	for _, org := range orgs {
		if !org.IsDir() {
			continue
		}
		names, err := os.ReadDir(filepath.Join(dir, org.Name()))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !n.IsDir() {
				continue
			}
			root := filepath.Join(dir, org.Name(), n.Name())
			files := map[string][]byte{}
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				if !d.Type().IsRegular() {
					return fmt.Errorf("%s is not a regular file", p)
				}
				rel, err := filepath.Rel(root, p)
				if err != nil {
					return err
				}
				data, err := os.ReadFile(p)
				files[filepath.ToSlash(rel)] = data
				return err
			})
			if err != nil {
				return nil, err
			}
			out[org.Name()+"/"+n.Name()] = files
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no <org>/<name>/ model directories in %s", dir)
	}
	return out, nil
}

// signImage stores key's cosign signature of the image d in repo.
func signImage(reg, repo string, d registrytest.Descriptor, key *modelcar.Key, legacy bool) error {
	if legacy {
		sigTag, m, err := key.LegacySignature(reg+"/"+repo, d.Digest)
		if err != nil {
			return err
		}
		_, err = push(reg, repo, sigTag, m)
		return err
	}
	m, err := key.BundleReferrer(d)
	if err != nil {
		return err
	}
	_, err = push(reg, repo, "", m)
	return err
}

// rawManifest is a manifest's bytes as go-containerregistry pushes them.
type rawManifest struct{ raw []byte }

func (r rawManifest) RawManifest() ([]byte, error) { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) {
	return registrytest.MediaTypeOCIManifest, nil
}

// push uploads m's blobs and m to reg/repo, by digest and, if tagName is set, by tag.
func push(reg, repo, tagName string, m registrytest.Manifest) (registrytest.Descriptor, error) {
	r, err := name.NewRepository(reg+"/"+repo, name.Insecure)
	if err != nil {
		return registrytest.Descriptor{}, err
	}
	for _, b := range append([]registrytest.Blob{m.Config}, m.Layers...) {
		if err := remote.WriteLayer(r, static.NewLayer(b.Data, types.MediaType(b.MediaType))); err != nil {
			return registrytest.Descriptor{}, err
		}
	}
	raw := m.JSON()
	d := registrytest.Descriptor{MediaType: registrytest.MediaTypeOCIManifest, Digest: registrytest.Digest(raw), Size: int64(len(raw))}
	refs := []name.Reference{r.Digest(d.Digest)}
	if tagName != "" {
		refs = append(refs, r.Tag(tagName))
	}
	for _, ref := range refs {
		if err := remote.Put(ref, rawManifest{raw}); err != nil {
			return registrytest.Descriptor{}, err
		}
	}
	return d, nil
}
