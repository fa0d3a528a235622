package modelverify

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// AuditLineError is a line of an audit log that is not a valid record. Readers report it and
// go on, so that one damaged line neither hides the rest of the log nor passes unnoticed.
type AuditLineError struct {
	// File is the log file, when known.
	File string
	// Line is the 1-based line number.
	Line int
	Err  error
}

func (e *AuditLineError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("modelverify: audit log %s line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("modelverify: audit log line %d: %v", e.Line, e.Err)
}

func (e *AuditLineError) Unwrap() error { return e.Err }

// ReadAudit iterates over the records of an audit log. For a line that is not a valid record it
// yields a zero Record and an *AuditLineError, then goes on; a read error is yielded the same way
// and ends the iteration.
// A last line without its newline that does not parse is skipped: it is a record still being
// written, or cut short by a crash, and never a decision that was reported.
func ReadAudit(r io.Reader) iter.Seq2[Record, error] {
	return readAudit(r, "")
}

func readAudit(r io.Reader, file string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		var line []byte
		for n := 1; ; n++ {
			line = line[:0]
			tooLong, complete := false, false
			var readErr error
			for {
				chunk, err := br.ReadSlice('\n')
				if !tooLong {
					line = append(line, chunk...)
					if len(line) > maxRecordBytes+1 {
						tooLong, line = true, line[:0]
					}
				}
				if err == nil {
					complete = true
					break
				}
				if err != bufio.ErrBufferFull {
					if err != io.EOF {
						readErr = err
					}
					break
				}
			}
			switch {
			case tooLong:
				if !yield(Record{}, &AuditLineError{file, n, fmt.Errorf("longer than %d bytes", maxRecordBytes)}) {
					return
				}
			case len(bytes.TrimSpace(line)) == 0:
				// Nothing to read: a blank line, or the end of the log.
			default:
				rec, err := parseRecord(line)
				switch {
				case err == nil:
					if !yield(rec, nil) {
						return
					}
				case complete:
					if !yield(Record{}, &AuditLineError{file, n, err}) {
						return
					}
				}
			}
			if readErr != nil {
				yield(Record{}, &AuditLineError{file, n, fmt.Errorf("read: %w", readErr)})
				return
			}
			if !complete {
				return
			}
		}
	}
}

func parseRecord(line []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	switch {
	case rec.Time.IsZero():
		return Record{}, errors.New("record has no time")
	case rec.Ref == "":
		return Record{}, errors.New("record has no ref")
	}
	switch rec.Decision {
	case DecisionAllowed, DecisionRefused, DecisionAuditAllowed:
	default:
		return Record{}, fmt.Errorf("record has decision %q", rec.Decision)
	}
	return rec, nil
}

// ReadAuditFiles iterates over the records of several audit log files in turn, such as the ones
// AuditFiles lists; gzip-compressed files (logrotate's "compress") are read transparently.
func ReadAuditFiles(paths ...string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for _, p := range paths {
			if !readAuditFile(p, yield) {
				return
			}
		}
	}
}

func readAuditFile(path string, yield func(Record, error) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return yield(Record{}, fmt.Errorf("modelverify: audit log: %w", err))
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return yield(Record{}, fmt.Errorf("modelverify: audit log %s: %w", path, err))
		}
		defer zr.Close()
		r = zr
	}
	for rec, err := range readAudit(r, path) {
		if !yield(rec, err) {
			return false
		}
	}
	return true
}

// AuditFiles returns the audit log at path and its rotated copies (path.1, path.2.gz,
// path-20260101, ...), oldest first by modification time, so that a question about the past is
// answered from all of them.
func AuditFiles(path string) ([]string, error) {
	dir, base := filepath.Dir(path), globEscape(filepath.Base(path))
	var files []string
	for _, pattern := range []string{base, base + ".*", base + "-*"} {
		matches, err := filepath.Glob(filepath.Join(globEscape(dir), pattern))
		if err != nil {
			return nil, err
		}
		files = append(files, matches...)
	}
	type entry struct {
		path string
		mod  time.Time
	}
	var entries []entry
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		entries = append(entries, entry{f, fi.ModTime()})
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("modelverify: no audit log at %s: %w", path, os.ErrNotExist)
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.mod.Compare(b.mod) })
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.path
	}
	return out, nil
}

// globEscape quotes the glob metacharacters in a literal path part.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// AuditQuery selects audit records. Each set field narrows the selection; the zero query
// matches every record.
type AuditQuery struct {
	// Decisions keeps records with any of these decisions.
	Decisions []Decision
	// Reasons keeps records refused (or audit-allowed) for any of these reasons.
	Reasons []*Reason
	// Unverified keeps records whose model's authenticity was not proved: every refusal and
	// audit-allowed decision, and models allowed on integrity alone.
	Unverified bool
	// Repo keeps records for this repository id ("org/name").
	Repo string
	// Publisher keeps records for this policy publisher.
	Publisher string
	// Since keeps records at or after this time; Until keeps records before it.
	Since, Until time.Time
}

// Match reports whether rec is selected.
func (q AuditQuery) Match(rec Record) bool {
	if len(q.Decisions) > 0 && !slices.Contains(q.Decisions, rec.Decision) {
		return false
	}
	if len(q.Reasons) > 0 && !slices.ContainsFunc(q.Reasons, func(r *Reason) bool {
		return slices.Contains(rec.Reasons, r.Name())
	}) {
		return false
	}
	if q.Unverified && rec.Decision == DecisionAllowed && rec.Verification == VerifiedSignature {
		return false
	}
	if q.Repo != "" && rec.Repo != q.Repo {
		return false
	}
	if q.Publisher != "" && rec.Publisher != q.Publisher {
		return false
	}
	if !q.Since.IsZero() && rec.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !rec.Time.Before(q.Until) {
		return false
	}
	return true
}

// FindAudit returns the records q selects, in log order. Damaged lines do not stop it: the
// records are every well-formed match, and the error joins each *AuditLineError (and any read
// error), so that a damaged log is never silently taken as complete.
func FindAudit(records iter.Seq2[Record, error], q AuditQuery) ([]Record, error) {
	var out []Record
	var errs []error
	for rec, err := range records {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if q.Match(rec) {
			out = append(out, rec)
		}
	}
	return out, errors.Join(errs...)
}

// LastAudit returns the latest record (by its time, whatever its place in the logs) that q
// selects, or nil when none does. Errors are reported as by FindAudit, alongside the result.
func LastAudit(records iter.Seq2[Record, error], q AuditQuery) (*Record, error) {
	var last *Record
	var errs []error
	for rec, err := range records {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if q.Match(rec) && (last == nil || !rec.Time.Before(last.Time)) {
			r := rec
			last = &r
		}
	}
	return last, errors.Join(errs...)
}

// LastBlocked answers the audit question "when was an unverified model last blocked?": the
// latest refused decision, or nil when no model was ever refused.
func LastBlocked(records iter.Seq2[Record, error]) (*Record, error) {
	return LastAudit(records, AuditQuery{Decisions: []Decision{DecisionRefused}})
}
