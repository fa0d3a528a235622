// Command service is a KServe custom runtime with the load gate in front of its model: it
// serves the Open Inference Protocol (v2) health and model endpoints that KServe and the kubelet
// probe, and is ready only once its model has been verified.
//
//	service [--policy FILE] [--model-name NAME] [--http-address :8080] [--recheck-interval D] [hf://org/name@rev]
//
// The model is the argument, else $MODELVERIFY_MODEL (how the InferenceService in manifests/
// names it). The Hub, the token and the cache come from HF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE,
// as they do for huggingface_hub.
//
// It is live at once (/v2/health/live answers 200) and verifies the model in the background.
// /v2/health/ready and /v2/models/{name}/ready answer 200 only once the model has passed;
// until then, and for good after a refusal, they answer 503, so the pod stays out of the
// Service's endpoints and nothing is routed to a model that was not verified. A refusal is
// logged as one JSON line (the decision, the reasons, each problem). The model is re-checked
// (every file hashed again, Model.Recheck) on SIGHUP and every --recheck-interval; a re-check
// that fails makes the runtime unready for good, logged the same way. stderr is slog JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// modelEnv names the model when no argument does.
const modelEnv = "MODELVERIFY_MODEL"

func main() {
	policyPath := flag.String("policy", "policy.yaml", "the load-gate policy")
	name := flag.String("model-name", "", "the name the model is served under (default: the repository's name); KServe passes {{.Name}}")
	addr := flag.String("http-address", ":8080", "where the Open Inference Protocol endpoints listen")
	recheckEvery := flag.Duration("recheck-interval", 0, "how often to hash the model's files again; 0 for only on SIGHUP")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(logger) // the policy's slog audit sink writes to the default logger

	ref := flag.Arg(0)
	if ref == "" {
		ref = os.Getenv(modelEnv)
	}
	r, err := hub.ParseReference(ref)
	if flag.NArg() > 1 || ref == "" || err != nil || *recheckEvery < 0 {
		logger.Error("usage: service [--policy FILE] [--model-name NAME] [--http-address ADDR] [--recheck-interval D] hf://org/name[@rev] (or $"+modelEnv+")",
			"model", ref, "error", errText(err))
		os.Exit(2)
	}
	if *name == "" {
		*name = r.Name
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP asks for a re-check; registered before anything else so it never kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	s := &server{name: *name, log: logger.With("model", *name, "ref", ref), state: "loading"}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Error("cannot listen", "address", *addr, "error", err.Error())
		os.Exit(2)
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	s.log.Info("listening; live, not ready until the model is verified", "address", ln.Addr().String())

	go func() {
		if model := s.load(ctx, *policyPath, ref); model != nil {
			s.rechecks(ctx, model, hup, *recheckEvery)
		}
	}()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
}

// server is the runtime's state: one model, and whether it may be served.
type server struct {
	name string
	log  *slog.Logger

	mu     sync.Mutex
	state  string // "loading", "ready", "refused", "failed" or "changed"
	reason string // why it is not ready, for the model endpoints
	model  *modelverify.Model
}

// load verifies the model through the policy, and makes the server ready only if it passes.
// It is the whole integration with the load gate; README.md's "For Go services" shows it.
func (s *server) load(ctx context.Context, policyPath, ref string) *modelverify.Model {
	policy, err := modelverify.LoadPolicy(policyPath)
	if err != nil {
		return s.neverReady("cannot load the policy", err) // every problem in the policy, each with the field at fault
	}
	v, err := modelverify.NewVerifier(policy) // HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE as huggingface_hub reads them
	if err != nil {
		return s.neverReady("cannot build the verifier", err)
	}
	defer v.Close()

	model, err := v.Verify(ctx, ref) // "hf://org/name@<commit>"
	var refusal *modelverify.Refusal
	switch {
	case ctx.Err() != nil:
		return nil // shutting down: no decision was made
	case errors.Is(err, modelverify.ErrDigestMismatch):
		return s.neverReady("model refused: tampered weights", err) // which file, the signed digest and the one found
	case errors.As(err, &refusal):
		return s.neverReady("model refused: "+strings.Join(refusal.ReasonNames(), ", "), err)
	case err != nil:
		return s.neverReady("verification failed", err)
	}
	s.ready(model) // only now do /v2/health/ready and /v2/models/{name}/ready answer 200
	ev := model.Evidence()
	s.log.Info("model verified and ready", "decision", string(ev.Decision), "evidence", ev, "dir", model.Dir())
	return model
}

// ready makes the model servable.
func (s *server) ready(model *modelverify.Model) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.model = "ready", model
}

// neverReady makes the model unservable for good, and logs why in one line: the decision, the
// reasons and each problem (file, expected, found).
func (s *server) neverReady(msg string, err error) *modelverify.Model {
	attrs := []any{"decision", string(modelverify.DecisionRefused)}
	state, reason := "failed", err.Error()
	var refusal *modelverify.Refusal
	if errors.As(err, &refusal) {
		problems := make([]string, len(refusal.Problems))
		for i, p := range refusal.Problems {
			problems[i] = p.String()
		}
		attrs = append(attrs, "reasons", refusal.ReasonNames(), "problems", problems)
		state, reason = "refused", strings.Join(refusal.ReasonNames(), ", ")
	}
	s.mu.Lock()
	if s.state == "ready" {
		state = "changed" // a re-check failed
	}
	s.state, s.reason, s.model = state, reason, nil
	s.mu.Unlock()
	s.log.Error(msg+"; the model will never be ready", append(attrs, "error", err.Error())...)
	return nil
}

// rechecks hashes the model's files again on each SIGHUP and each interval. The first failure
// ends serving: files that changed under a running server are not trusted again.
func (s *server) rechecks(ctx context.Context, model *modelverify.Model, hup <-chan os.Signal, every time.Duration) {
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		var trigger string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			trigger = "SIGHUP"
		case <-tick:
			trigger = "interval"
		}
		if err := model.Recheck(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.neverReady("re-check failed", err)
			return
		}
		s.log.Info("re-check passed; the model is unchanged", "trigger", trigger, "commit", model.Evidence().Commit)
	}
}

// routes are the Open Inference Protocol's REST endpoints a probe or a client asks first.
// A health or readiness answer is 200 for true and 503 for false, with the protocol's JSON body.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, r *http.Request) {
		_, ready := s.servable()
		writeJSON(w, readyStatus(ready), map[string]any{"ready": ready})
	})
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "modelverify-service", "version": "v2", "extensions": []string{}})
	})
	modelReady := func(w http.ResponseWriter, r *http.Request) {
		if m, ok := s.named(w, r); ok {
			writeJSON(w, readyStatus(m != nil), map[string]any{"name": s.name, "ready": m != nil})
		}
	}
	mux.HandleFunc("GET /v2/models/{name}/ready", modelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", modelReady)
	metadata := func(w http.ResponseWriter, r *http.Request) {
		m, ok := s.named(w, r)
		if !ok {
			return
		}
		if m == nil {
			s.mu.Lock()
			msg := fmt.Sprintf("model %s is not ready: %s", s.name, s.state)
			if s.reason != "" {
				msg += " (" + s.reason + ")"
			}
			s.mu.Unlock()
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": msg})
			return
		}
		// The version is the commit that was verified: what is served, exactly.
		writeJSON(w, http.StatusOK, map[string]any{"name": s.name, "versions": []string{m.Evidence().Commit},
			"platform": "huggingface", "inputs": []any{}, "outputs": []any{}})
	}
	mux.HandleFunc("GET /v2/models/{name}", metadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", metadata)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not an endpoint of this server: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// servable is the verified model, while it may be served.
func (s *server) servable() (*modelverify.Model, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model, s.state == "ready"
}

// named checks the request names this server's model (and, once it is verified, that a
// version it names is the verified commit), and answers 404 otherwise. It returns the model if
// it is servable, nil if not (yet).
func (s *server) named(w http.ResponseWriter, r *http.Request) (*modelverify.Model, bool) {
	if name := r.PathValue("name"); name != s.name {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("model %s is not served here; this server serves %s", name, s.name)})
		return nil, false
	}
	m, ready := s.servable()
	if !ready {
		m = nil
	}
	if v := r.PathValue("version"); v != "" && m != nil && v != m.Evidence().Commit {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("version %s of model %s is not served here", v, s.name)})
		return nil, false
	}
	return m, true
}

func readyStatus(ready bool) int {
	if ready {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
