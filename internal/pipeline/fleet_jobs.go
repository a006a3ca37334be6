package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/stripe"
)

// FleetQueue is the River queue of the accounts' jobs, apart from the
// pipelines' runs (whose fleet runs wait for their accounts), so accounts
// never wait behind the runs that wait for them.
const FleetQueue = "stripeline_fleet"

// Priorities of an account's job (River's 1 is first): incremental runs
// are small and go before backfills, so a big backfill of new accounts
// never starves the fleet's freshness.
const (
	priorityIncremental = 1
	priorityBackfill    = 3
)

// AccountArgs is the River job of one account of a fleet run: one job per
// (pipeline, account, phase), unique by pipeline and account while queued,
// running or waiting for a retry, so an account is never synced twice at
// once, whichever run asks for it.
type AccountArgs struct {
	Pipeline string `json:"pipeline" river:"unique"`
	Account  string `json:"account" river:"unique"`
	// Run is the pipeline run that asked for the sync.
	Run   int64  `json:"run"`
	Phase string `json:"phase"`
}

// Kind is the River job kind.
func (AccountArgs) Kind() string { return "stripeline_account_sync" }

// InsertOpts puts account jobs on FleetQueue, unique per account.
func (a AccountArgs) InsertOpts() river.InsertOpts {
	p := priorityIncremental
	if a.Phase == PhaseBackfill {
		p = priorityBackfill
	}
	return river.InsertOpts{Queue: FleetQueue, Priority: p, UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled},
	}}
}

// accountWorker works AccountArgs jobs.
type accountWorker struct {
	river.WorkerDefaults[AccountArgs]
	s *Service
}

// Timeout is Options.RescueAfter, as for runs: a dead worker's account job
// is rescued that long after its attempt started, and a longer attempt
// stops at its checkpoint and goes on in the next.
func (w *accountWorker) Timeout(*river.Job[AccountArgs]) time.Duration { return w.s.opts.RescueAfter }

// Work syncs one account.
func (w *accountWorker) Work(ctx context.Context, job *river.Job[AccountArgs]) error {
	return w.s.workAccount(ctx, job.JobRow, job.Args)
}

// WorkerID is this process's name among the store's River clients: what
// AccountStatus.Worker says of the jobs it works.
func (s *Service) WorkerID() string { return s.opts.ID }

// Accounts lists the accounts of a fleet pipeline with their standing and
// their last job (state, worker, lag, errors).
func (s *Service) Accounts(ctx context.Context, name string) ([]*AccountStatus, error) {
	if _, err := s.st.pipeline(ctx, name); err != nil {
		return nil, err
	}
	out, err := s.st.fleetAccounts(ctx, name, "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, a := range out {
		a.LagSeconds = -1
		if !a.LastSuccess.IsZero() {
			a.LagSeconds = now.Sub(a.LastSuccess).Seconds()
		}
	}
	return out, nil
}

// workFleet is one attempt of a fleet pipeline's run: discover the
// accounts, mark those gone, enqueue one job per account (or find the one
// enqueued by an earlier attempt), wait for them all and record the run.
func (s *Service) workFleet(ctx, save context.Context, job *rivertype.JobRow, run *Run, rec *record, logger *slog.Logger) error {
	p := &rec.p
	name := p.Name
	fail := func(err error, seen []error) error {
		run.Finished = s.now()
		kind, retry := Classify(err, seen)
		run.ErrorKind, run.Error = kind, err.Error()
		if kind.PausesSchedule() {
			reason := fmt.Sprintf("paused: the last run failed with a %s error", kind)
			if perr := s.st.setPaused(save, name, true, reason, s.now()); perr != nil {
				logger.Error("pause the pipeline", "error", perr)
			}
		}
		if retry && job.Attempt < job.MaxAttempts {
			run.Status = RunRetrying
			logger.Warn("run failed; it is retried", "error_kind", string(kind), "error", err.Error())
			if serr := s.saveRun(save, run); serr != nil {
				return serr
			}
			return err
		}
		run.Status = RunFailed
		logger.Error("run failed", "error_kind", string(kind), "error", err.Error())
		if serr := s.saveRun(save, run); serr != nil {
			return serr
		}
		return river.JobCancel(err)
	}
	client, err := s.fleetClient(rec, fleet.Platform, logger)
	if err != nil {
		return fail(err, nil)
	}
	found, err := fleet.Discover(ctx, client, p.Connection.Accounts.Select)
	if err != nil {
		return fail(err, []error{err})
	}
	known, err := s.st.fleetAccounts(ctx, name, "")
	if err != nil {
		return err
	}
	byID := map[string]*AccountStatus{}
	for _, a := range known {
		byID[a.Account] = a
	}
	listed := map[string]bool{}
	for _, a := range found {
		listed[a.ID] = true
	}
	// With all, an account GET /v1/accounts no longer lists has left the
	// platform: marked, skipped, its rows kept.
	if p.Connection.Accounts.Select.All {
		for _, a := range known {
			if !listed[a.Account] && a.Standing == StandingActive && a.Account != fleet.Platform && !excluded(p, a.Account) {
				s.markDeauthorized(save, rec, a.Account, "GET /v1/accounts no longer lists it", logger)
				run.Notes = append(run.Notes, fmt.Sprintf("account %s is no longer connected (deauthorized): skipped from now on, its rows kept", a.Account))
			}
		}
	}
	type pending struct {
		account, phase string
		job            int64
	}
	var jobs []pending
	for _, a := range found {
		if k := byID[a.ID]; k != nil && k.Standing == StandingDeauthorized {
			if !p.Connection.Accounts.Select.All || !listed[a.ID] {
				run.Notes = append(run.Notes, fmt.Sprintf("account %s skipped: deauthorized since %s", fleet.Label(a.ID), k.StandingSince.Format(time.RFC3339)))
				continue
			}
			// Listed again: it connected the platform anew.
			if err := s.st.setStanding(save, name, a.ID, StandingActive, s.now()); err != nil {
				return err
			}
		}
		if err := s.st.ensureFleetAccount(save, name, a, s.now()); err != nil {
			return err
		}
		k := byID[a.ID]
		phase := PhaseIncremental
		if k == nil || k.LastSuccess.IsZero() {
			phase = PhaseBackfill
		}
		// A later attempt of this run (its worker died) finds the jobs the
		// first one enqueued.
		if k != nil && k.Run == run.ID && k.Job != 0 {
			jobs = append(jobs, pending{a.ID, k.Phase, k.Job})
			continue
		}
		res, err := s.river.Insert(ctx, AccountArgs{Pipeline: name, Account: a.ID, Run: run.ID, Phase: phase}, nil)
		if err != nil {
			return fail(fmt.Errorf("enqueue the sync of account %s: %w", fleet.Label(a.ID), err), nil)
		}
		if res.UniqueSkippedAsDuplicate {
			logger.Info("account already being synced: this run waits for that job", "account", fleet.Label(a.ID), "job", res.Job.ID)
		}
		if err := s.st.queueFleetAccount(save, name, a.ID, run.ID, res.Job.ID, phase); err != nil {
			return err
		}
		jobs = append(jobs, pending{a.ID, phase, res.Job.ID})
	}
	logger.Info("fleet run: accounts enqueued", "accounts", len(jobs), "discovered", len(found))
	// Wait for every account's job, polling the store (the accounts are
	// worked by any process of it).
	want := map[string]int64{}
	for _, j := range jobs {
		want[j.account] = j.job
	}
	ended := map[string]bool{}
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	for polls := 0; ; polls++ {
		rows, err := s.st.fleetAccounts(ctx, name, "")
		if err != nil && ctx.Err() == nil {
			return err
		}
		for _, a := range rows {
			id, mine := want[a.Account]
			if !mine || ended[a.Account] {
				continue
			}
			if a.State.Finished() && a.Job == id {
				ended[a.Account] = true
				logger.Info("account synced", "account", a.Label(), "state", string(a.State), "worker", a.Worker, "attempt", a.Attempt, "rows", a.Rows, "requests", a.Requests, "error", a.Error)
				continue
			}
			// A job River gave up on (its worker died on its last attempt)
			// never records an end: the run records it.
			if polls%10 == 9 {
				j, err := s.river.JobGet(ctx, id)
				if err != nil || !finalJob(j.State) {
					continue
				}
				// The worker records the end before River finishes the
				// job: read the row again, after River's word.
				again, err := s.st.fleetAccounts(ctx, name, "AND account = ?", a.Account)
				if err != nil || len(again) != 1 || again[0].Job != id {
					continue
				}
				if a = again[0]; a.State.Finished() {
					continue // seen as ended at the next poll
				}
				a.State, a.Finished, a.ErrorKind = RunFailed, s.now(), KindInterrupted
				a.Error = fmt.Sprintf("its job ended (%s) without a result: its worker stopped on the last attempt", j.State)
				if err := s.st.endFleetAccount(save, name, a); err != nil {
					return err
				}
			}
		}
		if len(ended) == len(want) {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			// The attempt's time is up (or the service stops): the accounts
			// go on, and the run is snoozed rather than failed (a snooze
			// spends no attempt), so any worker picks it up again at once
			// and waits on for the same jobs.
			return river.JobSnooze(0)
		}
	}
	return s.endFleetRun(save, run, name, want, logger)
}

// endFleetRun records a fleet run from its accounts' results.
func (s *Service) endFleetRun(ctx context.Context, run *Run, name string, want map[string]int64, logger *slog.Logger) error {
	rows, err := s.st.fleetAccounts(ctx, name, "")
	if err != nil {
		return err
	}
	streams := map[string]*engine.StreamResult{}
	var failed []string
	var kind ErrorKind
	run.Rows, run.Requests = 0, 0
	for _, a := range rows {
		if _, mine := want[a.Account]; !mine {
			continue
		}
		run.Rows += a.Rows
		run.Requests += a.Requests
		for _, st := range a.streams {
			agg := streams[st.Stream]
			if agg == nil {
				agg = &engine.StreamResult{Stream: st.Stream, Mode: st.Mode, Requests: map[string]int64{}}
				streams[st.Stream] = agg
			}
			agg.Rows += st.Rows
			agg.Pages += st.Pages
			agg.Seconds += st.Seconds
			for why, n := range st.Requests {
				agg.Requests[why] += n
			}
			if st.Mode != agg.Mode {
				agg.Mode = "mixed"
			}
		}
		switch a.State {
		case RunFailed:
			failed = append(failed, fmt.Sprintf("%s: %s", a.Label(), a.Error))
			if kind == "" {
				kind = a.ErrorKind
			}
		case RunSkipped:
			run.Notes = append(run.Notes, fmt.Sprintf("account %s skipped: %s", a.Label(), a.Error))
		}
	}
	run.Streams = run.Streams[:0]
	for _, st := range streams {
		run.Streams = append(run.Streams, st)
	}
	sort.Slice(run.Streams, func(i, j int) bool { return run.Streams[i].Stream < run.Streams[j].Stream })
	run.Notes = append(run.Notes, fmt.Sprintf("fleet: %d accounts, %d failed", len(want), len(failed)))
	run.Finished = s.now()
	if len(failed) == 0 {
		run.Status = RunSucceeded
		logger.Info("run succeeded", "accounts", len(want), "rows", run.Rows, "requests", run.Requests)
		return s.saveRun(ctx, run)
	}
	sort.Strings(failed)
	run.Status, run.ErrorKind = RunFailed, kind
	run.Error = fmt.Sprintf("%d of %d accounts failed (the others are synced): %s", len(failed), len(want), strings.Join(failed, "; "))
	logger.Error("run failed", "error_kind", string(kind), "error", run.Error)
	if err := s.saveRun(ctx, run); err != nil {
		return err
	}
	return river.JobCancel(errors.New(run.Error))
}

func finalJob(st rivertype.JobState) bool {
	switch st {
	case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
		return true
	}
	return false
}

func excluded(p *Pipeline, account string) bool {
	for _, x := range p.Connection.Accounts.Select.Except {
		if x == account {
			return true
		}
	}
	return false
}

// workAccount is one attempt of one account's sync.
func (s *Service) workAccount(ctx context.Context, job *rivertype.JobRow, args AccountArgs) error {
	save := context.WithoutCancel(ctx)
	rec, err := s.st.pipeline(ctx, args.Pipeline)
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(fmt.Errorf("pipeline %s no longer exists", args.Pipeline))
	}
	if err != nil {
		return err
	}
	a := &AccountStatus{Account: args.Account}
	if rec.paused {
		a.State, a.Finished, a.Error = RunSkipped, s.now(), "the pipeline is paused"
		return s.st.endFleetAccount(save, args.Pipeline, a)
	}
	prev, err := s.st.fleetAccounts(ctx, args.Pipeline, "AND account = ?", args.Account)
	if err != nil {
		return err
	}
	if len(prev) == 1 {
		a.LastSuccess = prev[0].LastSuccess
		if prev[0].Standing == StandingDeauthorized {
			a.State, a.Finished, a.Error = RunSkipped, s.now(), "deauthorized"
			return s.st.endFleetAccount(save, args.Pipeline, a)
		}
	}
	if err := s.st.startFleetAccount(save, args.Pipeline, args.Account, job.ID, s.opts.ID, job.Attempt, s.now()); err != nil {
		return err
	}
	seq, err := s.st.maxSeq(save, job.ID)
	if err != nil {
		return err
	}
	// The account's own log, under its job's id.
	logger := slog.New(newRunLog(s.st, s.hub, job.ID, seq, s.opts.RunLogLevel, s.log.Handler())).With("account", fleet.Label(args.Account))
	logger.Info("account sync started", "pipeline", args.Pipeline, "run", args.Run, "phase", args.Phase, "attempt", job.Attempt, "worker", s.opts.ID)
	res, seen, stats, err := s.syncAccount(ctx, rec, args.Account, logger)
	a.Finished, a.Requests = s.now(), stats.Requests
	if res != nil {
		a.streams = res.Streams
		for _, st := range res.Streams {
			a.Rows += st.Rows
		}
		a.Rows -= int64(res.Events)
	}
	if err == nil {
		a.State, a.LastSuccess = RunSucceeded, a.Finished
		logger.Info("account sync succeeded", "rows", a.Rows, "requests", a.Requests)
		return s.st.endFleetAccount(save, args.Pipeline, a)
	}
	for _, e := range append(seen, err) {
		if fleet.Revoked(e) {
			why := "Stripe refuses requests for the account (403 account_invalid): it disconnected the platform, or the key never had access to it"
			s.markDeauthorized(save, rec, args.Account, why, logger)
			a.State, a.Error = RunSkipped, "deauthorized: "+why
			if serr := s.st.endFleetAccount(save, args.Pipeline, a); serr != nil {
				return serr
			}
			return river.JobCancel(e)
		}
	}
	kind, retry := Classify(err, seen)
	if ctx.Err() != nil {
		kind, retry = KindInterrupted, true // stopped mid-sync: resumes from its checkpoint
	}
	a.ErrorKind, a.Error = kind, err.Error()
	if retry && job.Attempt < job.MaxAttempts {
		a.State = RunRetrying
		logger.Warn("account sync failed; it is retried", "error_kind", string(kind), "error", err.Error(), "attempt", job.Attempt)
		if serr := s.st.endFleetAccount(save, args.Pipeline, a); serr != nil {
			return serr
		}
		return err
	}
	a.State = RunFailed
	logger.Error("account sync failed", "error_kind", string(kind), "error", err.Error())
	if serr := s.st.endFleetAccount(save, args.Pipeline, a); serr != nil {
		return serr
	}
	return river.JobCancel(err)
}

// AccountFlagStream is the state row (under the account's state key) that
// flags a deauthorized account in the destination:
// {"standing":"deauthorized","since":UNIX,"why":…}. Its rows stay.
const AccountFlagStream = "_account"

// markDeauthorized records that an account left the platform, in the
// control store and in the destination's state.
func (s *Service) markDeauthorized(ctx context.Context, rec *record, account, why string, logger *slog.Logger) {
	now := s.now()
	if err := s.st.setStanding(ctx, rec.p.Name, account, StandingDeauthorized, now); err != nil {
		logger.Error("mark the account deauthorized", "account", account, "error", err)
	}
	logger.Warn("account deauthorized: skipped from now on, its rows kept", "account", account, "why", why)
	d, err := dest.Open(ctx, rec.p.Dest)
	if err != nil {
		logger.Error("flag the deauthorized account in the destination", "account", account, "error", err)
		return
	}
	defer d.Close()
	flag, _ := json.Marshal(map[string]any{"standing": StandingDeauthorized, "since": now.Unix(), "why": why})
	if err := d.SaveState(ctx, dest.State{Pipeline: fleet.StateKey(rec.p.Name, account), Stream: AccountFlagStream, Cursor: flag}); err != nil {
		logger.Error("flag the deauthorized account in the destination", "account", account, "error", err)
	}
}

// fleetClient is a Stripe client acting on one account of a fleet
// pipeline, paced by its own bucket (max_rps) and the platform budget.
func (s *Service) fleetClient(rec *record, account string, logger *slog.Logger) (*stripe.Client, error) {
	p := &rec.p
	key, err := s.resolveKey(rec)
	if err != nil {
		return nil, err
	}
	cfg := stripe.Config{
		Key: key, APIBase: p.Connection.APIBase, Account: account, Proxy: p.Connection.Proxy,
		GlobalRPS: p.MaxRPS, EndpointRPS: p.EndpointRPS, Logger: logger, UserAgent: "stripeline-service",
		OnRetry: func(r stripe.Retry) { logger.Info(r.String()) },
	}
	if s.opts.ClientOption != nil {
		s.opts.ClientOption(&cfg)
	}
	c, err := stripe.New(cfg)
	if err != nil {
		return nil, &FieldError{Field: "api_key", Err: err}
	}
	return c, nil
}

// syncAccount runs the engine for one account of a fleet pipeline.
func (s *Service) syncAccount(ctx context.Context, rec *record, account string, logger *slog.Logger) (*engine.Result, []error, stripe.Stats, error) {
	p := &rec.p
	client, err := s.fleetClient(rec, account, logger)
	if err != nil {
		return nil, nil, stripe.Stats{}, err
	}
	d, err := s.fleetDest(ctx, p)
	if err != nil {
		return nil, nil, stripe.Stats{}, fmt.Errorf("open the destination %s: %w", p.RedactedDest(), err)
	}
	rc := &recordingClient{c: client}
	res, err := engine.Sync(ctx, engine.Options{
		Client: &budgetClient{rc, s.budget(rec)}, Dest: d, Pipeline: fleet.StateKey(p.Name, account), Account: account,
		Streams: p.Streams, Fields: p.Fields, StartDate: p.StartDate, LookbackDays: p.LookbackDays, WindowDays: p.WindowDays,
		Concurrency: p.Concurrency, Logger: logger,
	})
	return res, rc.errors(), client.Stats(), err
}

// budgetClient waits on the platform budget before each request.
type budgetClient struct {
	c *recordingClient
	b fleet.Budget
}

func (b *budgetClient) ListPage(ctx context.Context, path string, q url.Values) (*stripe.Page, error) {
	if err := b.b.Wait(ctx); err != nil {
		return nil, err
	}
	return b.c.ListPage(ctx, path, q)
}

// Get is the single-object read the engine uses (the account's creation).
func (b *budgetClient) Get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	if err := b.b.Wait(ctx); err != nil {
		return nil, err
	}
	return b.c.Get(ctx, path, q)
}

// budget is the pipeline's platform budget: shared through a PostgreSQL
// store by every process, else this process's own.
func (s *Service) budget(rec *record) fleet.Budget {
	rps := rec.p.Connection.Accounts.PlatformRPS
	s.budgetsMu.Lock()
	defer s.budgetsMu.Unlock()
	if s.budgets == nil {
		s.budgets = map[string]budgetEntry{}
	}
	if b, ok := s.budgets[rec.p.Name]; ok && b.rps == rps {
		return b.b
	}
	var b fleet.Budget
	if s.st.pool != nil {
		b = fleet.NewShared(s.st.db, rec.p.Name, rps)
	} else {
		b = fleet.NewLocal(rps)
	}
	s.budgets[rec.p.Name] = budgetEntry{rps, b}
	return b
}

type budgetEntry struct {
	rps float64
	b   fleet.Budget
}

// fleetDest is the destination of a fleet pipeline, opened once per
// process and shared by its account jobs (a destination is safe for
// concurrent use; each job's run lock is its own account's): the tables
// are checked and created once, not once per account.
func (s *Service) fleetDest(ctx context.Context, p *Pipeline) (dest.Destination, error) {
	s.budgetsMu.Lock()
	defer s.budgetsMu.Unlock()
	if d, ok := s.fleetDests[p.Dest]; ok {
		return d, nil
	}
	d, err := dest.Open(ctx, p.Dest)
	if err != nil {
		return nil, err
	}
	if s.fleetDests == nil {
		s.fleetDests = map[string]dest.Destination{}
	}
	s.fleetDests[p.Dest] = d
	return d, nil
}

func (s *Service) closeFleetDests() {
	s.budgetsMu.Lock()
	defer s.budgetsMu.Unlock()
	for _, d := range s.fleetDests {
		d.Close()
	}
	s.fleetDests = nil
}
