package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/twoway"
)

// Trigger says what started a run.
type Trigger string

// Triggers.
const (
	TriggerSchedule Trigger = "schedule"
	TriggerManual   Trigger = "manual" // the CLI
	TriggerAPI      Trigger = "api"    // the REST API or the UI
	TriggerWebhook  Trigger = "webhook"
)

// RunStatus is where a run stands.
type RunStatus string

// Run statuses. A run is one River job: a retried or rescued job is the same
// run with a higher Attempt.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	// RunRetrying: the attempt failed with a transient error; River runs
	// it again after a backoff.
	RunRetrying RunStatus = "retrying"
	// RunSkipped: the pipeline was paused when the run was due.
	RunSkipped   RunStatus = "skipped"
	RunCancelled RunStatus = "cancelled"
)

// Finished reports whether the run will not change any more.
func (s RunStatus) Finished() bool {
	switch s {
	case RunSucceeded, RunFailed, RunSkipped, RunCancelled, RunRolledBack:
		return true
	}
	return false
}

// Run is one run of a pipeline.
type Run struct {
	// ID is the River job's id.
	ID       int64     `json:"id"`
	Pipeline string    `json:"pipeline"`
	Trigger  Trigger   `json:"trigger"`
	Status   RunStatus `json:"status"`
	// Attempt counts the times the job was worked (retries and rescues).
	Attempt  int       `json:"attempt"`
	Queued   time.Time `json:"queued"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// EngineRun is the engine's run id, as in the replica's _stripeline_runs.
	EngineRun string `json:"engine_run,omitempty"`
	// Streams holds rows and requests per stream of the last attempt.
	Streams []*engine.StreamResult `json:"streams,omitempty"`
	Events  int                    `json:"events_applied"`
	// WebhookEvents counts the events of the sweep's range that webhook
	// deliveries had applied (Events are those the sweep repaired).
	WebhookEvents int      `json:"events_webhook"`
	Notes         []string `json:"notes,omitempty"`
	Rows          int64    `json:"rows"`
	Requests      int64    `json:"requests"`
	// RateLimited counts the 429 answers Stripe gave the last attempt.
	RateLimited int64 `json:"rate_limited,omitempty"`
	// ErrorKind and Error describe a failure (of the last attempt).
	ErrorKind ErrorKind `json:"error_kind,omitempty"`
	Error     string    `json:"error,omitempty"`
	// TwoWay is the push of a two-way pipeline's run: writes, conflicts
	// (with both values) and refused rows.
	TwoWay *twoway.Report `json:"two_way,omitempty"`
}

// Duration is how long the run took (or has taken so far, given now).
func (r *Run) Duration(now time.Time) time.Duration {
	switch {
	case r.Started.IsZero():
		return 0
	case r.Finished.IsZero():
		return now.Sub(r.Started)
	}
	return r.Finished.Sub(r.Started)
}

// runResult is what the result column holds.
type runResult struct {
	Streams       []*engine.StreamResult `json:"streams,omitempty"`
	Events        int                    `json:"events_applied,omitempty"`
	WebhookEvents int                    `json:"events_webhook,omitempty"`
	Notes         []string               `json:"notes,omitempty"`
	Rows          int64                  `json:"rows,omitempty"`
	Requests      int64                  `json:"requests,omitempty"`
	// RateLimited counts 429s.
	RateLimited int64          `json:"rate_limited,omitempty"`
	TwoWay      *twoway.Report `json:"two_way,omitempty"`
}

const runColumns = `id, pipeline, run_trigger, status, attempt, queued, started, finished, engine_run, result, error_kind, error_text`

// saveRun inserts or replaces a run record.
func (s *store) saveRun(ctx context.Context, r *Run) error {
	raw, err := json.Marshal(runResult{Streams: r.Streams, Events: r.Events, WebhookEvents: r.WebhookEvents, Notes: r.Notes, Rows: r.Rows, Requests: r.Requests, RateLimited: r.RateLimited, TwoWay: r.TwoWay})
	if err != nil {
		return err
	}
	args := []any{r.Pipeline, string(r.Trigger), string(r.Status), int64(r.Attempt), fmtTime(r.Queued), fmtTime(r.Started),
		fmtTime(r.Finished), r.EngineRun, string(raw), string(r.ErrorKind), r.Error}
	res, err := s.exec(ctx, `UPDATE `+RunsTable+` SET pipeline = ?, run_trigger = ?, status = ?, attempt = ?, queued = ?, started = ?, finished = ?, engine_run = ?, result = ?, error_kind = ?, error_text = ? WHERE id = ?`, append(args, r.ID)...)
	if err != nil {
		return fmt.Errorf("record run %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_, err = s.exec(ctx, `INSERT INTO `+RunsTable+` (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{r.ID}, args...)...)
	if isUniqueViolation(err) { // recorded meanwhile by the other side
		return s.saveRun(ctx, r)
	}
	if err != nil {
		return fmt.Errorf("record run %d: %w", r.ID, err)
	}
	return nil
}

// insertQueued records a queued run unless the worker recorded it first.
func (s *store) insertQueued(ctx context.Context, r *Run) error {
	_, err := s.exec(ctx, `INSERT INTO `+RunsTable+` (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Pipeline, string(r.Trigger), string(r.Status), int64(r.Attempt), fmtTime(r.Queued), "", "", "", "", "", "")
	if err != nil && !isUniqueViolation(err) {
		return fmt.Errorf("record run %d: %w", r.ID, err)
	}
	return nil
}

// RunFilter selects runs.
type RunFilter struct {
	// Pipeline selects one pipeline's runs ("" for all).
	Pipeline string
	// Before, when positive, returns runs with a smaller id (paging).
	Before int64
	// Limit bounds the runs returned (default 20).
	Limit int
}

func (s *store) runs(ctx context.Context, f RunFilter) ([]*Run, error) {
	where := `1 = 1`
	var args []any
	if f.Pipeline != "" {
		where += ` AND pipeline = ?`
		args = append(args, f.Pipeline)
	}
	if f.Before > 0 {
		where += ` AND id < ?`
		args = append(args, f.Before)
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	return s.runsWhere(ctx, where+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, f.Limit), args...)
}

func (s *store) run(ctx context.Context, id int64) (*Run, error) {
	runs, err := s.runsWhere(ctx, `id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	return runs[0], nil
}

// lastRuns returns a pipeline's newest run and its newest successful run
// (either may be nil).
func (s *store) lastRuns(ctx context.Context, pipeline string) (last, success *Run, err error) {
	runs, err := s.runsWhere(ctx, `pipeline = ? AND status IN (?, ?, ?, ?) ORDER BY id DESC LIMIT 1`, pipeline,
		string(RunRunning), string(RunSucceeded), string(RunFailed), string(RunRetrying))
	if err != nil || len(runs) == 0 {
		return nil, nil, err
	}
	last = runs[0]
	if last.Status == RunSucceeded {
		return last, last, nil
	}
	ok, err := s.runsWhere(ctx, `pipeline = ? AND status = ? ORDER BY id DESC LIMIT 1`, pipeline, string(RunSucceeded))
	if err != nil || len(ok) == 0 {
		return last, nil, err
	}
	return last, ok[0], nil
}

// lastScheduled is when the newest scheduled run of a pipeline was queued.
func (s *store) lastScheduled(ctx context.Context, pipeline string) (time.Time, error) {
	var t sql.NullString
	err := s.queryRow(ctx, `SELECT MAX(queued) FROM `+RunsTable+` WHERE pipeline = ? AND run_trigger = ?`, pipeline, string(TriggerSchedule)).Scan(&t)
	if err != nil {
		return time.Time{}, fmt.Errorf("read runs of %s: %w", pipeline, err)
	}
	return parseTime(t.String), nil
}

func (s *store) runsWhere(ctx context.Context, where string, args ...any) ([]*Run, error) {
	rows, err := s.query(ctx, `SELECT `+runColumns+` FROM `+RunsTable+` WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r := &Run{}
		var trigger, status, queued, started, finished, result, kind string
		var attempt int64
		if err := rows.Scan(&r.ID, &r.Pipeline, &trigger, &status, &attempt, &queued, &started, &finished, &r.EngineRun, &result, &kind, &r.Error); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		r.Trigger, r.Status, r.Attempt, r.ErrorKind = Trigger(trigger), RunStatus(status), int(attempt), ErrorKind(kind)
		r.Queued, r.Started, r.Finished = parseTime(queued), parseTime(started), parseTime(finished)
		if result != "" {
			var rr runResult
			if err := json.Unmarshal([]byte(result), &rr); err == nil {
				r.Streams, r.Events, r.Notes, r.Rows, r.Requests = rr.Streams, rr.Events, rr.Notes, rr.Rows, rr.Requests
				r.WebhookEvents = rr.WebhookEvents
				r.RateLimited, r.TwoWay = rr.RateLimited, rr.TwoWay
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}
