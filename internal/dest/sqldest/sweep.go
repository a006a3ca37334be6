package sqldest

import (
	"context"
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
	err := db.d.Write(ctx, func(tx Conn) (err error) {
		n, err = db.exec(ctx, tx, q, account, before.Unix())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, db.wrap(err))
	}
	return n, nil
}
