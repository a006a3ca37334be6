package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Dropper = (*Destination)(nil)

// DropTables drops the named stream tables that exist, in one transaction.
// The bookkeeping tables are never dropped this way.
func (d *Destination) DropTables(ctx context.Context, tables []string) (err error) {
	for _, t := range tables {
		if strings.HasPrefix(t, "_stripeline") {
			return fmt.Errorf("sqlite destination: %s is a bookkeeping table, not a stream's: it is not dropped", t)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.conn.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil && !d.conn.GetAutocommit() {
			d.conn.Exec("ROLLBACK")
		}
	}()
	for _, t := range tables {
		d.dropStmts(t)
		delete(d.tables, t)
		if err := d.conn.Exec("DROP TABLE IF EXISTS " + Quote(t)); err != nil {
			return fmt.Errorf("drop table %s: %w", t, err)
		}
	}
	return d.conn.Exec("COMMIT")
}

// DropPipeline deletes a pipeline's checkpoints and run history. Its lock
// file stays: it is harmless, and another process may hold it open.
func (d *Destination) DropPipeline(ctx context.Context, pipeline string) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.conn.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil && !d.conn.GetAutocommit() {
			d.conn.Exec("ROLLBACK")
		}
	}()
	for _, table := range []string{dest.StateTable, dest.RunsTable} {
		s, _, err := d.conn.Prepare(`DELETE FROM ` + Quote(table) + ` WHERE "pipeline" = ?`)
		if err != nil {
			return fmt.Errorf("forget pipeline %s in %s: %w", pipeline, table, err)
		}
		s.BindText(1, pipeline)
		err = s.Exec()
		s.Close()
		if err != nil {
			return fmt.Errorf("forget pipeline %s in %s: %w", pipeline, table, err)
		}
	}
	return d.conn.Exec("COMMIT")
}
