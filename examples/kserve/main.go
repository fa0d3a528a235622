// Command storage-initializer is a KServe storage initializer that puts a model into the
// predictor's volume only after the modelverify load gate has verified it.
//
// KServe runs it as the predictor pod's init container, with the arguments of its
// storage-initializer contract:
//
//	storage-initializer [--policy FILE] [--progress-interval D] <src_uri> <dest_path> [<src_uri> <dest_path>]...
//
// where src_uri is an hf:// reference (hf://org/name, hf://org/name@rev, or KServe's
// hf://org/name:rev) or an oci:// one (oci://host/repository:tag or
// oci://host/repository@sha256:<hex>: a KServe modelcar image, a CNCF ModelPack artefact or a
// KitOps ModelKit), and dest_path is usually /mnt/models. KServe hands an initializer oci://
// only: it rewrites an oci+fetch:// storageUri to oci:// first, so the oci+ spellings are usage
// errors here. The policy is read from --policy FILE, else from the MODELVERIFY_POLICY
// environment variable (the policy text, which the ClusterStorageContainer takes from a
// ConfigMap), else from /etc/modelverify/policy.yaml. The Hub is HF_ENDPOINT (default
// https://huggingface.co) and the token HF_TOKEN. Registry credentials come from the Docker
// config KSERVE_OCI_DOCKER_CONFIG names (where KServe mounts the pod's imagePullSecret), else
// $DOCKER_CONFIG/config.json or ~/.docker/config.json; KSERVE_OCI_INSECURE_REGISTRY is ignored,
// since the policy's registries say which registry (loopback only) is reached over plain HTTP.
// Downloads are staged in HF_HUB_CACHE (the verifier's cache for both kinds of model), or in a
// directory inside dest_path that is removed afterwards.
//
// Each model is verified (publisher, signature, digests, content; for oci://, the approved
// registry, the tag resolved to a digest once, the cosign signature of that digest, every layer
// against its digest and every archive entry against the content limits) and only then published into
// dest_path. With the staging cache on the same volume (inside dest_path, as KServe's single
// volume has it) the verified files are hard-linked into place, each hashed again, so the
// volume needs room for the model once, plus a few KiB of signature and records; with a cache
// elsewhere they are copied, each hashed again as it is copied. Until then dest_path holds only
// the hidden staging directory. On any refusal the command exits 1 and leaves dest_path empty,
// so the predictor never starts with unverified weights; a usage, configuration or I/O error,
// or a failure that says nothing about the model and may pass on a retry (the Hub or registry
// unreachable or failing after every retry, a timeout), exits 2, with the same guarantee.
//
// stderr is slog JSON, for kubectl logs: each step, each file as it starts and finishes (and
// every retry), a summary every --progress-interval (default $MODELVERIFY_PROGRESS_INTERVAL,
// else 10s: bytes, rate, time left, and how long no byte has arrived), the audit record, and
// last one line with the decision and its evidence or reasons. Decisions also go to the
// policy's audit log file, if it names one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
)

const (
	exitOK      = 0
	exitRefused = 1
	exitError   = 2

	// defaultPolicyFile is where a policy mounted from a ConfigMap as a volume is looked for.
	defaultPolicyFile = "/etc/modelverify/policy.yaml"
	// policyEnv holds the policy text, for a ConfigMap key passed as an environment variable.
	policyEnv = "MODELVERIFY_POLICY"
	// evidenceFile is written into dest_path beside the model: what was verified, by whom and
	// when. Its presence also marks dest_path as written by this initializer, so a re-run (the
	// pod restarted) may clear it and verify again.
	evidenceFile = ".modelverify-evidence.json"
	// stagingCache is the cache directory made inside dest_path when HF_HUB_CACHE is not set.
	stagingCache = ".modelverify-cache"
	// progressEnv sets the interval between progress summaries (a Go duration; 0 turns them off).
	progressEnv = "MODELVERIFY_PROGRESS_INTERVAL"
	// defaultProgressInterval is short enough that a pull never looks hung in kubectl logs.
	defaultProgressInterval = 10 * time.Second
	// dockerConfigEnv names the Docker config (config.json) with registry credentials, as
	// KServe sets it for its own initializer in fetch mode.
	dockerConfigEnv = "KSERVE_OCI_DOCKER_CONFIG"
	// insecureRegistryEnv is KServe's switch for plain-HTTP registries; the policy decides here.
	insecureRegistryEnv = "KSERVE_OCI_INSECURE_REGISTRY"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// initializer is one run: its logger, environment and the points a test may observe.
type initializer struct {
	log    *slog.Logger
	getenv func(string) string
	now    func() time.Time
	// observe, when a test sets it, is called wherever the volume's use may peak: at every
	// progress report of a pull, once the model is verified, published and its evidence
	// written, and before the staging cache is removed.
	observe func(point string)
	// verifierOpts are extra Verifier options a test sets (short retry budgets).
	verifierOpts []modelverify.Option
}

func newInitializer(stderr io.Writer, getenv func(string) string) *initializer {
	return &initializer{log: slog.New(slog.NewJSONHandler(stderr, nil)), getenv: getenv, now: time.Now, observe: func(string) {}}
}

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	return newInitializer(stderr, getenv).run(ctx, args, stderr)
}

func (in *initializer) run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("storage-initializer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyFile := fs.String("policy", "", "the policy file (default: $"+policyEnv+", else "+defaultPolicyFile+")")
	interval := defaultProgressInterval
	if text := in.getenv(progressEnv); text != "" {
		d, err := time.ParseDuration(text)
		if err != nil || d < 0 {
			in.log.Error("$"+progressEnv+" is not a duration such as 10s or 1m (0 turns the summaries off)", "value", text)
			return exitError
		}
		interval = d
	}
	fs.DurationVar(&interval, "progress-interval", interval, "how often to log a progress summary; 0 for never (default: $"+progressEnv+", else 10s)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: storage-initializer [--policy FILE] [--progress-interval D] <src_uri> <dest_path> [<src_uri> <dest_path>]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if interval < 0 {
		in.log.Error("--progress-interval must not be negative", "value", interval.String())
		return exitError
	}
	pairs := fs.Args()
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		in.log.Error("usage: want <src_uri> <dest_path> pairs", "args", pairs)
		return exitError
	}
	anyOCI := false
	for i := 0; i < len(pairs); i += 2 {
		if msg, err := checkSource(pairs[i]); msg != "" {
			attrs := []any{"src_uri", pairs[i]}
			if err != nil {
				attrs = append(attrs, "error", err.Error())
			}
			in.log.Error(msg, attrs...)
			return exitError
		}
		anyOCI = anyOCI || strings.HasPrefix(pairs[i], registry.Scheme)
		if pairs[i+1] == "" {
			in.log.Error("empty dest_path", "src_uri", pairs[i])
			return exitError
		}
	}
	var registryOpts []registry.Option
	if anyOCI {
		opts, ok := in.registryOptions()
		if !ok {
			return exitError
		}
		registryOpts = opts
	}
	p, source, err := in.loadPolicy(*policyFile)
	if err != nil {
		in.log.Error("cannot load the policy; nothing was written", "policy", source, "error", err.Error())
		return exitError
	}
	in.log.Info("policy loaded", "policy", source, "mode", string(p.Mode), "publishers", len(p.Publishers))

	var written []string
	for i := 0; i < len(pairs); i += 2 {
		src, dest := pairs[i], pairs[i+1]
		code := in.pull(ctx, p, src, dest, interval, registryOpts)
		if code != exitOK {
			// One refused model stops the pod: empty every destination this run wrote, so no
			// predictor can find a partial set of models.
			for _, d := range written {
				emptyDir(d)
			}
			return code
		}
		written = append(written, dest)
	}
	return exitOK
}

// checkSource says what is wrong with a src_uri, or "" when it is one this initializer takes:
// hf://org/name[@rev|:rev] or oci://host/repository[:tag][@sha256:...].
func checkSource(src string) (string, error) {
	switch {
	case strings.HasPrefix(src, "hf://"):
		if _, err := hub.ParseReference(src); err != nil {
			return "invalid storage URI", err
		}
	case strings.HasPrefix(src, registry.Scheme):
		if _, err := registry.ParseReference(src); err != nil {
			return "invalid storage URI", err
		}
	case strings.HasPrefix(src, "oci+"):
		// KServe strips the mode from an oci+fetch:// storageUri before it starts an initializer
		// (ParseOciScheme), and runs none for oci+native:// or oci+modelcar://. A run by hand with
		// the InferenceService's storageUri lands here: say what to pass instead.
		return "this initializer takes oci:// URIs: KServe passes an oci+fetch:// storageUri to its storage initializer as oci://, " +
			"and runs no storage initializer for oci+native:// or oci+modelcar://", nil
	default:
		return "only hf:// and oci:// storage URIs are handled by this initializer", nil
	}
	return "", nil
}

// registryOptions are the registry client's options from the environment KServe gives an
// initializer for oci:// models. The Docker config $KSERVE_OCI_DOCKER_CONFIG names (KServe mounts
// the pod's first imagePullSecret there in its fetch mode) is read now, so that a missing or
// malformed one is a configuration error, not a refusal of the model.
func (in *initializer) registryOptions() ([]registry.Option, bool) {
	var opts []registry.Option
	if path := in.getenv(dockerConfigEnv); path != "" {
		if _, err := registry.NewClient(registry.WithDockerConfig(path)); err != nil {
			in.log.Error("cannot use the registry credentials $"+dockerConfigEnv+" names; nothing was written", "path", path, "error", err.Error())
			return nil, false
		}
		opts = append(opts, registry.WithDockerConfig(path))
	}
	if in.getenv(insecureRegistryEnv) == "true" {
		// KServe's own initializer then drops TLS for every registry. Here the policy decides:
		// plain HTTP only for a loopback registry whose entry says plainHTTP: true.
		in.log.Warn("$" + insecureRegistryEnv + " is ignored: a registry is reached over plain HTTP only where the policy's registries entry says plainHTTP (loopback registries only); every other registry over verified HTTPS")
	}
	return opts, true
}

// loadPolicy reads the policy from the flag, the environment or the default file, in that order.
func (in *initializer) loadPolicy(flagPath string) (*modelverify.Policy, string, error) {
	if flagPath != "" {
		p, err := modelverify.LoadPolicy(flagPath)
		return p, flagPath, err
	}
	if text := in.getenv(policyEnv); text != "" {
		p, err := modelverify.ParsePolicy([]byte(text))
		return p, "$" + policyEnv, err
	}
	p, err := modelverify.LoadPolicy(defaultPolicyFile)
	return p, defaultPolicyFile, err
}

// pull verifies one model and publishes it into dest; on any failure dest is left empty.
func (in *initializer) pull(ctx context.Context, p *modelverify.Policy, src, dest string, interval time.Duration, registryOpts []registry.Option) int {
	log := in.log.With("src_uri", src, "dest_path", dest)
	start := in.now()
	cacheDir := in.getenv("HF_HUB_CACHE")
	if cacheDir == "" {
		cacheDir = filepath.Join(dest, stagingCache)
	}
	if err := prepareDest(dest, cacheDir); err != nil {
		log.Error("destination is not usable; nothing was written", "error", err.Error())
		return exitError
	}
	// A cache inside dest (the usual case: the pod's only writable volume) is staging only. It
	// is made private to this user, and goes when the run ends, so dest holds exactly the
	// verified files, or nothing.
	top, inside := topEntryWithin(dest, cacheDir)
	if inside {
		if err := os.Mkdir(top, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			log.Error("cannot make the staging cache; nothing was written", "error", err.Error())
			return exitError
		}
		defer func() {
			in.observe("before removing the staging cache")
			os.RemoveAll(top)
		}()
	}

	// Decisions go to stderr as slog JSON whatever the policy says, plus the policy's own sinks.
	audit := p.Audit
	audit.Slog = true
	sink, err := modelverify.OpenAuditSink(audit, in.log)
	if err != nil {
		log.Error("cannot open the audit log; nothing was written", "error", err.Error())
		return exitError
	}
	progress := newPullLog(log, in.now)
	progress.oci = strings.HasPrefix(src, registry.Scheme)
	v, err := modelverify.NewVerifier(p, append([]modelverify.Option{
		modelverify.WithCacheDir(cacheDir),
		modelverify.WithLogger(in.log),
		modelverify.WithAuditSink(sink),
		modelverify.WithRegistryOptions(registryOpts...),
		modelverify.WithProgress(func(ev modelverify.Progress) {
			progress.report(ev)
			in.observe("download")
		})}, in.verifierOpts...)...)
	if err != nil {
		sink.Close()
		log.Error("cannot build the verifier; nothing was written", "error", err.Error())
		return exitError
	}
	defer v.Close()

	pullCtx, stopSummaries := context.WithCancel(ctx)
	if interval > 0 {
		go progress.every(pullCtx, interval)
	}
	m, err := v.Verify(ctx, src)
	stopSummaries()
	if err != nil {
		emptyDir(dest)
		return in.refused(log, "model refused; nothing was written", err, start)
	}
	in.observe("verified")

	// Linking needs the cache on dest's file system, which a cache inside dest is (unless a
	// mount sits between them: then the copy, which that file system has room for). A cache
	// elsewhere is kept, so dest gets its own copy rather than sharing the cache's files.
	published := "linked"
	if inside {
		err = m.Link(ctx, dest)
		if errors.Is(err, syscall.EXDEV) {
			log.Warn("the staging cache is on another file system than dest_path; copying the verified files", "error", err.Error())
			published, err = "copied", m.Export(ctx, dest)
		}
	} else {
		published, err = "copied", m.Export(ctx, dest)
	}
	if err != nil {
		emptyDir(dest)
		return in.refused(log, "publishing the verified model failed; nothing was written", err, start)
	}
	in.observe("published")
	if err := writeEvidence(dest, m.Evidence()); err != nil {
		emptyDir(dest)
		return in.refused(log, "writing the evidence failed; nothing was written", err, start)
	}
	in.observe("evidence written")

	ev := m.Evidence()
	var bytes int64
	for _, f := range m.Files() {
		bytes += f.Size
	}
	log.Info("model verified and ready", "decision", string(ev.Decision), "evidence", ev, "bytes", bytes,
		"published", published, "evidence_file", filepath.Join(dest, evidenceFile),
		"seconds", seconds(in.now().Sub(start)))
	return exitOK
}

// refused logs the run's last line for a model that was not published: the decision, the
// reasons and each problem (file, expected, found), and returns the exit status. A refusal of
// the model exits 1; any other failure 2: an I/O error, or a failure that says nothing about
// the model and may pass on a retry (temporary: the Hub or registry unreachable, 408, 429 or
// 5xx after every retry, a stall, a timeout, the run cancelled). Either way nothing was written.
func (in *initializer) refused(log *slog.Logger, msg string, err error, start time.Time) int {
	code := exitError
	attrs := []any{"decision", string(modelverify.DecisionRefused)}
	var ref *modelverify.Refusal
	if errors.As(err, &ref) {
		code = exitRefused
		attrs = append(attrs, "reasons", ref.ReasonNames(), "problems", problemStrings(ref.Problems))
		if ref.Commit != "" {
			attrs = append(attrs, "commit", ref.Commit)
		}
	}
	if temporary(err) {
		code = exitError
		attrs = append(attrs, "temporary", true)
	}
	attrs = append(attrs, "error", err.Error(), "seconds", seconds(in.now().Sub(start)))
	log.Error(msg, attrs...)
	return code
}

// temporary reports whether err says nothing about the model and may pass if tried again. The
// registry's sentinel is checked beside modelverify's: the gate wraps registry failures as
// they come.
func temporary(err error) bool {
	return errors.Is(err, modelverify.ErrTemporary) || errors.Is(err, registry.ErrTemporary) || errors.Is(err, context.Canceled)
}

func problemStrings(problems []modelverify.Problem) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.String()
	}
	return out
}

// prepareDest makes dest and checks that it is empty, or holds only what an earlier run of
// this initializer wrote: a complete result (its evidence file is there), or the staging left
// by a run that was killed (the staging cache, Export's staging directories). That is cleared,
// and the model verified again. Anything else is refused: the initializer never deletes files
// it did not write.
func prepareDest(dest, cacheDir string) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dest)
	if err != nil {
		return err
	}
	cacheTop, _ := topEntryWithin(dest, cacheDir)
	var foreign []string
	complete := false
	for _, e := range entries {
		switch name := e.Name(); {
		case name == evidenceFile:
			complete = true
		case name == stagingCache, filepath.Join(dest, name) == cacheTop, strings.HasPrefix(name, ".modelverify-export-"):
		default:
			foreign = append(foreign, name)
		}
	}
	if len(foreign) > 0 && !complete {
		if len(foreign) > 3 {
			foreign = append(foreign[:3], "...")
		}
		return fmt.Errorf("%s is not empty (%s) and was not written by this initializer", dest, strings.Join(foreign, ", "))
	}
	emptyDir(dest)
	return nil
}

// emptyDir removes everything inside dir, keeping dir itself (KServe mounts it).
func emptyDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// topEntryWithin reports whether p lies inside dir, and if so the entry of dir that holds it.
func topEntryWithin(dir, p string) (string, bool) {
	absDir, err1 := filepath.Abs(dir)
	absP, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(absDir, absP)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return filepath.Join(absDir, first), true
}

// writeEvidence records what was verified beside the model, for the predictor's operators.
func writeEvidence(dest string, ev modelverify.Evidence) error {
	data, err := json.MarshalIndent(map[string]any{
		"ref": ev.Ref, "repo": ev.Repo, "revision": ev.Revision, "commit": ev.Commit,
		"endpoint": ev.Endpoint, "publisher": ev.Publisher, "verification": ev.Verification,
		"decision": ev.Decision, "signer": ev.Signer, "signedAt": ev.SignedAt,
		"manifestDigest": ev.ManifestDigest, "digests": ev.Digests, "formats": ev.Formats,
		"verifiedAt": ev.VerifiedAt,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dest, evidenceFile), append(data, '\n'), 0o644)
}
