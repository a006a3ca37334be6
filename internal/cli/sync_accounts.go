package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/stripe"
)

// syncFleetFlags are sync's flags for several accounts of a platform.
type syncFleetFlags struct {
	all         bool
	accounts    string
	platformRPS float64
	parallel    int
}

func (f *syncFleetFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.all, "all-accounts", false, "sync the platform and every connected account GET /v1/accounts lists, each with its own state, into the same tables (_stripeline_account tells them apart)")
	fl.StringVar(&f.accounts, "accounts", "", "sync these accounts: acct_… ids, platform, or all with -acct_… to leave some out, comma separated")
	fl.Float64Var(&f.platformRPS, "platform-rps", 0, "with --all-accounts or --accounts: requests per second of all accounts together (0: no cap but each account's --max-rps)")
	fl.IntVar(&f.parallel, "parallel-accounts", 4, "with --all-accounts or --accounts: accounts synced at once")
}

func (f *syncFleetFlags) set() bool { return f.all || f.accounts != "" }

// accountOutcome is one account's line of a several-accounts sync.
type accountOutcome struct {
	Account  string         `json:"account"`
	Status   string         `json:"status"` // succeeded, failed, skipped
	Rows     int64          `json:"rows"`
	Requests int64          `json:"requests"`
	Seconds  float64        `json:"seconds"`
	Error    string         `json:"error,omitempty"`
	Result   *engine.Result `json:"result,omitempty"`
}

// runSyncAccounts syncs several accounts of a platform, parallel-accounts
// at a time, each with its own client (its own pacer, --max-rps) under one
// platform cap, its own state key and run lock. One account's failure
// never stops the others; the command fails when any failed.
func (a *App) runSyncAccounts(ctx context.Context, f syncFlags, base engine.Options) error {
	ff := f.fleet
	if a.Account != "" {
		return usagef("--account %s and --all-accounts/--accounts: give --account for one connected account, or --accounts for several", a.Account)
	}
	if ff.parallel < 1 {
		return usagef("--parallel-accounts %d: sync at least 1 account at a time", ff.parallel)
	}
	if ff.platformRPS < 0 {
		return usagef("--platform-rps must be positive, got %v", ff.platformRPS)
	}
	items := []string{ff.accounts}
	if ff.all {
		items = append(items, "all")
	}
	sel, err := fleet.ParseSelection(items...)
	if err != nil {
		return usagef("--accounts: %v", err)
	}
	platform, err := a.Client(WithMaxRPS(f.maxRPS), withEndpointRPS(f.endpointRPS))
	if err != nil {
		return err
	}
	accts, err := fleet.Discover(ctx, platform, sel)
	if err != nil {
		return err
	}
	dst, err := a.openDest(ctx, a.destURL(f.dest))
	if err != nil {
		return err
	}
	defer dst.Close()
	budget := fleet.NewLocal(ff.platformRPS)
	if u, err := url.Parse(a.destURL(f.dest)); err == nil && (u.Scheme == "csv" || u.Scheme == "jsonl" || u.Scheme == "parquet") {
		ff.parallel = 1 // a files directory holds one run lock for all its pipelines
	}
	out := make([]accountOutcome, len(accts))
	sem := make(chan struct{}, ff.parallel)
	var wg sync.WaitGroup
	for i, acct := range accts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = accountOutcome{Account: fleet.Label(acct.ID), Status: "failed", Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			out[i] = a.syncOneAccount(ctx, f, base, acct.ID, dst, budget)
		}()
	}
	wg.Wait()
	return a.reportAccounts(out)
}

func (a *App) syncOneAccount(ctx context.Context, f syncFlags, base engine.Options, account string, dst dest.Destination, budget fleet.Budget) accountOutcome {
	o := accountOutcome{Account: fleet.Label(account)}
	start := time.Now()
	client, err := a.Client(WithMaxRPS(f.maxRPS), withEndpointRPS(f.endpointRPS), func(c *stripe.Config) { c.Account = account })
	if err != nil {
		o.Status, o.Error = "failed", err.Error()
		return o
	}
	opts := base
	opts.Account = account
	// Without --pipeline a connected account's state is the one a
	// `--account acct_… sync` keeps (its id), the platform's "default".
	switch {
	case f.pipeline != "":
		opts.Pipeline = fleet.StateKey(f.pipeline, account)
	case account != fleet.Platform:
		opts.Pipeline = account
	}
	rc := &revokeClient{c: client, b: budget}
	opts.Client, opts.Dest = rc, dst
	opts.Logger = a.Logger().With("account", fleet.Label(account))
	if opts.Concurrency == 0 {
		opts.Concurrency, opts.PerStream = inFlight(client.Rates())
	}
	res, err := engine.Sync(ctx, opts)
	o.Seconds, o.Requests, o.Result = time.Since(start).Seconds(), client.Stats().Requests, res
	if res != nil {
		for _, s := range res.Streams {
			o.Rows += s.Rows
		}
		o.Rows -= int64(res.Events)
	}
	switch {
	case err == nil:
		o.Status = "succeeded"
	case rc.revoked():
		o.Status, o.Error = "skipped", "Stripe refuses requests for the account (403 account_invalid): it disconnected the platform, or the key never had access to it; its rows are kept"
	default:
		o.Status, o.Error = "failed", err.Error()
		if errors.Is(err, engine.ErrStreamsFailed) && res != nil {
			o.Error = failureSentence(res)
		}
		if le := (*dest.LockedError)(nil); errors.As(err, &le) {
			o.Error = lockedSentence(le)
		}
	}
	return o
}

func (a *App) reportAccounts(out []accountOutcome) error {
	var failed []string
	for _, o := range out {
		if o.Status == "failed" {
			failed = append(failed, o.Account+": "+o.Error)
		}
	}
	if a.Format == "json" {
		_ = a.printJSON(out)
	} else {
		tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tSTATUS\tROWS\tREQUESTS\tSECONDS\tNOTE")
		for _, o := range out {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%s\n", o.Account, o.Status, o.Rows, o.Requests, o.Seconds, o.Error)
		}
		tw.Flush()
	}
	if len(failed) > 0 {
		return fmt.Errorf("sync did not complete for %d of %d accounts (the others are synced): %s", len(failed), len(out), strings.Join(failed, "; "))
	}
	return nil
}

// revokeClient paces an account's requests under the platform budget and
// remembers whether Stripe refused the account (403 account_invalid).
type revokeClient struct {
	c  *stripe.Client
	b  fleet.Budget
	mu sync.Mutex
	no bool
}

func (r *revokeClient) ListPage(ctx context.Context, path string, q url.Values) (*stripe.Page, error) {
	if err := r.b.Wait(ctx); err != nil {
		return nil, err
	}
	p, err := r.c.ListPage(ctx, path, q)
	r.keep(err)
	return p, err
}

// Get is the single-object read the engine uses (the account's creation).
func (r *revokeClient) Get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	if err := r.b.Wait(ctx); err != nil {
		return nil, err
	}
	b, err := r.c.Get(ctx, path, q)
	r.keep(err)
	return b, err
}

func (r *revokeClient) keep(err error) {
	if fleet.Revoked(err) {
		r.mu.Lock()
		r.no = true
		r.mu.Unlock()
	}
}

func (r *revokeClient) revoked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.no
}
