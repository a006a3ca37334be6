// Package bench runs stripeline's benchmark scenarios (DESIGN §6) against
// the emulator: a backfill at Stripe's rate limits compared with its floor
// (of a few dense streams, and of ~70 small streams with many test clocks),
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

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/replicacheck"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Scenario names, in the order they run.
const (
	Backfill = "backfill"
	// SmallStreams is a backfill of every stream of an account of the
	// emulator's small-streams shape with many test clocks.
	SmallStreams = "small-streams"
	Throughput   = "throughput"
	Memory       = "memory"
	Incremental  = "incremental"
)

// Scenarios lists every scenario in run order (incremental last: it
// changes the account).
var Scenarios = []string{Backfill, SmallStreams, Throughput, Memory, Incremental}

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
	// AllStreams syncs every stream (the engine's default selection, no
	// Streams) in the backfill, throughput, memory and incremental
	// scenarios; the replica is checked on every stream the emulator fills.
	AllStreams bool
	// SmallObjects and TestClocks size the small-streams scenario's account
	// (default 1,500 objects and 210 test clocks; negative for none). It
	// has its own emulator unless APIBase is set.
	SmallObjects, TestClocks int
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
	// Changes is the number of changes of the incremental scenario
	// (default 10,000), spread over creates, updates and deletes of
	// customers, their tax ids, subscriptions and their items, invoices,
	// payments and the product catalog.
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
	if c.SmallObjects <= 0 {
		c.SmallObjects = 1500
	}
	if c.TestClocks == 0 {
		c.TestClocks = 210
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
	// Floor and FloorRatio: the backfill scenarios only.
	Floor      *Floor  `json:"floor,omitempty"`
	FloorRatio float64 `json:"floor_ratio,omitempty"`
	// PeakRSSMB is the syncing process's peak resident memory: memory only.
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	// Changes and EventsApplied: incremental only.
	Changes       int `json:"changes,omitempty"`
	EventsApplied int `json:"events_applied,omitempty"`
	// InFlightPeak is the most requests the client had on the wire;
	// InFlightMean the mean, sampled every 50 ms.
	InFlightPeak int64   `json:"in_flight_peak,omitempty"`
	InFlightMean float64 `json:"in_flight_mean,omitempty"`
	// PerSecond is the requests the client sent in each second of the sync;
	// EndpointSeconds the emulator's answers per second of the endpoints
	// with at least 2 % of the requests.
	PerSecond       []int64            `json:"requests_per_second,omitempty"`
	EndpointSeconds map[string][]int64 `json:"endpoint_seconds,omitempty"`
	// Concurrency and PerStream are the engine's in-flight limits of a
	// backfill at the rate limits.
	Concurrency int `json:"concurrency,omitempty"`
	PerStream   int `json:"per_stream,omitempty"`
	// Streams is how many streams the replica was checked on.
	Streams int `json:"streams,omitempty"`
	// ByEndpoint is the requests the emulator answered during the sync,
	// per endpoint as Stripe's per-endpoint limit groups them.
	ByEndpoint map[string]int64 `json:"by_endpoint,omitempty"`
	// ByStream is the requests per stream and why (backfill, events,
	// per_parent, …) as the engine's result reports them, when it does.
	ByStream map[string]map[string]int64 `json:"by_stream,omitempty"`
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
	// The main account is generated once, for the first scenario that needs it.
	var up upstream
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	account := func() (upstream, error) {
		if up != nil {
			return up, nil
		}
		if cfg.APIBase != "" {
			up = newRemote(strings.TrimSuffix(cfg.APIBase, "/"))
			return up, nil
		}
		fmt.Fprintf(cfg.Log, "generating an account of ~%d objects (seed %d)\n", cfg.Objects, cfg.Seed)
		l, err := startLocal(emulator.Config{Seed: cfg.Seed, Objects: cfg.Objects, ConnectedAccounts: -1})
		if err != nil {
			return nil, fmt.Errorf("start the emulator: %w", err)
		}
		up = l
		return up, nil
	}

	var reports []Report
	var failed []string
	for _, name := range Scenarios {
		if !want[name] {
			continue
		}
		fmt.Fprintf(cfg.Log, "scenario %s\n", name)
		var rs []Report
		var err error
		if name == SmallStreams {
			rs, err = runSmallStreams(ctx, cfg, account)
		} else if up, aerr := account(); aerr != nil {
			return reports, aerr
		} else {
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
	// byEndpoint is the emulator's count of the sync's requests per endpoint.
	byEndpoint map[string]int64
	// inFlightMean and perSecond come from sampling the client,
	// endpointSeconds from sampling the emulator.
	inFlightMean    float64
	perSecond       []int64
	endpointSeconds map[string][]int64
}

// sampler samples a client's requests on the wire every 50 ms, and each
// second counts the requests it sent and the emulator's answers per
// endpoint, until stop.
type sampler struct {
	stop chan struct{}
	done chan struct{}

	samples, inFlight int64
	perSecond         []int64
	endpoints         []map[string]int64 // the emulator's counts at each second
}

func startSampler(c *stripe.Client, up upstream) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	snapshot := func() {
		if st, err := up.Stats(); err == nil {
			s.endpoints = append(s.endpoints, st.ByEndpoint)
		}
	}
	snapshot()
	go func() {
		defer close(s.done)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		var last int64
		for i := 1; ; i++ {
			select {
			case <-s.stop:
				st := c.Stats()
				s.perSecond = append(s.perSecond, st.Requests-last)
				snapshot()
				return
			case <-tk.C:
			}
			st := c.Stats()
			s.samples++
			s.inFlight += st.InFlight
			if i%20 == 0 {
				s.perSecond = append(s.perSecond, st.Requests-last)
				last = st.Requests
				snapshot()
			}
		}
	}()
	return s
}

// finish stops sampling and returns the mean in flight, the per-second
// counts and the per-second counts of the busier endpoints.
func (s *sampler) finish() (float64, []int64, map[string][]int64) {
	close(s.stop)
	<-s.done
	var mean float64
	if s.samples > 0 {
		mean = float64(s.inFlight) / float64(s.samples)
	}
	var by map[string][]int64
	if n := len(s.endpoints); n > 1 {
		total := endpointDiff(s.endpoints[0], s.endpoints[n-1])
		var sum int64
		for _, v := range total {
			sum += v
		}
		by = map[string][]int64{}
		for i := 1; i < n; i++ {
			for k, v := range endpointDiff(s.endpoints[i-1], s.endpoints[i]) {
				if total[k]*50 < sum {
					continue
				}
				if by[k] == nil {
					by[k] = make([]int64, n-1)
				}
				by[k][i-1] = v
			}
		}
	}
	return mean, s.perSecond, by
}

// syncStreams is the selection a sync is given: nil (every stream, the
// engine's default) with AllStreams.
func (c *Config) syncStreams() []string {
	if c.AllStreams {
		return nil
	}
	return c.Streams
}

// selection is what a sync of c reads, for the floor and the replica
// check: every stream the engine can list with AllStreams (duplicate child
// lists left out), else Streams.
func (c *Config) selection() []string {
	if c.AllStreams {
		return everyStream()
	}
	return c.Streams
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
	smp := startSampler(client, up)
	res, err := engine.Sync(ctx, engine.Options{
		Client: client, Dest: dst, Streams: streams, Concurrency: conc, PerStream: per,
		Logger: slog.New(slog.DiscardHandler),
	})
	run := &syncRun{res: res, seconds: time.Since(start).Seconds(), client: client.Stats()}
	run.inFlightMean, run.perSecond, run.endpointSeconds = smp.finish()
	after, serr := up.Stats()
	if serr == nil {
		run.requests = after.Requests - before.Requests
		run.limited = after.RateLimited - before.RateLimited
		run.byEndpoint = endpointDiff(before.ByEndpoint, after.ByEndpoint)
	}
	if err != nil {
		return run, fmt.Errorf("sync: %w", err)
	}
	return run, nil
}

// endpointDiff is the requests per endpoint between two emulator counts,
// keyed as Stripe's per-endpoint limit groups them (stripe.EndpointKey).
func endpointDiff(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if n := v - before[k]; n > 0 {
			method, path, _ := strings.Cut(k, " ")
			out[stripe.EndpointKey(method, path)] += n
		}
	}
	return out
}

// requestsByStream is the requests per stream and why the engine reports.
func requestsByStream(res *engine.Result) map[string]map[string]int64 {
	if res == nil {
		return nil
	}
	out := map[string]map[string]int64{}
	for _, s := range res.Streams {
		if len(s.Requests) > 0 {
			out[s.Stream] = s.Requests
		}
	}
	return out
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

// compared returns the selected streams the replica is checked on: those
// a sync can list, without the event log (history, not account state).
func compared(streams []string) []string {
	var out []string
	for _, name := range streams {
		if s, ok := catalog.Lookup(name); ok && readable(s) && name != "events" {
			out = append(out, name)
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
	if err := replicacheck.Compare(ctx, q, up, "", compared(streams)); err != nil {
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
	run, err := syncOnce(ctx, up, dst, cfg.syncStreams(), rps, eprs, conc, per)
	if run != nil {
		fill(&r, run, up, cfg.selection())
	}
	if err != nil {
		r.Error = err.Error()
		return r, run, err
	}
	if err := check(ctx, up, dst, cfg.selection()); err != nil {
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
	r.InFlightMean, r.PerSecond, r.EndpointSeconds = run.inFlightMean, run.perSecond, run.endpointSeconds
	r.Streams = len(compared(streams))
	r.ByEndpoint = run.byEndpoint
	r.ByStream = requestsByStream(run.res)
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

// backfillAtLimits syncs cfg's selection from up at the configured
// latency and rate limits and compares the time with the floor.
func backfillAtLimits(ctx context.Context, cfg Config, up upstream, scenario string) ([]Report, error) {
	if err := up.SetFaults(cfg.Latency, cfg.RPS, cfg.EndpointRPS); err != nil {
		return nil, err
	}
	defer up.SetFaults(0, 0, 0)
	floor := computeFloor(up, cfg.selection(), cfg.RPS, cfg.EndpointRPS, cfg.Latency)
	conc, per := backfillLimits(cfg)
	r, _, err := syncAndCheck(ctx, cfg, up, scenario, cfg.Dest, cfg.ClientRPS, cfg.ClientEndpointRPS, conc, per)
	r.Floor = &floor
	r.Concurrency, r.PerStream = conc, per
	if floor.Seconds > 0 {
		r.FloorRatio = r.Seconds / floor.Seconds
	}
	return []Report{r}, err
}

func runBackfill(ctx context.Context, cfg Config, up upstream) ([]Report, error) {
	return backfillAtLimits(ctx, cfg, up, Backfill)
}

// runSmallStreams backfills every stream of a small-streams account with
// cfg.TestClocks test clocks (its own emulator, unless the bench was
// pointed at one with APIBase: then that one, whatever its shape).
func runSmallStreams(ctx context.Context, cfg Config, account func() (upstream, error)) ([]Report, error) {
	var up upstream
	if cfg.APIBase != "" {
		var err error
		if up, err = account(); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintf(cfg.Log, "generating a small-streams account of ~%d objects and %d test clocks (seed %d)\n", cfg.SmallObjects, max(cfg.TestClocks, 0), cfg.Seed)
		l, err := startLocal(emulator.Config{Seed: cfg.Seed, Objects: cfg.SmallObjects, TestClocks: cfg.TestClocks,
			Shape: emulator.ShapeSmallStreams, ConnectedAccounts: -1})
		if err != nil {
			return nil, fmt.Errorf("start the emulator: %w", err)
		}
		defer l.Close()
		up = l
	}
	cfg.AllStreams = true
	return backfillAtLimits(ctx, cfg, up, SmallStreams)
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

// change is a stream the incremental scenario changes: its share of the
// changes and which kinds it gets.
type change struct {
	stream                    string
	share                     float64
	creates, updates, deletes bool
}

// changePlan is what the incremental scenario changes. Invoice items and
// payment intents are not updated: Stripe emits no event when their
// metadata is updated (the spec has no invoiceitem.updated nor
// payment_intent.updated), so no events sweep can see such an update.
// Tax ids (a child listed per customer) have no metadata to update;
// subscription items (embedded in their subscription, no events of their
// own) are only updated, which Stripe announces as the subscription's
// update. Children change only when their stream is selected.
var changePlan = []change{
	{"customers", 0.2, true, true, true},
	{"customers_tax_ids", 0.05, true, false, true},
	{"subscriptions", 0.1, true, true, true},
	{"subscriptions_items", 0.05, false, true, false},
	{"invoices", 0.15, true, true, true},
	{"charges", 0.15, true, true, false},
	{"payment_intents", 0.15, true, false, false},
	{"products", 0.05, true, true, true},
	{"prices", 0.05, true, true, false},
	{"coupons", 0.05, true, true, true},
	{"invoiceitems", 0.1, true, false, true},
}

// split divides k changes of a stream: a quarter deletes, then half of the
// rest updates, the others creates (for the kinds the stream gets).
func (c change) split(k int) (creates, updates, deletes int) {
	if c.deletes && (c.creates || c.updates) {
		deletes = k / 4
	} else if c.deletes {
		deletes = k
	}
	rest := k - deletes
	switch {
	case c.updates && c.creates:
		updates = (rest + 1) / 2
		creates = rest - updates
	case c.updates:
		updates = rest
	default:
		creates = rest
	}
	return creates, updates, deletes
}

// allocate spreads n changes over the plan's selected streams in
// proportion to their shares, largest remainders first, so they add up to n.
func allocate(plan []change, n int) []int {
	var total float64
	for _, c := range plan {
		total += c.share
	}
	out := make([]int, len(plan))
	rem := make([]float64, len(plan))
	given := 0
	for i, c := range plan {
		x := float64(n) * c.share / total
		out[i] = int(x)
		rem[i] = x - float64(out[i])
		given += out[i]
	}
	order := make([]int, len(plan))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for _, i := range order[:n-given] {
		out[i]++
	}
	return out
}

// mutate applies n changes spread across the selected streams of the plan.
func mutate(up upstream, streams []string, n int) (int, error) {
	selected := map[string]bool{}
	for _, s := range streams {
		selected[s] = true
	}
	var plan []change
	for _, c := range changePlan {
		if selected[c.stream] {
			plan = append(plan, c)
		}
	}
	if len(plan) == 0 {
		return 0, errors.New("none of the selected streams is one the incremental scenario changes")
	}
	total := 0
	for i, k := range allocate(plan, n) {
		creates, updates, deletes := plan[i].split(k)
		if err := up.Mutate("", plan[i].stream, creates, updates, deletes); err != nil {
			return total, fmt.Errorf("mutate %s: %w", plan[i].stream, err)
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
	if _, err := syncOnce(ctx, up, dst, cfg.syncStreams(), unlimited, unlimited, cfg.Concurrency, cfg.PerStream); err != nil {
		return fail(fmt.Errorf("initial backfill: %w", err))
	}
	changes, err := mutate(up, cfg.selection(), cfg.Changes)
	if err != nil {
		return fail(err)
	}
	r.Changes = changes
	run, err := syncOnce(ctx, up, dst, cfg.syncStreams(), unlimited, unlimited, cfg.Concurrency, cfg.PerStream)
	if run != nil {
		fill(&r, run, up, cfg.selection())
		if run.res != nil {
			r.EventsApplied = run.res.Events
		}
	}
	if err != nil {
		return fail(err)
	}
	if err := check(ctx, up, dst, cfg.selection()); err != nil {
		return fail(err)
	}
	r.Correct = true
	return []Report{r}, nil
}
