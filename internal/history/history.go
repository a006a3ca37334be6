// Package history is the replica's change history (DESIGN §10): the
// retention of the change log the SQL destinations keep in
// _stripeline_history (every row and checkpoint a run changed, as it was
// before), rollback of a run and of every run after it, and queries of the
// replica as it was at a moment (--as-of).
//
// The log itself is written by internal/dest/sqldest in the transaction of
// each write; this package reads it and acts on it through Log.
package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// Log is what a destination with a change log provides (sqldest.DB).
type Log interface {
	dest.Destination
	// Undo puts back what the runs changed, in one transaction (see
	// sqldest.DB.Undo).
	Undo(ctx context.Context, u sqldest.Undo) ([]sqldest.RowChange, error)
	// AsOf runs a read-only query on the replica as it was at a moment.
	AsOf(ctx context.Context, at time.Time, query string, args ...any) ([]string, [][]any, error)
	// History reads a pipeline's log entries (of some runs, or all).
	History(ctx context.Context, pipeline string, runs ...string) ([]sqldest.Entry, error)
	// PruneHistory deletes a pipeline's entries of some runs or older
	// than a time.
	PruneHistory(ctx context.Context, pipeline string, runs []string, before time.Time) (int64, error)
}

var _ Log = (*sqldest.DB)(nil)

// Defaults of Policy.
const (
	DefaultKeepDays = 30
	DefaultKeepRuns = 100
)

// Policy is a pipeline's history option (history: {mode, keep_runs,
// keep_days}).
type Policy struct {
	// Mode is changes (the default), full or off.
	Mode dest.HistoryMode `json:"mode,omitempty" yaml:"mode,omitempty"`
	// KeepRuns keeps the log of the pipeline's last N runs (0: the
	// default, DefaultKeepRuns; negative: no limit by count).
	KeepRuns int `json:"keep_runs,omitempty" yaml:"keep_runs,omitempty"`
	// KeepDays keeps the log of the last D days (0: the default,
	// DefaultKeepDays; negative: no limit by age).
	KeepDays int `json:"keep_days,omitempty" yaml:"keep_days,omitempty"`
}

// Validate checks the policy and names the setting at fault.
func (p Policy) Validate() error {
	switch p.Mode {
	case "", dest.HistoryChanges, dest.HistoryFull, dest.HistoryOff:
	default:
		return &SettingError{Field: "history.mode", Value: string(p.Mode), Err: errors.New("must be changes, full or off")}
	}
	return nil
}

// SettingError is a history setting with a bad value.
type SettingError struct {
	Field, Value string
	Err          error
}

func (e *SettingError) Error() string { return fmt.Sprintf("%s %q: %v", e.Field, e.Value, e.Err) }
func (e *SettingError) Unwrap() error { return e.Err }

// ParseMode reads a --history flag's value.
func ParseMode(s string) (dest.HistoryMode, error) {
	p := Policy{Mode: dest.HistoryMode(s)}
	if err := p.Validate(); err != nil {
		return "", err
	}
	return p.Mode, nil
}

// stateStream is the checkpoint under which Prune records how far the log
// was pruned (never logged itself, never rolled back).
const stateStream = "_history"

type horizon struct {
	// PrunedBefore: runs that started before it cannot be rolled back.
	PrunedBefore time.Time `json:"pruned_before"`
}

// Prune applies a pipeline's retention to the change log after a run:
// the entries of runs beyond KeepRuns and those older than KeepDays go
// (history mode full keeps everything). It returns how many it deleted.
func Prune(ctx context.Context, d dest.Destination, pipeline string, p Policy, now time.Time) (int64, error) {
	lg, ok := d.(Log)
	if !ok || p.Mode == dest.HistoryFull || p.Mode == dest.HistoryOff {
		return 0, nil
	}
	// Pruning is bookkeeping, not a change of the run's.
	ctx = dest.WithRun(ctx, dest.RunContext{History: dest.HistoryOff})
	keepRuns, keepDays := p.KeepRuns, p.KeepDays
	if keepRuns == 0 {
		keepRuns = DefaultKeepRuns
	}
	if keepDays == 0 {
		keepDays = DefaultKeepDays
	}
	var h horizon
	var before time.Time
	if keepDays > 0 {
		before = now.Add(-time.Duration(keepDays) * 24 * time.Hour)
		h.PrunedBefore = before
	}
	var old []string
	if keepRuns > 0 {
		runs, err := d.Runs(ctx, pipeline, 0)
		if err != nil {
			return 0, err
		}
		if len(runs) > keepRuns {
			if s := runs[keepRuns-1].Started; s.After(h.PrunedBefore) {
				h.PrunedBefore = s
			}
			for _, r := range runs[keepRuns:] {
				old = append(old, r.ID)
			}
		}
	}
	n, err := lg.PruneHistory(ctx, pipeline, old, before)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		cur, _ := json.Marshal(h)
		if err := d.SaveState(ctx, dest.State{Pipeline: pipeline, Stream: stateStream, Cursor: cur}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Sentinel errors of Rollback.
var (
	// ErrNoHistory: the destination keeps no change log (files).
	ErrNoHistory = errors.New("this destination keeps no change history: rollback and --as-of need a SQL destination (sqlite://, postgres://, mysql://)")
	// ErrNoRun: the run is not in the replica's run history.
	ErrNoRun = errors.New("no such run")
	// ErrPruned: the run's changes were pruned by the retention.
	ErrPruned = errors.New("the change history of the run was pruned")
)

// RollbackOptions adjust Rollback.
type RollbackOptions struct {
	// DryRun computes what would change and changes nothing.
	DryRun bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Result is what a rollback did (or, dry, would do).
type Result struct {
	// Run is the run rolled back; Pipeline its pipeline.
	Run      string `json:"run"`
	Pipeline string `json:"pipeline"`
	// ID is the rollback's own run record (empty for a dry run).
	ID string `json:"id,omitempty"`
	// Undone are the runs whose changes were undone: Run and every run
	// of the pipeline after it, oldest first.
	Undone []string `json:"undone"`
	// Changes are the rows and checkpoints put back.
	Changes []sqldest.RowChange `json:"changes"`
	DryRun  bool                `json:"dry_run,omitempty"`
	// Already is set when Run was rolled back before: nothing changed.
	Already bool `json:"already_rolled_back,omitempty"`
}

// Counts sums the changes per table and action.
func (r *Result) Counts() map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, c := range r.Changes {
		if out[c.Table] == nil {
			out[c.Table] = map[string]int{}
		}
		out[c.Table][c.Action]++
	}
	return out
}

// Rollback returns the replica's tables and the pipeline's cursors to
// their state before run, undoing it and every later run of its pipeline,
// marks those runs rolled back in the run history and records itself as
// a run (one transaction). It takes the pipeline's run lock without
// waiting: while a run holds it, the rollback is refused with a
// *dest.LockedError. Rolling back a run already rolled back changes
// nothing (Result.Already).
func Rollback(ctx context.Context, d dest.Destination, run string, opts RollbackOptions) (*Result, error) {
	lg, ok := d.(Log)
	if !ok {
		return nil, ErrNoHistory
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	target, err := findRun(ctx, d, "", run)
	if err != nil {
		return nil, err
	}
	res := &Result{Run: target.ID, Pipeline: target.Pipeline, DryRun: opts.DryRun}
	if target.Status == sqldest.RunRolledBack {
		res.Already = true
		return res, nil
	}
	id := newID(now())
	if l, ok := d.(dest.Locker); ok {
		host, _ := os.Hostname()
		lk, err := l.Lock(ctx, dest.LockRequest{Pipeline: target.Pipeline, Holder: dest.Holder{Pipeline: target.Pipeline, Host: host, PID: os.Getpid(), RunID: id, Since: now().UTC()}})
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Errorf("roll back run %s: %w", run, err)
		}
		if err == nil {
			defer lk.Unlock()
		}
	}
	// Under the lock: the runs as they are now.
	runs, err := d.Runs(ctx, target.Pipeline, 0)
	if err != nil {
		return nil, err
	}
	var undo []dest.Run
	for _, r := range runs {
		if r.ID == target.ID {
			target = r
		}
		if r.Started.After(target.Started) || (r.Started.Equal(target.Started) && r.ID >= target.ID) {
			undo = append(undo, r)
		}
	}
	if target.Status == sqldest.RunRolledBack {
		res.Already = true
		return res, nil
	}
	sort.Slice(undo, func(i, j int) bool {
		if !undo[i].Started.Equal(undo[j].Started) {
			return undo[i].Started.Before(undo[j].Started)
		}
		return undo[i].ID < undo[j].ID
	})
	state, err := d.LoadState(ctx, target.Pipeline)
	if err != nil {
		return nil, err
	}
	if raw := state[stateStream]; raw != nil {
		var h horizon
		if json.Unmarshal(raw, &h) == nil && target.Started.Before(h.PrunedBefore) {
			return nil, fmt.Errorf("roll back run %s: %w (the retention keeps the runs that started since %s; raise history.keep_runs or keep_days to keep more)",
				run, ErrPruned, h.PrunedBefore.UTC().Format(time.RFC3339))
		}
	}
	ids := make([]string, len(undo))
	for i, r := range undo {
		ids[i] = r.ID
	}
	res.Undone = ids
	t := now()
	note := fmt.Sprintf("rollback of run %s: undid %d run(s): %s", target.ID, len(ids), strings.Join(ids, ", "))
	streams, _ := json.Marshal(map[string]any{"streams": []any{}, "notes": []string{note}, "rollback_of": target.ID, "undone": ids})
	rec := dest.Run{ID: id, Pipeline: target.Pipeline, Started: t, Finished: t, Status: "succeeded", Streams: streams}
	changes, err := lg.Undo(ctx, sqldest.Undo{Runs: ids, Pipeline: target.Pipeline, Since: target.Started, Record: rec, DryRun: opts.DryRun})
	if err != nil {
		return nil, err
	}
	res.Changes = changes
	if !opts.DryRun {
		res.ID = id
	}
	return res, nil
}

// findRun finds a run record by id (in one pipeline, or any).
func findRun(ctx context.Context, d dest.Destination, pipeline, id string) (dest.Run, error) {
	runs, err := d.Runs(ctx, pipeline, 0)
	if err != nil {
		return dest.Run{}, err
	}
	for _, r := range runs {
		if r.ID == id {
			return r, nil
		}
	}
	return dest.Run{}, fmt.Errorf("run %s: %w in the replica's run history (list them with: stripeline runs)", id, ErrNoRun)
}

// newID returns a rollback's run id: sortable like a sync run's, marked.
func newID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-rb" + hex.EncodeToString(b[:])
}

// AsOf runs one SELECT on the replica as it was at a moment.
func AsOf(ctx context.Context, d dest.Destination, at time.Time, query string, args ...any) ([]string, [][]any, error) {
	lg, ok := d.(Log)
	if !ok {
		return nil, nil, ErrNoHistory
	}
	if !readOnly(query) {
		return nil, nil, errors.New("--as-of runs only a SELECT (or WITH … SELECT) statement")
	}
	return lg.AsOf(ctx, at, query, args...)
}

// readOnly reports whether a statement starts with SELECT or WITH and
// holds one statement.
func readOnly(q string) bool {
	s := strings.TrimSpace(q)
	for strings.HasPrefix(s, "--") {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = strings.TrimSpace(s[i+1:])
		} else {
			return false
		}
	}
	s = strings.TrimSuffix(strings.TrimSpace(s), ";")
	if strings.Contains(s, ";") {
		return false
	}
	u := strings.ToUpper(s)
	return strings.HasPrefix(u, "SELECT") || strings.HasPrefix(u, "WITH")
}
