package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/stripeline/stripeline/internal/dest/sqldest"
)

// lockWatch is how often a held lock's connection is checked.
var lockWatch = 10 * time.Second

// checkTimeout bounds one check of a held lock's connection.
const checkTimeout = 10 * time.Second

// lockName is the GET_LOCK name of a pipeline's runs on a database. Lock
// names are server-wide and at most 64 characters, hence the hash.
func lockName(db, pipeline string) string {
	sum := sha256.Sum256([]byte(db + "\x00" + pipeline))
	return "stripeline-" + hex.EncodeToString(sum[:20])
}

// LockSession opens a connection of its own for the run lock of pipeline:
// GET_LOCK, which the server releases when the connection ends.
func (d *dialect) LockSession(ctx context.Context, pipeline string) (sqldest.LockSession, error) {
	db, err := sql.Open("mysql", d.dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &session{StdConn: sqldest.StdConn{Q: c}, db: db, c: c, name: lockName(d.dbName, pipeline)}, nil
}

// session is a lock's connection.
type session struct {
	sqldest.StdConn
	db   *sql.DB
	c    *sql.Conn
	name string
}

func (s *session) TryLock(ctx context.Context) (bool, error) {
	var got sql.NullInt64
	if err := s.c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", s.name).Scan(&got); err != nil {
		return false, err
	}
	if !got.Valid {
		return false, errors.New("GET_LOCK failed")
	}
	return got.Int64 == 1, nil
}

func (s *session) Self() string { return "CONNECTION_ID()" }

// Holds is true of the row whose connection holds the lock now.
func (s *session) Holds() (string, []any) { return "h.connection_id = IS_USED_LOCK(?)", []any{s.name} }

func (s *session) Release(ctx context.Context) error {
	_, err := s.c.ExecContext(ctx, "DO RELEASE_LOCK(?)", s.name)
	return err
}

// Wait asks the server every lockWatch whether this connection still holds
// the lock; it has ended once it does not (the server restarted, or an
// administrator killed the connection).
func (s *session) Wait(ctx context.Context) error {
	t := time.NewTicker(lockWatch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// A query cut short closes its connection, and the lock with it:
		// the check has a timeout of its own, neither the (short, in tests)
		// watch period nor ctx, which Unlock cancels.
		cctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		var mine sql.NullInt64
		err := s.c.QueryRowContext(cctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", s.name).Scan(&mine)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if mine.Int64 != 1 {
			return errors.New("the connection no longer holds the lock")
		}
	}
}

func (s *session) Close() {
	s.c.Close()
	s.db.Close()
}
