package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/dest/desttest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/enginetest"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
	"github.com/stripeline/stripeline/internal/server"
	"github.com/stripeline/stripeline/internal/stripe"
)

// hookStreams are the streams of the webhook tests: customers with their
// embedded tax ids, and products.
var hookStreams = []string{"customers", "customers_tax_ids", "products"}

// hookFixture is a pipelines service whose pipeline "live" replicates the
// emulator, with the webhook endpoint served by a real HTTP server that the
// emulator delivers to.
type hookFixture struct {
	t       *testing.T
	svc     *pipeline.Service
	emu     *emulator.Emulator
	emuURL  string
	hook    *httptest.Server
	srv     *server.Server
	metrics *server.Metrics
	replica string
	// down makes the endpoint answer 503 without reading the delivery.
	down atomic.Bool
}

const hookKey = "sk_test_hooks4242acme"

func newHookFixture(t *testing.T, cfg emulator.WebhookConfig, replica string) *hookFixture {
	t.Helper()
	return newHookFixtureWith(t, emulator.Config{Seed: 11, Objects: 120, ConnectedAccounts: -1, TestClocks: -1, Webhooks: cfg}, replica, nil)
}

// newHookFixtureWith is newHookFixture with the emulator's whole config
// and a change to the pipeline.
func newHookFixtureWith(t *testing.T, ecfg emulator.Config, replica string, edit func(*pipeline.Pipeline)) *hookFixture {
	t.Helper()
	emu, err := emulator.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	es := httptest.NewServer(emu)
	t.Cleanup(es.Close)
	dir := t.TempDir()
	if replica == "" {
		replica = "sqlite://" + filepath.Join(dir, "replica.db")
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := server.NewMetrics()
	svc, err := pipeline.Open(context.Background(), pipeline.Options{
		Logger: log, Store: "sqlite://" + filepath.Join(dir, "store.db"), KeyFile: filepath.Join(dir, "store.key"),
		Work: true, PollInterval: 20 * time.Millisecond,
		Getenv: func(name string) string {
			if name == "STRIPE_API_KEY_ACME" {
				return hookKey
			}
			return ""
		},
		ClientOption: func(c *stripe.Config) { c.MaxBackoff = time.Millisecond; c.GlobalRPS, c.EndpointRPS = 2000, 2000 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Stop(ctx)
	})
	f := &hookFixture{t: t, svc: svc, emu: emu, emuURL: es.URL, metrics: metrics, replica: replica}
	// The server serve runs: the endpoint behind its whole middleware chain.
	srv, err := server.New(server.Options{Service: svc, Metrics: metrics, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() && strings.HasPrefix(r.URL.Path, "/webhooks/") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(f.hook.Close)
	ctx := context.Background()
	p := pipeline.Pipeline{
		Name: "live", Connection: pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_ACME", APIBase: es.URL},
		Dest: replica, Streams: hookStreams, Schedule: pipeline.Manual,
	}
	if edit != nil {
		edit(&p)
	}
	if _, err := svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	return f
}

// url is the pipeline's endpoint.
func (f *hookFixture) url() string { return f.hook.URL + "/webhooks/live" }

// setup registers an endpoint on the emulator for the pipeline.
func (f *hookFixture) setup(o pipeline.WebhookSetup) pipeline.WebhookEndpoint {
	f.t.Helper()
	if o.URL == "" {
		o.URL = f.url()
	}
	eps, err := f.svc.SetupWebhook(context.Background(), "live", o)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Connect {
		f.t.Fatalf("a pipeline of the platform registered %+v, want one account endpoint", eps)
	}
	return eps[0]
}

// run works one run of the pipeline and returns its record.
func (f *hookFixture) run() *pipeline.Run {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := f.svc.Run(ctx, "live", pipeline.TriggerManual)
	if err != nil {
		f.t.Fatal(err)
	}
	done, err := f.svc.Wait(ctx, r.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if done.Status != pipeline.RunSucceeded {
		f.t.Fatalf("run %d: %s %s", done.ID, done.Status, done.Error)
	}
	return done
}

// settle waits until the emulator has no delivery waiting or in flight.
func (f *hookFixture) settle() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.emu.WaitWebhooks(ctx); err != nil {
		f.t.Fatalf("deliveries did not settle: %v (%+v)", err, f.emu.WebhookStats())
	}
}

// open opens the replica.
func (f *hookFixture) open() dest.Destination {
	f.t.Helper()
	d, err := dest.Open(context.Background(), f.replica)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { d.Close() })
	return d
}

// assertEqual compares the replica with the account.
func (f *hookFixture) assertEqual() {
	f.t.Helper()
	enginetest.AssertReplicaEqualsAccount(f.t, f.open().(dest.Querier), f.emu, "", hookStreams)
}

// update changes one customer's metadata through the emulator's API,
// which emits customer.updated.
func (f *hookFixture) update(id string, n int) {
	f.t.Helper()
	form := url.Values{"metadata[n]": {fmt.Sprint(n)}}
	req, _ := http.NewRequest("POST", f.emuURL+"/v1/customers/"+id, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+hookKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		f.t.Fatalf("update %s: %d %s", id, res.StatusCode, body)
	}
}

// customers returns the first n customer ids of the account.
func (f *hookFixture) customers(n int) []string {
	var ids []string
	for _, o := range f.emu.Objects("", "customers") {
		if len(ids) < n {
			ids = append(ids, gjson.GetBytes(o, "id").Str)
		}
	}
	return ids
}

// count reads one series of stripeline_webhook_deliveries_total.
func (f *hookFixture) count(outcome, reason string) float64 {
	f.t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:1"
	f.srv.Handler().ServeHTTP(rec, req)
	total := 0.0
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "stripeline_webhook_deliveries_total{") || !strings.Contains(line, `outcome="`+outcome+`"`) {
			continue
		}
		if reason != "" && !strings.Contains(line, `reason="`+reason+`"`) {
			continue
		}
		var v float64
		fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
		total += v
	}
	return total
}

// webhookEvents reads the pipeline's applied events by source.
func (f *hookFixture) webhookEvents() map[string]int64 {
	f.t.Helper()
	st, err := f.open().(dest.EventLog).EventStats(context.Background(), "live")
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range st {
		out[s.Source] = s.Count
	}
	return out
}

// replicas are the destinations the webhook tests run against: SQLite
// always, PostgreSQL when STRIPELINE_TEST_POSTGRES is set.
func replicas(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(*testing.T) string { return "" },
		"postgres": func(t *testing.T) string {
			return desttest.PostgresSchema(t, "stripeline_hooks", "webhooks into PostgreSQL are")
		},
	}
}

// Deliveries signed with the pipeline's secret are applied; a secret the
// pipeline does not hold, a stale timestamp, and a retired secret are
// refused with 400, write nothing and are counted; while a secret is
// rotated, deliveries signed with either secret pass.
func TestWebhookSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("valid and rotated", func(t *testing.T) {
		t.Parallel()
		f := newHookFixture(t, emulator.WebhookConfig{Retries: -1}, "")
		f.run()
		old := f.setup(pipeline.WebhookSetup{})
		// Rotation: a second endpoint; both secrets are kept.
		f.setup(pipeline.WebhookSetup{})
		ids := f.customers(2)
		f.update(ids[0], 1)
		f.settle()
		// Each event reached both endpoints: one applied, one a duplicate.
		if got := f.count("applied", ""); got != 1 {
			t.Errorf("applied deliveries = %v, want 1", got)
		}
		if got := f.count("duplicate", ""); got != 1 {
			t.Errorf("duplicate deliveries = %v, want 1", got)
		}
		f.assertEqual()
		// The old secret retired: the old endpoint's deliveries fail.
		last4 := old.Hint[len(old.Hint)-4:]
		if n, err := f.svc.RemoveWebhookSecret(ctx, "live", last4); err != nil || n != 1 {
			t.Fatalf("remove the old secret: %d %v", n, err)
		}
		f.update(ids[1], 2)
		f.settle()
		if got := f.count("refused", "no signature matches the endpoint's secret"); got != 1 {
			t.Errorf("deliveries refused for their signature = %v, want 1 (the retired endpoint's)", got)
		}
		if got := f.count("applied", ""); got != 2 {
			t.Errorf("applied deliveries = %v, want 2", got)
		}
		f.assertEqual()
	})

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		f := newHookFixture(t, emulator.WebhookConfig{Retries: -1}, "")
		f.run()
		f.setup(pipeline.WebhookSetup{})
		// The pipeline holds only a secret that signs nothing the
		// emulator sends.
		if _, err := f.svc.AddWebhookSecret(ctx, "live", "whsec_notTheEndpointsSecret0000"); err != nil {
			t.Fatal(err)
		}
		st, _ := f.svc.WebhookConfigOf(ctx, "live")
		if n, err := f.svc.RemoveWebhookSecret(ctx, "live", st.Endpoints[0].Hint[len(st.Endpoints[0].Hint)-4:]); err != nil || n != 1 {
			t.Fatalf("remove the endpoint's secret: %d %v", n, err)
		}
		ids := f.customers(1)
		f.update(ids[0], 7)
		f.settle()
		if got := f.count("refused", "no signature matches the endpoint's secret"); got != 1 {
			t.Errorf("refused deliveries = %v, want 1", got)
		}
		if got := f.webhookEvents()[dest.SourceWebhook]; got != 0 {
			t.Errorf("%d events applied from refused deliveries", got)
		}
		if got := f.emu.WebhookStats(); got.Delivered != 0 || got.GaveUp != 1 {
			t.Errorf("emulator stats %+v, want the one delivery refused", got)
		}
		f.assertNotApplied(ids[0])
	})

	t.Run("stale", func(t *testing.T) {
		t.Parallel()
		f := newHookFixture(t, emulator.WebhookConfig{Retries: -1, SignedAgo: 10 * time.Minute}, "")
		f.run()
		f.setup(pipeline.WebhookSetup{})
		ids := f.customers(1)
		f.update(ids[0], 8)
		f.settle()
		if got := f.count("refused", "signature timestamp outside the tolerance"); got != 1 {
			t.Errorf("stale deliveries refused = %v, want 1", got)
		}
		f.assertNotApplied(ids[0])
	})
}

// assertNotApplied checks that a customer's row does not hold the update
// the refused delivery carried.
func (f *hookFixture) assertNotApplied(id string) {
	f.t.Helper()
	_, rows, err := f.open().(dest.Querier).Query(context.Background(), "SELECT metadata FROM customers WHERE id = ?", id)
	if err != nil || len(rows) != 1 {
		f.t.Fatalf("read %s: %v %v", id, rows, err)
	}
	if m, _ := rows[0][0].(string); strings.Contains(m, `"n"`) {
		f.t.Errorf("%s holds the refused update: %s", id, m)
	}
}

// Bodies the emulator never sends: no signature, an oversized body and a
// signed body that is no event are refused with a short reason, counted.
func TestWebhookRefusesMalformedDeliveries(t *testing.T) {
	t.Parallel()
	f := newHookFixture(t, emulator.WebhookConfig{}, "")
	f.setup(pipeline.WebhookSetup{})
	post := func(body []byte, sig string) (int, string) {
		req, _ := http.NewRequest("POST", f.url(), strings.NewReader(string(body)))
		if sig != "" {
			req.Header.Set("Stripe-Signature", sig)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, gjson.GetBytes(b, "error").Str
	}
	if code, msg := post([]byte(`{"id":"evt_1","object":"event"}`), ""); code != 400 || msg != "no Stripe-Signature header" {
		t.Errorf("unsigned: %d %q", code, msg)
	}
	big := make([]byte, 2<<20)
	if code, msg := post(big, "t=1,v1=00"); code != 400 || msg != "body too large" {
		t.Errorf("oversized: %d %q", code, msg)
	}
	if code, _ := post([]byte(`{}`), "t=1,v1=00"); code != 400 {
		t.Errorf("bad signature: %d", code)
	}
	if f.count("refused", "") != 3 {
		t.Errorf("refused deliveries = %v, want 3", f.count("refused", ""))
	}
	// No pipeline of that name: 404, no label for the name.
	req, _ := http.NewRequest("POST", f.hook.URL+"/webhooks/nosuch", strings.NewReader("{}"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("unknown pipeline: %d", res.StatusCode)
	}
}

// Deliveries duplicated and shuffled (jitter) of many updates of the same
// few customers, several in one second, end with the replica equal to the
// account's newest state, each event applied once.
func TestWebhookDuplicatesAndShuffledOrder(t *testing.T) {
	t.Parallel()
	for name, replica := range replicas(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newHookFixture(t, emulator.WebhookConfig{Duplicates: 0.5, Jitter: 150 * time.Millisecond}, replica(t))
			f.run()
			f.setup(pipeline.WebhookSetup{})
			ids := f.customers(3)
			// Each customer changes once per second of the account's
			// clock: versions alone order these.
			for i := range 24 {
				f.update(ids[i%3], i)
				if i%3 == 2 {
					f.emu.Advance(time.Second)
				}
			}
			// Then six changes of one customer in one second: ties, which
			// only a fresh read orders.
			for i := range 6 {
				f.update(ids[0], 100+i)
			}
			if err := f.emu.Mutate("", "customers", 3, 0, 2); err != nil {
				t.Fatal(err)
			}
			f.settle()
			f.assertEqual()
			applied, dups := f.count("applied", ""), f.count("duplicate", "")
			if applied < 35 || dups == 0 {
				t.Errorf("applied %v, duplicates %v: want every event once (35 or more) and some duplicates", applied, dups)
			}
			if got := f.webhookEvents()[dest.SourceWebhook]; float64(got) != applied {
				t.Errorf("%d events recorded, %v deliveries applied", got, applied)
			}
			// The next sweep re-applies none of them.
			run := f.run()
			if run.Events != 0 {
				t.Errorf("the sweep applied %d events again", run.Events)
			}
			if run.WebhookEvents < int(applied) {
				t.Errorf("the run counts %d events by webhook, want %v", run.WebhookEvents, applied)
			}
			f.assertEqual()
		})
	}
}

// With the endpoint down, Stripe gives up on the deliveries; the next run's
// events sweep applies exactly those, and counts the others as applied by
// the webhook.
func TestWebhookGapRepairedBySweep(t *testing.T) {
	t.Parallel()
	for name, replica := range replicas(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newHookFixture(t, emulator.WebhookConfig{Retries: 1, Backoff: time.Millisecond}, replica(t))
			f.run()
			f.setup(pipeline.WebhookSetup{})
			ids := f.customers(4)
			f.update(ids[0], 1)
			f.update(ids[1], 1)
			f.settle()
			f.down.Store(true)
			f.update(ids[2], 2)
			f.update(ids[0], 2)
			if err := f.emu.Mutate("", "products", 1, 1, 0); err != nil {
				t.Fatal(err)
			}
			f.settle()
			missed := f.emu.WebhookStats().GaveUp
			if missed == 0 {
				t.Fatal("no delivery was lost")
			}
			f.down.Store(false)
			f.update(ids[3], 3)
			f.settle()
			if err := replicaEquals(f); err == nil {
				t.Fatal("the replica equals the account before the sweep: the gap test tests nothing")
			}
			run := f.run()
			if int64(run.Events) != missed {
				t.Errorf("the sweep repaired %d events, %d deliveries were lost", run.Events, missed)
			}
			if run.WebhookEvents != 3 {
				t.Errorf("the run counts %d events by webhook, want 3", run.WebhookEvents)
			}
			f.assertEqual()
		})
	}
}

func replicaEquals(f *hookFixture) error {
	d, err := dest.Open(context.Background(), f.replica)
	if err != nil {
		return err
	}
	defer d.Close()
	return replicacheck.Compare(context.Background(), d.(dest.Querier), f.emu, "", hookStreams)
}

// A pipeline of one connected account registers a Connect endpoint; the
// events of its account are applied to its rows (stamped with the
// account), those of another connected account are acknowledged and
// counted, not applied.
func TestWebhookConnectedAccount(t *testing.T) {
	t.Parallel()
	probe, err := emulator.New(emulator.Config{Seed: 11, Objects: 120, ConnectedAccounts: 2, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	accts := probe.Accounts()
	probe.Close()
	if len(accts) < 3 {
		t.Fatalf("accounts %v: want the platform and two connected", accts)
	}
	mine, other := accts[1], accts[2]
	f := newHookFixtureWith(t, emulator.Config{Seed: 11, Objects: 120, ConnectedAccounts: 2, TestClocks: -1}, "", func(p *pipeline.Pipeline) {
		p.Connection.Account = mine
	})
	f.run()
	eps, err := f.svc.SetupWebhook(context.Background(), "live", pipeline.WebhookSetup{URL: f.url()})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || !eps[0].Connect {
		t.Fatalf("endpoints %+v: want one Connect endpoint", eps)
	}
	for _, acct := range []string{mine, other} {
		if err := f.emu.Mutate(acct, "customers", 1, 2, 1); err != nil {
			t.Fatal(err)
		}
	}
	f.settle()
	if got := f.count("applied", ""); got != 4 {
		t.Errorf("applied %v deliveries, want the 4 of %s", got, mine)
	}
	if got := f.count("other_account", ""); got != 4 {
		t.Errorf("%v deliveries of another account, want the 4 of %s", got, other)
	}
	q := f.open().(dest.Querier)
	enginetest.AssertReplicaEqualsAccount(t, q, f.emu, mine, hookStreams)
	_, rows, err := q.Query(context.Background(), "SELECT count(*) FROM customers WHERE _stripeline_account <> ?", mine)
	if err != nil || rows[0][0].(int64) != 0 {
		t.Errorf("rows of another account: %v %v", rows, err)
	}
}

// With --refetch customers, each customer event is applied with the object
// read again from the account (as thin events are), not the event's copy.
func TestWebhookRefetch(t *testing.T) {
	t.Parallel()
	f := newHookFixture(t, emulator.WebhookConfig{Jitter: 50 * time.Millisecond}, "")
	f.run()
	f.setup(pipeline.WebhookSetup{Refetch: []string{"customers"}})
	f.emu.ResetStats()
	ids := f.customers(2)
	for i := range 6 {
		f.update(ids[i%2], i)
	}
	f.settle()
	if got := f.emu.Stats().ByEndpoint["GET /v1/customers/{id}"]; got != 6 {
		t.Errorf("%d customers read again, want one per event (6): %v", got, f.emu.Stats().ByEndpoint)
	}
	f.assertEqual()
}

// A run's sweep forgets the records of events older than Stripe's 30-day
// retention, and keeps the others.
func TestSweepForgetsOldEventRecords(t *testing.T) {
	t.Parallel()
	f := newHookFixture(t, emulator.WebhookConfig{}, "")
	f.run()
	f.setup(pipeline.WebhookSetup{})
	f.update(f.customers(1)[0], 1)
	f.settle()
	d := f.open()
	old := dest.AppliedEvent{Pipeline: "live", ID: "evt_old", Type: "customer.updated", Created: f.emu.Now().AddDate(0, 0, -40).Unix(), Source: dest.SourceWebhook}
	if err := d.Write(context.Background(), &dest.Batch{Table: dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: "string"}}}, Events: []dest.AppliedEvent{old}}); err != nil {
		t.Fatal(err)
	}
	if got := f.webhookEvents()[dest.SourceWebhook]; got != 2 {
		t.Fatalf("%d records before the run, want 2", got)
	}
	f.run()
	if got := f.webhookEvents()[dest.SourceWebhook]; got != 1 {
		t.Errorf("%d records after the run, want the recent one", got)
	}
}
