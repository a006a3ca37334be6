package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
	"golang.org/x/sync/errgroup"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// process turns a page's objects into rows: the objects themselves, their
// embedded children (and the rest of those lists), and per-parent children.
func (r *runner) process(ctx context.Context, j *job, objs []json.RawMessage, u *unit) error {
	if j.write {
		if err := r.parentRows(ctx, j, objs, u); err != nil {
			return err
		}
	}
	for _, e := range j.embeds {
		if err := r.embeddedRows(ctx, j, e, objs, u); err != nil {
			return err
		}
	}
	if len(j.children) > 0 {
		if err := r.perParentRows(ctx, j, objs, u); err != nil {
			return err
		}
	}
	for _, rows := range u.rows {
		u.nrows += len(rows)
	}
	return nil
}

// parentRows converts the listed objects themselves.
func (r *runner) parentRows(ctx context.Context, j *job, objs []json.RawMessage, u *unit) error {
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
	return nil
}

// embeddedRows extracts one embedded child list from every object. Most
// parents embed their whole list; those whose list goes on (has_more) or
// did not come cost requests, made concurrently (under the fan-out limits)
// so one page of invoices does not wait on its lines one by one.
func (r *runner) embeddedRows(ctx context.Context, j *job, e *embed, objs []json.RawMessage, u *unit) error {
	var mu sync.Mutex
	merge := func(local *unit) {
		mu.Lock()
		u.rows[e.table] = append(u.rows[e.table], local.rows[e.table]...)
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, o := range objs {
		local := &unit{rows: map[*table][]dest.Row{}}
		if !needsFetch(e, o) {
			if err := r.embedded(ctx, e, j.childWhy(), o, local); err != nil {
				return err
			}
			merge(local)
			continue
		}
		g.Go(func() error {
			release, err := r.acquireFan(gctx, e.child.Path)
			if err != nil {
				return err
			}
			defer release()
			err = r.embedded(gctx, e, j.childWhy(), o, local)
			merge(local)
			return err
		})
	}
	return g.Wait()
}

// perParentRows lists every per-parent child list of every object: one
// request (or more, for long lists) per parent and list, concurrently
// under the fan-out limits.
func (r *runner) perParentRows(ctx context.Context, j *job, objs []json.RawMessage, u *unit) error {
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
	return ctx.Err()
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
	version := r.readVersion()
	err := r.children(ctx, c.stream, why, parentID, "", func(o json.RawMessage) error {
		row, err := c.table.row(ctx, o, parentID, false)
		if skip, err := r.skipRow(c.table, err); skip || err != nil {
			return err
		}
		row.Version = version
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
