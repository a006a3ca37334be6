package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// stagePrefix names the temporary staging tables a batch is copied into.
const stagePrefix = "_stripeline_stage_"

// InsertNew copies rows whose ids the table lacks straight into it with
// binary COPY: no staging, no conflict handling, the bulk of a backfill.
// Another writer inserting one of them meanwhile is a unique violation,
// which the core answers by writing the batch again through WriteRows.
func (d *dialect) InsertNew(ctx context.Context, tx sqldest.Conn, rs *sqldest.RowSet) error {
	c := tx.(*conn)
	if err := c.asyncCommit(ctx); err != nil {
		return err
	}
	return d.copy(ctx, c, pgx.Identifier{d.schema, rs.Table}, rs.Names(), len(rs.Rows), func(buf []any, i int) []any { return rs.Args(buf, i) })
}

// copy runs COPY of n rows into a table, each made by row into a buffer
// (pgx encodes a row before it asks for the next).
func (d *dialect) copy(ctx context.Context, c *conn, table pgx.Identifier, cols []string, n int, row func(buf []any, i int) []any) error {
	i := 0
	var buf []any
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		buf = row(buf[:0], i)
		i++
		return buf, nil
	})
	_, err := c.tx.CopyFrom(ctx, table, cols, src)
	return err
}

// WriteRows copies the rows into a staging table and merges them with one
// INSERT … SELECT … ON CONFLICT (conditional on the version for an
// OnlyNewer set). The staging table holds the values, the deleted flag and
// the version; the write time and account are the same for every row.
func (d *dialect) WriteRows(ctx context.Context, tx sqldest.Conn, rs *sqldest.RowSet) error {
	c := tx.(*conn)
	if err := c.asyncCommit(ctx); err != nil {
		return err
	}
	var defs, sel strings.Builder
	staged := make([]string, 0, len(rs.Columns)+2)
	for _, col := range rs.Columns {
		defs.WriteString(quote(col.Name) + " " + d.Type(col.Type) + ", ")
		sel.WriteString(quote(col.Name) + ", ")
		staged = append(staged, col.Name)
	}
	defs.WriteString(quote(dest.ColDeleted) + " boolean, " + quote(dest.ColVersion) + " bigint")
	staged = append(staged, dest.ColDeleted, dest.ColVersion)
	stage, err := d.stage(ctx, c, defs.String())
	if err != nil {
		return err
	}
	err = d.copy(ctx, c, pgx.Identifier{stage}, staged, len(rs.Rows), func(buf []any, i int) []any {
		r := &rs.Rows[i]
		return append(append(buf, r.Values...), r.Deleted, r.Version)
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(rs.Columns)+4)
	for _, n := range rs.Names() {
		names = append(names, quote(n))
	}
	q := "INSERT INTO " + d.Table(rs.Table) + " (" + strings.Join(names, ", ") + ") SELECT " + sel.String() +
		quote(dest.ColDeleted) + ", $1::bigint, $2::text, " + quote(dest.ColVersion) + " FROM " + quote(stage) + rs.Upsert(d)
	_, err = c.tx.Exec(ctx, q, rs.SyncedAt, rs.Account)
	return err
}

// stage returns the name of a temporary staging table with the given
// column definitions on c's connection, creating it on first use. It is
// created once per connection and shape and emptied by every commit (ON
// COMMIT DELETE ROWS), instead of being created and dropped by every batch:
// that catalog churn cost as much as a fifth of a batch. It has no
// constraints or indexes; the target's primary key does the merging.
func (d *dialect) stage(ctx context.Context, c *conn, defs string) (string, error) {
	h := fnv.New64a()
	h.Write([]byte(defs))
	name := fmt.Sprintf("%s%016x", stagePrefix, h.Sum64())
	d.stageMu.Lock()
	have := d.stages[c.c][name]
	d.stageMu.Unlock()
	if have {
		return name, nil
	}
	if _, err := c.tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+quote(name)+" ("+defs+") ON COMMIT DELETE ROWS"); err != nil {
		return "", err
	}
	d.stageMu.Lock()
	defer d.stageMu.Unlock()
	if d.stages == nil {
		d.stages = map[*pgx.Conn]map[string]bool{}
	}
	if d.stages[c.c] == nil {
		d.stages[c.c] = map[string]bool{}
	}
	// A transaction that fails may roll the CREATE back: tx then forgets
	// the connection's tables and the next batch makes them again.
	d.stages[c.c][name] = true
	return name, nil
}

// forget drops what is known of c's staging tables (after a failed
// transaction, whose CREATE may have been rolled back, and when the pool
// closes the connection).
func (d *dialect) forget(c *pgx.Conn) {
	d.stageMu.Lock()
	delete(d.stages, c)
	d.stageMu.Unlock()
}
