package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.Shadower = (*dialect)(nil)

// ShadowBegin needs nothing: SQLite resolves an unqualified name in the
// temp schema first.
func (*dialect) ShadowBegin() []string { return nil }

// Shadow copies a table into the temp schema, where the transaction's
// rollback drops it again. The copy is declared as the table is (its
// CREATE statement from sqlite_master): the declared types are what
// reads map back to booleans and JSON.
func (*dialect) Shadow(ctx context.Context, c sqldest.Conn, table string) (string, error) {
	var create string
	if err := sqldest.Each(ctx, c, `SELECT "sql" FROM main.sqlite_master WHERE "type" = 'table' AND "name" = ?`, []any{table}, func(v []any) {
		create, _ = v[0].(string)
	}); err != nil {
		return "", err
	}
	open := strings.IndexByte(create, '(')
	if open < 0 {
		return "", fmt.Errorf("no definition of table %s", table)
	}
	name := "temp." + Quote(table)
	if _, err := c.Exec(ctx, "CREATE TEMP TABLE "+Quote(table)+" "+create[open:]); err != nil {
		return "", err
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+name+" SELECT * FROM main."+Quote(table)); err != nil {
		return "", err
	}
	return name, nil
}

// Unshadow needs nothing: the rollback drops the copy.
func (*dialect) Unshadow(string) []string { return nil }

// Uncached: statements are prepared afresh each time.
func (*dialect) Uncached(args []any) []any { return args }
