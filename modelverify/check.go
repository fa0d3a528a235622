package modelverify

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/echelongraph/go-modelverify/hub"
)

// CheckPolicy runs every check NewVerifier(p, opts...) runs before it starts, and returns the
// same *PolicyError listing every problem, or nil; it is what `verifier policy check` runs. A
// policy that passes makes a Verifier, with the same options and environment. Beyond Validate
// (the document, and every key, certificate and trust root built into the verifier that will
// use it), it checks what the Verifier opens when it starts: the Hub client's configuration
// (the endpoint and token from the options or the environment), the audit log (its directory
// exists and the file can be appended to), and a record key the service names (it can be read
// and is long enough, or can be created, and lies outside the cache). It has no side effect:
// nothing is created, written or fetched.
func CheckPolicy(p *Policy, opts ...Option) error {
	_, err := preflight(p, newConfig(opts))
	return err
}

// preflightResult is what preflight built on the way, for NewVerifier to keep.
type preflightResult struct {
	signers map[string]*signers
	hubOpts []hub.Option
	probe   *hub.Client
}

// newConfig applies the options over the defaults.
func newConfig(opts []Option) config {
	cfg := config{environment: true}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// preflight is the one code path by which NewVerifier and CheckPolicy judge a policy and the
// resources it names. The audit log and the record key are only checked here: NewVerifier
// opens or makes them afterwards.
func preflight(p *Policy, cfg config) (*preflightResult, error) {
	if p == nil {
		return nil, errors.New("modelverify: NewVerifier needs a policy")
	}
	ps := p.check()
	out := &preflightResult{signers: map[string]*signers{}}
	if len(ps) == 0 {
		// check has built every identity once; a file that changed since is still reported.
		for i := range p.Publishers {
			pub := &p.Publishers[i]
			s, err := newSigners(pub)
			if err != nil {
				ps.add(fmt.Sprintf("publishers[%d]", i), "%v", err)
				continue
			}
			out.signers[pub.Name] = s
		}
	}
	more, configErr := p.checkResources(cfg, out)
	return out, joinProblems(append(ps, more...), "", configErr)
}

// CheckPolicyFile loads the policy file at path and runs CheckPolicy's checks on it, reporting
// in one *PolicyError both the document's problems (as LoadPolicy does) and those of the
// resources it names (the audit log, a record key), so that a policy with both kinds is fixed
// in one round. It is what `verifier policy check` runs.
func CheckPolicyFile(path string, opts ...Option) error {
	data, err := readBounded(path, maxPolicySize)
	if err != nil {
		return fmt.Errorf("modelverify: policy: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("modelverify: policy %s: %w", path, err)
	}
	p, ps := decodePolicy(data, dir)
	if p == nil {
		return ps.err(path)
	}
	if len(ps) > 0 {
		// The document has problems, so no verifier is built; what it names is still checked.
		more, configErr := p.checkResources(newConfig(opts), &preflightResult{})
		return joinProblems(append(ps, more...), path, configErr)
	}
	_, err = preflight(p, newConfig(opts))
	var pe *PolicyError
	if errors.As(err, &pe) {
		pe.Source = path
	}
	return err
}

// joinProblems is the error for ps and a problem of the service's own configuration, either
// of which may be empty. The configuration's problem is not the policy's, so it is reported
// beside the *PolicyError rather than in it.
func joinProblems(ps problems, source string, configErr error) error {
	switch {
	case len(ps) == 0:
		return configErr
	case configErr == nil:
		return ps.err(source)
	}
	return errors.Join(ps.err(source), configErr)
}

// checkResources checks what the Verifier opens when it starts: the Hub client's settings,
// the audit log and a named record key. It fills out's Hub options and probe client.
func (p *Policy) checkResources(cfg config, out *preflightResult) (problems, error) {
	var ps problems
	var configErr error
	out.hubOpts = cfg.baseHubOptions(p)
	probe, err := hub.NewClient(out.hubOpts...)
	switch {
	case !cfg.environment && cfg.cacheDir == "":
		// The default cache is found through HF_HUB_CACHE, HF_HOME or HOME.
		configErr = errors.New("modelverify: WithEnvironment(false) needs WithCacheDir: without the environment there is no default cache")
		probe = nil
	case err != nil:
		configErr = fmt.Errorf("modelverify: %w", err)
	default:
		out.probe = probe
	}
	if p.Audit.Path != "" && !cfg.sinkSet && !strings.ContainsRune(p.Audit.Path, 0) {
		if err := checkAppendable(p.Audit.Path); err != nil {
			ps.add("audit.path", "%v", err)
		}
	}
	if p.Records.Recheck != RecheckFull && probe != nil {
		if path, field, named := cfg.recordKeyPath(p); named && !strings.ContainsRune(path, 0) {
			if err := checkRecordKey(path, probe.Cache().Dir); err != nil {
				ps.add(field, "%v", err)
			}
		}
	}
	return ps, configErr
}

// checkAppendable reports whether the audit log at path can be opened as FileSink opens it:
// an existing regular file that can be written, or a new one in an existing directory that can
// be written. The file is opened only if it exists, and not written.
func checkAppendable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("the audit log cannot be appended to: %w", err)
		}
		return f.Close()
	case errors.Is(err, fs.ErrNotExist):
		return checkWritableDir(filepath.Dir(path), "the audit log")
	default:
		return err
	}
}

// checkWritableDir reports whether dir exists and a file can be created in it.
func checkWritableDir(dir, what string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the directory %s does not exist, so %s cannot be created there; create it (mkdir -p %s) or choose another path", dir, what, dir)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	const writeOK = 2 // W_OK: access(2) asks whether this process may create files in dir
	if err := syscall.Access(dir, writeOK); err != nil {
		return fmt.Errorf("%s cannot be created in %s: %w", what, dir, err)
	}
	return nil
}

// checkRecordKey checks a record key the service named, as readOrCreateRecordKey will use it:
// outside the cache, and either a key long enough or a file that can be made.
func checkRecordKey(path, cacheDir string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if cache, err := filepath.Abs(cacheDir); err == nil && pathWithin(cache, abs) {
		return fmt.Errorf("%s lies inside the cache %s: whoever can write the cache could read it; keep it elsewhere", abs, cache)
	}
	if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
		return checkWritableDir(filepath.Dir(abs), "the record key")
	}
	_, err = readRecordKey(abs)
	return err
}

// recordKeyPath is the record key file a service names, and the field or setting that named
// it: the option, else MODELVERIFY_RECORD_KEY_FILE (unless the environment is ignored), else
// the policy's records.keyFile. named is false when none does and the default applies.
func (c *config) recordKeyPath(p *Policy) (path, field string, named bool) {
	switch {
	case c.recordKey != "":
		return c.recordKey, "WithRecordKeyFile", true
	case c.environment && os.Getenv(RecordKeyEnv) != "":
		return os.Getenv(RecordKeyEnv), RecordKeyEnv, true
	case p.Records.KeyFile != "":
		return p.Records.KeyFile, "records.keyFile", true
	}
	return "", "", false
}

// baseHubOptions are the Hub client options every client of the Verifier starts from: the
// environment's place (ignored with WithEnvironment(false)), then the caller's own, then the
// endpoint and cache the Verifier was given.
func (c *config) baseHubOptions(p *Policy) []hub.Option {
	var opts []hub.Option
	if !c.environment {
		// Nothing from the environment: no HF_* variables, no token file under the home
		// directory. The caller's own hub options, which come after, may still set a token.
		direct := http.DefaultTransport.(*http.Transport).Clone()
		direct.Proxy = nil // HTTPS_PROXY, HTTP_PROXY and NO_PROXY are environment too
		opts = append(opts, hub.WithEnv(func(string) string { return "" }), hub.WithToken(""), hub.WithOffline(false),
			hub.WithTransport(direct))
	}
	opts = append(opts, slices.Clone(c.hubOptions)...)
	// The endpoint: the caller's choice (a URL or a policy endpoint's name), else HF_ENDPOINT,
	// else huggingface.co, as the hub client resolves it.
	want := c.endpoint
	if ep, ok := p.Endpoint(want); ok && want != "" {
		want = ep.URL
	}
	if want != "" {
		opts = append(opts, hub.WithEndpoint(want))
	}
	if c.cacheDir != "" {
		opts = append(opts, hub.WithCacheDir(c.cacheDir))
	}
	return opts
}

// endpointSource says where the endpoint the Verifier uses came from, so that a refusal of it
// tells the operator what to change.
func (c *config) endpointSource(url string) string {
	switch {
	case c.endpoint != "":
		return "the endpoint was given by the service (WithEndpoint)"
	case c.environment && os.Getenv("HF_ENDPOINT") != "":
		return "the endpoint comes from HF_ENDPOINT; set it to one of the policy's endpoints"
	case url != hub.DefaultEndpoint:
		return "the endpoint was given to the Hub client (WithHubOptions)"
	case !c.environment:
		return "the endpoint is the default, " + hub.DefaultEndpoint + ", as WithEnvironment(false) was given without WithEndpoint"
	}
	return "the endpoint is the default, " + hub.DefaultEndpoint + ", because HF_ENDPOINT is unset; set HF_ENDPOINT (or WithEndpoint, or --endpoint) to one of the policy's endpoints"
}
