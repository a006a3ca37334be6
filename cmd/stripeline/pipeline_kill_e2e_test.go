package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// killStreams are the streams of the kill test: dense ones, with a child
// list, so a run lasts long enough to be killed in the middle.
var killStreams = []string{"charges", "customers", "invoices", "invoices_lines", "prices", "products"}

// TestKillTheServiceMidRun starts `stripeline serve`, runs a pipeline whose control
// store and replica share one SQLite file, SIGKILLs the server once rows
// are committed and while requests are held, starts it again, and finds
// the same run rescued by River, resumed from its checkpoint (fewer
// requests than a whole backfill), succeeded, and the replica equal to the
// account.
func TestKillTheServiceMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	emu, err := emulator.New(emulator.Config{Seed: 11, Objects: 12000, ConnectedAccounts: -1, TestClocks: -1, Latency: 25 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	// Once armed, the quota shuts the gate after three quarters of a whole
	// backfill's requests, so a run whose commits lag behind its reads
	// (a loaded machine) is still held before it ends.
	var quota atomic.Int64
	gated := g.wrap(emu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if quota.Add(-1) == 0 {
			g.shut()
		}
		gated.ServeHTTP(w, r)
	}))
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	file := "sqlite://" + filepath.Join(dir, "stripeline.db")
	env := append(os.Environ(), "STRIPE_API_KEY_KILL=sk_test_kill", "STRIPE_API_KEY=sk_test_kill", "STRIPE_API_BASE="+srv.URL, "STRIPELINE_STORE="+file)
	stripeline := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("stripeline %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	rates := []string{"--max-rps", "100000", "--endpoint-rps", "100000", "--concurrency", "8"}

	// A whole backfill into a scratch replica counts the requests it takes.
	stripeline(append([]string{"sync", "--dest", "sqlite://" + filepath.Join(dir, "scratch.db"), "--streams", strings.Join(killStreams, ",")}, rates...)...)
	total := emu.Stats().Requests
	quota.Store(total * 3 / 4)

	stripeline(append([]string{"pipelines", "create", "kill", "--dest", file, "--api-key-env", "STRIPE_API_KEY_KILL", "--streams", strings.Join(killStreams, ",")}, rates...)...)
	work := func() (*exec.Cmd, chan error, *strings.Builder) {
		cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--rescue-after", "6s")
		cmd.Env, cmd.Dir = env, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		return cmd, exited, &stderr
	}
	worker, exited, stderr := work()
	runID := gjson.Get(stripeline("pipelines", "run", "kill", "--format", "json"), "id").Int()

	// Wait for committed rows, hold the emulator's answers, and kill.
	ctx := context.Background()
	replica, err := dest.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	deadline := time.After(time.Minute)
	for committed := false; !committed; {
		select {
		case err := <-exited:
			t.Fatalf("the worker exited before the kill: %v\n%s", err, stderr)
		case <-deadline:
			t.Fatalf("no rows committed in a minute:\n%s", stderr)
		case <-time.After(2 * time.Millisecond):
			_, rows, err := replica.(dest.Querier).Query(ctx, "SELECT count(*) FROM charges")
			committed = err == nil && len(rows) == 1 && rows[0][0].(int64) > 0
		}
	}
	g.shut()
	before := emu.Stats().Requests - total
	_ = worker.Process.Signal(syscall.SIGKILL)
	<-exited
	quota.Store(-1 << 40) // disarmed: the resumed run is not held
	g.release()
	t.Logf("killed the worker after %d of ~%d requests", before, total)
	if before >= total {
		t.Fatalf("the run had made all its requests (%d of %d) before the kill", before, total)
	}

	worker, exited, stderr = work()
	svc, err := pipeline.Open(ctx, pipeline.Options{Store: file})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run, err := svc.Wait(wctx, runID)
	if err != nil {
		t.Fatalf("the killed run did not end: %v\n%s", err, stderr)
	}
	if run.Status != pipeline.RunSucceeded || run.Attempt != 2 {
		t.Fatalf("run %d: %s on attempt %d (%s %s)\n%s", run.ID, run.Status, run.Attempt, run.ErrorKind, run.Error, stderr)
	}
	if !strings.Contains(strings.Join(run.Notes, "\n"), "attempt 2 resumes from the last checkpoint") {
		t.Errorf("run notes: %q", run.Notes)
	}
	t.Logf("the second attempt made %d requests; a whole backfill makes %d", run.Requests, total)
	if run.Requests >= total {
		t.Errorf("the second attempt made %d requests, a whole backfill %d: it did not resume", run.Requests, total)
	}
	runs, err := svc.Runs(ctx, pipeline.RunFilter{Pipeline: "kill"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs of the pipeline: %v %+v", err, runs)
	}
	if err := replicacheck.Compare(ctx, replica.(dest.Querier), emu, "", killStreams); err != nil {
		t.Fatal(err)
	}
	_ = worker.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("the worker after SIGTERM: %v\n%s", err, stderr)
	}
}
