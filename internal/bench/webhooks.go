package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
	"github.com/stripeline/stripeline/internal/server"
	"github.com/stripeline/stripeline/internal/stripe"
)

// WebhookConfig configures the webhooks scenario.
type WebhookConfig struct {
	// Rate is the changes made per second (each one event, one delivery).
	Rate float64
	// Duration is how long changes are made.
	Duration time.Duration
	// Dest is the replica ("" a SQLite file in a temporary directory;
	// postgres:// gets a fresh schema).
	Dest string
	// Objects sizes the emulated account.
	Objects int
	Seed    int64
	Log     io.Writer
}

// WebhookReport is the webhooks scenario's outcome.
type WebhookReport struct {
	Dest string  `json:"dest"`
	Rate float64 `json:"rate"`
	// Changes made, deliveries applied (200 with rows durable), and
	// attempts that failed.
	Changes int64 `json:"changes"`
	Applied int64 `json:"applied"`
	Failed  int64 `json:"failed"`
	// Seconds from the first change to the last answer; EventsPerSecond
	// is Applied over it.
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	// Latency of a delivery, from the emulator sending it to the 200 that
	// says its rows are durable, in milliseconds.
	P50Millis float64 `json:"p50_ms"`
	P90Millis float64 `json:"p90_ms"`
	P99Millis float64 `json:"p99_ms"`
	MaxMillis float64 `json:"max_ms"`
	// ReplicaOK: after the last delivery the replica equals the account.
	ReplicaOK bool      `json:"replica_ok"`
	Error     string    `json:"error,omitempty"`
	Machine   Machine   `json:"machine"`
	Finished  time.Time `json:"finished"`
}

const benchKey = "sk_test_benchwebhooks0000"

// RunWebhooks measures webhook-to-durable-row latency and sustained
// events/s: an emulator in this process delivers real signed webhooks of
// the changes made at cfg.Rate to a pipeline's endpoint served as `serve`
// serves it (127.0.0.1), which applies each into the replica before it
// answers; the emulator times every delivery. Then the replica is checked.
func RunWebhooks(ctx context.Context, cfg WebhookConfig) (*WebhookReport, error) {
	if cfg.Objects <= 0 {
		cfg.Objects = 2000
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var mu sync.Mutex
	var took []time.Duration
	var failed int64
	var last time.Time
	emu, err := emulator.New(emulator.Config{Seed: cfg.Seed, Objects: cfg.Objects, ConnectedAccounts: -1, TestClocks: -1,
		Webhooks: emulator.WebhookConfig{OnAttempt: func(status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if status/100 == 2 {
				took = append(took, d)
			} else {
				failed++
			}
			last = time.Now()
		}}})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	eln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	es := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = es.Serve(eln) }()
	defer es.Close()
	emuURL := "http://" + eln.Addr().String()
	tgt, err := openTarget(cfg.Dest, "webhooks")
	if err != nil {
		return nil, err
	}
	defer tgt.cleanup()
	dir, err := os.MkdirTemp("", "stripeline-bench-hooks-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := pipeline.Open(ctx, pipeline.Options{Logger: log, Store: "sqlite://" + filepath.Join(dir, "store.db"), KeyFile: filepath.Join(dir, "store.key"),
		Work: true, PollInterval: 20 * time.Millisecond,
		Getenv: func(string) string { return benchKey },
		ClientOption: func(c *stripe.Config) {
			c.GlobalRPS, c.EndpointRPS = 5000, 5000
		}})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Stop(sctx)
	}()
	streams := []string{"customers"}
	if _, err := svc.Create(ctx, pipeline.Pipeline{Name: "bench", Connection: pipeline.Connection{KeyRef: "env:BENCH", APIBase: emuURL},
		Dest: tgt.url, Streams: streams, Schedule: pipeline.Manual}); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "bench webhooks: first sync of %d objects' customers into %s\n", cfg.Objects, tgt.label)
	run, err := svc.Run(ctx, "bench", pipeline.TriggerManual)
	if err != nil {
		return nil, err
	}
	if run, err = svc.Wait(ctx, run.ID); err != nil || run.Status != pipeline.RunSucceeded {
		return nil, fmt.Errorf("first sync: %v %s", err, run.Error)
	}
	metrics := server.NewMetrics()
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{pipeline}", server.WebhookHandler(svc, metrics, log))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	if _, err := svc.SetupWebhook(ctx, "bench", pipeline.WebhookSetup{URL: "http://" + ln.Addr().String() + "/webhooks/bench"}); err != nil {
		return nil, err
	}
	// Warm the receiver (its applier, connections) with one change.
	if err := emu.Mutate("", "customers", 0, 1, 0); err != nil {
		return nil, err
	}
	if err := emu.WaitWebhooks(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	took, failed = took[:0], 0
	mu.Unlock()

	fmt.Fprintf(cfg.Log, "bench webhooks: %.0f changes/s for %s\n", cfg.Rate, cfg.Duration)
	rep := &WebhookReport{Dest: tgt.label, Rate: cfg.Rate, Machine: ThisMachine()}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now()
	next := start
	for time.Since(start) < cfg.Duration {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := emu.Mutate("", "customers", 0, 1, 0); err != nil {
			return nil, err
		}
		rep.Changes++
		// Open loop: changes keep their schedule however the receiver
		// keeps up.
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := emu.WaitWebhooks(wctx); err != nil {
		return nil, fmt.Errorf("deliveries did not settle: %w", err)
	}
	mu.Lock()
	lat := slices.Clone(took)
	rep.Failed = failed
	end := last
	mu.Unlock()
	slices.Sort(lat)
	rep.Applied = int64(len(lat))
	rep.Seconds = end.Sub(start).Seconds()
	if rep.Seconds > 0 {
		rep.EventsPerSecond = float64(rep.Applied) / rep.Seconds
	}
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	rep.P50Millis, rep.P90Millis, rep.P99Millis = q(0.50), q(0.90), q(0.99)
	if len(lat) > 0 {
		rep.MaxMillis = float64(lat[len(lat)-1].Microseconds()) / 1000
	}
	d, err := dest.Open(ctx, tgt.url)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	if err := replicacheck.Compare(ctx, d.(dest.Querier), emu, "", streams); err != nil {
		rep.Error = err.Error()
		return rep, errors.Join(ErrIncorrect, err)
	}
	rep.ReplicaOK = true
	rep.Finished = time.Now().UTC()
	return rep, nil
}
