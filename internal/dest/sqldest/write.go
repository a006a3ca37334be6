package sqldest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// retries is how often a batch is written again after an error of Kind
// KindRetry.
const retries = 3

// lookupChunk is how many ids one lookup of existing ids asks for.
const lookupChunk = 1000

// retried counts batches written again after a KindRetry error (tests).
var retried atomic.Int64

// Retried reports how many batches were written again after an error of
// Kind KindRetry, in this process.
func Retried() int64 { return retried.Load() }

// Write upserts the batch's rows and saves its state in one transaction
// (dest.Destination). With a BulkInserter, the ids the table lacks go
// through InsertNew; should that conflict with another writer, or the
// database roll the transaction back as a whole (a deadlock), the batch
// is written again without it, up to three times.
func (db *DB) Write(ctx context.Context, b *dest.Batch) error {
	if err := db.write(ctx, b); err != nil {
		return fmt.Errorf("write %s: %w", b.Table.Name, err)
	}
	return nil
}

func (db *DB) write(ctx context.Context, b *dest.Batch) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	m, err := b.Merge()
	if err != nil {
		return err
	}
	if err := db.ensure(ctx, b.Table); err != nil {
		return err
	}
	synced := b.SyncedAt
	if synced.IsZero() {
		synced = time.Now()
	}
	rows := &RowSet{Table: b.Table.Name, Columns: b.Table.Columns, Rows: m.Rows, SyncedAt: synced.Unix(), Account: b.Account, OnlyNewer: b.OnlyNewer}
	stubs := &RowSet{Table: b.Table.Name, Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}}, Rows: m.Stubs,
		SyncedAt: rows.SyncedAt, Account: b.Account, OnlyNewer: b.OnlyNewer}
	for i := range stubs.Rows {
		stubs.Rows[i].Values = []any{stubs.Rows[i].ID}
	}
	bulk, _ := db.d.(BulkInserter)
	pipeline := ""
	if b.State != nil {
		pipeline = b.State.Pipeline
	}
	rc, logged := logRun(ctx, b.Run, pipeline)
	if !logged {
		rc = dest.RunContext{}
	}
	for try := 0; ; try++ {
		err = db.d.Write(ctx, func(tx Conn) error { return db.writeTx(ctx, tx, bulk, rc, rows, stubs, b.State, b.Events) })
		if err == nil || try == retries || ctx.Err() != nil || db.d.Kind(err) != KindRetry {
			return db.wrap(err)
		}
		retried.Add(1)
		bulk = nil
	}
}

// writeTx writes a merged batch inside one transaction: with a run to
// log under (rc.ID), the change log of what it changes first, then new
// ids through the bulk path, the rest and the stubs through WriteRows,
// then the events applied and the state.
func (db *DB) writeTx(ctx context.Context, tx Conn, bulk BulkInserter, rc dest.RunContext, rows, stubs *RowSet, st *dest.State, events []dest.AppliedEvent) error {
	var exists map[string]bool
	if rc.ID != "" {
		entries, have, err := db.capture(ctx, tx, rc, rows, stubs)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if err := db.logEntries(ctx, tx, entries); err != nil {
			return err
		}
		exists = have
	}
	if bulk != nil && len(rows.Rows) > 0 {
		fresh, old, err := db.splitNew(ctx, tx, rows, exists)
		if err != nil {
			return err
		}
		if len(fresh.Rows) > 0 {
			if err := bulk.InsertNew(ctx, tx, fresh); err != nil {
				return err
			}
		}
		rows = old
	}
	for _, s := range []*RowSet{rows, stubs} {
		if len(s.Rows) > 0 {
			if err := db.d.WriteRows(ctx, tx, s); err != nil {
				return err
			}
		}
	}
	if len(events) > 0 {
		if err := db.recordEvents(ctx, tx, events); err != nil {
			return err
		}
	}
	if st != nil {
		s := *st
		if s.Run == "" {
			s.Run = rc.ID
		}
		if err := db.saveState(ctx, tx, s); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// splitNew separates the rows whose ids the table does not hold yet;
// exists, when not nil, already says which it holds.
func (db *DB) splitNew(ctx context.Context, tx Conn, rs *RowSet, exists map[string]bool) (fresh, old *RowSet, err error) {
	known := exists != nil
	if !known {
		exists = map[string]bool{}
	}
	for start := 0; !known && start < len(rs.Rows); start += lookupChunk {
		part := rs.Rows[start:min(start+lookupChunk, len(rs.Rows))]
		args := make([]any, len(part))
		for i, r := range part {
			args[i] = r.ID
		}
		q := "SELECT " + db.d.Quote("id") + " FROM " + db.d.Table(rs.Table) + " WHERE " + db.d.Quote("id") + " IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		if err := db.scan(ctx, tx, q, args, func(v []any) {
			if id, ok := v[0].(string); ok {
				exists[id] = true
			}
		}); err != nil {
			return nil, nil, err
		}
	}
	f, o := *rs, *rs
	f.Rows, o.Rows = nil, nil
	if len(exists) == 0 {
		f.Rows = rs.Rows
		return &f, &o, nil
	}
	for _, r := range rs.Rows {
		if exists[r.ID] {
			o.Rows = append(o.Rows, r)
		} else {
			f.Rows = append(f.Rows, r)
		}
	}
	return &f, &o, nil
}

// Each runs a query on c and calls fn with each row's values (dialects'
// catalog queries use it too).
func Each(ctx context.Context, c Conn, q string, args []any, fn func([]any)) error {
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return err
		}
		fn(v)
	}
	return rows.Err()
}

// scan runs a query written with ? placeholders on c (Each).
func (db *DB) scan(ctx context.Context, c Conn, q string, args []any, fn func([]any)) error {
	return Each(ctx, c, db.d.Rebind(q), args, fn)
}
