package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Locker = (*Destination)(nil)

// keepalive makes the server notice within about half a minute a client
// whose host vanished without closing its connection (a killed process's
// connection is closed by its kernel, which the server sees at once).
const keepalive = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"

// Lock takes the run lock of req.Pipeline: a session-level advisory lock
// (pg_try_advisory_lock on a key hashed from the schema and the pipeline)
// on a connection of its own, held until Unlock. The holder's details go
// into _stripeline_locks so that a refused run can name it. The lock dies
// with the session: a killed holder's connection closes and the server
// releases it.
func (d *Destination) Lock(ctx context.Context, req dest.LockRequest) (dest.Lock, error) {
	c, err := pgx.ConnectConfig(ctx, d.conn.Copy())
	if err != nil {
		return nil, fmt.Errorf("lock pipeline %s: connect: %w", req.Pipeline, err)
	}
	if _, err := c.Exec(ctx, keepalive); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("lock pipeline %s: %w", req.Pipeline, err)
	}
	key := lockKey("run", d.schema, req.Pipeline)
	l, err := dest.AcquireLock(ctx, req, func(ctx context.Context) (dest.Lock, *dest.Holder, error) {
		return d.tryLock(ctx, c, key, req)
	})
	if err != nil {
		c.Close(context.Background())
		if !dest.IsLocked(err) {
			err = fmt.Errorf("lock pipeline %s: %w", req.Pipeline, err)
		}
		return nil, err
	}
	return l, nil
}

func (d *Destination) tryLock(ctx context.Context, c *pgx.Conn, key int64, req dest.LockRequest) (dest.Lock, *dest.Holder, error) {
	var ok bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		return nil, nil, err
	}
	if !ok {
		h, err := d.holder(ctx, c, key, req.Pipeline)
		return nil, h, err
	}
	h := req.Holder
	_, err := c.Exec(ctx, "INSERT INTO "+d.ident(dest.LocksTable)+` ("pipeline", "host", "pid", "run_id", "since", "backend_pid")
		VALUES ($1, $2, $3, $4, $5, pg_backend_pid())
		ON CONFLICT ("pipeline") DO UPDATE SET "host" = EXCLUDED."host", "pid" = EXCLUDED."pid", "run_id" = EXCLUDED."run_id",
		"since" = EXCLUDED."since", "backend_pid" = EXCLUDED."backend_pid"`,
		req.Pipeline, h.Host, h.PID, h.RunID, h.Since)
	if err != nil {
		c.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", key)
		return nil, nil, fmt.Errorf("record the lock holder: %w", err)
	}
	watch, stop := context.WithCancel(context.Background())
	l := &pgLock{d: d, c: c, key: key, pipeline: req.Pipeline, runID: h.RunID, stop: stop, watched: make(chan struct{}), lost: make(chan struct{})}
	go l.watch(watch)
	return l, nil, nil
}

// holder reads the details of the session that holds key: the row of
// _stripeline_locks whose backend holds the advisory lock right now (a row
// left by a killed holder names nobody). nil when it has not written its
// row yet.
func (d *Destination) holder(ctx context.Context, c *pgx.Conn, key int64, pipeline string) (*dest.Holder, error) {
	var h dest.Holder
	err := c.QueryRow(ctx, `SELECT "host", "pid", "run_id", "since" FROM `+d.ident(dest.LocksTable)+` h
		WHERE "pipeline" = $1 AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = h."backend_pid"
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.classid::bigint = $2 AND l.objid::bigint = $3 AND l.objsubid = 1)`,
		pipeline, int64(uint64(key)>>32), int64(uint64(key)&0xffffffff)).Scan(&h.Host, &h.PID, &h.RunID, &h.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lock holder: %w", err)
	}
	h.Pipeline = pipeline
	h.Since = h.Since.UTC()
	return &h, nil
}

// pgLock is a held advisory lock and the connection holding it.
type pgLock struct {
	d        *Destination
	c        *pgx.Conn
	key      int64
	pipeline string
	runID    string

	stop    context.CancelFunc
	watched chan struct{} // closed when watch returns
	lost    chan struct{}
	once    sync.Once
	err     error
}

// watch waits on the idle connection until Unlock stops it; should the
// connection end first (the server restarted, or an administrator
// terminated the session), the lock is gone and Lost is closed.
func (l *pgLock) watch(ctx context.Context) {
	defer close(l.watched)
	for {
		err := l.c.PgConn().WaitForNotification(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			close(l.lost)
			return
		}
	}
}

// Lost is closed when the lock's session ended before Unlock.
func (l *pgLock) Lost() <-chan struct{} { return l.lost }

// Unlock forgets the holder, releases the lock and closes its connection
// (which would release it anyway).
func (l *pgLock) Unlock() error {
	l.once.Do(func() {
		l.stop()
		<-l.watched
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case <-l.lost:
		default:
			_, err := l.c.Exec(ctx, "DELETE FROM "+l.d.ident(dest.LocksTable)+` WHERE "pipeline" = $1 AND "run_id" = $2`, l.pipeline, l.runID)
			if err == nil {
				_, err = l.c.Exec(ctx, "SELECT pg_advisory_unlock($1)", l.key)
			}
			if err != nil {
				l.err = fmt.Errorf("unlock pipeline %s: %w", l.pipeline, err)
			}
		}
		l.c.Close(ctx)
	})
	return l.err
}
