package modelverify

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/scan"
)

// ScanReport is the static scanner's verdict on one weight file: its format (decided by
// content, not name), the verdict, and every finding with its place.
type ScanReport = scan.Report

// Verdict is the scanner's judgement: VerdictSafe < VerdictSuspicious < VerdictDangerous.
type Verdict = scan.Verdict

// The scanner's verdicts.
const (
	VerdictSafe       = scan.Safe
	VerdictSuspicious = scan.Suspicious
	VerdictDangerous  = scan.Dangerous
)

// Scan reads the weight file at path as bytes (it never executes or unpickles anything) and
// reports its format and whether loading it could run code. A file that cannot be parsed is
// never VerdictSafe. The error is for I/O failures only.
func Scan(ctx context.Context, path string) (*ScanReport, error) {
	return scan.ScanFile(ctx, path)
}

// pickleBearing carry pickle data, which runs code when loaded unless proven otherwise.
var pickleBearing = func() map[scan.Format]bool {
	m := map[scan.Format]bool{}
	for _, f := range scan.PickleFormats {
		m[f] = true
	}
	return m
}()

// carriesPickle reports whether loading the file would unpickle something: its format is a
// pickle-based one, an archive member is, or the scan found pickle imports anywhere (a NumPy
// object array, a pickle inside a zip).
func carriesPickle(rep *scan.Report) bool {
	if pickleBearing[rep.Format] || len(rep.Globals) > 0 {
		return true
	}
	for _, m := range rep.Members {
		if pickleBearing[m.Format] {
			return true
		}
	}
	return false
}

// codeExtensions are the names loaders run as code: transformers imports a repository's .py
// files under trust_remote_code, and Python or ctypes load the rest.
var codeExtensions = []string{".py", ".pyc", ".pyo", ".so", ".dylib", ".dll"}

func isCode(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return slices.Contains(codeExtensions, ext)
}

// judgeContent applies the policy's content rules to one file's scan.
func judgeContent(rules *ContentRules, name string, rep *scan.Report) []Problem {
	if isCode(name) {
		if rules.AllowCode {
			// The policy accepts code, which can do anything when it runs; what the scanner
			// makes of its bytes (Python source can read as a protocol-0 pickle) adds nothing.
			return nil
		}
		return []Problem{{Reason: ErrFormatNotAllowed, File: name, Actual: "code",
			Detail: "the policy does not allow code in a model (content.allowCode); transformers runs .py files under trust_remote_code"}}
	}
	format := string(rep.Format)
	switch {
	case carriesPickle(rep) && rules.PickleRule() != PickleScan:
		return []Problem{{Reason: ErrFormatNotAllowed, File: name, Actual: format,
			Detail: "the policy denies pickle-based formats (content.pickle: deny)"}}
	case !rules.FormatAllowed(format):
		return []Problem{{Reason: ErrFormatNotAllowed, File: name, Actual: format,
			Expected: strings.Join(allowedFormats(rules), ", ")}}
	case rep.Verdict != scan.Safe:
		return []Problem{unsafeProblem(name, rep)}
	}
	return nil
}

func allowedFormats(rules *ContentRules) []string {
	if len(rules.AllowFormats) > 0 {
		return rules.AllowFormats
	}
	return DefaultAllowFormats
}

// unsafeProblem summarises a scan's worst findings.
func unsafeProblem(name string, rep *scan.Report) Problem {
	var worst []string
	for _, f := range rep.Findings {
		if f.Verdict == rep.Verdict && len(worst) < 3 {
			worst = append(worst, f.Error())
		}
	}
	detail := fmt.Sprintf("%s file is %s", rep.Format, rep.Verdict)
	if len(worst) > 0 {
		detail += ": " + strings.Join(worst, "; ")
	}
	return Problem{Reason: ErrUnsafeContent, File: name, Expected: "safe", Actual: rep.Verdict.String(), Detail: detail}
}
