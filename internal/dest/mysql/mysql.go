// Package mysql is the MySQL/MariaDB destination
// (mysql://user:pass@host:3306/db): multi-row INSERT … ON DUPLICATE KEY
// UPDATE in chunks, JSON columns, utf8mb4, and the checkpoint in the same
// transaction as its rows.
package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

func init() {
	dest.Register("mysql", func(ctx context.Context, u *url.URL) (dest.Destination, error) { return Open(ctx, u.String()) })
}

var (
	_ dest.Destination = (*Destination)(nil)
	_ dest.Querier     = (*Destination)(nil)
	_ dest.Reader      = (*Destination)(nil)
)

// Chunk limits of one INSERT statement: below MySQL's 65,535 placeholders
// and well below the default max_allowed_packet (16 MiB on MariaDB, 64 MiB
// on MySQL 8).
const (
	maxPlaceholders = 60000
	maxChunkBytes   = 4 << 20
)

const timeLayout = "2006-01-02 15:04:05.000000"

// connectTimeout bounds a connection attempt unless the URL sets timeout.
const connectTimeout = 15 * time.Second

func sqlType(t catalog.Type) string {
	switch t {
	case catalog.TypeInteger:
		return "BIGINT"
	case catalog.TypeNumber:
		return "DOUBLE"
	case catalog.TypeBoolean:
		return "BOOLEAN"
	case catalog.TypeJSON:
		return "JSON"
	default:
		return "LONGTEXT"
	}
}

// Destination is a replica in one MySQL or MariaDB database.
type Destination struct {
	db     *sql.DB
	dsn    string // for the run lock's own connection
	dbName string

	ddl    sync.Mutex
	tables map[string]map[string]bool
}

// DSN translates mysql://user:pass@host:port/db?params into the driver's
// DSN, with utf8mb4 and no time parsing.
func DSN(rawURL string) (string, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" && u.Host != "" {
		cfg.Addr = u.Host + ":3306"
	}
	if strings.HasPrefix(u.Host, "unix(") || u.Query().Get("socket") != "" {
		cfg.Net, cfg.Addr = "unix", u.Query().Get("socket")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" {
		return "", "", errors.New("no database in the URL")
	}
	// An unreachable server is an error, not a hang (the URL's timeout
	// parameter overrides it).
	cfg.Timeout = connectTimeout
	cfg.ParseTime = false
	cfg.MultiStatements = false
	// Arguments are escaped into the statement by the driver (safe with
	// utf8mb4) instead of a server-side PREPARE, EXECUTE and CLOSE for every
	// multi-row chunk: one round trip, and the server does not bind tens of
	// thousands of placeholders.
	cfg.InterpolateParams = true
	cfg.Collation = "utf8mb4_bin"
	cfg.Params = map[string]string{"charset": "utf8mb4"}
	for k, v := range u.Query() {
		if k == "socket" || len(v) == 0 {
			continue
		}
		switch k {
		case "tls":
			cfg.TLSConfig = v[0]
		case "timeout":
			if d, err := time.ParseDuration(v[0]); err == nil {
				cfg.Timeout = d
			}
		default:
			cfg.Params[k] = v[0]
		}
	}
	return cfg.FormatDSN(), cfg.DBName, nil
}

// Open connects, checks the server answers and creates the bookkeeping tables.
func Open(ctx context.Context, rawURL string) (*Destination, error) {
	fail := func(what string, err error) error {
		msg := err.Error()
		if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
		hint := "check that MySQL/MariaDB is running there, the database exists and the URL's user and password are right"
		switch what {
		case "parse":
			hint = "use mysql://user:password@host:3306/DATABASE"
		case "set up":
			hint = "the user needs CREATE, ALTER, SELECT, INSERT, UPDATE and DELETE on the database: GRANT ALL ON `" + dbNameOf(rawURL) + "`.* TO the user"
		}
		return fmt.Errorf("%s mysql destination %s: %s (%s)", what, dest.Redact(rawURL), msg, hint)
	}
	dsn, dbName, err := DSN(rawURL)
	if err != nil {
		return nil, dest.BadURL(fail("parse", err))
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fail("open", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fail("connect to", err)
	}
	d := &Destination{db: db, dsn: dsn, dbName: dbName, tables: map[string]map[string]bool{}}
	for _, s := range []string{
		"CREATE TABLE IF NOT EXISTS " + quote(dest.StateTable) + ` (
			pipeline VARCHAR(255) NOT NULL, stream VARCHAR(255) NOT NULL, ` + "`cursor`" + ` JSON, updated_at DATETIME(6) NOT NULL,
			PRIMARY KEY (pipeline, stream)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		"CREATE TABLE IF NOT EXISTS " + quote(dest.RunsTable) + ` (
			id VARCHAR(255) NOT NULL PRIMARY KEY, pipeline VARCHAR(255) NOT NULL, started DATETIME(6) NOT NULL, finished DATETIME(6) NULL,
			status VARCHAR(32) NOT NULL, streams JSON, error LONGTEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		"CREATE TABLE IF NOT EXISTS " + quote(dest.LocksTable) + ` (
			pipeline VARCHAR(255) NOT NULL PRIMARY KEY, host VARCHAR(255) NOT NULL, pid BIGINT NOT NULL, run_id VARCHAR(255) NOT NULL,
			since DATETIME(6) NOT NULL, connection_id BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fail("set up", err)
		}
	}
	return d, nil
}

// dbNameOf is the database a URL names, for hints.
func dbNameOf(rawURL string) string {
	_, name, _ := DSN(rawURL)
	return name
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// Close closes the connections.
func (d *Destination) Close() error { return d.db.Close() }

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
	if cols != nil && !lacks(cols, t) {
		return nil
	}
	var err error
	if cols == nil {
		if cols, err = d.columns(ctx, t.Name); err != nil {
			return err
		}
	}
	if cols == nil {
		var b strings.Builder
		b.WriteString("CREATE TABLE IF NOT EXISTS " + quote(t.Name) + " (`id` VARCHAR(255) NOT NULL PRIMARY KEY")
		seen := map[string]bool{"id": true}
		for _, c := range t.Columns {
			if seen[c.Name] {
				continue
			}
			seen[c.Name] = true
			b.WriteString(", " + quote(c.Name) + " " + sqlType(c.Type))
		}
		b.WriteString(", " + quote(dest.ColDeleted) + " BOOLEAN NOT NULL DEFAULT 0")
		b.WriteString(", " + quote(dest.ColSyncedAt) + " BIGINT")
		b.WriteString(", " + quote(dest.ColAccount) + " VARCHAR(255) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
		if _, err := d.db.ExecContext(ctx, b.String()); err != nil {
			return err
		}
		// Another process may have created it first, with other columns.
		if cols, err = d.columns(ctx, t.Name); err != nil {
			return err
		}
		if cols == nil {
			return fmt.Errorf("table %s is missing right after CREATE TABLE", t.Name)
		}
	}
	d.tables[t.Name] = cols
	for _, c := range t.Columns {
		if cols[c.Name] {
			continue
		}
		_, err := d.db.ExecContext(ctx, "ALTER TABLE "+quote(t.Name)+" ADD COLUMN "+quote(c.Name)+" "+sqlType(c.Type))
		var me *mysql.MySQLError
		if err != nil && !(errors.As(err, &me) && me.Number == errDupColumn) { // another process added it first
			return err
		}
		cols[c.Name] = true
	}
	return nil
}

// MySQL error numbers.
const (
	errDupColumn = 1060 // ER_DUP_FIELDNAME
	errDeadlock  = 1213 // ER_LOCK_DEADLOCK
)

// isDeadlock reports whether err is InnoDB's deadlock error.
func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == errDeadlock
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
func (d *Destination) columns(ctx context.Context, table string) (map[string]bool, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, d.dbName, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols map[string]bool
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if cols == nil {
			cols = map[string]bool{}
		}
		cols[n] = true
	}
	return cols, rows.Err()
}

// Write upserts the batch's rows and saves its state in one transaction.
func (d *Destination) Write(ctx context.Context, b *dest.Batch) error {
	err := closedErr(d.write(ctx, b, true))
	if errors.Is(err, errBulkFallback) {
		// The bulk load did not take every row as sent (another writer
		// inserted an id, or the server adjusted a value): the batch was
		// rolled back; upsert it row by row in SQL instead.
		bulkFallbacks.Add(1)
		err = d.write(ctx, b, false)
	}
	// Writers of one table in other processes (other pipelines) can
	// deadlock with this one; InnoDB rolls the victim back whole, so the
	// batch is simply done again.
	for try := 0; try < 3 && isDeadlock(err); try++ {
		err = d.write(ctx, b, false)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", b.Table.Name, err)
	}
	return nil
}

// write upserts a batch in one transaction. With bulk, rows whose ids the
// table does not hold yet are loaded with LOAD DATA LOCAL INFILE (streamed
// from memory); the others, or all when bulk is false, go through multi-row
// INSERT … ON DUPLICATE KEY UPDATE.
func (d *Destination) write(ctx context.Context, b *dest.Batch, bulk bool) error {
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
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	bk := quote(dest.ColDeleted) + ", " + quote(dest.ColSyncedAt) + ", " + quote(dest.ColAccount)
	bkSet := quote(dest.ColDeleted) + " = VALUES(" + quote(dest.ColDeleted) + "), " +
		quote(dest.ColSyncedAt) + " = VALUES(" + quote(dest.ColSyncedAt) + "), " +
		quote(dest.ColAccount) + " = VALUES(" + quote(dest.ColAccount) + ")"
	if len(full) > 0 && bulk {
		fresh, freshDel, old, oldDel, err := splitNew(ctx, tx, b.Table, full, deleted)
		if err != nil {
			return err
		}
		if len(fresh) > 0 {
			if err := loadRows(ctx, tx, b, fresh, freshDel, synced); err != nil {
				return err
			}
		}
		full, deleted = old, oldDel
	}
	if len(full) > 0 {
		var names, set, one strings.Builder
		one.WriteString("(")
		for i, c := range b.Table.Columns {
			if i > 0 {
				names.WriteString(", ")
			}
			names.WriteString(quote(c.Name))
			if c.Name != "id" {
				set.WriteString(quote(c.Name) + " = VALUES(" + quote(c.Name) + "), ")
			}
			one.WriteString("?, ")
		}
		one.WriteString("?, ?, ?)")
		head := "INSERT INTO " + quote(b.Table.Name) + " (" + names.String() + ", " + bk + ") VALUES "
		tail := " ON DUPLICATE KEY UPDATE " + set.String() + bkSet
		per := len(b.Table.Columns) + 3
		var q strings.Builder
		args := make([]any, 0, per*64)
		size, n := 0, 0
		flush := func() error {
			if n == 0 {
				return nil
			}
			_, err := tx.ExecContext(ctx, head+q.String()+tail, args...)
			q.Reset()
			args, size, n = args[:0], 0, 0
			return err
		}
		for i, vals := range full {
			rowSize := 0
			for _, v := range vals {
				switch x := v.(type) {
				case string:
					rowSize += len(x)
				case json.RawMessage:
					rowSize += len(x)
				default:
					rowSize += 8
				}
			}
			if n > 0 && (len(args)+per > maxPlaceholders || size+rowSize > maxChunkBytes) {
				if err := flush(); err != nil {
					return err
				}
			}
			if n > 0 {
				q.WriteString(", ")
			}
			q.WriteString(one.String())
			for _, v := range vals {
				if raw, ok := v.(json.RawMessage); ok {
					v = string(raw)
				}
				args = append(args, v)
			}
			args = append(args, deleted[i], synced, b.Account)
			size += rowSize
			n++
		}
		if err := flush(); err != nil {
			return err
		}
	}
	for start := 0; start < len(stubs); start += 1000 {
		end := min(start+1000, len(stubs))
		var q strings.Builder
		args := make([]any, 0, 3*(end-start))
		for i, id := range stubs[start:end] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, 1, ?, ?)")
			args = append(args, id, synced, b.Account)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+quote(b.Table.Name)+" (`id`, "+bk+") VALUES "+q.String()+" ON DUPLICATE KEY UPDATE "+bkSet, args...); err != nil {
			return err
		}
	}
	if st := b.State; st != nil {
		if err := saveState(ctx, tx, *st); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return tx.Commit()
}

// saveState upserts one checkpoint inside tx.
func saveState(ctx context.Context, tx *sql.Tx, st dest.State) error {
	var cursor any
	if st.Cursor != nil {
		cursor = string(st.Cursor)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+quote(dest.StateTable)+" (pipeline, stream, `cursor`, updated_at) VALUES (?, ?, ?, ?) "+
		"ON DUPLICATE KEY UPDATE `cursor` = VALUES(`cursor`), updated_at = VALUES(updated_at)",
		st.Pipeline, st.Stream, cursor, time.Now().UTC().Format(timeLayout)); err != nil {
		return fmt.Errorf("save state of %s: %w", st.Stream, err)
	}
	return nil
}

// SaveState saves checkpoints without rows in one transaction.
func (d *Destination) SaveState(ctx context.Context, states ...dest.State) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return closedErr(err)
	}
	defer tx.Rollback()
	for _, st := range states {
		if err := saveState(ctx, tx, st); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// closedErr wraps dest.ErrClosed into the error of a closed sql.DB.
func closedErr(err error) error {
	if err != nil && strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("%w: %w", dest.ErrClosed, err)
	}
	return err
}

// LoadState returns the saved cursors of a pipeline by stream.
func (d *Destination) LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT stream, `cursor` FROM "+quote(dest.StateTable)+" WHERE pipeline = ?", pipeline)
	if err = closedErr(err); err != nil {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var stream string
		var cursor sql.NullString
		if err := rows.Scan(&stream, &cursor); err != nil {
			return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, err)
		}
		if cursor.Valid {
			out[stream] = json.RawMessage(cursor.String)
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
	var finished, streams any
	if !r.Finished.IsZero() {
		finished = r.Finished.UTC().Format(timeLayout)
	}
	if r.Streams != nil {
		streams = string(r.Streams)
	}
	_, err := d.db.ExecContext(ctx, "INSERT INTO "+quote(dest.RunsTable)+` (id, pipeline, started, finished, status, streams, error) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE pipeline = VALUES(pipeline), started = VALUES(started), finished = VALUES(finished),
		status = VALUES(status), streams = VALUES(streams), error = VALUES(error)`,
		r.ID, r.Pipeline, r.Started.UTC().Format(timeLayout), finished, r.Status, streams, r.Error)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// Runs lists the most recent runs, newest first.
func (d *Destination) Runs(ctx context.Context, pipeline string, limit int) ([]dest.Run, error) {
	q := "SELECT id, pipeline, started, finished, status, streams, error FROM " + quote(dest.RunsTable) + " WHERE ? = '' OR pipeline = ? ORDER BY started DESC, id DESC"
	args := []any{pipeline, pipeline}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return dest.ScanRuns(rows, timeLayout)
}

// Query runs an SQL statement in a read-only transaction. Integers come
// back as int64, floating numbers as float64, everything else as string.
func (d *Destination) Query(ctx context.Context, q string, args ...any) ([]string, [][]any, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, closedErr(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	cols, out, err := collect(rows, nil)
	return cols, out, err
}

// colKinds maps a table's columns to "bool", "json" or "" from the schema.
func (d *Destination) colKinds(ctx context.Context, table string) (map[string]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, d.dbName, table)
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{}
	for rows.Next() {
		var name, dataType, colType string
		if err := rows.Scan(&name, &dataType, &colType); err != nil {
			rows.Close()
			return nil, err
		}
		switch {
		case strings.EqualFold(colType, "tinyint(1)"):
			kinds[name] = "bool"
		case strings.EqualFold(dataType, "json"):
			kinds[name] = "json"
		default:
			kinds[name] = ""
		}
	}
	rows.Close()
	if len(kinds) == 0 {
		return nil, dest.ErrNoTable
	}
	// MariaDB's JSON is LONGTEXT with a json_valid check named after the column.
	crows, err := d.db.QueryContext(ctx, `SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, d.dbName, table)
	if err == nil {
		for crows.Next() {
			var name, clause string
			if crows.Scan(&name, &clause) == nil && strings.Contains(strings.ToLower(clause), "json_valid") {
				if _, ok := kinds[name]; ok {
					kinds[name] = "json"
				}
			}
		}
		crows.Close()
	}
	return kinds, nil
}

// ReadRows reads a whole table back, values normalised.
func (d *Destination) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	kinds, err := d.colKinds(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	rows, err := d.db.QueryContext(ctx, "SELECT * FROM "+quote(table))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	cols, vals, err := collect(rows, kinds)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	out := make([]map[string]any, len(vals))
	for i, r := range vals {
		m := make(map[string]any, len(cols))
		for j, c := range cols {
			m[c] = r[j]
		}
		out[i] = m
	}
	return out, nil
}

func collect(rows *sql.Rows, kinds map[string]string) ([]string, [][]any, error) {
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, err
	}
	cols := make([]string, len(cts))
	for i, ct := range cts {
		cols[i] = ct.Name()
	}
	var out [][]any
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		vals := make([]any, len(cols))
		for i, b := range raw {
			if b == nil {
				continue
			}
			vals[i] = convert(cts[i].DatabaseTypeName(), kinds[cols[i]], string(b))
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

func convert(dbType, kind, s string) any {
	switch kind {
	case "bool":
		return s != "0"
	case "json":
		return json.RawMessage(s)
	}
	switch dbType {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "UNSIGNED BIGINT", "UNSIGNED INT", "UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "DOUBLE", "FLOAT", "DECIMAL":
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return s
}

// errBulkFallback says a bulk load must be redone with plain upserts.
var errBulkFallback = errors.New("bulk load incomplete")

// bulkFallbacks counts batches whose bulk load was redone (for tests).
var bulkFallbacks atomic.Int64

// splitNew separates the rows whose ids the table does not hold yet.
func splitNew(ctx context.Context, tx *sql.Tx, t dest.Table, full [][]any, deleted []bool) (fresh [][]any, freshDel []bool, old [][]any, oldDel []bool, err error) {
	idCol := 0
	for i, c := range t.Columns {
		if c.Name == "id" {
			idCol = i
		}
	}
	exists := map[string]bool{}
	for start := 0; start < len(full); start += 1000 {
		end := min(start+1000, len(full))
		args := make([]any, 0, end-start)
		for _, r := range full[start:end] {
			args = append(args, r[idCol])
		}
		rows, err := tx.QueryContext(ctx, "SELECT `id` FROM "+quote(t.Name)+" WHERE `id` IN (?"+strings.Repeat(", ?", len(args)-1)+")", args...)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, nil, nil, err
			}
			exists[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if len(exists) == 0 {
		return full, deleted, nil, nil, nil
	}
	for i, r := range full {
		id, _ := r[idCol].(string)
		if exists[id] {
			old, oldDel = append(old, r), append(oldDel, deleted[i])
		} else {
			fresh, freshDel = append(fresh, r), append(freshDel, deleted[i])
		}
	}
	return fresh, freshDel, old, oldDel, nil
}

var loadSeq atomic.Int64

// loadRows inserts rows with LOAD DATA LOCAL INFILE from an in-memory
// tab-separated stream: the server neither parses a multi-megabyte INSERT
// nor binds its placeholders. LOAD DATA LOCAL skips duplicates and adjusts
// bad values with warnings instead of failing, so a load that did not
// insert every row untouched returns errBulkFallback.
func loadRows(ctx context.Context, tx *sql.Tx, b *dest.Batch, rows [][]any, deleted []bool, synced int64) error {
	var buf bytes.Buffer
	for i, vals := range rows {
		for _, v := range vals {
			tsvField(&buf, v)
			buf.WriteByte('\t')
		}
		if deleted[i] {
			buf.WriteString("1\t")
		} else {
			buf.WriteString("0\t")
		}
		buf.WriteString(strconv.FormatInt(synced, 10))
		buf.WriteByte('\t')
		tsvField(&buf, b.Account)
		buf.WriteByte('\n')
	}
	name := fmt.Sprintf("stripeline-%d", loadSeq.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(buf.Bytes()) })
	defer mysql.DeregisterReaderHandler(name)
	cols := make([]string, 0, len(b.Table.Columns)+3)
	for _, c := range b.Table.Columns {
		cols = append(cols, quote(c.Name))
	}
	cols = append(cols, quote(dest.ColDeleted), quote(dest.ColSyncedAt), quote(dest.ColAccount))
	res, err := tx.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE "+quote(b.Table.Name)+
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ("+strings.Join(cols, ", ")+")")
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	var warnings int64
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return err
	}
	if n != int64(len(rows)) || warnings != 0 {
		return errBulkFallback
	}
	return nil
}

// tsvField writes one value in LOAD DATA's default format: \N for NULL,
// backslash escapes for the backslash, tab, newline, carriage return and NUL.
func tsvField(buf *bytes.Buffer, v any) {
	var s string
	switch x := v.(type) {
	case nil:
		buf.WriteString(`\N`)
		return
	case string:
		s = x
	case json.RawMessage:
		s = string(x)
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
		return
	case float64:
		buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		return
	case bool:
		if x {
			buf.WriteByte('1')
		} else {
			buf.WriteByte('0')
		}
		return
	default:
		s = fmt.Sprint(x)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf.WriteString(`\\`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case 0:
			buf.WriteString(`\0`)
		default:
			buf.WriteByte(c)
		}
	}
}
