package sqldest

import (
	"context"
	"fmt"
	"strings"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Dropper = (*DB)(nil)

// DropTables drops the named stream tables that exist, as one schema
// change (dest.Dropper). A bookkeeping table is refused.
func (db *DB) DropTables(ctx context.Context, tables []string) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("drop tables: %w", err)
	}
	for _, t := range tables {
		if strings.HasPrefix(t, "_stripeline") {
			return fmt.Errorf("drop tables: %s is a bookkeeping table, not a stream's, and is not dropped", t)
		}
	}
	db.ddlMu.Lock()
	defer db.ddlMu.Unlock()
	err := db.d.DDL(ctx, func(c Conn) error {
		for _, t := range tables {
			if _, err := db.exec(ctx, c, "DROP TABLE IF EXISTS "+db.d.Table(t)); err != nil {
				return fmt.Errorf("drop table %s: %w", t, err)
			}
		}
		return nil
	})
	for _, t := range tables { // known columns are read again, dropped or not
		delete(db.tables, t)
	}
	return err
}

// DropPipeline deletes a pipeline's checkpoints, run history and lock
// holder record in one transaction (dest.Dropper).
func (db *DB) DropPipeline(ctx context.Context, pipeline string) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("forget pipeline %s: %w", pipeline, err)
	}
	return db.d.Write(ctx, func(tx Conn) error {
		for _, t := range db.bookkeeping() {
			if !hasColumn(t, "pipeline") {
				continue
			}
			q := "DELETE FROM " + db.d.Table(t.name) + " WHERE " + db.d.Quote("pipeline") + " = ?"
			if _, err := db.exec(ctx, tx, q, pipeline); err != nil {
				return fmt.Errorf("forget pipeline %s in %s: %w", pipeline, t.name, err)
			}
		}
		return nil
	})
}

func hasColumn(t table, name string) bool {
	for _, c := range t.cols {
		if c.name == name {
			return true
		}
	}
	return false
}
