package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// flagSet wraps flag.FlagSet so that flags and positional arguments may be mixed, as in
// "verifier sign key MODEL --signature model.sig", so that model_signing's older underscore
// spellings (--public_key) work too, and so that its --no-FLAG spelling turns a boolean off
// (--no-ignore-git-paths).
type flagSet struct {
	*flag.FlagSet
	env      *env
	synopsis string
	// own lists, for sign and verify, the flags that belong to each method, so that a method's
	// help lists only its flags and another method's flags are refused.
	own map[string][]string
}

// newFlagSet returns the flag set of one subcommand; synopsis is its usage line(s), printed
// with the flags for --help. The global --json and --verbose are accepted here too.
func newFlagSet(e *env, name, synopsis string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &flagSet{FlagSet: fs, env: e, synopsis: synopsis}
	fs.BoolVar(&e.json, "json", e.json, "print the result as JSON on stdout")
	fs.BoolVar(&e.verbose, "verbose", e.verbose, "print the details of an error")
	return f
}

// parse parses args and returns the positional arguments, wherever they stood.
func (fs *flagSet) parse(args []string) ([]string, error) {
	norm := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			norm = append(norm, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "--") {
			name, value, hasValue := strings.Cut(a[2:], "=")
			name = strings.ReplaceAll(name, "_", "-")
			if off, ok := strings.CutPrefix(name, "no-"); ok && !hasValue && fs.isBool(off) && fs.Lookup(name) == nil {
				name, value, hasValue = off, "false", true
			}
			a = "--" + name
			if hasValue {
				a += "=" + value
			}
		}
		norm = append(norm, a)
	}
	var positional []string
	for {
		if err := fs.Parse(norm); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.methodIn(append(positional, norm...)))
				return nil, errHelp
			}
			return nil, fs.flagError(err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		norm = rest[1:]
	}
}

// flagError rewrites the flag package's error in the README's --flag spelling, and suggests
// the nearest flag for one that does not exist.
func (fs *flagSet) flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		hint := fmt.Sprintf(" (run 'verifier %s --help' for its flags)", fs.Name())
		if near := nearest(name, names); near != "" {
			hint = fmt.Sprintf(" (did you mean --%s?)", near)
		}
		return usagef("%s: unknown flag --%s%s", fs.Name(), name, hint)
	}
	// "flag needs an argument: -signature", "invalid value ... for flag -x: ...".
	msg = strings.Replace(msg, ": -", ": --", 1)
	msg = strings.Replace(msg, "for flag -", "for flag --", 1)
	return usagef("%s: %s", fs.Name(), msg)
}

func (fs *flagSet) isBool(name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// methodIn returns the method named among args ("verifier sign key --help"), or "".
func (fs *flagSet) methodIn(args []string) string {
	if fs.own == nil {
		return ""
	}
	for _, a := range args {
		if _, ok := fs.own[a]; ok {
			return a
		}
	}
	return ""
}

// printUsage writes the synopsis and the flags, spelt --flag as the README writes them. For a
// method (verifier sign key --help) it writes only that method's synopsis and flags.
func (fs *flagSet) printUsage(method string) {
	w := fs.env.stderr
	synopsis := fs.synopsis
	if method != "" {
		synopsis = methodSynopsis(fs.synopsis, method)
	}
	fmt.Fprintf(w, "usage: %s\n\nflags:\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		if method != "" && !fs.flagOf(f.Name, method) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "[]" {
			fmt.Fprintf(w, " (default %q)", d)
		}
		fmt.Fprintln(w)
	})
}

// flagOf reports whether a flag applies to method: it is the method's own, or no method's.
func (fs *flagSet) flagOf(name, method string) bool {
	if slices.Contains(fs.own[method], name) {
		return true
	}
	for _, names := range fs.own {
		if slices.Contains(names, name) {
			return false
		}
	}
	return true
}

// methodSynopsis cuts a sign or verify synopsis down to one method: the first line with the
// method in place of [key|certificate|sigstore], then that method's lines.
func methodSynopsis(synopsis, method string) string {
	lines := strings.Split(synopsis, "\n")
	out := []string{strings.Replace(lines[0], "[key|certificate|sigstore]", method, 1)}
	in := false
	for _, l := range lines[1:] {
		trimmed := strings.TrimLeft(l, " ")
		if head, _, ok := strings.Cut(trimmed, ":"); ok && !strings.Contains(head, " ") && len(l)-len(trimmed) == 2 {
			in = head == method
		}
		if in {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
