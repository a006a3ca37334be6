package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/stripeline/stripeline/internal/dest"
)

// ErrLockLost is the cause of a run stopped because its destination lost
// the run lock (the database session holding it ended): another run may
// have started, so this one must not write on.
var ErrLockLost = errors.New("the run lock was lost (its database session ended); the run stopped so that two runs never write at once")

// lock takes the pipeline's run lock when the destination has one
// (dest.Locker), waiting as Options.LockWait says, before anything of the
// run is written. It returns the context the run goes on in, cancelled
// with ErrLockLost should the lock be lost, and the function that releases
// the lock. Once a wait has ended, the run's start time is now.
func (r *runner) lock(ctx context.Context) (context.Context, func(), error) {
	l, ok := r.opts.Dest.(dest.Locker)
	if !ok {
		return ctx, func() {}, nil
	}
	host, _ := os.Hostname()
	waited := false
	req := dest.LockRequest{
		Pipeline: r.opts.Pipeline,
		Holder:   dest.Holder{Pipeline: r.opts.Pipeline, Host: host, PID: os.Getpid(), RunID: r.res.RunID, Since: r.res.Started.UTC()},
		Wait:     r.opts.LockWait,
		Waiting: func(h dest.Holder) {
			waited = true
			wait := "as long as it takes"
			if r.opts.LockWait > 0 {
				wait = "up to " + r.opts.LockWait.String()
			}
			r.log.Info("waiting for another run of the pipeline to finish", "pipeline", r.opts.Pipeline,
				"holder_run", h.RunID, "holder_pid", h.PID, "holder_host", h.Host, "wait", wait)
		},
	}
	lk, err := l.Lock(ctx, req)
	if errors.Is(err, errors.ErrUnsupported) {
		r.log.Warn("this destination cannot hold a run lock here; make sure no other run of the pipeline writes at the same time", "pipeline", r.opts.Pipeline, "error", err)
		return ctx, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if waited {
		r.res.Started = r.now()
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-lk.Lost():
			r.log.Error(ErrLockLost.Error(), "pipeline", r.opts.Pipeline)
			cancel(ErrLockLost)
		case <-done:
		}
	}()
	return runCtx, func() {
		close(done)
		cancel(nil)
		if err := lk.Unlock(); err != nil {
			r.log.Warn("release the run lock", "pipeline", r.opts.Pipeline, "error", err)
		}
	}, nil
}

// lockLost names the lost lock as the reason a run failed.
func lockLost(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrLockLost) && !errors.Is(err, ErrLockLost) {
		return fmt.Errorf("%w (%v)", ErrLockLost, err)
	}
	return err
}
