package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// hubFlags choose the Hub and the cache, overriding HF_ENDPOINT and HF_HUB_CACHE. The token
// comes only from the environment (HF_TOKEN) or huggingface_hub's token file, never from the
// command line, where other users of the machine could read it.
type hubFlags struct {
	endpoint string
	cacheDir string
}

// verifierOptions are the load gate's options for these flags.
func (h *hubFlags) verifierOptions() []modelverify.Option {
	var opts []modelverify.Option
	if h.endpoint != "" {
		opts = append(opts, modelverify.WithEndpoint(h.endpoint))
	}
	if h.cacheDir != "" {
		opts = append(opts, modelverify.WithCacheDir(h.cacheDir))
	}
	return opts
}

// endpoint is the Hub the command will use and where that choice came from, for messages.
func (h *hubFlags) endpointSource(getenv func(string) string) (url, source string) {
	switch {
	case h.endpoint != "":
		return h.endpoint, "--endpoint"
	case getenv("HF_ENDPOINT") != "":
		return getenv("HF_ENDPOINT"), "HF_ENDPOINT"
	}
	return hub.DefaultEndpoint, "the default, as HF_ENDPOINT is unset"
}

// unreachable adds to a failure to connect to the Hub which Hub it was, where that came from,
// and what to check: the usual cause is a wrong or unset HF_ENDPOINT.
func (h *hubFlags) unreachable(err error, getenv func(string) string) error {
	var op *net.OpError
	var dns *net.DNSError
	if err == nil || !(errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")) {
		return err
	}
	url, source := h.endpointSource(getenv)
	return fmt.Errorf("%w; could not reach the Hub at %s (%s): check HF_ENDPOINT (or --endpoint) and the network", err, url, source)
}

// retryLogger prints a line per retry on stderr, for --verbose and in a progress log (stderr
// not a terminal): without it a Hub that does not answer looks like a hang until the retry
// budget runs out.
func retryLogger(e *env, bar *progressBar) func(what string, attempt int, err error) {
	return func(what string, attempt int, err error) {
		if !e.verbose && (bar == nil || !bar.log) {
			return
		}
		bar.clear()
		if attempt > 0 {
			fmt.Fprintf(e.stderr, "verifier: retrying %s (retry %d) after: %v\n", what, attempt, err)
		} else {
			fmt.Fprintf(e.stderr, "verifier: retrying %s after: %v\n", what, err)
		}
	}
}

func (h *hubFlags) register(fs *flagSet) {
	fs.StringVar(&h.endpoint, "endpoint", "", "the Hub's base URL (default $HF_ENDPOINT, else https://huggingface.co)")
	fs.StringVar(&h.cacheDir, "cache-dir", "", "the Hugging Face cache (default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)")
}

func runDownload(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "download", "verifier download hf://org/name[@rev] [--include GLOB]... [--cache-dir D] [--endpoint URL] [--allow-redirect-host HOST]...")
	var (
		hf       hubFlags
		includes stringList
		hosts    stringList
	)
	hf.register(fs)
	fs.Var(&includes, "include", "download only files matching this glob (path.Match syntax; a pattern without '/' also matches base names; repeatable)")
	fs.Var(&hosts, "allow-redirect-host", "a host downloads may be redirected to, besides the endpoint's own (default for huggingface.co: *.hf.co, *.huggingface.co; repeatable)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("download: want one hf://org/name[@rev], got %d arguments", len(pos))
	}
	ref, err := hub.ParseReference(pos[0])
	if err != nil {
		return usagef("download: %v", err)
	}
	for _, p := range includes {
		if _, err := path.Match(p, ""); err != nil {
			return usagef("download: --include %q: %v", p, err)
		}
	}

	bar := newProgress(e, "downloading")
	logRetry := retryLogger(e, bar)
	opts := []hub.Option{hub.WithEnv(e.getenv), hub.WithProgress(func(p hub.Progress) {
		if p.State == hub.ProgressRetrying {
			what := p.Path
			if what == "" {
				what = p.URL
			}
			logRetry(what, p.Attempt, p.Err)
			return
		}
		switch {
		case p.Path == "":
		case p.State == hub.ProgressVerified || p.State == hub.ProgressCached:
			bar.fileDone(p.Path, p.Size, p.State == hub.ProgressCached)
		case p.State == hub.ProgressStarted || p.State == hub.ProgressBytes:
			bar.file(p.Path, p.Bytes, p.Size)
		}
	})}
	if hf.endpoint != "" {
		opts = append(opts, hub.WithEndpoint(hf.endpoint))
	}
	if hf.cacheDir != "" {
		opts = append(opts, hub.WithCacheDir(hf.cacheDir))
	}
	if len(hosts) > 0 {
		opts = append(opts, hub.WithAllowedRedirectHosts(hosts...))
	}
	client, err := hub.NewClient(opts...)
	if err != nil {
		return err
	}
	commit, err := client.ResolveRevision(ctx, ref)
	if err != nil {
		return hf.unreachable(err, e.getenv)
	}
	tree, err := client.ListTree(ctx, ref.RepoID(), commit)
	if err != nil {
		return hf.unreachable(err, e.getenv)
	}
	files := tree
	if len(includes) > 0 {
		files = nil
		for _, f := range tree {
			if matchesAny(includes, f.Path) {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			return fmt.Errorf("download: no file of %s at %s matches --include %v", ref.RepoID(), commit, []string(includes))
		}
	}
	var dlOpts []hub.DownloadOption
	if !hub.IsCommit(ref.Rev()) {
		dlOpts = append(dlOpts, hub.WithRef(ref.Rev()))
	}
	snap, err := client.Download(ctx, ref.RepoID(), commit, files, dlOpts...)
	bar.finish()
	if err != nil {
		// Bytes that are not what the Hub published, or that came from a host nobody approved,
		// are a refusal; a Hub or network failure is an error.
		var re *hub.RedirectError
		if errors.As(err, &re) && re.Host != "" {
			return refusal{fmt.Errorf("%w; to allow it, pass --allow-redirect-host %s", err, re.Host)}
		}
		if errors.Is(err, hub.ErrDigestMismatch) || errors.Is(err, hub.ErrSizeMismatch) ||
			errors.Is(err, hub.ErrSizeExceeded) || errors.Is(err, hub.ErrRedirectNotAllowed) {
			return refusal{err}
		}
		return hf.unreachable(err, e.getenv)
	}
	if e.json {
		list := make([]map[string]any, 0, len(files))
		for _, f := range files {
			d := f.Digest().String()
			if d == "" {
				d = "git-sha1:" + f.OID
			}
			list = append(list, map[string]any{"path": f.Path, "size": f.Size, "digest": d})
		}
		return writeJSON(e, map[string]any{
			"repo": ref.RepoID(), "revision": ref.Rev(), "commit": commit,
			"endpoint": client.Endpoint(), "snapshot": snap.Dir, "files": list,
		})
	}
	fmt.Fprintln(e.stdout, snap.Dir)
	return nil
}

// matchesAny reports whether name matches one of the globs. A glob without '/' also matches
// the base name, so "*.json" selects JSON files in every directory, as hf download does.
func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
		if !strings.Contains(g, "/") {
			if ok, _ := path.Match(g, path.Base(name)); ok {
				return true
			}
		}
	}
	return false
}
