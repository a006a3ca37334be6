package sqldest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// RunRolledBack is the status of a run record whose changes a rollback
// undid.
const RunRolledBack = "rolled_back"

// Undo asks to undo the changes of some runs (Undo).
type Undo struct {
	// Runs are the runs whose logged changes are undone.
	Runs []string
	// Pipeline and Since, when set, also undo the pipeline's webhook
	// deliveries (dest.WebhookRun) logged since then: they changed the
	// replica between the runs.
	Pipeline string
	Since    time.Time
	// Record is the rollback's own run record, saved in the same
	// transaction; the rows it changes are logged under its ID.
	Record dest.Run
	// DryRun computes what would change and changes nothing.
	DryRun bool
}

// RowChange is one row (or checkpoint) an undo puts back.
type RowChange struct {
	Table string `json:"table"`
	ID    string `json:"id"`
	// Action is "restore" (the row's earlier values are written back),
	// "remove" (the row did not exist before: it is deleted) or
	// "recreate" (a removed row is written again).
	Action string `json:"action"`
	// Columns are the columns a restore changes.
	Columns []string `json:"columns,omitempty"`
}

// target is what one row must become: removed, or these values.
type target struct {
	table, pipeline, id string
	remove              bool
	vals                map[string]json.RawMessage
}

// fold computes, from change-log entries, what each row must become to
// be as it was before the earliest of them: entries are applied newest
// first, so the earliest one's previous values win.
func fold(entries []Entry) []*target {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq > entries[j].Seq })
	type key struct{ table, pipeline, id string }
	at := map[key]*target{}
	var out []*target
	for _, e := range entries {
		k := key{e.Table, "", e.ID}
		if e.Table == dest.StateTable {
			k.pipeline = e.Pipeline
		}
		t := at[k]
		if t == nil {
			t = &target{table: e.Table, pipeline: k.pipeline, id: e.ID, vals: map[string]json.RawMessage{}}
			at[k] = t
			out = append(out, t)
		}
		if e.Op == OpInsert {
			t.remove = true
			t.vals = map[string]json.RawMessage{}
			continue
		}
		t.remove = false
		var prev map[string]json.RawMessage
		if err := json.Unmarshal(e.Prev, &prev); err == nil {
			for c, v := range prev {
				t.vals[c] = v
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].table != out[j].table {
			return out[i].table < out[j].table
		}
		return out[i].id < out[j].id
	})
	return out
}

// decodeValue turns a logged value back into a value of its column's type.
func decodeValue(t catalog.Type, raw json.RawMessage) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch t {
	case catalog.TypeJSON:
		return json.RawMessage(slices.Clone(raw)), nil
	case catalog.TypeInteger:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, err
		}
		return n.Int64()
	case catalog.TypeNumber:
		var f float64
		err := json.Unmarshal(raw, &f)
		return f, err
	case catalog.TypeBoolean:
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw), nil
	}
	return s, nil
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// Undo puts every row and checkpoint the given runs changed back as it
// was before the earliest of those changes, logs what it changes under
// u.Record.ID, marks the runs rolled back in dest.RunsTable and saves
// u.Record: all in one transaction, so a crash leaves the replica either
// untouched or rolled back. The caller holds the pipeline's run lock.
func (db *DB) Undo(ctx context.Context, u Undo) ([]RowChange, error) {
	if err := db.check(ctx); err != nil {
		return nil, fmt.Errorf("roll back: %w", err)
	}
	if len(u.Runs) == 0 {
		return nil, nil
	}
	var changes []RowChange
	err := db.d.Write(ctx, func(tx Conn) error {
		changes = nil
		ph := "?" + strings.Repeat(", ?", len(u.Runs)-1)
		args := make([]any, len(u.Runs))
		for i, r := range u.Runs {
			args[i] = r
		}
		where, wargs := db.d.Quote("run")+" IN ("+ph+")", args
		if u.Pipeline != "" && !u.Since.IsZero() {
			where = "(" + where + " OR (" + db.d.Quote("pipeline") + " = ? AND " + db.d.Quote("changed_at") + " >= ?))"
			wargs = append(slices.Clone(args), u.Pipeline, u.Since.UnixMicro())
		}
		all, err := db.readEntries(ctx, tx, where, wargs)
		if err != nil {
			return fmt.Errorf("read the change log: %w", err)
		}
		entries := all[:0]
		for _, e := range all {
			if slices.Contains(u.Runs, e.Run) || strings.HasPrefix(e.Run, dest.WebhookRun) {
				entries = append(entries, e)
			}
		}
		changes, err = db.apply(ctx, tx, fold(entries), u.Record.ID, u.Record.Pipeline, nil)
		if err != nil {
			return err
		}
		q := "UPDATE " + db.d.Table(dest.RunsTable) + " SET " + db.d.Quote("status") + " = ? WHERE " + db.d.Quote("id") + " IN (" + ph + ")"
		if _, err := db.exec(ctx, tx, q, append([]any{RunRolledBack}, args...)...); err != nil {
			return fmt.Errorf("mark runs rolled back: %w", err)
		}
		if u.Record.ID != "" {
			if err := db.saveRun(ctx, tx, u.Record); err != nil {
				return err
			}
		}
		if u.DryRun {
			return errDryRun
		}
		return ctx.Err()
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("roll back: %w", db.wrap(err))
	}
	return changes, nil
}

// apply writes the targets inside tx: into the replica's tables, logging
// each change under run (Undo), or, with shadow set, into the shadow
// tables it names without logging (AsOf).
func (db *DB) apply(ctx context.Context, tx Conn, targets []*target, run, pipeline string, shadow map[string]string) ([]RowChange, error) {
	var out []RowChange
	var log []Entry
	now := time.Now()
	for start := 0; start < len(targets); {
		end := start
		for end < len(targets) && targets[end].table == targets[start].table {
			end++
		}
		group := targets[start:end]
		start = end
		table := group[0].table
		if table == dest.StateTable {
			if shadow != nil {
				continue
			}
			ch, entries, err := db.applyState(ctx, tx, group, run, now)
			if err != nil {
				return nil, err
			}
			out, log = append(out, ch...), append(log, entries...)
			continue
		}
		name := db.d.Table(table)
		if shadow != nil {
			if name = shadow[table]; name == "" {
				continue
			}
		}
		types, err := db.d.Columns(ctx, tx, table)
		if err != nil {
			return nil, err
		}
		if types == nil {
			continue // the table is gone
		}
		ids := make([]string, len(group))
		for i, t := range group {
			ids[i] = t.id
		}
		var cur map[string]map[string]any
		if shadow == nil {
			cur, err = db.currentRows(ctx, tx, table, types, ids)
		} else {
			cur, err = db.shadowRows(ctx, tx, name, types, ids)
		}
		if err != nil {
			return nil, err
		}
		for _, t := range group {
			row, exists := cur[t.id]
			e := Entry{Run: run, Pipeline: pipeline, Table: table, ID: t.id, ChangedAt: now}
			if synced, ok := row[dest.ColSyncedAt].(int64); ok {
				e.ValidFrom = time.Unix(synced, 0)
			}
			if t.remove {
				if !exists {
					continue
				}
				if _, err := db.exec(ctx, tx, "DELETE FROM "+name+" WHERE "+db.d.Quote("id")+" = ?", t.id); err != nil {
					return nil, fmt.Errorf("roll back %s %s: %w", table, t.id, err)
				}
				e.Op = OpRemove
				if e.Prev, err = encodePrev(row); err != nil {
					return nil, err
				}
				out = append(out, RowChange{Table: table, ID: t.id, Action: "remove"})
				log = append(log, e)
				continue
			}
			var cols []string
			var vals []any
			patch := map[string]any{}
			for _, c := range sortedKeys(t.vals) {
				typ, ok := types[c]
				if !ok || c == "id" {
					continue
				}
				v, err := decodeValue(typ, t.vals[c])
				if err != nil {
					return nil, fmt.Errorf("roll back %s %s: column %s: %w", table, t.id, c, err)
				}
				if exists && same(row[c], v) {
					continue
				}
				cols, vals = append(cols, c), append(vals, v)
				patch[c] = row[c]
			}
			if exists && len(cols) == 0 {
				continue
			}
			if exists {
				set := make([]string, len(cols))
				for i, c := range cols {
					set[i] = db.d.Quote(c) + " = ?"
				}
				q := "UPDATE " + name + " SET " + strings.Join(set, ", ") + " WHERE " + db.d.Quote("id") + " = ?"
				if _, err := db.exec(ctx, tx, q, append(vals, t.id)...); err != nil {
					return nil, fmt.Errorf("roll back %s %s: %w", table, t.id, err)
				}
				e.Op = OpUpdate
				if e.Prev, err = encodePrev(patch); err != nil {
					return nil, err
				}
				out = append(out, RowChange{Table: table, ID: t.id, Action: "restore", Columns: cols})
			} else {
				names := append([]string{"id"}, cols...)
				q := "INSERT INTO " + name + " (" + db.names(names) + ") VALUES (?" + strings.Repeat(", ?", len(cols)) + ")"
				if _, err := db.exec(ctx, tx, q, append([]any{t.id}, vals...)...); err != nil {
					return nil, fmt.Errorf("roll back %s %s: %w", table, t.id, err)
				}
				e.Op = OpInsert
				out = append(out, RowChange{Table: table, ID: t.id, Action: "recreate", Columns: cols})
			}
			log = append(log, e)
		}
	}
	if shadow == nil && run != "" {
		if err := db.logEntries(ctx, tx, log); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// applyState puts checkpoints back (Undo).
func (db *DB) applyState(ctx context.Context, tx Conn, group []*target, run string, now time.Time) ([]RowChange, []Entry, error) {
	var out []RowChange
	var log []Entry
	for _, t := range group {
		st := dest.State{Pipeline: t.pipeline, Stream: t.id}
		e, err := db.captureState(ctx, tx, dest.RunContext{ID: run}, st)
		if err != nil {
			return nil, nil, err
		}
		// captureState compared with an empty cursor; what matters is
		// whether a row is there and what it holds.
		exists := e == nil || e.Op != OpInsert
		var cur json.RawMessage
		if e != nil && e.Prev != nil {
			var p map[string]json.RawMessage
			_ = json.Unmarshal(e.Prev, &p)
			cur = p["cursor"]
		}
		entry := Entry{Run: run, Pipeline: t.pipeline, Table: dest.StateTable, ID: t.id, ChangedAt: now}
		if t.remove {
			if !exists {
				continue
			}
			q := "DELETE FROM " + db.d.Table(dest.StateTable) + " WHERE " + db.d.Quote("pipeline") + " = ? AND " + db.d.Quote("stream") + " = ?"
			if _, err := db.exec(ctx, tx, q, t.pipeline, t.id); err != nil {
				return nil, nil, fmt.Errorf("roll back the state of %s: %w", t.id, err)
			}
			entry.Op = OpRemove
			entry.Prev, _ = encodePrev(map[string]any{"cursor": cur})
			out = append(out, RowChange{Table: dest.StateTable, ID: t.id, Action: "remove"})
			log = append(log, entry)
			continue
		}
		want := t.vals["cursor"]
		if exists && same(cur, want) {
			continue
		}
		var c json.RawMessage
		if len(want) > 0 && string(want) != "null" {
			c = slices.Clone(want)
		}
		if err := db.upsertState(ctx, tx, dest.State{Pipeline: t.pipeline, Stream: t.id, Cursor: c}); err != nil {
			return nil, nil, err
		}
		entry.Op = OpUpdate
		if !exists {
			entry.Op = OpInsert
		} else {
			entry.Prev, _ = encodePrev(map[string]any{"cursor": cur})
		}
		out = append(out, RowChange{Table: dest.StateTable, ID: t.id, Action: "restore", Columns: []string{"cursor"}})
		log = append(log, entry)
	}
	return out, log, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// saveRun upserts a run record inside tx.
func (db *DB) saveRun(ctx context.Context, tx Conn, r dest.Run) error {
	var finished, streams any
	if !r.Finished.IsZero() {
		finished = db.d.Time(r.Finished)
	}
	if r.Streams != nil {
		streams = r.Streams
	}
	q := Insert(db.d, dest.RunsTable, runColumns, 1) + db.d.OnConflict(dest.RunsTable, []string{"id"}, runColumns[1:], "")
	if _, err := db.exec(ctx, tx, q, r.ID, r.Pipeline, db.d.Time(r.Started), finished, r.Status, streams, r.Error); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}
