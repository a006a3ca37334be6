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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
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
	pool   *pool

	ddl    sync.Mutex                 // serialises schema changes
	tables map[string]map[string]bool // table → existing columns, under ddl

	stageMu sync.Mutex
	stages  map[*pgx.Conn]map[string]bool // staging tables each connection has
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
// parameter, default "stripe") and the bookkeeping tables.
func Open(ctx context.Context, rawURL string) (*Destination, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres destination %s is not a URL: use postgres://user@host:5432/db?schema=stripe", dest.Redact(rawURL))
	}
	q := u.Query()
	schema := q.Get("schema")
	if schema == "" {
		schema = DefaultSchema
	}
	q.Del("schema")
	u.RawQuery = q.Encode()
	fail := func(what string, err error) error {
		hint := "check that PostgreSQL is running there and the URL's user, password and database are right"
		if what == "parse" {
			hint = "use postgres://user:password@host:5432/db?sslmode=disable&schema=stripe"
		}
		return fmt.Errorf("%s postgres destination %s: %s (%s)", what, dest.Redact(rawURL), redactErr(err, u), hint)
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fail("parse", err)
	}
	d := &Destination{schema: schema, pool: newPool(cfg, poolSize), tables: map[string]map[string]bool{}}
	c, err := d.pool.get(ctx)
	if err != nil {
		return nil, fail("connect to", err)
	}
	defer d.pool.put(c)
	setup := []string{
		"CREATE SCHEMA IF NOT EXISTS " + d.ident(),
		"CREATE TABLE IF NOT EXISTS " + d.ident(dest.StateTable) + ` (
			"pipeline" text NOT NULL, "stream" text NOT NULL, "cursor" jsonb, "updated_at" timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY ("pipeline", "stream"))`,
		"CREATE TABLE IF NOT EXISTS " + d.ident(dest.RunsTable) + ` (
			"id" text PRIMARY KEY, "pipeline" text NOT NULL, "started" timestamptz NOT NULL, "finished" timestamptz,
			"status" text NOT NULL, "streams" jsonb, "error" text)`,
	}
	for _, s := range setup {
		if _, err := c.Exec(ctx, s); err != nil {
			d.pool.put(c)
			d.pool.close()
			return nil, fail("set up", err)
		}
	}
	return d, nil
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
	d.pool.close()
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
	d.ddl.Lock()
	defer d.ddl.Unlock()
	cols := d.tables[t.Name]
	if cols != nil {
		missing := false
		for _, c := range t.Columns {
			if !cols[c.Name] {
				missing = true
			}
		}
		if !missing {
			return nil
		}
	}
	c, err := d.pool.get(ctx)
	if err != nil {
		return err
	}
	defer d.pool.put(c)
	if cols == nil {
		rows, err := c.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, d.schema, t.Name)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(names) > 0 {
			cols = map[string]bool{}
			for _, n := range names {
				cols[n] = true
			}
		}
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
		if _, err := c.Exec(ctx, b.String()); err != nil {
			return err
		}
		cols[dest.ColDeleted], cols[dest.ColSyncedAt], cols[dest.ColAccount] = true, true, true
		d.tables[t.Name] = cols
		return nil
	}
	d.tables[t.Name] = cols
	for _, col := range t.Columns {
		if cols[col.Name] {
			continue
		}
		if _, err := c.Exec(ctx, "ALTER TABLE "+d.ident(t.Name)+" ADD COLUMN IF NOT EXISTS "+quote(col.Name)+" "+sqlType(col.Type)); err != nil {
			return err
		}
		cols[col.Name] = true
	}
	return nil
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
	c, err := d.pool.get(ctx)
	if err != nil {
		return err
	}
	defer d.pool.put(c)
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
		var cursor any
		if st.Cursor != nil {
			cursor = string(st.Cursor)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+d.ident(dest.StateTable)+` ("pipeline", "stream", "cursor", "updated_at") VALUES ($1, $2, $3::jsonb, now())
			ON CONFLICT ("pipeline", "stream") DO UPDATE SET "cursor" = EXCLUDED."cursor", "updated_at" = EXCLUDED."updated_at"`,
			st.Pipeline, st.Stream, cursor); err != nil {
			return fmt.Errorf("save state of %s: %w", st.Stream, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	committed = true
	return nil
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
	c, err := d.pool.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	defer d.pool.put(c)
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
	c, err := d.pool.get(ctx)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	defer d.pool.put(c)
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
	c, err := d.pool.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer d.pool.put(c)
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
func (d *Destination) Query(ctx context.Context, sql string) ([]string, [][]any, error) {
	c, err := d.pool.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer d.pool.put(c)
	tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", d.schema+",public"); err != nil {
		return nil, nil, err
	}
	return collect(ctx, tx, sql, false)
}

// ReadRows reads a whole table back, values normalised.
func (d *Destination) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	c, err := d.pool.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer d.pool.put(c)
	cols, rows, err := collect(ctx, c, "SELECT * FROM "+d.ident(table), true)
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
func collect(ctx context.Context, c querier, q string, rawJSON bool) ([]string, [][]any, error) {
	rows, err := c.Query(ctx, q)
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
