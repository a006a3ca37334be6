package engine_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/enginetest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// requests sums the run's requests by why, over every stream.
func requests(res *engine.Result) map[string]int64 {
	out := map[string]int64{}
	for _, s := range res.Streams {
		for why, n := range s.Requests {
			out[why] += n
		}
	}
	return out
}

func total(res *engine.Result) int64 {
	var n int64
	for _, s := range res.Streams {
		n += s.TotalRequests()
	}
	return n
}

func streamResult(res *engine.Result, name string) *engine.StreamResult {
	for _, s := range res.Streams {
		if s.Stream == name {
			return s
		}
	}
	return &engine.StreamResult{Stream: name}
}

// A default selection (every stream) pages each parent list once, however
// many child lists hang off it, and an incremental run after K changes
// costs requests in proportion to K, not to the account.
func TestFullCatalogCostFollowsTheData(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 11, Objects: 3000, ConnectedAccounts: -1})
	streams := enginetest.SeededStreams(t, f.emu, "")
	f.emu.ResetStats()
	full := f.sync(t, engine.Options{})
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)

	// customers has four per-parent child lists (payment methods, balance
	// and cash balance transactions, active entitlements) and two
	// expanded ones (tax ids, sources): its list is still paged once.
	cus := streamResult(full, "customers")
	byEndpoint := f.emu.Stats().ByEndpoint
	// (The customers line counts the pages of every test clock's list too.)
	if got := byEndpoint["GET /v1/customers"]; got != cus.Pages || cus.Pages < 2 {
		t.Errorf("GET /v1/customers: %d requests for %d pages of customers", got, cus.Pages)
	}
	if r := streamResult(full, "customers_tax_ids").Requests; r["per_parent"] > 0 {
		t.Errorf("customers_tax_ids fetched per parent (%v): they come expanded in the customers page", r)
	}
	n := int64(len(f.emu.Objects("", "customers")))
	for _, child := range []string{"customers_payment_methods", "customers_active_entitlements"} {
		if got := streamResult(full, child).Requests["per_parent"]; got != n {
			t.Errorf("%s: %d per-parent requests for %d customers", child, got, n)
		}
	}
	for _, dup := range []string{"customers_subscriptions", "charges_refunds"} {
		if s := streamResult(full, dup); s.TotalRequests() > 0 || s.Rows > 0 {
			t.Errorf("default selection read %s (%+v)", dup, s)
		}
	}

	idle := f.sync(t, engine.Options{})
	base := total(idle)
	if r := requests(idle); r["refresh"] > 0 || r["per_parent"] > 0 {
		t.Errorf("a run without changes re-read children or backfilled: %v", r)
	}

	const k = 12
	if err := f.emu.Mutate("", "customers", 0, k, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.emu.Mutate("", "invoices", 0, k, 0); err != nil {
		t.Fatal(err)
	}
	// New customers come with their tax ids (no tax id events); new tax
	// ids of existing customers come with their own events.
	if err := f.emu.Mutate("", "customers", 3, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.emu.Mutate("", "customers_tax_ids", 3, 0, 0); err != nil {
		t.Fatal(err)
	}
	inc := f.sync(t, engine.Options{})
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)
	// A changed customer re-reads the lists that have no events of their
	// own; invoice lines come with the invoice's event (a long list is
	// re-read from its start).
	if got := streamResult(inc, "customers_active_entitlements").Requests["refresh"]; got < 1 || got > k+3 {
		t.Errorf("customers_active_entitlements: %d refresh requests after %d customer changes", got, k+3)
	}
	if got := streamResult(inc, "invoices_lines").Requests["refresh"]; got > 2*k {
		t.Errorf("invoices_lines: %d refresh requests after %d invoice changes", got, k)
	}
	if got := streamResult(inc, "customers_payment_methods").Requests["refresh"]; got != 0 {
		t.Errorf("customers_payment_methods re-read for %d customers: payment method events would have named them", got)
	}
	extra := total(inc) - base
	if extra > 8*(2*k+7) {
		t.Errorf("incremental after %d changes: %d requests, %d more than a run without changes (%v)", 2*k, total(inc), extra, requests(inc))
	}
	t.Logf("full %d requests (%v); idle %d; after %d changes %d (%v)", total(full), requests(full), base, 2*k, total(inc), requests(inc))
}

// The periodic reconciliation re-reads every per-parent child list in
// full, through one listing of the parent, and says so.
func TestReconciliationRereadsChildren(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 12, Objects: 1500, ConnectedAccounts: -1})
	streams := []string{"setup_intents", "setup_intents_attempts", "customers", "customers_payment_methods", "customers_active_entitlements"}
	f.sync(t, engine.Options{Streams: streams})
	later := laterClock{8 * 24 * time.Hour}
	res := f.sync(t, engine.Options{Streams: streams, Clock: later})
	for _, s := range []string{"setup_intents_attempts", "customers_payment_methods", "customers_active_entitlements"} {
		sr := streamResult(res, s)
		if sr.Mode != "reconciliation" || sr.Requests["reconciliation"] == 0 {
			t.Errorf("%s after 8 days: mode %q, requests %v; want a reconciliation", s, sr.Mode, sr.Requests)
		}
	}
	if got := f.emu.Stats().ByEndpoint["GET /v1/customers"]; got == 0 {
		t.Error("no customers listing")
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", []string{"setup_intents", "setup_intents_attempts", "customers"})
	// Within the week, no reconciliation.
	res = f.sync(t, engine.Options{Streams: streams, Clock: later})
	if r := requests(res); r["reconciliation"] > 0 {
		t.Errorf("reconciled again within the week: %v", r)
	}
	res = f.sync(t, engine.Options{Streams: streams, Clock: later, ReconcileEvery: -1})
	if r := requests(res); r["reconciliation"] > 0 {
		t.Errorf("reconciled with ReconcileEvery < 0: %v", r)
	}
}

// failRefresh fails the write that ends the re-read of child lists (it
// clears their pending parents), as a run killed after the events sweep
// moved the cursor would leave them undone.
type failRefresh struct {
	dest.Destination
	fail bool
}

func (d *failRefresh) Write(ctx context.Context, b *dest.Batch) error {
	if d.fail && b.State != nil && strings.HasPrefix(b.State.Stream, "_refresh:") && !strings.Contains(string(b.State.Cursor), "pending") {
		return errors.New("injected failure")
	}
	return d.Destination.Write(ctx, b)
}

func (d *failRefresh) SaveState(ctx context.Context, states ...dest.State) error {
	for _, st := range states {
		if d.fail && strings.HasPrefix(st.Stream, "_refresh:") && !strings.Contains(string(st.Cursor), "pending") {
			return errors.New("injected failure")
		}
	}
	return d.Destination.SaveState(ctx, states...)
}

func (d *failRefresh) Query(ctx context.Context, sql string, args ...any) ([]string, [][]any, error) {
	return d.Destination.(dest.Querier).Query(ctx, sql, args...)
}

// Parents named by events are saved before the events cursor passes
// them: a run that dies after the sweep leaves them for the next run.
func TestPendingParentsSurviveAFailedRun(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 13, Objects: 1500, ConnectedAccounts: -1})
	streams := []string{"customers", "customers_active_entitlements"}
	f.sync(t, engine.Options{Streams: streams})
	if err := f.emu.Mutate("", "customers", 0, 5, 0); err != nil {
		t.Fatal(err)
	}
	wrapped := &failRefresh{Destination: f.dst, fail: true}
	_, err := engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: wrapped, Streams: streams, Concurrency: 4})
	if err == nil {
		t.Fatal("the injected failure did not fail the run")
	}
	wrapped.fail = false
	res, err := engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: wrapped, Streams: streams, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 0 {
		t.Errorf("second run applied %d events; the first had moved the cursor", res.Events)
	}
	if got := streamResult(res, "customers_active_entitlements").Requests["refresh"]; got != 5 {
		t.Errorf("pending parents not re-read after the failed run: %v", streamResult(res, "customers_active_entitlements").Requests)
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", []string{"customers"})
	res, err = engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: wrapped, Streams: streams, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := streamResult(res, "customers_active_entitlements").Requests["refresh"]; got != 0 {
		t.Errorf("parents re-read again once done: %d", got)
	}
}

// noExpand answers every request that asks for an expansion with Stripe's
// invalid_request_error on expand, as a list that cannot expand does.
func noExpand(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("expand[]") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"parameter_invalid","param":"expand[0]","message":"This property cannot be expanded (tax_ids)."}}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// A list that refuses expand[] while several of its slices are in flight
// drops the expansion once for all of them (no race, no failed stream) and
// reads the children per parent instead.
func TestRefusedExpandWithSlicesInFlight(t *testing.T) {
	emu, err := emulator.New(emulator.Config{Seed: 14, Objects: 20000, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(noExpand(emu))
	t.Cleanup(srv.Close)
	client, err := stripe.New(stripe.Config{Key: "sk_test_engine", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{emu: emu, srv: srv, client: client, path: t.TempDir() + "/replica.db"}
	f.open(t)
	// Resume from several slices so they are in flight together.
	var progress sliceWatch
	res := f.sync(t, engine.Options{Streams: []string{"customers", "customers_tax_ids"}, WindowDays: 30, Concurrency: 8, PerStream: 8, Progress: &progress})
	if res.Status != "succeeded" {
		t.Fatalf("status %s", res.Status)
	}
	if got := streamResult(res, "customers_tax_ids").Requests["per_parent"]; got == 0 {
		t.Error("tax ids not fetched per parent after the refusal")
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), emu, "", []string{"customers", "customers_tax_ids"})
	if got := progress.last("customers"); got != 1 {
		t.Errorf("customers covered %.3f at the end, want 1", got)
	}
	if !progress.sawPartial("customers") {
		t.Error("no partial coverage reported for customers")
	}
}

// sliceWatch records the coverage a run reports.
type sliceWatch struct {
	mu     sync.Mutex
	shares map[string][]float64
}

func (p *sliceWatch) Start(string)          {}
func (p *sliceWatch) Rows(string, int, int) {}
func (p *sliceWatch) Done(string, error)    {}
func (p *sliceWatch) Covered(stream string, share float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shares == nil {
		p.shares = map[string][]float64{}
	}
	p.shares[stream] = append(p.shares[stream], share)
}

func (p *sliceWatch) last(stream string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	best := 0.0
	for _, s := range p.shares[stream] {
		best = max(best, s)
	}
	return best
}

func (p *sliceWatch) sawPartial(stream string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.shares[stream] {
		if s > 0 && s < 1 {
			return true
		}
	}
	return false
}

// laterClock is the wall clock moved ahead.
type laterClock struct{ ahead time.Duration }

func (c laterClock) Now() time.Time { return time.Now().Add(c.ahead) }
func (c laterClock) NewTicker(d time.Duration) engine.Ticker {
	return engine.WallClock.NewTicker(d)
}
