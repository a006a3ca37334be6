package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// keepalive makes the server notice within about half a minute a client
// whose host vanished without closing its connection (a killed process's
// connection is closed by its kernel, which the server sees at once).
const keepalive = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"

// LockSession opens a connection of its own for the run lock of pipeline:
// a session-level advisory lock (pg_try_advisory_lock on a key hashed from
// the schema and the pipeline).
func (d *dialect) LockSession(ctx context.Context, pipeline string) (sqldest.LockSession, error) {
	c, err := pgx.ConnectConfig(ctx, d.conn.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, keepalive); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return &session{conn: conn{q: c, c: c, d: d}, key: lockKey("run", d.schema, pipeline)}, nil
}

// session is a lock's connection.
type session struct {
	conn
	key int64
}

func (s *session) TryLock(ctx context.Context) (bool, error) {
	var ok bool
	err := s.c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", s.key).Scan(&ok)
	return ok, err
}

func (s *session) Self() string { return "pg_backend_pid()" }

// Holds is true of the row whose backend holds the advisory lock now.
func (s *session) Holds() (string, []any) {
	return `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = h."backend_pid"
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.classid::bigint = ? AND l.objid::bigint = ? AND l.objsubid = 1)`,
		[]any{int64(uint64(s.key) >> 32), int64(uint64(s.key) & 0xffffffff)}
}

func (s *session) Release(ctx context.Context) error {
	_, err := s.c.Exec(ctx, "SELECT pg_advisory_unlock($1)", s.key)
	return err
}

// Wait waits on the idle connection for it to end.
func (s *session) Wait(ctx context.Context) error {
	for {
		err := s.c.PgConn().WaitForNotification(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *session) Close() { s.c.Close(context.Background()) }
