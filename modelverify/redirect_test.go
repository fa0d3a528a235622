package modelverify_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// A policy that lists its CDN as "127.0.0.1" while the CDN listens on another port is refused
// with the host:port at fault, the policy's hosts as what was expected, and the exact entry to
// add, said once and without the signed URL's query string.
func TestRedirectRefusalSaysWhichHostPortAndWhatToAdd(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifier(func(p map[string]any) {
		p["endpoints"].([]any)[0].(map[string]any)["cdnHosts"] = []any{"127.0.0.1"}
	})
	_, err := v.Verify(context.Background(), "hf://acme/tiny@main")
	var r *modelverify.Refusal
	if !errors.As(err, &r) || !errors.Is(err, modelverify.ErrRedirectNotAllowed) {
		t.Fatalf("refused with %v, want redirect-not-allowed", err)
	}
	var re *hub.RedirectError
	if !errors.As(err, &re) {
		t.Fatalf("the cause %v is not a *hub.RedirectError", err)
	}
	cdn := g.hub.CDNHost()
	p := r.Problems[0]
	if p.Reason != modelverify.ErrRedirectNotAllowed || p.Expected != "127.0.0.1" || p.Actual != cdn {
		t.Errorf("problem %+v; want expected 127.0.0.1, found %s", p, cdn)
	}
	msg := err.Error()
	for _, want := range []string{
		fmt.Sprintf("endpoints[].cdnHosts: [%q]", cdn),
		`"127.0.0.1" without a port allows only ports 80 and 443`,
	} {
		if strings.Count(msg, want) != 1 {
			t.Errorf("the message says %q %d times, want once: %s", want, strings.Count(msg, want), msg)
		}
	}
	if strings.Contains(msg, "?") || strings.Contains(msg, "Signature=") || strings.Count(msg, re.To) != 1 {
		t.Errorf("the message repeats the URL or carries its query: %s", msg)
	}
	if len(msg) > 600 {
		t.Errorf("the message is %d characters: %s", len(msg), msg)
	}
}
