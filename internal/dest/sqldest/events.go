package sqldest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.EventLog = (*DB)(nil)

// eventsTable is the bookkeeping table of applied events (dest.EventsTable).
func eventsTable() table {
	return table{dest.EventsTable, []column{
		{"pipeline", TypeKey, true}, {"id", TypeKey, true}, {"type", TypeKey, true}, {"created", catalog.TypeInteger, true},
		{"source", TypeKey, true}, {"received_ms", catalog.TypeInteger, true}, {"applied_ms", catalog.TypeInteger, true},
	}, []string{"pipeline", "id"}}
}

var eventColumns = []string{"pipeline", "id", "type", "created", "source", "received_ms", "applied_ms"}

// SyncCommitter is implemented by dialects whose row writes may commit
// without waiting for the write to be durable (PostgreSQL's asynchronous
// commit). SyncCommit makes the commit of the transaction tx wait: a batch
// that applies webhook deliveries is acknowledged (2xx) once Write
// returns, and Stripe will not send it again.
type SyncCommitter interface {
	SyncCommit(ctx context.Context, tx Conn) error
}

// recordEvents writes a batch's applied events inside tx; an event recorded
// already keeps its first record.
func (db *DB) recordEvents(ctx context.Context, tx Conn, events []dest.AppliedEvent) error {
	if sc, ok := db.d.(SyncCommitter); ok {
		for _, e := range events {
			if e.Source == dest.SourceWebhook {
				if err := sc.SyncCommit(ctx, tx); err != nil {
					return err
				}
				break
			}
		}
	}
	now := time.Now().UnixMilli()
	for start := 0; start < len(events); start += 100 {
		part := events[start:min(start+100, len(events))]
		q := Insert(db.d, dest.EventsTable, eventColumns, len(part)) +
			db.d.OnConflict(dest.EventsTable, []string{"pipeline", "id"}, []string{"pipeline"}, "")
		args := make([]any, 0, len(part)*len(eventColumns))
		for _, e := range part {
			received := now
			if !e.Received.IsZero() {
				received = e.Received.UnixMilli()
			}
			args = append(args, e.Pipeline, e.ID, e.Type, e.Created, e.Source, received, now)
		}
		if _, err := db.exec(ctx, tx, q, args...); err != nil {
			return fmt.Errorf("record applied events: %w", err)
		}
	}
	return nil
}

// AppliedEvents returns which of ids are recorded for pipeline
// (dest.EventLog).
func (db *DB) AppliedEvents(ctx context.Context, pipeline string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	for start := 0; start < len(ids); start += lookupChunk {
		part := ids[start:min(start+lookupChunk, len(ids))]
		args := []any{pipeline}
		for _, id := range part {
			args = append(args, id)
		}
		q := "SELECT " + db.names([]string{"id", "source"}) + " FROM " + db.d.Table(dest.EventsTable) +
			" WHERE " + db.d.Quote("pipeline") + " = ? AND " + db.d.Quote("id") + " IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		err := db.d.Read(ctx, func(c Conn) error {
			return db.scan(ctx, c, q, args, func(v []any) {
				id, _ := v[0].(string)
				src, _ := v[1].(string)
				out[id] = src
			})
		})
		if err != nil {
			return nil, fmt.Errorf("read applied events: %w", db.wrap(err))
		}
	}
	return out, nil
}

// Versions returns the stored versions of rows by id (dest.EventLog).
func (db *DB) Versions(ctx context.Context, tbl string, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	db.ddlMu.Lock()
	_, known := db.tables[tbl]
	db.ddlMu.Unlock()
	if !known {
		// Not migrated by this process: it may not exist.
		var have []string
		if err := db.d.Read(ctx, func(c Conn) (err error) {
			have, err = db.d.Tables(ctx, c)
			return err
		}); err != nil {
			return nil, fmt.Errorf("versions of %s: %w", tbl, err)
		}
		found := false
		for _, h := range have {
			found = found || h == tbl
		}
		if !found {
			return out, nil
		}
	}
	for start := 0; start < len(ids); start += lookupChunk {
		part := ids[start:min(start+lookupChunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := "SELECT " + db.names([]string{"id", dest.ColVersion}) + " FROM " + db.d.Table(tbl) +
			" WHERE " + db.d.Quote("id") + " IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		err := db.d.Read(ctx, func(c Conn) error {
			return db.scan(ctx, c, q, args, func(v []any) {
				id, _ := v[0].(string)
				out[id] = toInt(v[1])
			})
		})
		if err != nil {
			return nil, fmt.Errorf("versions of %s: %w", tbl, db.wrap(err))
		}
	}
	return out, nil
}

// EventStats summarises a pipeline's applied events by source
// (dest.EventLog).
func (db *DB) EventStats(ctx context.Context, pipeline string) ([]dest.EventStat, error) {
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	t, p, src := db.d.Table(dest.EventsTable), db.d.Quote("pipeline"), db.d.Quote("source")
	q := "SELECT " + src + ", COUNT(*), MAX(" + db.d.Quote("created") + "), MAX(" + db.d.Quote("applied_ms") + ") FROM " + t +
		" WHERE " + p + " = ? GROUP BY " + src + " ORDER BY " + src
	lag := "SELECT COUNT(*), SUM(" + db.d.Quote("applied_ms") + " - " + db.d.Quote("created") + " * 1000) FROM " + t +
		" WHERE " + p + " = ? AND " + src + " = ? AND " + db.d.Quote("applied_ms") + " > ?"
	var out []dest.EventStat
	err := db.d.Read(ctx, func(c Conn) error {
		if err := db.scan(ctx, c, q, []any{pipeline}, func(v []any) {
			s, _ := v[0].(string)
			st := dest.EventStat{Source: s, Count: toInt(v[1]), LastCreated: toInt(v[2])}
			if ms := toInt(v[3]); ms > 0 {
				st.LastApplied = time.UnixMilli(ms).UTC()
			}
			out = append(out, st)
		}); err != nil {
			return err
		}
		for i := range out {
			if out[i].Source != dest.SourceWebhook {
				continue
			}
			since := time.Now().Add(-time.Hour).UnixMilli()
			if err := db.scan(ctx, c, lag, []any{pipeline, dest.SourceWebhook, since}, func(v []any) {
				if n := toInt(v[0]); n > 0 {
					out[i].LagMillis = float64(toInt(v[1])) / float64(n)
				}
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read applied events of %s: %w", pipeline, db.wrap(err))
	}
	return out, nil
}

// ForgetEvents deletes old records of a pipeline (dest.EventLog).
func (db *DB) ForgetEvents(ctx context.Context, pipeline string, before int64) (int64, error) {
	if err := db.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := db.d.Write(ctx, func(tx Conn) (err error) {
		n, err = db.exec(ctx, tx, "DELETE FROM "+db.d.Table(dest.EventsTable)+" WHERE "+db.d.Quote("pipeline")+" = ? AND "+db.d.Quote("created")+" < ?", pipeline, before)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("forget applied events of %s: %w", pipeline, err)
	}
	return n, nil
}

// toInt reads an integer a driver returned in any of its shapes (MySQL
// sends aggregates as text, PostgreSQL's SUM is numeric).
func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint64:
		return int64(x)
	case float64:
		return int64(x)
	case []byte:
		return parseInt(string(x))
	case string:
		return parseInt(x)
	case fmt.Stringer:
		return parseInt(x.String())
	}
	return 0
}

func parseInt(s string) int64 {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f)
}
