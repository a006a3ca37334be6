package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all" // every destination scheme
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/twoway"
)

// SyncArgs is the River job of one run of a pipeline. Jobs are unique by
// pipeline while queued, running or waiting for a retry, so a pipeline
// never runs twice at once and a second trigger is refused.
type SyncArgs struct {
	Pipeline string  `json:"pipeline" river:"unique"`
	Trigger  Trigger `json:"trigger"`
}

// Kind is the River job kind.
func (SyncArgs) Kind() string { return "stripeline_sync" }

// InsertOpts makes runs unique per pipeline.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled},
	}}
}

func decodeArgs(j *rivertype.JobRow, into *SyncArgs) error {
	return json.Unmarshal(j.EncodedArgs, into)
}

// syncWorker works SyncArgs jobs: it runs engine.Sync for the pipeline and
// records the run.
type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	s *Service
}

// Timeout bounds one attempt by Options.RescueAfter: River rescues only
// jobs with a timeout, and a run that outlasts it stops at its last
// checkpoint; the next attempt resumes from there.
func (w *syncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return w.s.opts.RescueAfter }

// Work runs one attempt of a run.
func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	return w.s.work(ctx, job.JobRow, job.Args)
}

// work is one attempt: load the pipeline, skip it if paused, sync, record.
// Transient failures return the error (River retries with backoff), others
// cancel the job.
func (s *Service) work(ctx context.Context, job *rivertype.JobRow, args SyncArgs) error {
	save := context.WithoutCancel(ctx)
	run, err := s.st.run(ctx, job.ID)
	if err != nil {
		run = &Run{ID: job.ID, Pipeline: args.Pipeline, Trigger: args.Trigger, Queued: job.CreatedAt.UTC()}
	}
	rec, err := s.st.pipeline(ctx, args.Pipeline)
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(fmt.Errorf("pipeline %s no longer exists", args.Pipeline))
	}
	if err != nil {
		return err
	}
	if rec.paused {
		run.Status, run.Finished = RunSkipped, s.now()
		run.Notes = append(run.Notes, "skipped: the pipeline is paused")
		return s.saveRun(save, run)
	}
	if job.Attempt > 1 {
		why := "its worker stopped"
		if n := len(job.Errors); n > 0 && job.Errors[n-1].Attempt == job.Attempt-1 {
			why = job.Errors[n-1].Error
		}
		run.Notes = append(run.Notes, fmt.Sprintf("attempt %d resumes from the last checkpoint after attempt %d ended: %s", job.Attempt, job.Attempt-1, why))
	}
	run.Status, run.Attempt, run.Finished, run.ErrorKind, run.Error = RunRunning, job.Attempt, time.Time{}, "", ""
	if run.Started.IsZero() {
		run.Started = s.now()
	}
	if err := s.saveRun(save, run); err != nil {
		return err
	}
	seq, err := s.st.maxSeq(save, run.ID)
	if err != nil {
		return err
	}
	logger := slog.New(newRunLog(s.st, s.hub, run.ID, seq, s.opts.RunLogLevel, s.log.Handler()))
	logger.Info("run started", "pipeline", args.Pipeline, "trigger", string(args.Trigger), "attempt", job.Attempt)
	if rec.p.Fleet() {
		return s.workFleet(ctx, save, job, run, rec, logger)
	}
	prog := s.progress.start(run.ID, s.hub)
	defer s.progress.end(run.ID)
	res, seen, stats, err := s.sync(ctx, rec, logger, prog)
	run.Finished = s.now()
	if res != nil {
		run.EngineRun, run.Streams, run.Events = res.RunID, res.Streams, res.Events
		run.WebhookEvents = res.WebhookEvents
		run.Notes = append(run.Notes, res.Notes...)
		run.TwoWay, _ = res.TwoWay.(*twoway.Report)
		run.Rows, run.Requests, run.RateLimited = 0, stats.Requests, stats.RateLimited
		for _, st := range res.Streams {
			run.Rows += st.Rows
		}
		// The events sweep's result counts the events it applied, whose
		// rows its tables count already: Rows are rows written.
		run.Rows -= int64(res.Events)
	}
	if err == nil {
		run.Status = RunSucceeded
		logger.Info("run succeeded", "rows", run.Rows, "requests", run.Requests, "events_applied", run.Events)
		return s.saveRun(save, run)
	}
	kind, retry := Classify(err, seen)
	if ctx.Err() != nil {
		// Stopped mid-run (shutdown, cancel): whatever the step it broke
		// (a destination being opened answers "interrupted" in its words),
		// the run was interrupted, and resumes from its checkpoint.
		kind, retry = KindInterrupted, true
	}
	run.ErrorKind, run.Error = kind, err.Error()
	if kind.PausesSchedule() {
		article := "a"
		if kind == KindAuth {
			article = "an"
		}
		reason := fmt.Sprintf("paused: the last run failed with %s %s error", article, kind)
		if perr := s.st.setPaused(save, rec.p.Name, true, reason, s.now()); perr != nil {
			logger.Error("pause the pipeline", "error", perr)
		}
		logger.Warn("the pipeline is paused until it is edited or resumed", "error_kind", string(kind))
	}
	if retry && job.Attempt < job.MaxAttempts {
		run.Status = RunRetrying
		logger.Warn("run failed; it is retried", "error_kind", string(kind), "error", err.Error(), "attempt", job.Attempt, "max_attempts", job.MaxAttempts)
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

func (s *Service) saveRun(ctx context.Context, run *Run) error {
	if err := s.st.saveRun(ctx, run); err != nil {
		return err
	}
	s.hub.notify(run.ID)
	if s.opts.OnRunEnd != nil && run.Status != RunRunning && run.Status != RunQueued {
		ended := *run
		s.opts.OnRunEnd(&ended)
	}
	return nil
}

// sync runs the engine for a pipeline, telling prog how it goes. It returns
// the engine's result, the Stripe errors its client met (for Classify) and
// its client's counts (requests sent, 429s met).
func (s *Service) sync(ctx context.Context, rec *record, logger *slog.Logger, prog engine.Progress) (*engine.Result, []error, stripe.Stats, error) {
	p := &rec.p
	key, err := s.resolveKey(rec)
	if err != nil {
		return nil, nil, stripe.Stats{}, err
	}
	cfg := stripe.Config{
		Key: key, APIBase: p.Connection.APIBase, Account: p.Connection.Account, Proxy: p.Connection.Proxy,
		GlobalRPS: p.MaxRPS, EndpointRPS: p.EndpointRPS, Logger: logger, UserAgent: "stripeline-service",
		OnRetry: func(r stripe.Retry) { logger.Info(r.String()) },
	}
	if s.opts.ClientOption != nil {
		s.opts.ClientOption(&cfg)
	}
	client, err := stripe.New(cfg)
	if err != nil {
		return nil, nil, stripe.Stats{}, &FieldError{Field: "api_key", Err: err}
	}
	d, err := dest.Open(ctx, p.Dest)
	if err != nil {
		return nil, nil, stripe.Stats{}, fmt.Errorf("open the destination %s: %w", p.RedactedDest(), err)
	}
	defer d.Close()
	rc := &recordingClient{c: client}
	opts := engine.Options{
		Client: rc, Dest: d, Pipeline: p.Name, Account: p.Connection.Account, Streams: p.Streams, Fields: p.Fields,
		StartDate: p.StartDate, LookbackDays: p.LookbackDays, WindowDays: p.WindowDays, Concurrency: p.Concurrency,
		Logger: logger, Progress: prog,
	}
	if err := withTwoWay(p, &opts, client, d, logger); err != nil {
		return nil, nil, stripe.Stats{}, err
	}
	opts.History = p.historyPolicy()
	res, err := engine.Sync(ctx, opts)
	return res, rc.errors(), client.Stats(), err
}

// resolveKey reads the pipeline's API key: from its environment variable,
// or decrypted from the store.
func (s *Service) resolveKey(rec *record) (stripe.Secret, error) {
	c := rec.p.Connection
	if name, ok := strings.CutPrefix(c.KeyRef, "env:"); ok {
		key := stripe.Secret(s.opts.Getenv(name))
		if key == "" {
			return "", fieldErr("api_key", c.KeyRef, "names an environment variable that is not set where the service runs: set %s to the pipeline's Stripe key, or store the key in the pipeline", name)
		}
		if !key.Valid() {
			return "", fieldErr("api_key", c.KeyRef, "holds no Stripe API key: set %s to a key starting with sk_live_, sk_test_, rk_live_ or rk_test_", name)
		}
		return key, nil
	}
	k, err := s.keyring()
	if err != nil {
		return "", &FieldError{Field: "api_key", Err: err}
	}
	key, err := k.open(rec.p.Name, rec.sealed)
	if err != nil {
		return "", &FieldError{Field: "api_key", Err: err}
	}
	return key, nil
}

// recordingClient passes the engine's requests to the Stripe client and
// keeps the errors they met, which a run that fails stream by stream
// (engine.ErrStreamsFailed) reports only as text.
type recordingClient struct {
	c    *stripe.Client
	mu   sync.Mutex
	seen []error
}

func (r *recordingClient) ListPage(ctx context.Context, path string, q url.Values) (*stripe.Page, error) {
	p, err := r.c.ListPage(ctx, path, q)
	r.keep(err)
	return p, err
}

// Get is the single-object read the engine uses (the account's creation).
func (r *recordingClient) Get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	b, err := r.c.Get(ctx, path, q)
	r.keep(err)
	return b, err
}

func (r *recordingClient) keep(err error) {
	var se *stripe.Error
	if err == nil || !errors.As(err, &se) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) < 16 {
		r.seen = append(r.seen, err)
	}
}

func (r *recordingClient) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.seen...)
}
