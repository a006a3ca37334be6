package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/ops"
)

// Actions of a restore into Stripe.
const (
	ActionCreate = "create" // re-create an object deleted since the snapshot
	ActionUpdate = "update" // revert fields changed since the snapshot
)

// Statuses of an action (ops' row statuses).
const (
	StatusCreated = ops.StatusCreated
	StatusUpdated = ops.StatusUpdated
	StatusFailed  = ops.StatusFailed
	StatusInvalid = ops.StatusInvalid
	StatusPlanned = ops.StatusPlanned
	// StatusNotRestorable: the object differs only in fields Stripe does
	// not let change; nothing is sent and the run does not fail for it.
	StatusNotRestorable = "not_restorable"
)

// NotRestored is a field a restore leaves as it is, and why.
type NotRestored struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Action is one request of a restore into Stripe and its outcome.
type Action struct {
	Stream string `json:"stream"`
	// ID is the object's id in the snapshot; NewID the id of the object
	// re-created for it (creates, and updates of an earlier re-creation).
	ID     string `json:"id"`
	NewID  string `json:"new_id,omitempty"`
	Action string `json:"action"`
	Status string `json:"status"`
	// Fields are the fields the request sets (metadata key by key).
	Fields         []string      `json:"fields,omitempty"`
	NotRestored    []NotRestored `json:"not_restored,omitempty"`
	Error          string        `json:"error,omitempty"`
	Method         string        `json:"method"`
	Path           string        `json:"path"`
	Params         ops.Params    `json:"-"`
	IdempotencyKey string        `json:"idempotency_key"`
	// order is the action's place in the plan.
	order int
}

// StripeOptions configures a restore into Stripe.
type StripeOptions struct {
	// Ops sends the writes (validated, paced, idempotent); nil in a dry run.
	Ops *ops.Ops
	// Lister lists the live account.
	Lister Lister
	// Streams to restore (top-level streams Stripe can list).
	Streams []string
	// DryRun plans and validates every request and sends none.
	DryRun bool
	// Concurrency is the requests in flight per stream; 0 is
	// ops.DefaultConcurrency.
	Concurrency int
	// Progress, when set, hears about each finished action (serialised).
	Progress func(Action)
}

// StripeResult is the outcome of a restore into Stripe.
type StripeResult struct {
	Snapshot string   `json:"snapshot"`
	DryRun   bool     `json:"dry_run"`
	Actions  []Action `json:"actions"`
	// Left counts per stream the objects created since the snapshot, which
	// a restore leaves alone.
	Left map[string]int `json:"left_alone"`
	// Mapping is old id → new id of every re-created object.
	Mapping map[string]string `json:"mapping"`
	Summary StripeSummary     `json:"summary"`
}

// StripeSummary counts actions by status.
type StripeSummary struct {
	Created, Updated, Failed, Invalid, Planned, NotRestorable int
	// NotRestored counts the fields left as they are.
	NotRestored int
}

// OK is true when no action failed or was invalid.
func (s StripeSummary) OK() bool { return s.Failed == 0 && s.Invalid == 0 }

// restoreOrder puts the objects others refer to first, so a re-created
// price can point at its re-created product.
var restoreOrder = map[string]int{"products": 0, "coupons": 0, "tax_rates": 0, "shipping_rates": 0, "billing_meters": 0,
	"customers": 1, "prices": 2, "plans": 2, "promotion_codes": 3}

// CheckStripeStreams checks that every stream can be restored into Stripe
// from the snapshot.
func (s *Snapshot) CheckStripeStreams(streams []string) error {
	if len(streams) == 0 {
		return errors.New("name the streams to restore into Stripe with --streams, e.g. --streams customers,products,prices,coupons")
	}
	for _, name := range streams {
		st, err := ops.LookupStream(name)
		if err != nil {
			return err
		}
		if !Listable(name) {
			return fmt.Errorf("stream %s %w, so it cannot be compared with the account and restored", name, ErrNotListable)
		}
		_, cerr := ops.CreateSchema(st)
		_, uerr := ops.UpdateSchema(st)
		if cerr != nil && uerr != nil {
			return fmt.Errorf("stream %s can be neither created nor updated through the API: nothing of it can be restored", name)
		}
		if s.Manifest.Stream(name) == nil {
			return fmt.Errorf("snapshot %s has no stream %s (it holds %s)", s.Manifest.ID, name, strings.Join(s.Streams(), ", "))
		}
	}
	return nil
}

// RestoreToStripe puts the account's objects of the given streams back as
// the snapshot holds them: objects deleted since are re-created (new ids,
// the old one in metadata[stripeline_restored_from] and in the result's
// mapping), changed fields that the update endpoint takes are reverted
// (metadata key by key: a key added since is unset), and fields Stripe does
// not let change are listed with the reason. Every request is planned and
// validated against the spec's request schema before the first one is
// sent; requests carry idempotency keys derived from the snapshot and the
// object, and an object re-created by an earlier run is found by its
// metadata mark, so a re-run (also after a crash) creates no duplicates and
// a run after a complete one sends nothing. Objects created since the
// snapshot are left alone.
func (s *Snapshot) RestoreToStripe(ctx context.Context, opt StripeOptions) (*StripeResult, error) {
	if err := s.CheckStripeStreams(opt.Streams); err != nil {
		return nil, err
	}
	if !opt.DryRun && opt.Ops == nil {
		return nil, errors.New("restore to Stripe: no client")
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = ops.DefaultConcurrency
	}
	streams := append([]string(nil), opt.Streams...)
	sort.SliceStable(streams, func(i, j int) bool { return order(streams[i]) < order(streams[j]) })
	res := &StripeResult{Snapshot: s.Manifest.ID, DryRun: opt.DryRun, Left: map[string]int{}, Mapping: map[string]string{}}

	// Plan every stream first: nothing is sent before every request is
	// known to be valid.
	var plans [][]*Action
	for _, stream := range streams {
		acts, left, err := s.planStream(ctx, opt.Lister, stream, res.Mapping)
		if err != nil {
			return nil, fmt.Errorf("plan the restore of %s: %w", stream, err)
		}
		res.Left[stream] = left
		plans = append(plans, acts)
	}
	n := 0
	for _, acts := range plans {
		for _, a := range acts {
			a.order = n
			n++
		}
	}
	var mu sync.Mutex
	finish := func(a *Action) {
		mu.Lock()
		defer mu.Unlock()
		if a.Action == ActionCreate && a.NewID != "" {
			res.Mapping[a.ID] = a.NewID
		}
		res.Actions = append(res.Actions, *a)
		if opt.Progress != nil {
			opt.Progress(*a)
		}
	}
	for _, acts := range plans {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(opt.Concurrency)
		for _, a := range acts {
			if a.Status == StatusInvalid || a.Status == StatusNotRestorable || opt.DryRun {
				if a.Status == "" {
					a.Status = StatusPlanned
				}
				finish(a)
				continue
			}
			mu.Lock()
			a.Params = substitute(a.Params, res.Mapping)
			mu.Unlock()
			g.Go(func() error {
				s.send(gctx, opt.Ops, a)
				finish(a)
				return gctx.Err()
			})
		}
		if err := g.Wait(); err != nil {
			return res, err
		}
	}
	sort.SliceStable(res.Actions, func(i, j int) bool { return res.Actions[i].order < res.Actions[j].order })
	for _, a := range res.Actions {
		switch a.Status {
		case StatusCreated:
			res.Summary.Created++
		case StatusUpdated:
			res.Summary.Updated++
		case StatusFailed:
			res.Summary.Failed++
		case StatusInvalid:
			res.Summary.Invalid++
		case StatusPlanned:
			res.Summary.Planned++
		case StatusNotRestorable:
			res.Summary.NotRestorable++
		}
		res.Summary.NotRestored += len(a.NotRestored)
	}
	return res, nil
}

func order(stream string) int {
	if o, ok := restoreOrder[stream]; ok {
		return o
	}
	return 5
}

// substitute points parameters that name a re-created object at its new
// id.
func substitute(p ops.Params, mapping map[string]string) ops.Params {
	out := make(ops.Params, len(p))
	for i, kv := range p {
		if nv, ok := mapping[kv.Value]; ok && !strings.HasPrefix(kv.Key, "metadata[") {
			kv.Value = nv
		}
		out[i] = kv
	}
	return out
}

func (s *Snapshot) send(ctx context.Context, o *ops.Ops, a *Action) {
	var (
		obj *ops.Object
		err error
	)
	if a.Action == ActionCreate {
		obj, err = o.Create(ctx, a.Stream, a.Params, a.IdempotencyKey)
	} else {
		id := a.ID
		if a.NewID != "" {
			id = a.NewID
		}
		obj, err = o.Update(ctx, a.Stream, id, a.Params, a.IdempotencyKey)
	}
	if err != nil {
		a.Status, a.Error = StatusFailed, err.Error()
		return
	}
	if a.Action == ActionCreate {
		a.Status, a.NewID = StatusCreated, obj.ID
		return
	}
	a.Status = StatusUpdated
}

// idemKey is the idempotency key of one object's restore request: the
// same snapshot, object and request give the same key in every run.
func idemKey(snapshot, stream, id, action string, p ops.Params) string {
	h := sha256.New()
	io.WriteString(h, snapshot+"\x00"+stream+"\x00"+id+"\x00"+action+"\x00")
	if action == ActionUpdate {
		io.WriteString(h, p.Canonical())
	}
	return "stripeline-restore-" + hex.EncodeToString(h.Sum(nil)[:24])
}

// planStream diffs one stream of the snapshot with the live account and
// turns the differences into validated requests. mapping holds the ids
// re-created by earlier runs (found by their mark) for later streams.
func (s *Snapshot) planStream(ctx context.Context, l Lister, stream string, mapping map[string]string) ([]*Action, int, error) {
	st, _ := catalog.Lookup(stream)
	createBody, _ := ops.CreateSchema(st)
	updateBody, _ := ops.UpdateSchema(st)
	var acts []*Action
	var perr error
	d, err := Diff(ctx, SnapshotSource{S: s}, LiveSource{Client: l}, DiffOptions{
		Streams: []string{stream},
		Removed: func(stream string, row map[string]any) {
			acts = append(acts, s.planCreate(st, createBody, row))
		},
		Changed: func(stream string, a, b map[string]any) {
			act, err := s.planUpdate(st, createBody, updateBody, a, b)
			if err != nil && perr == nil {
				perr = err
			}
			if act != nil {
				acts = append(acts, act)
			}
		},
	})
	if err != nil {
		return nil, 0, err
	}
	if perr != nil {
		return nil, 0, perr
	}
	left := 0
	for _, sd := range d.Streams {
		left += sd.Added
		for _, o := range sd.Objects {
			if o.RestoredAs != "" {
				mapping[o.ID] = o.RestoredAs
			}
		}
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].ID < acts[j].ID })
	return acts, left, nil
}

// skipOnCreate are fields of an object that are Stripe's own, never
// parameters: a re-created object gets its own.
var skipOnCreate = map[string]string{
	"id":       "a re-created object gets a new id (the old one is in metadata[" + RestoredFromKey + "])",
	"object":   "",
	"livemode": "",
	"created":  "set by Stripe when the object is created",
}

// goneWithObject are parameters a re-created object cannot take from the
// deleted one because what they name went with it.
var goneWithObject = map[string]map[string]string{
	"customers": {
		"invoice_settings[default_payment_method]": "the deleted customer's payment methods were detached with it",
		"test_clock": "a re-created customer is not put under the deleted one's test clock",
	},
}

func (s *Snapshot) planCreate(st catalog.Stream, body *catalog.Schema, row map[string]any) *Action {
	id, _ := row["id"].(string)
	a := &Action{Stream: st.Name, ID: id, Action: ActionCreate, Method: "POST", Path: st.Path}
	if body == nil {
		a.Status, a.Error = StatusInvalid, fmt.Sprintf("%s cannot be re-created: the API has no POST %s", st.Name, st.Path)
		return a
	}
	props := catalog.Resolve(body).Properties
	skip := skipped(st.Name)
	names := sortedKeys(row)
	var p ops.Params
	for _, k := range names {
		v := row[k]
		if skip[k] || v == nil {
			continue
		}
		if reason, ok := skipOnCreate[k]; ok {
			if reason != "" {
				a.NotRestored = append(a.NotRestored, NotRestored{Field: k, Reason: reason})
			}
			continue
		}
		if props[k] == nil {
			a.NotRestored = append(a.NotRestored, NotRestored{Field: k, Reason: fmt.Sprintf("not a parameter of POST %s: Stripe sets it", st.Path)})
			continue
		}
		fp, err := fieldParams(k, v, k == "metadata")
		if err != nil {
			a.NotRestored = append(a.NotRestored, NotRestored{Field: k, Reason: err.Error()})
			continue
		}
		if k == "metadata" {
			fp = fp.Without("metadata[" + RestoredFromKey + "]")
		}
		for key, reason := range goneWithObject[st.Name] {
			if v, ok := fp.Get(key); ok {
				fp = fp.Without(key)
				if v != "" {
					a.NotRestored = append(a.NotRestored, NotRestored{Field: key, Reason: reason})
				}
			}
		}
		p = append(p, fp...)
	}
	p = append(p, ops.Param{Key: "metadata[" + RestoredFromKey + "]", Value: id})
	a.Params, a.NotRestored = validated(body, p, a.NotRestored)
	a.Fields = paramFields(a.Params)
	a.IdempotencyKey = idemKey(s.Manifest.ID, st.Name, id, ActionCreate, nil)
	if err := ops.Validate(body, a.Params); err != nil {
		a.Status, a.Error = StatusInvalid, err.Error()
	}
	return a
}

// planUpdate reverts the fields of the live object b that differ from
// the snapshot's a. A pair of a re-created object and the one it stands
// for reverts only what the create endpoint takes too (a deleted object's
// children and references are gone with it).
func (s *Snapshot) planUpdate(st catalog.Stream, createBody, body *catalog.Schema, a, b map[string]any) (*Action, error) {
	id, _ := a["id"].(string)
	liveID, _ := b["id"].(string)
	act := &Action{Stream: st.Name, ID: id, Action: ActionUpdate, Method: "POST"}
	if liveID != id {
		act.NewID = liveID
	}
	act.Path = st.Path + "/" + liveID
	skip := skipped(st.Name)
	oa, _, err := comparable(a, skip)
	if err != nil {
		return nil, err
	}
	ob, _, err := comparable(b, skip)
	if err != nil {
		return nil, err
	}
	if act.NewID != "" {
		dropGone(st.Name, oa)
		dropGone(st.Name, ob)
	}
	var props, createProps map[string]*catalog.Schema
	if body != nil {
		props = catalog.Resolve(body).Properties
	}
	if createBody != nil {
		createProps = catalog.Resolve(createBody).Properties
	}
	var p ops.Params
	for _, k := range sortedKeys(oa.fields) {
		vb, ok := ob.fields[k]
		if !ok || vb == oa.fields[k] {
			continue
		}
		if ca, err := canonical(json.RawMessage(oa.fields[k])); err == nil {
			if cb, err := canonical(json.RawMessage(vb)); err == nil && ca == cb {
				continue
			}
		}
		switch {
		case k == "id" || k == "object" || k == "livemode":
			continue
		case props[k] == nil:
			act.NotRestored = append(act.NotRestored, NotRestored{Field: k, Reason: notUpdatable(st, k)})
			continue
		case act.NewID != "" && createProps[k] == nil:
			act.NotRestored = append(act.NotRestored, NotRestored{Field: k, Reason: "the re-created object cannot take it: not a parameter of POST " + st.Path})
			continue
		}
		if k == "metadata" {
			p = append(p, metadataParams(a["metadata"], b["metadata"])...)
			continue
		}
		fp, err := fieldParams(k, a[k], false)
		if err != nil {
			act.NotRestored = append(act.NotRestored, NotRestored{Field: k, Reason: err.Error()})
			continue
		}
		if act.NewID != "" {
			for key := range goneWithObject[st.Name] {
				fp = fp.Without(key)
			}
		}
		p = append(p, fp...)
	}
	if body == nil {
		if len(act.NotRestored) == 0 {
			return nil, nil
		}
		act.Status, act.Error = StatusInvalid, fmt.Sprintf("%s cannot be updated: the API has no POST %s/{id}", st.Name, st.Path)
		return act, nil
	}
	act.Params, act.NotRestored = validated(body, p, act.NotRestored)
	if len(act.Params) == 0 {
		// Nothing to send. A re-created object differs from the one it
		// stands for in what Stripe sets (its report said so when it was
		// created); any other object is listed with what cannot change.
		if len(act.NotRestored) == 0 || act.NewID != "" {
			return nil, nil
		}
		act.Status = StatusNotRestorable
		return act, nil
	}
	act.Fields = paramFields(act.Params)
	act.IdempotencyKey = idemKey(s.Manifest.ID, st.Name, id, ActionUpdate, act.Params)
	return act, nil
}

// notUpdatable explains why Stripe does not let a field change.
func notUpdatable(st catalog.Stream, field string) string {
	switch {
	case field == "created":
		return "set by Stripe when the object is created"
	case st.Name == "prices" && (field == "unit_amount" || field == "unit_amount_decimal" || field == "currency" || field == "recurring" || field == "product" || field == "billing_scheme" || field == "tiers" || field == "type"):
		return "a price's amount, currency, product and billing are immutable in Stripe: create a new price instead"
	}
	return fmt.Sprintf("not a parameter of POST %s/{id}: Stripe does not let it change", st.Path)
}

// validated drops the fields whose parameters the schema rejects (each
// listed with the reason) until the rest is valid, or only problems that
// name no field are left.
func validated(body *catalog.Schema, p ops.Params, nr []NotRestored) (ops.Params, []NotRestored) {
	for range 8 {
		err := ops.Validate(body, p)
		var ve *ops.ValidationError
		if err == nil || !errors.As(err, &ve) {
			return p, nr
		}
		drop := map[string]string{}
		for _, pr := range ve.Problems {
			f := topField(pr.Param)
			if f == "" || f == "metadata" && strings.Contains(pr.Param, RestoredFromKey) {
				continue
			}
			if _, there := p.Get(pr.Param); !there && !hasPrefix(p, f) {
				continue // a required parameter that is missing: nothing to drop
			}
			if drop[f] == "" {
				drop[f] = pr.String()
			}
		}
		if len(drop) == 0 {
			return p, nr
		}
		var keep ops.Params
		for _, kv := range p {
			if _, gone := drop[topField(kv.Key)]; !gone {
				keep = append(keep, kv)
			}
		}
		for _, f := range sortedKeys(drop) {
			nr = append(nr, NotRestored{Field: f, Reason: "rejected by the request schema: " + drop[f]})
		}
		p = keep
	}
	return p, nr
}

func hasPrefix(p ops.Params, field string) bool {
	for _, kv := range p {
		if topField(kv.Key) == field {
			return true
		}
	}
	return false
}

func topField(param string) string {
	if i := strings.IndexByte(param, '['); i >= 0 {
		return param[:i]
	}
	return param
}

// paramFields names what a request sets: top-level fields, metadata key
// by key.
func paramFields(p ops.Params) []string {
	seen := map[string]bool{}
	var out []string
	for _, kv := range p {
		f := topField(kv.Key)
		if f == "metadata" {
			f = "metadata." + strings.TrimSuffix(strings.TrimPrefix(kv.Key, "metadata["), "]")
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// fieldParams are the form parameters setting one field to a replica
// value: nil unsets it (""), objects and arrays are flattened.
func fieldParams(name string, v any, metadata bool) (ops.Params, error) {
	switch x := v.(type) {
	case nil:
		return ops.Params{{Key: name, Value: ""}}, nil
	case string:
		return ops.Params{{Key: name, Value: x}}, nil
	case bool:
		return ops.Params{{Key: name, Value: strconv.FormatBool(x)}}, nil
	case int64:
		return ops.Params{{Key: name, Value: strconv.FormatInt(x, 10)}}, nil
	case float64:
		return ops.Params{{Key: name, Value: strconv.FormatFloat(x, 'f', -1, 64)}}, nil
	case json.RawMessage:
		doc, err := json.Marshal(map[string]json.RawMessage{name: x})
		if err != nil {
			return nil, err
		}
		p, err := ops.FlattenJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("cannot be written as form parameters: %v", err)
		}
		if metadata {
			// An empty metadata object flattens to "metadata=" (clear all):
			// on a create there is nothing to clear.
			p = p.Without("metadata")
		}
		return p, nil
	}
	return nil, fmt.Errorf("value of type %T cannot be sent", v)
}

// metadataParams set the snapshot's metadata keys and unset ("") the keys
// added since.
func metadataParams(a, b any) ops.Params {
	ma, mb := metadataMap(a), metadataMap(b)
	var p ops.Params
	for _, k := range sortedKeys(ma) {
		if k == RestoredFromKey {
			continue
		}
		if vb, ok := mb[k]; !ok || vb != ma[k] {
			p = append(p, ops.Param{Key: "metadata[" + k + "]", Value: ma[k]})
		}
	}
	for _, k := range sortedKeys(mb) {
		if _, ok := ma[k]; !ok && k != RestoredFromKey {
			p = append(p, ops.Param{Key: "metadata[" + k + "]", Value: ""})
		}
	}
	return p
}

func metadataMap(v any) map[string]string {
	out := map[string]string{}
	raw, ok := v.(json.RawMessage)
	if !ok {
		return out
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		} else if x != nil {
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
