package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/riverqueue/river/rivertype"

	"github.com/stripeline/stripeline/internal/dest"
)

// DeleteOptions say what deleting a pipeline removes besides its record.
type DeleteOptions struct {
	// DropTables drops the replica tables the pipeline wrote (a file
	// destination's files), its state and its run history in the
	// destination. Tables another pipeline of the store also writes on the
	// same destination are kept. Without it the replica stays as it is.
	DropTables bool
}

// DeleteReport says what a deletion removed and kept.
type DeleteReport struct {
	Pipeline string `json:"pipeline"`
	// Dropped are the tables dropped; Kept those left because other
	// pipelines write them too (by table: the pipelines).
	Dropped []string            `json:"dropped,omitempty"`
	Kept    map[string][]string `json:"kept,omitempty"`
	// Runs is how many run records went with the pipeline.
	Runs int `json:"runs"`
	// KeptTables is set when the replica was left as it is.
	KeptTables bool `json:"kept_tables"`
}

// ErrCannotDrop refuses to drop the tables of a pipeline whose destination
// does not implement dest.Dropper.
var ErrCannotDrop = errors.New("cannot drop tables")

// ErrRunning refuses to delete a pipeline while its run goes on.
var ErrRunning = errors.New("a run of the pipeline is going on")

// Delete removes a pipeline: its record, run history and logs, its queued
// runs, and (DropTables) what it wrote in its destination, never another
// pipeline's tables. It is refused while a run goes on: pause the pipeline
// and wait for the run, then delete.
func (s *Service) Delete(ctx context.Context, name string, opts DeleteOptions) (*DeleteReport, error) {
	rec, err := s.st.pipeline(ctx, name)
	if err != nil {
		return nil, err
	}
	runs, err := s.st.runs(ctx, RunFilter{Pipeline: name, Limit: 1 << 30})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Status == RunRunning {
			return nil, fmt.Errorf("delete pipeline %s: %w (run %d): pause the pipeline, wait for the run to end, then delete it", name, ErrRunning, r.ID)
		}
	}
	// No new run may start: pause first, then cancel what is queued.
	if err := s.st.setPaused(ctx, name, true, "", s.now()); err != nil {
		return nil, err
	}
	for _, r := range runs {
		if !r.Status.Finished() {
			if _, err := s.river.JobCancel(ctx, r.ID); err != nil && !isJobGone(err) {
				return nil, fmt.Errorf("cancel run %d of %s: %w", r.ID, name, err)
			}
		}
	}
	rep := &DeleteReport{Pipeline: name, Runs: len(runs), KeptTables: !opts.DropTables}
	if opts.DropTables {
		if err := s.dropTables(ctx, rec, rep); err != nil {
			return nil, err
		}
	}
	if err := s.st.deletePipeline(ctx, name); err != nil {
		return nil, err
	}
	if err := s.st.deleteFleetAccounts(ctx, name); err != nil {
		return nil, err
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return rep, nil
}

func isJobGone(err error) bool { return errors.Is(err, rivertype.ErrNotFound) }

// dropTables drops the pipeline's tables but those another pipeline of
// the store writes on the same destination.
func (s *Service) dropTables(ctx context.Context, rec *record, rep *DeleteReport) error {
	others, err := s.st.pipelines(ctx)
	if err != nil {
		return err
	}
	sharedBy := map[string][]string{}
	for _, o := range others {
		if o.p.Name == rec.p.Name || o.p.Dest != rec.p.Dest {
			continue
		}
		for _, t := range selectedStreams(&o.p) {
			sharedBy[t] = append(sharedBy[t], o.p.Name)
		}
	}
	var drop []string
	for _, t := range selectedStreams(&rec.p) {
		if by := sharedBy[t]; len(by) > 0 {
			if rep.Kept == nil {
				rep.Kept = map[string][]string{}
			}
			rep.Kept[t] = by
			continue
		}
		drop = append(drop, t)
	}
	sort.Strings(drop)
	d, err := dest.Open(ctx, rec.p.Dest)
	if err != nil {
		return fmt.Errorf("open the destination %s to drop the tables of %s: %w", rec.p.RedactedDest(), rec.p.Name, err)
	}
	defer d.Close()
	dr, ok := d.(dest.Dropper)
	if !ok {
		return fmt.Errorf("the destination %s %w: delete %s keeping its tables, and remove them by hand", rec.p.RedactedDest(), ErrCannotDrop, rec.p.Name)
	}
	if err := dr.DropTables(ctx, drop); err != nil {
		return fmt.Errorf("drop the tables of %s: %w", rec.p.Name, err)
	}
	if err := dr.DropPipeline(ctx, rec.p.Name); err != nil {
		return fmt.Errorf("drop the state of %s: %w", rec.p.Name, err)
	}
	rep.Dropped = drop
	return nil
}
