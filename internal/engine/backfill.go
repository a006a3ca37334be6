package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/sync/errgroup"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
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
	s.now = r.opts.Now().Unix()
	rp, _ := r.opts.Progress.(RangeProgress)
	var active, finishing []*job
	for _, j := range r.jobs {
		if j.mode == modeEvents {
			continue
		}
		active = append(active, j)
		if j.sliced {
			for _, sp := range j.state.Slices {
				s.add(&item{job: j, id: sp.ID, lo: sp.Lo, hi: sp.Hi})
			}
			if len(j.state.Slices) == 0 {
				// Every range was read before a crash; only the finish is left.
				finishing = append(finishing, j)
			}
		} else {
			s.add(&item{job: j, after: j.state.After})
		}
	}
	if len(active) == 0 {
		return nil
	}
	started := map[string]time.Time{}
	for _, j := range active {
		if _, ok := started[j.stream]; !ok {
			started[j.stream] = time.Now()
			r.opts.Progress.Start(j.stream)
		}
	}
	w := newWriter(r.opts.Dest, r.opts.Pipeline, r.opts.Account, r.opts.BatchRows, r.writeTime, func(j *job, table string, n int) {
		// Rows count against their table; progress follows the job.
		r.update(table, func(sr *StreamResult) { sr.Rows += int64(n) })
		var rows, pages int64
		r.update(j.stream, func(sr *StreamResult) { rows, pages = sr.Rows, sr.Pages })
		r.opts.Progress.Rows(j.stream, int(rows), int(pages))
	})
	wctx, cancelWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWriter()
	go w.run(wctx)

	for _, j := range finishing {
		r.send(ctx, w, r.finishUnit(j))
	}
	var wg sync.WaitGroup
	var fatalMu sync.Mutex
	var fatal error
	for i := 0; i < r.opts.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				it, sp, ok := s.take()
				if !ok {
					return
				}
				if sp != nil {
					split := *sp
					parent := it // the new item; its origin keeps ids apart
					r.send(ctx, w, &unit{job: parent.job, delta: func(st *streamState) { applySplit(st, split) }})
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
		}()
	}
	wg.Wait()
	close(w.in)
	werr := <-w.done
	for _, j := range active {
		var failed string
		r.update(j.stream, func(sr *StreamResult) {
			sr.elapsed = time.Since(started[j.stream])
			failed = sr.Error
		})
		if failed == "" {
			r.opts.Progress.Done(j.stream, nil)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	fatalMu.Lock()
	defer fatalMu.Unlock()
	return fatal
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

func applySplit(st *streamState, sp span) {
	for i := range st.Slices {
		if st.Slices[i].Lo < sp.Hi && st.Slices[i].Hi > sp.Lo && st.Slices[i].ID != sp.ID {
			if st.Slices[i].Lo < sp.Hi {
				st.Slices[i].Lo = sp.Hi
			}
		}
	}
	st.Slices = append(st.Slices, sp)
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

// page fetches and processes one page of an item. It reports whether the
// item is finished.
func (r *runner) page(ctx context.Context, s *sched, w *writer, it *item) (bool, error) {
	j := it.job
	q, expanding := j.query()
	if !j.source.Unpaginated {
		q.Set("limit", "100")
	}
	s.mu.Lock()
	lo, hi, after := it.lo, it.hi, it.after
	s.mu.Unlock()
	if j.sliced {
		if lo > 0 {
			q.Set("created[gte]", strconv.FormatInt(lo, 10))
		}
		if hi != openEnded {
			q.Set("created[lt]", strconv.FormatInt(hi, 10))
		}
	}
	if after != "" {
		q.Set("starting_after", after)
	}
	page, err := r.list(ctx, j.stream, j.why, j.source.Path, q)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.Param == "starting_after" && after != "" {
			// The object we paged after is gone; restart the range (upserts
			// make the re-read harmless).
			s.mu.Lock()
			it.after = ""
			s.mu.Unlock()
			return false, nil
		}
		if errors.As(err, &se) && strings.HasPrefix(se.Param, "expand") && expanding && r.dropExpand(j) {
			return false, nil
		}
		return false, fmt.Errorf("list %s: %w", j.source.Path, err)
	}
	r.update(j.stream, func(sr *StreamResult) { sr.Pages++ })

	data := page.Data
	done := !page.HasMore || len(data) == 0 || j.source.Unpaginated
	var newest int64
	s.mu.Lock()
	lo = it.lo // a split may have raised it while the request was out
	kept := data
	if j.sliced {
		kept = make([]json.RawMessage, 0, len(data))
		for _, o := range data {
			c := gjson.GetBytes(o, j.order).Int()
			newest = max(newest, c)
			if c >= lo {
				kept = append(kept, o)
			}
		}
	}
	if !done {
		last := data[len(data)-1]
		it.after = gjson.GetBytes(last, "id").Str
		if j.sliced {
			c := gjson.GetBytes(last, j.order).Int()
			if c < lo {
				done = true
			} else {
				if it.hi != openEnded {
					it.covered += it.hi - (c + 1)
				} else {
					it.covered += newest - c
				}
				it.hi = c + 1
			}
		}
	}
	it.read += int64(len(kept))
	it.pages++
	it.last = done
	newHi, newAfter, id := it.hi, it.after, it.id
	s.mu.Unlock()

	u := &unit{job: j, rows: map[*table][]dest.Row{}}
	if err := r.process(ctx, j, kept, u); err != nil {
		return false, err
	}
	u.pages = 1
	u.delta = func(st *streamState) {
		if newest > st.Upper {
			st.Upper = newest
		}
		if !j.sliced {
			st.After = newAfter
			if done {
				st.After = ""
			}
			return
		}
		for i := range st.Slices {
			if st.Slices[i].ID != id {
				continue
			}
			if done {
				st.Slices = append(st.Slices[:i:i], st.Slices[i+1:]...)
			} else {
				st.Slices[i].Hi = newHi
			}
			return
		}
		if !done {
			st.Slices = append(st.Slices, span{ID: id, Lo: lo, Hi: newHi})
		}
	}
	r.send(ctx, w, u)
	return done, ctx.Err()
}

// dropExpand stops expanding embedded lists the API refused to expand;
// their children are then fetched per parent. Several slices may learn of
// the refusal at once: each retries without the expansions.
func (r *runner) dropExpand(j *job) bool {
	j.paramsMu.Lock()
	defer j.paramsMu.Unlock()
	if len(j.params["expand[]"]) > 0 {
		r.log.Warn("the API refused to expand embedded lists: fetching them per parent", "stream", j.stream)
		j.params.Del("expand[]")
	}
	for _, e := range j.embeds {
		e.expand = false
	}
	return true
}

// process turns a page's objects into rows: the objects themselves, their
// embedded children (and the rest of those lists), and per-parent children.
func (r *runner) process(ctx context.Context, j *job, objs []json.RawMessage, u *unit) error {
	if j.write {
		rows := make([]dest.Row, 0, len(objs))
		for _, o := range objs {
			row, err := j.main.row(ctx, o, "", false)
			if skip, err := r.skipRow(j.main, err); skip || err != nil {
				if err != nil {
					return err
				}
				continue
			}
			for _, e := range j.embeds {
				if e.includable {
					j.main.clear(&row, e.field)
				}
			}
			rows = append(rows, row)
		}
		u.rows[j.main] = rows
	}
	for _, e := range j.embeds {
		// Most parents embed their whole child list; those whose list goes
		// on (has_more) or did not come cost requests, made concurrently so
		// one page of invoices does not wait on its lines one by one.
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for _, o := range objs {
			local := &unit{rows: map[*table][]dest.Row{}}
			merge := func() {
				mu.Lock()
				u.rows[e.table] = append(u.rows[e.table], local.rows[e.table]...)
				mu.Unlock()
			}
			if !needsFetch(e, o) {
				if err := r.embedded(ctx, e, j.childWhy(), o, local); err != nil {
					return err
				}
				merge()
				continue
			}
			g.Go(func() error {
				err := r.embedded(gctx, e, j.childWhy(), o, local)
				merge()
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	if len(j.children) > 0 {
		// One request (or more, for long lists) per parent and child list,
		// made concurrently under the run's fan-out limit.
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		for _, c := range j.children {
			for _, o := range objs {
				parentID := gjson.GetBytes(o, "id").Str
				g.Go(func() error {
					release, err := r.acquireFan(gctx, c.stream.Path)
					if err != nil {
						return err
					}
					defer release()
					rows, err := r.childRows(gctx, c, parentID, j.childWhy())
					mu.Lock()
					u.rows[c.table] = append(u.rows[c.table], rows...)
					mu.Unlock()
					return err
				})
			}
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for _, rows := range u.rows {
		u.nrows += len(rows)
	}
	return nil
}

// embedded extracts one parent's embedded child list, fetching the rest of
// it when has_more, or all of it when the field did not come.
func (r *runner) embedded(ctx context.Context, e *embed, why string, parent json.RawMessage, u *unit) error {
	parentID := gjson.GetBytes(parent, "id").Str
	v := gjson.GetBytes(parent, e.field)
	add := func(c json.RawMessage) error {
		row, err := e.table.row(ctx, c, parentID, false)
		if skip, err := r.skipRow(e.table, err); skip || err != nil {
			return err
		}
		u.rows[e.table] = append(u.rows[e.table], row)
		return nil
	}
	if !v.IsObject() || v.Get("object").Str != "list" {
		return r.children(ctx, e.child, why, parentID, "", add)
	}
	var last string
	for _, c := range v.Get("data").Array() {
		raw := json.RawMessage(c.Raw)
		if err := add(raw); err != nil {
			return err
		}
		last = c.Get("id").Str
	}
	if v.Get("has_more").Bool() && last != "" {
		return r.children(ctx, e.child, why, parentID, last, add)
	}
	return nil
}

// childRows lists one parent's children of a per-parent child list as rows.
func (r *runner) childRows(ctx context.Context, c *perParent, parentID, why string) ([]dest.Row, error) {
	var rows []dest.Row
	err := r.children(ctx, c.stream, why, parentID, "", func(o json.RawMessage) error {
		row, err := c.table.row(ctx, o, parentID, false)
		if skip, err := r.skipRow(c.table, err); skip || err != nil {
			return err
		}
		rows = append(rows, row)
		return nil
	})
	return rows, err
}

// acquireFan takes a slot for one per-parent request: first one of its
// endpoint's (as many as the endpoint's rate serves at once), then one of
// the run's, which bound the requests children put in flight besides the
// workers'. Waiting for a busy endpoint holds no run slot, so one
// saturated child list does not starve the others.
func (r *runner) acquireFan(ctx context.Context, path string) (release func(), err error) {
	r.fanMu.Lock()
	ep := r.fanPath[path]
	if ep == nil {
		ep = make(chan struct{}, r.opts.PerStream)
		r.fanPath[path] = ep
	}
	r.fanMu.Unlock()
	select {
	case ep <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r.fan <- struct{}{}:
		return func() { <-r.fan; <-ep }, nil
	case <-ctx.Done():
		<-ep
		return nil, ctx.Err()
	}
}

// needsFetch reports whether a parent's embedded list is incomplete or
// missing, so reading it takes requests.
func needsFetch(e *embed, parent json.RawMessage) bool {
	v := gjson.GetBytes(parent, e.field)
	return !v.IsObject() || v.Get("object").Str != "list" || v.Get("has_more").Bool()
}

// children lists every child of one parent, after the given id.
func (r *runner) children(ctx context.Context, child catalog.Stream, why, parentID, after string, fn func(json.RawMessage) error) error {
	path, q := childRequest(child, parentID)
	if !child.Unpaginated {
		q.Set("limit", "100")
	}
	for {
		if after != "" {
			q.Set("starting_after", after)
		}
		page, err := r.list(ctx, child.Name, why, path, q)
		if err != nil {
			var se *stripe.Error
			if errors.As(err, &se) && errors.Is(err, stripe.ErrNotFound) && se.Param != "starting_after" {
				return nil // the parent went away since it was listed
			}
			return fmt.Errorf("list %s: %w", path, err)
		}
		for _, c := range page.Data {
			if err := fn(c); err != nil {
				return err
			}
		}
		if !page.HasMore || len(page.Data) == 0 || child.Unpaginated {
			return nil
		}
		after = gjson.GetBytes(page.Data[len(page.Data)-1], "id").Str
	}
}

// childRequest is the list request of a child stream for one parent.
func childRequest(child catalog.Stream, parentID string) (string, url.Values) {
	q := url.Values{}
	for k, v := range child.ListParams {
		q.Set(k, v)
	}
	if child.ParentInQuery {
		q.Set(child.ParentParam, parentID)
		return child.Path, q
	}
	return strings.Replace(child.Path, "{"+child.ParentParam+"}", url.PathEscape(parentID), 1), q
}

// skipRow reports whether a row that failed to convert is skipped (an
// object without an id, noted once per table) or its error is fatal.
func (r *runner) skipRow(t *table, err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, errNoID) {
		return false, err
	}
	r.resMu.Lock()
	first := !r.noID[t.name]
	if r.noID == nil {
		r.noID = map[string]bool{}
	}
	r.noID[t.name] = true
	r.resMu.Unlock()
	if first {
		r.note("%s: skipped objects without an id (the API sent objects that are not valid Stripe objects)", t.name)
	}
	return true, nil
}
