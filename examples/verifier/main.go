// Command verifier signs, verifies, scans and pulls machine-learning models, and is the
// command-line face of go-modelverify. Its sign and verify subcommands take the same arguments
// as Python model_signing's, so switching is a matter of changing the command's name:
//
//	verifier sign   [key|certificate|sigstore] MODEL_PATH [--signature model.sig] [--private-key K] ...
//	verifier verify [key|certificate|sigstore] MODEL_PATH --signature F [--public-key K | --certificate-chain C... | --identity I --identity-provider P]
//	verifier digest MODEL_PATH                      the root digest (sha256:...)
//	verifier scan PATH...                           a verdict per file and per archive member
//	verifier download hf://org/name[@rev]           into the Hugging Face cache, checked against the Hub's digests
//	verifier pull hf://org/name[@rev] --policy P    the whole load gate; --dest DIR copies after verification
//	verifier policy show|check|explain P [REF]      the approved registries, validation, a decision explained
//	verifier audit --log F [--last-blocked]         the audit questions, answered from the log
//	verifier demo                                   the load gate, offline, against a built-in Hub
//
// Every command takes --json (results for machines on stdout) and --verbose (the details of an
// error, and a line per retry of a Hub request); verifier --version prints the build. Progress
// is drawn on stderr when it is a terminal; elsewhere (CI, kubectl logs) it is logged: a line per
// step and per file, and every MODELVERIFY_PROGRESS_INTERVAL (10s) a summary of bytes, rate and
// time left. HF_HUB_DISABLE_PROGRESS_BARS=1 turns both off. The Hub, token and cache come
// from HF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE, as in huggingface_hub.
//
// Exit status: 0 when the model verified (or the command succeeded), 1 when it was refused
// (scan: a file is not safe; policy check: the policy is invalid), 2 on a usage or I/O error,
// including a Hub or network that failed and a full or failing disk: those are recorded with
// reason hub-error, but say nothing about the model, and the same command may pass later.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// Exit statuses, as documented in the README.
const (
	exitOK      = 0
	exitRefused = 1
	exitError   = 2
)

// command is one subcommand: its name, a one-line summary, and what it runs.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch: its output streams and the options every command shares.
type env struct {
	stdout, stderr io.Writer
	json           bool
	verbose        bool
	// terminal is true when stderr is a terminal, the only case in which progress is drawn.
	terminal bool
	// getenv reads the environment (HF_ENDPOINT, HF_HUB_CACHE, ...).
	getenv func(string) string
	// noProgress turns progress off (HF_HUB_DISABLE_PROGRESS_BARS); progressEvery is the interval
	// between the summaries logged when stderr is not a terminal (MODELVERIFY_PROGRESS_INTERVAL).
	noProgress    bool
	progressEvery time.Duration
	// now is the clock of progress summaries; nil means time.Now.
	now func() time.Time
}

func commands() []command {
	return []command{
		{"sign", "sign a model (key, certificate or sigstore), as model_signing does", runSign},
		{"verify", "verify a model's signature (key, certificate or sigstore)", runVerify},
		{"digest", "print a model's root digest (sha256:...)", runDigest},
		{"scan", "scan weight files for content that runs code on load", runScan},
		{"download", "download hf://org/name[@rev], checked against the Hub's digests", runDownload},
		{"pull", "pull hf://org/name[@rev] through the load gate of a policy", runPull},
		{"policy", "show, check or explain a policy file", runPolicy},
		{"audit", "answer the audit questions from an audit log", runAudit},
		{"demo", "run the load gate offline against a built-in Hub", runDemo},
		{"scan-workloads", "report Kubernetes workloads' models and images the policy would not admit", runScanWorkloads},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		terminal: term.IsTerminal(int(os.Stderr.Fd())),
		getenv:   os.Getenv,
	}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if e.getenv == nil {
		e.getenv = os.Getenv
	}
	switch strings.ToLower(e.getenv(disableProgressEnv)) {
	case "1", "true", "yes", "on":
		e.noProgress = true
	}
	e.progressEvery = defaultProgressInterval
	if text := e.getenv(progressIntervalEnv); text != "" {
		d, err := time.ParseDuration(text)
		if err != nil || d < 0 {
			fmt.Fprintf(e.stderr, "verifier: $%s=%q is not a duration such as 10s or 1m (0 turns the summaries off)\n", progressIntervalEnv, text)
			return exitError
		}
		e.progressEvery = d
	}
	// Global flags may come before the subcommand; every subcommand also accepts them after.
	for len(args) > 0 {
		switch args[0] {
		case "--json", "-json":
			e.json = true
		case "--verbose", "-verbose", "-v":
			e.verbose = true
		default:
			goto dispatch
		}
		args = args[1:]
	}
dispatch:
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		printVersion(e)
		return exitOK
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			return report(e, err)
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if near := nearest(args[0], names); near != "" {
		fmt.Fprintf(e.stderr, "verifier: unknown command %q (did you mean %s?)\n", args[0], near)
	} else {
		fmt.Fprintf(e.stderr, "verifier: unknown command %q (run 'verifier help')\n", args[0])
	}
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: verifier [--json] [--verbose] COMMAND [ARGS]    (verifier --version: the build)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'verifier COMMAND --help' for a command's arguments and flags.")
	fmt.Fprintln(w, "\nexit status: 0 verified, 1 refused, 2 usage or I/O error (Hub, network, disk: retry later)")
}

// refusal marks an error as a decision against the model, which exits 1, rather than a failure
// to decide, which exits 2.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// usageError marks an error in the command line.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errHelp is returned by a command asked for --help: its usage went to stderr, and it exits 0.
var errHelp = errors.New("help requested")

// silentExit ends a command with an exit status after it has already printed its result
// (scan's unsafe files, policy check's problems), so report prints nothing more.
type silentExit struct{ code int }

func (s silentExit) Error() string { return fmt.Sprintf("exit status %d", s.code) }

// report prints err as one line (and, with --verbose, its details) and maps it to an exit
// status. A *modelverify.Refusal, or an error marked with refusal, exits 1, unless it is a
// temporary failure (modelverify.ErrTemporary: the Hub, the network, the disk); everything
// else exits 2.
func report(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	var (
		u      usageError
		r      refusal
		s      silentExit
		mvRef  *modelverify.Refusal
		code   = exitError
		prefix = "verifier: "
	)
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &s):
		return s.code
	case errors.As(err, &u):
	case errors.Is(err, modelverify.ErrTemporary):
		// The Hub, the network or the disk failed: nothing was decided about the model, and
		// the same command may pass later (README, "Exit status").
		errors.As(err, &mvRef)
		prefix = "verifier: failed, retry later: "
	case errors.As(err, &r), errors.As(err, &mvRef):
		code, prefix = exitRefused, "verifier: refused: "
	}
	if e.json {
		out := map[string]any{"ok": false, "refused": code == exitRefused, "error": err.Error(),
			"temporary": errors.Is(err, modelverify.ErrTemporary)}
		if mvRef != nil {
			out["refusal"] = mvRef
		}
		writeJSON(e, out)
	}
	fmt.Fprintf(e.stderr, "%s\n", oneLine(destutter(prefix, err.Error())))
	if e.verbose {
		printDetails(e.stderr, err)
	}
	return code
}

// destutter joins the CLI's prefix and an error's message with one "verifier:" and one
// "refused": "verifier: refused: modelverify: refused X" reads "verifier: refused X".
func destutter(prefix, msg string) string {
	msg = strings.TrimPrefix(msg, "modelverify: ")
	if rest, ok := strings.CutPrefix(msg, "refused "); ok && strings.HasSuffix(prefix, "refused: ") {
		return strings.TrimSuffix(prefix, ": ") + " " + rest
	}
	return prefix + msg
}

// printDetails writes what --verbose adds: every problem of a refusal or a policy, every
// difference between a model and its manifest, and the types of the chain of causes.
func printDetails(w io.Writer, err error) {
	var ref *modelverify.Refusal
	if errors.As(err, &ref) {
		for _, p := range ref.Problems {
			fmt.Fprintf(w, "  problem: %s\n", p)
		}
		if ref.Err != nil {
			fmt.Fprintf(w, "  cause: %v\n", ref.Err)
		}
	}
	var pe *modelverify.PolicyError
	if errors.As(err, &pe) {
		for _, p := range pe.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	var diff *manifest.Diff
	if errors.As(err, &diff) {
		for _, name := range diff.Missing {
			fmt.Fprintf(w, "  missing (signed, not in the model): %s\n", name)
		}
		for _, name := range diff.Extra {
			fmt.Fprintf(w, "  extra (in the model, not signed): %s\n", name)
		}
		for _, m := range diff.Mismatched {
			fmt.Fprintf(w, "  changed: %s: signed %s, found %s\n", m.Name, m.Expected, m.Actual)
		}
	}
	var chain []string
	for cur := err; cur != nil && len(chain) < 10; cur = errors.Unwrap(cur) {
		chain = append(chain, fmt.Sprintf("%T", cur))
	}
	fmt.Fprintf(w, "  error chain: %s\n", strings.Join(chain, " > "))
}

// oneLine keeps an error to one line: a multi-line message (a policy's problems) is joined.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n\t", "; ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// writeJSON prints v as one JSON document on stdout.
func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
