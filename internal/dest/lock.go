package dest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LocksTable holds the details of each pipeline's run-lock holder in the SQL
// destinations, so that a run refused the lock can name who holds it.
const LocksTable = "_stripeline_locks"

// WaitForever, as a LockRequest's Wait, waits as long as it takes.
const WaitForever time.Duration = -1

// Holder says who holds a pipeline's run lock.
type Holder struct {
	// Pipeline is the holder's pipeline: a destination whose lock covers
	// every pipeline (a files directory) may be held by another one.
	Pipeline string    `json:"pipeline,omitempty"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	RunID    string    `json:"run_id"`
	Since    time.Time `json:"since"`
}

// LockRequest asks for the run lock of one pipeline.
type LockRequest struct {
	Pipeline string
	// Holder is recorded beside the lock for whoever is refused it.
	Holder Holder
	// Wait is how long to wait for a held lock: 0 fails at once with a
	// *LockedError, WaitForever (any negative value) waits until it is
	// released or ctx ends, a positive value waits up to that long.
	Wait time.Duration
	// Waiting, when set, is called once with the current holder when the
	// lock is found held and the request starts waiting for it.
	Waiting func(current Holder)
}

// Lock is a held run lock.
type Lock interface {
	// Unlock releases the lock and forgets its holder; it is safe to call
	// twice. A lock whose holder dies without unlocking is released by
	// the destination (the session, connection or process ends).
	Unlock() error
	// Lost is closed when the lock is no longer held although Unlock was
	// not called (its database session ended): the run must stop writing.
	// Destinations whose lock cannot be lost return nil.
	Lost() <-chan struct{}
}

// Locker is implemented by destinations that can hold one run of a
// pipeline at a time: the lock lives with the replica (an advisory lock of
// the database session, or an OS lock on a file beside the replica) and
// dies with its holder. Locks are per pipeline: different pipelines lock
// one destination side by side. Each Lock call is a holder of its own, even
// on one Destination value, so two calls for one pipeline exclude each
// other. Lock may be called from several goroutines.
type Locker interface {
	Lock(ctx context.Context, req LockRequest) (Lock, error)
}

// LockedError is returned when a pipeline's run lock is held by another run.
type LockedError struct {
	Pipeline string
	// Holder is the current holder; zero when it could not be told (it is
	// just taking the lock, or did not record itself).
	Holder Holder
	// Waited is how long the request waited before giving up (0: it did not).
	Waited time.Duration
}

// Error is one sentence naming the holder and what to do, in the
// library's words: Situation, then the fix.
func (e *LockedError) Error() string {
	if e.Waited > 0 {
		return fmt.Sprintf("%s; gave up after waiting %s; wait longer for the lock", e.Situation(), e.Waited.Round(time.Millisecond))
	}
	return e.Situation() + "; wait for it to finish, or wait for the lock"
}

// Situation is what Error says before the fix: which pipeline is locked
// by whom. A face that words the fix in its own terms (the CLI's --wait)
// prints Situation and its own fix.
func (e *LockedError) Situation() string {
	who := "another run (its details are not recorded yet)"
	h := e.Holder
	if h.RunID != "" || h.PID != 0 {
		who = fmt.Sprintf("run %s (pid %d on host %s, since %s)", orUnknown(h.RunID), h.PID, orUnknown(h.Host), h.Since.UTC().Format(time.RFC3339))
	}
	if h.Pipeline != "" && h.Pipeline != e.Pipeline {
		return fmt.Sprintf("pipeline %s cannot start: its destination is being synced by %s of pipeline %s", e.Pipeline, who, h.Pipeline)
	}
	return fmt.Sprintf("pipeline %s is being synced by %s", e.Pipeline, who)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// TryLock makes one attempt at a lock: the lock, or (nil, current holder,
// nil) when another holds it, or an error.
type TryLock func(ctx context.Context) (Lock, *Holder, error)

// LockPoll is how often AcquireLock retries a held lock.
var LockPoll = 200 * time.Millisecond

// AcquireLock runs try until it gets the lock, following req.Wait: at once
// a *LockedError when Wait is 0, else a retry every LockPoll until the lock
// is free, Wait runs out (then the *LockedError) or ctx ends (ctx's error).
// Destinations implement Locker with it.
func AcquireLock(ctx context.Context, req LockRequest, try TryLock) (Lock, error) {
	start := time.Now()
	var deadline <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		deadline = t.C
	}
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		l, held, err := try(ctx)
		if err != nil {
			return nil, err
		}
		if l != nil {
			return l, nil
		}
		locked := &LockedError{Pipeline: req.Pipeline}
		if held != nil {
			locked.Holder = *held
		}
		if req.Wait == 0 {
			return nil, locked
		}
		if tick == nil {
			tick = time.NewTicker(LockPoll)
			if req.Waiting != nil {
				req.Waiting(locked.Holder)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the run lock of pipeline %s: %w", req.Pipeline, context.Cause(ctx))
		case <-deadline:
			locked.Waited = time.Since(start)
			return nil, locked
		case <-tick.C:
		}
	}
}

// IsLocked reports whether err says the run lock is held by another run.
func IsLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}
