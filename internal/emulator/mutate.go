package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/stripeline/stripeline/internal/catalog"
)

func sortRecords(s []*record) {
	sort.Slice(s, func(i, j int) bool { return s[i].before(s[j]) })
}

// decodeObject decodes stored JSON keeping numbers exact.
func decodeObject(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func encodeObject(m map[string]any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// patchJSON sets top-level keys of an encoded object.
func patchJSON(data []byte, over fields) ([]byte, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	for _, f := range over {
		m[f.k] = json.RawMessage(appendValue(nil, f.v))
	}
	return encodeObject(m), nil
}

// addEvent records an event whose data.object is obj as it is now.
func (e *Emulator) addEvent(a *account, typ string, created int64, obj, prev []byte, rnd func() uint64) *record {
	id := a.newID("evt_", rnd)
	data := fields{{"object", raw(obj)}}
	if prev != nil {
		data = append(data, field{"previous_attributes", raw(prev)})
	}
	over := fields{{"id", id}, {"created", created}, {"type", typ}, {"data", data}, {"api_version", catalog.SpecVersion()},
		{"pending_webhooks", 0}, {"livemode", false},
		{"request", sub{e.tpls.nested("event", "request"), fields{{"id", nil}, {"idempotency_key", nil}}}}}
	if a.connected {
		over = append(over, field{"account", a.id})
	}
	e.evBuf = e.tpls.component("event").render(e.evBuf[:0], over)
	r := &record{id: id, created: created, typ: typ, data: append([]byte(nil), e.evBuf...)}
	a.events.byID[id] = r
	a.events.recs = append(a.events.recs, r)
	return r
}

// emit records an event at the current time (callers hold e.mu).
func (e *Emulator) emit(a *account, typ string, obj, prev []byte) {
	if typ == "" {
		return
	}
	r := e.addEvent(a, typ, e.unix(), obj, prev, e.rnd.Uint64)
	// addEvent appends; keep the order if the clock went backwards.
	a.events.recs = a.events.recs[:len(a.events.recs)-1]
	a.events.recs = insertSorted(a.events.recs, r)
	e.deliver(a, typ, r.data)
}

// streamName maps a catalog stream name to the emulator's, which match
// except for aliases the catalog may choose.
func (e *Emulator) streamName(name string) string {
	if _, ok := defByName[name]; ok {
		return name
	}
	if s, ok := catalog.Lookup(name); ok {
		for _, d := range defs {
			if d.path == s.Path {
				return d.name
			}
		}
	}
	return name
}

// ErrUnknownStream is returned by Mutate for a stream the emulator does not fill.
var ErrUnknownStream = errors.New("emulator: unknown stream")

// Mutate changes a stream the way API calls would: creates new objects
// (modelled on existing ones; children under a random parent), updates
// some (their metadata) and deletes some, emitting the events Stripe emits
// (a child without events of its own, such as a subscription item, emits
// its parent's update). Updates of objects without metadata and deletes of
// streams that cannot be deleted are ignored; subscriptions are canceled;
// payment methods are detached.
func (e *Emulator) Mutate(account, stream string, creates, updates, deletes int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.account(account)
	if !ok {
		return fmt.Errorf("mutate: unknown account %q", account)
	}
	t, ok := a.tables[e.streamName(stream)]
	if !ok {
		return fmt.Errorf("mutate %s: %w", stream, ErrUnknownStream)
	}
	if len(t.recs) == 0 {
		return fmt.Errorf("mutate %s: the stream has no objects to model changes on", stream)
	}
	for i := 0; i < creates; i++ {
		if err := e.cloneObject(a, t); err != nil {
			return fmt.Errorf("mutate %s: %w", stream, err)
		}
	}
	if sch := e.sp.component(t.def.object); sch == nil || sch.Properties["metadata"] == nil {
		updates = 0
	}
	for i := 0; i < updates && len(t.recs) > 0; i++ {
		r := t.recs[e.rnd.IntN(len(t.recs))]
		rev := strconv.FormatUint(a.seq+1, 10)
		a.seq++
		if _, err := e.updateRecord(a, t, r, map[string]any{"metadata": map[string]any{"emulator_rev": rev}}); err != nil {
			return fmt.Errorf("mutate %s: %w", stream, err)
		}
	}
	if t.def.deletable {
		for i := 0; i < deletes; i++ {
			cands := t.recs
			if t.def.cancelOnDelete {
				cands = nil
				for _, r := range t.recs {
					if !r.hidden {
						cands = append(cands, r)
					}
				}
			}
			if len(cands) == 0 {
				break
			}
			e.deleteRecord(a, t, cands[e.rnd.IntN(len(cands))])
		}
	}
	return nil
}

// cloneObject creates an object modelled on a random existing one, with
// new ids for it and its embedded children.
func (e *Emulator) cloneObject(a *account, t *table) error {
	if t.def.parent != "" {
		return e.cloneChild(a, t)
	}
	src := t.recs[e.rnd.IntN(len(t.recs))]
	m, err := decodeObject(src.data)
	if err != nil {
		return err
	}
	now := e.unix()
	id := a.newID(t.def.prefix, e.rnd.Uint64)
	if t.def.prefix == "" {
		id = "CPN" + id[7:]
	}
	m["id"] = id
	if _, ok := m["created"]; ok {
		m["created"] = now
	}
	if _, ok := m["date"]; ok {
		m["date"] = now
	}
	m["metadata"] = map[string]any{"emulator": "created"}
	rec := &record{id: id, created: now, clock: src.clock, hidden: src.hidden}
	// Clone embedded children; those with events of their own announce
	// themselves after the parent (a customer created with tax ids emits
	// customer.created, then customer.tax_id.created for each).
	type created struct {
		typ  string
		data []byte
	}
	var kidEvents []created
	for _, d := range defs {
		if d.parent != t.def.name {
			continue
		}
		ct := a.tables[d.name]
		for _, k := range append([]*record(nil), ct.kids[src.id]...) {
			km, err := decodeObject(k.data)
			if err != nil {
				return err
			}
			kid := a.newID(d.prefix, e.rnd.Uint64)
			km["id"] = kid
			if _, ok := km["created"]; ok {
				km["created"] = now
			}
			reparent(km, src.id, id)
			kr := &record{id: kid, created: now, parent: id, data: encodeObject(km)}
			ct.add(kr)
			if d.evCreated != "" {
				kidEvents = append(kidEvents, created{d.evCreated, kr.data})
			}
		}
		if d.embedded != "" {
			m[d.embedded] = json.RawMessage(e.embeddedList(a, d, id))
		}
	}
	rec.data = encodeObject(m)
	t.add(rec)
	e.emit(a, t.def.evCreated, rec.data, nil)
	for _, ev := range kidEvents {
		e.emit(a, ev.typ, ev.data, nil)
	}
	return nil
}

// cloneChild creates a child modelled on a random existing one under a
// random current parent, and emits its created event (or its parent's
// update when the child has no events).
func (e *Emulator) cloneChild(a *account, t *table) error {
	pt := a.tables[t.def.parent]
	if len(pt.recs) == 0 {
		return errors.New("the parent stream has no objects")
	}
	src := t.recs[e.rnd.IntN(len(t.recs))]
	parent := pt.recs[e.rnd.IntN(len(pt.recs))].id
	m, err := decodeObject(src.data)
	if err != nil {
		return err
	}
	now := e.unix()
	id := a.newID(t.def.prefix, e.rnd.Uint64)
	m["id"] = id
	if _, ok := m["created"]; ok {
		m["created"] = now
	}
	reparent(m, src.parent, parent)
	rec := &record{id: id, created: now, parent: parent, data: encodeObject(m)}
	t.add(rec)
	e.refreshParent(a, t.def, parent)
	if t.def.evCreated != "" {
		e.emit(a, t.def.evCreated, rec.data, nil)
	} else {
		e.emitParentUpdate(a, t.def, parent)
	}
	return nil
}

// reparent replaces a child's references to its old parent with the new
// one, at the top level or one object down (a tax id's owner.customer).
func reparent(m map[string]any, old, parent string) {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if x == old {
				m[k] = parent
			}
		case map[string]any:
			for kk, vv := range x {
				if vv == old {
					x[kk] = parent
				}
			}
		}
	}
}

// emitParentUpdate emits the parent's update event after a change to a
// child that has no events of its own (Stripe announces a changed
// subscription item as customer.subscription.updated).
func (e *Emulator) emitParentUpdate(a *account, d *streamDef, parent string) {
	pd := defByName[d.parent]
	if pd == nil || pd.evUpdated == "" {
		return
	}
	if pr, ok := a.tables[d.parent].byID[parent]; ok {
		prev := fields{}
		if d.embedded != "" {
			prev = fields{{d.embedded, nil}}
		}
		e.emit(a, pd.evUpdated, pr.data, appendValue(nil, prev))
	}
}

// embeddedList renders the first page of a parent's children.
func (e *Emulator) embeddedList(a *account, d *streamDef, parent string) []byte {
	kids := a.tables[d.name].kids[parent]
	var data []raw
	for i := len(kids) - 1; i >= 0 && len(data) < 10; i-- {
		data = append(data, kids[i].data)
	}
	if data == nil {
		data = []raw{}
	}
	url := d.path
	if d.parentInQuery {
		url += "?" + d.parentParam + "=" + parent
	} else {
		url = replaceParam(d.path, parent)
	}
	return appendValue(nil, fields{{"object", "list"}, {"data", data}, {"has_more", len(kids) > 10}, {"url", url}})
}

func replaceParam(path, id string) string {
	i := bytes.IndexByte([]byte(path), '{')
	j := bytes.IndexByte([]byte(path), '}')
	if i < 0 || j < i {
		return path
	}
	return path[:i] + id + path[j+1:]
}

// refreshParent re-renders the parent's embedded list after a child changed.
func (e *Emulator) refreshParent(a *account, d *streamDef, parent string) {
	if d.embedded == "" {
		return
	}
	pt := a.tables[d.parent]
	pr, ok := pt.byID[parent]
	if !ok {
		return
	}
	if b, err := patchJSON(pr.data, fields{{d.embedded, raw(e.embeddedList(a, d, parent))}}); err == nil {
		pr.data = b
	}
}

// deleteRecord deletes (or cancels, or detaches) an object and emits the
// event. It returns the body a DELETE answers.
func (e *Emulator) deleteRecord(a *account, t *table, r *record) []byte {
	now := e.unix()
	switch {
	case t.def.cancelOnDelete:
		b, err := patchJSON(r.data, fields{{"status", "canceled"}, {"canceled_at", now}, {"ended_at", now}})
		if err == nil {
			r.data = b
		}
		r.hidden = true
		e.emit(a, t.def.evDeleted, r.data, nil)
		return r.data
	case t.def.name == "payment_methods":
		oldCustomer := r.customer()
		b, err := patchJSON(r.data, fields{{"customer", nil}})
		if err == nil {
			r.data = b
		}
		t.remove(r)
		e.emit(a, t.def.evDeleted, r.data, appendValue(nil, fields{{"customer", oldCustomer}}))
		return r.data
	}
	t.remove(r)
	if t.def.parent != "" {
		e.refreshParent(a, t.def, r.parent)
		if t.def.evDeleted == "" {
			e.emitParentUpdate(a, t.def, r.parent)
		}
	}
	// Children go with their parent (a deleted draft invoice's lines).
	for _, ct := range a.tables {
		if ct.def != nil && ct.def.parent == t.def.name {
			for _, k := range append([]*record(nil), ct.kids[r.id]...) {
				ct.remove(k)
			}
		}
	}
	obj := e.sp.component(t.def.object)
	objName := t.def.object
	if obj != nil && obj.Properties["object"] != nil && len(obj.Properties["object"].Enum) > 0 {
		objName = obj.Properties["object"].Enum[0]
	}
	e.emit(a, t.def.evDeleted, r.data, nil)
	return appendValue(nil, fields{{"id", r.id}, {"object", objName}, {"deleted", true}})
}

// customer is the object's customer field.
func (r *record) customer() any {
	m, err := decodeObject(r.data)
	if err != nil {
		return nil
	}
	return m["customer"]
}
