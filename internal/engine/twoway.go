package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// ColWritten is the bookkeeping column of a two-way table (Options.TwoWay):
// a JSON object of the two-way fields' values as the engine last wrote
// them. Every write path fills it in the same upsert as the row itself
// (the one row conversion, table.row), so an UPDATE by the user changes
// the field's column but not its remembered value: the difference is the
// database's change since the last write.
const ColWritten = "_stripeline_written"

// ErrRowsRejected is wrapped by a Pusher's error when Stripe (or the
// request schema) rejected some rows but the others went on: the run still
// pulls, then ends failed with that error.
var ErrRowsRejected = errors.New("rows rejected")

// Pusher writes the database's changes back to Stripe (two-way sync). The
// engine calls Push once per run, under the pipeline's run lock, after
// the tables are migrated and before the pull, so the pull reads back what
// the push wrote.
type Pusher interface {
	// Push sends the changes and returns a report kept in the run record
	// (Result.TwoWay, "two_way" in the run's streams JSON). An error
	// wrapping ErrRowsRejected lets the pull go on; any other stops the
	// run.
	Push(ctx context.Context, run *PushRun) (report any, err error)
}

// PushRun is what a Pusher gets of the run it is part of.
type PushRun struct {
	RunID    string
	Pipeline string
	Account  string
	Started  time.Time
	// EventsSince is the created time of the saved events cursor (what the
	// last pull has applied), 0 when no run has saved one.
	EventsSince int64
	// State is the pipeline's saved state (Destination.LoadState).
	State map[string]json.RawMessage
	r     *runner
}

// WriteObjects writes Stripe objects of a stream (the answers of the
// push's writes) through the same row conversion as every other write, so
// their remembered two-way values are what Stripe now holds.
func (p *PushRun) WriteObjects(ctx context.Context, stream string, objs []json.RawMessage) error {
	t, ok := p.r.tables[stream]
	if !ok {
		return fmt.Errorf("write %s: not a stream of this run", stream)
	}
	rows := make([]dest.Row, 0, len(objs))
	version := p.r.now().Unix() * 1_000_000
	for _, o := range objs {
		row, err := t.row(ctx, o, "", false)
		if err != nil {
			return fmt.Errorf("write %s: %w", stream, err)
		}
		row.Version = version
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil
	}
	return p.r.opts.Dest.Write(ctx, &dest.Batch{Table: t.shape(), Rows: pad(rows, t), Account: p.r.opts.Account, SyncedAt: p.r.writeTime()})
}

// WriteDeleted flags rows of a stream deleted (objects the push deleted).
func (p *PushRun) WriteDeleted(ctx context.Context, stream string, ids []string) error {
	t, ok := p.r.tables[stream]
	if !ok {
		return fmt.Errorf("write %s: not a stream of this run", stream)
	}
	rows := make([]dest.Row, len(ids))
	for i, id := range ids {
		rows[i] = dest.Row{ID: id, Deleted: true}
	}
	if len(rows) == 0 {
		return nil
	}
	return p.r.opts.Dest.Write(ctx, &dest.Batch{Table: t.shape(), Rows: rows, Account: p.r.opts.Account, SyncedAt: p.r.writeTime()})
}

// validateTwoWay checks Options.TwoWay against the catalog and the field
// selection.
func (o *Options) validateTwoWay() error {
	for name, fields := range o.TwoWay {
		s, ok := catalog.Lookup(name)
		if !ok {
			return settingErr("two_way", "unknown stream %q (see the catalog: stripeline streams)", name)
		}
		cols := map[string]bool{}
		for _, c := range s.Columns {
			cols[c.Name] = true
		}
		sel := map[string]bool{}
		for _, f := range o.Fields[name] {
			sel[f] = true
		}
		for _, f := range fields {
			if !cols[f] {
				return settingErr("two_way", "%s has no field %q", name, f)
			}
			if len(sel) > 0 && !sel[f] {
				return settingErr("two_way", "%s.%s is two-way but not among the stream's selected fields: add it to the fields of %s", name, f, name)
			}
		}
	}
	return nil
}

// setTwoWay makes t a two-way table remembering fields in ColWritten.
func (t *table) setTwoWay(fields []string) {
	if len(fields) == 0 {
		return
	}
	t.written = nil
	for _, f := range fields {
		if i, ok := t.index[f]; ok {
			t.written = append(t.written, i)
		}
	}
	if _, ok := t.index[ColWritten]; !ok {
		t.add(ColWritten, catalog.TypeJSON)
	}
}

// writtenValue is the ColWritten value of a row's values; the caller holds
// t.mu (read).
func (t *table) writtenValue(values []any) json.RawMessage {
	m := make(map[string]any, len(t.written))
	for _, i := range t.written {
		m[t.columns[i].Name] = values[i]
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil // an invalid JSON value: nothing remembered, nothing pushed
	}
	return b
}

// push runs the Pusher under the run lock, before the pull.
func (r *runner) push(ctx context.Context, saved map[string]json.RawMessage) error {
	for name := range r.opts.TwoWay {
		if _, ok := r.tables[name]; !ok {
			return settingErr("two_way", "stream %s is two-way but not among the streams this run syncs: add it to the streams", name)
		}
	}
	var cur eventsCursor
	if err := decodeState(saved[eventsKey], &cur); err != nil {
		return fmt.Errorf("events cursor: %w", err)
	}
	run := &PushRun{RunID: r.res.RunID, Pipeline: r.opts.Pipeline, Account: r.opts.Account, Started: r.res.Started,
		EventsSince: cur.Created, State: saved, r: r}
	report, err := r.opts.Push.Push(ctx, run)
	r.res.TwoWay = report
	return err
}
