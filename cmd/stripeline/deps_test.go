package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The shipped binary links no test code: neither the testing package nor
// the project's test helpers nor test-only libraries.
func TestBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"testing",
		"net/http/httptest",
		"github.com/stripeline/stripeline/internal/enginetest",
		"github.com/stripeline/stripeline/internal/dest/desttest",
		"github.com/google/go-cmp/cmp",
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed only %d packages", len(deps))
	}
	for _, p := range forbidden {
		if deps[p] {
			t.Errorf("the binary links %s", p)
		}
	}
}
