package postgres

import (
	"context"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.SyncCommitter = (*dialect)(nil)

// SyncCommit makes tx's commit wait for the WAL flush, whatever the row
// writes before it set (asyncCommit): its rows are acknowledged to Stripe
// as durable once it returns (sqldest.SyncCommitter).
func (d *dialect) SyncCommit(ctx context.Context, tx sqldest.Conn) error {
	c := tx.(*conn)
	c.async = true // a later row write of this transaction leaves it so
	_, err := c.tx.Exec(ctx, "SET LOCAL synchronous_commit = on")
	return err
}
