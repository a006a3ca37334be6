package mysql

import (
	"context"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.Shadower = (*dialect)(nil)

// ShadowBegin needs nothing: the pool's connections use the one database.
func (*dialect) ShadowBegin() []string { return nil }

// Shadow copies a table into a temporary table of the same name, which
// hides the base table from the session (the statement itself still reads
// the base table: the copy exists only once it is done).
func (*dialect) Shadow(ctx context.Context, c sqldest.Conn, table string) (string, error) {
	for _, s := range []string{"DROP TEMPORARY TABLE IF EXISTS " + quote(table), "CREATE TEMPORARY TABLE " + quote(table) + " AS SELECT * FROM " + quote(table)} {
		if _, err := c.Exec(ctx, s); err != nil {
			return "", err
		}
	}
	return quote(table), nil
}

// Unshadow drops the copy: MySQL's temporary tables live as long as the
// session, past the transaction's rollback.
func (*dialect) Unshadow(table string) []string {
	return []string{"DROP TEMPORARY TABLE IF EXISTS " + quote(table)}
}

// Uncached: statements are prepared afresh each time.
func (*dialect) Uncached(args []any) []any { return args }
