package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// runRecord is one line of _stripeline_runs.jsonl; later lines of the same
// id replace earlier ones.
type runRecord struct {
	ID       string          `json:"id"`
	Pipeline string          `json:"pipeline"`
	Started  time.Time       `json:"started"`
	Finished *time.Time      `json:"finished,omitempty"`
	Status   string          `json:"status"`
	Streams  json.RawMessage `json:"streams,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// SaveRun appends the run record to _stripeline_runs.jsonl (the file is
// rewritten atomically).
func (d *Destination) SaveRun(ctx context.Context, r dest.Run) error {
	if d.isClosed() {
		return fmt.Errorf("save run %s: %w", r.ID, errClosed)
	}
	d.runsMu.Lock()
	defer d.runsMu.Unlock()
	path := filepath.Join(d.dir, RunsFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	rec := runRecord{ID: r.ID, Pipeline: r.Pipeline, Started: r.Started.UTC(), Status: r.Status, Streams: r.Streams, Error: r.Error}
	if !r.Finished.IsZero() {
		f := r.Finished.UTC()
		rec.Finished = &f
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	data := append(old, append(line, '\n')...)
	if err := d.atomicWrite(path, data); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// Runs lists the most recent runs, newest first.
func (d *Destination) Runs(ctx context.Context, pipeline string, limit int) ([]dest.Run, error) {
	if d.isClosed() {
		return nil, fmt.Errorf("list runs: %w", errClosed)
	}
	d.runsMu.Lock()
	b, err := os.ReadFile(filepath.Join(d.dir, RunsFile))
	d.runsMu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	byID := map[string]dest.Run{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec runRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("list runs: %s: %w", RunsFile, err)
		}
		r := dest.Run{ID: rec.ID, Pipeline: rec.Pipeline, Started: rec.Started, Status: rec.Status, Streams: rec.Streams, Error: rec.Error}
		if rec.Finished != nil {
			r.Finished = *rec.Finished
		}
		byID[r.ID] = r
	}
	var out []dest.Run
	for _, r := range byID {
		if pipeline == "" || r.Pipeline == pipeline {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// isClosed reports whether Close was called.
func (d *Destination) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}
