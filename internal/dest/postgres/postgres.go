// Package postgres is the PostgreSQL destination
// (postgres://user@host:5432/db?schema=stripe). Each batch is one
// transaction together with the checkpoint it advances: rows with ids the
// table does not hold yet are copied straight into it with binary COPY, the
// others are copied into a temporary staging table and merged with one
// INSERT … ON CONFLICT. The rest is the SQL core (sqldest) over this
// package's dialect.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

func init() {
	open := func(ctx context.Context, u *url.URL) (dest.Destination, error) { return Open(ctx, u.String()) }
	dest.Register("postgres", open)
	dest.Register("postgresql", open)
}

// The core (sqldest.DB) asserts the optional interfaces.
var _ dest.Destination = (*Destination)(nil)

// DefaultSchema is where tables go when the URL names no schema.
const DefaultSchema = "stripe"

// poolSize bounds the connections of one destination.
const poolSize = 4

// connectTimeout bounds a connection attempt when the URL sets no
// connect_timeout: an unreachable server is an error, not a hang.
const connectTimeout = 15 * time.Second

// Destination is a replica in one PostgreSQL schema.
type Destination struct {
	*sqldest.DB
}

// Open connects to the server, creates the schema (from the URL's schema
// parameter, default "stripe") and the bookkeeping tables. Any failure
// returns promptly with the connections closed.
func Open(ctx context.Context, rawURL string) (*Destination, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, dest.BadURL(fmt.Errorf("postgres destination %s is not a URL: use postgres://user@host:5432/db?schema=stripe", dest.Redact(rawURL)))
	}
	q := u.Query()
	schema := q.Get("schema")
	if schema == "" {
		schema = DefaultSchema
	}
	q.Del("schema")
	u.RawQuery = q.Encode()
	fail := func(what string, err error) error {
		return fmt.Errorf("%s postgres destination %s: %s (%s)", what, dest.Redact(rawURL), dest.RedactErr(err, rawURL), hint(what, schema, err))
	}
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, dest.BadURL(fail("parse", err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.MaxConns = poolSize
	cfg.MinConns = 0
	d := &dialect{schema: schema, conn: cfg.ConnConfig}
	// A connection's staging tables go with it.
	cfg.BeforeClose = d.forget
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail("connect to", err)
	}
	d.pool = pool
	if err := d.writable(ctx); err != nil {
		pool.Close()
		return nil, fail("connect to", err)
	}
	db, err := sqldest.New(ctx, d)
	if err != nil {
		return nil, fail("set up", err)
	}
	return &Destination{DB: db}, nil
}

// errStandby and errReadOnly say why a server cannot hold a replica.
var (
	errStandby  = errors.New("the server is a read-only standby (in recovery)")
	errReadOnly = errors.New("the session is read-only (default_transaction_read_only is on)")
)

// writable checks the server can take writes.
func (d *dialect) writable(ctx context.Context) error {
	var recovery bool
	var readOnly string
	if err := d.pool.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").Scan(&recovery, &readOnly); err != nil {
		return err
	}
	if recovery {
		return errStandby
	}
	if readOnly == "on" {
		return errReadOnly
	}
	return nil
}

// hint is the fix for a failure of Open.
func hint(what, schema string, err error) string {
	var pe *pgconn.PgError
	switch {
	case what == "parse":
		return "use postgres://user:password@host:5432/db?sslmode=disable&schema=stripe"
	case errors.Is(err, errStandby), errors.Is(err, errReadOnly), errors.As(err, &pe) && pe.Code == "25006":
		return "point the URL at the primary server, or a user and database that can write"
	case errors.As(err, &pe) && pe.Code == "42501":
		return fmt.Sprintf("grant the user CREATE on the database, or create the schema %q for it and grant it USAGE and CREATE there", schema)
	case what == "set up":
		return "check that the user may create and write tables in the schema"
	}
	return "check that PostgreSQL is running there and the URL's user, password and database are right"
}
