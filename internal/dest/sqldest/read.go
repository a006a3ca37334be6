package sqldest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// Query runs one statement in a read-only transaction (dest.Querier):
// with args, its ? placeholders are bound; without, it runs as written.
func (db *DB) Query(ctx context.Context, query string, args ...any) ([]string, [][]any, error) {
	if err := db.check(ctx); err != nil {
		return nil, nil, err
	}
	if len(args) > 0 {
		query = db.d.Rebind(query)
	}
	var cols []string
	var out [][]any
	err := db.d.Read(ctx, func(c Conn) error {
		rows, err := c.Query(ctx, query, args...)
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
		return rows.Err()
	})
	if err != nil {
		return nil, nil, db.wrap(err)
	}
	return cols, out, nil
}

// plain is a query result's value as dest.Querier returns it.
func plain(v any) any {
	switch x := v.(type) {
	case nil, string, int64, float64, bool:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case json.RawMessage:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

// Tables lists the replica's tables, the bookkeeping ones left out
// (dest.Reader).
func (db *DB) Tables(ctx context.Context) ([]string, error) {
	if err := db.check(ctx); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var all []string
	if err := db.d.Read(ctx, func(c Conn) (err error) {
		all, err = db.d.Tables(ctx, c)
		return err
	}); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	out := all[:0]
	for _, t := range all {
		// River's tables are there when the pipelines' control store shares
		// the replica's database (the default stripeline.db); no stream's
		// table starts with river_.
		if !strings.HasPrefix(t, "_stripeline_") && !strings.HasPrefix(t, "river_") {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Rows streams every row of a table, typed by its columns' SQL types
// (dest.Reader). The read holds one read-only transaction until the loop
// ends.
func (db *DB) Rows(ctx context.Context, table string) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		stopped := false
		err := db.check(ctx)
		if err == nil {
			err = db.d.Read(ctx, func(c Conn) error {
				more, err := db.rows(ctx, c, table, yield)
				stopped = !more
				return err
			})
		}
		if err != nil && !stopped {
			yield(nil, fmt.Errorf("read %s: %w", table, db.wrap(err)))
		}
	}
}

// rows yields the rows of table read on c; false once yield asked to stop.
func (db *DB) rows(ctx context.Context, c Conn, table string, yield func(map[string]any, error) bool) (bool, error) {
	types, err := db.d.Columns(ctx, c, table)
	if err != nil {
		return true, err
	}
	if types == nil {
		return true, dest.ErrNoTable
	}
	// The columns by name, not *: a statement cached by the driver
	// (pgx) before a column was added would fail ("cached plan must not
	// change result type"); the new text is a new statement.
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	slices.Sort(names)
	rows, err := c.Query(ctx, "SELECT "+db.names(names)+" FROM "+db.d.Table(table))
	if err != nil {
		return true, err
	}
	defer rows.Close()
	cols := rows.Columns()
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return true, err
		}
		m := make(map[string]any, len(cols))
		for i, name := range cols {
			m[name] = Typed(types[name], v[i])
		}
		if !yield(m, nil) {
			return false, nil
		}
	}
	return true, rows.Err()
}

// ReadRows reads a whole table (dest.Reader).
func (db *DB) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	return dest.CollectRows(db.Rows(ctx, table))
}

// Typed turns a value read from a column of type t into the contract's
// value types: JSON as json.RawMessage, booleans stored as integers as
// bool, numbers stored as integers as float64.
func Typed(t catalog.Type, v any) any {
	v = plain(v)
	switch t {
	case catalog.TypeJSON:
		switch x := v.(type) {
		case string:
			return json.RawMessage(x)
		case int64:
			return json.RawMessage(strconv.FormatInt(x, 10))
		case float64:
			return json.RawMessage(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case catalog.TypeBoolean:
		switch x := v.(type) {
		case int64:
			return x != 0
		case string:
			return x == "1" || x == "true"
		}
	case catalog.TypeNumber:
		if x, ok := v.(int64); ok {
			return float64(x)
		}
	}
	return v
}
