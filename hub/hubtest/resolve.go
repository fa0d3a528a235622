package hubtest

import (
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// serveResolve answers GET|HEAD /{repo}/resolve|raw/{rev}/{path}: plain git files directly, with
// their blob id as ETag; LFS files with a 302 to the CDN carrying X-Linked-Etag and X-Linked-Size.
func (s *Server) serveResolve(w http.ResponseWriter, r *http.Request, id, kind, rev, p string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hubError(w, http.StatusMethodNotAllowed, "", "Method not allowed")
		return
	}
	if f := s.takeFault(RouteResolve, id, p, FaultStatus); f != nil {
		statusFault(w, f)
		return
	}
	rp, ok := s.lookup(w, r, id, true)
	if !ok {
		return
	}
	c, ok := s.resolveRev(w, rp, rev)
	if !ok {
		return
	}
	w.Header().Set("X-Repo-Commit", c.sha)
	f := c.files[p]
	if f == nil {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if kind == "raw" && f.lfs {
		// /raw/ serves what git stores: the LFS pointer.
		ptr := &file{path: f.path, size: int64(len(f.pointer)), oid: f.oid, data: f.pointer}
		s.serveContent(w, r, RouteResolve, id, ptr, `"`+f.oid+`"`, true)
		return
	}
	if f.lfs {
		loc := s.cdnLocation(id, f)
		if fault := s.takeFault(RouteResolve, id, p, FaultRedirect); fault != nil {
			loc = fault.Location
		}
		w.Header().Set("X-Linked-Etag", `"`+f.sha256+`"`)
		w.Header().Set("X-Linked-Size", strconv.FormatInt(f.size, 10))
		w.Header().Set("Location", loc)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusFound)
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, "Found. Redirecting to %s", loc)
		}
		return
	}
	etag := `"` + f.oid + `"`
	if s.resolveCache && kind == "resolve" {
		loc := "/api/resolve-cache/models/" + id + "/" + c.sha + "/" + escapePath(p) + "?etag=" + url.QueryEscape(etag)
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	s.serveGitFile(w, r, id, c, f)
}

// serveResolveCache answers /api/resolve-cache/models/{org}/{name}/{commit}/{path}.
func (s *Server) serveResolveCache(w http.ResponseWriter, r *http.Request, id, sha, p string) {
	rp, ok := s.lookup(w, r, id, true)
	if !ok {
		return
	}
	s.mu.Lock()
	c := rp.commits[sha]
	s.mu.Unlock()
	if c == nil || c.files[p] == nil || c.files[p].lfs {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	w.Header().Set("X-Repo-Commit", c.sha)
	s.serveGitFile(w, r, id, c, c.files[p])
}

// serveGitFile serves a plain git file with its blob id as ETag, honouring If-None-Match.
func (s *Server) serveGitFile(w http.ResponseWriter, r *http.Request, id string, c *commit, f *file) {
	etag := `"` + f.oid + `"`
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "*" || strings.Trim(inm, `"W/`) == f.oid) {
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.serveContent(w, r, RouteResolve, id, f, etag, true)
}

// escapePath escapes a repo path per segment, keeping its slashes.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// cdnLocation is a signed, expiring URL on the CDN for an LFS file, like the Hub's signed links
// to its CDN and Xet bridge.
func (s *Server) cdnLocation(repoID string, f *file) string {
	s.mu.Lock()
	base := s.cdnURL
	s.mu.Unlock()
	expires := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	q := url.Values{}
	q.Set("repo", repoID)
	q.Set("path", f.path)
	q.Set("response-content-disposition", fmt.Sprintf("inline; filename*=UTF-8''%s;", url.PathEscape(path.Base(f.path))))
	q.Set("Expires", expires)
	q.Set("Signature", s.sign(f.sha256, repoID, f.path, expires))
	return base + "/repos/" + f.sha256[:2] + "/" + f.sha256 + "?" + q.Encode()
}

func (s *Server) sign(sha, repoID, p, expires string) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", sha, repoID, p, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// CDN returns the handler standing in for the Hub's CDN: it serves LFS bytes for the signed URLs
// the Hub redirects to, with byte ranges and its own ETag (not the sha256), and refuses any
// request that carries an Authorization header, as a presigned-URL store does.
func (s *Server) CDN() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(true, w, r, s.serveCDN)
	})
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	segs, err := splitEscaped(r.URL.EscapedPath())
	if err != nil || len(segs) != 3 || segs[0] != "repos" || r.Method != http.MethodGet && r.Method != http.MethodHead {
		cdnError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	q := r.URL.Query()
	sha, repoID, p, expires := segs[2], q.Get("repo"), q.Get("path"), q.Get("Expires")
	if r.Header.Get("Authorization") != "" {
		cdnError(w, http.StatusBadRequest, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
		return
	}
	if !hmac.Equal([]byte(q.Get("Signature")), []byte(s.sign(sha, repoID, p, expires))) {
		cdnError(w, http.StatusForbidden, "AccessDenied", "Invalid signature")
		return
	}
	if exp, err := strconv.ParseInt(expires, 10, 64); err != nil || time.Now().Unix() > exp {
		cdnError(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	if f := s.takeFault(RouteCDN, repoID, p, FaultStatus); f != nil {
		statusFault(w, f)
		return
	}
	s.mu.Lock()
	f := s.blobs[sha]
	s.mu.Unlock()
	if f == nil {
		cdnError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	// The CDN's ETag is its own (an S3 multipart ETag, say), never the sha256 (reference §2.2).
	h := sha1.Sum([]byte(f.sha256))
	etag := `"` + hex.EncodeToString(h[:16]) + `-1"`
	// Body faults name the repo path; a blob shared by several paths takes the signed one.
	named := *f
	named.path = p
	s.serveContent(w, r, RouteCDN, repoID, &named, etag, false)
}

func cdnError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

// textTypes are served gzip-encoded to clients that accept it, as the Hub does.
var textTypes = map[string]string{
	".json": "application/json", ".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
	".py": "text/x-python; charset=utf-8", ".model": "application/octet-stream", ".gitattributes": "text/plain; charset=utf-8",
	".yaml": "text/yaml; charset=utf-8", ".yml": "text/yaml; charset=utf-8",
}

// serveContent serves a file's bytes with ranges, conditional gzip and any body fault.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, route Route, repoID string, f *file, etag string, allowGzip bool) {
	fault := s.takeFault(route, repoID, f.path, FaultDropConnection, FaultCorrupt, FaultIgnoreRange, FaultStall, FaultLongBody)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	ctype, isText := textTypes[strings.ToLower(path.Ext(f.path))]
	if !isText {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)

	start, length, status := int64(0), f.size, http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && (fault == nil || fault.Kind != FaultIgnoreRange) {
		a, b, ok, satisfiable := parseRange(rng, f.size)
		if ok && !satisfiable {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", f.size))
			hubError(w, http.StatusRequestedRangeNotSatisfiable, "", "Requested Range Not Satisfiable")
			return
		}
		if ok {
			start, length, status = a, b-a+1, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, f.size))
		}
	}
	ra, closeFile, err := f.open()
	if err != nil {
		hubError(w, http.StatusInternalServerError, "", "cannot read file")
		return
	}
	defer closeFile()
	src := io.NewSectionReader(ra, start, length)

	if allowGzip && fault == nil && isText && status == http.StatusOK && r.Method == http.MethodGet &&
		strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		w.WriteHeader(status)
		// Flushing now makes the body chunked, with no Content-Length, as the Hub sends it.
		_ = http.NewResponseController(w).Flush()
		gz := gzip.NewWriter(w)
		_, _ = io.Copy(gz, src)
		_ = gz.Close()
		return
	}
	if fault == nil || fault.Kind != FaultLongBody {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	switch kind := FaultKind(0); {
	case fault != nil:
		kind = fault.Kind
		switch kind {
		case FaultCorrupt:
			buf, _ := io.ReadAll(src)
			if len(buf) > 0 {
				buf[len(buf)/2] ^= 0xff
			}
			_, _ = w.Write(buf)
			return
		case FaultDropConnection, FaultStall:
			n := min(fault.After, max(length-1, 0))
			_, _ = io.CopyN(w, src, n)
			_ = rc.Flush()
			if kind == FaultStall {
				select {
				case <-r.Context().Done():
				case <-s.closed:
				}
			}
			panic(http.ErrAbortHandler) // drop the connection with the body unfinished
		case FaultLongBody:
			_, _ = io.Copy(w, src)
			_, _ = w.Write([]byte(strings.Repeat("X", int(fault.Extra))))
			return
		}
	}
	if fh, ok := ra.(*os.File); ok {
		// A LimitedReader over the file lets net/http use sendfile(2): benchmarks then measure the
		// client, not this server.
		if _, err := fh.Seek(start, io.SeekStart); err == nil {
			_, _ = io.Copy(w, &io.LimitedReader{R: fh, N: length})
			return
		}
	}
	_, _ = io.Copy(w, src)
}

// parseRange parses one "bytes=a-b", "bytes=a-" or "bytes=-n" range. ok is false for anything
// else (multiple ranges, other units), which is then ignored, as RFC 9110 allows.
func parseRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(size-n, 0), size - 1, true, true
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false, false
	}
	e := size - 1
	if b != "" {
		if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
			return 0, 0, false, false
		}
		e = min(e, size-1)
	}
	if s >= size {
		return 0, 0, true, false
	}
	return s, e, true, true
}
