package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

var _ sqldest.NullIDer = (*dialect)(nil)

// keyDecl is how createTable declares a table's id.
var keyDecl = Quote("id") + " " + declText + " NOT NULL PRIMARY KEY"

// AllowNullID rebuilds the table with its id a nullable UNIQUE column:
// SQLite cannot change a column's constraints in place, so the table is
// created anew from its own CREATE statement, filled, and renamed, in one
// transaction (https://www.sqlite.org/lang_altertable.html, "other kinds
// of table schema changes").
func (d *dialect) AllowNullID(ctx context.Context, c sqldest.Conn, table string) error {
	var create string
	err := sqldest.Each(ctx, c, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", []any{table}, func(v []any) {
		switch s := v[0].(type) {
		case string:
			create = s
		case []byte:
			create = string(s)
		}
	})
	if err != nil {
		return err
	}
	if !strings.Contains(create, keyDecl) {
		return nil // done already
	}
	open := strings.IndexByte(create, '(')
	if open < 0 {
		return fmt.Errorf("table %s: unexpected CREATE statement", table)
	}
	tmp := table + "_stripeline_rebuild"
	stmts := []string{
		"DROP TABLE IF EXISTS " + Quote(tmp),
		"CREATE TABLE " + Quote(tmp) + " " + strings.Replace(create[open:], keyDecl, Quote("id")+" "+declText+" UNIQUE", 1),
		"INSERT INTO " + Quote(tmp) + " SELECT * FROM " + Quote(table),
		"DROP TABLE " + Quote(table),
		"ALTER TABLE " + Quote(tmp) + " RENAME TO " + Quote(table),
	}
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// NewID is a placeholder id with 32 random hex digits.
func (*dialect) NewID() string {
	return "'" + sqldest.NewIDPrefix + "' || lower(hex(randomblob(16)))"
}
