package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
	"github.com/stripeline/stripeline/internal/stripe"
)

// testStreams keep a run to well under a second.
var testStreams = []string{"customers", "products", "prices"}

type fixture struct {
	svc *pipeline.Service
	emu *emulator.Emulator
	// clientOption is the Stripe client option the service was opened with.
	clientOption func(*stripe.Config)
	base         string
	dir          string
}

func newFixture(t *testing.T, opts pipeline.Options) *fixture {
	t.Helper()
	return newFixtureWith(t, opts, false)
}

// handlerTransport serves requests with an http.Handler in process: inside
// a synctest bubble a real listener's goroutine waits on the network, which
// keeps fake time from moving.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func newFixtureWith(t *testing.T, opts pipeline.Options, inProcess bool) *fixture {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 3, Objects: 300, ConnectedAccounts: -1, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://emulator.invalid"
	if !inProcess {
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		base = srv.URL
	}
	dir := t.TempDir()
	if opts.Store == "" {
		opts.Store = "sqlite://" + filepath.Join(dir, "stripeline.db")
	}
	opts.Getenv = func(name string) string {
		if name == "STRIPE_API_KEY_ACME" {
			return "sk_test_acme123"
		}
		return ""
	}
	given := opts.ClientOption
	opts.ClientOption = func(c *stripe.Config) {
		c.MaxBackoff = time.Millisecond
		if inProcess {
			c.HTTPClient = &http.Client{Transport: handlerTransport{emu}}
		}
		if given != nil {
			given(c)
		}
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	svc, err := pipeline.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if opts.Work || opts.Schedules {
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			svc.Stop(ctx)
		})
	}
	return &fixture{svc: svc, emu: emu, clientOption: opts.ClientOption, base: base, dir: dir}
}

func (f *fixture) pipeline(name string) pipeline.Pipeline {
	return pipeline.Pipeline{
		Name: name, DisplayName: "Acme " + name,
		Connection: pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_ACME", APIBase: f.base},
		Dest:       "sqlite://" + filepath.Join(f.dir, name+".db"),
		Streams:    testStreams,
		Schedule:   pipeline.Manual,
	}
}

func TestRunNowRecordsTheRunAndItsLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true})
	p, err := f.svc.Create(ctx, f.pipeline("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.State != pipeline.StatePending {
		t.Fatalf("new pipeline state %s, want pending", p.Status.State)
	}
	run, err := f.svc.Run(ctx, "acme", pipeline.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s: %s %s", done.Status, done.ErrorKind, done.Error)
	}
	if done.Trigger != pipeline.TriggerManual || done.Rows == 0 || done.Requests == 0 || len(done.Streams) == 0 || done.Finished.IsZero() {
		t.Fatalf("run record incomplete: %+v", done)
	}
	var customers *int64
	for _, s := range done.Streams {
		if s.Stream == "customers" {
			customers = &s.Rows
			if s.TotalRequests() == 0 {
				t.Errorf("customers: no requests recorded")
			}
		}
	}
	if want := int64(len(f.emu.Objects("", "customers"))); customers == nil || *customers != want {
		t.Fatalf("customers rows %v, want %d", customers, want)
	}
	lines, err := f.svc.Logs(ctx, run.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 2 || lines[0].Msg != "run started" || lines[len(lines)-1].Msg != "run succeeded" {
		t.Fatalf("log lines: %+v", lines)
	}
	for i, l := range lines {
		if l.Seq != int64(i+1) || l.RunID != run.ID {
			t.Fatalf("line %d: seq %d run %d", i, l.Seq, l.RunID)
		}
		if b, _ := json.Marshal(l); strings.Contains(string(b), "acme123") {
			t.Fatalf("the key shows in the run's log: %s", b)
		}
	}
	p, err = f.svc.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.State != pipeline.StateActive || p.Status.LastSuccess.IsZero() || p.Status.LastRun != run.ID {
		t.Fatalf("status after a good run: %+v", p.Status)
	}
	d, err := dest.Open(ctx, p.Dest)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := replicacheck.Compare(ctx, d.(dest.Querier), f.emu, "", testStreams); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailurePausesUntilEdited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true})
	p := f.pipeline("bad")
	p.Connection = pipeline.Connection{APIKey: "sk_test_no-such-key", APIBase: f.base}
	created, err := f.svc.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if created.Connection.KeyRef != pipeline.KeyRefStored || strings.Contains(created.Connection.KeyHint, "such") {
		t.Fatalf("stored key shown as %q (%s)", created.Connection.KeyHint, created.Connection.KeyRef)
	}
	run, err := f.svc.Run(ctx, "bad", pipeline.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != pipeline.RunFailed || done.ErrorKind != pipeline.KindAuth || done.Attempt != 1 {
		t.Fatalf("run: status %s kind %s attempt %d: %s", done.Status, done.ErrorKind, done.Attempt, done.Error)
	}
	if strings.Contains(done.Error, "no-such-key") {
		t.Fatalf("the key shows in the run's error: %s", done.Error)
	}
	got, err := f.svc.Get(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.State != pipeline.StatePaused || got.Status.ErrorKind != pipeline.KindAuth {
		t.Fatalf("after an auth failure: %+v", got.Status)
	}
	if _, err := f.svc.Run(ctx, "bad", pipeline.TriggerManual); !errors.Is(err, pipeline.ErrPaused) {
		t.Fatalf("run while paused: %v", err)
	}
	got.Connection = pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_ACME", APIBase: f.base}
	edited, err := f.svc.Update(ctx, *got)
	if err != nil {
		t.Fatal(err)
	}
	if edited.Status.Paused {
		t.Fatalf("still paused after the edit: %+v", edited.Status)
	}
	run, err = f.svc.Run(ctx, "bad", pipeline.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if done, err = f.svc.Wait(ctx, run.ID); err != nil || done.Status != pipeline.RunSucceeded {
		t.Fatalf("run after the edit: %v %+v", err, done)
	}
}

// stop stops a service that was started.
func stop(t *testing.T, svc *pipeline.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// reopen opens another Service on the fixture's store and starts it.
func reopen(t *testing.T, f *fixture, opts pipeline.Options) *pipeline.Service {
	t.Helper()
	opts.Store = f.svc.StoreURL()
	opts.Getenv = func(string) string { return "sk_test_acme123" }
	opts.ClientOption = f.clientOption
	svc, err := pipeline.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, svc) })
	return svc
}

func TestApplyConfigReportsDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{})
	cfg := config.Default()
	yaml := "api_base: " + f.base + "\npipelines:\n  - name: fromfile\n    dest: sqlite://" + filepath.Join(f.dir, "file.db") +
		"\n    api_key: env:STRIPE_API_KEY_ACME\n    streams: [customers]\n    schedule: 15m\n"
	if err := config.Parse([]byte(yaml), cfg); err != nil {
		t.Fatal(err)
	}
	drift, err := f.svc.ApplyConfig(ctx, cfg)
	if err != nil || len(drift) != 0 {
		t.Fatalf("first apply: %v %q", err, drift)
	}
	p, err := f.svc.Get(ctx, "fromfile")
	if err != nil || p.Source != "config" || p.Schedule.String() != "every 15m" || p.Connection.APIBase != f.base {
		t.Fatalf("applied: %v %+v", err, p)
	}
	// Someone edits the store; the next start puts the file's settings back
	// and says what had drifted.
	p.Schedule = pipeline.MustSchedule("every 2h")
	if _, err := f.svc.Update(ctx, *p); err != nil {
		t.Fatal(err)
	}
	if drift, err = f.svc.ApplyConfig(ctx, cfg); err != nil || len(drift) != 1 || !strings.Contains(drift[0], `schedule (store every 2h, file every 15m)`) {
		t.Fatalf("drift: %v %q", err, drift)
	}
	if p, _ = f.svc.Get(ctx, "fromfile"); p.Schedule.String() != "every 15m" {
		t.Fatalf("after apply: %s", p.Schedule)
	}
	if drift, err = f.svc.ApplyConfig(ctx, cfg); err != nil || len(drift) != 0 {
		t.Fatalf("apply again: %v %q", err, drift)
	}
	cfg.Pipelines = nil
	if drift, err = f.svc.ApplyConfig(ctx, cfg); err != nil || len(drift) != 1 || !strings.Contains(drift[0], "no longer declares it") {
		t.Fatalf("undeclared: %v %q", err, drift)
	}
	bad := config.Default()
	bad.Pipelines = []config.Pipeline{{Name: "x", Dest: "sqlite://x.db", Schedule: "every 5s"}}
	var ce *config.ConfigError
	if _, err := f.svc.ApplyConfig(ctx, bad); !errors.As(err, &ce) || ce.Field != "pipelines[0].schedule" {
		t.Fatalf("bad schedule: %v", err)
	}
}

// flaky drops the connection of the first n requests, then serves h.
type flaky struct {
	mu sync.Mutex
	n  int
	h  http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	drop := f.n > 0
	f.n--
	f.mu.Unlock()
	if !drop {
		f.h.ServeHTTP(w, r)
		return
	}
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// quickRetry retries a failed run at once.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

func TestTransientFailureIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true, RetryPolicy: quickRetry{}})
	// The client gives up on a base that never answered after a few
	// retries: the first attempt fails with a network error.
	srv := httptest.NewServer(&flaky{n: 20, h: f.emu})
	defer srv.Close()
	p := f.pipeline("flaky")
	p.Connection.APIBase = srv.URL
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.Run(ctx, "flaky", pipeline.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != pipeline.RunSucceeded || done.Attempt < 2 {
		t.Fatalf("run: %s after %d attempts (%s %s)", done.Status, done.Attempt, done.ErrorKind, done.Error)
	}
	notes := strings.Join(done.Notes, "\n")
	if !strings.Contains(notes, "attempt 2 resumes from the last checkpoint after attempt 1 ended") || !strings.Contains(notes, "network") {
		t.Fatalf("notes: %s", notes)
	}
}

// TestStoreBesideTheReplica keeps the control store in the replica's own
// file (the default): the replica lists only its streams' tables.
func TestStoreBesideTheReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, pipeline.Options{Work: true})
	p := f.pipeline("beside")
	p.Dest = "sqlite://" + filepath.Join(f.dir, "stripeline.db")
	if _, err := f.svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.Run(ctx, "beside", pipeline.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := f.svc.Wait(ctx, run.ID); err != nil || done.Status != pipeline.RunSucceeded {
		t.Fatalf("run: %v %+v", err, done)
	}
	d, err := dest.Open(ctx, p.Dest)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tables, err := d.(dest.Reader).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"customers", "prices", "products"}; !slices.Equal(tables, want) {
		t.Fatalf("replica tables %v, want %v", tables, want)
	}
}
