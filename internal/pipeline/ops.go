package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Create records a new pipeline. Its Connection holds either a KeyRef
// "env:NAME" or an APIKey to store encrypted (KeyRef may then be empty).
func (s *Service) Create(ctx context.Context, p Pipeline) (*Pipeline, error) {
	if p.Connection.KeyRef == "" && p.Connection.APIKey != "" {
		p.Connection.KeyRef = KeyRefStored
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rec := &record{p: p}
	now := s.now()
	rec.p.Created, rec.p.Updated, rec.p.Status = now, now, Status{}
	if err := s.sealKey(rec, nil); err != nil {
		return nil, err
	}
	if err := s.st.insertPipeline(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s.Get(ctx, p.Name)
}

// sealKey stores the connection's key encrypted (or clears it for a
// reference); with no new key, a stored key of old is kept.
func (s *Service) sealKey(rec *record, old *record) error {
	c := &rec.p.Connection
	if c.KeyRef != KeyRefStored {
		rec.sealed, c.KeyHint, c.APIKey = "", "", ""
		return nil
	}
	if c.APIKey == "" {
		if old == nil || old.sealed == "" {
			return fieldErr("api_key", "", "is required: give the key to store (it is kept encrypted), or a reference env:NAME")
		}
		rec.sealed, c.KeyHint = old.sealed, old.p.Connection.KeyHint
		return nil
	}
	k, err := s.keyring()
	if err != nil {
		return err
	}
	sealed, err := k.seal(rec.p.Name, c.APIKey)
	if err != nil {
		return fmt.Errorf("store the API key of %s: %w", rec.p.Name, err)
	}
	rec.sealed, c.KeyHint, c.APIKey = sealed, c.APIKey.String(), ""
	return nil
}

// Update replaces the settings of the pipeline p.Name (which never
// changes). A stored key is kept when p gives no new one. An edit lifts a
// pause the service made after an auth or permission failure; a pause by
// hand stays.
func (s *Service) Update(ctx context.Context, p Pipeline) (*Pipeline, error) {
	old, err := s.st.pipeline(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if p.Connection.KeyRef == "" && p.Connection.APIKey != "" {
		p.Connection.KeyRef = KeyRefStored
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rec := &record{p: p, paused: old.paused, pausedReason: old.pausedReason}
	rec.p.Created, rec.p.Updated, rec.p.Source, rec.p.Status = old.p.Created, s.now(), old.p.Source, Status{}
	if p.Source != "" {
		rec.p.Source = p.Source
	}
	if rec.pausedReason != "" {
		rec.paused, rec.pausedReason = false, ""
	}
	if err := s.sealKey(rec, old); err != nil {
		return nil, err
	}
	if err := s.st.updatePipeline(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s.Get(ctx, p.Name)
}

// Get returns a pipeline with its status.
func (s *Service) Get(ctx context.Context, name string) (*Pipeline, error) {
	rec, err := s.st.pipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.withStatus(ctx, rec)
}

func (s *Service) withStatus(ctx context.Context, rec *record) (*Pipeline, error) {
	st, err := s.status(ctx, rec)
	if err != nil {
		return nil, err
	}
	p := rec.p
	p.Status = st
	return &p, nil
}

// List returns every pipeline, by name, with its status.
func (s *Service) List(ctx context.Context) ([]*Pipeline, error) {
	recs, err := s.st.pipelines(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Pipeline, 0, len(recs))
	for _, rec := range recs {
		p, err := s.withStatus(ctx, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Pause stops the pipeline's schedule and refuses runs until Resume. A run
// going on finishes.
func (s *Service) Pause(ctx context.Context, name string) (*Pipeline, error) {
	if err := s.st.setPaused(ctx, name, true, "", s.now()); err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

// Resume lifts a pause, by hand or the service's.
func (s *Service) Resume(ctx context.Context, name string) (*Pipeline, error) {
	if err := s.st.setPaused(ctx, name, false, "", s.now()); err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

// BusyError refuses a run because one of the pipeline is queued or going on.
type BusyError struct {
	Pipeline string
	// Run is the run that is queued or going on.
	Run *Run
}

func (e *BusyError) Error() string {
	state := "queued"
	switch e.Run.Status {
	case RunRunning:
		state = "running"
	case RunRetrying:
		state = "waiting to be retried"
	}
	return fmt.Sprintf("pipeline %s already has a run %s (run %d, triggered by %s): this run is refused; follow that one, or wait for it to end", e.Pipeline, state, e.Run.ID, e.Run.Trigger)
}

// Run enqueues a run of the pipeline now. It is refused with a *BusyError
// when a run of the pipeline is queued or going on, and with ErrPaused
// while the pipeline is paused.
func (s *Service) Run(ctx context.Context, name string, trigger Trigger) (*Run, error) {
	rec, err := s.st.pipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	if rec.paused {
		why := "resume it first"
		if rec.pausedReason != "" {
			why = rec.pausedReason + "; edit or resume it first"
		}
		return nil, fmt.Errorf("pipeline %s: %w (%s)", name, ErrPaused, why)
	}
	res, err := s.river.Insert(ctx, SyncArgs{Pipeline: name, Trigger: trigger}, nil)
	if err == nil && res.UniqueSkippedAsDuplicate {
		if busy := s.runOfJob(ctx, res.Job); busy.Status.Finished() {
			// The run has ended and its job is being completed: once River
			// has done so, the new run goes in.
			if err = s.waitJob(ctx, res.Job.ID); err == nil {
				res, err = s.river.Insert(ctx, SyncArgs{Pipeline: name, Trigger: trigger}, nil)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("enqueue a run of %s: %w", name, err)
	}
	if res.UniqueSkippedAsDuplicate {
		return nil, &BusyError{Pipeline: name, Run: s.runOfJob(ctx, res.Job)}
	}
	run := &Run{ID: res.Job.ID, Pipeline: name, Trigger: trigger, Status: RunQueued, Queued: res.Job.CreatedAt.UTC()}
	if err := s.st.insertQueued(ctx, run); err != nil {
		return nil, err
	}
	s.hub.notify(run.ID)
	return s.st.run(ctx, run.ID)
}

// runOfJob is the run record of a job, or one made from the job itself.
func (s *Service) runOfJob(ctx context.Context, j *rivertype.JobRow) *Run {
	if r, err := s.st.run(ctx, j.ID); err == nil {
		return r
	}
	var args SyncArgs
	_ = decodeArgs(j, &args)
	r := &Run{ID: j.ID, Pipeline: args.Pipeline, Trigger: args.Trigger, Status: RunQueued, Queued: j.CreatedAt}
	switch j.State {
	case rivertype.JobStateRunning:
		r.Status = RunRunning
	case rivertype.JobStateRetryable:
		r.Status = RunRetrying
	}
	return r
}

// GetRun returns one run.
func (s *Service) GetRun(ctx context.Context, id int64) (*Run, error) { return s.st.run(ctx, id) }

// Runs lists runs, newest first.
func (s *Service) Runs(ctx context.Context, f RunFilter) ([]*Run, error) { return s.st.runs(ctx, f) }

// Logs returns up to limit lines of a run's log after sequence number after.
func (s *Service) Logs(ctx context.Context, runID, after int64, limit int) ([]LogLine, error) {
	if _, err := s.st.run(ctx, runID); err != nil && !s.st.isAccountJob(ctx, runID) {
		return nil, err
	}
	return s.st.logs(ctx, runID, after, limit)
}

// followPoll is how often a follower looks at the store for news that no
// notification brings (a run worked by another process).
const followPoll = 500 * time.Millisecond

// Follow streams a run's log lines after sequence number after, as they
// are written, and closes the channel once the run has finished and every
// line was sent, or when ctx ends. Lines of a run worked in this process
// arrive at once; those of another process's run within a poll interval.
func (s *Service) Follow(ctx context.Context, runID, after int64) (<-chan LogLine, error) {
	if _, err := s.st.run(ctx, runID); err != nil {
		return nil, err
	}
	out := make(chan LogLine, 64)
	news, unsubscribe := s.hub.subscribe(runID)
	go func() {
		defer close(out)
		defer unsubscribe()
		tick := time.NewTicker(followPoll)
		defer tick.Stop()
		for {
			run, err := s.st.run(ctx, runID)
			if err != nil {
				return
			}
			for {
				lines, err := s.st.logs(ctx, runID, after, 500)
				if err != nil {
					return
				}
				for _, l := range lines {
					select {
					case out <- l:
						after = l.Seq
					case <-ctx.Done():
						return
					}
				}
				if len(lines) < 500 {
					break
				}
			}
			if run.Status.Finished() {
				return
			}
			select {
			case <-news:
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Wait waits for a run to finish and returns it. It gives up when ctx ends.
func (s *Service) Wait(ctx context.Context, runID int64) (*Run, error) {
	news, unsubscribe := s.hub.subscribe(runID)
	defer unsubscribe()
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		run, err := s.st.run(ctx, runID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err == nil && run.Status.Finished() {
			if err := s.waitJob(ctx, runID); err != nil {
				return nil, err
			}
			return s.st.run(ctx, runID)
		}
		select {
		case <-news:
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for run %d: %w", runID, ctx.Err())
		}
	}
}

// Reload makes the schedules of this process match the store: periodic
// jobs added for new or changed schedules, removed for deleted, paused or
// manual ones. Mutations through this Service reload by themselves; a
// serving process also reloads every minute (edits from other processes).
func (s *Service) Reload(ctx context.Context) error {
	s.mu.Lock()
	active := s.started && s.opts.Schedules
	s.mu.Unlock()
	if !active {
		return nil
	}
	recs, err := s.st.pipelines(ctx)
	if err != nil {
		return err
	}
	want := map[string]*record{}
	for _, r := range recs {
		if !r.p.Schedule.IsManual() {
			want[r.p.Name] = r
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.periodic {
		if r, ok := want[name]; !ok || r.p.Schedule.String() != e.schedule {
			s.river.PeriodicJobs().Remove(e.handle)
			delete(s.periodic, name)
		}
	}
	for name, r := range want {
		if _, ok := s.periodic[name]; ok {
			continue
		}
		missed, err := s.missedTick(ctx, r)
		if err != nil {
			return err
		}
		h, err := s.river.PeriodicJobs().AddSafely(river.NewPeriodicJob(r.p.Schedule, s.constructor(name), &river.PeriodicJobOpts{RunOnStart: missed}))
		if err != nil {
			return fmt.Errorf("schedule pipeline %s: %w", name, err)
		}
		s.periodic[name] = periodicEntry{handle: h, schedule: r.p.Schedule.String()}
	}
	return nil
}

// missedTick reports whether a scheduled run of the pipeline came due
// while no process ran the schedules: the next tick after its last
// scheduled run (or its creation) has passed. The missed ticks, however
// many, make one run.
func (s *Service) missedTick(ctx context.Context, r *record) (bool, error) {
	last, err := s.st.lastScheduled(ctx, r.p.Name)
	if err != nil {
		return false, err
	}
	ref := r.p.Updated
	if last.After(ref) {
		ref = last
	}
	return !r.p.Schedule.Next(ref).After(s.now()), nil
}

// constructor makes the periodic job of a pipeline: a scheduled run, or
// none while the pipeline is paused, gone or manual.
func (s *Service) constructor(name string) river.PeriodicJobConstructor {
	return func() (river.JobArgs, *river.InsertOpts) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec, err := s.st.pipeline(ctx, name)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.log.Warn("a scheduled run is skipped: the pipeline could not be read", "pipeline", name, "error", err)
			}
			return nil, nil
		}
		if rec.paused || rec.p.Schedule.IsManual() {
			s.log.Info("a scheduled run is skipped: the pipeline is paused", "pipeline", name)
			return nil, nil
		}
		return SyncArgs{Pipeline: name, Trigger: TriggerSchedule}, nil
	}
}

// waitJob waits for River to finish a run's job (completed, cancelled or
// discarded), so that the next run of the pipeline may be inserted.
func (s *Service) waitJob(ctx context.Context, id int64) error {
	news, unsubscribe := s.hub.subscribe(id)
	defer unsubscribe()
	tick := time.NewTicker(followPoll / 10)
	defer tick.Stop()
	for {
		j, err := s.river.JobGet(ctx, id)
		if errors.Is(err, river.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the job of run %d: %w", id, err)
		}
		switch j.State {
		case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
			return nil
		}
		select {
		case <-news:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("wait for run %d: %w", id, ctx.Err())
		}
	}
}

// ServerRunning reports whether a process runs the schedules on this store
// (River has a leader whose term has not expired): runs enqueued now are
// worked without this process.
func (s *Service) ServerRunning(ctx context.Context) (bool, error) {
	q := `SELECT COUNT(*) FROM river_leader WHERE expires_at > datetime('now', 'subsec')`
	if s.st.pool != nil {
		q = `SELECT COUNT(*) FROM river_leader WHERE expires_at > now()`
	}
	var n int
	if err := s.st.queryRow(ctx, q).Scan(&n); err != nil {
		return false, fmt.Errorf("look for a running server: %w", err)
	}
	return n > 0, nil
}
