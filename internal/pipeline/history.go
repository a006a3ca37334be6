package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/history"
)

// RunRolledBack: a rollback undid the run's changes in the replica.
const RunRolledBack RunStatus = "rolled_back"

// ErrNoReplicaRun refuses to roll back a run that never wrote to its
// replica (queued, skipped, or failed before it started).
var ErrNoReplicaRun = errors.New("the run has no replica run to roll back")

// validateHistory checks the pipeline's history option.
func (p *Pipeline) validateHistory() error {
	if p.History == nil {
		return nil
	}
	if err := p.History.Validate(); err != nil {
		var se *history.SettingError
		if errors.As(err, &se) {
			return &FieldError{Field: se.Field, Value: se.Value, Err: se.Err}
		}
		return &FieldError{Field: "history", Err: err}
	}
	return nil
}

// historyPolicy is the engine's history option of the pipeline.
func (p *Pipeline) historyPolicy() history.Policy {
	if p.History == nil {
		return history.Policy{}
	}
	return *p.History
}

// historyFromConfig is a config file pipeline's history option.
func historyFromConfig(c *config.History) *history.Policy {
	if c == nil {
		return nil
	}
	return &history.Policy{Mode: dest.HistoryMode(c.Mode), KeepRuns: c.KeepRuns, KeepDays: c.KeepDays}
}

// Rollback returns a pipeline's replica to its state before run id (a
// control-store run), undoing it and every later run of the pipeline
// (history.Rollback), and marks the runs it undid rolled back here as
// well. It is refused while a run of the pipeline goes on (ErrRunning, or
// the replica's run lock). With dryRun it only says what would change.
// Rolling back a run already rolled back changes nothing but brings the
// control store's marks up to date, so an interrupted rollback is
// finished by running it again.
func (s *Service) Rollback(ctx context.Context, id int64, dryRun bool) (*history.Result, error) {
	run, err := s.st.run(ctx, id)
	if err != nil {
		return nil, err
	}
	rec, err := s.st.pipeline(ctx, run.Pipeline)
	if err != nil {
		return nil, err
	}
	if run.EngineRun == "" {
		return nil, fmt.Errorf("roll back run %d: %w (status %s)", id, ErrNoReplicaRun, run.Status)
	}
	runs, err := s.st.runs(ctx, RunFilter{Pipeline: run.Pipeline, Limit: 1 << 30})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Status == RunRunning {
			return nil, fmt.Errorf("roll back run %d: %w (run %d): wait for it to end, or pause the pipeline first", id, ErrRunning, r.ID)
		}
	}
	d, err := dest.Open(ctx, rec.p.Dest)
	if err != nil {
		return nil, fmt.Errorf("open the destination %s: %w", rec.p.RedactedDest(), err)
	}
	defer d.Close()
	res, err := history.Rollback(ctx, d, run.EngineRun, history.RollbackOptions{DryRun: dryRun, Now: s.now})
	if err != nil {
		return nil, fmt.Errorf("roll back run %d: %w", id, err)
	}
	if dryRun {
		return res, nil
	}
	undone := res.Undone
	if res.Already {
		// Bring the marks up to date: every run of the replica marked.
		replica, err := d.Runs(ctx, run.Pipeline, 0)
		if err != nil {
			return nil, err
		}
		for _, r := range replica {
			if r.Status == string(RunRolledBack) {
				undone = append(undone, r.ID)
			}
		}
	}
	for _, r := range runs {
		if r.EngineRun == "" || r.Status == RunRolledBack || !slices.Contains(undone, r.EngineRun) {
			continue
		}
		r.Status = RunRolledBack
		if res.ID != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("rolled back by %s (a rollback of run %d)", res.ID, id))
		}
		if err := s.saveRun(ctx, r); err != nil {
			return nil, err
		}
	}
	return res, nil
}
