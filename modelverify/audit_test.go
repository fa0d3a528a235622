package modelverify_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/modelverify"
)

var auditT0 = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)

func refusedRecord(repo string, at time.Time, reasons ...*modelverify.Reason) modelverify.Record {
	r := &modelverify.Refusal{Ref: "hf://" + repo + "@main"}
	for _, reason := range reasons {
		r.Problems = append(r.Problems, modelverify.Problem{Reason: reason})
	}
	rec := modelverify.Record{Time: at, Decision: modelverify.DecisionRefused, Ref: r.Ref, Repo: repo, Revision: "main"}
	modelverify.SetRefusal(&rec, r)
	return rec
}

func allowedRecord(repo string, at time.Time, v modelverify.Verification) modelverify.Record {
	return modelverify.Record{
		Time: at, Decision: modelverify.DecisionAllowed, Ref: "hf://" + repo + "@main", Repo: repo,
		Revision: "main", Commit: strings.Repeat("ab", 20), Verification: v, Publisher: "acme",
	}
}

func auditLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func auditRecords(t *testing.T, path string) []modelverify.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []modelverify.Record
	for rec, err := range modelverify.ReadAudit(f) {
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestAuditRecordIsOneJSONLineWithTheDocumentedFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	local := time.FixedZone("CET", 3600)
	rec := modelverify.Record{
		Time: auditT0.In(local), Decision: modelverify.DecisionAllowed, Ref: "hf://acme/llm@v1", Repo: "acme/llm",
		Revision: "v1", Commit: strings.Repeat("0f", 20), Endpoint: "https://huggingface.co", Publisher: "acme",
		Verification: modelverify.VerifiedSignature, Signer: "release@acme.example", SignerIssuer: "https://accounts.google.com",
		ManifestDigest: "sha256:" + strings.Repeat("e", 64), Files: 7, Bytes: 1 << 30, Duration: 1500 * time.Microsecond,
		Message: "<ok & fine>",
	}
	if err := sink.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("lines = %d", len(lines))
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time": "2026-11-25T10:00:00.123456789Z", "decision": "allowed", "ref": "hf://acme/llm@v1",
		"repo": "acme/llm", "revision": "v1", "commit": strings.Repeat("0f", 20), "endpoint": "https://huggingface.co",
		"publisher": "acme", "verification": "signature", "signer": "release@acme.example",
		"signerIssuer": "https://accounts.google.com", "manifestDigest": "sha256:" + strings.Repeat("e", 64),
		"files": 7.0, "bytes": float64(1 << 30), "durationMs": 1.5, "message": "<ok & fine>",
		"pid": float64(os.Getpid()),
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %#v, want %#v", k, fields[k], v)
		}
	}
	if h, _ := os.Hostname(); fields["host"] != h {
		t.Errorf("host = %v, want %q", fields["host"], h)
	}
	if !strings.Contains(lines[0], `"<ok & fine>"`) {
		t.Errorf("HTML characters were escaped, making the log harder to grep: %s", lines[0])
	}
	got := auditRecords(t, path)[0]
	rec.Time, rec.Host, rec.PID = auditT0, got.Host, os.Getpid()
	if !reflect.DeepEqual(got, rec) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, rec)
	}
}

func TestFileSinkRefusesRecordsThatCannotBeAnswered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sink.Write(ctx, modelverify.Record{Decision: "maybe", Ref: "x"}); err == nil {
		t.Error("unknown decision accepted")
	}
	if err := sink.Write(ctx, modelverify.Record{Decision: modelverify.DecisionAllowed}); err == nil {
		t.Error("empty ref accepted")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := sink.Write(canceled, allowedRecord("a/b", auditT0, modelverify.VerifiedSignature)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
	sink.Close()
	if err := sink.Write(ctx, allowedRecord("a/b", auditT0, modelverify.VerifiedSignature)); err == nil {
		t.Error("write after Close accepted")
	}
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Errorf("refused records were written: %q", data)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("audit log mode = %v, %v; want no access for others", fi.Mode(), err)
	}
}

func TestFileSinkTruncatesHugeMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, _ := modelverify.OpenFileSink(path)
	defer sink.Close()
	rec := refusedRecord("a/b", auditT0, modelverify.ErrDigestMismatch)
	rec.Message = strings.Repeat("é", 100_000)
	if err := sink.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	got := auditRecords(t, path)[0].Message
	if len(got) > 9<<10 || !strings.HasSuffix(got, "…(truncated)") || !strings.HasPrefix(got, "éé") {
		t.Errorf("message of %d bytes, suffix %q", len(got), got[len(got)-20:])
	}
}

func TestFileSinkIsSafeForManyGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const goroutines, each = 50, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				rec := refusedRecord(fmt.Sprintf("org/m-%d-%d", g, i), auditT0, modelverify.ErrUnsigned)
				rec.Signer = strings.Repeat(string(rune('a'+g%26)), 5000)
				if err := sink.Write(context.Background(), rec); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	checkIntactRecords(t, path, goroutines*each)
}

// checkIntactRecords asserts that path holds n distinct records and that none was torn or
// interleaved: every Signer is one repeated character.
func checkIntactRecords(t *testing.T, path string, n int) {
	t.Helper()
	lines := auditLines(t, path)
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	seen := map[string]bool{}
	for i, line := range lines {
		var rec modelverify.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v", i+1, err)
		}
		if rec.Signer == "" || strings.Trim(rec.Signer, rec.Signer[:1]) != "" {
			t.Fatalf("line %d: signer was interleaved with another record", i+1)
		}
		if seen[rec.Ref] {
			t.Fatalf("line %d: %s recorded twice", i+1, rec.Ref)
		}
		seen[rec.Ref] = true
	}
}

const (
	auditHelperEnv       = "MODELVERIFY_AUDIT_HELPER"
	writerProcessRecords = 15 // per goroutine; each writer process runs 4 goroutines
)

// TestAuditWriterProcess is not a test: TestFileSinkIsSafeForManyProcesses runs the test binary
// again with this test selected, as one of several writer processes sharing one log.
func TestAuditWriterProcess(t *testing.T) {
	spec := os.Getenv(auditHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestFileSinkIsSafeForManyProcesses")
	}
	path, id, _ := strings.Cut(spec, "|")
	sink, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range writerProcessRecords {
				rec := refusedRecord(fmt.Sprintf("org/p%s-g%d-%d", id, g, i), auditT0, modelverify.ErrSignature)
				// 16 KiB records: several pages, beyond what a single write is guaranteed to
				// keep whole without the lock on every file system.
				n, _ := strconv.Atoi(id)
				rec.Signer = strings.Repeat(string(rune('A'+n*4+g)), 16<<10)
				if err := sink.Write(context.Background(), rec); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func TestFileSinkIsSafeForManyProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAuditWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", auditHelperEnv, path, p))
		outs[p] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[p], outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process %d: %v\n%s", p, err, outs[p])
		}
	}
	checkIntactRecords(t, path, procs*4*writerProcessRecords)
}

func TestFileSinkFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	// Two sinks stand for two processes sharing the log.
	a, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	write := func(s *modelverify.FileSink, repo string) {
		t.Helper()
		if err := s.Write(ctx, allowedRecord(repo, auditT0, modelverify.VerifiedSignature)); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "org/before-a")
	write(b, "org/before-b")
	// logrotate's default: rename, and let the writers create the new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(a, "org/after-a")
	write(b, "org/after-b")
	// Some tools delete the old log instead.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".2"); err != nil {
		t.Fatal(err)
	}
	write(b, "org/after-remove")

	repos := func(file string) []string {
		var out []string
		for _, r := range auditRecords(t, file) {
			out = append(out, r.Repo)
		}
		return out
	}
	if got := repos(path + ".1"); !reflect.DeepEqual(got, []string{"org/before-a", "org/before-b"}) {
		t.Errorf("rotated file holds %v", got)
	}
	if got := repos(path); !reflect.DeepEqual(got, []string{"org/after-remove"}) {
		t.Errorf("current file holds %v", got)
	}
}

func TestFileSinkLosesNothingWhenRotatedDuringWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	sink, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const writers, each, rotations = 8, 100, 20
	var written atomic.Int64
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				rec := refusedRecord(fmt.Sprintf("org/w%d-%d", g, i), auditT0, modelverify.ErrUnsigned)
				rec.Signer = strings.Repeat(string(rune('a'+g)), 2000)
				if err := sink.Write(context.Background(), rec); err != nil {
					t.Error(err)
				}
				written.Add(1)
			}
		})
	}
	// Rotate whenever new records have arrived since the last rotation, until the writers are
	// done: the interleaving varies from run to run, but no record may ever be lost.
	rotated := 0
	for last := int64(-1); written.Load() < writers*each; {
		if n := written.Load(); n != last && rotated < rotations {
			if err := os.Rename(path, fmt.Sprintf("%s.%d", path, rotated+1)); err == nil {
				rotated++
			}
			last = n
		}
		runtime.Gosched()
	}
	wg.Wait()
	total := 0
	seen := map[string]bool{}
	files, err := modelverify.AuditFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range modelverify.ReadAuditFiles(files...) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[rec.Repo] || strings.Trim(rec.Signer, rec.Signer[:1]) != "" {
			t.Fatalf("record %s duplicated or interleaved", rec.Repo)
		}
		seen[rec.Repo] = true
		total++
	}
	if total != writers*each {
		t.Errorf("found %d records across %d files after %d rotations, want %d", total, len(files), rotated, writers*each)
	}
}

func TestFileSinkRefusesAnExistingNonRegularPath(t *testing.T) {
	if _, err := modelverify.OpenFileSink(t.TempDir()); err == nil {
		t.Error("a directory was accepted as the audit log")
	}
	if _, err := modelverify.OpenFileSink(filepath.Join(t.TempDir(), "missing", "audit.jsonl")); err == nil {
		t.Error("a log in a missing directory was accepted")
	}
}

func TestSlogSinkLogsEveryDecision(t *testing.T) {
	var buf bytes.Buffer
	sink := modelverify.NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	ctx := context.Background()
	if err := sink.Write(ctx, refusedRecord("org/m", auditT0, modelverify.ErrUnsigned, modelverify.ErrUnexpectedFile)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(ctx, allowedRecord("org/m", auditT0, modelverify.VerifiedIntegrity)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(ctx, modelverify.Record{Decision: "bogus", Ref: "x"}); err == nil {
		t.Error("invalid record accepted")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines: %s", len(lines), buf.String())
	}
	var refused, allowed map[string]any
	json.Unmarshal([]byte(lines[0]), &refused)
	json.Unmarshal([]byte(lines[1]), &allowed)
	if refused["level"] != "WARN" || refused["msg"] != "modelverify decision" || refused["decision"] != "refused" ||
		!reflect.DeepEqual(refused["reasons"], []any{"unsigned", "unexpected-file"}) || refused["repo"] != "org/m" {
		t.Errorf("refused record logged as %s", lines[0])
	}
	if allowed["level"] != "INFO" || allowed["verification"] != "integrity" || allowed["commit"] != strings.Repeat("ab", 20) {
		t.Errorf("allowed record logged as %s", lines[1])
	}
}

type failingAuditSink struct{ closed bool }

func (f *failingAuditSink) Write(context.Context, modelverify.Record) error {
	return errors.New("disk on fire")
}
func (f *failingAuditSink) Close() error { f.closed = true; return nil }

func TestMultiSinkWritesEverywhereAndReportsEveryFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	file, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := &failingAuditSink{}
	m := modelverify.MultiSink(bad, file)
	err = m.Write(context.Background(), allowedRecord("org/m", auditT0, modelverify.VerifiedSignature))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Write = %v, want the failing sink's error", err)
	}
	if n := len(auditLines(t, path)); n != 1 {
		t.Errorf("file sink got %d records despite the other sink failing", n)
	}
	if err := m.Close(); err != nil || !bad.closed {
		t.Errorf("Close = %v, closed %v", err, bad.closed)
	}
	if err := modelverify.MultiSink().Write(context.Background(), modelverify.Record{}); err != nil {
		t.Errorf("empty MultiSink: %v", err)
	}
}

func TestOpenAuditSinkFollowsThePolicy(t *testing.T) {
	dir := t.TempDir()
	doc := policyWith(t, "publishers:\n", "audit: {path: audit.jsonl, slog: true}\npublishers:\n")
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := modelverify.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sink, err := modelverify.OpenAuditSink(p.Audit, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(context.Background(), refusedRecord("org/m", auditT0, modelverify.ErrHub)); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	if len(auditRecords(t, filepath.Join(dir, "audit.jsonl"))) != 1 || !strings.Contains(buf.String(), "decision=refused") {
		t.Errorf("the file (relative to the policy) and slog must both get the record; slog got %q", buf.String())
	}
}

func auditLog(t *testing.T, recs ...modelverify.Record) string {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestReadAuditSkipsATornLastLine(t *testing.T) {
	log := auditLog(t, allowedRecord("org/a", auditT0, modelverify.VerifiedSignature), refusedRecord("org/b", auditT0, modelverify.ErrUnsigned))
	torn := log + `{"time":"2026-11-25T10:00:00Z","decision":"refu`
	var repos []string
	for rec, err := range modelverify.ReadAudit(strings.NewReader(torn)) {
		if err != nil {
			t.Fatalf("torn last line reported: %v", err)
		}
		repos = append(repos, rec.Repo)
	}
	if !reflect.DeepEqual(repos, []string{"org/a", "org/b"}) {
		t.Errorf("records = %v", repos)
	}
	// A complete record that only lacks its newline is kept.
	n := 0
	for _, err := range modelverify.ReadAudit(strings.NewReader(strings.TrimSuffix(log, "\n"))) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("records without the final newline = %d, want 2", n)
	}
}

func TestReadAuditReportsDamagedLinesAndGoesOn(t *testing.T) {
	good := auditLog(t, allowedRecord("org/a", auditT0, modelverify.VerifiedSignature))
	log := good +
		"not json\n" +
		`{"time":"2026-11-25T10:00:00Z","decision":"approved","ref":"x"}` + "\n" +
		"\n" +
		`{"decision":"refused","ref":"x"}` + "\n" +
		`{"time":"2026-11-25T10:00:00Z","decision":"refused","ref":"x"} trailing` + "\n" +
		`{"time":"2026-11-25T10:00:00Z","decision":"refused","ref":""}` + "\n" +
		"{" + strings.Repeat(" ", 1<<20+10) + "}\n" +
		good
	var lines []int
	records := 0
	for rec, err := range modelverify.ReadAudit(strings.NewReader(log)) {
		var le *modelverify.AuditLineError
		switch {
		case errors.As(err, &le):
			lines = append(lines, le.Line)
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		case rec.Repo != "org/a":
			t.Errorf("record %+v", rec)
		default:
			records++
		}
	}
	if want := []int{2, 3, 5, 6, 7, 8}; !reflect.DeepEqual(lines, want) {
		t.Errorf("damaged lines reported = %v, want %v", lines, want)
	}
	if records != 2 {
		t.Errorf("good records = %d, want 2 (reading must go on past damage)", records)
	}
	found, err := modelverify.FindAudit(modelverify.ReadAudit(strings.NewReader(log)), modelverify.AuditQuery{})
	if len(found) != 2 || err == nil || !strings.Contains(err.Error(), "line 8: longer than") {
		t.Errorf("FindAudit = %d records, %v", len(found), err)
	}
}

func TestLastBlockedAnswersWhenAnUnverifiedModelWasLastBlocked(t *testing.T) {
	// Processes append in the order they finish, so the log is not sorted by time.
	log := auditLog(t,
		refusedRecord("org/old", auditT0, modelverify.ErrUnsigned),
		refusedRecord("org/newest", auditT0.Add(3*time.Hour), modelverify.ErrDigestMismatch),
		allowedRecord("org/ok", auditT0.Add(4*time.Hour), modelverify.VerifiedSignature),
		refusedRecord("org/middle", auditT0.Add(2*time.Hour), modelverify.ErrUnsigned),
	)
	last, err := modelverify.LastBlocked(modelverify.ReadAudit(strings.NewReader(log)))
	if err != nil || last == nil || last.Repo != "org/newest" || !last.Time.Equal(auditT0.Add(3*time.Hour)) {
		t.Errorf("LastBlocked = %+v, %v", last, err)
	}
	unsigned, err := modelverify.LastAudit(modelverify.ReadAudit(strings.NewReader(log)),
		modelverify.AuditQuery{Decisions: []modelverify.Decision{modelverify.DecisionRefused}, Reasons: []*modelverify.Reason{modelverify.ErrUnsigned}})
	if err != nil || unsigned == nil || unsigned.Repo != "org/middle" {
		t.Errorf("last unsigned refusal = %+v, %v", unsigned, err)
	}
	none, err := modelverify.LastBlocked(modelverify.ReadAudit(strings.NewReader(auditLog(t, allowedRecord("a/b", auditT0, modelverify.VerifiedSignature)))))
	if none != nil || err != nil {
		t.Errorf("LastBlocked on a log without refusals = %+v, %v", none, err)
	}
}

func TestAuditQuerySelectsByEveryField(t *testing.T) {
	audited := refusedRecord("org/a", auditT0.Add(time.Hour), modelverify.ErrUnsigned)
	audited.Decision = modelverify.DecisionAuditAllowed
	recs := []modelverify.Record{
		allowedRecord("org/a", auditT0, modelverify.VerifiedSignature),
		allowedRecord("org/b", auditT0.Add(time.Hour), modelverify.VerifiedIntegrity),
		refusedRecord("org/c", auditT0.Add(2*time.Hour), modelverify.ErrUnsafeContent, modelverify.ErrFormatNotAllowed),
		audited,
	}
	log := auditLog(t, recs...)
	cases := []struct {
		name string
		q    modelverify.AuditQuery
		want []string
	}{
		{"everything", modelverify.AuditQuery{}, []string{"org/a", "org/b", "org/c", "org/a"}},
		{"by repo", modelverify.AuditQuery{Repo: "org/a"}, []string{"org/a", "org/a"}},
		{"by publisher", modelverify.AuditQuery{Publisher: "acme"}, []string{"org/a", "org/b"}},
		{"unverified", modelverify.AuditQuery{Unverified: true}, []string{"org/b", "org/c", "org/a"}},
		{"audit-allowed", modelverify.AuditQuery{Decisions: []modelverify.Decision{modelverify.DecisionAuditAllowed}}, []string{"org/a"}},
		{"any of the reasons", modelverify.AuditQuery{Reasons: []*modelverify.Reason{modelverify.ErrFormatNotAllowed, modelverify.ErrUnsigned}}, []string{"org/c", "org/a"}},
		{"since is inclusive", modelverify.AuditQuery{Since: auditT0.Add(time.Hour)}, []string{"org/b", "org/c", "org/a"}},
		{"until is exclusive", modelverify.AuditQuery{Until: auditT0.Add(time.Hour)}, []string{"org/a"}},
	}
	for _, tc := range cases {
		found, err := modelverify.FindAudit(modelverify.ReadAudit(strings.NewReader(log)), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range found {
			got = append(got, r.Repo)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAuditFilesReadsRotatedAndCompressedLogs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	write := func(name string, gz bool, age time.Duration, recs ...modelverify.Record) {
		t.Helper()
		data := []byte(auditLog(t, recs...))
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(data)
			zw.Close()
			data = buf.Bytes()
		}
		if err := os.WriteFile(name, data, 0o640); err != nil {
			t.Fatal(err)
		}
		mod := time.Now().Add(-age)
		if err := os.Chtimes(name, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	write(path+".2.gz", true, 3*time.Hour, refusedRecord("org/oldest", auditT0, modelverify.ErrUnsigned))
	write(path+"-20261124", false, 2*time.Hour, allowedRecord("org/dated", auditT0.Add(time.Hour), modelverify.VerifiedSignature))
	write(path+".1", false, time.Hour, refusedRecord("org/blocked", auditT0.Add(2*time.Hour), modelverify.ErrIdentity))
	write(path, false, 0, allowedRecord("org/current", auditT0.Add(3*time.Hour), modelverify.VerifiedSignature))
	write(filepath.Join(dir, "other.jsonl"), false, 0, refusedRecord("org/elsewhere", auditT0.Add(5*time.Hour), modelverify.ErrHub))

	files, err := modelverify.AuditFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".2.gz", path + "-20261124", path + ".1", path}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("AuditFiles = %v, want %v", files, want)
	}
	var repos []string
	for rec, err := range modelverify.ReadAuditFiles(files...) {
		if err != nil {
			t.Fatal(err)
		}
		repos = append(repos, rec.Repo)
	}
	if !reflect.DeepEqual(repos, []string{"org/oldest", "org/dated", "org/blocked", "org/current"}) {
		t.Errorf("records = %v", repos)
	}
	last, err := modelverify.LastBlocked(modelverify.ReadAuditFiles(files...))
	if err != nil || last == nil || last.Repo != "org/blocked" {
		t.Errorf("LastBlocked across rotated logs = %+v, %v", last, err)
	}
	if _, err := modelverify.AuditFiles(filepath.Join(dir, "none.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AuditFiles(missing) = %v", err)
	}
}

func ExampleLastBlocked() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	sink, _ := modelverify.OpenFileSink(filepath.Join(dir, "audit.jsonl"))
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

	refusal := &modelverify.Refusal{Ref: "hf://stranger/model@main", Problems: []modelverify.Problem{{Reason: modelverify.ErrPublisherNotAllowed}}}
	rec := modelverify.Record{Time: at, Decision: modelverify.DecisionRefused, Ref: refusal.Ref, Repo: "stranger/model",
		Reasons: refusal.ReasonNames(), Message: refusal.Error()}
	sink.Write(ctx, rec)
	sink.Write(ctx, modelverify.Record{Time: at.Add(time.Minute), Decision: modelverify.DecisionAllowed,
		Ref: "hf://acme/llm@main", Repo: "acme/llm", Verification: modelverify.VerifiedSignature})
	sink.Close()

	files, _ := modelverify.AuditFiles(filepath.Join(dir, "audit.jsonl"))
	last, err := modelverify.LastBlocked(modelverify.ReadAuditFiles(files...))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(last.Time.Format(time.RFC3339), last.Repo, last.Reasons)
	// Output: 2026-11-25T09:30:00Z stranger/model [publisher-not-allowed]
}

// BenchmarkFileSinkRotationCheck compares the sink's rotation check (one stat per record) with
// the alternative it was chosen over, reopening the file for every record; both lock and append
// the same line. It reports each cost and the ratio reopen/stat.
func BenchmarkFileSinkRotationCheck(b *testing.B) {
	dir := b.TempDir()
	sink, err := modelverify.OpenFileSink(filepath.Join(dir, "stat.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	rec := refusedRecord("org/model", auditT0, modelverify.ErrDigestMismatch)
	reopenPath := filepath.Join(dir, "reopen.jsonl")
	reopenWrite := func() error {
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(reopenPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			return err
		}
		_, err = f.Write(append(line, '\n'))
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return err
	}
	ctx := context.Background()
	var statTime, reopenTime time.Duration
	for b.Loop() {
		start := time.Now()
		if err := sink.Write(ctx, rec); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := reopenWrite(); err != nil {
			b.Fatal(err)
		}
		statTime += mid.Sub(start)
		reopenTime += time.Since(mid)
	}
	b.ReportMetric(float64(statTime.Nanoseconds())/float64(b.N), "stat-ns/record")
	b.ReportMetric(float64(reopenTime.Nanoseconds())/float64(b.N), "reopen-ns/record")
	b.ReportMetric(float64(reopenTime)/float64(statTime), "reopen/stat")
}
