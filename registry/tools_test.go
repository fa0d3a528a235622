package registry

import (
	"testing"

	"github.com/echelongraph/go-modelverify/internal/testtools"
)

// tool finds a tool .ci/tools.sh builds (crane; cosign on request), or skips the test saying
// how to build it (CI, which sets MODELVERIFY_REQUIRE_ENGINES, fails instead).
func tool(t *testing.T, name string) string {
	t.Helper()
	return testtools.Find(t, name)
}
