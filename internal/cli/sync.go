package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all" // every destination scheme
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// syncMemoryLimit is the Go heap's soft limit during a sync.
const syncMemoryLimit = 150 << 20

type syncFlags struct {
	dest           string
	streams        []string
	startDate      string
	lookbackDays   int
	windowDays     int
	fullRefresh    bool
	maxRPS         float64
	endpointRPS    float64
	concurrency    int
	skipUnreadable bool
	pipeline       string
	reconcileEvery time.Duration
	wait           waitFlag
	fleet          syncFleetFlags   // sync_accounts.go
	twoWay         syncTwoWayFlags  // sync_twoway.go
	history        syncHistoryFlags // sync_history.go
}

func newSyncCmd(a *App) *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Replicate the account into a destination (full, then incremental)",
		Long: `sync copies every catalog stream (or --streams) into the destination.

The first run backfills; later runs apply one sweep of /v1/events for streams
that have events and a created cursor (minus --lookback-days) for the others.
A killed run resumes from its last committed batch.`,
		Example: `  stripeline sync --dest sqlite://stripe.db
  stripeline sync --dest postgres://localhost/db?schema=stripe --streams customers,invoices,invoices_lines
  stripeline sync --start-date 2024-01-01 --max-rps 50
  stripeline sync --wait=10m   # if a run of the pipeline is going on, wait up to 10 minutes for it`,
		Args: func(cmd *cobra.Command, args []string) error {
			// --wait takes an optional value, so pflag reads `--wait 5m`
			// as --wait alone followed by an argument 5m.
			if len(args) == 1 && cmd.Flags().Changed("wait") && f.wait.d == dest.WaitForever {
				if err := f.wait.Set(args[0]); err != nil {
					return usagef("--wait: %v", err)
				}
				return nil
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Memory stays flat by design (bounded queues and batches); a soft
			// limit keeps the garbage collector from letting the heap double
			// past it. GOMEMLIMIT overrides it.
			if a.getenv("GOMEMLIMIT") == "" && a.env.SetMemoryLimit != nil {
				a.env.SetMemoryLimit(syncMemoryLimit)
			}
			return a.runSync(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dest, "dest", "", "destination URL (default: config dest, else sqlite://stripeline.db)")
	fl.StringSliceVar(&f.streams, "streams", nil, `streams to sync, comma separated (default: all; see "stripeline streams")`)
	fl.StringVar(&f.startDate, "start-date", "", "only backfill objects created on or after this date (YYYY-MM-DD or RFC 3339)")
	fl.IntVar(&f.lookbackDays, "lookback-days", 0, "re-read this many days before the created cursor of streams without events")
	fl.IntVar(&f.windowDays, "window-days", 0, "initial backfill slice size in days (default: dynamic splitting only)")
	fl.BoolVar(&f.fullRefresh, "full-refresh", false, "ignore saved state and re-read everything")
	fl.Float64Var(&f.maxRPS, "max-rps", 0, "requests per second for the whole account (default 20 for test keys, 80 for live)")
	fl.Float64Var(&f.endpointRPS, "endpoint-rps", 0, "requests per second per endpoint (default 20)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "requests kept in flight (default: max-rps × 0.4 s, 8 to 64)")
	fl.BoolVar(&f.skipUnreadable, "skip-unreadable", false, "warn instead of failing on streams the key may not read")
	fl.DurationVar(&f.reconcileEvery, "reconcile-every", engine.DefaultReconcileEvery, "re-read per-parent child lists (customers_payment_methods, …) in full this often; between times only for the parents events name (negative: never)")
	fl.StringVar(&f.pipeline, "pipeline", "", "pipeline name for state and run history (default: the account, or \"default\")")
	fl.Var(&f.wait, "wait", "if another run of the pipeline holds the destination, wait this long for it (--wait alone: as long as it takes) instead of exiting 1")
	fl.Lookup("wait").NoOptDefVal = "forever"
	f.fleet.register(fl)
	f.twoWay.register(fl)
	f.history.register(fl)
	return cmd
}

// waitFlag is --wait[=DURATION]: alone ("forever") it waits as long as it
// takes; unset it does not wait.
type waitFlag struct{ d time.Duration }

func (w *waitFlag) String() string {
	switch {
	case w.d < 0:
		return "forever"
	case w.d == 0:
		return ""
	}
	return w.d.String()
}

func (w *waitFlag) Set(s string) error {
	if s == "forever" {
		w.d = dest.WaitForever
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration: use e.g. --wait=5m, or --wait alone to wait as long as it takes", s)
	}
	w.d = d
	return nil
}

func (w *waitFlag) Type() string { return "duration" }

// parseDate accepts YYYY-MM-DD or RFC 3339.
func parseDate(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("%s %q is not a date: use YYYY-MM-DD or RFC 3339, e.g. 2024-01-31", flag, s)
}

func (a *App) runSync(ctx context.Context, f syncFlags) error {
	start, err := parseDate("--start-date", f.startDate)
	if err != nil {
		return err
	}
	if f.maxRPS < 0 {
		return usagef("--max-rps must be positive, got %v", f.maxRPS)
	}
	if f.endpointRPS < 0 {
		return usagef("--endpoint-rps must be positive, got %v", f.endpointRPS)
	}
	opts := engine.Options{
		Pipeline: f.pipeline, Account: a.Account, Streams: f.streams, StartDate: start,
		LookbackDays: f.lookbackDays, WindowDays: f.windowDays, Concurrency: f.concurrency,
		FullRefresh: f.fullRefresh, SkipUnreadable: f.skipUnreadable, Logger: a.Logger(),
		ReconcileEvery: f.reconcileEvery, LockWait: f.wait.d,
	}
	if opts.History, err = f.history.policy(); err != nil {
		return err
	}
	if opts.Pipeline == "" {
		opts.Pipeline = "default"
		if a.Account != "" {
			opts.Pipeline = a.Account
		}
	}
	if fields := a.cfg.Streams; len(fields) > 0 {
		opts.Fields = map[string][]string{}
		for name, sc := range fields {
			if len(sc.Fields) > 0 {
				opts.Fields[name] = sc.Fields
			}
		}
		if len(opts.Streams) == 0 {
			for name := range fields {
				opts.Streams = append(opts.Streams, name)
			}
		}
	}
	tw, err := a.twoWayConfig(f.twoWay)
	if err != nil {
		return err
	}
	opts.TwoWay = tw.EngineFields()
	if err := opts.Validate(); err != nil {
		return usage(err)
	}
	if f.fleet.set() && tw.Enabled() {
		return usagef("--two-way works on one account at a time: leave out --all-accounts/--accounts, or use --account")
	}
	if f.fleet.set() {
		return a.runSyncAccounts(ctx, f, opts)
	}
	client, err := a.Client(WithMaxRPS(f.maxRPS), withEndpointRPS(f.endpointRPS))
	if err != nil {
		return err
	}
	opts.Client = client
	if opts.Concurrency == 0 {
		opts.Concurrency, opts.PerStream = inFlight(client.Rates())
	}
	dstURL := a.destURL(f.dest)
	dst, err := a.openDest(ctx, dstURL)
	if err != nil {
		return err
	}
	defer dst.Close()
	opts.Dest = dst
	if err := a.setupTwoWay(tw, &opts, client, dst); err != nil {
		return err
	}
	res, err := a.syncWithProgress(ctx, opts)
	if res != nil {
		a.printSyncResult(res, client.Stats().Requests)
	}
	if err != nil {
		if errors.Is(err, engine.ErrStreamsFailed) {
			return fmt.Errorf("%s", failureSentence(res))
		}
		if le := (*dest.LockedError)(nil); errors.As(err, &le) {
			return errors.New(lockedSentence(le))
		}
		return err
	}
	return nil
}

// lockedSentence says who holds the run lock and the fix in flag words.
func lockedSentence(le *dest.LockedError) string {
	if le.Waited > 0 {
		return fmt.Sprintf("%s; gave up after waiting %s; wait longer with --wait=DURATION or --wait alone", le.Situation(), le.Waited.Round(time.Millisecond))
	}
	return le.Situation() + "; wait for it to finish or pass --wait"
}

// destURL picks the flag, then the config, then the default.
func (a *App) destURL(flag string) string {
	switch {
	case flag != "":
		return flag
	case a.cfg.Dest != "":
		return a.cfg.Dest
	default:
		return "sqlite://stripeline.db"
	}
}

func (a *App) syncWithProgress(ctx context.Context, opts engine.Options) (*engine.Result, error) {
	p := a.newProgress()
	opts.Progress = p
	res, err := engine.Sync(ctx, opts)
	p.Wait()
	return res, err
}

func failureSentence(res *engine.Result) string {
	var parts []string
	for _, s := range res.Streams {
		if s.Error != "" {
			parts = append(parts, s.Stream+": "+s.Error)
		}
	}
	return fmt.Sprintf("sync did not complete; %d stream(s) failed: %s", len(parts), strings.Join(parts, "; "))
}

func (a *App) printSyncResult(res *engine.Result, requests int64) {
	res.Requests = requests
	if a.Format == "json" {
		_ = a.printJSON(res)
		return
	}
	writeSyncTable(a.Stdout, res)
}

func writeSyncTable(w io.Writer, res *engine.Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMODE\tROWS\tPAGES\tREQUESTS\tSECONDS\tNOTE")
	var rows, pages, quiet int64
	empty := 0
	for _, s := range res.Streams {
		if s.Rows == 0 && s.Error == "" && s.Skipped == "" && s.TotalRequests() <= 1 {
			empty++
			pages += s.Pages
			quiet += s.TotalRequests()
			continue
		}
		note := s.Error
		if note == "" {
			note = s.Skipped
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.1f\t%s\n", s.Stream, s.Mode, s.Rows, s.Pages, requestsCell(s.Requests), s.Seconds, note)
		rows += s.Rows
		pages += s.Pages
	}
	tw.Flush()
	if empty > 0 {
		fmt.Fprintf(w, "%d more streams had no rows to write (%d requests)\n", empty, quiet)
	}
	elapsed := res.Finished.Sub(res.Started).Seconds()
	fmt.Fprintf(w, "run %s %s: %d rows, %d pages, %d requests, %d events applied in %.1fs", res.RunID, res.Status, rows, pages, res.Requests, res.Events, elapsed)
	if elapsed > 0 {
		fmt.Fprintf(w, " (%.0f rows/s)", float64(rows)/elapsed)
	}
	fmt.Fprintln(w)
	for _, n := range res.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	writeTwoWay(w, res.TwoWay)
}

// requestsCell renders a stream's requests: the total, and why when more
// than one reason cost requests, e.g. "312 (backfill 12, per_parent 300)".
func requestsCell(by map[string]int64) string {
	var n int64
	whys := make([]string, 0, len(by))
	for why, c := range by {
		n += c
		whys = append(whys, why)
	}
	sort.Strings(whys)
	if len(whys) <= 1 {
		if len(whys) == 1 {
			return fmt.Sprintf("%d %s", n, whys[0])
		}
		return "0"
	}
	parts := make([]string, len(whys))
	for i, why := range whys {
		parts[i] = fmt.Sprintf("%s %d", why, by[why])
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

// withEndpointRPS sets the per-endpoint request rate when rps > 0.
func withEndpointRPS(rps float64) ClientOption {
	return func(c *stripe.Config) {
		if rps > 0 {
			c.EndpointRPS = rps
		}
	}
}

// typicalLatency is a list request's usual round trip to Stripe.
const typicalLatency = 0.4 // seconds

// inFlight sizes the request pipe from the pacing rates: about rate ×
// latency requests in flight use the rate (Little's law); more would only
// queue in the pacer, where they delay lists that must be paged one page
// after another.
func inFlight(global, endpoint float64) (concurrency, perStream int) {
	concurrency = min(max(int(math.Ceil(global*typicalLatency)), 8), 64)
	perStream = min(max(int(math.Ceil(endpoint*typicalLatency))+1, 4), concurrency)
	return concurrency, perStream
}
