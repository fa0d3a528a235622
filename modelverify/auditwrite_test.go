package modelverify_test

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// failingSink fails every write with err, as a FileSink on a full or failing disk does.
type failingSink struct{ err error }

func (s failingSink) Write(context.Context, modelverify.Record) error { return s.err }
func (failingSink) Close() error                                      { return nil }

// An audit record that cannot be written refuses the model; when the disk is full or failing
// that says nothing about the model, so the error matches ErrTemporary (the CLI exits 2, "retry
// later"); a permission problem, or a refusal of the model itself, does not.
func TestAuditWriteFailureOnAFullDiskIsTemporary(t *testing.T) {
	diskErr := func(errno syscall.Errno) error {
		return &fs.PathError{Op: "write", Path: "/var/log/modelverify/audit.jsonl", Err: errno}
	}
	g := newGate(t)
	tampered := sign(t, baseModel(), g.key)
	tampered["model.safetensors"] = safetensorsFile(64, 2) // same size, other bytes
	g.serve("acme/tiny", sign(t, baseModel(), g.key), hubtest.WithModel("acme/tampered", tampered))
	for _, tc := range []struct {
		name      string
		ref       string
		err       error
		temporary bool
	}{
		{"full disk", "hf://acme/tiny@main", diskErr(syscall.ENOSPC), true},
		{"I/O error", "hf://acme/tiny@main", diskErr(syscall.EIO), true},
		{"over quota", "hf://acme/tiny@main", diskErr(syscall.EDQUOT), true},
		{"permission", "hf://acme/tiny@main", diskErr(syscall.EACCES), false},
		{"refused model, full disk", "hf://acme/tampered@main", diskErr(syscall.ENOSPC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := g.verifierWith(modelverify.WithAuditSink(failingSink{tc.err}))
			m, err := v.Verify(context.Background(), tc.ref)
			if err == nil {
				t.Fatalf("allowed without an audit record: %+v", m.Evidence())
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v does not carry the write's failure", err)
			}
			if got := errors.Is(err, modelverify.ErrTemporary); got != tc.temporary {
				t.Errorf("errors.Is(%v, ErrTemporary) = %v, want %v", err, got, tc.temporary)
			}
		})
	}
}
