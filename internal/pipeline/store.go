package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "github.com/ncruces/go-sqlite3/driver" // database/sql driver "sqlite3"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/fleet"
)

// Control store tables. They live beside the replica's tables in the
// default SQLite file, so they carry the bookkeeping prefix.
const (
	PipelinesTable = "_stripeline_pipelines"
	RunsTable      = "_stripeline_pipeline_runs"
	LogsTable      = "_stripeline_run_logs"
)

// store is the control store: pipeline records, run history and run logs,
// in SQLite (one connection, as River's SQLite driver wants) or PostgreSQL.
type store struct {
	db       *sql.DB
	pool     *pgxpool.Pool // PostgreSQL only
	schema   string        // PostgreSQL schema ("" for the search path)
	path     string        // SQLite file
	redacted string
}

// timeLayout stores times as fixed-width UTC text, so they sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(timeLayout, s)
	return t
}

// openStore opens (and creates) the control store at rawURL:
// sqlite://PATH or postgres://…[?schema=NAME].
func openStore(ctx context.Context, rawURL string) (*store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fieldErr("store", dest.Redact(rawURL), "is not a store URL: use sqlite://PATH (e.g. sqlite://stripeline.db) or postgres://host/db")
	}
	switch u.Scheme {
	case "sqlite":
		return openSQLiteStore(ctx, u)
	case "postgres", "postgresql":
		return openPostgresStore(ctx, u, rawURL)
	}
	return nil, fieldErr("store", dest.Redact(rawURL), "has scheme %q: the control store is sqlite://PATH or postgres://host/db", u.Scheme)
}

func openSQLiteStore(ctx context.Context, u *url.URL) (*store, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, fieldErr("store", u.String(), "names no file: use sqlite://PATH, e.g. sqlite://stripeline.db")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open the control store %s: %w", path, err)
	}
	// River's SQLite driver wants one connection: SQLite runs one writer
	// at a time, and a pool of them trips over SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open the control store %s: %w", path, err)
	}
	s := &store{db: db, path: path, redacted: "sqlite://" + path}
	return s, s.migrate(ctx)
}

func openPostgresStore(ctx context.Context, u *url.URL, rawURL string) (*store, error) {
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fieldErr("store", dest.Redact(rawURL), "is not a PostgreSQL URL: %v", err)
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the control store %s: %w", dest.Redact(rawURL), err)
	}
	if schema != "" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open the control store %s: create schema: %w", dest.Redact(rawURL), err)
		}
	}
	s := &store{db: stdlib.OpenDBFromPool(pool), pool: pool, schema: schema, redacted: dest.Redact(rawURL)}
	if err := s.migrate(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// keyPath is where the key file of stored API keys lives by default:
// beside a SQLite store, in the working directory for PostgreSQL.
func (s *store) keyPath() string {
	if s.path != "" {
		return s.path + ".key"
	}
	return filepath.Join(".", "stripeline-store.key")
}

func (s *store) close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (s *store) rebind(q string) string {
	if s.pool == nil {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.rebind(q), args...)
}

func (s *store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.rebind(q), args...)
}

func (s *store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.rebind(q), args...)
}

var schemaDDL = []string{
	`CREATE TABLE IF NOT EXISTS ` + PipelinesTable + ` (
	name TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	key_sealed TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	updated TEXT NOT NULL,
	paused BIGINT NOT NULL DEFAULT 0,
	paused_reason TEXT NOT NULL DEFAULT ''
)`,
	`CREATE TABLE IF NOT EXISTS ` + RunsTable + ` (
	id BIGINT PRIMARY KEY,
	pipeline TEXT NOT NULL,
	run_trigger TEXT NOT NULL,
	status TEXT NOT NULL,
	attempt BIGINT NOT NULL DEFAULT 0,
	queued TEXT NOT NULL,
	started TEXT NOT NULL DEFAULT '',
	finished TEXT NOT NULL DEFAULT '',
	engine_run TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL DEFAULT '',
	error_kind TEXT NOT NULL DEFAULT '',
	error_text TEXT NOT NULL DEFAULT ''
)`,
	`CREATE INDEX IF NOT EXISTS ` + RunsTable + `_by_pipeline ON ` + RunsTable + ` (pipeline, id)`,
	`CREATE TABLE IF NOT EXISTS ` + LogsTable + ` (
	run_id BIGINT NOT NULL,
	seq BIGINT NOT NULL,
	at TEXT NOT NULL,
	level TEXT NOT NULL,
	msg TEXT NOT NULL,
	attrs TEXT NOT NULL,
	PRIMARY KEY (run_id, seq)
)`,
	settingsDDL,
	fleetAccountsDDL,
}

func (s *store) migrate(ctx context.Context) error {
	ddls := schemaDDL
	if s.pool != nil {
		ddls = append(ddls[:len(ddls):len(ddls)], fleet.BudgetDDL) // the shared platform budget
	}
	for _, ddl := range ddls {
		if _, err := s.exec(ctx, ddl); err != nil {
			return fmt.Errorf("create the control store's tables in %s: %w", s.redacted, err)
		}
	}
	return nil
}

// isUniqueViolation tells a duplicate primary key from other failures.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint") || strings.Contains(msg, "23505") || strings.Contains(msg, "duplicate key")
}
