package sqldest

import (
	"context"
	"fmt"
	"slices"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Dropper = (*DB)(nil)

// DropTables drops replica tables by name (dest.Dropper); a table that is
// not there is skipped. The bookkeeping tables are never dropped.
func (db *DB) DropTables(ctx context.Context, tables []string) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("drop tables: %w", err)
	}
	for _, t := range tables {
		if slices.Contains([]string{dest.StateTable, dest.RunsTable, dest.LocksTable, dest.HistoryTable, dest.EventsTable}, t) {
			return fmt.Errorf("drop tables: %s is a bookkeeping table", t)
		}
	}
	db.ddlMu.Lock()
	defer db.ddlMu.Unlock()
	err := db.d.DDL(ctx, func(c Conn) error {
		have, err := db.d.Tables(ctx, c)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if !slices.Contains(have, t) {
				continue
			}
			if _, err := c.Exec(ctx, "DROP TABLE "+db.d.Table(t)); err != nil {
				return fmt.Errorf("drop table %s: %w", t, err)
			}
		}
		return nil
	})
	for _, t := range tables {
		delete(db.tables, t)
	}
	if err != nil {
		return fmt.Errorf("drop tables: %w", err)
	}
	return nil
}

// DropPipeline deletes a pipeline's checkpoints, run history, change log and lock
// record (dest.Dropper), in one transaction.
func (db *DB) DropPipeline(ctx context.Context, pipeline string) error {
	if err := db.check(ctx); err != nil {
		return fmt.Errorf("drop pipeline %s: %w", pipeline, err)
	}
	tables := []string{dest.StateTable, dest.RunsTable, dest.HistoryTable, dest.EventsTable}
	if _, ok := db.d.(SessionLocker); ok {
		tables = append(tables, dest.LocksTable)
	}
	err := db.d.Write(ctx, func(tx Conn) error {
		for _, t := range tables {
			if _, err := db.exec(ctx, tx, "DELETE FROM "+db.d.Table(t)+" WHERE "+db.d.Quote("pipeline")+" = ?", pipeline); err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop pipeline %s: %w", pipeline, err)
	}
	return nil
}
