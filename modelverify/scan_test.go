package modelverify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/echelongraph/go-modelverify/internal/scan"
)

// 10.8: code is known by every name a loader imports or links, and by content (10.4:
// TorchScript; ELF, Mach-O, PE) whatever the name, in the file or in an archive member.
func TestContentRulesCountEveryKindOfCodeAsCode(t *testing.T) {
	containers := "../internal/scan/testdata/containers"
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(containers, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name    string
		content []byte
		code    bool
	}{
		{"ext.pyd", []byte("MZ"), true},
		{"gui.pyw", []byte("print(1)\n"), true},
		{"app.pyz", []byte("PK\x05\x06" + string(make([]byte, 18))), true},
		{"libfoo.so.1", []byte("x"), true},
		{"libfoo.so.1.2.3", []byte("x"), true},
		{"weights.bin", read("elf_renamed.bin"), true},
		{"weights.bin", read("macho_thin.bin"), true},
		{"weights.bin", read("macho_fat.bin"), true},
		{"weights.bin", read("pe_renamed.bin"), true},
		{"model.pt", read("torchscript_tiny.pt"), true},
		{"bundle.zip", read("bad_zip_with_so.zip"), true},
		{"classes.bin", read("ok_java_class.bin"), false},
		{"notes.so.txt", []byte("hello\n"), false},
		{"config.json", []byte("{}"), false},
	}
	rules := &ContentRules{AllowFormats: []string{"unknown", "zip", "native-code", "torchscript"}, Pickle: PickleScan}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), filepath.Base(tc.name))
		if err := os.WriteFile(path, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := scan.ScanFile(context.Background(), path, scanOptions(rules, tc.name)...)
		if err != nil {
			t.Fatal(err)
		}
		problems := judgeContent(&ContentRules{AllowFormats: rules.AllowFormats, Pickle: PickleScan}, tc.name, rep)
		isCode := len(problems) == 1 && problems[0].Actual == "code" && errors.Is(problems[0].Reason, ErrFormatNotAllowed)
		if isCode != tc.code {
			t.Errorf("%s (%s): code=%v, want %v: %+v", tc.name, rep.Format, isCode, tc.code, problems)
		}
		if tc.code {
			allowed := *rules
			allowed.AllowCode = true
			if p := judgeContent(&allowed, tc.name, rep); len(p) != 0 {
				t.Errorf("%s with allowCode: %+v", tc.name, p)
			}
		}
	}
}
