package main

import (
	"flag"
	"io"
	"strings"
)

// flagSet wraps flag.FlagSet so that flags and positional arguments may be mixed, as in
// "verifier sign key MODEL --signature model.sig", and so that model_signing's older
// underscore spellings (--public_key) work too.
type flagSet struct {
	*flag.FlagSet
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{fs}
}

// parse parses args and returns the positional arguments, wherever they stood.
func (fs *flagSet) parse(args []string) ([]string, error) {
	norm := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "--") && a != "--" {
			name, value, hasValue := strings.Cut(a[2:], "=")
			name = strings.ReplaceAll(name, "_", "-")
			a = "--" + name
			if hasValue {
				a += "=" + value
			}
		}
		norm[i] = a
	}
	var positional []string
	for {
		if err := fs.Parse(norm); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
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

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
