package main

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseAuditTime: --since and --until never panic, and a duration never reaches forward.
func FuzzParseAuditTime(f *testing.F) {
	for _, s := range []string{"", "24h", "7d", "90m", "2026-11-01", "2026-11-01T10:00:00Z", "-1h", "99999999d", "1e9h", "2026-02-30"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseAuditTime(s, now)
		if err != nil {
			return
		}
		if !strings.Contains(s, "-") && !strings.Contains(s, ":") && got.After(now) {
			t.Errorf("%q: duration %v reaches past now", s, got)
		}
	})
}

// FuzzFlagParse: any command line is parsed or refused with a usage error, never a panic, and
// positional arguments keep their order.
func FuzzFlagParse(f *testing.F) {
	for _, s := range []string{"key . --signature model.sig", "--no-ignore-git-paths .", "-- --json", "--ignore_paths=a --ignore-paths b x", "--no-such", "--hash=", "--sigantur x", "key --help", "sigstore -h ."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e := &env{stderr: &strings.Builder{}}
		fs := newFlagSet(e, "fuzz", "fuzz [key|certificate|sigstore] M\n  key: --signature S\n  sigstore: --x\n           --y")
		fs.own = map[string][]string{methodKey: {"signature"}, methodCertificate: {"hash"}, methodSigstore: nil}
		var mf modelFlags
		mf.register(fs)
		sig := fs.String("signature", "", "")
		args := strings.Fields(line)
		pos, err := fs.parse(args)
		if err != nil {
			return
		}
		_ = sig
		// Every positional argument was an argument, in order.
		i := 0
		for _, a := range args {
			if i < len(pos) && a == pos[i] {
				i++
			}
		}
		if i != len(pos) {
			t.Errorf("%q: positional %q not a subsequence of the arguments", line, pos)
		}
	})
}
