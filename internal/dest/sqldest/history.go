package sqldest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// The change log (dest.HistoryTable) holds one entry per row a logged
// write really changed: the run it belongs to, a sequence number that
// orders the entries, the table and id, what the write did (op), the
// previous values as a JSON object of column → value (NULL for an insert:
// there was no row), when it changed (unix microseconds, also the end of
// the previous version's validity) and when the previous version was
// written (valid_from). Checkpoints are logged the same way, under the
// table _stripeline_state with the stream as the id. The entries are
// written in the transaction of the write they describe.

// Change-log operations.
const (
	OpInsert = "insert" // the row did not exist; prev is NULL
	OpUpdate = "update" // prev holds the changed columns (every column in history mode full)
	OpDelete = "delete" // the row was flagged deleted; prev as for an update
	OpRemove = "remove" // the row was removed (by a rollback); prev holds the whole row
)

// historyColumns are the columns of dest.HistoryTable, in entry order.
var historyColumns = []string{"run", "seq", "pipeline", "table_name", "row_id", "op", "prev", "changed_at", "valid_from"}

// Entry is one change-log entry.
type Entry struct {
	Run      string
	Seq      int64
	Pipeline string
	Table    string
	ID       string
	Op       string
	// Prev is the previous values (nil for an insert).
	Prev json.RawMessage
	// ChangedAt is when the change was written; ValidFrom when the
	// previous version was (zero for an insert).
	ChangedAt time.Time
	ValidFrom time.Time
}

// lastSeq orders change-log entries of this process: nanoseconds of the
// wall clock, never the same twice.
var lastSeq atomic.Int64

func nextSeq() int64 {
	now := time.Now().UnixNano()
	for {
		l := lastSeq.Load()
		n := max(now, l+1)
		if lastSeq.CompareAndSwap(l, n) {
			return n
		}
	}
}

// logRun resolves the run a write is logged under: the explicit id, else
// the context's run; false when the write is not logged.
func logRun(ctx context.Context, explicit, pipeline string) (dest.RunContext, bool) {
	rc, ok := dest.RunOf(ctx)
	if explicit != "" {
		rc.ID, ok = explicit, true
	}
	if !ok || rc.ID == "" || rc.History == dest.HistoryOff {
		return rc, false
	}
	if rc.Pipeline == "" {
		rc.Pipeline = pipeline
	}
	return rc, true
}

// columnTypes returns the known column types of a table (ensure filled
// them), or reads them on c.
func (db *DB) columnTypes(ctx context.Context, c Conn, table string) (map[string]catalog.Type, error) {
	db.ddlMu.Lock()
	cols := db.tables[table]
	out := make(map[string]catalog.Type, len(cols))
	for k, v := range cols {
		out[k] = v
	}
	db.ddlMu.Unlock()
	if len(out) > 0 {
		return out, nil
	}
	return db.d.Columns(ctx, c, table)
}

// currentRows reads the stored rows of ids in table on c, typed by their
// columns: id → column → value.
func (db *DB) currentRows(ctx context.Context, c Conn, table string, types map[string]catalog.Type, ids []string) (map[string]map[string]any, error) {
	return db.shadowRows(ctx, c, db.d.Table(table), types, ids)
}

// shadowRows reads the rows of ids from a table named as statements name
// it (a replica table, or its temporary copy).
func (db *DB) shadowRows(ctx context.Context, c Conn, name string, types map[string]catalog.Type, ids []string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for start := 0; start < len(ids); start += lookupChunk {
		part := ids[start:min(start+lookupChunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := "SELECT * FROM " + name + " WHERE " + db.d.Quote("id") + " IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		rows, err := c.Query(ctx, db.d.Rebind(q), args...)
		if err != nil {
			return nil, err
		}
		cols := rows.Columns()
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, err
			}
			m := make(map[string]any, len(cols))
			for i, name := range cols {
				m[name] = Typed(types[name], v[i])
			}
			id, _ := m["id"].(string)
			out[id] = m
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// capture reads the stored rows the sets will change and returns the
// change-log entries of the rows the write really changes, and the ids
// the table holds (for the bulk path).
func (db *DB) capture(ctx context.Context, tx Conn, rc dest.RunContext, sets ...*RowSet) ([]Entry, map[string]bool, error) {
	var table string
	var ids []string
	for _, s := range sets {
		table = s.Table
		for _, r := range s.Rows {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil, map[string]bool{}, nil
	}
	types, err := db.columnTypes(ctx, tx, table)
	if err != nil {
		return nil, nil, err
	}
	old, err := db.currentRows(ctx, tx, table, types, ids)
	if err != nil {
		return nil, nil, err
	}
	exists := make(map[string]bool, len(old))
	for id := range old {
		exists[id] = true
	}
	now := time.Now()
	var out []Entry
	var args []any
	for _, s := range sets {
		names := s.Names()
		for i := range s.Rows {
			r := &s.Rows[i]
			e := Entry{Run: rc.ID, Pipeline: rc.Pipeline, Table: table, ID: r.ID, ChangedAt: now}
			prev, ok := old[r.ID]
			if !ok {
				e.Op = OpInsert
				out = append(out, e)
				continue
			}
			if s.OnlyNewer {
				if v, _ := prev[dest.ColVersion].(int64); v >= r.Version {
					continue // the upsert leaves it alone
				}
			}
			args = s.Args(args[:0], i)
			patch := map[string]any{}
			for k, name := range names {
				if !same(prev[name], args[k]) {
					patch[name] = prev[name]
				}
			}
			if len(patch) == 0 {
				continue
			}
			if rc.History == dest.HistoryFull {
				patch = prev
			}
			e.Op = OpUpdate
			if del, _ := prev[dest.ColDeleted].(bool); r.Deleted && !del {
				e.Op = OpDelete
			}
			if e.Prev, err = encodePrev(patch); err != nil {
				return nil, nil, fmt.Errorf("history of %s %s: %w", table, r.ID, err)
			}
			if synced, ok := prev[dest.ColSyncedAt].(int64); ok {
				e.ValidFrom = time.Unix(synced, 0)
			}
			out = append(out, e)
		}
	}
	return out, exists, nil
}

// same reports whether a stored value and a value to write are equal.
// JSON is compared as text: SQLite and MySQL keep the text as written, so
// the same object with its keys in another order is a change to log (on
// PostgreSQL, whose jsonb normalises the text, every JSON value written
// is then logged, at the cost of a few bytes).
func same(a, b any) bool {
	ra, oka := a.(json.RawMessage)
	rb, okb := b.(json.RawMessage)
	if oka || okb {
		if !oka || !okb {
			return (a == nil || oka && ra == nil) && (b == nil || okb && rb == nil)
		}
		return bytes.Equal(ra, rb)
	}
	return a == b
}

// logEntries writes change-log entries inside tx, numbering them.
func (db *DB) logEntries(ctx context.Context, tx Conn, entries []Entry) error {
	const chunk = 500
	for start := 0; start < len(entries); start += chunk {
		part := entries[start:min(start+chunk, len(entries))]
		args := make([]any, 0, len(part)*len(historyColumns))
		for i := range part {
			e := &part[i]
			if e.Seq == 0 {
				e.Seq = nextSeq()
			}
			var prev, from any
			if e.Prev != nil {
				prev = e.Prev
			}
			if !e.ValidFrom.IsZero() {
				from = e.ValidFrom.UnixMicro()
			}
			args = append(args, e.Run, e.Seq, e.Pipeline, e.Table, e.ID, e.Op, prev, e.ChangedAt.UnixMicro(), from)
		}
		if _, err := db.exec(ctx, tx, Insert(db.d, dest.HistoryTable, historyColumns, len(part)), args...); err != nil {
			return fmt.Errorf("write the change log: %w", err)
		}
	}
	return nil
}

// captureState returns the change-log entry of a checkpoint about to be
// saved, or nil when it changes nothing.
func (db *DB) captureState(ctx context.Context, tx Conn, rc dest.RunContext, st dest.State) (*Entry, error) {
	q := "SELECT " + db.d.Quote("cursor") + " FROM " + db.d.Table(dest.StateTable) + " WHERE " + db.d.Quote("pipeline") + " = ? AND " + db.d.Quote("stream") + " = ?"
	found := false
	var cur json.RawMessage
	if err := db.scan(ctx, tx, q, []any{st.Pipeline, st.Stream}, func(v []any) {
		found = true
		cur = rawJSON(plain(v[0]))
	}); err != nil {
		return nil, fmt.Errorf("read state of %s: %w", st.Stream, err)
	}
	e := &Entry{Run: rc.ID, Pipeline: st.Pipeline, Table: dest.StateTable, ID: st.Stream, ChangedAt: time.Now()}
	if !found {
		e.Op = OpInsert
		return e, nil
	}
	if same(cur, st.Cursor) {
		return nil, nil
	}
	var err error
	e.Op = OpUpdate
	e.Prev, err = encodePrev(map[string]any{"cursor": cur})
	return e, err
}

// readEntries reads the change-log entries that match a condition on c.
func (db *DB) readEntries(ctx context.Context, c Conn, where string, args []any) ([]Entry, error) {
	q := "SELECT " + db.names(historyColumns) + " FROM " + db.d.Table(dest.HistoryTable)
	if where != "" {
		q += " WHERE " + where
	}
	var out []Entry
	err := db.scan(ctx, c, q, args, func(v []any) {
		var e Entry
		e.Run, _ = v[0].(string)
		e.Seq = toInt(v[1])
		e.Pipeline, _ = v[2].(string)
		e.Table, _ = v[3].(string)
		e.ID, _ = v[4].(string)
		e.Op, _ = v[5].(string)
		e.Prev = rawJSON(plain(v[6]))
		e.ChangedAt = time.UnixMicro(toInt(v[7]))
		if v[8] != nil {
			e.ValidFrom = time.UnixMicro(toInt(v[8]))
		}
		out = append(out, e)
	})
	return out, err
}

// sortBySeq orders entries as they were written.
func sortBySeq(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
}

// encodePrev encodes previous values as a JSON object, keys sorted: a
// JSON column's text goes in as it is stored (not compacted or escaped
// again, so a rollback writes back the very same text), every other value
// as JSON without HTML escaping.
func encodePrev(m map[string]any) (json.RawMessage, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		switch v := m[k].(type) {
		case json.RawMessage:
			if len(v) == 0 {
				b.WriteString("null")
			} else {
				b.Write(v)
			}
		default:
			if err := enc.Encode(v); err != nil {
				return nil, fmt.Errorf("column %s: %w", k, err)
			}
			b.Truncate(b.Len() - 1)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
