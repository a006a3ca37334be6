package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/fleet"
)

// FleetAccountsTable holds, per fleet pipeline and account, what the
// faces show: the account's standing (active or deauthorized), its last
// job (state, phase, worker, attempt, times, counts, error) and its last
// success (the lag).
const FleetAccountsTable = "_stripeline_fleet_accounts"

const fleetAccountsDDL = `CREATE TABLE IF NOT EXISTS ` + FleetAccountsTable + ` (
	pipeline TEXT NOT NULL,
	account TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	standing TEXT NOT NULL DEFAULT 'active',
	standing_since TEXT NOT NULL DEFAULT '',
	run_id BIGINT NOT NULL DEFAULT 0,
	job_id BIGINT NOT NULL DEFAULT 0,
	phase TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL DEFAULT '',
	worker TEXT NOT NULL DEFAULT '',
	attempt BIGINT NOT NULL DEFAULT 0,
	started TEXT NOT NULL DEFAULT '',
	finished TEXT NOT NULL DEFAULT '',
	last_success TEXT NOT NULL DEFAULT '',
	rows_written BIGINT NOT NULL DEFAULT 0,
	requests BIGINT NOT NULL DEFAULT 0,
	error_kind TEXT NOT NULL DEFAULT '',
	error_text TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (pipeline, account)
)`

// Standings of a fleet account.
const (
	// StandingActive: the account is synced at each run.
	StandingActive = "active"
	// StandingDeauthorized: the account disconnected the platform
	// (account.application.deauthorized: GET /v1/accounts no longer lists
	// it, or Stripe refuses it with 403 account_invalid). It is skipped;
	// its rows stay in the replica, flagged through the destination's
	// state (stream _account of its state key).
	StandingDeauthorized = "deauthorized"
)

// Account phases: what its job does.
const (
	PhaseBackfill    = "backfill"
	PhaseIncremental = "incremental"
)

// AccountStatus is one account of a fleet pipeline, for the faces.
type AccountStatus struct {
	// Account is acct_…, or "" for the platform itself.
	Account string `json:"account"`
	Name    string `json:"name,omitempty"`
	// Standing is active or deauthorized; StandingSince when it changed.
	Standing      string    `json:"standing"`
	StandingSince time.Time `json:"standing_since,omitzero"`
	// Run and Job are the pipeline run and the River job of its last sync.
	Run   int64  `json:"run,omitempty"`
	Job   int64  `json:"job,omitempty"`
	Phase string `json:"phase,omitempty"`
	// State is the last job's: queued, running, retrying, succeeded,
	// failed, skipped (paused or deauthorized).
	State RunStatus `json:"state,omitempty"`
	// Worker is the River client (process) that worked the job last.
	Worker   string    `json:"worker,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// LastSuccess is when a sync of the account last succeeded; LagSeconds
	// is how old the account's replica is (now − LastSuccess; -1: never).
	LastSuccess time.Time `json:"last_success,omitzero"`
	LagSeconds  float64   `json:"lag_seconds"`
	Rows        int64     `json:"rows"`
	Requests    int64     `json:"requests"`
	ErrorKind   ErrorKind `json:"error_kind,omitempty"`
	Error       string    `json:"error,omitempty"`
	// streams are the last job's per-stream results.
	streams []*engine.StreamResult
}

// Label is "platform" or the account id.
func (a *AccountStatus) Label() string { return fleet.Label(a.Account) }

const fleetColumns = `account, name, standing, standing_since, run_id, job_id, phase, state, worker, attempt, started, finished, last_success, rows_written, requests, error_kind, error_text, result`

func (s *store) fleetAccounts(ctx context.Context, pipeline string, where string, args ...any) ([]*AccountStatus, error) {
	rows, err := s.query(ctx, `SELECT `+fleetColumns+` FROM `+FleetAccountsTable+` WHERE pipeline = ? `+where+` ORDER BY account`, append([]any{pipeline}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read the accounts of %s: %w", pipeline, err)
	}
	defer rows.Close()
	var out []*AccountStatus
	for rows.Next() {
		var a AccountStatus
		var since, started, finished, last, state, kind, result string
		var attempt int64
		if err := rows.Scan(&a.Account, &a.Name, &a.Standing, &since, &a.Run, &a.Job, &a.Phase, &state, &a.Worker, &attempt,
			&started, &finished, &last, &a.Rows, &a.Requests, &kind, &a.Error, &result); err != nil {
			return nil, fmt.Errorf("read the accounts of %s: %w", pipeline, err)
		}
		a.StandingSince, a.Started, a.Finished, a.LastSuccess = parseTime(since), parseTime(started), parseTime(finished), parseTime(last)
		a.State, a.ErrorKind, a.Attempt = RunStatus(state), ErrorKind(kind), int(attempt)
		if result != "" {
			_ = json.Unmarshal([]byte(result), &a.streams)
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// ensureFleetAccount adds an account row if there is none.
func (s *store) ensureFleetAccount(ctx context.Context, pipeline string, a fleet.Account, now time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO `+FleetAccountsTable+` (pipeline, account, name, standing, standing_since) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (pipeline, account) DO UPDATE SET name = excluded.name`, pipeline, a.ID, a.Name, StandingActive, fmtTime(now))
	if err != nil {
		return fmt.Errorf("record account %s of %s: %w", fleet.Label(a.ID), pipeline, err)
	}
	return nil
}

// setStanding changes an account's standing.
func (s *store) setStanding(ctx context.Context, pipeline, account, standing string, now time.Time) error {
	_, err := s.exec(ctx, `UPDATE `+FleetAccountsTable+` SET standing = ?, standing_since = ? WHERE pipeline = ? AND account = ? AND standing <> ?`,
		standing, fmtTime(now), pipeline, account, standing)
	if err != nil {
		return fmt.Errorf("record account %s of %s: %w", fleet.Label(account), pipeline, err)
	}
	return nil
}

// queueFleetAccount records the job an account's sync of run is.
func (s *store) queueFleetAccount(ctx context.Context, pipeline, account string, run, job int64, phase string) error {
	_, err := s.exec(ctx, `UPDATE `+FleetAccountsTable+` SET run_id = ?, job_id = ?, phase = ?, state = ?, error_kind = '', error_text = '' WHERE pipeline = ? AND account = ?`,
		run, job, phase, string(RunQueued), pipeline, account)
	if err != nil {
		return fmt.Errorf("record account %s of %s: %w", fleet.Label(account), pipeline, err)
	}
	return nil
}

// startFleetAccount records an attempt starting on worker.
func (s *store) startFleetAccount(ctx context.Context, pipeline, account string, job int64, worker string, attempt int, now time.Time) error {
	_, err := s.exec(ctx, `UPDATE `+FleetAccountsTable+` SET job_id = ?, state = ?, worker = ?, attempt = ?, started = ?, finished = '' WHERE pipeline = ? AND account = ?`,
		job, string(RunRunning), worker, int64(attempt), fmtTime(now), pipeline, account)
	if err != nil {
		return fmt.Errorf("record account %s of %s: %w", fleet.Label(account), pipeline, err)
	}
	return nil
}

// endFleetAccount records how an attempt ended.
func (s *store) endFleetAccount(ctx context.Context, pipeline string, a *AccountStatus) error {
	result, _ := json.Marshal(a.streams)
	if len(a.streams) == 0 {
		result = nil
	}
	_, err := s.exec(ctx, `UPDATE `+FleetAccountsTable+` SET state = ?, finished = ?, last_success = ?, rows_written = ?, requests = ?, error_kind = ?, error_text = ?, result = ? WHERE pipeline = ? AND account = ?`,
		string(a.State), fmtTime(a.Finished), fmtTime(a.LastSuccess), a.Rows, a.Requests, string(a.ErrorKind), a.Error, string(result), pipeline, a.Account)
	if err != nil {
		return fmt.Errorf("record account %s of %s: %w", fleet.Label(a.Account), pipeline, err)
	}
	return nil
}

func (s *store) deleteFleetAccounts(ctx context.Context, pipeline string) error {
	_, err := s.exec(ctx, `DELETE FROM `+FleetAccountsTable+` WHERE pipeline = ?`, pipeline)
	return err
}

// isAccountJob reports whether id is the last job of a fleet account,
// whose log is kept under its id as a run's is.
func (s *store) isAccountJob(ctx context.Context, id int64) bool {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM `+FleetAccountsTable+` WHERE job_id = ?`, id).Scan(&n)
	return err == nil && n > 0
}

// Lag is LagSeconds for people: "never synced", or a rounded duration.
func (a *AccountStatus) Lag() string {
	if a.LagSeconds < 0 {
		return "never synced"
	}
	return (time.Duration(a.LagSeconds) * time.Second).String()
}
