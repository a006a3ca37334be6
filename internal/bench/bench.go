// Package bench runs stripeline's benchmark scenarios (DESIGN §6) against
// the emulator: a backfill at Stripe's rate limits compared with its floor,
// pipeline throughput at zero latency, the cost of an incremental sync, and
// the peak memory of the syncing process. Every scenario checks afterwards
// that the replica equals the emulated account and fails otherwise.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/enginetest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Scenario names, in the order they run.
const (
	Backfill    = "backfill"
	Throughput  = "throughput"
	Memory      = "memory"
	Incremental = "incremental"
)

// Scenarios lists every scenario in run order (incremental last: it
// changes the account).
var Scenarios = []string{Backfill, Throughput, Memory, Incremental}

// DefaultStreams are the streams the scenarios sync: the usual replica of
// a billing account. Children listed one request per parent
// (customers_tax_ids, setup_intents_attempts, …) are left out: they
// multiply requests by the number of parents (docs/BENCHMARKS.md).
var DefaultStreams = []string{
	"customers", "products", "prices", "coupons", "promotion_codes", "tax_rates",
	"subscriptions", "subscriptions_items", "invoices", "invoices_lines", "invoiceitems",
	"payment_intents", "charges", "refunds", "balance_transactions", "payouts", "disputes",
	"credit_notes", "checkout_sessions", "setup_intents", "payment_methods", "events",
}

// Config sets up a run. Zero values take the defaults noted.
type Config struct {
	// Objects is the approximate size of the emulated account (default 1,000,000).
	Objects int
	// Seed seeds the account (default 42).
	Seed int64
	// Streams selects the streams (default DefaultStreams).
	Streams []string
	// APIBase points at an emulator already running (`stripeline emulator`);
	// empty starts one in this process. A remote emulator's Objects setting
	// is its own.
	APIBase string
	// Dest is the destination URL (default a SQLite file in a temporary
	// directory). A postgres:// URL gets a fresh schema per scenario.
	Dest string
	// Postgres, when set, adds a PostgreSQL run to the throughput scenario.
	Postgres string
	// Latency, RPS and EndpointRPS are the emulator's settings for the
	// backfill scenario (default 300ms, 100/s, 25/s).
	Latency          time.Duration
	RPS, EndpointRPS float64
	// ClientRPS and ClientEndpointRPS pace the client in the backfill
	// scenario (default RPS and EndpointRPS).
	ClientRPS, ClientEndpointRPS float64
	// Concurrency and PerStream override the engine's in-flight limits;
	// zero derives them from the rates and latency (backfill) or uses
	// the engine's defaults.
	Concurrency, PerStream int
	// Changes is the number of changes of the incremental scenario (default 10,000).
	Changes int
	// Command builds the child process of the memory scenario from the
	// stripeline arguments; default os.Executable() with those arguments.
	Command func(args ...string) *exec.Cmd
	// Log receives progress lines (default discarded).
	Log io.Writer
}

func (c *Config) defaults() {
	if c.Objects <= 0 {
		c.Objects = 1_000_000
	}
	if c.Seed == 0 {
		c.Seed = 42
	}
	if len(c.Streams) == 0 {
		c.Streams = DefaultStreams
	}
	if c.Latency == 0 {
		c.Latency = 300 * time.Millisecond
	}
	if c.RPS == 0 {
		c.RPS = 100
	}
	if c.EndpointRPS == 0 {
		c.EndpointRPS = 25
	}
	if c.ClientRPS == 0 {
		c.ClientRPS = c.RPS
	}
	if c.ClientEndpointRPS == 0 {
		c.ClientEndpointRPS = c.EndpointRPS
	}
	if c.Changes <= 0 {
		c.Changes = 10_000
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Command == nil {
		c.Command = func(args ...string) *exec.Cmd {
			exe, err := os.Executable()
			if err != nil {
				exe = os.Args[0]
			}
			return exec.Command(exe, args...)
		}
	}
}

// Report is one scenario's measured outcome.
type Report struct {
	Scenario string `json:"scenario"`
	Dest     string `json:"dest"`
	// Objects is the number of objects of the selected streams in the
	// account (events excluded); Rows the rows the sync wrote.
	Objects       int64   `json:"objects"`
	Rows          int64   `json:"rows"`
	Seconds       float64 `json:"seconds"`
	Requests      int64   `json:"requests"`
	RateLimited   int64   `json:"rate_limited"`
	ObjectsPerSec float64 `json:"objects_per_second"`
	// Floor and FloorRatio: backfill only.
	Floor      *Floor  `json:"floor,omitempty"`
	FloorRatio float64 `json:"floor_ratio,omitempty"`
	// PeakRSSMB is the syncing process's peak resident memory: memory only.
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	// Changes and EventsApplied: incremental only.
	Changes       int `json:"changes,omitempty"`
	EventsApplied int `json:"events_applied,omitempty"`
	// InFlightPeak is the most requests the client had on the wire.
	InFlightPeak int64 `json:"in_flight_peak,omitempty"`
	Concurrency  int   `json:"concurrency,omitempty"`
	PerStream    int   `json:"per_stream,omitempty"`
	// Correct is true when the replica equals the account afterwards.
	Correct bool   `json:"correct"`
	Error   string `json:"error,omitempty"`
}

// Machine describes where the figures were measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	Date      string `json:"date"`
}

// ThisMachine reads the CPU count and model.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// ErrIncorrect is returned (wrapped) when a replica differs from the account.
var ErrIncorrect = errors.New("replica differs from the account")

// Run runs the named scenarios (all when empty) and returns their reports.
// It returns an error when a scenario failed or its replica was wrong; the
// reports gathered so far come with it.
func Run(ctx context.Context, cfg Config, scenarios ...string) ([]Report, error) {
	cfg.defaults()
	if len(scenarios) == 0 {
		scenarios = Scenarios
	}
	want := map[string]bool{}
	for _, s := range scenarios {
		ok := false
		for _, k := range Scenarios {
			ok = ok || s == k
		}
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q: use %s", s, strings.Join(Scenarios, ", "))
		}
		want[s] = true
	}
	var up upstream
	if cfg.APIBase != "" {
		up = newRemote(strings.TrimSuffix(cfg.APIBase, "/"))
	} else {
		fmt.Fprintf(cfg.Log, "generating an account of ~%d objects (seed %d)\n", cfg.Objects, cfg.Seed)
		l, err := startLocal(emulator.Config{Seed: cfg.Seed, Objects: cfg.Objects, ConnectedAccounts: -1})
		if err != nil {
			return nil, fmt.Errorf("start the emulator: %w", err)
		}
		up = l
	}
	defer up.Close()

	var reports []Report
	var failed []string
	for _, name := range Scenarios {
		if !want[name] {
			continue
		}
		fmt.Fprintf(cfg.Log, "scenario %s\n", name)
		var rs []Report
		var err error
		switch name {
		case Backfill:
			rs, err = runBackfill(ctx, cfg, up)
		case Throughput:
			rs, err = runThroughput(ctx, cfg, up)
		case Memory:
			rs, err = runMemory(ctx, cfg, up)
		case Incremental:
			rs, err = runIncremental(ctx, cfg, up)
		}
		for _, r := range rs {
			fmt.Fprintf(cfg.Log, "  %s → %s: %d rows in %.1fs, %d requests, correct=%v %s\n", r.Scenario, r.Dest, r.Rows, r.Seconds, r.Requests, r.Correct, r.Error)
			if !r.Correct && r.Error == "" {
				r.Error = ErrIncorrect.Error()
			}
		}
		reports = append(reports, rs...)
		if err != nil {
			if ctx.Err() != nil {
				return reports, err
			}
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(failed) > 0 {
		return reports, errors.New(strings.Join(failed, "; "))
	}
	return reports, nil
}

// target is one destination of one scenario.
type target struct {
	url     string
	label   string
	cleanup func()
}

// openTarget prepares a fresh destination: a SQLite file in a temporary
// directory, or a new schema in the PostgreSQL database of pg.
func openTarget(base, scenario string) (*target, error) {
	if base == "" {
		dir, err := os.MkdirTemp("", "stripeline-bench-")
		if err != nil {
			return nil, err
		}
		return &target{url: "sqlite://" + filepath.Join(dir, scenario+".db"), label: "sqlite", cleanup: func() { os.RemoveAll(dir) }}, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("--dest %s: %w", dest.Redact(base), err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		schema := fmt.Sprintf("stripeline_bench_%s_%d", scenario, time.Now().UnixNano()%1e9)
		q := u.Query()
		q.Set("schema", schema)
		u.RawQuery = q.Encode()
		conn := base
		return &target{url: u.String(), label: "postgres", cleanup: func() { dropSchema(conn, schema) }}, nil
	default:
		return &target{url: base, label: u.Scheme, cleanup: func() {}}, nil
	}
}

// dropSchema removes a benchmark schema; failures only leave it behind.
func dropSchema(conn, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(conn)
	if err != nil {
		return
	}
	q := u.Query()
	q.Del("schema")
	u.RawQuery = q.Encode()
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return
	}
	defer c.Close(ctx)
	_, _ = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
}

// syncRun is one in-process sync and what it cost.
type syncRun struct {
	res      *engine.Result
	seconds  float64
	requests int64
	limited  int64
	client   stripe.Stats
}

// syncOnce runs engine.Sync in this process against up into dst.
func syncOnce(ctx context.Context, up upstream, dst dest.Destination, streams []string, rps, eprs float64, conc, per int) (*syncRun, error) {
	client, err := stripe.New(stripe.Config{Key: "sk_test_bench", APIBase: up.URL(), GlobalRPS: rps, EndpointRPS: eprs})
	if err != nil {
		return nil, err
	}
	before, err := up.Stats()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := engine.Sync(ctx, engine.Options{
		Client: client, Dest: dst, Streams: streams, Concurrency: conc, PerStream: per,
		Logger: slog.New(slog.DiscardHandler),
	})
	run := &syncRun{res: res, seconds: time.Since(start).Seconds(), client: client.Stats()}
	after, serr := up.Stats()
	if serr == nil {
		run.requests = after.Requests - before.Requests
		run.limited = after.RateLimited - before.RateLimited
	}
	if err != nil {
		return run, fmt.Errorf("sync: %w", err)
	}
	return run, nil
}

// rows sums the rows a run wrote.
func rows(res *engine.Result) int64 {
	var n int64
	if res == nil {
		return 0
	}
	for _, s := range res.Streams {
		n += s.Rows
	}
	return n
}

// compared returns the selected streams the replica is checked on: the
// event log is history, not account state, so events are left out.
func compared(streams []string) []string {
	var out []string
	for _, s := range streams {
		if s != "events" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// objects counts the account's objects of the compared streams.
func objects(up upstream, streams []string) int64 {
	counts := up.Counts("")
	var n int64
	for _, s := range compared(streams) {
		n += int64(counts[s])
	}
	return n
}

// check compares the replica at dstURL with the account.
func check(ctx context.Context, up upstream, dst dest.Destination, streams []string) error {
	q, ok := dst.(dest.Querier)
	if !ok {
		return fmt.Errorf("destination cannot be queried; the replica was not checked")
	}
	if err := enginetest.Compare(ctx, q, up, "", compared(streams)); err != nil {
		return fmt.Errorf("%w: %w", ErrIncorrect, err)
	}
	return nil
}

// syncAndCheck opens a fresh target, syncs into it, checks it, and
// returns the report; the scenario fills in its own figures.
func syncAndCheck(ctx context.Context, cfg Config, up upstream, scenario, base string, rps, eprs float64, conc, per int) (Report, *syncRun, error) {
	r := Report{Scenario: scenario}
	t, err := openTarget(base, scenario)
	if err != nil {
		return r, nil, err
	}
	defer t.cleanup()
	r.Dest = t.label
	dst, err := dest.Open(ctx, t.url)
	if err != nil {
		return r, nil, err
	}
	defer dst.Close()
	run, err := syncOnce(ctx, up, dst, cfg.Streams, rps, eprs, conc, per)
	if run != nil {
		fill(&r, run, up, cfg.Streams)
	}
	if err != nil {
		r.Error = err.Error()
		return r, run, err
	}
	if err := check(ctx, up, dst, cfg.Streams); err != nil {
		r.Error = err.Error()
		return r, run, err
	}
	r.Correct = true
	return r, run, nil
}

func fill(r *Report, run *syncRun, up upstream, streams []string) {
	r.Objects = objects(up, streams)
	r.Rows = rows(run.res)
	r.Seconds = run.seconds
	r.Requests = run.requests
	r.RateLimited = run.limited
	r.InFlightPeak = run.client.InFlightPeak
	if run.seconds > 0 {
		r.ObjectsPerSec = float64(r.Rows) / run.seconds
	}
}

// backfillLimits derives the engine's in-flight limits from the rates and
// latency: rate × latency requests keep the pipe full (Little's law), with
// a margin for the time a response spends being processed.
func backfillLimits(cfg Config) (conc, per int) {
	lat := cfg.Latency.Seconds() + 0.02
	conc = cfg.Concurrency
	if conc == 0 {
		// Little's law: rate × latency requests in flight use the whole
		// rate; more only queue in the pacer (measured at 200k objects: 42
		// in flight → 1.23× the floor, 30 → 1.07×). The engine keeps a fifth
		// of them free for lists that must be paged page after page.
		conc = int(math.Ceil(cfg.ClientRPS * lat))
	}
	per = cfg.PerStream
	if per == 0 {
		per = int(math.Ceil(cfg.ClientEndpointRPS * lat * 1.5))
	}
	return max(conc, 1), max(per, 1)
}

func runBackfill(ctx context.Context, cfg Config, up upstream) ([]Report, error) {
	if err := up.SetFaults(cfg.Latency, cfg.RPS, cfg.EndpointRPS); err != nil {
		return nil, err
	}
	defer up.SetFaults(0, 0, 0)
	floor := computeFloor(up, cfg.Streams, cfg.RPS, cfg.EndpointRPS, cfg.Latency)
	conc, per := backfillLimits(cfg)
	r, _, err := syncAndCheck(ctx, cfg, up, Backfill, cfg.Dest, cfg.ClientRPS, cfg.ClientEndpointRPS, conc, per)
	r.Floor = &floor
	r.Concurrency, r.PerStream = conc, per
	if floor.Seconds > 0 {
		r.FloorRatio = r.Seconds / floor.Seconds
	}
	return []Report{r}, err
}

// unlimited is the client rate of the zero-latency scenarios.
const unlimited = 1e6

func runThroughput(ctx context.Context, cfg Config, up upstream) ([]Report, error) {
	if err := up.SetFaults(0, 0, 0); err != nil {
		return nil, err
	}
	bases := []string{cfg.Dest}
	if !strings.HasPrefix(cfg.Dest, "postgres") && cfg.Postgres != "" {
		bases = append(bases, cfg.Postgres)
	}
	var out []Report
	var errs []error
	for _, base := range bases {
		r, _, err := syncAndCheck(ctx, cfg, up, Throughput, base, unlimited, unlimited, cfg.Concurrency, cfg.PerStream)
		out = append(out, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Dest, err))
		}
	}
	return out, errors.Join(errs...)
}

// changeStreams are the streams the incremental scenario changes, with
// their share of the changes. Invoice items and payment intents are only
// created (and deleted where they can be): Stripe emits no event when
// their metadata is updated (the spec has no invoiceitem.updated nor
// payment_intent.updated), so no events sweep can see such an update.
var changeStreams = []struct {
	stream    string
	share     float64
	noUpdates bool
}{
	{"customers", 0.2, false}, {"subscriptions", 0.1, false}, {"invoices", 0.15, false}, {"charges", 0.15, false},
	{"payment_intents", 0.15, true}, {"products", 0.05, false}, {"prices", 0.05, false}, {"coupons", 0.05, false},
	{"invoiceitems", 0.1, true},
}

// mutate applies n changes spread across streams: per stream a third
// creates, half updates, the rest deletes (only where deletes exist).
func mutate(up upstream, streams []string, n int) (int, error) {
	selected := map[string]bool{}
	for _, s := range streams {
		selected[s] = true
	}
	total := 0
	for _, c := range changeStreams {
		if !selected[c.stream] {
			continue
		}
		k := int(float64(n) * c.share)
		creates, updates := k/3, k/2
		if c.noUpdates {
			creates, updates = k/2, 0
		}
		deletes := k - creates - updates
		if err := up.Mutate("", c.stream, creates, updates, deletes); err != nil {
			return total, fmt.Errorf("mutate %s: %w", c.stream, err)
		}
		total += k
	}
	return total, nil
}

func runIncremental(ctx context.Context, cfg Config, up upstream) ([]Report, error) {
	if err := up.SetFaults(0, 0, 0); err != nil {
		return nil, err
	}
	r := Report{Scenario: Incremental}
	t, err := openTarget(cfg.Dest, Incremental)
	if err != nil {
		return nil, err
	}
	defer t.cleanup()
	r.Dest = t.label
	dst, err := dest.Open(ctx, t.url)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	fail := func(err error) ([]Report, error) {
		r.Error = err.Error()
		return []Report{r}, err
	}
	if _, err := syncOnce(ctx, up, dst, cfg.Streams, unlimited, unlimited, cfg.Concurrency, cfg.PerStream); err != nil {
		return fail(fmt.Errorf("initial backfill: %w", err))
	}
	changes, err := mutate(up, cfg.Streams, cfg.Changes)
	if err != nil {
		return fail(err)
	}
	r.Changes = changes
	run, err := syncOnce(ctx, up, dst, cfg.Streams, unlimited, unlimited, cfg.Concurrency, cfg.PerStream)
	if run != nil {
		fill(&r, run, up, cfg.Streams)
		if run.res != nil {
			r.EventsApplied = run.res.Events
		}
	}
	if err != nil {
		return fail(err)
	}
	if err := check(ctx, up, dst, cfg.Streams); err != nil {
		return fail(err)
	}
	r.Correct = true
	return []Report{r}, nil
}
