// Package engine replicates a Stripe account into a destination: it plans
// jobs from the catalog, backfills created-range slices concurrently under
// the client's pacer with dynamic splitting, applies one /v1/events sweep for
// incremental changes, and checkpoints every committed batch so a killed run
// resumes with nothing lost and nothing duplicated (DESIGN §4).
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Client is what the engine needs of the Stripe client.
type Client interface {
	ListPage(ctx context.Context, path string, q url.Values) (*stripe.Page, error)
}

// Options configure one sync run.
type Options struct {
	Client Client
	Dest   dest.Destination
	// Pipeline names the state and run history; default "default".
	Pipeline string
	// Account is the connected account the client acts on ("" for the
	// platform); it is stamped on every row.
	Account string
	// Streams selects streams by name; empty means every stream.
	Streams []string
	// Fields selects columns per stream; a stream not present keeps all.
	Fields map[string][]string
	// StartDate bounds the backfill of streams with a created filter.
	StartDate time.Time
	// LookbackDays re-reads this many days before a created cursor.
	LookbackDays int
	// WindowDays, when positive, cuts each backfill into slices of this
	// many days from the start; otherwise slices come from dynamic splitting.
	WindowDays int
	// Concurrency is the number of requests kept in flight (default 16).
	Concurrency int
	// PerStream caps in-flight requests of one stream (default Concurrency/2, at least 4).
	PerStream int
	// ReconcileEvery is how often a per-parent child list (one request per
	// parent: customers_payment_methods, …) is re-read in full; between
	// reconciliations it is re-read only for the parents events name.
	// Default a week; negative never.
	ReconcileEvery time.Duration
	// FullRefresh ignores saved state and re-reads everything.
	FullRefresh bool
	// SkipUnreadable turns a stream the key may not read into a warning.
	SkipUnreadable bool
	// BatchRows is the writer's batch size (default 2000); the writer holds
	// at most four batches' worth of rows across all streams.
	BatchRows int
	// LockWait is how long a run waits for the pipeline's run lock while
	// another run holds it (destinations that implement dest.Locker): 0
	// fails at once with a *dest.LockedError naming the holder, a negative
	// value (dest.WaitForever) waits as long as it takes.
	LockWait time.Duration
	// History is the pipeline's change-history option: every row and
	// checkpoint the run changes is logged under the run's id (unless its
	// mode is off) and, once the run succeeded, the log is pruned to its
	// retention.
	History history.Policy
	// Progress receives counts as they change; may be nil.
	Progress Progress
	Logger   *slog.Logger
	// Clock is the run's time source (default WallClock).
	Clock Clock
	// TwoWay names, per stream, the fields the database may change: their
	// values as written are remembered in ColWritten (two-way sync).
	TwoWay map[string][]string
	// Push, when set, writes the database's changes to Stripe before the
	// pull, under the run lock (two-way sync).
	Push Pusher
}

// Progress is told about a run as it goes. Calls come from several goroutines.
type Progress interface {
	Start(stream string)
	Rows(stream string, rows, pages int)
	Done(stream string, err error)
}

// DefaultReconcileEvery is the default of Options.ReconcileEvery.
const DefaultReconcileEvery = 7 * 24 * time.Hour

// StreamResult is one stream's outcome.
type StreamResult struct {
	Stream  string  `json:"stream"`
	Rows    int64   `json:"rows"`
	Pages   int64   `json:"pages"`
	Seconds float64 `json:"seconds"`
	Mode    string  `json:"mode"` // backfill, incremental, full_refresh, events, reconciliation
	// Requests counts the list requests made for the stream by why: backfill,
	// incremental, full_refresh, reconciliation (its own list, or the parent
	// list it is read from), per_parent (a child list read per parent while
	// the parent is paged), refresh (re-read for parents events named) and
	// events (the sweep). Retries the client made are not counted.
	Requests map[string]int64 `json:"requests,omitempty"`
	Error    string           `json:"error,omitempty"`
	Skipped  string           `json:"skipped,omitempty"`
	elapsed  time.Duration    `json:"-"`
}

// TotalRequests sums Requests.
func (s *StreamResult) TotalRequests() int64 {
	var n int64
	for _, v := range s.Requests {
		n += v
	}
	return n
}

// Result is a run's outcome.
type Result struct {
	RunID    string          `json:"run_id"`
	Pipeline string          `json:"pipeline"`
	Status   string          `json:"status"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Streams  []*StreamResult `json:"streams"`
	Events   int             `json:"events_applied"`
	// WebhookEvents counts the events of the sweep's range that the
	// webhook endpoint had applied already (Events are those the sweep
	// applied itself: with webhooks on, the ones it repaired).
	WebhookEvents int      `json:"events_webhook"`
	Notes         []string `json:"notes,omitempty"`
	Requests      int64    `json:"requests"`
	// TwoWay is the push's report (Options.Push), when there was one.
	TwoWay any `json:"two_way,omitempty"`
}

// ErrStreamsFailed is returned (wrapped) when a run could not read every stream.
var ErrStreamsFailed = errors.New("some streams failed")

// Validate checks the options a user can get wrong and returns one sentence
// naming the flag.
func (o *Options) Validate() error {
	for _, name := range o.Streams {
		if _, ok := catalog.Lookup(name); !ok {
			return settingErr("streams", "unknown stream %q (see the catalog: stripeline streams)", name)
		}
	}
	for name := range o.Fields {
		if _, ok := catalog.Lookup(name); !ok {
			return settingErr("streams", "unknown stream %q in the field selection (see the catalog: stripeline streams)", name)
		}
	}
	if o.LookbackDays < 0 {
		return settingErr("lookback_days", "must be 0 or more, got %d", o.LookbackDays)
	}
	if o.WindowDays < 0 {
		return settingErr("window_days", "must be 0 or more, got %d", o.WindowDays)
	}
	if o.ReconcileEvery > 0 && o.ReconcileEvery < time.Hour {
		return settingErr("reconcile_every", "must be at least 1h (or negative for never), got %s", o.ReconcileEvery)
	}
	if err := o.History.Validate(); err != nil {
		return settingErr("history", "%v", err)
	}
	if o.Concurrency < 0 {
		return settingErr("concurrency", "must be 1 or more, got %d", o.Concurrency)
	}
	return o.validateTwoWay()
}

func (o *Options) defaults() {
	if o.Pipeline == "" {
		o.Pipeline = "default"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.PerStream <= 0 {
		o.PerStream = max(4, o.Concurrency/2)
	}
	if o.ReconcileEvery == 0 {
		o.ReconcileEvery = DefaultReconcileEvery
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 2000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = WallClock
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
}

// RangeProgress is optionally implemented by a Progress. A sliced backfill
// (a list with a created filter) reports the share of its created range read
// so far, so a face can show a percentage and an estimate of the time left.
// Calls come from several goroutines; share only grows within a run.
type RangeProgress interface {
	Covered(stream string, share float64)
}

type nopProgress struct{}

func (nopProgress) Start(string)          {}
func (nopProgress) Rows(string, int, int) {}
func (nopProgress) Done(string, error)    {}

// newRunID returns a sortable, unique run id.
func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Sync runs one replication: backfills where there is no state, the events
// sweep and created cursors otherwise.
func Sync(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	r := &runner{opts: opts, tables: map[string]*table{}, log: opts.Logger, fan: make(chan struct{}, opts.Concurrency), fanPath: map[string]chan struct{}{}}
	return r.run(ctx)
}

type runner struct {
	opts   Options
	log    *slog.Logger
	tables map[string]*table
	jobs   []*job
	res    *Result

	resMu   sync.Mutex
	results map[string]*StreamResult
	noID    map[string]bool
	sweeps  map[*table]*tableSweep
	floor   int64 // the earliest stamp this run writes (unix seconds)
	// fan bounds the per-parent requests in flight besides the workers'.
	fan     chan struct{}
	fanMu   sync.Mutex
	fanPath map[string]chan struct{} // per child endpoint
	// refreshes are the child lists re-read for the parents events name,
	// indexed by the object types of their parents and of their children.
	refreshes                 map[string]*refresh
	byParentType, byChildType map[string][]*refresh
	refreshAdds               map[*refresh]bool // changed since last saved
	// pushErr is the push's rejected rows, reported once the pull is done.
	pushErr error
	// refetch names the streams whose events are applied with the object
	// read again (ApplyOptions.Refetch).
	refetch map[string]bool
	// readSec is the events cursor's second, the base of readVersion.
	readSec atomic.Int64
}

// list fetches one page, counting the request against stream and why.
func (r *runner) list(ctx context.Context, stream, why, path string, q url.Values) (*stripe.Page, error) {
	r.update(stream, func(sr *StreamResult) {
		if sr.Requests == nil {
			sr.Requests = map[string]int64{}
		}
		sr.Requests[why]++
	})
	return r.opts.Client.ListPage(ctx, path, q)
}

// update changes one stream's result under the results lock.
func (r *runner) update(stream string, fn func(*StreamResult)) {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	fn(r.result(stream))
}

// result returns a stream's result; the caller holds resMu.
func (r *runner) result(stream string) *StreamResult {
	sr := r.results[stream]
	if sr == nil {
		sr = &StreamResult{Stream: stream}
		r.results[stream] = sr
	}
	return sr
}

func (r *runner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.resMu.Lock()
	r.res.Notes = append(r.res.Notes, msg)
	r.resMu.Unlock()
	r.log.Warn(msg)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	started := r.now()
	r.res = &Result{RunID: newRunID(started), Pipeline: r.opts.Pipeline, Status: "running", Started: started}
	r.results = map[string]*StreamResult{}
	ctx, unlock, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	started = r.res.Started
	// Every write of the run is logged under its id (dest.WithRun).
	ctx = dest.WithRun(ctx, dest.RunContext{ID: r.res.RunID, Pipeline: r.opts.Pipeline, History: r.opts.History.Mode})
	if err := r.opts.Dest.SaveRun(ctx, dest.Run{ID: r.res.RunID, Pipeline: r.opts.Pipeline, Started: started, Status: "running"}); err != nil {
		return nil, fmt.Errorf("record run: %w", err)
	}
	err = lockLost(ctx, r.sync(ctx))
	if err == nil && r.pushErr != nil {
		err = r.pushErr
	}
	r.res.Finished = r.now()
	r.res.Streams = r.sortedResults()
	r.res.Status = "succeeded"
	var failed []string
	for _, s := range r.res.Streams {
		if s.Error != "" {
			failed = append(failed, s.Stream)
		}
	}
	if err == nil && len(failed) > 0 {
		err = fmt.Errorf("%w: %s", ErrStreamsFailed, strings.Join(failed, ", "))
	}
	if err != nil {
		r.res.Status = "failed"
	}
	record := map[string]any{"streams": r.res.Streams, "notes": r.res.Notes, "events_applied": r.res.Events, "events_webhook": r.res.WebhookEvents}
	if r.res.TwoWay != nil {
		record["two_way"] = r.res.TwoWay
	}
	streams, _ := json.Marshal(record)
	run := dest.Run{ID: r.res.RunID, Pipeline: r.opts.Pipeline, Started: started, Finished: r.res.Finished, Status: r.res.Status, Streams: streams}
	if err != nil {
		run.Error = err.Error()
	}
	// The run record must land even when ctx was cancelled mid-run.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := r.opts.Dest.SaveRun(saveCtx, run); serr != nil && err == nil {
		err = fmt.Errorf("record run: %w", serr)
	}
	if err == nil {
		if _, perr := history.Prune(ctx, r.opts.Dest, r.opts.Pipeline, r.opts.History, r.now()); perr != nil {
			r.log.Warn("prune the change history", "pipeline", r.opts.Pipeline, "error", perr)
		}
	}
	return r.res, err
}

func (r *runner) sortedResults() []*StreamResult {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	out := make([]*StreamResult, 0, len(r.results))
	for _, s := range r.results {
		s.Seconds = s.elapsed.Seconds()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// sync plans, migrates, backfills, then sweeps events.
func (r *runner) sync(ctx context.Context) error {
	selected, err := r.selection()
	if err != nil {
		return err
	}
	saved, err := r.opts.Dest.LoadState(ctx, r.opts.Pipeline)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	// Rows carry whole-second stamps; each run writes strictly later stamps
	// than the runs before it (see writeTime), tracked under clockKey.
	var clk runClock
	if err := decodeState(saved[clockKey], &clk); err != nil {
		return err
	}
	r.floor = max(r.res.Started.Unix()+1, clk.Floor+1)
	before := saved
	if r.opts.FullRefresh {
		saved = map[string]json.RawMessage{}
	}
	var first *table
	for _, s := range selected {
		t := newTable(s, r.opts.Fields[s.Name], r.opts.Dest)
		t.setTwoWay(r.opts.TwoWay[s.Name])
		if err := r.opts.Dest.Migrate(ctx, t.shape()); err != nil {
			return fmt.Errorf("create table %s: %w", s.Name, err)
		}
		r.tables[s.Name] = t
		if first == nil {
			first = t
		}
	}
	if err := r.opts.Dest.SaveState(ctx, dest.State{Pipeline: r.opts.Pipeline, Stream: clockKey, Cursor: encodeState(runClock{Floor: r.floor})}); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if r.opts.Push != nil {
		if err := r.push(ctx, before); err != nil {
			if !errors.Is(err, ErrRowsRejected) {
				return err
			}
			r.pushErr = err
		}
	}
	if err := r.plan(ctx, selected, saved); err != nil {
		return err
	}
	if err := r.planRefreshes(saved); err != nil {
		return err
	}
	needEvents := false
	for _, s := range selected {
		if s.Incremental == catalog.IncrementalEvents {
			needEvents = true
		}
	}
	var cursor *eventsCursor
	if needEvents {
		cursor, err = r.prepareEvents(ctx, saved)
		if err != nil {
			return err
		}
	}
	if err := r.backfill(ctx); err != nil {
		return err
	}
	if cursor != nil {
		if err := r.sweep(ctx, cursor); err != nil {
			return err
		}
	}
	return r.refreshParents(ctx)
}

// selection resolves --streams into catalog streams, parents included only
// as sources (they are listed for ids but not written unless selected).
func (r *runner) selection() ([]catalog.Stream, error) {
	var out []catalog.Stream
	if len(r.opts.Streams) == 0 {
		return catalog.Defaults(), nil
	}
	seen := map[string]bool{}
	for _, name := range r.opts.Streams {
		if seen[name] {
			continue
		}
		seen[name] = true
		s, _ := catalog.Lookup(name)
		out = append(out, s)
	}
	return out, nil
}
