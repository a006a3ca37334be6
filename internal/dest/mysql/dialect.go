package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// Chunk limits of one INSERT statement: below MySQL's 65,535 placeholders
// and well below the default max_allowed_packet (16 MiB on MariaDB, 64 MiB
// on MySQL 8).
const (
	maxPlaceholders = 60000
	maxChunkBytes   = 4 << 20
)

const timeLayout = "2006-01-02 15:04:05.000000"

// dialect is MySQL's part of the destination: a database/sql pool of the
// one database.
type dialect struct {
	db     *sql.DB
	dsn    string // for the run lock's own connection
	dbName string
}

var (
	_ sqldest.Dialect       = (*dialect)(nil)
	_ sqldest.BulkInserter  = (*dialect)(nil)
	_ sqldest.SessionLocker = (*dialect)(nil)
)

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func (*dialect) Quote(name string) string   { return quote(name) }
func (*dialect) Table(name string) string   { return quote(name) }
func (*dialect) Setup() []string            { return nil }
func (*dialect) Rebind(query string) string { return query }
func (*dialect) Time(t time.Time) any       { return t.UTC().Format(timeLayout) }
func (*dialect) LockColumn() string         { return "connection_id" }
func (*dialect) TableOptions() string {
	return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
}

// ParseTime reads a DATETIME(6), which the driver returns as text.
func (*dialect) ParseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("time %v is not text", v)
	}
	return time.Parse(timeLayout, s)
}

// types are MySQL's column types (LONGTEXT for strings: Stripe's have no
// length limit; VARCHAR where a key or an index needs a length).
var types = sqldest.Types{Integer: "BIGINT", Number: "DOUBLE", Boolean: "BOOLEAN", JSON: "JSON", String: "LONGTEXT", Key: "VARCHAR(255)", Time: "DATETIME(6)"}

// Type is the column type of t.
func (*dialect) Type(t catalog.Type) string { return types.Of(t) }

// OnConflict is ON DUPLICATE KEY UPDATE. MySQL has no WHERE there: with
// newer, each column is set only IF the inserted row is newer, the newer
// column itself last, since later assignments see the earlier ones.
func (*dialect) OnConflict(table string, key, update []string, newer string) string {
	var b strings.Builder
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	cols := update
	if newer != "" {
		cols = make([]string, 0, len(update))
		for _, c := range update {
			if c != newer {
				cols = append(cols, c)
			}
		}
		cols = append(cols, newer)
	}
	cond := "VALUES(" + quote(newer) + ") > " + quote(newer)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if newer == "" {
			b.WriteString(quote(c) + " = VALUES(" + quote(c) + ")")
		} else {
			b.WriteString(quote(c) + " = IF(" + cond + ", VALUES(" + quote(c) + "), " + quote(c) + ")")
		}
	}
	return b.String()
}

// Columns reads a table's columns from information_schema. MariaDB's JSON
// is LONGTEXT with a json_valid check named after the column.
func (d *dialect) Columns(ctx context.Context, c sqldest.Conn, table string) (map[string]catalog.Type, error) {
	var cols map[string]catalog.Type
	err := sqldest.Each(ctx, c, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
		[]any{d.dbName, table}, func(v []any) {
			if cols == nil {
				cols = map[string]catalog.Type{}
			}
			name, _ := v[0].(string)
			cols[name] = kind(fmt.Sprint(v[1]), fmt.Sprint(v[2]))
		})
	if err != nil || cols == nil {
		return nil, err
	}
	// MySQL 8's CHECK_CONSTRAINTS has no TABLE_NAME: the query fails there,
	// where JSON is a type of its own anyway.
	_ = sqldest.Each(ctx, c, `SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
		[]any{d.dbName, table}, func(v []any) {
			name, _ := v[0].(string)
			if _, ok := cols[name]; ok && strings.Contains(strings.ToLower(fmt.Sprint(v[1])), "json_valid") {
				cols[name] = catalog.TypeJSON
			}
		})
	return cols, nil
}

// kind maps a column's DATA_TYPE and COLUMN_TYPE back to catalog's type.
func kind(dataType, colType string) catalog.Type {
	dataType, colType = strings.ToLower(dataType), strings.ToLower(colType)
	switch {
	case colType == "tinyint(1)":
		return catalog.TypeBoolean
	case dataType == "json":
		return catalog.TypeJSON
	case strings.Contains(dataType, "int"):
		return catalog.TypeInteger
	case dataType == "double" || dataType == "float" || dataType == "decimal":
		return catalog.TypeNumber
	}
	return catalog.TypeString
}

// Tables lists the database's tables.
func (d *dialect) Tables(ctx context.Context, c sqldest.Conn) ([]string, error) {
	var out []string
	err := sqldest.Each(ctx, c, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`, []any{d.dbName}, func(v []any) {
		out = append(out, fmt.Sprint(v[0]))
	})
	return out, err
}

// tx runs fn in a transaction of the pool.
func (d *dialect) tx(ctx context.Context, opts *sql.TxOptions, fn func(sqldest.Conn) error) error {
	tx, err := d.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(sqldest.StdConn{Q: tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// Write runs fn in a transaction.
func (d *dialect) Write(ctx context.Context, fn func(sqldest.Conn) error) error {
	return d.tx(ctx, nil, fn)
}

// Read runs fn in a read-only transaction.
func (d *dialect) Read(ctx context.Context, fn func(sqldest.Conn) error) error {
	return d.tx(ctx, &sql.TxOptions{ReadOnly: true}, fn)
}

// DDL runs fn on the pool: MySQL commits each schema change by itself.
func (d *dialect) DDL(ctx context.Context, fn func(sqldest.Conn) error) error {
	return fn(sqldest.StdConn{Q: d.db})
}

// Close closes the pool.
func (d *dialect) Close() error { return d.db.Close() }

// WriteRows upserts rows with multi-row INSERT … ON DUPLICATE KEY UPDATE
// statements of at most maxPlaceholders values and maxChunkBytes.
func (d *dialect) WriteRows(ctx context.Context, tx sqldest.Conn, rs *sqldest.RowSet) error {
	names := rs.Names()
	upsert := rs.Upsert(d)
	per := len(names)
	args := make([]any, 0, per*64)
	size, n := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, sqldest.Insert(d, rs.Table, names, n)+upsert, args...)
		args, size, n = args[:0], 0, 0
		return err
	}
	for i := range rs.Rows {
		rowSize := sizeOf(rs.Rows[i].Values)
		if n > 0 && (len(args)+per > maxPlaceholders || size+rowSize > maxChunkBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		args = rs.Args(args, i)
		size += rowSize
		n++
	}
	return flush()
}

// sizeOf estimates the bytes a row's values take in a statement.
func sizeOf(vals []any) int {
	n := 0
	for _, v := range vals {
		switch x := v.(type) {
		case string:
			n += len(x)
		case json.RawMessage:
			n += len(x)
		default:
			n += 8
		}
	}
	return n
}
