package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Dropper = (*Destination)(nil)

// DropTables removes the tables' files and forgets their shapes
// (dest.Dropper); the state file is rewritten first, so a crash leaves at
// worst files no table names.
func (d *Destination) DropTables(ctx context.Context, tables []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	next := cloneState(d.st)
	for _, t := range tables {
		delete(next.Tables, t)
	}
	if err := d.saveState(next); err != nil {
		return fmt.Errorf("drop tables: %w", err)
	}
	d.st = next
	for _, t := range tables {
		delete(d.full, t)
		delete(d.versions, t)
		fs, err := d.files(t)
		if err != nil {
			return fmt.Errorf("drop table %s: %w", t, err)
		}
		for _, f := range fs {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("drop table %s: %w", t, err)
			}
		}
	}
	return nil
}

// DropPipeline forgets a pipeline's checkpoints and run records
// (dest.Dropper).
func (d *Destination) DropPipeline(ctx context.Context, pipeline string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errClosed
	}
	next := cloneState(d.st)
	delete(next.State, pipeline)
	err := d.saveState(next)
	if err == nil {
		d.st = next
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("drop pipeline %s: %w", pipeline, err)
	}
	d.runsMu.Lock()
	defer d.runsMu.Unlock()
	path := filepath.Join(d.dir, RunsFile)
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop pipeline %s: %w", pipeline, err)
	}
	var kept []byte
	for _, line := range bytes.SplitAfter(old, []byte("\n")) {
		var rec runRecord
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &rec) == nil && rec.Pipeline == pipeline {
			continue
		}
		kept = append(kept, line...)
	}
	if err := d.atomicWrite(path, kept); err != nil {
		return fmt.Errorf("drop pipeline %s: %w", pipeline, err)
	}
	return nil
}
