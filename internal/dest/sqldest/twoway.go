package sqldest

import (
	"context"
	"fmt"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Columns a two-way table carries for the user (docs/OPERATIONS.md,
// "Two-way sync"). The engine's upserts never name them, so a pull never
// overwrites what the user set there.
const (
	// ColDelete, set true by the user, asks the next two-way run to
	// delete the object in Stripe.
	ColDelete = "_stripeline_delete"
	// ColEditedAt, optionally set by the user's application to the unix
	// time of its edit, dates the database's side of a conflict for the
	// newest-wins policy.
	ColEditedAt = "_stripeline_edited_at"
)

// NewIDPrefix starts the placeholder id a two-way run gives a row the user
// inserted with a NULL id, until the object it creates has an id.
const NewIDPrefix = "stripeline_new_"

// NullIDer is implemented by dialects whose tables can take rows with a
// NULL id, for two-way sync: the id becomes a UNIQUE column that allows
// NULLs (every dialect's UNIQUE does) instead of the primary key, and the
// upserts' conflict target stays the id.
type NullIDer interface {
	// AllowNullID changes table so. Idempotent: a table already changed is
	// left alone.
	AllowNullID(ctx context.Context, c Conn, table string) error
	// NewID is an SQL expression of a placeholder id, NewIDPrefix and
	// random hex digits drawn anew for each row of an UPDATE.
	NewID() string
}

// PrepareTwoWay readies a replica table for two-way sync: the user's
// columns ColDelete and ColEditedAt, and an id that may be NULL (dialects
// that implement NullIDer). Idempotent.
func (db *DB) PrepareTwoWay(ctx context.Context, table string) error {
	n, ok := db.d.(NullIDer)
	if !ok {
		return fmt.Errorf("prepare %s for two-way sync: this destination cannot take new rows without an id", table)
	}
	cols := []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: ColDelete, Type: catalog.TypeBoolean}, {Name: ColEditedAt, Type: catalog.TypeInteger}}
	if err := db.ensure(ctx, dest.Table{Name: table, Columns: cols}); err != nil {
		return fmt.Errorf("prepare %s for two-way sync: %w", table, err)
	}
	db.ddlMu.Lock()
	defer db.ddlMu.Unlock()
	if err := db.d.DDL(ctx, func(c Conn) error { return n.AllowNullID(ctx, c, table) }); err != nil {
		return fmt.Errorf("prepare %s for two-way sync: %w", table, db.wrap(err))
	}
	return nil
}

// ClaimNewRows gives every row of table whose id is NULL a placeholder id
// (NewIDPrefix…), so the run can address it until the object it creates
// has an id. It returns how many rows it claimed.
func (db *DB) ClaimNewRows(ctx context.Context, table string) (int64, error) {
	n, ok := db.d.(NullIDer)
	if !ok {
		return 0, nil
	}
	var claimed int64
	err := db.d.Write(ctx, func(tx Conn) (err error) {
		claimed, err = tx.Exec(ctx, "UPDATE "+db.d.Table(table)+" SET "+db.d.Quote("id")+" = "+n.NewID()+" WHERE "+db.d.Quote("id")+" IS NULL")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("claim new rows of %s: %w", table, db.wrap(err))
	}
	return claimed, nil
}

// ReplaceID writes the id of a created object into the row that asked for
// it (placeholder old). Should the table hold a row of that id already
// (an earlier run created the object and a pull wrote it), the placeholder
// row is removed instead. Idempotent.
func (db *DB) ReplaceID(ctx context.Context, table, old, id string) error {
	t, qid := db.d.Table(table), db.d.Quote("id")
	err := db.d.Write(ctx, func(tx Conn) error {
		have := false
		if err := db.scan(ctx, tx, "SELECT "+qid+" FROM "+t+" WHERE "+qid+" = ?", []any{id}, func([]any) { have = true }); err != nil {
			return err
		}
		q := "UPDATE " + t + " SET " + qid + " = ? WHERE " + qid + " = ?"
		args := []any{id, old}
		if have {
			q, args = "DELETE FROM "+t+" WHERE "+qid+" = ?", []any{old}
		}
		_, err := tx.Exec(ctx, db.d.Rebind(q), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("write the id %s into %s: %w", id, table, db.wrap(err))
	}
	return nil
}

// QuoteName quotes a column name as the dialect does, for statements
// given to Query.
func (db *DB) QuoteName(name string) string { return db.d.Quote(name) }

// QuoteTable names a replica table as the dialect does (schema included),
// for statements given to Query.
func (db *DB) QuoteTable(name string) string { return db.d.Table(name) }

// SetColumn sets one column of rows by id, in one transaction (values by
// id). A two-way run uses it to remember the values of rows written before
// the table was two-way.
func (db *DB) SetColumn(ctx context.Context, table, column string, values map[string]any) error {
	if len(values) == 0 {
		return nil
	}
	q := db.d.Rebind("UPDATE " + db.d.Table(table) + " SET " + db.d.Quote(column) + " = ? WHERE " + db.d.Quote("id") + " = ?")
	err := db.d.Write(ctx, func(tx Conn) error {
		for id, v := range values {
			if _, err := tx.Exec(ctx, q, v, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set %s of %s: %w", column, table, db.wrap(err))
	}
	return nil
}
