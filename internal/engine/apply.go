package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// event is one Stripe event on its way into rows.
type event struct {
	raw     json.RawMessage
	id, typ string
	created int64
	// account is the connected account the event happened on ("" for the
	// platform's own).
	account string
	// obj is the event's data.object, or the object fetched again.
	obj     gjson.Result
	version int64
	// gone: the object was fetched again and no longer exists.
	gone bool
}

func parseEvent(raw json.RawMessage) *event {
	res := gjson.ParseBytes(raw)
	ev := &event{raw: raw, id: res.Get("id").Str, typ: res.Get("type").Str, created: res.Get("created").Int(),
		account: res.Get("account").Str, obj: res.Get("data.object")}
	ev.version = EventVersion(ev.created, ev.typ)
	return ev
}

// getter is the single-object read of the Stripe client.
type getter interface {
	Get(ctx context.Context, path string, q url.Values) ([]byte, error)
}

// storedVersions reads the versions the replica holds for the objects of
// events, by table and id, from a destination that can tell
// (dest.EventLog).
func (r *runner) storedVersions(ctx context.Context, evs []*event, targets map[string][]eventTarget) (map[string]map[string]int64, error) {
	elog, ok := r.opts.Dest.(dest.EventLog)
	if !ok || len(evs) == 0 {
		return nil, nil
	}
	ids := map[*table][]string{}
	for _, ev := range evs {
		id := ev.obj.Get("id").Str
		for _, tgt := range targets[ev.obj.Get("object").Str] {
			if tgt.table != nil && tgt.stream.Parent == "" && id != "" {
				ids[tgt.table] = append(ids[tgt.table], id)
			}
		}
	}
	out := map[string]map[string]int64{}
	for t, list := range ids {
		v, err := elog.Versions(ctx, t.name, list)
		if err != nil {
			return nil, err
		}
		out[t.name] = v
	}
	return out, nil
}

// prepare settles which state of its object an event writes: the payload,
// or the object fetched again when the event is thin (no data.object, a
// related_object to read), when its stream is to be refetched
// (ApplyOptions.Refetch), or when the replica holds a version of the same
// second and rank (two updates in one second: only a fresh read orders
// them). A refetch that ties is written one above the stored version.
func (r *runner) prepare(ctx context.Context, ev *event, targets map[string][]eventTarget, stored map[string]map[string]int64) error {
	path, stream := "", sweepName
	if !ev.obj.IsObject() {
		if u := gjson.GetBytes(ev.raw, "related_object.url").Str; strings.HasPrefix(u, "/v1/") {
			path = u
		}
	}
	id := ev.obj.Get("id").Str
	version := ev.version
	for _, tgt := range targets[ev.obj.Get("object").Str] {
		if tgt.table == nil || tgt.stream.Parent != "" || id == "" {
			continue
		}
		self := tgt.stream.Path + "/" + url.PathEscape(id)
		if r.refetch[tgt.stream.Name] && path == "" {
			path, stream = self, tgt.stream.Name
		}
		if s, ok := stored[tgt.table.name][id]; ok && sameSlot(s, version) {
			version = s + 1
			if path == "" {
				path, stream = self, tgt.stream.Name
			}
		}
	}
	if path == "" {
		return nil
	}
	g, ok := r.opts.Client.(getter)
	if !ok {
		return nil
	}
	r.update(stream, func(sr *StreamResult) {
		if sr.Requests == nil {
			sr.Requests = map[string]int64{}
		}
		sr.Requests[whyRefetch]++
	})
	body, err := g.Get(ctx, path, nil)
	if errors.Is(err, errNoClient) && ev.obj.IsObject() {
		// Without a client the payload is all there is: a tie then
		// stays unwritten, as the versions cannot order it.
		return nil
	}
	ev.version = version
	if errors.Is(err, stripe.ErrNotFound) {
		ev.gone = true
		if !ev.obj.IsObject() {
			typ := gjson.GetBytes(ev.raw, "related_object.type").Str
			ev.obj = gjson.Parse(fmt.Sprintf(`{"id":%q,"object":%q}`, gjson.GetBytes(ev.raw, "related_object.id").Str, typ))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch %s again for event %s: %w", path, ev.id, err)
	}
	ev.obj = gjson.ParseBytes(body)
	return nil
}

// whyRefetch counts the requests that read an event's object again.
const whyRefetch = "refetch"

// ApplyOptions configure an Applier.
type ApplyOptions struct {
	// Client reads objects again (thin events, Refetch, ties); it should
	// implement Get(ctx, path, query) as *stripe.Client does.
	Client Client
	// Dest must record applied events (dest.EventLog): the SQL
	// destinations do.
	Dest dest.Destination
	// Pipeline names the state and the record of applied events.
	Pipeline string
	// Account is the connected account the pipeline replicates ("" for
	// the platform).
	Account string
	// Covers says whether the pipeline replicates an account's events
	// (default: the account is Account). See Covers.
	Covers func(account string) bool
	// Streams and Fields select tables and columns as Options do.
	Streams []string
	Fields  map[string][]string
	// Refetch names the streams whose events are applied with the object
	// read again instead of the event's copy of it.
	Refetch []string
	Logger  *slog.Logger
	Clock   Clock
	// TwoWay names the two-way fields per stream, as Options do, so the
	// rows events write remember them (ColWritten).
	TwoWay map[string][]string
}

// Covers reports whether a pipeline replicating the account pipelineAccount
// ("" for the platform) applies an event of eventAccount: only events of
// the account it replicates.
func Covers(pipelineAccount, eventAccount string) bool { return pipelineAccount == eventAccount }

// Outcome says what became of one event handed to an Applier.
type Outcome string

// Outcomes of Apply.
const (
	// Applied: its rows are durable.
	Applied Outcome = "applied"
	// Duplicate: the event was applied before (by a delivery or the sweep).
	Duplicate Outcome = "duplicate"
	// Ignored: no selected stream holds its object.
	Ignored Outcome = "ignored"
	// OtherAccount: it belongs to an account the pipeline does not cover.
	OtherAccount Outcome = "other_account"
)

// Applier applies events outside a run, as the webhook endpoint receives
// them: through the sweep's row conversion and targets, with the sweep's
// versions, conditional writes and embedded children, and a record of each
// event applied kept with its rows. Apply is safe for concurrent use:
// events of the same object are applied one at a time (a tie is detected
// against what the one before wrote), others side by side, their writes
// ordered by the destination's conditional upsert.
type Applier struct {
	opts ApplyOptions
	elog dest.EventLog

	r       *runner
	targets map[string][]eventTarget
	// objects serialises the events of one object (striped by its id).
	objects [64]sync.Mutex
	// mu guards the runner's bookkeeping while an event becomes rows
	// (the parents named for a refresh, results).
	mu sync.Mutex
}

// objectLock is the stripe of an object's events.
func (a *Applier) objectLock(id string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &a.objects[h%uint32(len(a.objects))]
}

// NewApplier prepares the tables of the selected streams and the targets
// of their events.
func NewApplier(ctx context.Context, opts ApplyOptions) (*Applier, error) {
	elog, ok := opts.Dest.(dest.EventLog)
	if !ok {
		return nil, settingErr("dest", "cannot take webhooks: this destination keeps no record of the events it applied, so a duplicate delivery could not be told from a new one; use a SQL destination (sqlite://, postgres://, mysql://) for a pipeline with webhooks")
	}
	ro := Options{Client: applierClient{opts.Client}, Dest: opts.Dest, Pipeline: opts.Pipeline, Account: opts.Account, Streams: opts.Streams,
		Fields: opts.Fields, Logger: opts.Logger, Clock: opts.Clock, TwoWay: opts.TwoWay}
	if err := ro.Validate(); err != nil {
		return nil, err
	}
	ro.defaults()
	r := &runner{opts: ro, tables: map[string]*table{}, log: ro.Logger, fan: make(chan struct{}, ro.Concurrency), fanPath: map[string]chan struct{}{},
		refetch: map[string]bool{}}
	for _, name := range opts.Refetch {
		if _, ok := catalog.Lookup(name); !ok {
			return nil, settingErr("refetch", "unknown stream %q (see the catalog: stripeline streams)", name)
		}
		r.refetch[name] = true
	}
	if opts.Covers == nil {
		opts.Covers = func(account string) bool { return Covers(opts.Account, account) }
	}
	r.res = &Result{Pipeline: ro.Pipeline}
	r.results = map[string]*StreamResult{}
	selected, err := r.selection()
	if err != nil {
		return nil, err
	}
	for _, s := range selected {
		t := newTable(s, ro.Fields[s.Name], ro.Dest)
		t.setTwoWay(ro.TwoWay[s.Name])
		if err := ro.Dest.Migrate(ctx, t.shape()); err != nil {
			return nil, fmt.Errorf("create table %s: %w", s.Name, err)
		}
		r.tables[s.Name] = t
	}
	saved, err := ro.Dest.LoadState(ctx, ro.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if err := r.plan(ctx, selected, saved); err != nil {
		return nil, err
	}
	if err := r.planRefreshes(saved); err != nil {
		return nil, err
	}
	r.floor = r.now().Unix()
	return &Applier{opts: opts, elog: elog, r: r, targets: r.eventTargets()}, nil
}

// ErrNotEvent is returned by Apply for a body that is not a Stripe event.
var ErrNotEvent = errors.New("not a Stripe event")

// Apply applies one event (the body of a delivery, received at received):
// its rows, children and the record that it was applied are durable when
// it returns Applied. An event applied before is a Duplicate and writes
// nothing.
func (a *Applier) Apply(ctx context.Context, body []byte, received time.Time) (Outcome, error) {
	ev := parseEvent(body)
	if ev.id == "" || ev.typ == "" || ev.created <= 0 {
		return "", ErrNotEvent
	}
	if !a.opts.Covers(ev.account) {
		return OtherAccount, nil
	}
	thin := !ev.obj.IsObject()
	if !thin && len(a.targets[ev.obj.Get("object").Str]) == 0 {
		return Ignored, nil
	}
	lock := a.objectLock(ev.obj.Get("id").Str + gjson.GetBytes(body, "related_object.id").Str)
	lock.Lock()
	defer lock.Unlock()
	r := a.r
	done, err := a.elog.AppliedEvents(ctx, r.opts.Pipeline, []string{ev.id})
	if err != nil {
		return "", err
	}
	if done[ev.id] != "" {
		return Duplicate, nil
	}
	stored, err := r.storedVersions(ctx, []*event{ev}, a.targets)
	if err != nil {
		return "", err
	}
	if err := r.prepare(ctx, ev, a.targets, stored); err != nil {
		return "", err
	}
	if thin && len(a.targets[ev.obj.Get("object").Str]) == 0 {
		return Ignored, nil
	}
	rows := map[*table][]dest.Row{}
	var order []*table
	a.mu.Lock()
	err = r.applyEvent(ctx, ev, a.targets, rows, &order)
	if err == nil && len(order) > 0 {
		err = a.savePending(ctx)
	}
	a.mu.Unlock()
	if err != nil {
		return "", err
	}
	if len(order) == 0 {
		return Ignored, nil
	}
	account := ev.account
	if account == "" {
		account = r.opts.Account
	}
	now := r.now()
	for i, t := range order {
		b := &dest.Batch{Table: t.shape(), Rows: pad(rows[t], t), Account: account, SyncedAt: now, OnlyNewer: true}
		if i == len(order)-1 {
			b.Events = []dest.AppliedEvent{{Pipeline: r.opts.Pipeline, ID: ev.id, Type: ev.typ, Created: ev.created, Source: dest.SourceWebhook, Received: received}}
		}
		// The change log keeps what the delivery changed under its own id
		// (dest.WebhookRun), so rollbacks and as-of queries see it.
		wctx := dest.WithRun(ctx, dest.RunContext{ID: dest.WebhookRun + ev.id, Pipeline: r.opts.Pipeline})
		if err := r.opts.Dest.Write(wctx, b); err != nil {
			return "", err // the destination names the table
		}
	}
	return Applied, nil
}

// savePending saves the parents whose child lists the event named, for the
// next run's refresh, merged with what the store holds (a run may have
// re-read some meanwhile, or been told of others).
func (a *Applier) savePending(ctx context.Context) error {
	r := a.r
	if len(r.refreshAdds) == 0 {
		return nil
	}
	saved, err := r.opts.Dest.LoadState(ctx, r.opts.Pipeline)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	for rf := range r.refreshAdds {
		var st refreshState
		if err := decodeState(saved[pendingKey(rf.child.Name)], &st); err != nil {
			return fmt.Errorf("stream %s: %w", rf.child.Name, err)
		}
		for _, id := range st.Pending {
			rf.pending[id] = true
		}
	}
	return r.savePending(ctx)
}

// EventTypes lists the event types a selection of streams needs (the
// default selection when streams is empty), sorted: what a webhook
// endpoint for it is enabled for.
func EventTypes(streams []string) ([]string, error) {
	o := Options{Streams: streams}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &runner{opts: o}
	selected, err := r.selection()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	add := func(s catalog.Stream) {
		for _, t := range s.EventTypes {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	for _, s := range selected {
		add(s)
		if s.Parent != "" {
			if p, ok := catalog.Lookup(s.Parent); ok {
				add(p) // its children come with the parent's events
			}
		}
	}
	sortStrings(out)
	return out, nil
}

// applierClient is an Applier's view of the client: events need no test
// clock's list (the plan's clock jobs write the tables the stream's own
// job targets already), so planning costs no request, and works without a
// client at all (a pipeline whose key cannot be read: no refetch then).
type applierClient struct{ c Client }

var errNoClient = errors.New("no Stripe client: the pipeline's API key cannot be read")

func (a applierClient) ListPage(ctx context.Context, path string, q url.Values) (*stripe.Page, error) {
	if path == "/v1/test_helpers/test_clocks" {
		return &stripe.Page{}, nil
	}
	if a.c == nil {
		return nil, errNoClient
	}
	return a.c.ListPage(ctx, path, q)
}

func (a applierClient) Get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	g, ok := a.c.(getter)
	if !ok {
		return nil, errNoClient
	}
	return g.Get(ctx, path, q)
}
