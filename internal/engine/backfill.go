package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/stripe"
)

// backfill runs every job that has listing work under one scheduler.
func (r *runner) backfill(ctx context.Context) error {
	r.sweepPlan()
	if err := r.beginFull(ctx); err != nil {
		return err
	}
	s := newSched(r.opts.PerStream, r.opts.Concurrency)
	s.origin = r.accountCreated(ctx)
	s.now = r.now().Unix()
	active, finishing := r.enqueue(s)
	if len(active) == 0 {
		return nil
	}
	started := map[string]time.Time{}
	for _, j := range active {
		if _, ok := started[j.stream]; !ok {
			started[j.stream] = r.now()
			r.opts.Progress.Start(j.stream)
		}
	}
	w := newWriter(r.opts.Dest, r.opts.Pipeline, r.opts.Account, r.opts.BatchRows, r.opts.Clock, r.writeTime, r.written)
	wctx, cancelWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWriter()
	go w.run(wctx)

	for _, j := range finishing {
		r.send(ctx, w, r.finishUnit(j))
	}
	var wg sync.WaitGroup
	for i := 0; i < r.opts.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, s, w)
		}()
	}
	wg.Wait()
	close(w.in)
	werr := <-w.done
	for _, j := range active {
		var failed string
		r.update(j.stream, func(sr *StreamResult) {
			sr.elapsed = r.since(started[j.stream])
			failed = sr.Error
		})
		if failed == "" {
			r.opts.Progress.Done(j.stream, nil)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return werr
}

// enqueue hands the scheduler the listing work of every job that lists,
// and returns those jobs and the ones with only their finish left (every
// range was read before a crash).
func (r *runner) enqueue(s *sched) (active, finishing []*job) {
	for _, j := range r.jobs {
		if j.mode == modeEvents {
			continue
		}
		active = append(active, j)
		if !j.sliced {
			s.add(&item{job: j, after: j.state.After})
			continue
		}
		for _, sp := range j.state.Slices {
			s.add(&item{job: j, id: sp.ID, lo: sp.Lo, hi: sp.Hi})
		}
		if len(j.state.Slices) == 0 {
			finishing = append(finishing, j)
		}
	}
	return active, finishing
}

// written counts rows the writer made durable: against their table, with
// progress following the job.
func (r *runner) written(j *job, table string, n int) {
	r.update(table, func(sr *StreamResult) { sr.Rows += int64(n) })
	var rows, pages int64
	r.update(j.stream, func(sr *StreamResult) { rows, pages = sr.Rows, sr.Pages })
	r.opts.Progress.Rows(j.stream, int(rows), int(pages))
}

// work is one worker: it takes items until none is left, pages them, and
// hands what it read to the writer.
func (r *runner) work(ctx context.Context, s *sched, w *writer) {
	rp, _ := r.opts.Progress.(RangeProgress)
	for {
		it, sp, ok := s.take()
		if !ok {
			return
		}
		if sp != nil {
			split := *sp
			r.send(ctx, w, &unit{job: it.job, delta: func(st *streamState) { applySplit(st, split) }})
		}
		done, err := r.page(ctx, s, w, it)
		jobDone := s.release(it, done || err != nil)
		if rp != nil && it.job.sliced {
			rp.Covered(it.job.stream, s.covered(it.job.stream))
		}
		if err != nil {
			if ctx.Err() != nil {
				s.stop()
				return
			}
			s.fail(it.job)
			r.jobFailed(it.job, err)
			continue
		}
		if jobDone {
			r.send(ctx, w, r.finishUnit(it.job))
		}
	}
}

func (r *runner) send(ctx context.Context, w *writer, u *unit) {
	select {
	case w.in <- u:
	case <-ctx.Done():
	}
}

// accountCreated returns when the account was created (no object is
// older), or stripeEpoch when the client cannot tell. It costs one request,
// made only when a created range is about to be read.
func (r *runner) accountCreated(ctx context.Context) int64 {
	g, ok := r.opts.Client.(interface {
		Get(ctx context.Context, path string, q url.Values) ([]byte, error)
	})
	need := false
	for _, j := range r.jobs {
		need = need || (j.sliced && j.mode != modeEvents && j.mode != modeIncremental)
	}
	if !ok || !need {
		return stripeEpoch
	}
	r.update(accountName, func(sr *StreamResult) {
		if sr.Requests == nil {
			sr.Requests = map[string]int64{}
		}
		sr.Requests[modeBackfill]++
	})
	body, err := g.Get(ctx, "/v1/account", nil)
	if c := gjson.GetBytes(body, "created").Int(); err == nil && c > stripeEpoch {
		return c
	}
	return stripeEpoch
}

// accountName is the line the account lookup is counted under.
const accountName = "account"

// jobFailed records why a stream could not be read.
func (r *runner) jobFailed(j *job, err error) {
	var se *stripe.Error
	msg := err.Error()
	if errors.As(err, &se) && errors.Is(err, stripe.ErrPermission) {
		perm := se.Permission
		if perm == "" {
			perm = "read access to " + j.source.Path
		}
		msg = fmt.Sprintf("the API key may not read %s: it needs the %s permission", j.stream, perm)
		if r.opts.SkipUnreadable {
			r.update(j.stream, func(sr *StreamResult) { sr.Skipped = msg })
			r.log.Warn("skipping unreadable stream", "stream", j.stream, "permission", perm)
			r.opts.Progress.Done(j.stream, nil)
			return
		}
	}
	r.update(j.stream, func(sr *StreamResult) {
		if sr.Error == "" {
			sr.Error = msg
		}
	})
	r.log.Error("stream failed", "stream", j.stream, "error", msg)
	r.opts.Progress.Done(j.stream, err)
}
