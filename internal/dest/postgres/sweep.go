package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Sweeper = (*Destination)(nil)

// MarkDeletedBefore implements dest.Sweeper.
func (d *Destination) MarkDeletedBefore(ctx context.Context, table, account string, before time.Time) (int64, error) {
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer pc.Release()
	c := pc.Conn()
	tag, err := c.Exec(ctx, `UPDATE `+d.ident(table)+` SET `+quote(dest.ColDeleted)+` = true WHERE NOT `+quote(dest.ColDeleted)+
		` AND `+quote(dest.ColAccount)+` = $1 AND `+quote(dest.ColSyncedAt)+` < $2`, account, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}
