package modelverify_test

import (
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// Misspelt and malformed fields no longer stop loading before the semantic checks: one run
// reports the typo, the value of the wrong kind and the invalid mode together, and does not
// report again what follows from the typo (the intended field being unset).
func TestPolicyReportsEveryProblemInOneRound(t *testing.T) {
	doc := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
mode: permissive
endpoints:
  - url: https://huggingface.co
    cdnHosts: cdn-lfs.hf.co
publishers:
  - name: acme
    namespace: [acme]
    requireSignature: false
    requirePinnedRevison: true
contnet:
  pickle: deny
`
	_, err := modelverify.ParsePolicy([]byte(doc))
	probs := policyProblems(t, err)
	want := map[string]string{
		"mode":                               `"permissive" is not a mode`,
		"endpoints[0].cdnHosts":              "must be a list",
		"publishers[0].namespace":            `unknown field (did you mean "namespaces"?)`,
		"publishers[0].requirePinnedRevison": `unknown field (did you mean "requirePinnedRevision"?)`,
		"contnet":                            `unknown field (did you mean "content"?)`,
	}
	for field, msg := range want {
		if !strings.Contains(probs[field], msg) {
			t.Errorf("%s: %q, want %q", field, probs[field], msg)
		}
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d (the typo's consequences are not repeated): %v", len(probs), len(want), probs)
	}
}

// A near miss is suggested by edit distance; a name close to nothing gets the list of fields.
func TestPolicyUnknownFieldSuggestsTheNearestName(t *testing.T) {
	base := "apiVersion: modelverify.echelongraph.io/v1alpha1\nkind: ModelPolicy\nendpoints: [{url: https://huggingface.co}]\n" +
		"publishers: [{name: acme, namespaces: [acme], requireSignature: false, %s: true}]\n"
	for key, want := range map[string]string{
		"requireVerifedOrg":   `did you mean "requireVerifiedOrg"?`,   // a letter left out
		"requireVreifiedOrg":  `did you mean "requireVerifiedOrg"?`,   // two letters swapped
		"REQUIREVERIFIEDORG":  `did you mean "requireVerifiedOrg"?`,   // capitals
		"requireSubjectNames": `did you mean "requireSubjectName"?`,   // one too many
		"verifyEverything":    "known fields: endpoints, identities,", // nothing near
	} {
		_, err := modelverify.ParsePolicy([]byte(strings.Replace(base, "%s", key, 1)))
		if got := policyProblems(t, err)["publishers[0]."+key]; !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}
