package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// scanLine is one file's (or one archive member's) result, as printed and as --json emits it.
type scanLine struct {
	Path     string   `json:"path"`
	Member   string   `json:"member,omitempty"`
	Format   string   `json:"format"`
	Verdict  string   `json:"verdict"`
	Findings []string `json:"findings,omitempty"`
	Globals  []string `json:"globals,omitempty"`
}

func runScan(ctx context.Context, e *env, args []string) error {
	fls := newFlagSet(e, "scan", "verifier scan PATH...   (a directory is scanned file by file)")
	pos, err := fls.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("scan: want at least one PATH")
	}
	var files []string
	for _, p := range pos {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		// Symbolic links are not followed: what a loader of this directory would read through a
		// link is scanned where the link points, if that is inside what was asked for.
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	sort.Strings(files)

	var lines []scanLine
	unsafe := 0
	for _, f := range files {
		rep, err := modelverify.Scan(ctx, f)
		if err != nil {
			return fmt.Errorf("scan %s: %w", f, err)
		}
		if rep.Verdict != modelverify.VerdictSafe {
			unsafe++
		}
		lines = append(lines, reportLines(f, rep)...)
	}
	if e.json {
		if err := writeJSON(e, map[string]any{"files": len(files), "unsafe": unsafe, "results": lines}); err != nil {
			return err
		}
	} else {
		for _, l := range lines {
			name := l.Path
			if l.Member != "" {
				name += "!" + l.Member
			}
			fmt.Fprintf(e.stdout, "%-10s %-17s %s\n", l.Verdict, l.Format, name)
			for _, f := range l.Findings {
				fmt.Fprintf(e.stdout, "    %s\n", f)
			}
		}
	}
	if unsafe > 0 {
		if !e.json {
			fmt.Fprintf(e.stderr, "verifier: scan: %d of %d files are not safe\n", unsafe, len(files))
		}
		return silentExit{exitRefused}
	}
	return nil
}

// reportLines turns a report into the file's line and one line per archive member, each member
// carrying the findings made inside it and the worst of their verdicts.
func reportLines(path string, rep *modelverify.ScanReport) []scanLine {
	top := scanLine{Path: path, Format: string(rep.Format), Verdict: rep.Verdict.String(), Globals: rep.Globals}
	memberFindings := map[string][]string{}
	memberVerdict := map[string]modelverify.Verdict{}
	for _, f := range rep.Findings {
		if f.Member == "" {
			top.Findings = append(top.Findings, f.String())
			continue
		}
		memberFindings[f.Member] = append(memberFindings[f.Member], f.String())
		if f.Verdict > memberVerdict[f.Member] {
			memberVerdict[f.Member] = f.Verdict
		}
	}
	out := []scanLine{top}
	seen := map[string]bool{}
	for _, m := range rep.Members {
		seen[m.Name] = true
		out = append(out, scanLine{Path: path, Member: m.Name, Format: string(m.Format),
			Verdict: memberVerdict[m.Name].String(), Findings: memberFindings[m.Name]})
	}
	// Findings about members the scanner could not list (a damaged archive) still get a line.
	var rest []string
	for name := range memberFindings {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		out = append(out, scanLine{Path: path, Member: name, Format: "-",
			Verdict: memberVerdict[name].String(), Findings: memberFindings[name]})
	}
	return out
}
