package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoWithoutModuleCache runs a built binary's `demo` the way a fresh
// `go install` runs it: no Go toolchain on PATH, no module cache, an empty
// HOME. The emulator and the catalog must be embedded in the binary.
func TestDemoWithoutModuleCache(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	bin := filepath.Join(t.TempDir(), "stripeline")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	work, empty := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, "demo", "--objects", "2000")
	cmd.Dir = work
	cmd.Env = []string{
		"HOME=" + empty,
		"PATH=" + empty,
		"GOPATH=" + filepath.Join(empty, "nonexistent"),
		"GOMODCACHE=" + filepath.Join(empty, "nonexistent"),
		"GOFLAGS=-mod=mod",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo without the module cache: %v\n%s", err, out)
	}
	for _, want := range []string{"succeeded", "Net revenue by month", "demo finished"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "stripeline-demo.db")); err != nil {
		t.Errorf("no replica: %v", err)
	}
}
