package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/sqlite"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/enginetest"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinary compiles stripeline once for the end-to-end tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "stripeline-e2e-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "stripeline"), ".")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return filepath.Join(buildDir, "stripeline")
}

// TestKillMidSyncAndResume kills a real `stripeline sync` process with
// SIGKILL at several points of a backfill (latency on), resumes, and checks
// the replica equals the account with no duplicate rows.
func TestKillMidSyncAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	emu, err := emulator.New(emulator.Config{Seed: 5, Objects: 4000, Latency: 3 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "replica.db")
	env := append(os.Environ(), "STRIPE_API_KEY=sk_test_e2e", "STRIPE_API_BASE="+srv.URL)
	args := []string{"sync", "--dest", "sqlite://" + db, "--max-rps", "100000", "--endpoint-rps", "100000", "--concurrency", "8", "--format", "json"}

	// A full uninterrupted run into a scratch replica measures the requests a
	// backfill takes.
	scratch := exec.Command(bin, "sync", "--dest", "sqlite://"+filepath.Join(t.TempDir(), "scratch.db"), "--max-rps", "100000", "--endpoint-rps", "100000")
	scratch.Env = env
	if out, err := scratch.CombinedOutput(); err != nil {
		t.Fatalf("scratch sync: %v\n%s", err, out)
	}
	total := emu.Stats().Requests
	// Each resumed run needs only what is left, so the kill points are
	// fractions of a full run counted from each start: about 15 %, 40 % and
	// 65 % of the work.
	for i, frac := range []float64{0.15, 0.25, 0.25} {
		after := int64(float64(total) * frac)
		if i == 2 {
			// Changes between a kill and the resume must land too.
			for _, s := range []string{"customers", "invoices", "subscriptions"} {
				if err := emu.Mutate("", s, 3, 5, 2); err != nil {
					t.Fatal(err)
				}
			}
		}
		emu.ResetStats()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	poll:
		for {
			select {
			case <-exited:
				break poll // finished before the kill point: fine, nothing to resume
			case <-ctx.Done():
				cancel()
				t.Fatalf("run %d: no progress: %s", i, stderr.String())
			case <-time.After(2 * time.Millisecond):
				if emu.Stats().Requests >= after {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-exited
					killed = true
					break poll
				}
			}
		}
		cancel()
		t.Logf("run %d: killed=%v after %d of ~%d requests", i, killed, emu.Stats().Requests, total)
		if !killed {
			if i == 0 {
				t.Fatalf("run %d finished before its kill point", i)
			}
			t.Logf("run %d finished before its kill point; the final run still checks the replica", i)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("final sync: %v\n%s", err, out)
	}
	dst, err := dest.Open(context.Background(), "sqlite://"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	streams := enginetest.SeededStreams(t, emu, "")
	enginetest.AssertReplicaEqualsAccount(t, dst.(dest.Querier), emu, "", streams)
	runs, err := dst.Runs(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 2 || runs[0].Status != "succeeded" {
		t.Fatalf("runs: %+v", runs)
	}
}
