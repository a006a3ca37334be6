package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
	"golang.org/x/sync/errgroup"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
)

// refresh is a child list that incremental runs re-read per parent, for
// the parents the events sweep named: a per-parent child list
// (customers_payment_methods) or an embedded list whose copy in an event
// was cut short or absent (customer tax_ids, which come only expanded).
// The parents waiting to be re-read are saved under pendingKey before the
// events cursor passes the events that named them, so a killed run loses
// none of them.
type refresh struct {
	child catalog.Stream
	table *table
	// onParent: every event on the parent names it (the child list has no
	// events of its own). Events on the child's own objects name the
	// parent through the child's parent field in any case.
	onParent bool
	pending  map[string]bool
}

// refreshState is saved under pendingKey(child).
type refreshState struct {
	Pending []string `json:"pending,omitempty"`
}

// pendingKey is the state row holding a child list's parents to re-read.
func pendingKey(child string) string { return "_refresh:" + child }

// planRefreshes sets up the child lists events can name parents of, with
// the parents an earlier run left pending.
func (r *runner) planRefreshes(saved map[string]json.RawMessage) error {
	r.refreshes = map[string]*refresh{}
	r.refreshAdds = map[*refresh]bool{}
	r.byParentType = map[string][]*refresh{}
	r.byChildType = map[string][]*refresh{}
	add := func(child catalog.Stream, t *table, onParent bool) error {
		if _, dup := r.refreshes[child.Name]; dup || t == nil {
			return nil
		}
		var st refreshState
		if err := decodeState(saved[pendingKey(child.Name)], &st); err != nil {
			return fmt.Errorf("stream %s: %w", child.Name, err)
		}
		rf := &refresh{child: child, table: t, onParent: onParent, pending: map[string]bool{}}
		for _, id := range st.Pending {
			rf.pending[id] = true
		}
		r.refreshes[child.Name] = rf
		if p, ok := catalog.Lookup(child.Parent); ok {
			for _, typ := range p.ObjectTypes {
				r.byParentType[typ] = append(r.byParentType[typ], rf)
			}
		}
		for _, typ := range child.ObjectTypes {
			r.byChildType[typ] = append(r.byChildType[typ], rf)
		}
		return nil
	}
	for _, j := range r.jobs {
		for _, c := range j.children {
			if refreshable(c.stream) {
				if err := add(c.stream, c.table, !hasEvents(c.stream)); err != nil {
					return err
				}
			}
		}
		for _, e := range j.embeds {
			if err := add(e.child, e.table, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// namesParents adds the parents an event names to the child lists to
// re-read: the parent itself for lists without events of their own, and
// the parent field of a child object, before and after the change (a
// payment method detached from a customer leaves that customer's list).
func (r *runner) namesParents(e json.RawMessage, typ, objType string, obj gjson.Result) {
	for _, rf := range r.byParentType[objType] {
		p, _ := catalog.Lookup(rf.child.Parent)
		if rf.onParent && typ != p.DeleteEvent {
			r.addPending(rf.child.Name, obj.Get("id").Str)
		}
	}
	for _, rf := range r.byChildType[objType] {
		field := rf.child.ParentParam
		for _, v := range []gjson.Result{obj.Get(field), gjson.GetBytes(e, "data.previous_attributes."+field)} {
			if v.IsObject() {
				v = v.Get("id")
			}
			if v.Type == gjson.String && v.Str != "" {
				r.addPending(rf.child.Name, v.Str)
			}
		}
	}
}

func (r *runner) addPending(child, parentID string) {
	rf := r.refreshes[child]
	if rf == nil || parentID == "" || rf.pending[parentID] {
		return
	}
	rf.pending[parentID] = true
	r.refreshAdds[rf] = true
}

// dropPending forgets a deleted parent: its children are flagged deleted
// with it.
func (r *runner) dropPending(parentStream, parentID string) {
	for _, rf := range r.refreshes {
		if rf.child.Parent == parentStream && rf.pending[parentID] {
			delete(rf.pending, parentID)
			r.refreshAdds[rf] = true
		}
	}
}

// savePending writes the pending parents of the lists that changed.
func (r *runner) savePending(ctx context.Context) error {
	for rf := range r.refreshAdds {
		if err := r.savePendingOf(ctx, rf, nil, sortedKeys(rf.pending)); err != nil {
			return err
		}
	}
	clear(r.refreshAdds)
	return nil
}

func (r *runner) savePendingOf(ctx context.Context, rf *refresh, rows []dest.Row, pending []string) error {
	st := dest.State{Pipeline: r.opts.Pipeline, Stream: pendingKey(rf.child.Name), Cursor: encodeState(refreshState{Pending: pending})}
	if len(rows) == 0 {
		return r.opts.Dest.SaveState(ctx, st)
	}
	return r.opts.Dest.Write(ctx, &dest.Batch{Table: rf.table.shape(), Rows: pad(rows, rf.table), Account: r.opts.Account, SyncedAt: r.writeTime(), State: &st})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// refreshed is one parent's re-read child list.
type refreshed struct {
	rf     *refresh
	parent string
	rows   []dest.Row
}

// refreshParents re-reads the pending parents' child lists, concurrently,
// and writes each list's rows in batches together with what is still
// pending. Children the replica holds under a parent that the list no
// longer has are flagged deleted.
func (r *runner) refreshParents(ctx context.Context) error {
	var tasks []refreshed
	names := make([]string, 0, len(r.refreshes))
	for name := range r.refreshes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rf := r.refreshes[name]
		for _, p := range sortedKeys(rf.pending) {
			tasks = append(tasks, refreshed{rf: rf, parent: p})
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	r.opts.Progress.Start(refreshName)
	results := make(chan refreshed, r.opts.Concurrency)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency + 1)
	g.Go(func() error {
		defer close(results)
		inner, ictx := errgroup.WithContext(gctx)
		inner.SetLimit(r.opts.Concurrency)
		for _, t := range tasks {
			inner.Go(func() error {
				rows, err := r.childRows(ictx, &perParent{stream: t.rf.child, table: t.rf.table}, t.parent, whyRefresh)
				if err != nil {
					return err
				}
				t.rows = rows
				select {
				case results <- t:
					return nil
				case <-ictx.Done():
					return ictx.Err()
				}
			})
		}
		return inner.Wait()
	})
	err := r.collectRefreshed(gctx, results, len(tasks))
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	r.opts.Progress.Done(refreshName, err)
	return err
}

// collectRefreshed writes re-read lists as they come, a batch per list.
func (r *runner) collectRefreshed(ctx context.Context, results <-chan refreshed, total int) error {
	type buf struct {
		parents []string
		seen    map[string]map[string]bool // parent → child ids listed
		rows    []dest.Row
	}
	bufs := map[*refresh]*buf{}
	done := 0
	flush := func(rf *refresh, b *buf) error {
		if len(b.parents) == 0 {
			return nil
		}
		stale, err := r.staleChildren(ctx, rf.table, b.seen)
		if err != nil {
			return err
		}
		rows := b.rows
		for _, id := range stale {
			rows = append(rows, dest.Row{ID: id, Deleted: true})
		}
		for _, p := range b.parents {
			delete(rf.pending, p)
		}
		if err := r.savePendingOf(ctx, rf, rows, sortedKeys(rf.pending)); err != nil {
			return err
		}
		n := int64(len(rows))
		r.update(rf.table.name, func(sr *StreamResult) { sr.Rows += n })
		done += len(b.parents)
		r.opts.Progress.Rows(refreshName, done, 0)
		*b = buf{seen: map[string]map[string]bool{}}
		return nil
	}
	for t := range results {
		b := bufs[t.rf]
		if b == nil {
			b = &buf{seen: map[string]map[string]bool{}}
			bufs[t.rf] = b
		}
		b.parents = append(b.parents, t.parent)
		ids := map[string]bool{}
		for _, row := range t.rows {
			ids[row.ID] = true
		}
		b.seen[t.parent] = ids
		b.rows = append(b.rows, t.rows...)
		if len(b.rows) >= r.opts.BatchRows || len(b.parents) >= 500 {
			if err := flush(t.rf, b); err != nil {
				return err
			}
		}
	}
	for rf, b := range bufs {
		if err := flush(rf, b); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if done < total {
		return fmt.Errorf("re-read %d of %d parents' child lists", done, total)
	}
	return nil
}

// staleChildren returns the ids of the rows the replica holds under the
// given parents that their re-read lists no longer have. Destinations that
// cannot answer SQL leave them to the next reconciliation.
func (r *runner) staleChildren(ctx context.Context, t *table, seen map[string]map[string]bool) ([]string, error) {
	q, ok := r.opts.Dest.(dest.Querier)
	if !ok || !safeID.MatchString(t.name) {
		return nil, nil
	}
	parents := make([]string, 0, len(seen))
	for p := range seen {
		parents = append(parents, p)
	}
	if len(parents) == 0 {
		return nil, nil
	}
	sort.Strings(parents)
	args := make([]any, len(parents))
	for i, p := range parents {
		args[i] = p
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(parents)), ",")
	_, rows, err := q.Query(ctx, "SELECT id, "+ParentColumn+", "+dest.ColDeleted+" FROM "+t.name+" WHERE "+ParentColumn+" IN ("+marks+")", args...)
	if err != nil {
		return nil, fmt.Errorf("find children in %s: %w", t.name, err)
	}
	var out []string
	for _, row := range rows {
		id, _ := row[0].(string)
		parent, _ := row[1].(string)
		if id != "" && !seen[parent][id] && !truthy(row[2]) {
			out = append(out, id)
		}
	}
	return out, nil
}

// truthy reads a boolean column as the SQL destinations return it.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	case []byte:
		return string(x) == "1" || string(x) == "true"
	case string:
		return x == "1" || x == "true"
	}
	return false
}

// refreshName is the refresh phase's line in progress.
const refreshName = "children (refresh)"
