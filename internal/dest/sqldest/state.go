package sqldest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// saveState upserts one checkpoint inside tx, logging the cursor it
// replaces when it belongs to a run (State.Run or the context's).
func (db *DB) saveState(ctx context.Context, tx Conn, st dest.State) error {
	if rc, ok := logRun(ctx, st.Run, st.Pipeline); ok {
		e, err := db.captureState(ctx, tx, rc, st)
		if err != nil {
			return err
		}
		if e != nil {
			if err := db.logEntries(ctx, tx, []Entry{*e}); err != nil {
				return err
			}
		}
	}
	return db.upsertState(ctx, tx, st)
}

// upsertState upserts one checkpoint inside tx without logging it.
func (db *DB) upsertState(ctx context.Context, tx Conn, st dest.State) error {
	var cursor any
	if st.Cursor != nil {
		cursor = st.Cursor
	}
	q := Insert(db.d, dest.StateTable, []string{"pipeline", "stream", "cursor", "updated_at"}, 1) +
		db.d.OnConflict(dest.StateTable, []string{"pipeline", "stream"}, []string{"cursor", "updated_at"}, "")
	if _, err := db.exec(ctx, tx, q, st.Pipeline, st.Stream, cursor, db.d.Time(time.Now())); err != nil {
		return fmt.Errorf("save state of %s: %w", st.Stream, err)
	}
	return nil
}

// SaveState saves checkpoints without rows in one transaction
// (dest.Destination).
func (db *DB) SaveState(ctx context.Context, states ...dest.State) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return db.d.Write(ctx, func(tx Conn) error {
		for _, st := range states {
			if err := db.saveState(ctx, tx, st); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

// LoadState returns the saved cursors of a pipeline by stream
// (dest.Destination).
func (db *DB) LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error) {
	if err := db.check(ctx); err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	out := map[string]json.RawMessage{}
	q := "SELECT " + db.names([]string{"stream", "cursor"}) + " FROM " + db.d.Table(dest.StateTable) + " WHERE " + db.d.Quote("pipeline") + " = ?"
	err := db.d.Read(ctx, func(c Conn) error {
		return db.scan(ctx, c, q, []any{pipeline}, func(v []any) {
			stream, _ := v[0].(string)
			out[stream] = rawJSON(v[1])
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	return out, nil
}

// rawJSON is a JSON column's text as json.RawMessage (nil for NULL).
func rawJSON(v any) json.RawMessage {
	switch x := v.(type) {
	case string:
		return json.RawMessage(x)
	case []byte:
		return json.RawMessage(x)
	case json.RawMessage:
		return x
	}
	return nil
}

// runColumns are the columns of dest.RunsTable, in the order of runArgs.
var runColumns = []string{"id", "pipeline", "started", "finished", "status", "streams", "error"}

// SaveRun inserts or updates a run record by id (dest.Destination).
func (db *DB) SaveRun(ctx context.Context, r dest.Run) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	var finished, streams any
	if !r.Finished.IsZero() {
		finished = db.d.Time(r.Finished)
	}
	if r.Streams != nil {
		streams = r.Streams
	}
	q := Insert(db.d, dest.RunsTable, runColumns, 1) + db.d.OnConflict(dest.RunsTable, []string{"id"}, runColumns[1:], "")
	err := db.d.Write(ctx, func(tx Conn) error {
		_, err := db.exec(ctx, tx, q, r.ID, r.Pipeline, db.d.Time(r.Started), finished, r.Status, streams, r.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// Runs lists the most recent runs of a pipeline ("" for all), newest first
// (dest.Destination).
func (db *DB) Runs(ctx context.Context, pipeline string, limit int) ([]dest.Run, error) {
	if err := db.check(ctx); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	q := "SELECT " + db.names(runColumns) + " FROM " + db.d.Table(dest.RunsTable)
	var args []any
	if pipeline != "" {
		q += " WHERE " + db.d.Quote("pipeline") + " = ?"
		args = append(args, pipeline)
	}
	q += " ORDER BY " + db.d.Quote("started") + " DESC, " + db.d.Quote("id") + " DESC"
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	var out []dest.Run
	var perr error
	err := db.d.Read(ctx, func(c Conn) error {
		return db.scan(ctx, c, q, args, func(v []any) {
			r, err := db.run(v)
			if err != nil && perr == nil {
				perr = err
			}
			out = append(out, r)
		})
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// run reads one row of runColumns.
func (db *DB) run(v []any) (dest.Run, error) {
	var r dest.Run
	r.ID, _ = v[0].(string)
	r.Pipeline, _ = v[1].(string)
	var err error
	if r.Started, err = db.d.ParseTime(v[2]); err != nil {
		return r, fmt.Errorf("run %s: started: %w", r.ID, err)
	}
	if v[3] != nil {
		if r.Finished, err = db.d.ParseTime(v[3]); err != nil {
			return r, fmt.Errorf("run %s: finished: %w", r.ID, err)
		}
	}
	r.Status, _ = v[4].(string)
	r.Streams = rawJSON(v[5])
	r.Error, _ = v[6].(string)
	return r, nil
}
