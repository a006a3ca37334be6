package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
)

// finishUnit ends a job: its checkpoint moves to done and, after a complete
// re-read, the rows it did not see are flagged deleted first. A table that
// several jobs write (test clocks) is swept once the last of them finishes.
func (r *runner) finishUnit(j *job) *unit {
	u := &unit{job: j, finish: true, delta: func(st *streamState) { finishState(st, r.res.Started.Unix()) }}
	sw, ok := r.opts.Dest.(dest.Sweeper)
	if !ok || j.state.Since == 0 {
		return u
	}
	u.mark = func(ctx context.Context) error {
		for _, t := range r.sweepReady(j) {
			n, err := sw.MarkDeletedBefore(ctx, t.name, r.opts.Account, time.Unix(t.since, 0))
			if err != nil {
				return err
			}
			if n > 0 {
				r.note("%s: %d rows not seen in the full re-read flagged deleted", t.name, n)
			}
		}
		return nil
	}
	return u
}

// jobTables lists the tables a job writes.
func jobTables(j *job) []*table {
	var out []*table
	if j.write {
		out = append(out, j.main)
	}
	for _, e := range j.embeds {
		out = append(out, e.table)
	}
	for _, c := range j.children {
		out = append(out, c.table)
	}
	return out
}

// sweepPlan counts, per table, the complete re-reads of this run that
// write it, and the earliest of their starts.
func (r *runner) sweepPlan() {
	r.sweeps = map[*table]*tableSweep{}
	// A table that a job writes without re-reading it in full this run
	// (a test-clock job already done, say) holds rows no re-read will see:
	// it is not swept.
	partial := map[*table]bool{}
	for _, j := range r.jobs {
		if j.mode == modeEvents || j.state.Since == 0 {
			for _, t := range jobTables(j) {
				partial[t] = true
			}
		}
	}
	for _, j := range r.jobs {
		if j.mode == modeEvents || j.state.Since == 0 {
			continue
		}
		for _, t := range jobTables(j) {
			if partial[t] {
				continue
			}
			ts := r.sweeps[t]
			if ts == nil {
				ts = &tableSweep{table: t, since: j.state.Since}
				r.sweeps[t] = ts
			}
			ts.pending++
			ts.since = min(ts.since, j.state.Since)
		}
	}
}

// beginFull tells a dest.FullRefresher which tables this run rewrites from
// scratch: those that every job writing them this run reads afresh (a
// first backfill or a full re-read, not a resumed one). It is called once
// per table, however many jobs (test clocks) write it.
func (r *runner) beginFull(ctx context.Context) error {
	fr, ok := r.opts.Dest.(dest.FullRefresher)
	if !ok {
		return nil
	}
	fresh := map[*table]bool{}
	var order []*table
	for _, j := range r.jobs {
		for _, t := range jobTables(j) {
			if _, seen := fresh[t]; !seen {
				order = append(order, t)
				fresh[t] = true
			}
			if !j.fresh || j.mode == modeEvents {
				fresh[t] = false
			}
		}
	}
	for _, t := range order {
		if !fresh[t] {
			continue
		}
		if err := fr.BeginFull(ctx, t.name); err != nil {
			return fmt.Errorf("begin full refresh of %s: %w", t.name, err)
		}
	}
	return nil
}

// tableSweep tracks one table's pending re-reads.
type tableSweep struct {
	table   *table
	name    string
	since   int64
	pending int
}

// sweepReady marks j finished and returns the tables no other re-read of
// this run still writes.
func (r *runner) sweepReady(j *job) []tableSweep {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	var out []tableSweep
	for _, t := range jobTables(j) {
		ts := r.sweeps[t]
		if ts == nil {
			continue
		}
		ts.pending--
		if ts.pending == 0 {
			out = append(out, tableSweep{name: t.name, since: ts.since})
		}
	}
	return out
}

// finishState is a job's checkpoint once its read ended at time now: a
// complete read (not a created-cursor increment) also dates the
// reconciliation.
func finishState(st *streamState, now int64) {
	created := max(st.Created, st.Upper)
	reconciled := st.Reconciled
	if st.Reason != modeIncremental {
		reconciled = now
	}
	*st = streamState{Phase: phaseDone, Created: created, Reconciled: reconciled}
}
