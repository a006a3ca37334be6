package mysql

import (
	"context"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.NullIDer = (*dialect)(nil)

// AllowNullID replaces the table's primary key by a unique key on id (ON
// DUPLICATE KEY UPDATE uses any unique key) and lets id be NULL.
func (d *dialect) AllowNullID(ctx context.Context, c sqldest.Conn, table string) error {
	var nullable string
	err := sqldest.Each(ctx, c, "SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'id'",
		[]any{d.dbName, table}, func(v []any) {
			switch s := v[0].(type) {
			case string:
				nullable = s
			case []byte:
				nullable = string(s)
			}
		})
	if err != nil || nullable != "NO" {
		return err
	}
	_, err = c.Exec(ctx, "ALTER TABLE "+d.Table(table)+" ADD UNIQUE KEY "+d.Quote("stripeline_id")+" ("+d.Quote("id")+"), DROP PRIMARY KEY, MODIFY "+d.Quote("id")+" "+types.Key+" NULL")
	return err
}

// NewID is a placeholder id with 32 random hex digits (UUID() is drawn
// anew for each row).
func (*dialect) NewID() string {
	return "CONCAT('" + sqldest.NewIDPrefix + "', REPLACE(UUID(), '-', ''))"
}
