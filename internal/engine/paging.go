package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// applySplit records a split in a job's checkpoint: the new slice, and
// the slice it came from starting above it.
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

// page fetches and processes one page of an item. It reports whether the
// item is finished.
func (r *runner) page(ctx context.Context, s *sched, w *writer, it *item) (bool, error) {
	j := it.job
	readAt := r.readVersion()
	page, retry, err := r.fetch(ctx, s, it)
	if err != nil || retry {
		return false, err
	}
	r.update(j.stream, func(sr *StreamResult) { sr.Pages++ })
	pr := s.advance(it, page)
	u := &unit{job: j, rows: map[*table][]dest.Row{}}
	if err := r.process(ctx, j, pr.kept, u); err != nil {
		return false, err
	}
	stampRead(u, readAt)
	u.pages = 1
	u.delta = func(st *streamState) { pr.apply(st, j.sliced) }
	r.send(ctx, w, u)
	return pr.done, ctx.Err()
}

// fetch requests an item's next page. retry is set when the request must
// be made again differently (the object paged after is gone, or the list
// refused an expansion).
func (r *runner) fetch(ctx context.Context, s *sched, it *item) (page *stripe.Page, retry bool, err error) {
	j := it.job
	q, expanding := j.query()
	if !j.source.Unpaginated {
		q.Set("limit", strconv.Itoa(pageSize))
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
	page, err = r.list(ctx, j.stream, j.why, j.source.Path, q)
	if err == nil {
		return page, false, nil
	}
	var se *stripe.Error
	if errors.As(err, &se) && se.Param == "starting_after" && after != "" {
		// The object we paged after is gone; restart the range (upserts
		// make the re-read harmless).
		s.mu.Lock()
		it.after = ""
		s.mu.Unlock()
		return nil, true, nil
	}
	if errors.As(err, &se) && strings.HasPrefix(se.Param, "expand") && expanding && r.dropExpand(j) {
		return nil, true, nil
	}
	return nil, false, fmt.Errorf("list %s: %w", j.source.Path, err)
}

// paged is what one page did to its item: the objects to keep, and the
// checkpoint change.
type paged struct {
	kept   []json.RawMessage
	done   bool
	newest int64 // the newest created value on the page
	id     int   // the item's slice id
	lo, hi int64 // the item's range after the page
	after  string
}

// advance moves an item past a page, under the scheduler's lock: objects
// below its lower bound (raised by a split while the request was out) are
// dropped, its upper bound moves down to the page's oldest object, and its
// density estimate grows.
func (s *sched) advance(it *item, page *stripe.Page) paged {
	j := it.job
	data := page.Data
	p := paged{done: !page.HasMore || len(data) == 0 || j.source.Unpaginated, kept: data}
	s.mu.Lock()
	defer s.mu.Unlock()
	lo := it.lo
	if j.sliced {
		p.kept = make([]json.RawMessage, 0, len(data))
		for _, o := range data {
			c := gjson.GetBytes(o, j.order).Int()
			p.newest = max(p.newest, c)
			if c >= lo {
				p.kept = append(p.kept, o)
			}
		}
	}
	if !p.done {
		last := data[len(data)-1]
		it.after = gjson.GetBytes(last, "id").Str
		if j.sliced {
			c := gjson.GetBytes(last, j.order).Int()
			if c < lo {
				p.done = true
			} else {
				if it.hi != openEnded {
					it.covered += it.hi - (c + 1)
				} else {
					it.covered += p.newest - c
				}
				it.hi = c + 1
			}
		}
	}
	it.read += int64(len(p.kept))
	it.pages++
	it.last = p.done
	p.id, p.lo, p.hi, p.after = it.id, lo, it.hi, it.after
	return p
}

// apply moves a job's checkpoint past the page.
func (p paged) apply(st *streamState, sliced bool) {
	if p.newest > st.Upper {
		st.Upper = p.newest
	}
	if !sliced {
		st.After = p.after
		if p.done {
			st.After = ""
		}
		return
	}
	for i := range st.Slices {
		if st.Slices[i].ID != p.id {
			continue
		}
		if p.done {
			st.Slices = append(st.Slices[:i:i], st.Slices[i+1:]...)
		} else {
			st.Slices[i].Hi = p.hi
		}
		return
	}
	if !p.done {
		st.Slices = append(st.Slices, span{ID: p.id, Lo: p.lo, Hi: p.hi})
	}
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
