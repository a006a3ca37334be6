package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// eventRetention is how long Stripe keeps events.
const eventRetention = 30 * 24 * time.Hour

// prepareEvents loads the events cursor or, on a first run, takes it before
// any backfill starts so that nothing changed during the backfill is missed.
// A cursor older than Stripe's retention sends the event streams back to a
// full re-read, and the run says so.
func (r *runner) prepareEvents(ctx context.Context, saved map[string]json.RawMessage) (*eventsCursor, error) {
	var cur eventsCursor
	raw, ok := saved[eventsKey]
	if ok {
		if err := decodeState(raw, &cur); err != nil {
			return nil, fmt.Errorf("events cursor: %w", err)
		}
		now := r.serverNow(ctx)
		if now.Sub(time.Unix(cur.Created, 0)) <= eventRetention {
			r.cursorAt(cur.Created)
			return &cur, nil
		}
		r.note("events cursor %s is older than Stripe's 30-day event retention: re-reading the event streams in full", time.Unix(cur.Created, 0).UTC().Format(time.RFC3339))
		r.rereadEventStreams("events expired")
	}
	fresh, err := r.headCursor(ctx)
	if errors.Is(err, stripe.ErrPermission) {
		// Without events there is no incremental path: the event streams
		// are re-read in full, every run, and the run says why.
		r.note("the API key may not read events (it needs rak_event_read): streams that rely on events are re-read in full each run")
		r.rereadEventStreams("no events permission")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.saveCursor(ctx, *fresh); err != nil {
		return nil, err
	}
	r.cursorAt(fresh.Created)
	return fresh, nil
}

// rereadEventStreams sends every job that relies on events back to a full
// re-read.
func (r *runner) rereadEventStreams(why string) {
	for _, j := range r.jobs {
		if j.mode != modeEvents {
			continue
		}
		j.state = streamState{}
		r.schedule(j)
		j.state.Reason = why
		r.update(j.stream, func(sr *StreamResult) { sr.Mode = modeBackfill + " (" + why + ")" })
	}
	r.merge()
}

// headCursor points just past the newest event.
func (r *runner) headCursor(ctx context.Context) (*eventsCursor, error) {
	page, err := r.list(ctx, sweepName, modeEvents, "/v1/events", url.Values{"limit": {"100"}})
	if err != nil {
		return nil, fmt.Errorf("read the events cursor: %w", err)
	}
	cur := &eventsCursor{}
	for {
		all := true
		for _, e := range page.Data {
			c := gjson.GetBytes(e, "created").Int()
			if cur.Created == 0 {
				cur.Created = c
			}
			if c == cur.Created {
				cur.Seen = append(cur.Seen, gjson.GetBytes(e, "id").Str)
			} else {
				all = false
			}
		}
		// A page all of one second may not hold that second's every
		// event: the rest would be applied again after the backfill.
		if !all || !page.HasMore || len(page.Data) == 0 {
			break
		}
		sec := strconv.FormatInt(cur.Created, 10)
		q := url.Values{"limit": {"100"}, "created": {sec}, "starting_after": {cur.Seen[len(cur.Seen)-1]}}
		if page, err = r.list(ctx, sweepName, modeEvents, "/v1/events", q); err != nil {
			return nil, fmt.Errorf("read the events cursor: %w", err)
		}
	}
	if cur.Created == 0 {
		// No events yet: anything from now on counts.
		cur.Created = r.now().Add(-time.Minute).Unix()
	}
	return cur, nil
}

// serverNow estimates Stripe's clock: the newest event or ours, whichever
// is later (an emulator's clock may run ahead).
func (r *runner) serverNow(ctx context.Context) time.Time {
	now := r.now()
	page, err := r.list(ctx, sweepName, modeEvents, "/v1/events", url.Values{"limit": {"1"}})
	if err == nil && len(page.Data) > 0 {
		if t := time.Unix(gjson.GetBytes(page.Data[0], "created").Int(), 0); t.After(now) {
			return t
		}
	}
	return now
}

func (r *runner) saveCursor(ctx context.Context, cur eventsCursor) error {
	return r.opts.Dest.SaveState(ctx, dest.State{Pipeline: r.opts.Pipeline, Stream: eventsKey, Cursor: encodeState(cur)})
}

// eventTarget is a table an event's object lands in.
type eventTarget struct {
	table  *table
	stream catalog.Stream
	embeds []*embed
}

// sweep applies every event since the cursor, oldest first. It reads a
// created range at a time: a range holding more than one page is halved,
// older half first, so memory stays bounded and the cost follows the number
// of events, not the length of the gap. Each range's rows are written
// before the cursor that covers them.
func (r *runner) sweep(ctx context.Context, cur *eventsCursor) error {
	started := r.now()
	targets := r.eventTargets()
	if len(targets) == 0 {
		return nil
	}
	r.opts.Progress.Start(sweepName)
	now := r.serverNow(ctx).Unix() + 1
	applied := 0
	var walk func(lo, hi int64) error
	walk = func(lo, hi int64) error {
		q := url.Values{"limit": {"100"}, "created[gte]": {strconv.FormatInt(lo, 10)}, "created[lt]": {strconv.FormatInt(hi, 10)}}
		page, err := r.listEvents(ctx, q)
		if err != nil {
			return err
		}
		if page.HasMore && hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if err := walk(lo, mid); err != nil {
				return err
			}
			return walk(mid, hi)
		}
		events := page.Data
		for page.HasMore && len(page.Data) > 0 { // more than a page in one second
			q.Set("starting_after", gjson.GetBytes(page.Data[len(page.Data)-1], "id").Str)
			if page, err = r.listEvents(ctx, q); err != nil {
				return err
			}
			events = append(events, page.Data...)
		}
		n, err := r.applyEvents(ctx, events, targets, cur)
		applied += n
		r.opts.Progress.Rows(sweepName, applied, 0)
		return err
	}
	if err := walk(cur.Created, max(now, cur.Created+1)); err != nil {
		r.opts.Progress.Done(sweepName, err)
		return err
	}
	r.update(sweepName, func(ev *StreamResult) {
		ev.Mode = modeEvents
		ev.Rows = int64(applied)
		ev.elapsed = r.since(started)
	})
	r.resMu.Lock()
	r.res.Events = applied
	r.resMu.Unlock()
	// Records of events older than Stripe keeps them serve no one: no
	// delivery (retried for three days) nor sweep brings them again.
	if elog, ok := r.opts.Dest.(dest.EventLog); ok {
		if _, err := elog.ForgetEvents(ctx, r.opts.Pipeline, cur.Created-int64(eventRetention/time.Second)); err != nil {
			r.log.Warn("forget old applied events", "error", err.Error())
		}
	}
	r.opts.Progress.Done(sweepName, nil)
	return nil
}

func (r *runner) listEvents(ctx context.Context, q url.Values) (*stripe.Page, error) {
	page, err := r.list(ctx, sweepName, modeEvents, "/v1/events", q)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	r.update(sweepName, func(sr *StreamResult) { sr.Pages++ })
	return page, nil
}

// applyEvents applies events listed newest first, oldest first, skipping
// those the cursor has seen; it writes their rows, then the moved cursor.
// On a destination that records applied events (dest.EventLog) the writes
// are conditional on being newer (DESIGN §9) and the events the webhook
// endpoint applied already are skipped, unless this run rewrote their
// tables from a list (a backfill page read before a delivery may have
// been written after it): those are applied again, conditionally, which
// writes only what the list overwrote.
func (r *runner) applyEvents(ctx context.Context, events []json.RawMessage, targets map[string][]eventTarget, cur *eventsCursor) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	seen := make(map[string]bool, len(cur.Seen))
	for _, id := range cur.Seen {
		seen[id] = true
	}
	var evs []*event
	for i := len(events) - 1; i >= 0; i-- {
		ev := parseEvent(events[i])
		if seen[ev.id] || ev.created < cur.Created {
			continue
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	elog, _ := r.opts.Dest.(dest.EventLog)
	byWebhook := map[string]string{}
	if elog != nil {
		ids := make([]string, len(evs))
		for i, ev := range evs {
			ids[i] = ev.id
		}
		var err error
		if byWebhook, err = elog.AppliedEvents(ctx, r.opts.Pipeline, ids); err != nil {
			return 0, err
		}
	}
	rewritten := r.rewrittenTables()
	next := *cur
	var todo []*event
	webhook := 0
	for _, ev := range evs {
		if ev.created > next.Created {
			next = eventsCursor{Created: ev.created}
		}
		if ev.created == next.Created {
			next.Seen = append(next.Seen, ev.id)
		}
		if byWebhook[ev.id] == dest.SourceWebhook {
			webhook++
			if !rewritten[ev.obj.Get("object").Str] {
				continue
			}
		}
		todo = append(todo, ev)
	}
	stored, err := r.storedVersions(ctx, todo, targets)
	if err != nil {
		return 0, err
	}
	rows := map[*table][]dest.Row{}
	var order []*table
	var record []dest.AppliedEvent
	applied := 0
	// The sweep knows the order of the events of one second (its list's):
	// a later event of an object never has a lower version than an
	// earlier one in the same batch.
	last := map[string]int64{}
	for _, ev := range todo {
		if elog != nil {
			if err := r.prepare(ctx, ev, targets, stored); err != nil {
				return applied, err
			}
		}
		key := ev.obj.Get("object").Str + "/" + ev.obj.Get("id").Str
		if v, ok := last[key]; ok && ev.version <= v {
			ev.version = v + 1
		}
		last[key] = ev.version
		if err := r.applyEvent(ctx, ev, targets, rows, &order); err != nil {
			return applied, err
		}
		if byWebhook[ev.id] != dest.SourceWebhook {
			applied++
		}
		record = append(record, dest.AppliedEvent{Pipeline: r.opts.Pipeline, ID: ev.id, Type: ev.typ, Created: ev.created, Source: dest.SourceSweep})
	}
	// The parents to re-read are durable before the cursor passes the
	// events that named them.
	if err := r.savePending(ctx); err != nil {
		return applied, err
	}
	for i, t := range order {
		b := &dest.Batch{Table: t.shape(), Rows: pad(rows[t], t), Account: r.opts.Account, SyncedAt: r.writeTime(), OnlyNewer: elog != nil}
		if i == len(order)-1 && elog != nil {
			b.Events = onlySweep(record, byWebhook)
		}
		if err := r.opts.Dest.Write(ctx, b); err != nil {
			return applied, fmt.Errorf("write %s: %w", t.name, err)
		}
		n := int64(len(rows[t]))
		r.update(t.name, func(sr *StreamResult) { sr.Rows += n })
	}
	r.resMu.Lock()
	r.res.WebhookEvents += webhook
	r.resMu.Unlock()
	*cur = next
	if err := r.saveCursor(ctx, *cur); err != nil {
		return applied, err
	}
	r.cursorAt(cur.Created)
	return applied, nil
}

// onlySweep drops the events the webhook recorded already.
func onlySweep(record []dest.AppliedEvent, byWebhook map[string]string) []dest.AppliedEvent {
	out := record[:0:0]
	for _, e := range record {
		if byWebhook[e.ID] == "" {
			out = append(out, e)
		}
	}
	return out
}

// rewrittenTables returns the object types whose tables this run writes
// from lists rather than from events.
func (r *runner) rewrittenTables() map[string]bool {
	out := map[string]bool{}
	for _, j := range r.jobs {
		if j.mode != modeEvents && j.write {
			for _, t := range j.source.ObjectTypes {
				out[t] = true
			}
		}
	}
	return out
}

// eventTargets maps object types to the selected tables that hold them.
func (r *runner) eventTargets() map[string][]eventTarget {
	out := map[string][]eventTarget{}
	seenTable := map[string]bool{}
	for _, j := range r.jobs {
		var tgt *eventTarget
		if j.write && !seenTable[j.main.name] {
			tgt = &eventTarget{table: j.main, stream: j.source, embeds: j.embeds}
			seenTable[j.main.name] = true
		} else if !j.write && len(j.embeds) > 0 && !seenTable[j.source.Name+">"] {
			tgt = &eventTarget{stream: j.source, embeds: j.embeds}
			seenTable[j.source.Name+">"] = true
		}
		if tgt == nil {
			continue
		}
		for _, t := range tgt.stream.ObjectTypes {
			out[t] = append(out[t], *tgt)
		}
	}
	return out
}

// applyEvent turns one event into rows, each of the event's version.
func (r *runner) applyEvent(ctx context.Context, ev *event, targets map[string][]eventTarget, rows map[*table][]dest.Row, order *[]*table) error {
	typ := ev.typ
	objRes := ev.obj
	if !objRes.IsObject() {
		return nil
	}
	obj := json.RawMessage(objRes.Raw)
	objType := objRes.Get("object").Str
	add := func(t *table, row dest.Row) {
		if _, ok := rows[t]; !ok {
			*order = append(*order, t)
		}
		if row.Version == 0 {
			row.Version = ev.version
		}
		rows[t] = append(rows[t], row)
	}
	r.namesParents(ev.raw, typ, objType, objRes)
	for _, tgt := range targets[objType] {
		if !listedBy(tgt.stream, objRes) {
			continue
		}
		deleted := ev.gone || (tgt.stream.DeleteEvent != "" && typ == tgt.stream.DeleteEvent)
		if !deleted && strings.HasSuffix(typ, ".deleted") && tgt.stream.Deletable && tgt.stream.DeleteEvent == "" && objType != "subscription" {
			deleted = objRes.Get("deleted").Bool()
		}
		if tgt.table != nil {
			parent := ""
			if tgt.stream.Parent != "" {
				parent = objRes.Get(tgt.stream.ParentParam).Str
			}
			row, err := tgt.table.row(ctx, obj, parent, deleted)
			if skip, err := r.skipRow(tgt.table, err); err != nil {
				return err
			} else if !skip {
				add(tgt.table, row)
			}
		}
		var err error
		if deleted {
			err = r.deletedParent(ctx, tgt, objRes, add)
		} else {
			err = r.eventEmbeds(ctx, tgt, typ, objRes, add)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deletedParent flags a deleted parent's children: those in the event's
// snapshot and those the replica holds under it.
func (r *runner) deletedParent(ctx context.Context, tgt eventTarget, obj gjson.Result, add func(*table, dest.Row)) error {
	r.dropPending(tgt.stream.Name, obj.Get("id").Str)
	for _, em := range tgt.embeds {
		for _, c := range obj.Get(em.field + ".data").Array() {
			if id := c.Get("id").Str; id != "" {
				add(em.table, dest.Row{ID: id, Deleted: true})
			}
		}
	}
	for _, ct := range r.childTables(tgt.stream.Name) {
		ids, err := r.replicaChildren(ctx, ct, obj.Get("id").Str)
		if err != nil {
			return err
		}
		for _, id := range ids {
			add(ct, dest.Row{ID: id, Deleted: true})
		}
	}
	return nil
}

// eventEmbeds takes a changed parent's embedded lists from the event's
// copy of it. A copy cut short or absent sends the parent's list to the
// refresh after the sweep, unless the list comes only expanded (events
// never carry it) and its objects have events of their own, which name the
// parent when the list changes. A new parent is read anyway: it can be
// created with children (a customer's tax_id_data).
func (r *runner) eventEmbeds(ctx context.Context, tgt eventTarget, typ string, obj gjson.Result, add func(*table, dest.Row)) error {
	raw := json.RawMessage(obj.Raw)
	for _, em := range tgt.embeds {
		if needsFetch(em, raw) {
			if !em.includable || !hasEvents(em.child) || strings.HasSuffix(typ, ".created") {
				r.addPending(em.child.Name, obj.Get("id").Str)
			}
			continue
		}
		u := &unit{rows: map[*table][]dest.Row{}}
		if err := r.embedded(ctx, em, whyRefresh, raw, u); err != nil {
			return err
		}
		for t, rs := range u.rows {
			for _, row := range rs {
				add(t, row)
			}
		}
	}
	return nil
}

// listedBy reports whether an event's object belongs in a top-level
// stream's table, that is whether the stream's list returns it: the same
// object type can belong to a child list instead. /v1/tax_ids lists the
// account's own tax ids (owner[type]=self by default), not a customer's,
// which customers_tax_ids holds.
func listedBy(s catalog.Stream, obj gjson.Result) bool {
	if s.Name == "tax_ids" {
		if owner := obj.Get("owner.type"); owner.Exists() {
			return owner.Str == "self"
		}
		return obj.Get("customer").Type == gjson.Null || !obj.Get("customer").Exists()
	}
	return true
}

// sweepName is the events sweep's line in progress and results; it differs
// from the "events" stream, which replicates the event log itself.
const sweepName = "events (sweep)"

// childTables lists the selected child tables of a stream.
func (r *runner) childTables(stream string) []*table {
	var out []*table
	seen := map[*table]bool{}
	for _, j := range r.jobs {
		if j.source.Name != stream {
			continue
		}
		for _, t := range jobTables(j) {
			if t.child && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// safeID matches the names that go into SQL unquoted (catalog table names).
var safeID = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)

// replicaChildren returns the ids of the live rows of a child table listed
// under a parent, when the destination can answer SQL.
func (r *runner) replicaChildren(ctx context.Context, t *table, parentID string) ([]string, error) {
	q, ok := r.opts.Dest.(dest.Querier)
	if !ok || !safeID.MatchString(t.name) {
		return nil, nil
	}
	_, rows, err := q.Query(ctx, "SELECT id FROM "+t.name+" WHERE "+ParentColumn+" = ?", parentID)
	if err != nil {
		return nil, fmt.Errorf("find children of %s in %s: %w", parentID, t.name, err)
	}
	ids := make([]string, 0, len(rows))
	for _, row := range rows {
		if id, ok := row[0].(string); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
