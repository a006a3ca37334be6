package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

var _ dest.Locker = (*Destination)(nil)

// lockWatch is how often a held lock's connection is checked.
var lockWatch = 10 * time.Second

// lockName is the GET_LOCK name of a pipeline's runs on a database. Lock
// names are server-wide and at most 64 characters, hence the hash.
func lockName(db, pipeline string) string {
	sum := sha256.Sum256([]byte(db + "\x00" + pipeline))
	return "stripeline-" + hex.EncodeToString(sum[:20])
}

// Lock takes the run lock of req.Pipeline: GET_LOCK on a connection of its
// own, held until Unlock, with the holder's details in _stripeline_locks
// so that a refused run can name it. The lock dies with the connection: a
// killed holder's connection closes and the server releases it.
func (d *Destination) Lock(ctx context.Context, req dest.LockRequest) (dest.Lock, error) {
	db, err := sql.Open("mysql", d.dsn)
	if err != nil {
		return nil, fmt.Errorf("lock pipeline %s: %w", req.Pipeline, err)
	}
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("lock pipeline %s: connect: %w", req.Pipeline, err)
	}
	name := lockName(d.dbName, req.Pipeline)
	l, err := dest.AcquireLock(ctx, req, func(ctx context.Context) (dest.Lock, *dest.Holder, error) {
		return d.tryLock(ctx, db, c, name, req)
	})
	if err != nil {
		c.Close()
		db.Close()
		if !dest.IsLocked(err) {
			err = fmt.Errorf("lock pipeline %s: %w", req.Pipeline, err)
		}
		return nil, err
	}
	return l, nil
}

func (d *Destination) tryLock(ctx context.Context, db *sql.DB, c *sql.Conn, name string, req dest.LockRequest) (dest.Lock, *dest.Holder, error) {
	var got sql.NullInt64
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got); err != nil {
		return nil, nil, err
	}
	if !got.Valid {
		return nil, nil, errors.New("GET_LOCK failed")
	}
	if got.Int64 != 1 {
		h, err := d.holder(ctx, c, name, req.Pipeline)
		return nil, h, err
	}
	h := req.Holder
	_, err := c.ExecContext(ctx, "INSERT INTO "+quote(dest.LocksTable)+` (pipeline, host, pid, run_id, since, connection_id)
		VALUES (?, ?, ?, ?, ?, CONNECTION_ID())
		ON DUPLICATE KEY UPDATE host = VALUES(host), pid = VALUES(pid), run_id = VALUES(run_id), since = VALUES(since),
		connection_id = VALUES(connection_id)`,
		req.Pipeline, h.Host, h.PID, h.RunID, h.Since.UTC().Format(timeLayout))
	if err != nil {
		c.ExecContext(context.Background(), "DO RELEASE_LOCK(?)", name)
		return nil, nil, fmt.Errorf("record the lock holder: %w", err)
	}
	l := &myLock{d: d, db: db, c: c, name: name, pipeline: req.Pipeline, runID: h.RunID,
		stop: make(chan struct{}), watched: make(chan struct{}), lost: make(chan struct{})}
	go l.watch()
	return l, nil, nil
}

// holder reads the details of the connection that holds the lock: the
// row of _stripeline_locks whose connection holds it right now (a row left
// by a killed holder names nobody). nil when it has not written its row yet.
func (d *Destination) holder(ctx context.Context, c *sql.Conn, name, pipeline string) (*dest.Holder, error) {
	var h dest.Holder
	var since string
	err := c.QueryRowContext(ctx, "SELECT host, pid, run_id, since FROM "+quote(dest.LocksTable)+
		" WHERE pipeline = ? AND connection_id = IS_USED_LOCK(?)", pipeline, name).Scan(&h.Host, &h.PID, &h.RunID, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lock holder: %w", err)
	}
	h.Pipeline = pipeline
	h.Since, _ = time.Parse(timeLayout, since)
	return &h, nil
}

// myLock is a held GET_LOCK and the connection holding it.
type myLock struct {
	d        *Destination
	db       *sql.DB
	c        *sql.Conn
	name     string
	pipeline string
	runID    string

	stop    chan struct{}
	watched chan struct{} // closed when watch returns
	lost    chan struct{}
	once    sync.Once
	err     error
}

// watch checks the connection every lockWatch until Unlock; should it
// fail (the server restarted, or an administrator killed the
// connection), the lock is gone and Lost is closed. The check asks the
// server whether this connection still holds the lock.
func (l *myLock) watch() {
	defer close(l.watched)
	t := time.NewTicker(lockWatch)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockWatch)
		var mine sql.NullInt64
		err := l.c.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", l.name).Scan(&mine)
		cancel()
		if err != nil || mine.Int64 != 1 {
			close(l.lost)
			return
		}
	}
}

// Lost is closed when the lock's connection ended before Unlock.
func (l *myLock) Lost() <-chan struct{} { return l.lost }

// Unlock forgets the holder, releases the lock and closes its connection
// (which would release it anyway).
func (l *myLock) Unlock() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.watched
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case <-l.lost:
		default:
			_, err := l.c.ExecContext(ctx, "DELETE FROM "+quote(dest.LocksTable)+" WHERE pipeline = ? AND run_id = ?", l.pipeline, l.runID)
			if err == nil {
				_, err = l.c.ExecContext(ctx, "DO RELEASE_LOCK(?)", l.name)
			}
			if err != nil {
				l.err = fmt.Errorf("unlock pipeline %s: %w", l.pipeline, err)
			}
		}
		l.c.Close()
		l.db.Close()
	})
	return l.err
}
