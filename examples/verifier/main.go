// Command verifier signs, verifies, scans and pulls machine-learning models, and is the
// command-line face of go-modelverify. Its sign and verify subcommands take the same arguments
// as Python model_signing's, so switching is a matter of changing the command's name.
//
// Exit status: 0 when the model verified (or the command succeeded), 1 when it was refused,
// 2 on a usage or I/O error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
}

func commands() []command {
	return []command{
		{"digest", "print a model's root digest (sha256:...)", runDigest},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	// Global flags may come before the subcommand.
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
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
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
	fmt.Fprintf(stderr, "verifier: unknown command %q (run 'verifier help')\n", args[0])
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: verifier [--json] [--verbose] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nexit status: 0 verified, 1 refused, 2 usage or I/O error")
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

// report prints err as one line and maps it to an exit status.
func report(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	var r refusal
	switch {
	case errors.As(err, &u):
		fmt.Fprintf(e.stderr, "verifier: %v\n", err)
		return exitError
	case errors.As(err, &r):
		fmt.Fprintf(e.stderr, "verifier: refused: %v\n", err)
		return exitRefused
	default:
		fmt.Fprintf(e.stderr, "verifier: %v\n", err)
		return exitError
	}
}
