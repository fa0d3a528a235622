package modelverify

import (
	"github.com/echelongraph/go-modelverify/internal/scan"
)

// ScanReport is the static scanner's verdict on one weight file (see Scan).
type ScanReport struct {
	// Format is what the file is, decided by its content, not its name: the names
	// ContentRules.AllowFormats uses ("safetensors", "pickle", "pytorch-zip", "gguf",
	// "unknown", ...).
	Format string `json:"format"`
	// Verdict is the worst verdict among Findings; VerdictSafe when there are none.
	Verdict Verdict `json:"verdict"`
	// Findings are everything the scanner noticed, in the order found.
	Findings []Finding `json:"findings,omitempty"`
	// Globals lists every distinct pickle import ("module.name") seen anywhere in the file,
	// sorted, allowlisted ones included: what loading the file would import.
	Globals []string `json:"globals,omitempty"`
	// Members lists the archive members that were scanned, with the format found in each.
	Members []ScanMember `json:"members,omitempty"`
	// Size is the file's size in bytes; BytesRead is how many of them the scan read.
	Size      int64 `json:"size"`
	BytesRead int64 `json:"bytesRead"`
}

// Finding is one thing the scanner noticed, with its place.
type Finding struct {
	// Verdict is how much the finding matters on its own.
	Verdict Verdict `json:"verdict"`
	// Member is the archive member the finding is in; empty for the file itself.
	Member string `json:"member,omitempty"`
	// Offset is the byte offset within Member (or the file), or -1 when the finding is not
	// tied to a position.
	Offset int64 `json:"offset"`
	// Opcode is the pickle opcode, and Global the pickle import ("module.name"), for pickle
	// findings.
	Opcode string `json:"opcode,omitempty"`
	Global string `json:"global,omitempty"`
	// Rule names the rule that fired, stable for matching ("global.denylisted",
	// "safetensors.InvalidOffset").
	Rule string `json:"rule"`
	// Message says what was found, for people.
	Message string `json:"message"`
}

// String is the finding on one line: "dangerous: data.pkl: offset 2: GLOBAL: ...".
func (f Finding) String() string {
	return scan.Finding{Verdict: scan.Verdict(f.Verdict), Member: f.Member, Offset: f.Offset, Opcode: f.Opcode,
		Message: f.Message}.Error()
}

// ScanMember is one scanned archive member.
type ScanMember struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	// Size is the member's uncompressed size.
	Size int64 `json:"size"`
}

// Verdict is the scanner's judgement. Verdicts are ordered, so they compare:
// VerdictSafe < VerdictSuspicious < VerdictDangerous.
type Verdict int

// The scanner's verdicts.
const (
	// VerdictSafe: nothing found that loading could abuse.
	VerdictSafe Verdict = iota
	// VerdictSuspicious: not proven dangerous, but not proven safe either: an import outside
	// the allowlist, a malformed or truncated file, content the scanner could not inspect.
	VerdictSuspicious
	// VerdictDangerous: loading the file can run code or touch the system.
	VerdictDangerous
)

// String is "safe", "suspicious" or "dangerous".
func (v Verdict) String() string { return scan.Verdict(v).String() }

// MarshalText writes the verdict's name, so JSON reports read "dangerous", not 2.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// publicReport copies the scanner's report (whose verdicts are the public ones, value for
// value) into the public types, so that a caller reads
// every field in the package's own documentation and nothing of internal/scan leaks.
func publicReport(r *scan.Report) *ScanReport {
	out := &ScanReport{Format: string(r.Format), Verdict: Verdict(r.Verdict), Globals: r.Globals, Size: r.Size, BytesRead: r.BytesRead}
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, Finding{Verdict: Verdict(f.Verdict), Member: f.Member, Offset: f.Offset,
			Opcode: f.Opcode, Global: f.Global, Rule: f.Rule, Message: f.Message})
	}
	for _, m := range r.Members {
		out.Members = append(out.Members, ScanMember{Name: m.Name, Format: string(m.Format), Size: m.Size})
	}
	return out
}
