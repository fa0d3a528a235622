package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
)

func runPolicy(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "export" { // export.go: the admission policies, with flags of its own
		return runPolicyExport(ctx, e, args[1:])
	}
	const synopsis = "verifier policy show P | check P | explain P hf://org/name[@rev]|oci://host/repo[:tag|@digest] [--endpoint URL] [--online]\n" +
		"  (P may also be given as --policy P)"
	fs := newFlagSet(e, "policy", synopsis)
	var hf hubFlags
	hf.register(fs)
	policyFlag := fs.String("policy", "", "the policy file (or give it as the first argument after the subcommand)")
	online := fs.Bool("online", false, "explain: also run the whole verification against the Hub")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("policy: want show, check or explain")
	}
	sub, pos := pos[0], pos[1:]
	if *policyFlag != "" {
		pos = append([]string{*policyFlag}, pos...)
	}
	want := 1
	if sub == "explain" {
		want = 2
	}
	switch sub {
	case "show", "check", "explain":
	default:
		return usagef("policy: unknown subcommand %q; want show, check or explain", sub)
	}
	if len(pos) != want {
		return usagef("policy %s: want %d arguments (%s), got %d", sub, want, map[int]string{1: "P", 2: "P REF"}[want], len(pos))
	}
	if *online && sub != "explain" {
		return usagef("policy %s: --online applies to explain only", sub)
	}
	if hf.cacheDir != "" {
		return usagef("policy %s: --cache-dir does not apply: explain --online verifies in a temporary cache and leaves nothing behind", sub)
	}
	switch sub {
	case "check":
		return policyCheck(e, pos[0], hf)
	case "show":
		p, err := modelverify.LoadPolicy(pos[0])
		if err != nil {
			return err
		}
		if e.json {
			return writeJSON(e, p)
		}
		showPolicy(e.stdout, pos[0], p)
		return nil
	default:
		p, err := modelverify.LoadPolicy(pos[0])
		if err != nil {
			return err
		}
		return policyExplain(ctx, e, p, pos[1], hf, *online)
	}
}

// policyCheck validates a policy as NewVerifier will (modelverify.CheckPolicyFile): exit 0 when
// the gate would start with it, 1 when it would not (every problem listed), 2 when it cannot be
// read.
func policyCheck(e *env, path string, hf hubFlags) error {
	// Everything the gate checks when it starts (the document, the files it names, the audit
	// log, the record key, the Hub client's settings), by the gate's own code and in one
	// round, so that "valid" means it will start.
	err := modelverify.CheckPolicyFile(path, hf.verifierOptions()...)
	var p *modelverify.Policy
	if err == nil {
		p, err = modelverify.LoadPolicy(path)
	}
	var pe *modelverify.PolicyError
	switch {
	case err == nil:
	case errors.As(err, &pe):
		if e.json {
			var probs []map[string]string
			for _, fe := range pe.Problems {
				probs = append(probs, map[string]string{"field": fe.Field, "message": fe.Message})
			}
			writeJSON(e, map[string]any{"policy": path, "valid": false, "problems": probs})
		} else {
			fmt.Fprintf(e.stdout, "%s: invalid, %s:\n", path, plural(len(pe.Problems), "problem"))
			for _, fe := range pe.Problems {
				fmt.Fprintf(e.stdout, "  %s\n", fe)
			}
			// A problem with the command's own settings (--endpoint, $HF_ENDPOINT), beside the
			// policy's.
			if rest := strings.TrimSpace(strings.TrimPrefix(err.Error(), pe.Error())); rest != "" {
				fmt.Fprintf(e.stdout, "  %s\n", rest)
			}
		}
		return silentExit{exitRefused}
	default:
		return err
	}
	if e.json {
		return writeJSON(e, map[string]any{"policy": path, "valid": true, "mode": p.Mode,
			"endpoints": len(p.Endpoints), "publishers": len(p.Publishers)})
	}
	fmt.Fprintf(e.stdout, "%s: valid: mode %s, %s, %s\n", path, p.Mode, plural(len(p.Endpoints), "endpoint"), plural(len(p.Publishers), "publisher"))
	return nil
}

// showPolicy prints the approved registries and publishers: the answer to "what is the
// approved-registry list?".
func showPolicy(w io.Writer, path string, p *modelverify.Policy) {
	fmt.Fprintf(w, "policy %s (mode %s)\n\napproved endpoints:\n", path, p.Mode)
	for _, ep := range p.Endpoints {
		name := ep.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "  %-10s %s\n", name, ep.URL)
		if len(ep.CDNHosts) > 0 {
			fmt.Fprintf(w, "  %-10s redirects allowed to: %s\n", "", strings.Join(ep.CDNHosts, ", "))
		}
	}
	fmt.Fprintln(w, "\napproved registries (oci://):")
	if len(p.Registries) == 0 {
		fmt.Fprintln(w, "  none: every oci:// reference is refused")
	}
	for _, r := range p.Registries {
		repos := "every repository"
		if len(r.Repositories) > 0 {
			repos = strings.Join(r.Repositories, ", ")
		}
		fmt.Fprintf(w, "  %-10s %s%s: %s\n", yesNo(r.Name != "", r.Name, "-"), r.Host, yesNo(r.PlainHTTP, " (plain HTTP, loopback)", ""), repos)
	}
	fmt.Fprintln(w, "\napproved publishers:")
	for i := range p.Publishers {
		pub := &p.Publishers[i]
		fmt.Fprintf(w, "  %s\n", pub.Name)
		fmt.Fprintf(w, "    namespaces:      %s\n", strings.Join(pub.Namespaces, ", "))
		if len(pub.OCI) > 0 {
			fmt.Fprintf(w, "    oci:             %s (digest %s)\n", strings.Join(pub.OCI, ", "), yesNo(pub.RequireDigest, "required", "not required"))
		}
		eps := "any approved endpoint"
		if len(pub.Endpoints) > 0 {
			eps = strings.Join(pub.Endpoints, ", ")
		}
		fmt.Fprintf(w, "    endpoints:       %s\n", eps)
		if pub.SignatureRequired() {
			fmt.Fprintf(w, "    signature:       required (%s), by any of:\n", pub.SignaturePath())
			for _, id := range pub.Identities {
				fmt.Fprintf(w, "      - %s\n", id)
			}
		} else {
			fmt.Fprintln(w, "    signature:       not required (integrity against the Hub's digests only)")
		}
		fmt.Fprintf(w, "    pinned revision: %s\n", yesNo(pub.RequirePinnedRevision, "required", "not required"))
		fmt.Fprintf(w, "    verified org:    %s\n", yesNo(pub.RequireVerifiedOrg, "required", "not required"))
		if len(pub.IgnorePaths) > 0 {
			fmt.Fprintf(w, "    ignored paths:   %s\n", strings.Join(pub.IgnorePaths, ", "))
		}
	}
	fmt.Fprintf(w, "\ncontent:\n  %s\n", describeContent(&p.Content))
	fmt.Fprintln(w, "\naudit:")
	if p.Audit.Path == "" && !p.Audit.Slog {
		fmt.Fprintln(w, "  not recorded")
	}
	if p.Audit.Path != "" {
		fmt.Fprintf(w, "  log file: %s\n", p.Audit.Path)
	}
	if p.Audit.Slog {
		fmt.Fprintln(w, "  slog: on")
	}
}

func describeContent(c *modelverify.ContentRules) string {
	code := "denied"
	if c.AllowCode {
		code = "allowed"
	}
	s := fmt.Sprintf("formats %s; pickle %s; code %s", strings.Join(c.AllowFormats, ", "), c.PickleRule(), code)
	limit := func(name string, v int64, str string) {
		if v > 0 {
			s += fmt.Sprintf("; %s %s", name, str)
		}
	}
	limit("at most files:", int64(c.MaxFiles), fmt.Sprint(c.MaxFiles))
	limit("largest file:", int64(c.MaxFileSize), c.MaxFileSize.String())
	limit("largest model:", int64(c.MaxTotalSize), c.MaxTotalSize.String())
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// explainStep is one step of an explanation.
type explainStep struct {
	Step   string `json:"step"`
	Result string `json:"result"` // pass, refuse, online (checked only against the Hub), info
	Detail string `json:"detail"`
	Reason string `json:"reason,omitempty"`
}

// policyExplain says, step by step, what the policy decides for ref from the policy alone.
func policyExplain(ctx context.Context, e *env, p *modelverify.Policy, ref string, hf hubFlags, online bool) error {
	var steps []explainStep
	refused := ""
	add := func(step, result, detail string, reason *modelverify.Reason) {
		s := explainStep{Step: step, Result: result, Detail: detail}
		if reason != nil {
			s.Reason = reason.Name()
			if refused == "" {
				refused = reason.Name()
			}
		}
		steps = append(steps, s)
	}
	if strings.HasPrefix(ref, registry.Scheme) {
		if err := explainOCI(p, ref, add); err != nil {
			return usagef("policy explain: %v", err)
		}
		return explainDecision(ctx, e, p, ref, hf, online, steps, refused)
	}
	r, err := hub.ParseReference(ref)
	if err != nil {
		return usagef("policy explain: %v", err)
	}

	revKind := "a branch or tag, resolved to a commit online"
	if hub.IsCommit(r.Rev()) {
		revKind = "a commit"
	}
	add("reference", "info", fmt.Sprintf("repository %s, revision %s (%s)", r.RepoID(), r.Rev(), revKind), nil)

	endpoint := hf.endpoint
	source := "--endpoint"
	if endpoint == "" {
		endpoint, source = e.getenv("HF_ENDPOINT"), "$HF_ENDPOINT"
	}
	if endpoint == "" {
		endpoint, source = hub.DefaultEndpoint, "the default"
	}
	ep, ok := p.Endpoint(endpoint)
	if ok {
		add("endpoint", "pass", fmt.Sprintf("%s (%s) is an approved endpoint%s", endpoint, source, nameSuffix(ep.Name)), nil)
	} else {
		add("endpoint", "refuse", fmt.Sprintf("%s (%s) is not one of the policy's endpoints", endpoint, source), modelverify.ErrEndpointNotAllowed)
	}

	pub, err := p.Publisher(r.RepoID())
	if err != nil {
		add("publisher", "refuse", err.Error(), modelverify.ErrPublisherNotAllowed)
	} else {
		add("publisher", "pass", fmt.Sprintf("%s claims %s through namespace %q", pub.Name, r.RepoID(), matchingNamespace(pub, r.RepoID())), nil)
		switch {
		case ep == nil:
		case pub.AllowsEndpoint(ep):
			eps := "any approved endpoint"
			if len(pub.Endpoints) > 0 {
				eps = strings.Join(pub.Endpoints, ", ")
			}
			add("publisher endpoint", "pass", fmt.Sprintf("%s may be pulled from %s", pub.Name, eps), nil)
		default:
			add("publisher endpoint", "refuse", fmt.Sprintf("%s may be pulled only from %s, not %s", pub.Name, strings.Join(pub.Endpoints, ", "), ep.URL), modelverify.ErrEndpointNotAllowed)
		}
		switch {
		case !pub.RequirePinnedRevision:
			add("pinned revision", "pass", "not required", nil)
		case hub.IsCommit(r.Rev()):
			add("pinned revision", "pass", "required, and "+r.Rev()+" is a commit", nil)
		default:
			add("pinned revision", "refuse", fmt.Sprintf("required, and %q is not a 40-hex commit", r.Rev()), modelverify.ErrUnpinnedRevision)
		}
		if pub.RequireVerifiedOrg {
			add("verified organisation", "online", fmt.Sprintf("required: the Hub must mark %s verified", r.Namespace), nil)
		} else {
			add("verified organisation", "pass", "not required", nil)
		}
		if pub.SignatureRequired() {
			var ids []string
			for _, id := range pub.Identities {
				ids = append(ids, id.String())
			}
			detail := fmt.Sprintf("required: %s at the commit must verify, signed by any of: %s", pub.SignaturePath(), strings.Join(ids, "; "))
			if pub.TrustRoot != "" {
				detail += "; Sigstore trust root " + pub.TrustRoot
			}
			add("signature", "online", detail, nil)
			add("manifest", "online", "every file in the repository must be signed and match its signed digest (ignored: "+ignoredList(pub)+")", nil)
		} else {
			add("signature", "pass", "not required: files are checked against the Hub's own digests (integrity, not authenticity)", nil)
		}
	}
	add("content", "online", describeContent(&p.Content), nil)
	return explainDecision(ctx, e, p, ref, hf, online, steps, refused)
}

// explainDecision prints the steps and the decision the policy alone makes, and with online,
// runs the whole verification.
func explainDecision(ctx context.Context, e *env, p *modelverify.Policy, ref string, hf hubFlags, online bool, steps []explainStep, refused string) error {
	decision := "proceeds to the online checks (marked online)"
	if refused != "" {
		if p.Enforcing() {
			decision = "refused by the policy alone: " + refused
		} else {
			decision = "would be refused (" + refused + "), but the policy is in audit mode: recorded as audit-allowed"
		}
	}
	if e.json && !online {
		if err := writeJSON(e, map[string]any{"ref": ref, "mode": p.Mode, "steps": steps, "decision": decision, "refused": refused != "" && p.Enforcing()}); err != nil {
			return err
		}
	} else if !e.json {
		fmt.Fprintf(e.stdout, "explain %s (policy mode %s)\n", ref, p.Mode)
		for i, s := range steps {
			fmt.Fprintf(e.stdout, "%2d. %-22s %-7s %s\n", i+1, s.Step, s.Result, s.Detail)
		}
		fmt.Fprintf(e.stdout, "decision: %s\n", decision)
	}
	if refused != "" && p.Enforcing() {
		return silentExit{exitRefused}
	}
	if !online {
		return nil
	}
	return explainOnline(ctx, e, p, ref, hf, steps)
}

// explainOnline runs the whole verification of ref and shows its result against the steps the
// policy alone could not decide. It is a question, not a load: the verification runs in a
// temporary cache with its own record key, writes no audit record, and leaves nothing behind.
func explainOnline(ctx context.Context, e *env, p *modelverify.Policy, ref string, hf hubFlags, steps []explainStep) error {
	tmp, err := os.MkdirTemp("", "modelverify-explain-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	opts := append(hf.verifierOptions(), modelverify.WithCacheDir(filepath.Join(tmp, "hub")),
		modelverify.WithRecordKeyFile(filepath.Join(tmp, "record.key")), modelverify.WithAuditSink(modelverify.DiscardSink{}))
	v, err := modelverify.NewVerifier(p, opts...)
	if err != nil {
		return err
	}
	defer v.Close()
	m, verr := v.Verify(ctx, ref)
	var refusal *modelverify.Refusal
	if verr != nil && !errors.As(verr, &refusal) {
		return verr // the question could not be answered: the Hub or the disk failed
	}
	steps = onlineResults(steps, refusal)
	if e.json {
		j := map[string]any{"ref": ref, "mode": p.Mode, "steps": steps, "refused": refusal != nil}
		if m != nil {
			for k, val := range evidenceJSON(m.Evidence()) {
				j[k] = val
			}
		}
		if refusal != nil {
			j["refusal"] = refusal
		}
		if err := writeJSON(e, j); err != nil {
			return err
		}
		if refusal != nil {
			return silentExit{exitRefused} // one JSON document, the refusal inside it
		}
	} else {
		fmt.Fprintf(e.stdout, "online %s (policy mode %s, a temporary cache, no audit record)\n", ref, p.Mode)
		for i, s := range steps {
			fmt.Fprintf(e.stdout, "%2d. %-22s %-7s %s\n", i+1, s.Step, s.Result, s.Detail)
		}
		if m != nil {
			fmt.Fprintln(e.stdout, "online: allowed")
			printEvidence(e.stdout, m.Evidence(), "  ")
		}
	}
	return verr
}

// onlineSteps says which explanation step each refusal reason belongs to.
var onlineSteps = map[string][]*modelverify.Reason{
	"verified organisation": {modelverify.ErrUnverifiedOrg},
	"signature":             {modelverify.ErrUnsigned, modelverify.ErrSignature, modelverify.ErrIdentity},
	"manifest":              {modelverify.ErrManifest, modelverify.ErrDigestMismatch, modelverify.ErrMissingFile, modelverify.ErrUnexpectedFile},
	"content":               {modelverify.ErrUnsafeContent, modelverify.ErrFormatNotAllowed, modelverify.ErrLimitExceeded},
}

// onlineResults fills in the steps marked online from the verification's outcome: each one a
// refusal reason belongs to is refused with it, the others passed. Reasons no step covers (a
// redirect, the Hub's own digests) get a step of their own, so none is hidden.
func onlineResults(steps []explainStep, refusal *modelverify.Refusal) []explainStep {
	out := slices.Clone(steps)
	var reasons []*modelverify.Reason
	if refusal != nil {
		reasons = refusal.Reasons()
	}
	placed := map[*modelverify.Reason]bool{}
	for i := range out {
		if out[i].Result != "online" {
			continue
		}
		out[i].Result = "pass"
		for _, r := range onlineSteps[out[i].Step] {
			if slices.Contains(reasons, r) {
				out[i].Result, out[i].Reason = "refuse", r.Name()
				placed[r] = true
			}
		}
	}
	for _, r := range reasons {
		if !placed[r] {
			out = append(out, explainStep{Step: "online check", Result: "refuse", Reason: r.Name(), Detail: r.Error()})
		}
	}
	if refusal != nil {
		// The refusal's own message names the file, what was expected and what was found.
		out = append(out, explainStep{Step: "decision", Result: "refuse", Detail: refusal.Error()})
	} else {
		out = append(out, explainStep{Step: "decision", Result: "pass", Detail: "allowed"})
	}
	return out
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", name)
}

func ignoredList(pub *modelverify.Publisher) string {
	return strings.Join(append([]string{pub.SignaturePath()}, pub.IgnorePaths...), ", ")
}

// matchingNamespace finds which of pub's namespaces claims repoID, by the policy's own rule of
// precedence: it asks Policy.Publisher about probe policies of one or two namespaces, so that
// the explanation can never disagree with the decision.
func matchingNamespace(pub *modelverify.Publisher, repoID string) string {
	best := ""
	for _, ns := range pub.Namespaces {
		probe := &modelverify.Policy{Publishers: []modelverify.Publisher{{Name: "candidate", Namespaces: []string{ns}}}}
		if _, err := probe.Publisher(repoID); err != nil {
			continue
		}
		if best == "" {
			best = ns
			continue
		}
		probe.Publishers = append(probe.Publishers, modelverify.Publisher{Name: "best", Namespaces: []string{best}})
		if winner, err := probe.Publisher(repoID); err == nil && winner.Name == "candidate" {
			best = ns
		}
	}
	return best
}
