package twoway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/sqldest"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/ops"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Store is what two-way sync needs of a destination; the SQL destinations
// (sqldest.DB: SQLite, PostgreSQL, MySQL) have it.
type Store interface {
	dest.Querier
	PrepareTwoWay(ctx context.Context, table string) error
	ClaimNewRows(ctx context.Context, table string) (int64, error)
	ReplaceID(ctx context.Context, table, old, id string) error
	SetColumn(ctx context.Context, table, column string, values map[string]any) error
	QuoteName(name string) string
	QuoteTable(name string) string
}

var _ Store = (*sqldest.DB)(nil)

// DefaultConcurrency is the number of writes in flight; the client's pacer
// bounds their rate.
const DefaultConcurrency = 8

// scanPage is how many rows one read of a two-way table holds.
const scanPage = 500

// stateKey is the state key of a stream's rows refused by Stripe.
func stateKey(stream string) string { return "_twoway:" + stream }

// Pusher pushes a replica's changes to Stripe: an engine.Pusher.
type Pusher struct {
	cfg    *Config
	ops    *ops.Ops
	client ops.Client
	store  Store
	dst    dest.Destination
	log    *slog.Logger
	// Concurrency is the number of writes in flight (DefaultConcurrency).
	Concurrency int
	// afterSend, in tests, runs after Stripe answered a write and before
	// the replica records it: a crash there.
	afterSend func(stream, id string) error
}

var _ engine.Pusher = (*Pusher)(nil)

// New returns the pusher of cfg over a Stripe client and a destination,
// or a *SettingError when the destination cannot do two-way sync.
func New(cfg *Config, client ops.Client, d dest.Destination, logger *slog.Logger) (*Pusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, ok := d.(Store)
	if !ok {
		return nil, settingErr("two_way", "needs a SQL destination (sqlite://, postgres://, mysql://): a file destination cannot be edited")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pusher{cfg: cfg, ops: ops.New(client, logger), client: client, store: st, dst: d, log: logger, Concurrency: DefaultConcurrency}, nil
}

// EngineFields is the engine's TwoWay option for c (Options.TwoWay).
func (c *Config) EngineFields() map[string][]string {
	if !c.Enabled() {
		return nil
	}
	out := make(map[string][]string, len(c.Streams))
	for k, v := range c.Streams {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// task is one row's write.
type task struct {
	stream catalog.Stream
	op     string // update, create, delete
	id     string
	params ops.Params
	idem   string
	hash   string
}

// pushState is the push of one run.
type pushState struct {
	p   *Pusher
	run *engine.PushRun
	rep *Report

	mu       sync.Mutex
	rejected map[string]map[string]string // stream → id → change hash
	fatal    error
}

// Push sends the replica's changes to Stripe (engine.Pusher).
func (p *Pusher) Push(ctx context.Context, run *engine.PushRun) (any, error) {
	rep := &Report{Policy: p.cfg.Policy()}
	ps := &pushState{p: p, run: run, rep: rep, rejected: map[string]map[string]string{}}
	names := make([]string, 0, len(p.cfg.Streams))
	for n := range p.cfg.Streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.store.PrepareTwoWay(ctx, n); err != nil {
			return rep, err
		}
		var saved struct {
			Rejected map[string]string `json:"rejected"`
		}
		if raw := run.State[stateKey(n)]; len(raw) > 0 {
			if err := json.Unmarshal(raw, &saved); err != nil {
				return rep, fmt.Errorf("two-way state of %s: %w", n, err)
			}
		}
		if saved.Rejected == nil {
			saved.Rejected = map[string]string{}
		}
		ps.rejected[n] = saved.Rejected
	}
	if run.EventsSince == 0 {
		rep.Notes = append(rep.Notes, "nothing pushed: the two-way tables have not been pulled yet; edits are pushed from the next run on")
		return rep, nil
	}
	changed, err := ps.stripeChanges(ctx, names)
	if err != nil {
		return rep, err
	}
	var tasks []task
	for _, n := range names {
		t, err := ps.scan(ctx, n, changed)
		if err != nil {
			return rep, err
		}
		tasks = append(tasks, t...)
	}
	if err := ps.send(ctx, tasks); err != nil {
		return rep, err
	}
	var states []dest.State
	for _, n := range names {
		b, _ := json.Marshal(map[string]any{"rejected": ps.rejected[n]})
		states = append(states, dest.State{Pipeline: run.Pipeline, Stream: stateKey(n), Cursor: b})
	}
	if err := p.dst.SaveState(ctx, states...); err != nil {
		return rep, fmt.Errorf("save two-way state: %w", err)
	}
	if rep.Held > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d rows refused by an earlier run are unchanged since and were not sent again", rep.Held))
	}
	if len(rep.Rejected) > 0 {
		r := rep.Rejected[0]
		return rep, fmt.Errorf("%w: Stripe refused %d of the database's changes (first: %s %s: %s); they stay unsynced until they change again",
			engine.ErrRowsRejected, len(rep.Rejected), r.Stream, r.ID, r.describe())
	}
	return rep, nil
}

func (r Rejection) describe() string {
	if r.Param != "" {
		return r.Param + ": " + r.Message
	}
	return r.Message
}

// stripeChanges reads the events since the last pull: the objects of the
// two-way streams Stripe changed since, with the time of their latest
// change.
func (ps *pushState) stripeChanges(ctx context.Context, names []string) (map[string]int64, error) {
	types := map[string]bool{}
	for _, n := range names {
		s, _ := catalog.Lookup(n)
		for _, t := range s.EventTypes {
			types[t] = true
		}
	}
	changed := map[string]int64{}
	q := url.Values{"limit": {"100"}, "created[gte]": {strconv.FormatInt(ps.run.EventsSince, 10)}}
	for {
		resp, err := ps.p.client.Do(ctx, &stripe.Request{Method: http.MethodGet, Path: "/v1/events", Query: q})
		ps.rep.Requests++
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		data := gjson.GetBytes(resp.Body, "data").Array()
		for _, ev := range data {
			if !types[ev.Get("type").Str] {
				continue
			}
			id := ev.Get("data.object.id").Str
			if c := ev.Get("created").Int(); c > changed[id] {
				changed[id] = c
			}
		}
		if !gjson.GetBytes(resp.Body, "has_more").Bool() || len(data) == 0 {
			return changed, nil
		}
		q.Set("starting_after", data[len(data)-1].Get("id").Str)
	}
}

// scan reads a two-way table and returns the writes its changes need.
func (ps *pushState) scan(ctx context.Context, name string, changed map[string]int64) ([]task, error) {
	st := ps.p.store
	s, _ := catalog.Lookup(name)
	fields := ps.p.cfg.Streams[name]
	types := map[string]catalog.Type{}
	for _, c := range s.Columns {
		types[c.Name] = c.Type
	}
	if _, err := st.ClaimNewRows(ctx, name); err != nil {
		return nil, err
	}
	// Only what change detection needs; a new row's other columns are
	// read when it is found (createTask).
	cols := append([]string{"id"}, fields...)
	cols = append(cols, engine.ColWritten, sqldest.ColDelete, dest.ColDeleted, sqldest.ColEditedAt, dest.ColSyncedAt)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = st.QuoteName(c)
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + st.QuoteTable(name) + " WHERE " + st.QuoteName("id") + " > ? ORDER BY " + st.QuoteName("id") + " LIMIT " + strconv.Itoa(scanPage)
	var tasks []task
	adopt := map[string]any{}
	after := ""
	for {
		cols, rows, err := st.Query(ctx, q, after)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		for _, v := range rows {
			row := make(map[string]any, len(cols))
			for i, c := range cols {
				row[c] = v[i]
			}
			id, _ := row["id"].(string)
			after = id
			t, ok, err := ps.rowTask(ctx, s, fields, types, row, changed, adopt)
			if err != nil {
				return nil, err
			}
			if ok {
				tasks = append(tasks, t)
			}
		}
		if len(rows) < scanPage {
			break
		}
	}
	if err := st.SetColumn(ctx, name, engine.ColWritten, adopt); err != nil {
		return nil, err
	}
	return tasks, nil
}

// rowTask decides what one row needs: nothing, an update, a create or a
// delete. Rows written before the table was two-way have nothing
// remembered; their values are adopted as remembered (adopt).
func (ps *pushState) rowTask(ctx context.Context, s catalog.Stream, fields []string, types map[string]catalog.Type, row map[string]any, changed map[string]int64, adopt map[string]any) (task, bool, error) {
	id, _ := row["id"].(string)
	if truthy(row[dest.ColDeleted]) {
		return task{}, false, nil
	}
	if strings.HasPrefix(id, sqldest.NewIDPrefix) {
		if truthy(row[sqldest.ColDelete]) {
			return task{}, false, nil
		}
		full, err := ps.wholeRow(ctx, s.Name, id)
		if err != nil {
			return task{}, false, err
		}
		return ps.createTask(s, types, full)
	}
	if truthy(row[sqldest.ColDelete]) {
		return ps.deleteTask(s, id)
	}
	rawWritten, _ := row[engine.ColWritten].(string)
	if rawWritten == "" {
		now := map[string]any{}
		for _, f := range fields {
			now[f] = goValue(types[f], row[f])
		}
		b, _ := json.Marshal(now)
		adopt[id] = string(b)
		return task{}, false, nil
	}
	var rem map[string]any
	if err := json.Unmarshal([]byte(rawWritten), &rem); err != nil {
		return task{}, false, nil // not ours to read: nothing to compare with
	}
	var items []item
	for _, f := range fields {
		v := goValue(types[f], row[f])
		if why := badJSON(f, types[f], v); why != "" {
			t := task{stream: s, op: "update", id: id, hash: hash("update", s.Name, id, f, fmt.Sprint(row[f]))}
			return ps.refuse(t, f, why)
		}
		items = append(items, diff(f, v, rem[f])...)
	}
	if len(items) == 0 {
		return task{}, false, nil
	}
	if at, ok := changed[id]; ok {
		var err error
		if items, err = ps.resolve(ctx, s, id, row, items, at); err != nil {
			return task{}, false, err
		}
		if len(items) == 0 {
			return task{}, false, nil
		}
	}
	params, err := ops.FlattenJSON(mustJSON(body(items)))
	if err != nil {
		return task{}, false, fmt.Errorf("%s %s: %w", s.Name, id, err)
	}
	synced := fmt.Sprint(row[dest.ColSyncedAt])
	t := task{stream: s, op: "update", id: id, params: params,
		hash: hash("update", s.Name, id, params.Canonical()),
		idem: "stripeline-2w-" + hash(ps.run.Pipeline, s.Name, id, synced, rawWritten, params.Canonical())}
	return ps.unlessHeld(t)
}

// resolve applies the conflict policy to the items of an object Stripe
// changed too since the last pull (at: its latest event). It reads the
// object's current state: items Stripe already holds need no write, items
// Stripe changed otherwise are conflicts.
func (ps *pushState) resolve(ctx context.Context, s catalog.Stream, id string, row map[string]any, items []item, at int64) ([]item, error) {
	raw, err := ps.p.ops.Get(ctx, s.Name, id, nil)
	ps.mu.Lock()
	ps.rep.Requests++
	ps.mu.Unlock()
	if err != nil {
		if se := (*stripe.Error)(nil); errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return items, nil // the update will say so
		}
		return nil, err
	}
	conv := engine.NewConverter(s, nil)
	r, err := conv.Row(raw, "")
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", s.Name, id, err)
	}
	values := map[string]any{}
	for i, c := range conv.Columns() {
		if i < len(r.Values) {
			values[c.Name] = goValue(c.Type, r.Values[i])
		}
	}
	dbAt := ps.run.Started.Unix()
	if e, ok := goValue(catalog.TypeInteger, row[sqldest.ColEditedAt]).(int64); ok && e > 0 {
		dbAt = e
	}
	var keep []item
	for _, it := range items {
		sv := it.stripeValue(values)
		switch {
		case canon(sv) == canon(it.DB):
			continue // Stripe holds it already (an earlier run sent it)
		case canon(sv) == canon(it.Rem):
			keep = append(keep, it) // only the database changed it
			continue
		}
		winner := "stripe"
		switch ps.p.cfg.Policy() {
		case DatabaseWins:
			winner = "database"
		case NewestWins:
			if dbAt > at {
				winner = "database"
			}
		}
		ps.mu.Lock()
		ps.rep.Conflicts = append(ps.rep.Conflicts, Conflict{Stream: s.Name, ID: id, Field: it.Field,
			Database: mustJSON(it.DB), Stripe: mustJSON(sv), Remembered: mustJSON(it.Rem), Winner: winner,
			StripeChanged: at, DatabaseChanged: dbAt})
		ps.mu.Unlock()
		ps.p.log.Info("two-way conflict", "stream", s.Name, "id", id, "field", it.Field, "winner", winner)
		if winner == "database" {
			keep = append(keep, it)
		}
	}
	return keep, nil
}

// wholeRow reads every column of one row.
func (ps *pushState) wholeRow(ctx context.Context, table, id string) (map[string]any, error) {
	st := ps.p.store
	cols, rows, err := st.Query(ctx, "SELECT * FROM "+st.QuoteTable(table)+" WHERE "+st.QuoteName("id")+" = ?", id)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", table, id, err)
	}
	row := map[string]any{}
	if len(rows) == 1 {
		for i, c := range cols {
			row[c] = rows[0][i]
		}
	}
	return row, nil
}

// createTask is the create of a row inserted with a NULL id: its non-NULL
// columns that the create request takes.
func (ps *pushState) createTask(s catalog.Stream, types map[string]catalog.Type, row map[string]any) (task, bool, error) {
	id, _ := row["id"].(string)
	if !CanCreate(s) {
		return ps.refuse(task{stream: s, op: "create", id: id, hash: hash("create", s.Name, id)}, "", s.Name+" cannot be created through the API")
	}
	schema, _ := ops.CreateSchema(s)
	obj := map[string]any{}
	for c, v := range row {
		if c == "id" || strings.HasPrefix(c, "_stripeline") || v == nil {
			continue
		}
		if _, ok := schema.Properties[c]; !ok {
			continue
		}
		obj[c] = goValue(types[c], v)
	}
	params, err := ops.FlattenJSON(mustJSON(obj))
	if err != nil {
		return task{}, false, fmt.Errorf("%s %s: %w", s.Name, id, err)
	}
	t := task{stream: s, op: "create", id: id, params: params, hash: hash("create", s.Name, id, params.Canonical()),
		idem: "stripeline-2w-" + hash(ps.run.Pipeline, s.Name, id, "create", params.Canonical())}
	return ps.unlessHeld(t)
}

// deleteTask is the delete of a row marked _stripeline_delete.
func (ps *pushState) deleteTask(s catalog.Stream, id string) (task, bool, error) {
	t := task{stream: s, op: "delete", id: id, hash: hash("delete", s.Name, id)}
	if !ops.CanDelete(s) {
		why := s.Name + " cannot be deleted through the API"
		if body, err := ops.UpdateSchema(s); err == nil {
			if _, ok := body.Properties["active"]; ok {
				why += "; archive it instead: set active to false (with active a two-way field of " + s.Name + ") and clear " + sqldest.ColDelete
			}
		}
		return ps.refuse(t, "", why)
	}
	return ps.unlessHeld(t)
}

// unlessHeld returns t unless the same change was refused before.
func (ps *pushState) unlessHeld(t task) (task, bool, error) {
	if ps.rejected[t.stream.Name][t.id] == t.hash {
		ps.rep.Held++
		return task{}, false, nil
	}
	return t, true, nil
}

// refuse records a change refused without a request.
func (ps *pushState) refuse(t task, param, msg string) (task, bool, error) {
	if ps.rejected[t.stream.Name][t.id] == t.hash {
		ps.rep.Held++
		return task{}, false, nil
	}
	ps.reject(t, Rejection{Param: param, Message: msg})
	return task{}, false, nil
}

func (ps *pushState) reject(t task, r Rejection) {
	r.Stream, r.ID, r.Op = t.stream.Name, t.id, t.op
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.rep.Rejected = append(ps.rep.Rejected, r)
	ps.rejected[t.stream.Name][t.id] = t.hash
	ps.p.log.Warn("two-way change refused", "stream", r.Stream, "id", r.ID, "op", r.Op, "param", r.Param, "message", r.Message)
}

// send runs the tasks, Concurrency at a time; the first error that is not
// a refused row stops the rest.
func (ps *pushState) send(ctx context.Context, tasks []task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := ps.p.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	ch := make(chan task)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range ch {
				if err := ps.do(ctx, t); err != nil {
					ps.mu.Lock()
					if ps.fatal == nil {
						ps.fatal = err
					}
					ps.mu.Unlock()
					cancel()
				}
			}
		}()
	}
	for _, t := range tasks {
		if ctx.Err() != nil {
			break
		}
		ch <- t
	}
	close(ch)
	wg.Wait()
	return ps.fatal
}

// do sends one task and records its answer in the replica.
func (ps *pushState) do(ctx context.Context, t task) error {
	var obj *ops.Object
	var err error
	switch t.op {
	case "update":
		obj, err = ps.p.ops.Update(ctx, t.stream.Name, t.id, t.params, t.idem)
	case "create":
		obj, err = ps.p.ops.Create(ctx, t.stream.Name, t.params, t.idem)
	case "delete":
		obj, err = ps.p.ops.Delete(ctx, t.stream.Name, t.id)
		if se := (*stripe.Error)(nil); errors.As(err, &se) && se.Code == "resource_missing" {
			obj, err = &ops.Object{ID: t.id}, nil // deleted already
		}
	}
	ps.mu.Lock()
	ps.rep.Requests++
	ps.mu.Unlock()
	if err != nil {
		if r, ok := refused(err); ok {
			ps.reject(t, r)
			return nil
		}
		return err
	}
	if ps.p.afterSend != nil {
		if err := ps.p.afterSend(t.stream.Name, t.id); err != nil {
			return err
		}
	}
	switch t.op {
	case "update":
		err = ps.run.WriteObjects(ctx, t.stream.Name, []json.RawMessage{obj.Raw})
	case "create":
		if err = ps.p.store.ReplaceID(ctx, t.stream.Name, t.id, obj.ID); err == nil {
			err = ps.run.WriteObjects(ctx, t.stream.Name, []json.RawMessage{obj.Raw})
		}
	case "delete":
		err = ps.run.WriteDeleted(ctx, t.stream.Name, []string{t.id})
	}
	if err != nil {
		return err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.rejected[t.stream.Name], t.id)
	switch t.op {
	case "update":
		ps.rep.Updated++
	case "create":
		ps.rep.Created++
	case "delete":
		ps.rep.Deleted++
	}
	return nil
}

// refused tells a row Stripe (or the request schema) refused from an
// error that should stop the push (a bad key, a missing permission, an
// outage).
func refused(err error) (Rejection, bool) {
	var ve *ops.ValidationError
	if errors.As(err, &ve) {
		r := Rejection{Message: ve.Error()}
		if len(ve.Problems) > 0 {
			r.Param = ve.Problems[0].Param
			if len(ve.Problems) == 1 {
				r.Message = ve.Problems[0].Reason
			}
		}
		return r, true
	}
	var se *stripe.Error
	if errors.As(err, &se) && se.StatusCode >= 400 && se.StatusCode < 500 &&
		se.StatusCode != http.StatusUnauthorized && se.StatusCode != http.StatusForbidden && se.StatusCode != http.StatusTooManyRequests {
		return Rejection{Param: se.Param, Code: se.Code, Message: se.Message}, true
	}
	return Rejection{}, false
}

// badJSON says why a JSON column's value cannot be sent: text that is not
// JSON (SQLite takes any text), or metadata that is not an object. Sent
// as it is, such a value would unset every key of the object.
func badJSON(field string, typ catalog.Type, v any) string {
	if typ != catalog.TypeJSON || v == nil {
		return ""
	}
	if _, text := v.(string); text {
		return "the column does not hold valid JSON"
	}
	if _, obj := v.(map[string]any); field == "metadata" && !obj {
		return "metadata must be a JSON object of string values, e.g. {\"plan\": \"pro\"}"
	}
	return ""
}

func truthy(v any) bool {
	b, _ := goValue(catalog.TypeBoolean, v).(bool)
	return b
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// hash is a hex SHA-256 of its parts.
func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}
