package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
)

func runPull(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "pull", "verifier pull hf://org/name[@rev]|oci://host/repo[:tag|@digest] --policy P [--dest DIR] [--cache-dir D] [--endpoint URL]")
	var hf hubFlags
	hf.register(fs)
	policyPath := fs.String("policy", "", "the policy file (required)")
	dest := fs.String("dest", "", "copy the verified files into DIR, only once verification has passed")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("pull: want one hf://org/name[@rev], got %d arguments", len(pos))
	}
	if *policyPath == "" {
		return usagef("pull: --policy is required")
	}
	if strings.HasPrefix(pos[0], registry.Scheme) {
		if _, err := registry.ParseReference(pos[0]); err != nil {
			return usagef("pull: %v", err)
		}
	} else if _, err := hub.ParseReference(pos[0]); err != nil {
		return usagef("pull: %v", err)
	}
	p, err := modelverify.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	bar := newProgress(e, "resolving")
	logRetry := retryLogger(e, bar)
	opts := []modelverify.Option{modelverify.WithProgress(func(pr modelverify.Progress) {
		if pr.State == "retrying" {
			what := pr.File
			if what == "" {
				what = "a request to the Hub"
			}
			logRetry(what, 0, pr.Err)
			return
		}
		if pr.Step == "download" && pr.File != "" {
			if pr.State == "verified" || pr.State == "cached" {
				bar.fileDone(pr.File, pr.Size, pr.State == "cached")
			} else {
				bar.file(pr.File, pr.Bytes, pr.Size)
			}
			return
		}
		bar.step(stepLabel(pr.Step))
	})}
	opts = append(opts, hf.verifierOptions()...)
	v, err := modelverify.NewVerifier(p, opts...)
	if err != nil {
		return err
	}
	defer v.Close()
	m, err := v.Verify(ctx, pos[0])
	bar.finish()
	if err != nil {
		return pullFailure(pos[0], err, &hf, e.getenv)
	}
	out := m.Dir()
	if *dest != "" {
		if err := m.Export(ctx, *dest); err != nil {
			return fmt.Errorf("pull: exporting the verified files to %s: %w", *dest, err)
		}
		out = *dest
	}
	ev := m.Evidence()
	if e.json {
		j := evidenceJSON(ev)
		j["dir"] = out
		return writeJSON(e, j)
	}
	fmt.Fprintln(e.stdout, out)
	if e.verbose {
		printEvidence(e.stderr, ev, "  ")
	}
	return nil
}

// pullFailure is the error pull reports for ref. A Hub that cannot be reached gets the hint of
// which Hub it was; a registry's error already names its host, and the Hub's hint (HF_ENDPOINT)
// would send the operator the wrong way.
func pullFailure(ref string, err error, hf *hubFlags, getenv func(string) string) error {
	if strings.HasPrefix(ref, registry.Scheme) {
		return err
	}
	return hf.unreachable(err, getenv)
}

// stepLabel is what a step of the load gate is called on the progress line and in the log.
func stepLabel(step string) string {
	switch step {
	case "resolve":
		return "resolving the revision and listing the files"
	case "signature":
		return "verifying the signature"
	case "download":
		return "downloading and checking the files"
	case "check":
		return "checking the files"
	case "publish":
		return "publishing the snapshot"
	}
	return step
}

// evidenceJSON is the evidence with stable, lower-case field names for machines.
func evidenceJSON(ev modelverify.Evidence) map[string]any {
	j := map[string]any{
		"ok": true, "ref": ev.Ref, "repo": ev.Repo, "revision": ev.Revision, "commit": ev.Commit,
		"endpoint": ev.Endpoint, "publisher": ev.Publisher, "verification": ev.Verification,
		"decision": ev.Decision, "manifestDigest": ev.ManifestDigest, "digests": ev.Digests,
		"formats": ev.Formats, "verifiedAt": ev.VerifiedAt.UTC().Format(time.RFC3339Nano), "cached": ev.Cached,
	}
	if ev.Signer.Kind != "" {
		j["signer"] = map[string]any{"kind": ev.Signer.Kind, "identity": ev.Signer.Identity,
			"issuer": ev.Signer.Issuer, "keyFingerprint": ev.Signer.KeyFingerprint, "extensions": ev.Signer.Extensions}
	}
	if !ev.SignedAt.IsZero() {
		j["signedAt"] = ev.SignedAt.UTC().Format(time.RFC3339)
	}
	if len(ev.Problems) > 0 {
		var ps []string
		for _, p := range ev.Problems {
			ps = append(ps, p.String())
		}
		j["problems"] = ps
	}
	return j
}

// printEvidence writes what a verification proved, for people.
func printEvidence(w io.Writer, ev modelverify.Evidence, indent string) {
	fmt.Fprintf(w, "%sdecision:     %s (%s)\n", indent, ev.Decision, ev.Verification)
	fmt.Fprintf(w, "%srepository:   %s at %s (commit %s)\n", indent, ev.Repo, ev.Revision, ev.Commit)
	if ev.Endpoint != "" {
		fmt.Fprintf(w, "%sendpoint:     %s\n", indent, ev.Endpoint)
	}
	fmt.Fprintf(w, "%spublisher:    %s\n", indent, ev.Publisher)
	if ev.Signer.Kind != "" {
		who := ev.Signer.Identity
		if !strings.HasPrefix(who, ev.Signer.Kind+" ") {
			who = ev.Signer.Kind + " " + who
		}
		if ev.Signer.Issuer != "" {
			who += " (issuer " + ev.Signer.Issuer + ")"
		}
		fmt.Fprintf(w, "%ssigner:       %s\n", indent, who)
		for _, l := range extensionLines(ev.Signer.Extensions) {
			fmt.Fprintf(w, "%s  %s\n", indent, l)
		}
	}
	if ev.ManifestDigest != "" {
		fmt.Fprintf(w, "%sdigest:       %s\n", indent, ev.ManifestDigest)
	}
	names := make([]string, 0, len(ev.Digests))
	for n := range ev.Digests {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%sfiles:        %d\n", indent, len(names))
	for _, n := range names {
		fmt.Fprintf(w, "%s  %-24s %-12s %s\n", indent, n, ev.Formats[n], ev.Digests[n])
	}
	for _, p := range ev.Problems {
		fmt.Fprintf(w, "%sproblem:      %s\n", indent, p)
	}
}
