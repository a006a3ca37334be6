package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// dialect is PostgreSQL's part of the destination: a pool, the schema, and
// the staging tables each connection has made.
type dialect struct {
	schema string
	pool   *pgxpool.Pool
	conn   *pgx.ConnConfig // for the run lock's own connection

	stageMu sync.Mutex
	stages  map[*pgx.Conn]map[string]bool
}

var (
	_ sqldest.Dialect       = (*dialect)(nil)
	_ sqldest.BulkInserter  = (*dialect)(nil)
	_ sqldest.SessionLocker = (*dialect)(nil)
)

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

func (*dialect) Quote(name string) string   { return quote(name) }
func (d *dialect) Table(name string) string { return pgx.Identifier{d.schema, name}.Sanitize() }
func (*dialect) TableOptions() string       { return "" }
func (d *dialect) Setup() []string          { return []string{"CREATE SCHEMA IF NOT EXISTS " + quote(d.schema)} }
func (*dialect) Rebind(query string) string { return sqldest.Rebind(query) }
func (*dialect) Time(t time.Time) any       { return t.UTC() }
func (*dialect) LockColumn() string         { return "backend_pid" }
func (d *dialect) OnConflict(table string, key, update []string, newer string) string {
	return sqldest.OnConflict(d, table, key, update, newer)
}

// ParseTime reads a timestamptz.
func (*dialect) ParseTime(v any) (time.Time, error) {
	t, ok := v.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("time %v is not a timestamp", v)
	}
	return t.UTC(), nil
}

// types are PostgreSQL's column types.
var types = sqldest.Types{Integer: "bigint", Number: "double precision", Boolean: "boolean", JSON: "jsonb", String: "text", Key: "text", Time: "timestamptz"}

// Type is the column type of t.
func (*dialect) Type(t catalog.Type) string { return types.Of(t) }

// kinds maps information_schema's data types back to catalog's.
var kinds = map[string]catalog.Type{
	"bigint": catalog.TypeInteger, "integer": catalog.TypeInteger, "smallint": catalog.TypeInteger,
	"double precision": catalog.TypeNumber, "real": catalog.TypeNumber, "numeric": catalog.TypeNumber,
	"boolean": catalog.TypeBoolean, "jsonb": catalog.TypeJSON, "json": catalog.TypeJSON,
}

// Columns reads a table's columns from information_schema.
func (d *dialect) Columns(ctx context.Context, c sqldest.Conn, table string) (map[string]catalog.Type, error) {
	var cols map[string]catalog.Type
	err := sqldest.Each(ctx, c, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
		[]any{d.schema, table}, func(v []any) {
			if cols == nil {
				cols = map[string]catalog.Type{}
			}
			name, _ := v[0].(string)
			typ, _ := v[1].(string)
			if cols[name] = kinds[typ]; cols[name] == "" {
				cols[name] = catalog.TypeString
			}
		})
	return cols, err
}

// Tables lists the schema's tables.
func (d *dialect) Tables(ctx context.Context, c sqldest.Conn) ([]string, error) {
	var out []string
	err := sqldest.Each(ctx, c, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`,
		[]any{d.schema}, func(v []any) { out = append(out, fmt.Sprint(v[0])) })
	return out, err
}

// tx runs fn in a transaction on a connection of the pool, after the
// statements of begin. A failed transaction may have rolled back the
// connection's staging tables: they are forgotten.
func (d *dialect) tx(ctx context.Context, opts pgx.TxOptions, fn func(sqldest.Conn) error, begin ...string) error {
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	c := pc.Conn()
	err = pgx.BeginTxFunc(ctx, c, opts, func(tx pgx.Tx) error {
		for _, s := range begin {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return fn(&conn{q: tx, c: c, tx: tx, d: d})
	})
	if err != nil {
		d.forget(c)
	}
	return err
}

// Write runs fn in a transaction.
func (d *dialect) Write(ctx context.Context, fn func(sqldest.Conn) error) error {
	return d.tx(ctx, pgx.TxOptions{}, fn)
}

// Read runs fn in a read-only transaction with the schema first in the
// search path.
func (d *dialect) Read(ctx context.Context, fn func(sqldest.Conn) error) error {
	return d.tx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, fn, "SELECT set_config('search_path', "+quoteLiteral(d.schema+",public")+", true)")
}

// DDL runs fn in a transaction holding the schema's DDL lock, a
// transaction-level advisory lock every destination on the schema takes
// before it creates or alters anything there: two first runs into one new
// schema do not collide on the catalog's unique indexes.
func (d *dialect) DDL(ctx context.Context, fn func(sqldest.Conn) error) error {
	return d.tx(ctx, pgx.TxOptions{}, fn, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", lockKey("ddl", d.schema)))
}

// quoteLiteral quotes a string constant.
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// lockKey is the advisory lock key of parts (hashed: advisory locks are
// per database, one bigint each).
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	h.Write([]byte("stripeline"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return int64(h.Sum64())
}

// Kind classifies PostgreSQL's error codes.
func (*dialect) Kind(err error) sqldest.ErrorKind {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return sqldest.KindOther
	}
	switch pe.Code {
	case "42P01": // undefined_table
		return sqldest.KindNoTable
	case "42701": // duplicate_column
		return sqldest.KindDuplicateColumn
	case "23505", "40P01", "40001": // unique_violation (of COPY), deadlock_detected, serialization_failure
		return sqldest.KindRetry
	}
	return sqldest.KindOther
}

// Close closes the pool.
func (d *dialect) Close() error {
	d.pool.Close()
	return nil
}

// querier is what pgx.Tx and *pgx.Conn have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// conn is a transaction (or a lock's connection) as a sqldest.Conn.
type conn struct {
	q     querier
	c     *pgx.Conn
	tx    pgx.Tx // nil on a lock's connection
	d     *dialect
	async bool // synchronous_commit is off for this transaction
}

// Exec runs a statement and returns how many rows it changed.
func (c *conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

// Query runs a statement that returns rows.
func (c *conn) Query(ctx context.Context, q string, args ...any) (sqldest.Rows, error) {
	rows, err := c.q.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return &pgRows{rows: rows}, nil
}

// asyncCommit lets the commit of a batch of rows skip waiting for the WAL
// flush. Rows and checkpoint are still one transaction: a server crash
// can lose the last few committed batches, but then loses their checkpoint
// with them, so the next run re-reads exactly what was lost (never a
// checkpoint without its rows). Only this transaction is affected; state,
// run records and sweeps commit as usual.
func (c *conn) asyncCommit(ctx context.Context) error {
	if c.async {
		return nil
	}
	c.async = true
	_, err := c.tx.Exec(ctx, "SET LOCAL synchronous_commit = off")
	return err
}

const (
	oidJSON  = 114
	oidJSONB = 3802
)

// pgRows normalises pgx's values: JSON as its text, small integers as
// int64, other types as text.
type pgRows struct{ rows pgx.Rows }

func (r *pgRows) Next() bool { return r.rows.Next() }
func (r *pgRows) Err() error { return r.rows.Err() }
func (r *pgRows) Close()     { r.rows.Close() }

func (r *pgRows) Columns() []string {
	fds := r.rows.FieldDescriptions()
	cols := make([]string, len(fds))
	for i, fd := range fds {
		cols[i] = fd.Name
	}
	return cols
}

func (r *pgRows) Values() ([]any, error) {
	vals, err := r.rows.Values()
	if err != nil {
		return nil, err
	}
	fds, raw := r.rows.FieldDescriptions(), r.rows.RawValues()
	for i, v := range vals {
		vals[i] = normalise(fds[i], raw[i], v)
	}
	return vals, nil
}

func normalise(fd pgconn.FieldDescription, raw []byte, v any) any {
	if v == nil {
		return nil
	}
	if fd.DataTypeOID == oidJSON || fd.DataTypeOID == oidJSONB {
		b := raw
		if fd.DataTypeOID == oidJSONB && fd.Format == pgx.BinaryFormatCode && len(b) > 0 {
			b = b[1:] // jsonb's binary form starts with a version byte
		}
		return string(b)
	}
	switch x := v.(type) {
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case float32:
		return float64(x)
	case string, int64, float64, bool, time.Time:
		return x
	case []byte:
		return string(x)
	default:
		if s, ok := v.(fmt.Stringer); ok {
			return s.String()
		}
		if b, err := json.Marshal(v); err == nil {
			return string(b)
		}
		return fmt.Sprint(v)
	}
}
