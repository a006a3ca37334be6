package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// writer is the one connection that writes, with its prepared statements
// kept by their SQL (the upsert of each table and column set, the state,
// the runs). A statement stays valid when a table gains a column: SQLite
// prepares it again by itself.
type writer struct {
	c     *sqlite3.Conn
	stmts map[string]*sqlite3.Stmt
}

var _ sqldest.Conn = (*writer)(nil)

func newWriter(c *sqlite3.Conn) *writer { return &writer{c: c, stmts: map[string]*sqlite3.Stmt{}} }

// tx runs fn between BEGIN IMMEDIATE and COMMIT, rolled back on an error
// or when ctx ends first (ctx interrupts a running statement too).
func (w *writer) tx(ctx context.Context, fn func(sqldest.Conn) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	old := w.c.SetInterrupt(ctx)
	defer w.c.SetInterrupt(old)
	if err := w.c.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			w.c.SetInterrupt(context.Background())
			if !w.c.GetAutocommit() {
				w.c.Exec("ROLLBACK")
			}
		}
	}()
	if err := fn(w); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.c.Exec("COMMIT")
}

// stmt returns the prepared statement of q, preparing it on first use.
func (w *writer) stmt(q string) (*sqlite3.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	s, _, err := w.c.Prepare(q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = s
	return s, nil
}

// run binds args to s and runs it to completion. Every parameter is
// bound each time, so nothing of an earlier run stays bound.
func (w *writer) run(s *sqlite3.Stmt, args []any) error {
	for i, v := range args {
		if err := bind(s, i+1, v); err != nil {
			s.ClearBindings()
			return err
		}
	}
	return s.Exec()
}

// Exec runs a statement and returns how many rows it changed.
func (w *writer) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	s, err := w.stmt(q)
	if err != nil {
		return 0, err
	}
	if err := w.run(s, args); err != nil {
		return 0, err
	}
	return w.c.Changes(), nil
}

// Query runs a statement that returns rows.
func (w *writer) Query(ctx context.Context, q string, args ...any) (sqldest.Rows, error) {
	s, _, err := w.c.Prepare(q)
	if err != nil {
		return nil, err
	}
	for i, v := range args {
		if err := bind(s, i+1, v); err != nil {
			s.Close()
			return nil, err
		}
	}
	return &rows{s: s}, nil
}

func (w *writer) close() error {
	for _, s := range w.stmts {
		s.Close()
	}
	w.stmts = nil
	return w.c.Close()
}

// bind binds one value of the contract's value types.
func bind(s *sqlite3.Stmt, i int, v any) error {
	switch x := v.(type) {
	case nil:
		return s.BindNull(i)
	case string:
		return s.BindText(i, x)
	case int64:
		return s.BindInt64(i, x)
	case int:
		return s.BindInt64(i, int64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("number %v cannot be stored", x)
		}
		return s.BindFloat(i, x)
	case bool:
		return s.BindBool(i, x)
	case json.RawMessage:
		if x == nil {
			return s.BindNull(i)
		}
		return s.BindRawText(i, x)
	case []byte:
		return s.BindRawText(i, x)
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
}

// rows reads a statement of the writer connection.
type rows struct {
	s *sqlite3.Stmt
}

func (r *rows) Columns() []string {
	out := make([]string, r.s.ColumnCount())
	for i := range out {
		out[i] = r.s.ColumnName(i)
	}
	return out
}

func (r *rows) Next() bool { return r.s.Step() }
func (r *rows) Err() error { return r.s.Err() }
func (r *rows) Close()     { r.s.Close() }

// Values reads the current row; a BOOLEAN column's integer is a bool, as
// the read pool's driver returns it (an as-of query runs on this
// connection).
func (r *rows) Values() ([]any, error) {
	out := make([]any, r.s.ColumnCount())
	for i := range out {
		switch r.s.ColumnType(i) {
		case sqlite3.INTEGER:
			out[i] = r.s.ColumnInt64(i)
			if strings.EqualFold(r.s.ColumnDeclType(i), declBoolean) {
				out[i] = out[i] != int64(0)
			}
		case sqlite3.FLOAT:
			out[i] = r.s.ColumnFloat(i)
		case sqlite3.TEXT, sqlite3.BLOB:
			out[i] = r.s.ColumnText(i)
		}
	}
	return out, nil
}
