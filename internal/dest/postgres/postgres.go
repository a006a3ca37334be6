// Package postgres is the PostgreSQL destination
// (postgres://user@host:5432/db?schema=stripe). Each batch is one
// transaction together with the checkpoint it advances: rows with ids the
// table does not hold yet are copied straight into it with binary COPY, the
// others are copied into a temporary staging table and merged with one
// INSERT … ON CONFLICT.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

func init() {
	open := func(ctx context.Context, u *url.URL) (dest.Destination, error) { return Open(ctx, u.String()) }
	dest.Register("postgres", open)
	dest.Register("postgresql", open)
}

var (
	_ dest.Destination = (*Destination)(nil)
	_ dest.Querier     = (*Destination)(nil)
	_ dest.Reader      = (*Destination)(nil)
)

// DefaultSchema is where tables go when the URL names no schema.
const DefaultSchema = "stripe"

// poolSize bounds the connections of one destination.
const poolSize = 4

// stagePrefix names the temporary staging tables a batch is copied into.
const stagePrefix = "_stripeline_stage_"

func sqlType(t catalog.Type) string {
	switch t {
	case catalog.TypeInteger:
		return "bigint"
	case catalog.TypeNumber:
		return "double precision"
	case catalog.TypeBoolean:
		return "boolean"
	case catalog.TypeJSON:
		return "jsonb"
	default:
		return "text"
	}
}

// Destination is a replica in one PostgreSQL schema.
type Destination struct {
	schema string
	pool   *pgxpool.Pool
	conn   *pgx.ConnConfig // for the run lock's own connection

	ddlMu  sync.Mutex                 // serialises this process's schema changes
	tables map[string]map[string]bool // table → existing columns, under ddlMu

	stageMu sync.Mutex
	stages  map[*pgx.Conn]map[string]bool // staging tables each connection has

	closed atomic.Bool
}

// stage returns the name of a temporary staging table with the given
// column definitions on connection c, creating it on first use. It is
// created once per connection and shape and emptied by every commit (ON
// COMMIT DELETE ROWS), instead of being created and dropped by every batch:
// that catalog churn cost as much as a fifth of a batch. It has no
// constraints or indexes; the target's primary key does the merging.
func (d *Destination) stage(ctx context.Context, c *pgx.Conn, tx pgx.Tx, defs string) (string, error) {
	h := fnv.New64a()
	h.Write([]byte(defs))
	name := fmt.Sprintf("%s%016x", stagePrefix, h.Sum64())
	d.stageMu.Lock()
	have := d.stages[c][name]
	d.stageMu.Unlock()
	if have {
		return name, nil
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+quote(name)+" ("+defs+") ON COMMIT DELETE ROWS"); err != nil {
		return "", err
	}
	d.stageMu.Lock()
	if d.stages == nil {
		d.stages = map[*pgx.Conn]map[string]bool{}
	}
	if d.stages[c] == nil {
		d.stages[c] = map[string]bool{}
	}
	// A transaction that fails may roll the CREATE back: write then
	// forgets the connection's tables (forget) and the next batch makes
	// them again.
	d.stages[c][name] = true
	d.stageMu.Unlock()
	return name, nil
}

// forget drops what is known of c's staging tables (after a failed
// transaction, whose CREATE may have been rolled back).
func (d *Destination) forget(c *pgx.Conn) {
	d.stageMu.Lock()
	delete(d.stages, c)
	d.stageMu.Unlock()
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
		return fmt.Errorf("%s postgres destination %s: %s (%s)", what, dest.Redact(rawURL), redactErr(err, u), hint(what, schema, err))
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
	d := &Destination{schema: schema, conn: cfg.ConnConfig, tables: map[string]map[string]bool{}}
	// A connection's staging tables go with it.
	cfg.BeforeClose = d.forget
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail("connect to", err)
	}
	d.pool = pool
	pc, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fail("connect to", err)
	}
	err = d.setup(ctx, pc.Conn())
	pc.Release()
	if err != nil {
		pool.Close()
		return nil, fail("set up", err)
	}
	return d, nil
}

// connectTimeout bounds a connection attempt when the URL sets no
// connect_timeout: an unreachable server is an error, not a hang.
const connectTimeout = 15 * time.Second

// errStandby and errReadOnly say why a server cannot hold a replica.
var (
	errStandby  = errors.New("the server is a read-only standby (in recovery)")
	errReadOnly = errors.New("the session is read-only (default_transaction_read_only is on)")
)

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

// setup checks the server can take writes and creates what is missing of
// the schema and the bookkeeping tables. Creation is serialised with other
// sessions (other processes too) by a transaction-level advisory lock, so
// two first runs into one new schema do not collide on the catalog's
// unique indexes; a replica that exists needs no CREATE privilege.
func (d *Destination) setup(ctx context.Context, c *pgx.Conn) error {
	var recovery bool
	var readOnly string
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").Scan(&recovery, &readOnly); err != nil {
		return err
	}
	if recovery {
		return errStandby
	}
	if readOnly == "on" {
		return errReadOnly
	}
	tables := []string{dest.StateTable, dest.RunsTable, dest.LocksTable}
	present := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) (bool, error) {
		var n int
		err := q.QueryRow(ctx, `SELECT (to_regnamespace($1) IS NOT NULL)::int + (to_regclass($2) IS NOT NULL)::int + (to_regclass($3) IS NOT NULL)::int + (to_regclass($4) IS NOT NULL)::int`,
			quote(d.schema), d.ident(tables[0]), d.ident(tables[1]), d.ident(tables[2])).Scan(&n)
		return n == 1+len(tables), err
	}
	if ok, err := present(c); err != nil || ok {
		return err
	}
	return d.ddl(ctx, c, func(tx pgx.Tx) error {
		for _, s := range []string{
			"CREATE SCHEMA IF NOT EXISTS " + d.ident(),
			"CREATE TABLE IF NOT EXISTS " + d.ident(dest.StateTable) + ` (
			"pipeline" text NOT NULL, "stream" text NOT NULL, "cursor" jsonb, "updated_at" timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY ("pipeline", "stream"))`,
			"CREATE TABLE IF NOT EXISTS " + d.ident(dest.RunsTable) + ` (
			"id" text PRIMARY KEY, "pipeline" text NOT NULL, "started" timestamptz NOT NULL, "finished" timestamptz,
			"status" text NOT NULL, "streams" jsonb, "error" text)`,
			"CREATE TABLE IF NOT EXISTS " + d.ident(dest.LocksTable) + ` (
			"pipeline" text PRIMARY KEY, "host" text NOT NULL, "pid" bigint NOT NULL, "run_id" text NOT NULL,
			"since" timestamptz NOT NULL, "backend_pid" integer NOT NULL)`,
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
}

// ddl runs fn in a transaction holding the schema's DDL lock, a
// transaction-level advisory lock every destination on the schema takes
// before it creates or alters anything there.
func (d *Destination) ddl(ctx context.Context, c *pgx.Conn, fn func(pgx.Tx) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("ddl", d.schema)); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
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

// redactErr renders err with the URL's password hidden, in case a driver
// message repeats it.
func redactErr(err error, u *url.URL) string {
	msg := err.Error()
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// ident quotes schema-qualified names: ident() is the schema, ident(t) a table.
func (d *Destination) ident(name ...string) string {
	return pgx.Identifier(append([]string{d.schema}, name...)).Sanitize()
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// Close closes the connections.
func (d *Destination) Close() error {
	d.closed.Store(true)
	d.pool.Close()
	return nil
}

// Migrate creates the table or adds the columns it lacks.
func (d *Destination) Migrate(ctx context.Context, t dest.Table) error {
	if err := d.ensure(ctx, t); err != nil {
		return fmt.Errorf("migrate %s: %w", t.Name, err)
	}
	return nil
}

func (d *Destination) ensure(ctx context.Context, t dest.Table) error {
	d.ddlMu.Lock()
	defer d.ddlMu.Unlock()
	cols := d.tables[t.Name]
	if cols != nil && !lacks(cols, t) {
		return nil
	}
	pc, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	c := pc.Conn()
	if cols == nil {
		if cols, err = d.columns(ctx, c, t.Name); err != nil {
			return err
		}
		if cols != nil && !lacks(cols, t) {
			d.tables[t.Name] = cols
			return nil
		}
	}
	// Another process may be changing the same table: look again under
	// the schema's DDL lock, then create or alter.
	err = d.ddl(ctx, c, func(tx pgx.Tx) error {
		if cols, err = d.columns(ctx, tx, t.Name); err != nil {
			return err
		}
		if cols == nil {
			var b strings.Builder
			b.WriteString("CREATE TABLE IF NOT EXISTS " + d.ident(t.Name) + ` ("id" text PRIMARY KEY`)
			cols = map[string]bool{"id": true}
			for _, col := range t.Columns {
				if cols[col.Name] {
					continue
				}
				cols[col.Name] = true
				b.WriteString(", " + quote(col.Name) + " " + sqlType(col.Type))
			}
			b.WriteString(", " + quote(dest.ColDeleted) + " boolean NOT NULL DEFAULT false")
			b.WriteString(", " + quote(dest.ColSyncedAt) + " bigint")
			b.WriteString(", " + quote(dest.ColAccount) + " text NOT NULL DEFAULT '')")
			if _, err := tx.Exec(ctx, b.String()); err != nil {
				return err
			}
			cols[dest.ColDeleted], cols[dest.ColSyncedAt], cols[dest.ColAccount] = true, true, true
			return nil
		}
		for _, col := range t.Columns {
			if cols[col.Name] {
				continue
			}
			if _, err := tx.Exec(ctx, "ALTER TABLE "+d.ident(t.Name)+" ADD COLUMN IF NOT EXISTS "+quote(col.Name)+" "+sqlType(col.Type)); err != nil {
				return err
			}
			cols[col.Name] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.tables[t.Name] = cols
	return nil
}

// lacks reports whether t has a column cols does not.
func lacks(cols map[string]bool, t dest.Table) bool {
	for _, c := range t.Columns {
		if !cols[c.Name] {
			return true
		}
	}
	return false
}

// columns reads a table's columns; nil when the table does not exist.
func (d *Destination) columns(ctx context.Context, q querier, table string) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, d.schema, table)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) == 0 {
		return nil, err
	}
	cols := make(map[string]bool, len(names))
	for _, n := range names {
		cols[n] = true
	}
	return cols, nil
}

// Write upserts the batch's rows and saves its state in one transaction.
func (d *Destination) Write(ctx context.Context, b *dest.Batch) error {
	err := d.write(ctx, b, true)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		// Another writer inserted one of the ids between the lookup and
		// the COPY: merge everything through the staging table instead.
		err = d.write(ctx, b, false)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", b.Table.Name, err)
	}
	return nil
}

// write upserts a batch in one transaction. With direct, rows whose ids
// are not in the table yet are copied straight into it (COPY, no staging,
// no conflict handling: the bulk of a backfill); the others are copied
// into a staging table and merged with INSERT … ON CONFLICT.
func (d *Destination) write(ctx context.Context, b *dest.Batch, direct bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full, deleted, stubs, err := b.Merge()
	if err != nil {
		return err
	}
	if err := d.ensure(ctx, b.Table); err != nil {
		return err
	}
	synced := b.SyncedAt.Unix()
	if b.SyncedAt.IsZero() {
		synced = time.Now().Unix()
	}
	pc, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	c := pc.Conn()
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	committed := false
	defer func() {
		if !committed {
			d.forget(c)
		}
	}()
	// The commit does not wait for the WAL flush. Rows and checkpoint are
	// still one transaction: a server crash can lose the last few
	// committed batches, but then loses their checkpoint with them, so the
	// next run re-reads exactly what was lost (never a checkpoint without
	// its rows). Only this transaction is affected.
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
		return err
	}
	tn := d.ident(b.Table.Name)
	bkSet := quote(dest.ColDeleted) + " = EXCLUDED." + quote(dest.ColDeleted) + ", " +
		quote(dest.ColSyncedAt) + " = EXCLUDED." + quote(dest.ColSyncedAt) + ", " +
		quote(dest.ColAccount) + " = EXCLUDED." + quote(dest.ColAccount)
	if len(full) > 0 && direct {
		// New ids go straight into the table; the rest are merged below.
		colNames := make([]string, 0, len(b.Table.Columns)+3)
		for _, col := range b.Table.Columns {
			colNames = append(colNames, col.Name)
		}
		colNames = append(colNames, dest.ColDeleted, dest.ColSyncedAt, dest.ColAccount)
		fresh, freshDel, old, oldDel, err := d.splitNew(ctx, tx, tn, b.Table.Columns, full, deleted)
		if err != nil {
			return err
		}
		if len(fresh) > 0 {
			i := 0
			src := pgx.CopyFromFunc(func() ([]any, error) {
				if i >= len(fresh) {
					return nil, nil
				}
				row := append(fresh[i], freshDel[i], synced, b.Account)
				i++
				return row, nil
			})
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{d.schema, b.Table.Name}, colNames, src); err != nil {
				return err
			}
		}
		full, deleted = old, oldDel
	}
	if len(full) > 0 {
		var def, names, set strings.Builder
		colNames := make([]string, 0, len(b.Table.Columns)+1)
		for i, col := range b.Table.Columns {
			if i > 0 {
				def.WriteString(", ")
				names.WriteString(", ")
			}
			def.WriteString(quote(col.Name) + " " + sqlType(col.Type))
			names.WriteString(quote(col.Name))
			if col.Name != "id" {
				set.WriteString(quote(col.Name) + " = EXCLUDED." + quote(col.Name) + ", ")
			}
			colNames = append(colNames, col.Name)
		}
		colNames = append(colNames, dest.ColDeleted)
		stage, err := d.stage(ctx, c, tx, def.String()+", "+quote(dest.ColDeleted)+" boolean")
		if err != nil {
			return err
		}
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i >= len(full) {
				return nil, nil
			}
			row := append(full[i], deleted[i])
			i++
			return row, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, colNames, src); err != nil {
			return err
		}
		q := "INSERT INTO " + tn + " (" + names.String() + ", " + quote(dest.ColDeleted) + ", " + quote(dest.ColSyncedAt) + ", " + quote(dest.ColAccount) +
			") SELECT " + names.String() + ", " + quote(dest.ColDeleted) + ", $1::bigint, $2::text FROM " + quote(stage) +
			` ON CONFLICT ("id") DO UPDATE SET ` + set.String() + bkSet
		if _, err := tx.Exec(ctx, q, synced, b.Account); err != nil {
			return err
		}
	}
	if len(stubs) > 0 {
		q := "INSERT INTO " + tn + ` ("id", ` + quote(dest.ColDeleted) + ", " + quote(dest.ColSyncedAt) + ", " + quote(dest.ColAccount) +
			`) SELECT unnest($1::text[]), true, $2::bigint, $3::text ON CONFLICT ("id") DO UPDATE SET ` + bkSet
		if _, err := tx.Exec(ctx, q, stubs, synced, b.Account); err != nil {
			return err
		}
	}
	if st := b.State; st != nil {
		if err := d.saveState(ctx, tx, *st); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	committed = true
	return nil
}

// saveState upserts one checkpoint inside tx.
func (d *Destination) saveState(ctx context.Context, tx pgx.Tx, st dest.State) error {
	var cursor any
	if st.Cursor != nil {
		cursor = string(st.Cursor)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+d.ident(dest.StateTable)+` ("pipeline", "stream", "cursor", "updated_at") VALUES ($1, $2, $3::jsonb, now())
		ON CONFLICT ("pipeline", "stream") DO UPDATE SET "cursor" = EXCLUDED."cursor", "updated_at" = EXCLUDED."updated_at"`,
		st.Pipeline, st.Stream, cursor); err != nil {
		return fmt.Errorf("save state of %s: %w", st.Stream, err)
	}
	return nil
}

// SaveState saves checkpoints without rows in one transaction.
func (d *Destination) SaveState(ctx context.Context, states ...dest.State) error {
	if d.closed.Load() {
		return dest.ErrClosed
	}
	if err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		for _, st := range states {
			if err := d.saveState(ctx, tx, st); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return d.closedErr(err)
	}
	return nil
}

// closedErr wraps dest.ErrClosed into err when the pool is closed.
func (d *Destination) closedErr(err error) error {
	if d.closed.Load() {
		return fmt.Errorf("%w: %w", dest.ErrClosed, err)
	}
	return err
}

// acquire takes a connection of the pool; dest.ErrClosed after Close.
func (d *Destination) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if d.closed.Load() {
		return nil, dest.ErrClosed
	}
	return d.pool.Acquire(ctx)
}

// splitNew separates the rows whose ids the table does not hold yet.
func (d *Destination) splitNew(ctx context.Context, tx pgx.Tx, tn string, cols []dest.Column, full [][]any, deleted []bool) (fresh [][]any, freshDel []bool, old [][]any, oldDel []bool, err error) {
	idCol := 0
	for i, c := range cols {
		if c.Name == "id" {
			idCol = i
		}
	}
	ids := make([]string, len(full))
	for i, r := range full {
		ids[i], _ = r[idCol].(string)
	}
	rows, err := tx.Query(ctx, `SELECT "id" FROM `+tn+` WHERE "id" = ANY($1::text[])`, ids)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if len(have) == 0 {
		return full, deleted, nil, nil, nil
	}
	exists := make(map[string]bool, len(have))
	for _, id := range have {
		exists[id] = true
	}
	for i, r := range full {
		if exists[ids[i]] {
			old, oldDel = append(old, r), append(oldDel, deleted[i])
		} else {
			fresh, freshDel = append(fresh, r), append(freshDel, deleted[i])
		}
	}
	return fresh, freshDel, old, oldDel, nil
}

// LoadState returns the saved cursors of a pipeline by stream.
func (d *Destination) LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error) {
	pc, err := d.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	defer pc.Release()
	c := pc.Conn()
	rows, err := c.Query(ctx, `SELECT "stream", "cursor"::text FROM `+d.ident(dest.StateTable)+` WHERE "pipeline" = $1`, pipeline)
	if err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var stream string
		var cursor *string
		if err := rows.Scan(&stream, &cursor); err != nil {
			return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
		}
		if cursor != nil {
			out[stream] = json.RawMessage(*cursor)
		} else {
			out[stream] = nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	return out, nil
}

// SaveRun inserts or updates a run record by id.
func (d *Destination) SaveRun(ctx context.Context, r dest.Run) error {
	pc, err := d.acquire(ctx)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	defer pc.Release()
	c := pc.Conn()
	var finished *time.Time
	if !r.Finished.IsZero() {
		finished = &r.Finished
	}
	var streams *string
	if r.Streams != nil {
		s := string(r.Streams)
		streams = &s
	}
	_, err = c.Exec(ctx, "INSERT INTO "+d.ident(dest.RunsTable)+` ("id", "pipeline", "started", "finished", "status", "streams", "error")
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
		ON CONFLICT ("id") DO UPDATE SET "pipeline" = EXCLUDED."pipeline", "started" = EXCLUDED."started", "finished" = EXCLUDED."finished",
		"status" = EXCLUDED."status", "streams" = EXCLUDED."streams", "error" = EXCLUDED."error"`,
		r.ID, r.Pipeline, r.Started, finished, r.Status, streams, r.Error)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// Runs lists the most recent runs, newest first.
func (d *Destination) Runs(ctx context.Context, pipeline string, limit int) ([]dest.Run, error) {
	pc, err := d.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer pc.Release()
	c := pc.Conn()
	q := `SELECT "id", "pipeline", "started", "finished", "status", "streams"::text, "error" FROM ` + d.ident(dest.RunsTable) +
		` WHERE $1 = '' OR "pipeline" = $1 ORDER BY "started" DESC, "id" DESC`
	args := []any{pipeline}
	if limit > 0 {
		q += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []dest.Run
	for rows.Next() {
		var r dest.Run
		var finished *time.Time
		var streams, errText *string
		if err := rows.Scan(&r.ID, &r.Pipeline, &r.Started, &finished, &r.Status, &streams, &errText); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		r.Started = r.Started.UTC()
		if finished != nil {
			r.Finished = finished.UTC()
		}
		if streams != nil {
			r.Streams = json.RawMessage(*streams)
		}
		if errText != nil {
			r.Error = *errText
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// Query runs an SQL statement with search_path set to the replica's schema
// inside a read-only transaction. JSON comes back as json.RawMessage text,
// integers as int64, times as RFC 3339 strings.
func (d *Destination) Query(ctx context.Context, sql string, args ...any) ([]string, [][]any, error) {
	pc, err := d.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer pc.Release()
	c := pc.Conn()
	tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", d.schema+",public"); err != nil {
		return nil, nil, err
	}
	if len(args) > 0 {
		sql = sqldest.Rebind(sql)
	}
	return collect(ctx, tx, sql, false, args...)
}

// ReadRows reads a whole table back, values normalised.
func (d *Destination) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	pc, err := d.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer pc.Release()
	c := pc.Conn()
	cols, rows, err := collect(ctx, c, "SELECT * FROM "+d.ident(table), true)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		err = fmt.Errorf("%w: %w", dest.ErrNoTable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		m := make(map[string]any, len(cols))
		for j, c := range cols {
			m[c] = r[j]
		}
		out[i] = m
	}
	return out, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const (
	oidJSON  = 114
	oidJSONB = 3802
)

// collect runs q and normalises its values.
func collect(ctx context.Context, c querier, q string, rawJSON bool, args ...any) ([]string, [][]any, error) {
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	cols := make([]string, len(fds))
	for i, fd := range fds {
		cols[i] = fd.Name
	}
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, nil, err
		}
		raw := rows.RawValues()
		for i, v := range vals {
			vals[i] = normalise(fds[i], raw[i], v, rawJSON)
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

func normalise(fd pgconn.FieldDescription, raw []byte, v any, rawJSON bool) any {
	if v == nil {
		return nil
	}
	if fd.DataTypeOID == oidJSON || fd.DataTypeOID == oidJSONB {
		b := raw
		if fd.DataTypeOID == oidJSONB && fd.Format == pgx.BinaryFormatCode && len(b) > 0 {
			b = b[1:] // jsonb's binary form starts with a version byte
		}
		if rawJSON {
			return json.RawMessage(append([]byte(nil), b...))
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
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case string, int64, float64, bool:
		return x
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
