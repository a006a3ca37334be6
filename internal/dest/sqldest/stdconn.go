package sqldest

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// StdQuerier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type StdQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// StdConn is a Conn over database/sql, for dialects whose driver is one.
// JSON arguments go as text.
type StdConn struct{ Q StdQuerier }

// Exec runs a statement and returns how many rows it changed.
func (c StdConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.Q.ExecContext(ctx, query, textJSON(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query runs a statement that returns rows.
func (c StdConn) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := c.Q.QueryContext(ctx, query, textJSON(args)...)
	if err != nil {
		return nil, err
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, err
	}
	types := make([]string, len(cts))
	for i, ct := range cts {
		types[i] = strings.ToUpper(ct.DatabaseTypeName())
	}
	return &stdRows{rows: rows, cols: cols, types: types}, nil
}

// textJSON returns args with json.RawMessage values as strings (a copy
// if there are any): drivers send []byte as binary, which a JSON column
// refuses.
func textJSON(args []any) []any {
	var out []any
	for i, a := range args {
		raw, ok := a.(json.RawMessage)
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(args)
		}
		out[i] = nil
		if raw != nil {
			out[i] = string(raw)
		}
	}
	if out == nil {
		return args
	}
	return out
}

type stdRows struct {
	rows  *sql.Rows
	cols  []string
	types []string
}

func (r *stdRows) Columns() []string { return r.cols }
func (r *stdRows) Next() bool        { return r.rows.Next() }
func (r *stdRows) Err() error        { return r.rows.Err() }
func (r *stdRows) Close()            { r.rows.Close() }

// Values scans the row; text a driver returns for a number (MySQL's text
// protocol) becomes the number its column type says.
func (r *stdRows) Values() ([]any, error) {
	vals := make([]any, len(r.cols))
	ptrs := make([]any, len(r.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := r.rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, v := range vals {
		switch x := v.(type) {
		case []byte:
			vals[i] = fromText(r.types[i], string(x))
		case uint64:
			vals[i] = int64(x)
		case int32:
			vals[i] = int64(x)
		case float32:
			vals[i] = float64(x)
		}
	}
	return vals, nil
}

// fromText reads text of a column of the given database type.
func fromText(dbType, s string) any {
	switch {
	case strings.Contains(dbType, "INT") || dbType == "YEAR":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case strings.Contains(dbType, "DOUBLE"), strings.Contains(dbType, "FLOAT"), strings.Contains(dbType, "REAL"), strings.Contains(dbType, "DECIMAL"):
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return s
}
