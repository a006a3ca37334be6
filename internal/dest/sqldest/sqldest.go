// Package sqldest is the SQL core the SQL destinations share (SQLite,
// PostgreSQL, MySQL): schema creation and evolution, the batch write with
// its checkpoint in one transaction, conditional upserts, state, run
// history, reads, the deletion sweep and the session run lock are written
// here once, over a small Dialect each destination provides. A new SQL
// destination is its Dialect, an Open that connects and calls New, and
// its registration.
package sqldest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

var (
	_ dest.Destination = (*DB)(nil)
	_ dest.Querier     = (*DB)(nil)
	_ dest.Reader      = (*DB)(nil)
	_ dest.Sweeper     = (*DB)(nil)
	_ dest.Locker      = (*DB)(nil)
)

// DB is a replica in one SQL database (or schema): every SQL destination
// is a DB over its Dialect. Its methods follow dest.Destination's
// lifecycle and are safe for concurrent use.
type DB struct {
	d Dialect

	ddlMu  sync.Mutex                         // serialises this process's schema changes
	tables map[string]map[string]catalog.Type // columns known to exist, under ddlMu

	closed atomic.Bool
}

// New makes the DB of a connected dialect and creates what is missing of
// the bookkeeping tables (nothing, and no DDL right needed, for a replica
// that has them). On failure it closes the dialect.
func New(ctx context.Context, d Dialect) (*DB, error) {
	db := &DB{d: d, tables: map[string]map[string]catalog.Type{}}
	if err := db.setup(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return db, nil
}

// Dialect returns the dialect the DB was made with.
func (db *DB) Dialect() Dialect { return db.d }

// Close closes the dialect's connections; a second Close does nothing.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	return db.d.Close()
}

// Closed reports whether Close was called.
func (db *DB) Closed() bool { return db.closed.Load() }

// check returns dest.ErrClosed after Close, else ctx's error.
func (db *DB) check(ctx context.Context) error {
	if db.closed.Load() {
		return dest.ErrClosed
	}
	return ctx.Err()
}

// Forget drops what the DB knows of the tables' columns, to read them
// again: another process may have changed them (SQLite's Lock).
func (db *DB) Forget() {
	db.ddlMu.Lock()
	db.tables = map[string]map[string]catalog.Type{}
	db.ddlMu.Unlock()
}

// exec runs a statement written with ? placeholders on c.
func (db *DB) exec(ctx context.Context, c Conn, query string, args ...any) (int64, error) {
	return c.Exec(ctx, db.d.Rebind(query), args...)
}

// wrap marks a driver error that says the table does not exist with
// dest.ErrNoTable.
func (db *DB) wrap(err error) error {
	if err != nil && !errors.Is(err, dest.ErrNoTable) && db.d.Kind(err) == KindNoTable {
		return fmt.Errorf("%w: %w", dest.ErrNoTable, err)
	}
	return err
}
