package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.Shadower = (*dialect)(nil)

// ShadowBegin puts the schema first in the search path, as Read does;
// pg_temp is searched before it anyway.
func (d *dialect) ShadowBegin() []string {
	return []string{"SELECT set_config('search_path', " + quoteLiteral(d.schema+",public") + ", true)"}
}

// Shadow copies a table into pg_temp, dropped at the end of the
// transaction.
func (d *dialect) Shadow(ctx context.Context, c sqldest.Conn, table string) (string, error) {
	_, err := c.Exec(ctx, "CREATE TEMP TABLE "+quote(table)+" ON COMMIT DROP AS SELECT * FROM "+d.Table(table))
	return "pg_temp." + quote(table), err
}

// Unshadow needs nothing: the rollback drops the copy.
func (*dialect) Unshadow(string) []string { return nil }

// Uncached: pgx describes the statement again instead of using its cache.
func (*dialect) Uncached(args []any) []any {
	return append([]any{pgx.QueryExecModeDescribeExec}, args...)
}
