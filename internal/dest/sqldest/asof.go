package sqldest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// Shadower is implemented by dialects that can shadow a replica table with
// a temporary copy inside a write transaction, for as-of queries: the
// copy is what the table's unqualified name means until the transaction
// ends.
type Shadower interface {
	// ShadowBegin lists the statements that make unqualified names
	// resolve as they do in Read (PostgreSQL's search path).
	ShadowBegin() []string
	// Shadow creates the copy of table on c, with the table's columns and
	// their declared types, and returns the name statements use to write
	// to it.
	Shadow(ctx context.Context, c Conn, table string) (name string, err error)
	// Unshadow lists the statements that drop the copy, for databases
	// whose temporary tables outlive a rolled-back transaction (MySQL).
	Unshadow(table string) []string
	// Uncached returns the arguments of the query that reads the copies
	// so that it is planned afresh: a plan cached before the copy existed
	// would still read the replica's table (PostgreSQL's prepared
	// statements).
	Uncached(args []any) []any
}

// ErrNoAsOf is returned by AsOf on a dialect that cannot shadow tables.
var ErrNoAsOf = errors.New("this destination cannot answer --as-of queries")

// AsOf runs one query against the replica as it was at a moment: every
// table the change log shows changed since then is shadowed by a
// temporary copy with those changes undone, the query runs on the copies,
// and the transaction is rolled back, so nothing of the replica changes.
// Values are normalised as Query's are. The caller makes sure the query
// only reads (a SELECT).
func (db *DB) AsOf(ctx context.Context, at time.Time, query string, args ...any) ([]string, [][]any, error) {
	sh, ok := db.d.(Shadower)
	if !ok {
		return nil, nil, ErrNoAsOf
	}
	if err := db.check(ctx); err != nil {
		return nil, nil, err
	}
	if len(args) > 0 {
		query = db.d.Rebind(query)
	}
	var cols []string
	var out [][]any
	err := db.d.Write(ctx, func(tx Conn) (err error) {
		for _, s := range sh.ShadowBegin() {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		entries, err := db.readEntries(ctx, tx, db.d.Quote("changed_at")+" > ?", []any{at.UnixMicro()})
		if err != nil {
			return fmt.Errorf("read the change log: %w", err)
		}
		targets := fold(entries)
		shadow := map[string]string{}
		defer func() {
			for t := range shadow {
				for _, s := range sh.Unshadow(t) {
					_, _ = tx.Exec(context.WithoutCancel(ctx), s)
				}
			}
		}()
		for _, t := range targets {
			if t.table == dest.StateTable || shadow[t.table] != "" {
				continue
			}
			types, err := db.d.Columns(ctx, tx, t.table)
			if err != nil {
				return err
			}
			if types == nil {
				continue
			}
			name, err := sh.Shadow(ctx, tx, t.table)
			if err != nil {
				return fmt.Errorf("copy %s as of %s: %w", t.table, at.UTC().Format(time.RFC3339), err)
			}
			shadow[t.table] = name
		}
		if _, err := db.apply(ctx, tx, targets, "", "", shadow); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, query, sh.Uncached(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols = rows.Columns()
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return err
			}
			for i, x := range v {
				v[i] = plain(x)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return errDryRun
	})
	if !errors.Is(err, errDryRun) {
		return nil, nil, db.wrap(err)
	}
	return cols, out, nil
}

// History reads the change log: the entries of a pipeline ("" for all)
// of the given runs (none: every run), in the order they were written.
func (db *DB) History(ctx context.Context, pipeline string, runs ...string) ([]Entry, error) {
	if err := db.check(ctx); err != nil {
		return nil, fmt.Errorf("read the change log: %w", err)
	}
	where, args := db.historyWhere(pipeline, runs, time.Time{})
	var out []Entry
	err := db.d.Read(ctx, func(c Conn) (err error) {
		out, err = db.readEntries(ctx, c, where, args)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the change log: %w", err)
	}
	sortBySeq(out)
	return out, nil
}

// PruneHistory deletes the change-log entries of a pipeline that belong
// to the given runs or were written before a time (zero: no limit by
// time), and returns how many it deleted.
func (db *DB) PruneHistory(ctx context.Context, pipeline string, runs []string, before time.Time) (int64, error) {
	if err := db.check(ctx); err != nil {
		return 0, fmt.Errorf("prune the change log: %w", err)
	}
	if len(runs) == 0 && before.IsZero() {
		return 0, nil
	}
	where, args := db.historyWhere(pipeline, runs, before)
	var n int64
	err := db.d.Write(ctx, func(tx Conn) (err error) {
		n, err = db.exec(ctx, tx, "DELETE FROM "+db.d.Table(dest.HistoryTable)+" WHERE "+where, args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune the change log: %w", err)
	}
	return n, nil
}

// historyWhere is the condition on the change log of a pipeline's entries
// of some runs or (with before set) written before a time.
func (db *DB) historyWhere(pipeline string, runs []string, before time.Time) (string, []any) {
	var conds []string
	var args []any
	if pipeline != "" {
		conds = append(conds, db.d.Quote("pipeline")+" = ?")
		args = append(args, pipeline)
	}
	var or []string
	if len(runs) > 0 {
		ph := "?"
		for range runs[1:] {
			ph += ", ?"
		}
		or = append(or, db.d.Quote("run")+" IN ("+ph+")")
		for _, r := range runs {
			args = append(args, r)
		}
	}
	if !before.IsZero() {
		or = append(or, db.d.Quote("changed_at")+" < ?")
		args = append(args, before.UnixMicro())
	}
	if len(or) > 0 {
		c := or[0]
		if len(or) > 1 {
			c = "(" + or[0] + " OR " + or[1] + ")"
		}
		conds = append(conds, c)
	}
	where := ""
	for i, c := range conds {
		if i > 0 {
			where += " AND "
		}
		where += c
	}
	return where, args
}
