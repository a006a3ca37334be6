package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Options configure a Service.
type Options struct {
	// Store is the control store's URL: sqlite://PATH (the default store
	// is the replica's own SQLite file) or postgres://…[?schema=NAME].
	Store string
	// KeyFile holds the key that encrypts stored API keys; default
	// PATH.key beside a SQLite store, ./stripeline-store.key otherwise. It is
	// created (mode 0600) when a key is first stored.
	KeyFile string
	// Logger receives the service's own log (and a copy of every run's
	// lines, tagged run_id); default discards.
	Logger *slog.Logger
	// RunLogLevel is the lowest level stored with a run (default info).
	RunLogLevel slog.Leveler
	// Work makes this process work runs (River workers). Without it the
	// Service only records and enqueues: runs wait for a process that works.
	Work bool
	// Schedules makes this process run the schedules (periodic jobs,
	// inserted by River's leader). It implies Work. Every working process
	// may be River's leader, which also does its maintenance: runs due for
	// a retry made available, runs whose worker died rescued.
	Schedules bool
	// Workers is how many runs this process works at once (default 2).
	Workers int
	// RescueAfter bounds one attempt of a run: a run whose worker died is
	// taken for dead this long after its attempt started, and River's
	// rescuer runs it again (resuming from its checkpoint); a live attempt
	// that takes longer is stopped at its last checkpoint and retried, so
	// a long backfill goes on over attempts. Default 6h.
	RescueAfter time.Duration
	// PollInterval is how often a worker looks for new runs when it is not
	// told of them (SQLite stores; default 1s).
	PollInterval time.Duration
	// MaxAttempts bounds the attempts of one run (default 5).
	MaxAttempts int
	// RetryPolicy spaces the attempts (default River's, attempt⁴ seconds).
	RetryPolicy river.ClientRetryPolicy
	// ID names this process among River's clients (default host and pid).
	ID string
	// Getenv reads the environment for env:NAME key references
	// (default os.Getenv).
	Getenv func(string) string
	// ClientOption adjusts each run's Stripe client configuration last.
	ClientOption func(*stripe.Config)
	// OnRunEnd, when set, is told of each run attempt this process ends
	// (succeeded, failed, retrying, skipped); the server counts them for
	// /metrics. It is called from the worker's goroutine and must not block.
	OnRunEnd func(*Run)
}

// Service is the pipelines service: every operation of the faces. Open it,
// Start it to work runs and schedules, Stop it to end them gracefully, and
// Close it. Its methods are safe for concurrent use.
type Service struct {
	opts  Options
	st    *store
	hub   *hub
	log   *slog.Logger
	river riverClient

	keysMu sync.Mutex
	keys   *keyring

	progress   progressBoard
	budgetsMu  sync.Mutex
	budgets    map[string]budgetEntry      // fleet platform budgets (fleet_jobs.go)
	fleetDests map[string]dest.Destination // open fleet destinations, by URL (fleet_jobs.go)

	mu       sync.Mutex
	started  bool
	periodic map[string]periodicEntry
	// unsubscribe ends the subscription to River's job events.
	unsubscribe func()
	// hooks are the pipelines' webhook receivers (webhooks.go).
	hooks receivers
}

type periodicEntry struct {
	handle   rivertype.PeriodicJobHandle
	schedule string
}

// riverClient is what the service uses of a *river.Client, whichever its
// driver (riversqlite on *sql.Tx, riverpgxv5 on pgx.Tx).
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	PeriodicJobs() *river.PeriodicJobBundle
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// Open opens the control store (creating its tables and River's), and
// builds the River client. Nothing runs until Start.
func Open(ctx context.Context, opts Options) (*Service, error) {
	if opts.Store == "" {
		return nil, fieldErr("store", "", "is required: sqlite://PATH or postgres://host/db")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RunLogLevel == nil {
		opts.RunLogLevel = slog.LevelInfo
	}
	if opts.Schedules {
		opts.Work = true
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.RescueAfter <= 0 {
		opts.RescueAfter = 6 * time.Hour
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.ID == "" {
		host, _ := os.Hostname()
		opts.ID = fmt.Sprintf("stripeline-%s-%d", host, os.Getpid())
	}
	st, err := openStore(ctx, opts.Store)
	if err != nil {
		return nil, err
	}
	if opts.KeyFile == "" {
		opts.KeyFile = st.keyPath()
	}
	s := &Service{opts: opts, st: st, hub: newHub(), log: opts.Logger, periodic: map[string]periodicEntry{}}
	if err := s.openRiver(ctx); err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

func (s *Service) openRiver(ctx context.Context) error {
	cfg := &river.Config{
		ID:                   s.opts.ID,
		Logger:               slog.New(levelFloor{s.log.Handler(), slog.LevelWarn}),
		Schema:               s.st.schema,
		JobTimeout:           s.opts.RescueAfter,
		RescueStuckJobsAfter: s.opts.RescueAfter,
		MaxAttempts:          s.opts.MaxAttempts,
		RetryPolicy:          s.opts.RetryPolicy,
		FetchPollInterval:    s.opts.PollInterval,
		FetchCooldown:        min(s.opts.PollInterval, 100*time.Millisecond),
	}
	if s.opts.Work {
		workers := river.NewWorkers()
		river.AddWorker(workers, &syncWorker{s: s})
		river.AddWorker(workers, &accountWorker{s: s})
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.opts.Workers}, FleetQueue: {MaxWorkers: s.opts.Workers}}
	}
	// SQLite has no LISTEN/NOTIFY: River's SQLite listener would poll a
	// table every 50ms; polling for jobs every PollInterval is enough.
	cfg.PollOnly = s.st.pool == nil
	migrate := &rivermigrate.Config{Schema: s.st.schema, Logger: slog.New(slog.DiscardHandler)}
	var err error
	if s.st.pool != nil {
		drv := riverpgxv5.New(s.st.pool)
		if err = migrateRiver[pgx.Tx](ctx, drv, migrate); err == nil {
			s.river, err = river.NewClient(drv, cfg)
		}
	} else {
		drv := riversqlite.New(s.st.db)
		if err = migrateRiver[*sql.Tx](ctx, drv, migrate); err == nil {
			s.river, err = river.NewClient(drv, cfg)
		}
	}
	if err != nil {
		return fmt.Errorf("set up the job queue in %s: %w", s.st.redacted, err)
	}
	return nil
}

func migrateRiver[TTx any](ctx context.Context, drv riverdriver.Driver[TTx], cfg *rivermigrate.Config) error {
	m, err := rivermigrate.New(drv, cfg)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// levelFloor drops River's chatter below a level.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}

// Start starts working runs (Options.Work) and, as River's leader,
// running the schedules (Options.Schedules). It returns once started.
func (s *Service) Start(ctx context.Context) error {
	if !s.opts.Work {
		return errors.New("start the pipelines service: this Service was opened without Work, so it only enqueues")
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	if err := s.Reload(ctx); err != nil {
		return err
	}
	if s.opts.Schedules {
		// Edits made by other processes (the CLI) reach this schedule within
		// a minute; the constructor inserts no job, River's leader loop only
		// times the reload.
		s.river.PeriodicJobs().Add(river.NewPeriodicJob(river.PeriodicInterval(time.Minute), func() (river.JobArgs, *river.InsertOpts) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := s.Reload(ctx); err != nil {
					s.log.Warn("reload the schedules", "error", err)
				}
			}()
			return nil, nil
		}, nil))
	}
	events, unsubscribe := s.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled, river.EventKindJobFailed)
	go func() {
		// Tell waiters in this process the moment River ends a job.
		for ev := range events {
			if ev.Job != nil {
				s.hub.notify(ev.Job.ID)
			}
		}
	}()
	if err := s.river.Start(ctx); err != nil {
		unsubscribe()
		return fmt.Errorf("start the job queue: %w", err)
	}
	s.mu.Lock()
	s.unsubscribe = unsubscribe
	s.mu.Unlock()
	return nil
}

// Stop stops working: running runs finish while ctx lives; when it ends
// they are cancelled, and each stops at its last checkpoint (its job is
// retried, and resumes from there, when a worker starts again).
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.started = false
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.river.Stop(ctx)
	s.mu.Lock()
	if s.unsubscribe != nil {
		s.unsubscribe()
		s.unsubscribe = nil
	}
	s.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = s.river.StopAndCancel(cctx)
	}
	if err != nil {
		return fmt.Errorf("stop the job queue: %w", err)
	}
	return nil
}

// Close closes the control store. Stop first if started.
func (s *Service) Close() error {
	s.hooks.close()
	s.closeFleetDests()
	return s.st.close()
}

// StoreURL is the control store's URL with any password hidden.
func (s *Service) StoreURL() string { return s.st.redacted }

// DB is the control store's database, for faces that read it alongside
// (health checks); SQLite stores have one connection, so hold it briefly.
func (s *Service) DB() *sql.DB { return s.st.db }

func (s *Service) now() time.Time { return time.Now().UTC() }

// keyring opens the key file on first use.
func (s *Service) keyring() (*keyring, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if s.keys == nil {
		k, err := openKeyring(s.opts.KeyFile)
		if err != nil {
			return nil, err
		}
		s.keys = k
	}
	return s.keys, nil
}

// status computes a pipeline's state from its record and its runs.
func (s *Service) status(ctx context.Context, rec *record) (Status, error) {
	st := Status{Paused: rec.paused, PausedReason: rec.pausedReason, Tables: len(selectedStreams(&rec.p))}
	last, ok, err := s.st.lastRuns(ctx, rec.p.Name)
	if err != nil {
		return st, err
	}
	if last != nil {
		st.LastRun = last.ID
		st.LastRefresh = last.Finished
		if last.Status == RunFailed || last.Status == RunRetrying {
			st.ErrorKind, st.Error = last.ErrorKind, last.Error
		}
	}
	if ok != nil {
		st.LastSuccess = ok.Finished
	}
	switch {
	case rec.paused:
		st.State = StatePaused
	case last != nil && last.Status == RunRunning:
		st.State = StateRunning
	case last != nil && (last.Status == RunFailed || last.Status == RunRetrying):
		st.State = StateFailing
	case ok == nil:
		st.State = StatePending
	default:
		st.State = StateActive
	}
	if !rec.paused && !rec.p.Schedule.IsManual() {
		st.NextRun = rec.p.Schedule.Next(s.now())
	}
	return st, nil
}

// selectedStreams are the streams (tables) a pipeline writes.
func selectedStreams(p *Pipeline) []string {
	if len(p.Streams) > 0 {
		return p.Streams
	}
	var out []string
	for _, st := range catalog.Defaults() {
		out = append(out, st.Name)
	}
	return out
}
