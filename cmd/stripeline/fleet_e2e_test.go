package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// fleetStreams are the streams of the fleet test: a few dense ones with a
// child list.
var fleetStreams = []string{"charges", "customers", "invoices", "invoices_lines", "prices", "products"}

// TestFleetOnThreeWorkersSurvivesAKill starts three `stripeline serve
// --worker` processes on one PostgreSQL control store, runs a pipeline of
// every connected account of the emulator's platform into a PostgreSQL
// replica, SIGKILLs the worker of an account job once that job has
// committed rows (while the emulator holds its answers, so the job is
// certainly mid-run), and finds: the run succeeded, the killed job rescued
// by River and finished by another worker, every account's rows equal to
// the emulator's, no row twice, and each account's cursors under its own
// state key.
func TestFleetOnThreeWorkersSurvivesAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	if os.Getenv("STRIPELINE_TEST_POSTGRES") == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the fleet's shared PostgreSQL store is not tested")
	}
	store, replica := pgSchemaURL(t), pgSchemaURL(t)
	emu, err := emulator.New(emulator.Config{Seed: 21, Objects: 500, ConnectedAccounts: 5, ConnectedObjects: 500, TestClocks: -1, Latency: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	srv := httptest.NewServer(g.wrap(emu))
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	env := append(os.Environ(), "STRIPE_API_KEY_FLEET=sk_test_fleet", "STRIPE_API_BASE="+srv.URL, "STRIPELINE_STORE="+store)
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
	stripeline("pipelines", "create", "fleet", "--dest", replica, "--api-key-env", "STRIPE_API_KEY_FLEET", "--accounts", "all",
		"--streams", strings.Join(fleetStreams, ","), "--max-rps", "1000", "--endpoint-rps", "1000", "--concurrency", "4", "--platform-rps", "2000")

	type worker struct {
		cmd    *exec.Cmd
		exited chan error
		stderr *strings.Builder
	}
	workers := map[string]*worker{}
	for range 3 {
		cmd := exec.Command(bin, "serve", "--worker", "--workers", "2", "--rescue-after", "4s", "--grace", "5s")
		cmd.Env, cmd.Dir = env, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w := &worker{cmd: cmd, exited: make(chan error, 1), stderr: &stderr}
		go func() { w.exited <- cmd.Wait() }()
		host, _ := os.Hostname()
		workers[fmt.Sprintf("stripeline-%s-%d", host, cmd.Process.Pid)] = w
	}
	defer func() {
		for _, w := range workers {
			_ = w.cmd.Process.Signal(syscall.SIGKILL)
		}
	}()
	logs := func() string {
		var b strings.Builder
		for id, w := range workers {
			fmt.Fprintf(&b, "--- %s\n%s", id, w.stderr)
		}
		return b.String()
	}
	runID := gjson.Get(stripeline("pipelines", "run", "fleet", "--format", "json"), "id").Int()

	ctx := context.Background()
	svc, err := pipeline.Open(ctx, pipeline.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	d, err := dest.Open(ctx, replica)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	q := d.(dest.Querier)

	// Wait for an account job that has committed rows, hold the
	// emulator's answers, and kill its worker.
	var victim, victimAccount string
	deadline := time.After(2 * time.Minute)
	for victim == "" {
		select {
		case <-deadline:
			t.Fatalf("no account job with committed rows in two minutes\n%s", logs())
		case <-time.After(5 * time.Millisecond):
		}
		g.shut()
		accts, err := svc.Accounts(ctx, "fleet")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range accts {
			if a.State != pipeline.RunRunning || workers[a.Worker] == nil {
				continue
			}
			_, rows, err := q.Query(ctx, fmt.Sprintf("SELECT count(*) FROM charges WHERE _stripeline_account = '%s'", a.Account))
			if err == nil && len(rows) == 1 && fmt.Sprint(rows[0][0]) != "0" {
				victim, victimAccount = a.Worker, a.Account
				break
			}
		}
		if victim == "" {
			g.release()
		}
	}
	w := workers[victim]
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
	g.release()
	t.Logf("killed %s in the middle of account %s", victim, fleet.Label(victimAccount))

	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	run, err := svc.Wait(wctx, runID)
	if err != nil {
		t.Fatalf("the fleet run did not end: %v\n%s", err, logs())
	}
	if run.Status != pipeline.RunSucceeded {
		t.Fatalf("fleet run %d: %s (%s %s)\n%s", run.ID, run.Status, run.ErrorKind, run.Error, logs())
	}
	accts, err := svc.Accounts(ctx, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != len(emu.Accounts()) {
		t.Fatalf("%d accounts recorded, the platform has %d", len(accts), len(emu.Accounts()))
	}
	spread := map[string]bool{}
	for _, a := range accts {
		spread[a.Worker] = true
		if a.State != pipeline.RunSucceeded {
			t.Errorf("account %s: %s %s", a.Label(), a.State, a.Error)
		}
		if a.Account == victimAccount && (a.Attempt < 2 || a.Worker == victim) {
			t.Errorf("the killed account job: attempt %d on %s (killed %s): not rescued elsewhere", a.Attempt, a.Worker, victim)
		}
	}
	t.Logf("account jobs ran on %d workers", len(spread))
	for _, a := range emu.Accounts() {
		if err := replicacheck.Compare(ctx, q, emu, a, fleetStreams); err != nil {
			t.Errorf("account %s: %v", fleet.Label(a), err)
		}
		st, err := d.LoadState(ctx, fleet.StateKey("fleet", a))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"charges", "customers", "invoices"} {
			if gjson.GetBytes(st[s], "phase").Str != "done" {
				t.Errorf("account %s: stream %s state %s under its key", fleet.Label(a), s, st[s])
			}
		}
	}
	for _, s := range fleetStreams {
		_, rows, err := q.Query(ctx, fmt.Sprintf("SELECT count(*) - count(DISTINCT id) FROM %s", s))
		if err != nil || len(rows) != 1 || fmt.Sprint(rows[0][0]) != "0" {
			t.Errorf("%s: duplicated rows %v %v", s, rows, err)
		}
	}
	for id, w := range workers {
		if id == victim {
			continue
		}
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-w.exited; err != nil {
			t.Errorf("worker %s after SIGTERM: %v\n%s", id, err, w.stderr)
		}
	}
}

// TestBenchFleetRunsAndChecks runs the fleet benchmark on a tiny shape: it
// starts its worker processes, measures, and checks every account.
func TestBenchFleetRunsAndChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	if os.Getenv("STRIPELINE_TEST_POSTGRES") == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the fleet benchmark's PostgreSQL store is not tested")
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, "bench", "fleet", "--accounts", "3", "--objects", "150", "--workers", "1,2", "--latency", "1ms",
		"--account-rps", "1000", "--streams", "customers,products,prices", "--format", "json")
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("bench fleet: %v\n%s%s", err, out, stderr)
	}
	reports := gjson.GetBytes(out, "reports").Array()
	if len(reports) != 2 {
		t.Fatalf("reports: %s", out)
	}
	for _, r := range reports {
		if !r.Get("correct").Bool() || r.Get("requests").Int() == 0 || r.Get("incremental_requests").Int() == 0 || r.Get("rows").Int() == 0 {
			t.Errorf("report %s", r.Raw)
		}
	}
	if n := len(reports[1].Get("jobs_per_worker").Array()); n == 0 || n > 2 {
		t.Errorf("two workers ended jobs on %d workers: %s", n, reports[1].Raw)
	}
}
