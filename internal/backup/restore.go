package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// RestoreOptions configures a restore into a replica.
type RestoreOptions struct {
	Into dest.Destination
	// Pipeline names the cursors saved; "" keeps the snapshot's pipeline.
	Pipeline string
	// Streams limits the restore; none restores every stream.
	Streams []string
	// BatchRows is the rows per write; 0 is 1000.
	BatchRows int
	// Now stamps _stripeline_synced_at; nil is time.Now.
	Now func() time.Time
	// Progress, when set, hears about every stream restored.
	Progress func(stream string, rows int64)
}

// RestoreResult counts what a restore wrote.
type RestoreResult struct {
	Pipeline string           `json:"pipeline"`
	Streams  map[string]int64 `json:"streams"`
	Rows     int64            `json:"rows"`
	Cursors  int              `json:"cursors"`
}

// RestoreInto writes the snapshot's rows into a destination (upserts by
// id, rows flagged deleted stay flagged) and then its cursors, so a sync
// of the pipeline goes on from where the snapshot stood. Idempotent: a
// second restore, or one re-run after a crash, leaves the same rows. The
// cursors are saved last, so a replica restored half-way has none and
// its next sync starts over rather than skipping what is missing. Rows of
// the destination that the snapshot does not hold are left as they are:
// restore into an empty destination for a copy of the snapshot.
func (s *Snapshot) RestoreInto(ctx context.Context, opt RestoreOptions) (*RestoreResult, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	if opt.BatchRows <= 0 {
		opt.BatchRows = 1000
	}
	pipeline := opt.Pipeline
	if pipeline == "" {
		pipeline = s.Manifest.Pipeline
	}
	streams := opt.Streams
	if len(streams) == 0 {
		streams = s.Streams()
	}
	res := &RestoreResult{Pipeline: pipeline, Streams: map[string]int64{}}
	for _, stream := range streams {
		if s.Manifest.Stream(stream) == nil {
			return res, fmt.Errorf("snapshot %s has no stream %s (it holds %v)", s.Manifest.ID, stream, s.Streams())
		}
		n, err := s.restoreStream(ctx, opt.Into, stream, opt.BatchRows, now)
		if err != nil {
			return res, fmt.Errorf("restore %s: %w", stream, err)
		}
		res.Streams[stream] = n
		res.Rows += n
		if opt.Progress != nil {
			opt.Progress(stream, n)
		}
	}
	var states []dest.State
	want := map[string]bool{}
	for _, st := range streams {
		want[st] = true
	}
	for stream, cur := range s.Manifest.Cursors {
		// The events cursor and other non-table cursors go with any
		// restore of every stream; a partial restore takes only its own.
		if len(opt.Streams) == 0 || want[stream] {
			states = append(states, dest.State{Pipeline: pipeline, Stream: stream, Cursor: cur})
		}
	}
	if len(states) > 0 {
		if err := opt.Into.SaveState(ctx, states...); err != nil {
			return res, fmt.Errorf("save the cursors: %w", err)
		}
	}
	res.Cursors = len(states)
	return res, nil
}

func (s *Snapshot) restoreStream(ctx context.Context, into dest.Destination, stream string, batchRows int, now func() time.Time) (int64, error) {
	all, err := s.Columns(stream)
	if err != nil {
		return 0, err
	}
	isBK := map[string]bool{}
	for _, c := range dest.Bookkeeping() {
		isBK[c.Name] = true
	}
	var cols []dest.Column
	for _, c := range all {
		if !isBK[c.Name] {
			cols = append(cols, c)
		}
	}
	table := dest.Table{Name: stream, Columns: cols}
	if err := into.Migrate(ctx, table); err != nil {
		return 0, err
	}
	if fr, ok := into.(dest.FullRefresher); ok {
		if err := fr.BeginFull(ctx, stream); err != nil {
			return 0, err
		}
	}
	var n int64
	batch := &dest.Batch{Table: table, SyncedAt: now()}
	flush := func() error {
		if len(batch.Rows) == 0 {
			return nil
		}
		if err := into.Write(ctx, batch); err != nil {
			return err
		}
		n += int64(len(batch.Rows))
		batch = &dest.Batch{Table: table, SyncedAt: now(), Account: batch.Account}
		return nil
	}
	for row, err := range s.Rows(ctx, stream) {
		if err != nil {
			return n, err
		}
		account, _ := row[dest.ColAccount].(string)
		if account != batch.Account || len(batch.Rows) >= batchRows {
			if err := flush(); err != nil {
				return n, err
			}
			batch.Account = account
		}
		r := dest.Row{Values: make([]any, len(cols))}
		r.ID, _ = row["id"].(string)
		for i, c := range cols {
			r.Values[i] = row[c.Name]
		}
		r.Deleted, _ = row[dest.ColDeleted].(bool)
		r.Version, _ = row[dest.ColVersion].(int64)
		batch.Rows = append(batch.Rows, r)
	}
	return n, flush()
}
