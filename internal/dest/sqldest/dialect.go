package sqldest

import (
	"context"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
)

// Types of the bookkeeping tables' columns besides catalog's: Dialect.Type
// maps them too.
const (
	// TypeKey is text that is part of a key or an index (MySQL cannot
	// index LONGTEXT).
	TypeKey catalog.Type = "sqldest.key"
	// TypeTime is a point in time (Dialect.Time encodes it).
	TypeTime catalog.Type = "sqldest.time"
)

// Types names a dialect's SQL type of each column type (Syntax.Type).
type Types struct {
	Integer, Number, Boolean, JSON, String, Key, Time string
}

// Of is the SQL type of t; String for a type it does not know.
func (ts Types) Of(t catalog.Type) string {
	switch t {
	case catalog.TypeInteger:
		return ts.Integer
	case catalog.TypeNumber:
		return ts.Number
	case catalog.TypeBoolean:
		return ts.Boolean
	case catalog.TypeJSON:
		return ts.JSON
	case TypeKey:
		return ts.Key
	case TypeTime:
		return ts.Time
	}
	return ts.String
}

// Syntax is how a dialect writes SQL. Every method is a pure function of
// its arguments, safe for concurrent use.
type Syntax interface {
	// Quote quotes one name (a column, a table without its schema).
	Quote(name string) string
	// Table is a table's name as statements write it: quoted, and
	// qualified by the schema where the dialect has one.
	Table(name string) string
	// Type is the SQL type of a column of type t: one of catalog's types,
	// TypeKey or TypeTime.
	Type(t catalog.Type) string
	// TableOptions ends a CREATE TABLE statement: "" or MySQL's engine
	// and character set.
	TableOptions() string
	// Setup lists the statements run before the bookkeeping tables are
	// first created (PostgreSQL's CREATE SCHEMA).
	Setup() []string
	// Rebind rewrites the ? placeholders of a statement for the driver
	// (Rebind for PostgreSQL; the statement as it is elsewhere).
	Rebind(query string) string
	// OnConflict is the clause that makes INSERT … VALUES or INSERT …
	// SELECT of table an upsert on the key columns, setting the update
	// columns from the inserted row; with newer set, only where the
	// inserted row's newer column is greater than the stored row's.
	OnConflict(table string, key, update []string, newer string) string
	// Time encodes a time for a TypeTime column; ParseTime decodes what
	// a read of one returns.
	Time(t time.Time) any
	ParseTime(v any) (time.Time, error)
}

// Dialect is one SQL database's part of a destination: its Syntax, its
// catalog, its connections and its fastest way to upsert rows. The core
// (DB) does the rest. Every method is safe for concurrent use; the
// dialect serialises what its database needs (SQLite's single writer).
type Dialect interface {
	Syntax
	// Columns reads a table's columns and their types (mapped back from
	// the SQL types to catalog's); nil and no error when the table does
	// not exist.
	Columns(ctx context.Context, c Conn, table string) (map[string]catalog.Type, error)
	// Tables lists the database's tables (of the schema, where there is
	// one), bookkeeping tables included.
	Tables(ctx context.Context, c Conn) ([]string, error)
	// Write runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise.
	Write(ctx context.Context, fn func(tx Conn) error) error
	// Read runs fn on a read-only transaction (with the schema first in
	// the search path where there is one).
	Read(ctx context.Context, fn func(c Conn) error) error
	// DDL runs fn for a schema change, serialised with the other writers
	// of the database where it can be (a transaction-level advisory lock).
	DDL(ctx context.Context, fn func(c Conn) error) error
	// WriteRows upserts rows by id inside a Write transaction.
	WriteRows(ctx context.Context, tx Conn, rs *RowSet) error
	// Kind classifies an error of the driver.
	Kind(err error) ErrorKind
	// Close closes every connection; the core calls it once.
	Close() error
}

// BulkInserter is implemented by dialects with a faster path for rows
// whose ids the table does not hold yet (PostgreSQL's COPY, MySQL's LOAD
// DATA): the core looks the batch's ids up in the write transaction and
// gives the new ones to InsertNew, the others to WriteRows.
type BulkInserter interface {
	// InsertNew inserts rows that are not in the table. Another writer
	// inserting one of them meanwhile is an error of Kind KindRetry: the
	// core then writes the batch again without this path.
	InsertNew(ctx context.Context, tx Conn, rs *RowSet) error
}

// SessionLocker is implemented by dialects whose run lock is held by a
// database session (an advisory lock): DB.Lock uses it.
type SessionLocker interface {
	// LockSession opens a connection of its own to hold the run lock of
	// one pipeline.
	LockSession(ctx context.Context, pipeline string) (LockSession, error)
	// LockColumn names the column of dest.LocksTable that holds the
	// holder session's id.
	LockColumn() string
}

// LockSession is a connection of its own that holds, or tries to hold,
// one pipeline's run lock.
type LockSession interface {
	Conn
	// TryLock takes the lock if it is free, without waiting.
	TryLock(ctx context.Context) (bool, error)
	// Self is the SQL expression of this session's id.
	Self() string
	// Holds is the SQL condition, on a row of dest.LocksTable named h,
	// that the session it names holds the lock right now, and its
	// arguments.
	Holds() (cond string, args []any)
	// Release releases the lock.
	Release(ctx context.Context) error
	// Wait returns nil when ctx is done, or an error as soon as the
	// session has ended (and the lock with it).
	Wait(ctx context.Context) error
	// Close closes the connection, which releases the lock.
	Close()
}

// ErrorKind is what the core needs to know of a driver's error.
type ErrorKind int

// Error kinds.
const (
	// KindOther is any other error.
	KindOther ErrorKind = iota
	// KindNoTable: the statement names a table that does not exist.
	KindNoTable
	// KindDuplicateColumn: ADD COLUMN of a column that exists (another
	// writer added it first).
	KindDuplicateColumn
	// KindRetry: the transaction failed as a whole and the batch may be
	// written again, without the bulk path (a deadlock, a unique
	// violation of InsertNew, a bulk load that did not take every row).
	KindRetry
)

// Conn is a connection or transaction of a dialect's driver. Statements
// arrive with their placeholders rebound (Syntax.Rebind).
type Conn interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is a result being read.
type Rows interface {
	Columns() []string
	Next() bool
	// Values returns the current row: nil, string, int64, float64, bool
	// or time.Time, JSON as its text.
	Values() ([]any, error)
	Err() error
	Close()
}
