package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// unit is what a worker hands the writer after one page: rows for one or
// more tables and the change to its job's checkpoint. Rows of child tables
// come before the parent's so a checkpoint never passes an unwritten child.
type unit struct {
	job    *job
	rows   map[*table][]dest.Row
	delta  func(*streamState)
	nrows  int
	pages  int
	finish bool // the job read its last page: flush now
	// mark, on a finishing unit, flags rows a complete re-read did not see;
	// it runs after the job's rows are durable and before its final state.
	mark func(context.Context) error
}

// jobBuffer holds a job's rows that are not yet written and the state that
// will be durable once they are.
type jobBuffer struct {
	rows  map[*table][]dest.Row
	order []*table // first-seen order; the job's main table is written last
	n     int
	state streamState // committed state with every buffered delta applied
	dirty bool
}

// writer is the single goroutine that writes to the destination. It batches
// pages per job and writes each job's checkpoint in the same transaction as
// the last batch of its rows.
type writer struct {
	dst       dest.Destination
	pipeline  string
	account   string
	batchRows int
	in        chan *unit
	done      chan error
	bufs      map[*job]*jobBuffer
	buffered  int // rows held in all buffers
	onWrite   func(j *job, table string, rows int)
	now       func() time.Time // the stamp of rows written now
	clock     Clock
}

func newWriter(dst dest.Destination, pipeline, account string, batchRows int, clock Clock, now func() time.Time, onWrite func(j *job, table string, rows int)) *writer {
	return &writer{
		dst: dst, pipeline: pipeline, account: account, batchRows: batchRows,
		in: make(chan *unit, 64), done: make(chan error, 1),
		bufs: map[*job]*jobBuffer{}, onWrite: onWrite, now: now, clock: clock,
	}
}

// run consumes units until in is closed, then flushes everything.
// The first write error stops it; later units are drained and dropped.
func (w *writer) run(ctx context.Context) {
	var failed error
	tick := w.clock.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case u, ok := <-w.in:
			if !ok {
				if failed == nil {
					failed = w.flushAll(ctx)
				}
				w.done <- failed
				return
			}
			if failed != nil {
				continue
			}
			failed = w.accept(ctx, u)
		case <-tick.C():
			// Keep checkpoints fresh on slow streams so a crash loses little.
			if failed == nil {
				failed = w.flushAll(ctx)
			}
		}
	}
}

func (w *writer) accept(ctx context.Context, u *unit) error {
	b := w.bufs[u.job]
	if b == nil {
		b = &jobBuffer{rows: map[*table][]dest.Row{}, state: u.job.state}
		w.bufs[u.job] = b
	}
	before := b.n
	for t, rows := range u.rows {
		if len(rows) == 0 {
			continue
		}
		if _, seen := b.rows[t]; !seen {
			b.order = append(b.order, t)
		}
		b.rows[t] = append(b.rows[t], rows...)
		b.n += len(rows)
	}
	if u.mark != nil {
		if err := w.flush(ctx, u.job, b); err != nil {
			return err
		}
		if err := u.mark(ctx); err != nil {
			return err
		}
	}
	if u.delta != nil {
		u.delta(&b.state)
		b.dirty = true
	}
	w.buffered += b.n - before
	if b.n >= w.batchRows || u.finish {
		return w.flush(ctx, u.job, b)
	}
	// Many streams each under their batch size can still add up: keep
	// memory flat by writing the largest buffer when the total is too big.
	for w.buffered > 4*w.batchRows {
		var big *job
		for j, jb := range w.bufs {
			if big == nil || jb.n > w.bufs[big].n {
				big = j
			}
		}
		if err := w.flush(ctx, big, w.bufs[big]); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) flushAll(ctx context.Context) error {
	for j, b := range w.bufs {
		if b.n == 0 && !b.dirty {
			continue
		}
		if err := w.flush(ctx, j, b); err != nil {
			return err
		}
	}
	return nil
}

// flush writes a job's buffered rows: other tables first, then the job's
// main table together with the checkpoint.
func (w *writer) flush(ctx context.Context, j *job, b *jobBuffer) error {
	now := w.now()
	for _, t := range b.order {
		if t == j.main {
			continue
		}
		rows := b.rows[t]
		if len(rows) == 0 {
			continue
		}
		if err := w.dst.Write(ctx, &dest.Batch{Table: t.shape(), Rows: pad(rows, t), Account: w.account, SyncedAt: now}); err != nil {
			return err // the destination names the table
		}
		w.onWrite(j, t.name, len(rows))
		b.rows[t] = rows[:0:0]
	}
	rows := b.rows[j.main]
	st := b.state
	batch := &dest.Batch{Table: j.main.shape(), Rows: pad(rows, j.main), Account: w.account, SyncedAt: now,
		State: &dest.State{Pipeline: w.pipeline, Stream: j.key, Cursor: encodeState(st)}}
	if err := w.dst.Write(ctx, batch); err != nil {
		return err // the destination names the table
	}
	if len(rows) > 0 {
		w.onWrite(j, j.main.name, len(rows))
	}
	// A merged job's other streams keep their own state rows, written once
	// the rows are durable; a crash between these writes only makes the
	// next run page their list separately.
	if len(j.keys) > 1 {
		states := make([]dest.State, 0, len(j.keys)-1)
		for _, k := range j.keys[1:] {
			states = append(states, dest.State{Pipeline: w.pipeline, Stream: k, Cursor: batch.State.Cursor})
		}
		if err := w.dst.SaveState(ctx, states...); err != nil {
			return fmt.Errorf("save state of %s: %w", strings.Join(j.keys[1:], ", "), err)
		}
	}
	b.rows[j.main] = rows[:0:0]
	w.buffered -= b.n
	b.n = 0
	b.dirty = false
	return nil
}

// pad extends rows built against an older, shorter shape of t.
func pad(rows []dest.Row, t *table) []dest.Row {
	t.mu.RLock()
	n := len(t.columns)
	t.mu.RUnlock()
	for i := range rows {
		if rows[i].Values != nil && len(rows[i].Values) < n {
			v := make([]any, n)
			copy(v, rows[i].Values)
			rows[i].Values = v
		}
	}
	return rows
}
