package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// Load modes.
const (
	ModeCreate = "create"
	ModeUpdate = "update"
	ModeUpsert = "upsert"
	ModeDelete = "delete"
)

// maxKeyGenerations bounds the idempotency keys one row's request tries
// after server errors.
const maxKeyGenerations = 5

// DefaultConcurrency is the number of rows sent at once; the client's
// pacer still bounds the request rate.
const DefaultConcurrency = 4

// LoadOptions configures a bulk load.
type LoadOptions struct {
	Stream string
	Mode   string // ModeCreate, ModeUpdate, ModeUpsert or ModeDelete
	// Key is the parameter that matches a row without an id to an existing
	// object, in bracket notation, e.g. "metadata[external_id]" or "email".
	Key string
	// Finder looks objects up by Key; nil uses the stream's search endpoint.
	Finder Finder
	// DryRun validates and plans every row and sends nothing.
	DryRun bool
	// Concurrency is the number of rows in flight; 0 means DefaultConcurrency.
	Concurrency int
	// Progress, when set, hears about every finished row.
	Progress Progress
	// Plan, when set, receives the request each valid row would send, in
	// row order (dry runs).
	Plan func(Plan)
}

// Plan is the request a row sends (or would send, in a dry run).
type Plan struct {
	Row            int
	Method         string
	Path           string
	Params         Params
	IdempotencyKey string
	// Note explains a request that depends on a lookup ("create, or
	// update the customers matching metadata[external_id]=…").
	Note string
}

// Progress hears about a load as it runs. Calls are serialised.
type Progress interface {
	// Start is called once with the number of rows to send.
	Start(total int)
	// Row is called after each row with the running summary.
	Row(r Result, s Summary)
}

// LoadResult is the outcome of a load: one result per input row, in order.
type LoadResult struct {
	Results []Result
	Summary Summary
}

// Finder looks objects of a stream up by the value of one parameter.
// Implementations must be safe for concurrent use.
type Finder interface {
	// Find returns the ids of the stream's objects whose key (a parsed
	// bracket path such as ["metadata","external_id"]) equals value.
	Find(ctx context.Context, s catalog.Stream, key []string, value string) ([]string, error)
}

// FatalError stops a whole load: a rejected key or a missing permission.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// IdempotencyKey derives the key of one row's request from the stream, the
// mode and the request's canonical content, so that re-running the same
// file (after a crash, say) replays Stripe's first answer instead of
// creating a duplicate.
func IdempotencyKey(stream, mode, method, path string, p Params) string {
	h := sha256.New()
	io.WriteString(h, stream+"\x00"+mode+"\x00"+method+"\x00"+path+"\x00")
	io.WriteString(h, p.Canonical())
	return "stripeline-load-" + hex.EncodeToString(h.Sum(nil))
}

// task is one valid row ready to send.
type task struct {
	idx      int // index into rows/results
	row      int
	id       string // explicit id
	keyValue string // value of opt.Key in the row
	params   Params // for create/update (id excluded unless create takes it)
}

type loader struct {
	o       *Ops
	opt     LoadOptions
	s       catalog.Stream
	keyPath []string
	create  *catalog.Schema
	update  *catalog.Schema
	finder  Finder
	// createIDOK is true when create accepts an "id" (coupons, products).
	createIDOK bool
	mu         sync.Mutex
	summary    Summary
	results    []Result
	fatalErr   error
}

// Load sends rows to Stripe as opt says. Every row is validated against the
// operation's request schema first; invalid rows are reported and nothing
// is sent for them, the valid ones are still loaded. A rejected key or a
// missing permission stops the load (before the first row when the
// preflight read catches it) and returns a *FatalError alongside the
// results so far. The results always hold one entry per row.
func (o *Ops) Load(ctx context.Context, rows []Row, opt LoadOptions) (*LoadResult, error) {
	l, err := o.newLoader(opt)
	if err != nil {
		return nil, err
	}
	l.results = make([]Result, len(rows))
	var tasks []task
	for i, r := range rows {
		t, res := l.prepare(i, r)
		if res != nil {
			l.results[i] = *res
			l.summary.Add(res.Status)
			continue
		}
		tasks = append(tasks, t)
	}
	if opt.DryRun {
		for _, t := range tasks {
			p := l.plan(t)
			if opt.Plan != nil {
				opt.Plan(p)
			}
			l.results[t.idx] = Result{Row: t.row, ID: t.id, Status: StatusPlanned}
			l.summary.Add(StatusPlanned)
		}
		return &LoadResult{Results: l.results, Summary: l.summary}, nil
	}
	if len(tasks) > 0 {
		if err := l.preflight(ctx); err != nil {
			for _, t := range tasks {
				l.results[t.idx] = Result{Row: t.row, ID: t.id, Status: StatusSkipped, Error: "not sent: the load stopped before the first row"}
				l.summary.Add(StatusSkipped)
			}
			return &LoadResult{Results: l.results, Summary: l.summary}, err
		}
	}
	err = l.run(ctx, tasks)
	return &LoadResult{Results: l.results, Summary: l.summary}, err
}

func (o *Ops) newLoader(opt LoadOptions) (*loader, error) {
	s, err := LookupStream(opt.Stream)
	if err != nil {
		return nil, err
	}
	l := &loader{o: o, opt: opt, s: s, finder: opt.Finder}
	if l.opt.Concurrency <= 0 {
		l.opt.Concurrency = DefaultConcurrency
	}
	switch opt.Mode {
	case ModeCreate:
		if l.create, err = CreateSchema(s); err != nil {
			return nil, err
		}
	case ModeUpdate:
		if l.update, err = UpdateSchema(s); err != nil {
			return nil, err
		}
	case ModeUpsert:
		if l.create, err = CreateSchema(s); err != nil {
			return nil, err
		}
		if l.update, err = UpdateSchema(s); err != nil {
			return nil, err
		}
	case ModeDelete:
		if !s.Deletable {
			return nil, fmt.Errorf("%s cannot be deleted through the API", s.Name)
		}
	default:
		return nil, fmt.Errorf("--mode %q is not supported: use create, update, upsert or delete", opt.Mode)
	}
	if opt.Key != "" {
		if opt.Mode == ModeCreate {
			return nil, errors.New("--key matches rows to existing objects: use it with --mode update, upsert or delete")
		}
		if l.keyPath, err = ParseKey(opt.Key); err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		if l.finder == nil && !opt.DryRun {
			if !s.Searchable {
				return nil, fmt.Errorf("--key %s: %s cannot be searched; pass --dest with a replica of %s to match rows", opt.Key, s.Name, s.Name)
			}
			if _, err := searchField(l.keyPath); err != nil {
				return nil, fmt.Errorf("--key %s: %w", opt.Key, err)
			}
			l.finder = &SearchFinder{Client: o.Client}
		}
	}
	if l.create != nil {
		_, l.createIDOK = l.create.Properties["id"]
	}
	return l, nil
}

// prepare validates one row; it returns a task, or a final result.
func (l *loader) prepare(i int, r Row) (task, *Result) {
	invalid := func(format string, args ...any) (task, *Result) {
		return task{}, &Result{Row: r.Num, ID: r.ID, Status: StatusInvalid, Error: fmt.Sprintf(format, args...)}
	}
	if r.Err != nil {
		return invalid("%v", r.Err)
	}
	t := task{idx: i, row: r.Num, id: r.ID, params: r.Params}
	if l.keyPath != nil {
		t.keyValue, _ = r.Params.Get(l.opt.Key)
	}
	needsMatch := l.opt.Mode != ModeCreate
	if needsMatch && t.id == "" && t.keyValue == "" {
		if l.opt.Key != "" {
			return invalid("no id and no %s value: nothing to match the row to", l.opt.Key)
		}
		return invalid("no id: --mode %s needs an id column (or --key to match on another column)", l.opt.Mode)
	}
	if t.id != "" {
		if err := checkID(t.id); err != nil {
			return invalid("id: %v", err)
		}
	}
	var body *catalog.Schema
	switch l.opt.Mode {
	case ModeCreate:
		if t.id != "" {
			if !l.createIDOK {
				return invalid("id: %s are created without an id; use --mode update or upsert to change existing ones", l.s.Name)
			}
			t.params = append(Params{{Key: "id", Value: t.id}}, t.params...)
		}
		body = l.create
	case ModeUpdate:
		body = l.update
	case ModeUpsert:
		// The row may create: it must be a valid create, unless it names
		// an id that create cannot take (then it can only update).
		body = l.create
		if t.id != "" && !l.createIDOK {
			body = l.update
		}
	case ModeDelete:
		return t, nil
	}
	if err := Validate(body, t.params); err != nil {
		return invalid("%v", err)
	}
	return t, nil
}

// plan describes the request of a task without sending anything.
func (l *loader) plan(t task) Plan {
	switch l.opt.Mode {
	case ModeCreate:
		return l.request(t, http.MethodPost, l.s.Path, t.params, "")
	case ModeDelete:
		if t.id != "" {
			return l.request(t, http.MethodDelete, ObjectPath(l.s, t.id), nil, "")
		}
		return l.request(t, http.MethodDelete, l.s.Path+"/{id}", nil, fmt.Sprintf("delete the %s matching %s=%s", l.s.Name, l.opt.Key, t.keyValue))
	case ModeUpdate:
		if t.id != "" {
			return l.request(t, http.MethodPost, ObjectPath(l.s, t.id), t.params, "")
		}
		return l.request(t, http.MethodPost, l.s.Path+"/{id}", t.params, fmt.Sprintf("update the %s matching %s=%s", l.s.Name, l.opt.Key, t.keyValue))
	default: // upsert
		if t.id != "" {
			return l.request(t, http.MethodPost, ObjectPath(l.s, t.id), t.params, "update by id, or create when it does not exist")
		}
		return l.request(t, http.MethodPost, l.s.Path, t.params, fmt.Sprintf("create, or update the %s matching %s=%s", l.s.Name, l.opt.Key, t.keyValue))
	}
}

func (l *loader) request(t task, method, path string, p Params, note string) Plan {
	pl := Plan{Row: t.row, Method: method, Path: path, Params: p, Note: note}
	if method == http.MethodPost {
		pl.IdempotencyKey = IdempotencyKey(l.s.Name, l.opt.Mode, method, path, p)
	}
	return pl
}

// preflight reads one object of the stream so that a bad key or a key
// without read access stops the load before the first write.
func (l *loader) preflight(ctx context.Context) error {
	q := url.Values{"limit": {"1"}}
	for k, v := range l.s.ListParams {
		q.Set(k, v)
	}
	_, err := l.o.Client.Do(ctx, &stripe.Request{Method: http.MethodGet, Path: l.s.Path, Query: q})
	switch {
	case err == nil:
		return nil
	case isFatal(err):
		return &FatalError{Err: fmt.Errorf("load %s stopped before the first row: %w", l.s.Name, err)}
	case errors.Is(err, stripe.ErrNetwork):
		return fmt.Errorf("load %s stopped before the first row: %w", l.s.Name, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	// Lists that need a parameter (subscription_items, …) answer 400 here:
	// the key itself was accepted.
	return nil
}

func isFatal(err error) bool {
	return errors.Is(err, stripe.ErrAuthentication) || errors.Is(err, stripe.ErrPermission)
}

func (l *loader) run(parent context.Context, tasks []task) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if l.opt.Progress != nil {
		l.opt.Progress.Start(len(tasks))
	}
	jobs := make(chan task)
	var wg sync.WaitGroup
	for range min(l.opt.Concurrency, max(len(tasks), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range jobs {
				res, err := l.send(ctx, t)
				if err != nil && isFatal(err) {
					l.mu.Lock()
					if l.fatalErr == nil {
						l.fatalErr = &FatalError{Err: fmt.Errorf("load %s stopped at row %d: %w", l.s.Name, t.row, err)}
					}
					l.mu.Unlock()
					cancel()
				}
				l.finish(t, res)
			}
		}()
	}
	next := 0
feed:
	for ; next < len(tasks); next++ {
		select {
		case jobs <- tasks[next]:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	for _, t := range tasks[next:] {
		l.finish(t, Result{Row: t.row, ID: t.id, Status: StatusSkipped, Error: "not sent: the load stopped"})
	}
	if l.fatalErr != nil {
		return l.fatalErr
	}
	if err := parent.Err(); err != nil {
		return fmt.Errorf("load %s interrupted: %w", l.s.Name, err)
	}
	return nil
}

func (l *loader) finish(t task, r Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results[t.idx] = r
	l.summary.Add(r.Status)
	if l.opt.Progress != nil {
		l.opt.Progress.Row(r, l.summary)
	}
}

// send runs one row: look the object up if needed, then create, update or
// delete it. The error is returned only so the caller can spot fatal ones.
func (l *loader) send(ctx context.Context, t task) (Result, error) {
	res := Result{Row: t.row, ID: t.id}
	fail := func(err error) (Result, error) {
		if ctx.Err() != nil && !isFatal(err) {
			res.Status, res.Error = StatusSkipped, "interrupted: the load stopped while this row was in flight (re-run to finish it)"
			return res, err
		}
		res.Status, res.Error = StatusFailed, rowError(err)
		return res, err
	}
	id := t.id
	if id == "" && t.keyValue != "" {
		ids, err := l.finder.Find(ctx, l.s, l.keyPath, t.keyValue)
		if err != nil {
			return fail(fmt.Errorf("find by %s: %w", l.opt.Key, err))
		}
		if len(ids) > 1 {
			res.Status, res.Error = StatusFailed, fmt.Sprintf("%d %s match %s=%s: make the key unique", len(ids), l.s.Name, l.opt.Key, t.keyValue)
			return res, nil
		}
		if len(ids) == 1 {
			id = ids[0]
			res.ID = id
		}
	}
	switch l.opt.Mode {
	case ModeDelete:
		if id == "" {
			res.Status, res.Error = StatusUnchanged, fmt.Sprintf("no %s match %s=%s (already deleted?)", l.s.Name, l.opt.Key, t.keyValue)
			return res, nil
		}
		_, err := l.o.Client.Do(ctx, &stripe.Request{Method: http.MethodDelete, Path: ObjectPath(l.s, id)})
		if errors.Is(err, stripe.ErrNotFound) {
			res.Status, res.Error = StatusUnchanged, "not found (already deleted?)"
			return res, nil
		}
		if err != nil {
			return fail(err)
		}
		res.Status = StatusDeleted
		return res, nil
	case ModeCreate:
		return l.write(ctx, res, http.MethodPost, l.s.Path, t.params, StatusCreated)
	case ModeUpdate:
		if id == "" {
			res.Status, res.Error = StatusFailed, fmt.Sprintf("no %s match %s=%s", l.s.Name, l.opt.Key, t.keyValue)
			return res, nil
		}
		return l.write(ctx, res, http.MethodPost, ObjectPath(l.s, id), t.params, StatusUpdated)
	}
	// upsert
	if id != "" {
		if err := Validate(l.update, t.params); err != nil {
			res.Status, res.Error = StatusInvalid, "as an update: "+err.Error()
			return res, nil
		}
		r, err := l.write(ctx, res, http.MethodPost, ObjectPath(l.s, id), t.params, StatusUpdated)
		if errors.Is(err, stripe.ErrNotFound) && t.id != "" && l.createIDOK {
			return l.write(ctx, res, http.MethodPost, l.s.Path, append(Params{{Key: "id", Value: t.id}}, t.params...), StatusCreated)
		}
		return r, err
	}
	return l.write(ctx, res, http.MethodPost, l.s.Path, t.params, StatusCreated)
}

func (l *loader) write(ctx context.Context, res Result, method, path string, p Params, status string) (Result, error) {
	base := IdempotencyKey(l.s.Name, l.opt.Mode, method, path, p)
	var obj *Object
	var err error
	// Stripe keeps a 500 under its idempotency key and replays it, so a key
	// that met a server error can never succeed. Walk a fixed chain of keys
	// (base, base-2, base-3, …): a re-run walks the same chain and meets the
	// replayed success of the earlier run instead of creating again.
	for gen := 1; gen <= maxKeyGenerations; gen++ {
		key := base
		if gen > 1 {
			key = fmt.Sprintf("%s-%d", base, gen)
		}
		obj, err = l.o.post(ctx, method+" "+path, path, p, key)
		if err == nil || !errors.Is(err, stripe.ErrServer) || ctx.Err() != nil {
			break
		}
		l.o.Logger.Debug("server error on a load row; trying the next idempotency key", "stream", l.s.Name, "row", res.Row, "generation", gen+1)
	}
	if err != nil {
		if ctx.Err() != nil && !isFatal(err) {
			res.Status, res.Error = StatusSkipped, "interrupted: the load stopped while this row was in flight (re-run to finish it)"
			return res, err
		}
		res.Status, res.Error = StatusFailed, rowError(err)
		return res, err
	}
	res.ID = obj.ID
	res.Status = status
	if obj.Replayed {
		res.Status = StatusUnchanged
		res.Error = "replayed: an earlier run already sent this row"
	}
	return res, nil
}

// rowError is the sentence for a row's report: the parameter Stripe named
// and its message ("email: Invalid email address"), else the whole error.
func rowError(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) && !isFatal(err) && (se.Kind == stripe.ErrInvalidRequest || se.Kind == stripe.ErrNotFound || se.Kind == stripe.ErrIdempotency) && se.Message != "" {
		if se.Param != "" {
			return se.Param + ": " + se.Message
		}
		return se.Message
	}
	return err.Error()
}
