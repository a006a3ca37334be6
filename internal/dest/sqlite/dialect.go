package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"

	"database/sql"
)

// timeLayout is fixed-width so that run times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Declared column types. Booleans are stored as 0/1 integers; json columns
// are TEXT (their declared type "JSON TEXT" keeps text affinity, so SQLite
// never turns a JSON scalar into a number, and tells reads what they are).
const (
	declText    = "TEXT"
	declInteger = "INTEGER"
	declReal    = "REAL"
	declBoolean = "BOOLEAN"
	declJSON    = "JSON TEXT"
)

// types are SQLite's declared column types.
var types = sqldest.Types{Integer: declInteger, Number: declReal, Boolean: declBoolean, JSON: declJSON, String: declText, Key: declText, Time: declText}

// dialect is SQLite's part of the destination: one writer connection
// guarded by a mutex (SQLite has one writer anyway) and a read-only pool.
type dialect struct {
	mu sync.Mutex // guards w
	w  *writer    // nil once closed

	readers *sql.DB
}

var _ sqldest.Dialect = (*dialect)(nil)

// Quote quotes an SQL identifier.
func Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func (*dialect) Quote(name string) string     { return Quote(name) }
func (*dialect) Table(name string) string     { return Quote(name) }
func (*dialect) TableOptions() string         { return "" }
func (*dialect) Setup() []string              { return nil }
func (*dialect) Rebind(query string) string   { return query }
func (*dialect) Time(t time.Time) any         { return t.UTC().Format(timeLayout) }
func (d *dialect) Type(t catalog.Type) string { return types.Of(t) }
func (d *dialect) OnConflict(table string, key, update []string, newer string) string {
	return sqldest.OnConflict(d, table, key, update, newer)
}

// ParseTime reads a time written by Time.
func (*dialect) ParseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("time %v is not text", v)
	}
	return time.Parse(timeLayout, s)
}

// Columns reads a table's columns from its declared types.
func (d *dialect) Columns(ctx context.Context, c sqldest.Conn, table string) (map[string]catalog.Type, error) {
	kinds := map[string]catalog.Type{declInteger: catalog.TypeInteger, declReal: catalog.TypeNumber, declBoolean: catalog.TypeBoolean, declJSON: catalog.TypeJSON}
	var cols map[string]catalog.Type
	err := sqldest.Each(ctx, c, `SELECT "name", "type" FROM pragma_table_info(?)`, []any{table}, func(v []any) {
		if cols == nil {
			cols = map[string]catalog.Type{}
		}
		name, _ := v[0].(string)
		decl, _ := v[1].(string)
		if cols[name] = kinds[strings.ToUpper(decl)]; cols[name] == "" {
			cols[name] = catalog.TypeString
		}
	})
	return cols, err
}

// Tables lists the database's tables.
func (d *dialect) Tables(ctx context.Context, c sqldest.Conn) ([]string, error) {
	var out []string
	err := sqldest.Each(ctx, c, `SELECT "name" FROM sqlite_master WHERE "type" = 'table' AND "name" NOT LIKE 'sqlite\_%' ESCAPE '\'`, nil,
		func(v []any) { out = append(out, fmt.Sprint(v[0])) })
	return out, err
}

// Write runs fn in a BEGIN IMMEDIATE transaction on the writer connection,
// which ctx interrupts.
func (d *dialect) Write(ctx context.Context, fn func(sqldest.Conn) error) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return dest.ErrClosed
	}
	return d.w.tx(ctx, fn)
}

// DDL runs fn in a write transaction: SQLite serialises writers itself.
func (d *dialect) DDL(ctx context.Context, fn func(sqldest.Conn) error) error {
	return d.Write(ctx, fn)
}

// Read runs fn on a connection of the read-only pool.
func (d *dialect) Read(ctx context.Context, fn func(sqldest.Conn) error) error {
	c, err := d.readers.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(sqldest.StdConn{Q: c})
}

// WriteRows upserts rows one prepared statement execution each: SQLite
// runs in the process, so a round trip costs nothing and the statement is
// parsed once per table and column set.
func (d *dialect) WriteRows(ctx context.Context, tx sqldest.Conn, rs *sqldest.RowSet) error {
	w := tx.(*writer)
	s, err := w.stmt(sqldest.Insert(d, rs.Table, rs.Names(), 1) + rs.Upsert(d))
	if err != nil {
		return err
	}
	args := make([]any, 0, len(rs.Columns)+4)
	for i := range rs.Rows {
		args = rs.Args(args[:0], i)
		if err := w.run(s, args); err != nil {
			return fmt.Errorf("row %s: %w", rs.Rows[i].ID, err)
		}
	}
	return nil
}

// Kind tells SQLite's errors apart by their message.
func (*dialect) Kind(err error) sqldest.ErrorKind {
	switch msg := err.Error(); {
	case strings.Contains(msg, "no such table"):
		return sqldest.KindNoTable
	case strings.Contains(msg, "duplicate column name"):
		return sqldest.KindDuplicateColumn
	}
	return sqldest.KindOther
}

// Close closes the statements and both connections.
func (d *dialect) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.readers.Close()
	if d.w != nil {
		if cerr := d.w.close(); err == nil {
			err = cerr
		}
		d.w = nil
	}
	return err
}
