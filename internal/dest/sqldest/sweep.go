package sqldest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// MarkDeletedBefore flags the live rows of an account last written before
// a time (dest.Sweeper).
func (db *DB) MarkDeletedBefore(ctx context.Context, table, account string, before time.Time) (int64, error) {
	if err := db.check(ctx); err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, err)
	}
	del, acct, synced := db.d.Quote(dest.ColDeleted), db.d.Quote(dest.ColAccount), db.d.Quote(dest.ColSyncedAt)
	q := "UPDATE " + db.d.Table(table) + " SET " + del + " = TRUE WHERE " + del + " = FALSE AND " + acct + " = ? AND " + synced + " < ?"
	var n int64
	rc, logged := logRun(ctx, "", "")
	err := db.d.Write(ctx, func(tx Conn) (err error) {
		if logged {
			if err := db.logSweep(ctx, tx, rc, table, account, before); err != nil {
				return err
			}
		}
		n, err = db.exec(ctx, tx, q, account, before.Unix())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, db.wrap(err))
	}
	return n, nil
}

// logSweep logs the rows MarkDeletedBefore is about to flag, inside its
// transaction.
func (db *DB) logSweep(ctx context.Context, tx Conn, rc dest.RunContext, table, account string, before time.Time) error {
	del, acct, synced := db.d.Quote(dest.ColDeleted), db.d.Quote(dest.ColAccount), db.d.Quote(dest.ColSyncedAt)
	q := "SELECT " + db.d.Quote("id") + ", " + synced + " FROM " + db.d.Table(table) + " WHERE " + del + " = FALSE AND " + acct + " = ? AND " + synced + " < ?"
	now := time.Now()
	var entries []Entry
	prev, _ := json.Marshal(map[string]any{dest.ColDeleted: false})
	err := db.scan(ctx, tx, q, []any{account, before.Unix()}, func(v []any) {
		id, _ := v[0].(string)
		entries = append(entries, Entry{Run: rc.ID, Pipeline: rc.Pipeline, Table: table, ID: id, Op: OpDelete, Prev: prev,
			ChangedAt: now, ValidFrom: time.Unix(toInt(v[1]), 0)})
	})
	if err != nil {
		return err
	}
	return db.logEntries(ctx, tx, entries)
}
