package postgres

import (
	"context"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.NullIDer = (*dialect)(nil)

// AllowNullID replaces the table's primary key by a unique index on id
// (ON CONFLICT (id) infers it the same way) and lets id be NULL.
func (d *dialect) AllowNullID(ctx context.Context, c sqldest.Conn, table string) error {
	var pk string
	err := sqldest.Each(ctx, c, "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'", []any{d.Table(table)}, func(v []any) {
		pk, _ = v[0].(string)
	})
	if err != nil || pk == "" {
		return err
	}
	t := d.Table(table)
	for _, s := range []string{
		"CREATE UNIQUE INDEX IF NOT EXISTS " + quote(table+"_stripeline_id") + " ON " + t + " (" + quote("id") + ")",
		"ALTER TABLE " + t + " DROP CONSTRAINT " + quote(pk) + ", ALTER COLUMN " + quote("id") + " DROP NOT NULL",
	} {
		if _, err := c.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// NewID is a placeholder id with 32 random hex digits.
func (*dialect) NewID() string {
	return "'" + sqldest.NewIDPrefix + "' || md5(random()::text || clock_timestamp()::text)"
}
