package emulator

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSelfContained checks the emulator builds its objects from the schemas
// embedded in the catalog, not from stripe-mock's spec: a `go install`ed
// binary must run `stripeline demo` without the module cache, and should
// not carry the 22 MB of specs and fixtures the stripe-mock module embeds.
func TestSelfContained(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/stripe/stripe-mock") {
			t.Errorf("the emulator depends on %s; it must use internal/catalog's embedded schemas", dep)
		}
	}
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/customers"},
		{"POST", "/v1/customers"},
		{"GET", "/v1/customers/{id}"},
		{"DELETE", "/v1/customers/{c}"},
		{"GET", "/v1/events"},
	} {
		if sp.operation(c.method, c.path) == nil {
			t.Errorf("no operation %s %s", c.method, c.path)
		}
	}
	if c := sp.component("customer"); c == nil || c.Properties["email"] == nil {
		t.Error("the customer schema has no email")
	}
}
