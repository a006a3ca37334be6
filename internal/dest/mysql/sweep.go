package mysql

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Sweeper = (*Destination)(nil)

// MarkDeletedBefore implements dest.Sweeper.
func (d *Destination) MarkDeletedBefore(ctx context.Context, table, account string, before time.Time) (int64, error) {
	res, err := d.db.ExecContext(ctx, "UPDATE "+quote(table)+" SET "+quote(dest.ColDeleted)+" = 1 WHERE "+quote(dest.ColDeleted)+
		" = 0 AND "+quote(dest.ColAccount)+" = ? AND "+quote(dest.ColSyncedAt)+" < ?", account, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, err)
	}
	return res.RowsAffected()
}
