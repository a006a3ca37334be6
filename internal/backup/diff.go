package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/ops"
)

// RestoredFromKey is the metadata key a restore into Stripe sets on every
// object it re-creates: the id of the deleted object it stands for. Diffs
// pair such an object with that id, so a re-created object is the same
// object restored, not one removed and one added.
const RestoredFromKey = "stripeline_restored_from"

// Change kinds of an object in a diff.
const (
	Added   = "added"   // in B, not in A
	Changed = "changed" // in both, some field differs
	Removed = "removed" // in A, not in B (or flagged deleted in B)
)

// DiffResult compares side A with side B, stream by stream.
type DiffResult struct {
	A       string       `json:"a"`
	B       string       `json:"b"`
	Streams []StreamDiff `json:"streams"`
}

// Empty reports whether the two sides hold the same objects.
func (r *DiffResult) Empty() bool {
	for _, s := range r.Streams {
		if s.Added+s.Changed+s.Removed > 0 {
			return false
		}
	}
	return true
}

// StreamDiff is the difference of one stream.
type StreamDiff struct {
	Stream  string       `json:"stream"`
	Added   int          `json:"added"`
	Changed int          `json:"changed"`
	Removed int          `json:"removed"`
	Objects []ObjectDiff `json:"objects"`
}

// ObjectDiff is one object that differs.
type ObjectDiff struct {
	ID     string `json:"id"`
	Change string `json:"change"`
	// RestoredAs is the id of the object in B that a restore re-created
	// for ID (paired by the RestoredFromKey metadata mark).
	RestoredAs string      `json:"restored_as,omitempty"`
	Fields     []FieldDiff `json:"fields,omitempty"`
}

// FieldDiff is one top-level field that differs; metadata differs key by
// key ("metadata.plan").
type FieldDiff struct {
	Field string          `json:"field"`
	A     json.RawMessage `json:"a"`
	B     json.RawMessage `json:"b"`
	// Updatable is true when Stripe's update endpoint of the stream takes
	// the field as a parameter, so a restore can revert it.
	Updatable bool `json:"updatable"`
}

// DiffOptions configures a diff.
type DiffOptions struct {
	// Streams limits the diff; none compares every stream of the sides.
	Streams []string
	// Removed, when set, receives the row in A of every removed object
	// (restores re-create them from it).
	Removed func(stream string, row map[string]any)
	// Changed, when set, receives the rows in A and B of every changed
	// object.
	Changed func(stream string, a, b map[string]any)
}

// Diff compares A with B. At least one side must be re-readable (a
// snapshot or a replica): it is read twice, the other once; only the ids,
// a hash per object and the objects that differ are held.
func Diff(ctx context.Context, a, b Source, opt DiffOptions) (*DiffResult, error) {
	if !a.Rereadable() && !b.Rereadable() {
		return nil, fmt.Errorf("diff: compare the live account with a snapshot or a replica, not with itself")
	}
	streams, err := diffStreams(ctx, a, b, opt.Streams)
	if err != nil {
		return nil, err
	}
	res := &DiffResult{A: a.Label(), B: b.Label()}
	for _, s := range streams {
		var sd *StreamDiff
		if a.Rereadable() {
			sd, err = diffStream(ctx, a, b, s, opt, false)
		} else {
			sd, err = diffStream(ctx, b, a, s, opt, true)
		}
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", s, err)
		}
		res.Streams = append(res.Streams, *sd)
	}
	return res, nil
}

func diffStreams(ctx context.Context, a, b Source, want []string) ([]string, error) {
	sa, err := a.Streams(ctx)
	if err != nil {
		return nil, err
	}
	sb, err := b.Streams(ctx)
	if err != nil {
		return nil, err
	}
	if len(want) > 0 {
		for _, s := range want {
			for _, side := range []struct {
				src Source
				ss  []string
			}{{a, sa}, {b, sb}} {
				if side.ss == nil {
					if !Listable(s) {
						return nil, fmt.Errorf("stream %s %w: compare it between snapshots or replicas", s, ErrNotListable)
					}
					continue
				}
				if !contains(side.ss, s) {
					return nil, fmt.Errorf("stream %s is not in %s", s, side.src.Label())
				}
			}
		}
		return want, nil
	}
	set := map[string]bool{}
	for _, list := range [][]string{sa, sb} {
		for _, s := range list {
			set[s] = true
		}
	}
	var out []string
	for s := range set {
		// Against the live account only what it can list on its own.
		if (sa == nil || sb == nil) && !Listable(s) {
			continue
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// object is a row made comparable: its key (the id, or the id it was
// restored from), its real id and its fields as canonical JSON.
type object struct {
	key, id string
	fields  map[string]string
}

func (o *object) hash() [32]byte {
	names := make([]string, 0, len(o.fields))
	for k := range o.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(o.fields[k]))
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// skipped are the fields a diff does not compare: the bookkeeping ones,
// and the embedded first pages of child lists (their objects are streams
// of their own).
func skipped(stream string) map[string]bool {
	m := map[string]bool{}
	for _, c := range dest.Bookkeeping() {
		m[c.Name] = true
	}
	for _, s := range catalog.All() {
		if s.Parent == stream && s.EmbeddedField != "" {
			m[s.EmbeddedField] = true
		}
	}
	return m
}

// comparable turns a row into an object; ok is false for a row flagged
// deleted (it counts as absent).
func comparable(row map[string]any, skip map[string]bool) (*object, bool, error) {
	if d, _ := row[dest.ColDeleted].(bool); d {
		return nil, false, nil
	}
	id, _ := row["id"].(string)
	o := &object{key: id, id: id, fields: make(map[string]string, len(row))}
	for k, v := range row {
		if skip[k] {
			continue
		}
		c, err := compact(v)
		if err != nil {
			return nil, false, fmt.Errorf("row %s field %s: %w", id, k, err)
		}
		o.fields[k] = c
	}
	if md, ok := o.fields["metadata"]; ok {
		var m map[string]string
		if json.Unmarshal([]byte(md), &m) == nil && m[RestoredFromKey] != "" {
			o.key = m[RestoredFromKey]
			delete(m, RestoredFromKey)
			b, _ := json.Marshal(m)
			if len(m) == 0 {
				b = []byte("null") // as canonical writes an empty object
			}
			o.fields["metadata"] = string(b)
			delete(o.fields, "id")
		}
	}
	return o, true, nil
}

// compact is a value as one-line JSON, objects' keys in the order the
// source keeps them: cheap, and equal for equal values of one kind of
// source. Values whose compact forms differ are compared again in their
// canonical form (fieldDiffs), so a reordered jsonb object is no change.
func compact(v any) (string, error) {
	switch x := v.(type) {
	case json.RawMessage:
		if string(x) == "[]" || string(x) == "{}" {
			return "null", nil
		}
		// Already compact (snapshots are): Stripe's bodies are indented,
		// PostgreSQL writes ", " and ": ".
		if !bytes.ContainsAny(x, "\n\r\t") && !bytes.Contains(x, []byte(": ")) && !bytes.Contains(x, []byte(", ")) {
			return string(x), nil
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, x); err != nil {
			return "", err
		}
		return buf.String(), nil
	case string:
		b, err := json.Marshal(x)
		return string(b), err
	case nil:
		return "null", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// canonical is a value as JSON with object keys sorted and numbers as
// written, so the same value compares equal whatever the destination
// (PostgreSQL's jsonb reorders keys).
func canonical(v any) (string, error) {
	if raw, ok := v.(json.RawMessage); ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return "", err
		}
		v = x
	}
	// Stripe reads an empty list or object as unset, and sends one or
	// null for it depending on how the object came to be.
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			v = nil
		}
	case map[string]any:
		if len(x) == 0 {
			v = nil
		}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func diffStream(ctx context.Context, a, b Source, stream string, opt DiffOptions, swapped bool) (*StreamDiff, error) {
	skip := skipped(stream)
	// Pass 1: a hash per object of A.
	type seenA struct {
		h  [32]byte
		id string
	}
	inA := map[string]seenA{}
	for row, err := range a.Rows(ctx, stream) {
		if err != nil {
			return nil, err
		}
		o, ok, err := comparable(row, skip)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if prev, dup := inA[o.key]; dup && prev.id == o.key {
			o.key = o.id // the original is there too: this is an object of its own
		}
		inA[o.key] = seenA{o.hash(), o.id}
	}
	// Pass 2: B once; keep the objects that differ.
	var added []ObjectDiff
	changedB := map[string]*object{}
	rowsB := map[string]map[string]any{}
	seenB := map[string]bool{}
	for row, err := range b.Rows(ctx, stream) {
		if err != nil {
			return nil, err
		}
		o, ok, err := comparable(row, skip)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if seenB[o.key] {
			o.key = o.id
		}
		seenB[o.key] = true
		sa, had := inA[o.key]
		switch {
		case !had:
			added = append(added, ObjectDiff{ID: o.id, Change: Added})
		case sa.h != o.hash():
			changedB[o.key] = o
			if opt.Changed != nil {
				rowsB[o.key] = row
			}
		}
	}
	removedKeys := map[string]bool{}
	for k := range inA {
		if !seenB[k] {
			removedKeys[k] = true
		}
	}
	// Pass 3: A again, for the fields of the changed objects and the rows
	// of the removed ones.
	updatable := paramsOf(stream, ops.UpdateSchema)
	var creatable map[string]bool
	var changed, removed []ObjectDiff
	if len(changedB) > 0 || len(removedKeys) > 0 {
		for row, err := range a.Rows(ctx, stream) {
			if err != nil {
				return nil, err
			}
			o, ok, err := comparable(row, skip)
			if err != nil || !ok {
				if err != nil {
					return nil, err
				}
				continue
			}
			if sa := inA[o.key]; sa.id != o.id {
				o.key = o.id
			}
			if removedKeys[o.key] {
				removed = append(removed, ObjectDiff{ID: o.key, Change: Removed})
				if opt.Removed != nil && !swapped {
					opt.Removed(stream, row)
				}
				continue
			}
			ob, ok := changedB[o.key]
			if !ok {
				continue
			}
			paired := ob.id != o.key || o.id != o.key
			if paired && creatable == nil {
				creatable = paramsOf(stream, ops.CreateSchema)
			}
			if paired {
				dropGone(stream, o)
				dropGone(stream, ob)
			}
			fields := fieldDiffs(o, ob, updatable)
			for i := range fields {
				// A re-created object takes only what the create endpoint
				// takes: the deleted one's children and references are gone.
				if paired && !creatable[topField(strings.SplitN(fields[i].Field, ".", 2)[0])] {
					fields[i].Updatable = false
				}
			}
			if len(fields) == 0 {
				continue // they differed only in fields one side does not have
			}
			od := ObjectDiff{ID: o.key, Change: Changed, Fields: fields}
			if ob.id != o.key {
				od.RestoredAs = ob.id
			} else if o.id != o.key {
				od.RestoredAs = o.id
			}
			changed = append(changed, od)
			if opt.Changed != nil && !swapped {
				opt.Changed(stream, row, rowsB[o.key])
			}
		}
	}
	if swapped {
		// A was the live account: the roles of the sides swap back.
		added, removed = removed, added
		for i := range added {
			added[i].Change = Added
		}
		for i := range removed {
			removed[i].Change = Removed
		}
		for i := range changed {
			for j := range changed[i].Fields {
				f := &changed[i].Fields[j]
				f.A, f.B = f.B, f.A
			}
		}
	}
	sd := &StreamDiff{Stream: stream, Added: len(added), Changed: len(changed), Removed: len(removed)}
	sd.Objects = append(append(append(sd.Objects, added...), changed...), removed...)
	sort.SliceStable(sd.Objects, func(i, j int) bool { return sd.Objects[i].ID < sd.Objects[j].ID })
	return sd, nil
}

// fieldDiffs lists the fields present on both sides whose values differ,
// metadata key by key.
func fieldDiffs(a, b *object, updatable map[string]bool) []FieldDiff {
	var out []FieldDiff
	for k, va := range a.fields {
		vb, ok := b.fields[k]
		if !ok || va == vb {
			continue
		}
		ca, errA := canonical(json.RawMessage(va))
		cb, errB := canonical(json.RawMessage(vb))
		if errA == nil && errB == nil {
			if ca == cb {
				continue
			}
			va, vb = ca, cb
		}
		if k == "metadata" {
			out = append(out, metadataDiffs(va, vb, updatable[k])...)
			continue
		}
		out = append(out, FieldDiff{Field: k, A: json.RawMessage(va), B: json.RawMessage(vb), Updatable: updatable[k]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func metadataDiffs(a, b string, updatable bool) []FieldDiff {
	var ma, mb map[string]any
	_ = json.Unmarshal([]byte(a), &ma)
	_ = json.Unmarshal([]byte(b), &mb)
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	var out []FieldDiff
	for k := range keys {
		va, _ := json.Marshal(ma[k])
		vb, _ := json.Marshal(mb[k])
		if !bytes.Equal(va, vb) {
			out = append(out, FieldDiff{Field: "metadata." + k, A: va, B: vb, Updatable: updatable})
		}
	}
	if len(out) == 0 && a != b {
		out = append(out, FieldDiff{Field: "metadata", A: json.RawMessage(a), B: json.RawMessage(b), Updatable: updatable})
	}
	return out
}

// paramsOf are the top-level parameters of one of the stream's endpoints
// in Stripe's spec (ops.UpdateSchema, ops.CreateSchema).
func paramsOf(stream string, schema func(catalog.Stream) (*catalog.Schema, error)) map[string]bool {
	out := map[string]bool{}
	s, ok := catalog.Lookup(stream)
	if !ok || s.Parent != "" || strings.Contains(s.Path, "{") {
		return out
	}
	body, err := schema(s)
	if err != nil {
		return out
	}
	if body = catalog.Resolve(body); body == nil {
		return out
	}
	for k := range body.Properties {
		out[k] = true
	}
	return out
}

// dropGone removes from a re-created object (and the one it stands for)
// the fields a restore cannot carry over (goneWithObject), so they are no
// difference between the two.
func dropGone(stream string, o *object) {
	for key := range goneWithObject[stream] {
		top, sub, nested := strings.Cut(strings.TrimSuffix(key, "]"), "[")
		if !nested {
			delete(o.fields, top)
			continue
		}
		v, ok := o.fields[top]
		if !ok {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(v), &m) != nil || m == nil {
			continue
		}
		delete(m, sub)
		b, _ := json.Marshal(m)
		if c, err := canonical(json.RawMessage(b)); err == nil {
			o.fields[top] = c
		}
	}
}
