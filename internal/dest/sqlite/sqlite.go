// Package sqlite is the SQLite destination (sqlite://PATH): a pure-Go,
// WAL-mode database written through one connection, with batched upserts and
// the checkpoint in the same transaction as the rows it covers.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

func init() {
	dest.Register("sqlite", func(ctx context.Context, u *url.URL) (dest.Destination, error) {
		return Open(ctx, PathFromURL(u))
	})
}

var (
	_ dest.Destination = (*Destination)(nil)
	_ dest.Querier     = (*Destination)(nil)
	_ dest.Reader      = (*Destination)(nil)
)

// timeLayout is fixed-width so that run times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Declared column types. Booleans are stored as 0/1 integers; json columns
// are TEXT (their declared type "JSON TEXT" keeps text affinity, so SQLite
// never turns a JSON scalar into a number, and tells ReadRows what they are).
const (
	declText    = "TEXT"
	declInteger = "INTEGER"
	declReal    = "REAL"
	declBoolean = "BOOLEAN"
	declJSON    = "JSON TEXT"
)

func declType(t catalog.Type) string {
	switch t {
	case catalog.TypeInteger:
		return declInteger
	case catalog.TypeNumber:
		return declReal
	case catalog.TypeBoolean:
		return declBoolean
	case catalog.TypeJSON:
		return declJSON
	default:
		return declText
	}
}

// Destination is a replica in one SQLite file. Writes go through a single
// connection guarded by a mutex (SQLite has one writer anyway); queries use a
// separate read-only pool, which WAL lets run beside a write.
type Destination struct {
	path string

	mu     sync.Mutex // guards conn, tables, stmts
	conn   *sqlite3.Conn
	tables map[string]map[string]bool // table → existing columns
	stmts  map[string]*sqlite3.Stmt   // upsert statements by table and column set

	readers *sql.DB
}

// PathFromURL turns sqlite://PATH into PATH: sqlite://stripeline.db,
// sqlite://./dir/x.db and sqlite:///abs/x.db all work.
func PathFromURL(u *url.URL) string {
	if u.Opaque != "" {
		return u.Opaque
	}
	return u.Host + u.Path
}

// Open opens (creating if needed) the database at path in WAL mode and
// creates the bookkeeping tables. A file that could not be set up is removed
// again if Open created it.
func Open(ctx context.Context, path string) (*Destination, error) {
	if path == "" {
		return nil, dest.BadURL(errors.New("sqlite destination: no path: use sqlite://PATH, e.g. sqlite://stripeline.db"))
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	d, err := open(ctx, path)
	if err != nil {
		if !existed {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(path + suffix)
			}
		}
		dir := filepath.Dir(path)
		return nil, fmt.Errorf("open sqlite://%s: %w (check that the directory %s exists and is writable, and the file is a SQLite database)", path, err, dir)
	}
	return d, nil
}

func open(ctx context.Context, path string) (*Destination, error) {
	conn, err := sqlite3.OpenContext(ctx, path)
	if err != nil {
		return nil, err
	}
	d := &Destination{path: path, conn: conn, tables: map[string]map[string]bool{}, stmts: map[string]*sqlite3.Stmt{}}
	setup := `PRAGMA busy_timeout = 10000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -16384;
CREATE TABLE IF NOT EXISTS "` + dest.StateTable + `" (
	"pipeline" TEXT NOT NULL,
	"stream" TEXT NOT NULL,
	"cursor" JSON TEXT,
	"updated_at" TEXT NOT NULL,
	PRIMARY KEY ("pipeline", "stream"));
CREATE TABLE IF NOT EXISTS "` + dest.RunsTable + `" (
	"id" TEXT PRIMARY KEY,
	"pipeline" TEXT NOT NULL,
	"started" TEXT NOT NULL,
	"finished" TEXT,
	"status" TEXT NOT NULL,
	"streams" JSON TEXT,
	"error" TEXT);`
	if err := conn.Exec(setup); err != nil {
		conn.Close()
		return nil, err
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
	readers, err := driver.Open(dsn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	readers.SetMaxOpenConns(4)
	d.readers = readers
	return d, nil
}

// Close closes the statements and both connections.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return nil
	}
	for _, s := range d.stmts {
		s.Close()
	}
	d.stmts = nil
	err := d.readers.Close()
	if cerr := d.conn.Close(); err == nil {
		err = cerr
	}
	d.conn = nil
	return err
}

// Quote quotes an SQL identifier.
func Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Migrate creates the table or adds the columns it lacks.
func (d *Destination) Migrate(ctx context.Context, t dest.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	if err := d.ensure(t); err != nil {
		return fmt.Errorf("migrate %s: %w", t.Name, err)
	}
	return nil
}

// loadColumns reads a table's columns; nil when the table does not exist.
func (d *Destination) loadColumns(table string) (map[string]bool, error) {
	if cols, ok := d.tables[table]; ok {
		return cols, nil
	}
	st, _, err := d.conn.Prepare(`SELECT "name" FROM pragma_table_info(?)`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.BindText(1, table); err != nil {
		return nil, err
	}
	var cols map[string]bool
	for st.Step() {
		if cols == nil {
			cols = map[string]bool{}
		}
		cols[st.ColumnText(0)] = true
	}
	if err := st.Err(); err != nil {
		return nil, err
	}
	if cols != nil {
		d.tables[table] = cols
	}
	return cols, nil
}

// ensure creates t or adds its missing columns. Callers hold d.mu.
func (d *Destination) ensure(t dest.Table) error {
	if t.Name == "" {
		return errors.New("table without a name")
	}
	cols, err := d.loadColumns(t.Name)
	if err != nil {
		return err
	}
	if cols == nil {
		var b strings.Builder
		b.WriteString("CREATE TABLE IF NOT EXISTS " + Quote(t.Name) + " (\"id\" TEXT PRIMARY KEY")
		cols = map[string]bool{"id": true}
		for _, c := range t.Columns {
			if cols[c.Name] {
				continue
			}
			cols[c.Name] = true
			b.WriteString(", " + Quote(c.Name) + " " + declType(c.Type))
		}
		b.WriteString(", " + Quote(dest.ColDeleted) + " BOOLEAN NOT NULL DEFAULT 0")
		b.WriteString(", " + Quote(dest.ColSyncedAt) + " INTEGER")
		b.WriteString(", " + Quote(dest.ColAccount) + " TEXT NOT NULL DEFAULT '')")
		if err := d.conn.Exec(b.String()); err != nil {
			return err
		}
		cols[dest.ColDeleted], cols[dest.ColSyncedAt], cols[dest.ColAccount] = true, true, true
		d.tables[t.Name] = cols
		return nil
	}
	for _, c := range t.Columns {
		if cols[c.Name] {
			continue
		}
		if err := d.conn.Exec("ALTER TABLE " + Quote(t.Name) + " ADD COLUMN " + Quote(c.Name) + " " + declType(c.Type)); err != nil {
			return err
		}
		cols[c.Name] = true
		d.dropStmts(t.Name)
	}
	return nil
}

func (d *Destination) dropStmts(table string) {
	for k, s := range d.stmts {
		if strings.HasPrefix(k, table+"\x00") {
			s.Close()
			delete(d.stmts, k)
		}
	}
}

// stmt returns the cached upsert of t's columns, or of the deletion stub
// when stub is set. Callers hold d.mu.
func (d *Destination) stmt(t *dest.Table, stub bool) (*sqlite3.Stmt, error) {
	var kb strings.Builder
	kb.WriteString(t.Name)
	kb.WriteByte(0)
	if stub {
		kb.WriteString("\x01stub")
	} else {
		for _, c := range t.Columns {
			kb.WriteString(c.Name)
			kb.WriteByte(0)
		}
	}
	key := kb.String()
	if s, ok := d.stmts[key]; ok {
		return s, nil
	}
	var q string
	tn := Quote(t.Name)
	bk := Quote(dest.ColDeleted) + ", " + Quote(dest.ColSyncedAt) + ", " + Quote(dest.ColAccount)
	bkSet := Quote(dest.ColDeleted) + " = excluded." + Quote(dest.ColDeleted) + ", " +
		Quote(dest.ColSyncedAt) + " = excluded." + Quote(dest.ColSyncedAt) + ", " +
		Quote(dest.ColAccount) + " = excluded." + Quote(dest.ColAccount)
	if stub {
		q = "INSERT INTO " + tn + " (\"id\", " + bk + ") VALUES (?, 1, ?, ?) ON CONFLICT (\"id\") DO UPDATE SET " + bkSet
	} else {
		var names, ph, set strings.Builder
		for i, c := range t.Columns {
			if i > 0 {
				names.WriteString(", ")
				ph.WriteString(", ")
			}
			names.WriteString(Quote(c.Name))
			ph.WriteString("?")
			if c.Name != "id" {
				set.WriteString(Quote(c.Name) + " = excluded." + Quote(c.Name) + ", ")
			}
		}
		q = "INSERT INTO " + tn + " (" + names.String() + ", " + bk + ") VALUES (" + ph.String() + ", ?, ?, ?) ON CONFLICT (\"id\") DO UPDATE SET " + set.String() + bkSet
	}
	s, _, err := d.conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	d.stmts[key] = s
	return s, nil
}

// Write upserts the batch's rows and saves its state in one transaction.
func (d *Destination) Write(ctx context.Context, b *dest.Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write %s: %w", b.Table.Name, err)
	}
	idCol := -1
	for i, c := range b.Table.Columns {
		if c.Name == "id" {
			idCol = i
		}
	}
	if idCol < 0 {
		return fmt.Errorf("write %s: the table has no id column", b.Table.Name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	if err := d.write(ctx, b, idCol); err != nil {
		return fmt.Errorf("write %s: %w", b.Table.Name, err)
	}
	return nil
}

func (d *Destination) write(ctx context.Context, b *dest.Batch, idCol int) (err error) {
	if err := d.ensure(b.Table); err != nil {
		return err
	}
	old := d.conn.SetInterrupt(ctx)
	defer d.conn.SetInterrupt(old)
	if err := d.conn.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			d.conn.SetInterrupt(context.Background())
			if !d.conn.GetAutocommit() {
				d.conn.Exec("ROLLBACK")
			}
		}
	}()
	synced := b.SyncedAt.Unix()
	if b.SyncedAt.IsZero() {
		synced = time.Now().Unix()
	}
	n := len(b.Table.Columns)
	var upsert, stub *sqlite3.Stmt
	for ri := range b.Rows {
		r := &b.Rows[ri]
		if r.Values == nil {
			if !r.Deleted {
				return fmt.Errorf("row %s has no values", r.ID)
			}
			if r.ID == "" {
				return errors.New("deleted row without an id")
			}
			if stub == nil {
				if stub, err = d.stmt(&b.Table, true); err != nil {
					return err
				}
			}
			s := stub
			s.BindText(1, r.ID)
			s.BindInt64(2, synced)
			s.BindText(3, b.Account)
			if err := s.Exec(); err != nil {
				return fmt.Errorf("row %s: %w", r.ID, err)
			}
			continue
		}
		if len(r.Values) != n {
			return fmt.Errorf("row %s has %d values for %d columns", r.ID, len(r.Values), n)
		}
		if upsert == nil {
			if upsert, err = d.stmt(&b.Table, false); err != nil {
				return err
			}
		}
		s := upsert
		for i, v := range r.Values {
			if i == idCol && r.ID != "" {
				v = r.ID
			}
			if err := bind(s, i+1, v); err != nil {
				s.ClearBindings()
				return fmt.Errorf("row %s column %s: %w", r.ID, b.Table.Columns[i].Name, err)
			}
		}
		s.BindBool(n+1, r.Deleted)
		s.BindInt64(n+2, synced)
		s.BindText(n+3, b.Account)
		if err := s.Exec(); err != nil {
			return fmt.Errorf("row %s: %w", r.ID, err)
		}
	}
	if b.State != nil {
		if err := d.saveState(b.State); err != nil {
			return fmt.Errorf("save state of %s: %w", b.State.Stream, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.conn.Exec("COMMIT")
}

// bind binds one value of the contract's value types.
func bind(s *sqlite3.Stmt, i int, v any) error {
	switch x := v.(type) {
	case nil:
		return s.BindNull(i)
	case string:
		return s.BindText(i, x)
	case int64:
		return s.BindInt64(i, x)
	case int:
		return s.BindInt64(i, int64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("number %v cannot be stored", x)
		}
		return s.BindFloat(i, x)
	case bool:
		return s.BindBool(i, x)
	case json.RawMessage:
		if x == nil {
			return s.BindNull(i)
		}
		return s.BindRawText(i, x)
	case []byte:
		return s.BindRawText(i, x)
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
}

// SaveState saves checkpoints without rows in one transaction.
func (d *Destination) SaveState(ctx context.Context, states ...dest.State) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.conn.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil && !d.conn.GetAutocommit() {
			d.conn.Exec("ROLLBACK")
		}
	}()
	for i := range states {
		if err := d.saveState(&states[i]); err != nil {
			return fmt.Errorf("save state of %s: %w", states[i].Stream, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.conn.Exec("COMMIT")
}

func (d *Destination) saveState(st *dest.State) error {
	s, err := d.stateStmt()
	if err != nil {
		return err
	}
	s.BindText(1, st.Pipeline)
	s.BindText(2, st.Stream)
	if st.Cursor == nil {
		s.BindNull(3)
	} else {
		s.BindRawText(3, st.Cursor)
	}
	s.BindText(4, time.Now().UTC().Format(timeLayout))
	return s.Exec()
}

func (d *Destination) stateStmt() (*sqlite3.Stmt, error) {
	const key = "\x00state"
	if s, ok := d.stmts[key]; ok {
		return s, nil
	}
	s, _, err := d.conn.Prepare(`INSERT INTO "` + dest.StateTable + `" ("pipeline", "stream", "cursor", "updated_at") VALUES (?, ?, ?, ?)
ON CONFLICT ("pipeline", "stream") DO UPDATE SET "cursor" = excluded."cursor", "updated_at" = excluded."updated_at"`)
	if err != nil {
		return nil, err
	}
	d.stmts[key] = s
	return s, nil
}

// LoadState returns the saved cursors of a pipeline by stream.
func (d *Destination) LoadState(ctx context.Context, pipeline string) (map[string]json.RawMessage, error) {
	d.mu.Lock()
	closed := d.conn == nil
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("load state of pipeline %q: %w", pipeline, dest.ErrClosed)
	}
	rows, err := d.readers.QueryContext(ctx, `SELECT "stream", "cursor" FROM "`+dest.StateTable+`" WHERE "pipeline" = ?`, pipeline)
	if err != nil {
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
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return fmt.Errorf("sqlite destination: %w", dest.ErrClosed)
	}
	s, _, err := d.conn.Prepare(`INSERT INTO "` + dest.RunsTable + `" ("id", "pipeline", "started", "finished", "status", "streams", "error") VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT ("id") DO UPDATE SET "pipeline" = excluded."pipeline", "started" = excluded."started", "finished" = excluded."finished",
"status" = excluded."status", "streams" = excluded."streams", "error" = excluded."error"`)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	defer s.Close()
	s.BindText(1, r.ID)
	s.BindText(2, r.Pipeline)
	s.BindText(3, r.Started.UTC().Format(timeLayout))
	if r.Finished.IsZero() {
		s.BindNull(4)
	} else {
		s.BindText(4, r.Finished.UTC().Format(timeLayout))
	}
	s.BindText(5, r.Status)
	if r.Streams == nil {
		s.BindNull(6)
	} else {
		s.BindRawText(6, r.Streams)
	}
	s.BindText(7, r.Error)
	if err := s.Exec(); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// Runs lists the most recent runs, newest first.
func (d *Destination) Runs(ctx context.Context, pipeline string, limit int) ([]dest.Run, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	q := `SELECT "id", "pipeline", "started", "finished", "status", "streams", "error" FROM "` + dest.RunsTable + `"`
	args := []any{}
	if pipeline != "" {
		q += ` WHERE "pipeline" = ?`
		args = append(args, pipeline)
	}
	q += ` ORDER BY "started" DESC, "id" DESC LIMIT ?`
	args = append(args, limit)
	rows, err := d.readers.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return dest.ScanRuns(rows, timeLayout)
}

// Query runs a read-only SQL statement. Text comes back as string, integers
// as int64, reals as float64, booleans as bool and NULL as nil.
func (d *Destination) Query(ctx context.Context, q string, args ...any) ([]string, [][]any, error) {
	rows, err := d.readers.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		for i, v := range vals {
			switch x := v.(type) {
			case []byte:
				vals[i] = string(x)
			case time.Time:
				vals[i] = x.Format(time.RFC3339Nano)
			}
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

// ReadRows reads a whole table back with values normalised by declared type.
func (d *Destination) ReadRows(ctx context.Context, table string) ([]map[string]any, error) {
	conn, err := d.readers.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer conn.Close()
	var out []map[string]any
	err = conn.Raw(func(dc any) error {
		c := dc.(driver.Conn).Raw()
		s, _, err := c.Prepare("SELECT * FROM " + Quote(table))
		if err != nil && strings.Contains(err.Error(), "no such table") {
			return fmt.Errorf("%w: %w", dest.ErrNoTable, err)
		}
		if err != nil {
			return err
		}
		defer s.Close()
		n := s.ColumnCount()
		names := make([]string, n)
		decls := make([]string, n)
		for i := range n {
			names[i] = s.ColumnName(i)
			decls[i] = strings.ToUpper(s.ColumnDeclType(i))
		}
		for s.Step() {
			m := make(map[string]any, n)
			for i := range n {
				m[names[i]] = readValue(s, i, decls[i])
			}
			out = append(out, m)
		}
		return s.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return out, nil
}

func readValue(s *sqlite3.Stmt, i int, decl string) any {
	switch s.ColumnType(i) {
	case sqlite3.NULL:
		return nil
	case sqlite3.INTEGER:
		v := s.ColumnInt64(i)
		switch decl {
		case declBoolean:
			return v != 0
		case declReal:
			return float64(v)
		case declJSON:
			return json.RawMessage(fmt.Sprint(v))
		}
		return v
	case sqlite3.FLOAT:
		return s.ColumnFloat(i)
	default:
		t := s.ColumnText(i)
		if decl == declJSON {
			return json.RawMessage(t)
		}
		return t
	}
}
