package modelverify

import (
	"reflect"
	"testing"

	"github.com/echelongraph/go-modelverify/internal/scan"
)

// The public scan types are copies of the scanner's: every verdict converts to the one of the
// same name, and every exported field of a report, finding and member reaches the public
// report, so a field added to the scanner is not silently dropped at the boundary.
func TestPublicReportCopiesEveryField(t *testing.T) {
	for v, want := range map[scan.Verdict]Verdict{scan.Safe: VerdictSafe, scan.Suspicious: VerdictSuspicious, scan.Dangerous: VerdictDangerous} {
		if Verdict(v) != want || Verdict(v).String() != v.String() {
			t.Errorf("verdict %v converts to %v", v, Verdict(v))
		}
	}
	exported := func(t reflect.Type, skip ...string) []string {
		var out []string
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && !contains(skip, f.Name) {
				out = append(out, f.Name)
			}
		}
		return out
	}
	for _, c := range []struct {
		internal, public reflect.Type
		skip             []string
	}{
		// Err is the scanner's sentinel class, which is internal; Rule names it publicly.
		{reflect.TypeFor[scan.Finding](), reflect.TypeFor[Finding](), []string{"Err"}},
		{reflect.TypeFor[scan.Report](), reflect.TypeFor[ScanReport](), nil},
		{reflect.TypeFor[scan.Member](), reflect.TypeFor[ScanMember](), nil},
	} {
		if in, pub := exported(c.internal, c.skip...), exported(c.public); !reflect.DeepEqual(in, pub) {
			t.Errorf("%s has %v, %s has %v", c.internal, in, c.public, pub)
		}
	}
	rep := &scan.Report{Format: scan.FormatPickle, Verdict: scan.Dangerous, Globals: []string{"os.system"}, Size: 9, BytesRead: 8,
		Findings: []scan.Finding{{Verdict: scan.Dangerous, Member: "m", Offset: 2, Opcode: "GLOBAL", Global: "os.system", Rule: "global.denylisted", Message: "x"}},
		Members:  []scan.Member{{Name: "m", Format: scan.FormatPickle, Size: 3}}}
	got := publicReport(rep)
	want := &ScanReport{Format: "pickle", Verdict: VerdictDangerous, Globals: []string{"os.system"}, Size: 9, BytesRead: 8,
		Findings: []Finding{{Verdict: VerdictDangerous, Member: "m", Offset: 2, Opcode: "GLOBAL", Global: "os.system", Rule: "global.denylisted", Message: "x"}},
		Members:  []ScanMember{{Name: "m", Format: "pickle", Size: 3}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("publicReport = %+v", got)
	}
	if s := got.Findings[0].String(); s != rep.Findings[0].Error() {
		t.Errorf("String %q, scanner says %q", s, rep.Findings[0].Error())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
