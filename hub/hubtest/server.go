package hubtest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/echelongraph/go-modelverify/internal/faults"
)

// epoch is the fixed date of every commit, so answers are reproducible.
var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Server is a Hugging Face Hub stand-in: an http.Handler for the Hub's API and resolve URLs,
// plus a second handler (CDN) for the LFS bytes it redirects to. It is safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	repos    map[string]*repo
	renamed  map[string]string
	tokens   map[string]string
	orgs     map[string]bool
	faults   faults.Set[Fault]
	pageSize int
	// resolveCache sends plain git files through a relative 307 to /api/resolve-cache/...
	resolveCache bool
	cdnURL       string
	key          []byte
	blobs        map[string]*file
	log          []Request
	closed       chan struct{}
	close        sync.Once
	reqID        int
}

// Request is one request the server or its CDN received, for tests to assert on.
type Request struct {
	// CDN is true for requests to the CDN handler.
	CDN bool
	// Method, Path (escaped, as sent) and Query of the request.
	Method, Path, Query string
	// Range is the Range header, if any.
	Range string
	// Authorization is the Authorization header as received.
	Authorization string
	// Status is the answer's status code.
	Status int
}

// New returns a server configured by opts. It panics if an option is invalid or a directory
// cannot be read, as httptest.NewServer panics when it cannot listen; programs use Open.
func New(opts ...Option) *Server {
	s, err := Open(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Open is New for programs: it returns the error instead of panicking.
func Open(opts ...Option) (*Server, error) {
	s := &Server{
		repos: map[string]*repo{}, renamed: map[string]string{}, tokens: map[string]string{},
		orgs: map[string]bool{}, pageSize: 1000, blobs: map[string]*file{}, closed: make(chan struct{}),
		key: make([]byte, 32),
	}
	_, _ = rand.Read(s.key)
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) addRepo(id string, files map[string]*file, opts []RepoOption) error {
	if ns, name, ok := strings.Cut(id, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("hubtest: repo id %q must be namespace/name", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.repos[id]; dup {
		return fmt.Errorf("hubtest: repo %s added twice", id)
	}
	c := newCommit("", "Initial commit", epoch, files)
	r := &repo{
		id: id, access: map[string]bool{}, branches: map[string]string{"main": c.sha},
		tags: map[string]string{}, prs: map[int]string{}, commits: map[string]*commit{}, createdAt: epoch,
	}
	r.add(c)
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return err
		}
	}
	for _, old := range r.renamedFrom {
		s.renamed[old] = id
	}
	s.repos[id] = r
	s.indexBlobs(c)
	return nil
}

func (s *Server) indexBlobs(c *commit) {
	for _, f := range c.files {
		if f.lfs {
			s.blobs[f.sha256] = f
		}
	}
}

// Commit adds a commit to branch (created if absent) whose files are exactly files, and returns
// its id. The commit's parent is the branch's previous head.
func (s *Server) Commit(repoID, branch string, files map[string][]byte) (string, error) {
	fs := make(map[string]*file, len(files))
	for p, data := range files {
		f, err := memFile(p, data)
		if err != nil {
			return "", err
		}
		fs[p] = f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoID]
	if !ok {
		return "", fmt.Errorf("hubtest: no repo %s", repoID)
	}
	parent := r.branches[branch]
	if parent == "" {
		parent = r.branches["main"]
	}
	c := newCommit(parent, "Update files", epoch.Add(time.Duration(len(r.commits))*time.Hour), fs)
	r.add(c)
	r.branches[branch] = c.sha
	s.indexBlobs(c)
	return c.sha, nil
}

// SetTag points tag at revision (a branch, tag or commit).
func (s *Server) SetTag(repoID, tag, revision string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoID]
	if !ok {
		return fmt.Errorf("hubtest: no repo %s", repoID)
	}
	c, ok := r.resolve(revision)
	if !ok {
		return fmt.Errorf("hubtest: %s has no revision %s", repoID, revision)
	}
	r.tags[tag] = c.sha
	return nil
}

// OpenPR adds a commit with files as a pull request and returns its ref ("refs/pr/N") and commit.
func (s *Server) OpenPR(repoID string, files map[string][]byte) (ref, sha string, err error) {
	fs := make(map[string]*file, len(files))
	for p, data := range files {
		f, err := memFile(p, data)
		if err != nil {
			return "", "", err
		}
		fs[p] = f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoID]
	if !ok {
		return "", "", fmt.Errorf("hubtest: no repo %s", repoID)
	}
	c := newCommit(r.branches["main"], "Pull request", epoch.Add(time.Duration(len(r.commits))*time.Hour), fs)
	r.add(c)
	n := len(r.prs) + 1
	r.prs[n] = c.sha
	s.indexBlobs(c)
	return "refs/pr/" + strconv.Itoa(n), c.sha, nil
}

// Resolve returns the commit a revision of a repository points at.
func (s *Server) Resolve(repoID, revision string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoID]
	if !ok {
		return "", fmt.Errorf("hubtest: no repo %s", repoID)
	}
	c, ok := r.resolve(revision)
	if !ok {
		return "", fmt.Errorf("hubtest: %s has no revision %s", repoID, revision)
	}
	return c.sha, nil
}

// AddFault injects a fault from now on.
func (s *Server) AddFault(f Fault) { s.faults.Add(f, f.Times) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// SetCDNURL sets the base URL at which CDN() is served.
func (s *Server) SetCDNURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cdnURL = strings.TrimRight(u, "/")
}

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// Close releases requests held by FaultStall, so servers serving this handler can shut down.
func (s *Server) Close() { s.close.Do(func() { close(s.closed) }) }

// takeFault returns the first live fault matching the request and consumes one of its uses.
// body selects body faults (applied where bytes are served) or answer faults (status, redirect).
func (s *Server) takeFault(route Route, repoID, path string, kinds ...FaultKind) *Fault {
	return s.faults.Take(func(f *Fault) bool {
		return (f.Repo == "" || f.Repo == repoID) && (f.File == "" || f.File == path) &&
			(f.Route == RouteAny || f.Route == route) && slices.Contains(kinds, f.Kind)
	})
}

// takeRouteFault is takeFault for faults that name route explicitly, so that faults meant for
// a file's bytes (RouteAny) do not also hit the API.
func (s *Server) takeRouteFault(route Route, repoID string, kinds ...FaultKind) *Fault {
	return s.faults.Take(func(f *Fault) bool {
		return f.Route == route && (f.Repo == "" || f.Repo == repoID) && slices.Contains(kinds, f.Kind)
	})
}

// endlessPage answers a tree listing with no entries and a link to a "next" page under a fresh
// cursor.
func endlessPage(w http.ResponseWriter, r *http.Request) {
	next := *r.URL
	q := next.Query()
	var b [8]byte
	_, _ = rand.Read(b[:])
	q.Set("cursor", fmt.Sprintf("%x", b))
	next.RawQuery = q.Encode()
	next.Scheme, next.Host = "http", r.Host
	if r.TLS != nil {
		next.Scheme = "https"
	}
	w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.String()))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("[]"))
}

// stallAnswer sends the headers and the first f.After bytes of what serve answers, then nothing
// until the client gives up or the server closes.
func (s *Server) stallAnswer(w http.ResponseWriter, r *http.Request, f *Fault, serve func(http.ResponseWriter)) {
	rec := httptest.NewRecorder()
	serve(rec)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	body := rec.Body.Bytes()
	_, _ = w.Write(body[:min(int(f.After), max(len(body)-1, 0))])
	_ = http.NewResponseController(w).Flush()
	select {
	case <-r.Context().Done():
	case <-s.closed:
	}
	panic(http.ErrAbortHandler)
}

// recorder captures the status for the request log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) record(cdn bool, w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request)) {
	rec := &recorder{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.log = append(s.log, Request{CDN: cdn, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization"), Status: rec.status})
		s.mu.Unlock()
	}()
	serve(rec, r)
}

// ServeHTTP serves the Hub's routes (see the package documentation).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.record(false, w, r, s.serveHub)
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqID++
	id := s.reqID
	s.mu.Unlock()
	w.Header().Set("X-Request-Id", fmt.Sprintf("Root=1-hubtest-%08x", id))
	w.Header().Set("Access-Control-Expose-Headers", "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash")
	segs, err := splitEscaped(r.URL.EscapedPath())
	if err != nil {
		hubError(w, http.StatusBadRequest, "", "invalid path")
		return
	}
	if len(segs) > 0 && segs[0] == "api" {
		if f := s.takeFault(RouteAPI, apiRepoID(segs), "", FaultStatus); f != nil {
			statusFault(w, f)
			return
		}
		if len(segs) >= 5 && segs[4] == "tree" {
			if f := s.takeRouteFault(RouteAPI, apiRepoID(segs), FaultEndlessPages); f != nil {
				endlessPage(w, r)
				return
			}
		}
		if f := s.takeRouteFault(RouteAPI, apiRepoID(segs), FaultStall); f != nil {
			s.stallAnswer(w, r, f, func(w http.ResponseWriter) { s.serveAPI(w, r, segs[1:]) })
			return
		}
		s.serveAPI(w, r, segs[1:])
		return
	}
	// /{ns}/{name}/resolve|raw/{rev}/{path...}
	if len(segs) >= 5 && (segs[2] == "resolve" || segs[2] == "raw") {
		s.serveResolve(w, r, segs[0]+"/"+segs[1], segs[2], segs[3], strings.Join(segs[4:], "/"))
		return
	}
	hubError(w, http.StatusNotFound, "", "Sorry, we can't find the page you are looking for.")
}

func apiRepoID(segs []string) string {
	if len(segs) >= 4 && segs[1] == "models" {
		return segs[2] + "/" + segs[3]
	}
	return ""
}

// splitEscaped splits an escaped path into unescaped segments, so "refs%2Fpr%2F1" stays one.
func splitEscaped(p string) ([]string, error) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	out := make([]string, 0, len(parts))
	for _, part := range parts {
		u, err := url.PathUnescape(part)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if len(out) == 1 && out[0] == "" {
		return nil, nil
	}
	return out, nil
}

// hubError writes an error the way the Hub does: X-Error-Code, X-Error-Message and {"error":…}.
func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func statusFault(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.RateLimit != "" {
		w.Header().Set("RateLimit", f.RateLimit)
		w.Header().Set("RateLimit-Policy", `"fixed window";"resolvers";q=3000;w=300`)
	}
	if f.Status == http.StatusTooManyRequests {
		// The Hub's 429 can be an HTML page rather than JSON.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(f.Status)
		fmt.Fprint(w, "<html><body><h1>429 Too Many Requests</h1></body></html>")
		return
	}
	hubError(w, f.Status, "", http.StatusText(f.Status))
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(t)
}

// lookup finds a repo for a request, answering the Hub's errors itself. needFiles applies the
// gate, which guards file content but not metadata.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, id string, needFiles bool) (*repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := bearer(r)
	if token != "" {
		if _, ok := s.tokens[token]; !ok {
			hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
			return nil, false
		}
	}
	rp, ok := s.repos[id]
	if !ok {
		if to, renamed := s.renamed[id]; renamed {
			// Relative, as the Hub sends it: the client must follow it on the same host.
			loc := strings.Replace(r.URL.EscapedPath(), "/"+id+"/", "/"+to+"/", 1)
			if strings.HasSuffix(r.URL.EscapedPath(), "/"+id) {
				loc = strings.TrimSuffix(r.URL.EscapedPath(), id) + to
			}
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusTemporaryRedirect)
			fmt.Fprintf(w, "Temporary Redirect. Redirecting to %s", loc)
			return nil, false
		}
		notFound(w, token)
		return nil, false
	}
	if rp.disabled {
		hubError(w, http.StatusForbidden, "", "Access to this resource is disabled.")
		return nil, false
	}
	if rp.private && !rp.access[token] {
		notFound(w, token)
		return nil, false
	}
	if needFiles && rp.gated != "" && !rp.access[token] {
		if token == "" {
			hubError(w, http.StatusUnauthorized, "GatedRepo", fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", id))
		} else {
			hubError(w, http.StatusForbidden, "GatedRepo", fmt.Sprintf("Access to model %s is restricted and you are not in the authorized list. Visit https://huggingface.co/%s to ask for access.", id, id))
		}
		return nil, false
	}
	return rp, true
}

// notFound is the Hub's answer for a missing or hidden repo: 401 anonymous, 404 with a token.
func notFound(w http.ResponseWriter, token string) {
	status := http.StatusNotFound
	if token == "" {
		status = http.StatusUnauthorized
	}
	hubError(w, status, "RepoNotFound", "Repository not found")
}

// resolveRev finds a revision's commit, answering RevisionNotFound itself.
func (s *Server) resolveRev(w http.ResponseWriter, rp *repo, rev string) (*commit, bool) {
	s.mu.Lock()
	c, ok := rp.resolve(rev)
	s.mu.Unlock()
	if !ok {
		hubError(w, http.StatusNotFound, "RevisionNotFound", fmt.Sprintf("Invalid rev id: %s", rev))
	}
	return c, ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
