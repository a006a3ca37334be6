package sqldest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// Lock takes the run lock of req.Pipeline (dest.Locker) through the
// dialect's SessionLocker: a lock of a database session on a connection of
// its own, held until Unlock, with the holder's details in
// dest.LocksTable so that a refused run can name it. The lock dies with
// the session: a killed holder's connection closes and the server releases
// it. A dialect without session locks returns errors.ErrUnsupported.
func (db *DB) Lock(ctx context.Context, req dest.LockRequest) (dest.Lock, error) {
	sl, ok := db.d.(SessionLocker)
	if !ok {
		return nil, fmt.Errorf("lock pipeline %s: %w", req.Pipeline, errors.ErrUnsupported)
	}
	if err := db.check(ctx); err != nil {
		return nil, fmt.Errorf("lock pipeline %s: %w", req.Pipeline, err)
	}
	s, err := sl.LockSession(ctx, req.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("lock pipeline %s: connect: %w", req.Pipeline, err)
	}
	l, err := dest.AcquireLock(ctx, req, func(ctx context.Context) (dest.Lock, *dest.Holder, error) {
		return db.tryLock(ctx, sl, s, req)
	})
	if err != nil {
		s.Close()
		if !dest.IsLocked(err) {
			err = fmt.Errorf("lock pipeline %s: %w", req.Pipeline, err)
		}
		return nil, err
	}
	return l, nil
}

func (db *DB) tryLock(ctx context.Context, sl SessionLocker, s LockSession, req dest.LockRequest) (dest.Lock, *dest.Holder, error) {
	ok, err := s.TryLock(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		h, err := db.holder(ctx, s, req.Pipeline)
		return nil, h, err
	}
	h := req.Holder
	cols := []string{"pipeline", "host", "pid", "run_id", "since", sl.LockColumn()}
	q := "INSERT INTO " + db.d.Table(dest.LocksTable) + " (" + db.names(cols) + ") VALUES (?, ?, ?, ?, ?, " + s.Self() + ")" +
		db.d.OnConflict(dest.LocksTable, cols[:1], cols[1:], "")
	if _, err := db.exec(ctx, s, q, req.Pipeline, h.Host, h.PID, h.RunID, db.d.Time(h.Since)); err != nil {
		s.Release(context.Background())
		return nil, nil, fmt.Errorf("record the lock holder: %w", err)
	}
	watch, stop := context.WithCancel(context.Background())
	l := &sessionLock{db: db, s: s, pipeline: req.Pipeline, runID: h.RunID, stop: stop, watched: make(chan struct{}), lost: make(chan struct{})}
	go l.watch(watch)
	return l, nil, nil
}

// holder reads the details of the session that holds the lock: the row of
// dest.LocksTable whose session holds it right now (a row left by a killed
// holder names nobody). nil when it has not written its row yet.
func (db *DB) holder(ctx context.Context, s LockSession, pipeline string) (*dest.Holder, error) {
	cond, args := s.Holds()
	q := "SELECT " + db.names([]string{"host", "pid", "run_id", "since"}) + " FROM " + db.d.Table(dest.LocksTable) + " h WHERE " +
		db.d.Quote("pipeline") + " = ? AND " + cond
	var h *dest.Holder
	var perr error
	err := db.scan(ctx, s, q, append([]any{pipeline}, args...), func(v []any) {
		h = &dest.Holder{Pipeline: pipeline}
		h.Host, _ = v[0].(string)
		pid, _ := v[1].(int64)
		h.PID = int(pid)
		h.RunID, _ = v[2].(string)
		h.Since, perr = db.d.ParseTime(v[3])
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("read the lock holder: %w", err)
	}
	return h, nil
}

// sessionLock is a held run lock and the session holding it.
type sessionLock struct {
	db       *DB
	s        LockSession
	pipeline string
	runID    string

	stop    context.CancelFunc
	watched chan struct{} // closed when watch returns
	lost    chan struct{}
	once    sync.Once
	err     error
}

// watch waits on the session until Unlock stops it; should the session
// end first (the server restarted, or an administrator ended it), the
// lock is gone and Lost is closed.
func (l *sessionLock) watch(ctx context.Context) {
	defer close(l.watched)
	if err := l.s.Wait(ctx); err != nil && ctx.Err() == nil {
		close(l.lost)
	}
}

// Lost is closed when the lock's session ended before Unlock.
func (l *sessionLock) Lost() <-chan struct{} { return l.lost }

// Unlock forgets the holder, releases the lock and closes the session
// (which would release it anyway). It is safe to call twice.
func (l *sessionLock) Unlock() error {
	l.once.Do(func() {
		l.stop()
		<-l.watched
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case <-l.lost:
		default:
			q := "DELETE FROM " + l.db.d.Table(dest.LocksTable) + " WHERE " + l.db.d.Quote("pipeline") + " = ? AND " + l.db.d.Quote("run_id") + " = ?"
			_, err := l.db.exec(ctx, l.s, q, l.pipeline, l.runID)
			if err == nil {
				err = l.s.Release(ctx)
			}
			if err != nil {
				l.err = fmt.Errorf("unlock pipeline %s: %w", l.pipeline, err)
			}
		}
		l.s.Close()
	})
	return l.err
}
