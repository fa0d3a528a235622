package registrytest

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/echelongraph/go-modelverify/internal/faults"
)

// Option configures a Server.
type Option func(*Server) error

// WithReferrersAPI serves the OCI 1.1 referrers API (off by default: clients then use the
// referrers tag schema).
func WithReferrersAPI() Option {
	return func(s *Server) error { s.referrers = true; return nil }
}

// WithFault injects a fault into matching requests; faults apply in the order given, the first
// match wins.
func WithFault(f Fault) Option {
	return func(s *Server) error {
		if f.Kind == 0 {
			return fmt.Errorf("WithFault: no Kind")
		}
		if f.Kind == FaultRedirect && f.Location == "" {
			return fmt.Errorf("WithFault: FaultRedirect needs a Location")
		}
		s.AddFault(f)
		return nil
	}
}

// WithBasicAuth makes every request need these credentials (HTTP Basic), as a private registry does.
func WithBasicAuth(user, password string) Option {
	return func(s *Server) error { s.user, s.password = user, password; return nil }
}

// WithBlobRedirects makes blob downloads redirect to a second host (the storage host that
// NewServer starts), as registries backed by object storage do. The storage host records the
// Authorization headers it receives: a client must send none there.
func WithBlobRedirects() Option {
	return func(s *Server) error { s.redirectBlobs = true; return nil }
}

// Server is an OCI registry handler with faults.
type Server struct {
	registry      http.Handler
	referrers     bool
	user          string
	password      string
	redirectBlobs bool
	storageURL    string

	mu          sync.Mutex
	faults      faults.Set[Fault]
	storageAuth []string
	tagSchema   map[string][]Descriptor
	requests    []string
	closed      chan struct{}
	closeOnce   sync.Once
}

// New returns a Server configured by opts.
func New(opts ...Option) (*Server, error) {
	s := &Server{closed: make(chan struct{})}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	s.registry = ggcrregistry.New(quiet, ggcrregistry.WithReferrersSupport(s.referrers))
	return s, nil
}

// AddFault adds a fault at run time (after content was pushed, say).
func (s *Server) AddFault(f Fault) { s.faults.Add(f, f.Times) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Close releases requests that a FaultStall holds.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// SetStorageURL sets where WithBlobRedirects sends blob downloads.
func (s *Server) SetStorageURL(u string) { s.storageURL = strings.TrimSuffix(u, "/") }

// StorageAuthorizations are the Authorization headers the storage host received, in order ("" for none).
func (s *Server) StorageAuthorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.storageAuth...)
}

// Requests lists "METHOD path" for every request the registry received, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// route parses /v2/<repo>/<kind>/<ref>.
func route(path string) (Route, string, string, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return RouteAny, "", "", false
	}
	for kind, r := range map[string]Route{"/manifests/": RouteManifests, "/blobs/": RouteBlobs, "/referrers/": RouteReferrers} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			return r, rest[:i], rest[i+len(kind):], true
		}
	}
	return RouteAny, "", "", false
}

func (s *Server) match(req *http.Request, storage bool) *Fault {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return nil
	}
	r, repo, ref, _ := route(req.URL.Path)
	if storage {
		r = RouteBlobs
	}
	ranged := req.Header.Get("Range") != ""
	return s.faults.Take(func(f *Fault) bool {
		return (f.Route == RouteAny || f.Route == r) && (f.Repo == "" || f.Repo == repo) &&
			(f.Digest == "" || f.Digest == ref) && (f.Kind != FaultIgnoreRange || ranged)
	})
}

// ServeHTTP serves the registry API.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, req.Method+" "+req.URL.Path)
	s.mu.Unlock()
	if s.user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != s.user || p != s.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
	}
	r, _, _, _ := route(req.URL.Path)
	if s.redirectBlobs && r == RouteBlobs && req.Method == http.MethodGet && s.storageURL != "" {
		http.Redirect(w, req, s.storageURL+req.URL.Path, http.StatusTemporaryRedirect)
		return
	}
	s.serve(w, req, false)
}

// Storage is the handler of the storage host that WithBlobRedirects sends blob downloads to.
func (s *Server) Storage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		s.storageAuth = append(s.storageAuth, req.Header.Get("Authorization"))
		s.mu.Unlock()
		inner := req.Clone(req.Context())
		inner.Header.Del("Authorization")
		s.serve(w, inner, true)
	})
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request, storage bool) {
	f := s.match(req, storage)
	if f == nil {
		s.registry.ServeHTTP(w, req)
		return
	}
	switch f.Kind {
	case FaultStatus:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault: HTTP %d"}]}`, f.Status)
	case FaultRedirect:
		http.Redirect(w, req, f.Location, http.StatusTemporaryRedirect)
	case FaultIgnoreRange:
		r := req.Clone(req.Context())
		r.Header.Del("Range")
		s.registry.ServeHTTP(w, r)
	default:
		// Body faults act on what the registry would have sent.
		rec := httptest.NewRecorder()
		s.registry.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if rec.Code != http.StatusOK || len(body) == 0 {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		s.bodyFault(w, f, body, rec.Code, req.Context().Done())
	}
}

func (s *Server) bodyFault(w http.ResponseWriter, f *Fault, body []byte, code int, done <-chan struct{}) {
	after := min(max(f.After, 0), int64(len(body)))
	switch f.Kind {
	case FaultCorrupt:
		bad := append([]byte(nil), body...)
		bad[len(bad)/2] ^= 0x55
		w.WriteHeader(code)
		_, _ = w.Write(bad)
	case FaultLongBody:
		w.Header().Del("Content-Length")
		w.WriteHeader(code)
		_, _ = w.Write(body)
		_, _ = w.Write(make([]byte, f.Extra))
	case FaultDropConnection:
		w.WriteHeader(code)
		_, _ = w.Write(body[:after])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if hj, ok := w.(http.Hijacker); ok {
			if conn, buf, err := hj.Hijack(); err == nil {
				_ = buf.Flush()
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, not a clean close: the client sees a broken transfer
				}
				conn.Close()
			}
		}
	case FaultStall:
		w.WriteHeader(code)
		_, _ = w.Write(body[:after])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		select {
		case <-s.closed:
		case <-done:
		}
	}
}
