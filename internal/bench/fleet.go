package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
)

// Fleet is the scenario of a platform's connected accounts synced by one
// fleet pipeline on 1, 2, 4, … worker processes (`stripeline serve
// --worker`) sharing a PostgreSQL control store.
const Fleet = "fleet"

// FleetConfig sets up the fleet scenario. Zero values take the defaults
// noted.
type FleetConfig struct {
	// Accounts is the number of accounts, the platform included (default 200).
	Accounts int
	// Objects is the approximate size of each account (default 2,000).
	Objects int
	Seed    int64
	// Latency is the emulator's per-request latency (default 300ms).
	Latency time.Duration
	// AccountRPS is the emulator's rate limit of each account (default 25,
	// Stripe's test-mode limit); ClientRPS each account's pacer (default
	// 80% of it); PlatformRPS the fleet's platform-wide cap (0: none).
	AccountRPS, ClientRPS, PlatformRPS float64
	// Workers are the worker process counts measured (default 1, 2, 4).
	Workers []int
	// Slots is how many account jobs one worker process works at once
	// (serve --workers; default 4).
	Slots int
	// Concurrency is each account job's requests in flight (default 8).
	Concurrency int
	// Streams selects the streams (default DefaultStreams).
	Streams []string
	// Store is a PostgreSQL URL: every run gets a fresh schema for its
	// control store and another for its replica (required).
	Store string
	// Command builds a worker process from stripeline arguments; default
	// os.Executable() with them.
	Command func(args ...string) *exec.Cmd
	// Log receives progress lines (default discarded).
	Log io.Writer
}

// FleetReport is one measured worker count.
type FleetReport struct {
	Workers  int     `json:"workers"`
	Slots    int     `json:"slots_per_worker"`
	Accounts int     `json:"accounts"`
	Objects  int     `json:"objects"`
	Rows     int64   `json:"rows"`
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	// RateLimited counts the emulator's 429s (account or endpoint limits).
	RateLimited    int64   `json:"rate_limited"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// JobsPerWorker counts the account jobs each worker process ended.
	JobsPerWorker []int `json:"jobs_per_worker"`
	// IncrementalSeconds and IncrementalRequests are a second run of the
	// fleet right after, nothing changed: the cost of staying fresh.
	IncrementalSeconds  float64 `json:"incremental_seconds"`
	IncrementalRequests int64   `json:"incremental_requests"`
	Correct             bool    `json:"correct"`
	Error               string  `json:"error,omitempty"`
}

func (c *FleetConfig) defaults() {
	if c.Accounts <= 0 {
		c.Accounts = 200
	}
	if c.Objects <= 0 {
		c.Objects = 2000
	}
	if c.Seed == 0 {
		c.Seed = 42
	}
	if c.Latency == 0 {
		c.Latency = 300 * time.Millisecond
	}
	if c.AccountRPS == 0 {
		c.AccountRPS = 25
	}
	if c.ClientRPS == 0 {
		c.ClientRPS = c.AccountRPS * 0.8
	}
	if len(c.Workers) == 0 {
		c.Workers = []int{1, 2, 4}
	}
	if c.Slots <= 0 {
		c.Slots = 4
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if len(c.Streams) == 0 {
		c.Streams = DefaultStreams
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Command == nil {
		exe, err := os.Executable()
		c.Command = func(args ...string) *exec.Cmd {
			if err != nil {
				exe = "stripeline"
			}
			return exec.Command(exe, args...)
		}
	}
}

// RunFleet generates the accounts once, then for each worker count syncs
// them all into a fresh replica and checks every account's rows.
func RunFleet(ctx context.Context, cfg FleetConfig) ([]FleetReport, error) {
	cfg.defaults()
	if cfg.Store == "" {
		return nil, errors.New("the fleet scenario needs a PostgreSQL store: --store postgres://… (or STRIPELINE_TEST_POSTGRES)")
	}
	fmt.Fprintf(cfg.Log, "fleet: generating %d accounts of ~%d objects\n", cfg.Accounts, cfg.Objects)
	emu, err := emulator.New(emulator.Config{Seed: cfg.Seed, Objects: cfg.Objects, ConnectedAccounts: max(cfg.Accounts-1, -1), ConnectedObjects: cfg.Objects,
		TestClocks: -1, Latency: cfg.Latency, AccountRPS: cfg.AccountRPS})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	var out []FleetReport
	for _, w := range cfg.Workers {
		r := runFleetOnce(ctx, cfg, emu, base, w)
		fmt.Fprintf(cfg.Log, "fleet: %d workers: %.1fs, %d requests, correct %v %s\n", w, r.Seconds, r.Requests, r.Correct, r.Error)
		out = append(out, r)
		if ctx.Err() != nil {
			break
		}
	}
	for _, r := range out {
		if !r.Correct {
			return out, fmt.Errorf("fleet with %d workers: %s", r.Workers, r.Error)
		}
	}
	return out, nil
}

func runFleetOnce(ctx context.Context, cfg FleetConfig, emu *emulator.Emulator, base string, workers int) FleetReport {
	r := FleetReport{Workers: workers, Slots: cfg.Slots, Accounts: cfg.Accounts, Objects: cfg.Objects}
	fail := func(err error) FleetReport { r.Error = err.Error(); return r }
	store, err := openTarget(cfg.Store, fmt.Sprintf("fleet_store_%d", workers))
	if err != nil {
		return fail(err)
	}
	defer store.cleanup()
	replica, err := openTarget(cfg.Store, fmt.Sprintf("fleet_replica_%d", workers))
	if err != nil {
		return fail(err)
	}
	defer replica.cleanup()
	svc, err := pipeline.Open(ctx, pipeline.Options{Store: store.url})
	if err != nil {
		return fail(err)
	}
	defer svc.Close()
	sel, _ := fleet.ParseSelection("all")
	p := pipeline.Pipeline{Name: "bench_fleet", Dest: replica.url, Streams: cfg.Streams, Schedule: pipeline.Manual,
		MaxRPS: cfg.ClientRPS, EndpointRPS: cfg.ClientRPS, Concurrency: cfg.Concurrency,
		Connection: pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_BENCH", APIBase: base, Accounts: pipeline.Accounts{Select: sel, PlatformRPS: cfg.PlatformRPS}}}
	if _, err := svc.Create(ctx, p); err != nil {
		return fail(err)
	}
	var procs []*exec.Cmd
	exited := make(chan error, workers)
	for range workers {
		cmd := cfg.Command("serve", "--worker", "--store", store.url, "--workers", strconv.Itoa(cfg.Slots), "--grace", "10s", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "STRIPE_API_KEY_BENCH=sk_test_benchfleet")
		cmd.Stderr = cfg.Log
		if err := cmd.Start(); err != nil {
			return fail(fmt.Errorf("start a worker: %w", err))
		}
		procs = append(procs, cmd)
		go func() { exited <- cmd.Wait() }()
	}
	defer func() {
		for _, c := range procs {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for range procs {
			<-exited
		}
	}()
	before := emu.Stats()
	start := time.Now()
	run, err := svc.Run(ctx, "bench_fleet", pipeline.TriggerManual)
	if err != nil {
		return fail(err)
	}
	done, err := svc.Wait(ctx, run.ID)
	r.Seconds = time.Since(start).Seconds()
	if err != nil {
		return fail(err)
	}
	after := emu.Stats()
	r.Requests, r.RateLimited, r.Rows = after.Requests-before.Requests, after.RateLimited-before.RateLimited, done.Rows
	if r.Seconds > 0 {
		r.RequestsPerSec = float64(r.Requests) / r.Seconds
	}
	if done.Status != pipeline.RunSucceeded {
		return fail(fmt.Errorf("the fleet run %s: %s", done.Status, done.Error))
	}
	before = emu.Stats()
	start = time.Now()
	if run, err = svc.Run(ctx, "bench_fleet", pipeline.TriggerManual); err != nil {
		return fail(err)
	}
	if done, err = svc.Wait(ctx, run.ID); err != nil {
		return fail(err)
	}
	r.IncrementalSeconds, r.IncrementalRequests = time.Since(start).Seconds(), emu.Stats().Requests-before.Requests
	if done.Status != pipeline.RunSucceeded {
		return fail(fmt.Errorf("the incremental fleet run %s: %s", done.Status, done.Error))
	}
	accts, err := svc.Accounts(ctx, "bench_fleet")
	if err != nil {
		return fail(err)
	}
	per := map[string]int{}
	for _, a := range accts {
		per[a.Worker]++
	}
	for _, n := range per {
		r.JobsPerWorker = append(r.JobsPerWorker, n)
	}
	d, err := dest.Open(ctx, replica.url)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	var problems []string
	for _, a := range emu.Accounts() {
		if err := replicacheck.Compare(ctx, d.(dest.Querier), emu, a, checkable(emu, a, cfg.Streams)); err != nil {
			problems = append(problems, fmt.Sprintf("account %s: %v", fleet.Label(a), err))
			if len(problems) == 3 {
				break
			}
		}
	}
	if len(problems) > 0 {
		return fail(errors.New(strings.Join(problems, "\n")))
	}
	r.Correct = true
	return r
}

// checkable are the selected streams the emulator fills in the account
// (events are a log the account forgets after 30 days).
func checkable(emu *emulator.Emulator, account string, streams []string) []string {
	counts := emu.Counts(account)
	var out []string
	for _, s := range streams {
		if s != "events" && counts[s] > 0 {
			out = append(out, s)
		}
	}
	return out
}
