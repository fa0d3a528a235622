package modelverify

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/echelongraph/go-modelverify/internal/scan"
)

// Scan reads the weight file at path as bytes (it never executes or unpickles anything) and
// reports its format and whether loading it could run code. A file that cannot be parsed is
// never VerdictSafe. The error is for I/O failures only.
func Scan(ctx context.Context, path string) (*ScanReport, error) {
	rep, err := scan.ScanFile(ctx, path)
	if err != nil {
		return nil, err
	}
	return publicReport(rep), nil
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
// files under trust_remote_code, Python imports source, bytecode, zip applications and
// extension modules (.pyd on Windows, .so elsewhere), and ctypes loads native libraries.
var codeExtensions = []string{".py", ".pyw", ".pyc", ".pyo", ".pyz", ".pyd", ".so", ".dylib", ".dll"}

// isCodeName reports whether a file or archive member name is code by its extension. A
// versioned shared library (libfoo.so.1, libfoo.so.1.2.3) counts: the dynamic loader takes it
// by that name.
func isCodeName(name string) bool {
	name = strings.ToLower(path.Base(name))
	if slices.Contains(codeExtensions, path.Ext(name)) {
		return true
	}
	if i := strings.LastIndex(name, ".so."); i > 0 {
		return strings.Trim(name[i+4:], "0123456789.") == "" && !strings.HasSuffix(name, ".")
	}
	return false
}

// codeFormats are the formats the scanner recognises as code by content.
var codeFormats = func() map[scan.Format]bool {
	m := map[scan.Format]bool{}
	for _, f := range scan.CodeFormats {
		m[f] = true
	}
	return m
}()

// codeIn names the code a file is or holds: by its own name, by its content (a TorchScript
// archive, an ELF, Mach-O or PE binary), or by an archive member's name or content. It
// returns "" for a file without code.
func codeIn(name string, rep *scan.Report) string {
	switch {
	case isCodeName(name):
		return name
	case codeFormats[rep.Format]:
		return fmt.Sprintf("%s (%s)", name, rep.Format)
	}
	for _, m := range rep.Members {
		if isCodeName(m.Name) {
			return fmt.Sprintf("member %s", m.Name)
		}
		if codeFormats[m.Format] {
			return fmt.Sprintf("member %s (%s)", m.Name, m.Format)
		}
	}
	// Code inside a format that is otherwise data: an ONNX operator from a custom domain (a
	// native custom-op library runs it), a Keras Lambda layer (marshalled Python bytecode).
	// The scanner marks such findings with a "code." rule.
	for _, f := range rep.Findings {
		if strings.HasPrefix(f.Rule, "code.") {
			where := name
			if f.Member != "" {
				where = "member " + f.Member
			}
			return fmt.Sprintf("%s (%s: %s)", where, f.Rule, f.Message)
		}
	}
	return ""
}

// judgeContent applies the policy's content rules to one file's scan.
func judgeContent(rules *ContentRules, name string, rep *scan.Report) []Problem {
	if code := codeIn(name, rep); code != "" {
		if !rules.AllowCode {
			return []Problem{{Reason: ErrFormatNotAllowed, File: name, Expected: "no code", Actual: "code",
				Detail: "the policy does not allow code in a model (content.allowCode): " + code + " is code a loader runs (transformers imports .py files under trust_remote_code, torch.load runs TorchScript, ctypes and Python load native libraries); set content.allowCode to true only if the model's code is trusted"}}
		}
		if isCodeName(name) || codeFormats[rep.Format] {
			// The policy accepts code, which can do anything when it runs; what the scanner
			// makes of its bytes adds nothing (Python source can read as a protocol-0 pickle,
			// and TorchScript's pickles are read by torch.jit's own unpickler, which resolves
			// torch.jit helpers the Python allowlist calls dangerous).
			return nil
		}
		// An archive holding code: the code is allowed, but the archive's other members still
		// meet the format and scan rules below.
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

// scanOptions are the scanner's options under the policy's content rules: a compressed
// stream may expand to no more than a model file may be (maxFileSize, else maxTotalSize).
func scanOptions(rules *ContentRules, name string) []scan.Option {
	opts := []scan.Option{scan.WithName(name)}
	switch {
	case rules.MaxFileSize > 0:
		opts = append(opts, scan.WithMaxDecompressed(int64(rules.MaxFileSize)))
	case rules.MaxTotalSize > 0:
		opts = append(opts, scan.WithMaxDecompressed(int64(rules.MaxTotalSize)))
	}
	return opts
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
