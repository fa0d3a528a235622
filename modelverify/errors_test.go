package modelverify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

func TestRefusalMatchesExactlyTheReasonsItCarries(t *testing.T) {
	r := &modelverify.Refusal{
		Ref:    "hf://acme/llm@main",
		Commit: "0123456789abcdef0123456789abcdef01234567",
		Problems: []modelverify.Problem{
			{Reason: modelverify.ErrDigestMismatch, File: "model-00001.safetensors", Expected: "sha256:aa", Actual: "sha256:bb"},
			{Reason: modelverify.ErrUnexpectedFile, File: "extra.bin"},
		},
	}
	var err error = r
	for _, reason := range modelverify.Reasons() {
		want := reason == modelverify.ErrDigestMismatch || reason == modelverify.ErrUnexpectedFile
		if got := errors.Is(err, reason); got != want {
			t.Errorf("errors.Is(refusal, %s) = %v, want %v", reason.Name(), got, want)
		}
	}
	wrapped := fmt.Errorf("loading model: %w", err)
	var got *modelverify.Refusal
	if !errors.As(wrapped, &got) || got != r {
		t.Fatalf("errors.As through a wrapper failed")
	}
	if !errors.Is(wrapped, modelverify.ErrDigestMismatch) {
		t.Error("errors.Is through a wrapper failed")
	}
	if errors.Is(err, errors.New("digest mismatch")) {
		t.Error("a refusal must not match an unrelated error with the same text")
	}
}

type hubFailure struct{ status int }

func (h *hubFailure) Error() string { return fmt.Sprintf("HTTP %d", h.status) }

func TestRefusalUnwrapsToItsCause(t *testing.T) {
	cause := fmt.Errorf("fetching tree: %w", &hubFailure{503})
	r := &modelverify.Refusal{Ref: "hf://acme/llm", Problems: []modelverify.Problem{{Reason: modelverify.ErrHub}}, Err: cause}
	var hf *hubFailure
	if !errors.As(r, &hf) || hf.status != 503 {
		t.Errorf("errors.As did not reach the cause")
	}
	canceled := &modelverify.Refusal{Problems: []modelverify.Problem{{Reason: modelverify.ErrHub}}, Err: context.Canceled}
	if !errors.Is(canceled, context.Canceled) || !errors.Is(canceled, modelverify.ErrHub) {
		t.Errorf("errors.Is must match both the cause and the reason")
	}
	if !strings.HasSuffix(r.Error(), ": fetching tree: HTTP 503") {
		t.Errorf("message %q does not end with the cause", r.Error())
	}
}

func TestRefusalMessageTellsTheOperatorWhatFailed(t *testing.T) {
	r := &modelverify.Refusal{
		Ref:    "hf://acme/llm@v1",
		Commit: "0123456789abcdef0123456789abcdef01234567",
		Problems: []modelverify.Problem{{
			Reason:   modelverify.ErrIdentity,
			Expected: "sigstore identity release@acme.example issued by https://accounts.google.com",
			Actual:   "mallory@evil.example",
		}},
	}
	want := `modelverify: refused hf://acme/llm@v1 at commit 0123456789abcdef0123456789abcdef01234567: ` +
		`wrong-identity: expected "sigstore identity release@acme.example issued by https://accounts.google.com", found mallory@evil.example`
	if r.Error() != want {
		t.Errorf("message\n got %s\nwant %s", r.Error(), want)
	}

	digest := &modelverify.Refusal{Ref: "hf://acme/llm", Problems: []modelverify.Problem{{
		Reason: modelverify.ErrDigestMismatch, File: "model.safetensors",
		Expected: "sha256:1111", Actual: "sha256:2222", Detail: "signed manifest",
	}}}
	if got, want := digest.Error(), `modelverify: refused hf://acme/llm: digest-mismatch: file model.safetensors, expected sha256:1111, found sha256:2222, signed manifest`; got != want {
		t.Errorf("message\n got %s\nwant %s", got, want)
	}
}

func TestRefusalMessageStaysOneLineWhateverTheInput(t *testing.T) {
	r := &modelverify.Refusal{
		Ref: "hf://acme/llm",
		Problems: []modelverify.Problem{
			{Reason: modelverify.ErrUnexpectedFile, File: "a\n2026-01-01 allowed hf://evil/x"},
			{Reason: modelverify.ErrMissingFile, File: "b", Detail: "line1\r\nline2"},
		},
		Err: errors.New("cause\nwith newline"),
	}
	msg := r.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("message spans lines: %q", msg)
	}
	if !strings.Contains(msg, `file "a\n2026-01-01 allowed hf://evil/x"`) {
		t.Errorf("file name with a newline must be quoted: %s", msg)
	}
}

func TestRefusalMessageSummarisesLongProblemLists(t *testing.T) {
	r := &modelverify.Refusal{Ref: "hf://acme/llm"}
	for i := range 1000 {
		r.Problems = append(r.Problems, modelverify.Problem{Reason: modelverify.ErrDigestMismatch, File: fmt.Sprintf("shard-%04d", i)})
	}
	msg := r.Error()
	if !strings.Contains(msg, "shard-0002") || strings.Contains(msg, "shard-0003") || !strings.HasSuffix(msg, "; and 997 more") {
		t.Errorf("message = %s", msg)
	}
	if len(r.Problems) != 1000 {
		t.Errorf("problems = %d, the full list must be kept", len(r.Problems))
	}
}

func TestReasonNamesAreStableAndUnique(t *testing.T) {
	// These names are written to audit logs; changing one breaks every query over old logs.
	want := []string{
		"publisher-not-allowed", "endpoint-not-allowed", "redirect-not-allowed", "unpinned-revision",
		"unverified-org", "unsigned", "bad-signature", "wrong-identity", "bad-manifest",
		"subject-mismatch", "manifest-not-pinned", "digest-mismatch", "missing-file", "unexpected-file", "unsafe-content",
		"format-not-allowed", "limit-exceeded", "file-changed", "hub-error",
	}
	var got []string
	for _, r := range modelverify.Reasons() {
		got = append(got, r.Name())
		back, ok := modelverify.ReasonByName(r.Name())
		if !ok || back != r {
			t.Errorf("ReasonByName(%q) = %v, %v", r.Name(), back, ok)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reason names = %v\nwant %v", got, want)
	}
	if _, ok := modelverify.ReasonByName("no-such-reason"); ok {
		t.Error("ReasonByName found an unknown name")
	}
}

func TestRefusalReasonsAreDistinctInOrder(t *testing.T) {
	r := &modelverify.Refusal{Problems: []modelverify.Problem{
		{Reason: modelverify.ErrMissingFile, File: "a"},
		{Reason: modelverify.ErrUnexpectedFile, File: "b"},
		{Reason: modelverify.ErrMissingFile, File: "c"},
	}}
	if got := r.ReasonNames(); !reflect.DeepEqual(got, []string{"missing-file", "unexpected-file"}) {
		t.Errorf("ReasonNames = %v", got)
	}
}

func TestAsRefusalKeepsReasonsAndCauses(t *testing.T) {
	if modelverify.AsRefusal(nil, "x", "", nil) != nil {
		t.Error("AsRefusal(nil) != nil")
	}
	// A policy lookup error wraps its reason.
	p, err := modelverify.ParsePolicy([]byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	_, lookupErr := p.Publisher("stranger/model")
	r := modelverify.AsRefusal(lookupErr, "hf://stranger/model", "", modelverify.ErrHub)
	if !errors.Is(r, modelverify.ErrPublisherNotAllowed) || errors.Is(r, modelverify.ErrHub) || r.Ref != "hf://stranger/model" {
		t.Errorf("AsRefusal(lookup) = %v", r)
	}
	// An existing refusal is copied and completed, never mutated.
	orig := &modelverify.Refusal{Problems: []modelverify.Problem{{Reason: modelverify.ErrUnsigned}}}
	r = modelverify.AsRefusal(fmt.Errorf("verify: %w", orig), "hf://a/b", "c0ffee", modelverify.ErrHub)
	if r == orig || r.Ref != "hf://a/b" || r.Commit != "c0ffee" || orig.Ref != "" || !errors.Is(r, modelverify.ErrUnsigned) {
		t.Errorf("AsRefusal(refusal) = %+v, original %+v", r, orig)
	}
	// Anything else gets the fallback reason and keeps the cause.
	r = modelverify.AsRefusal(fs.ErrPermission, "hf://a/b", "", modelverify.ErrUnsafeContent)
	if !errors.Is(r, modelverify.ErrUnsafeContent) || !errors.Is(r, fs.ErrPermission) {
		t.Errorf("AsRefusal(other) = %v", r)
	}
	if r := modelverify.AsRefusal(fs.ErrPermission, "hf://a/b", "", nil); !errors.Is(r, modelverify.ErrHub) {
		t.Errorf("AsRefusal without fallback = %v, want ErrHub", r)
	}
}

func TestRefusalJSONCarriesMachineNames(t *testing.T) {
	r := &modelverify.Refusal{
		Ref: "hf://acme/llm", Commit: "abc",
		Problems: []modelverify.Problem{{Reason: modelverify.ErrMissingFile, File: "tokenizer.json"}},
		Err:      errors.New("boom"),
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Message  string   `json:"message"`
		Ref      string   `json:"ref"`
		Commit   string   `json:"commit"`
		Reasons  []string `json:"reasons"`
		Problems []struct {
			Reason, File string
		} `json:"problems"`
		Cause string `json:"cause"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Message != r.Error() || got.Ref != "hf://acme/llm" || got.Commit != "abc" || got.Cause != "boom" ||
		!reflect.DeepEqual(got.Reasons, []string{"missing-file"}) || len(got.Problems) != 1 ||
		got.Problems[0].Reason != "missing-file" || got.Problems[0].File != "tokenizer.json" {
		t.Errorf("JSON = %s", data)
	}
}
