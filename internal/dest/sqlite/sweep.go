package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Sweeper = (*Destination)(nil)

// MarkDeletedBefore implements dest.Sweeper.
func (d *Destination) MarkDeletedBefore(ctx context.Context, table, account string, before time.Time) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return 0, fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	stmt, _, err := d.conn.Prepare(`UPDATE ` + Quote(table) + ` SET ` + Quote(dest.ColDeleted) + ` = 1 WHERE ` +
		Quote(dest.ColDeleted) + ` = 0 AND ` + Quote(dest.ColAccount) + ` = ? AND ` + Quote(dest.ColSyncedAt) + ` < ?`)
	if err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, err)
	}
	defer stmt.Close()
	if err := stmt.BindText(1, account); err != nil {
		return 0, err
	}
	if err := stmt.BindInt64(2, before.Unix()); err != nil {
		return 0, err
	}
	if err := stmt.Exec(); err != nil {
		return 0, fmt.Errorf("mark deleted rows of %s: %w", table, err)
	}
	return d.conn.Changes(), nil
}
