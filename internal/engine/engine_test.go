package engine_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/sqlite"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/enginetest"
	"github.com/stripeline/stripeline/internal/stripe"
)

// fixture is an emulator behind a real HTTP server, a paced client and a
// SQLite replica.
type fixture struct {
	emu    *emulator.Emulator
	srv    *httptest.Server
	client *stripe.Client
	dst    dest.Destination
	path   string
}

func newFixture(t *testing.T, cfg emulator.Config) *fixture {
	t.Helper()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	client, err := stripe.New(stripe.Config{Key: "sk_test_engine", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "replica.db")
	f := &fixture{emu: emu, srv: srv, client: client, path: path}
	f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	dst, err := dest.Open(context.Background(), "sqlite://"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	f.dst = dst
}

func (f *fixture) sync(t *testing.T, opts engine.Options) *engine.Result {
	t.Helper()
	opts.Client = f.client
	opts.Dest = f.dst
	if opts.Concurrency == 0 {
		opts.Concurrency = 8
	}
	res, err := engine.Sync(context.Background(), opts)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func TestFullThenIncrementalEqualsAccount(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 7, Objects: 3000, ConnectedAccounts: 1})
	streams := enginetest.SeededStreams(t, f.emu, "")
	res := f.sync(t, engine.Options{})
	if res.Status != "succeeded" {
		t.Fatalf("status %s", res.Status)
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)

	// Changes through the admin endpoint and through the real API.
	for _, s := range []string{"customers", "products", "invoices", "subscriptions", "charges"} {
		if err := f.emu.Mutate("", s, 4, 6, 2); err != nil {
			t.Fatalf("mutate %s: %v", s, err)
		}
	}
	ctx := context.Background()
	created, err := f.client.Do(ctx, &stripe.Request{Method: "POST", Path: "/v1/customers", Body: map[string][]string{"email": {"new@example.com"}, "metadata[tier]": {"gold"}}})
	if err != nil {
		t.Fatal(err)
	}
	newID := gjson.GetBytes(created.Body, "id").Str
	if _, err := f.client.Do(ctx, &stripe.Request{Method: "POST", Path: "/v1/customers/" + newID, Body: map[string][]string{"metadata[tier]": {""}, "name": {"Zoë Ünïcode 🚀"}}}); err != nil {
		t.Fatal(err)
	}
	res = f.sync(t, engine.Options{})
	if res.Events == 0 {
		t.Fatalf("incremental run applied no events: %+v", res)
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)

	// A cursor older than 30 days re-reads the event streams and says so.
	f.emu.Advance(31 * 24 * time.Hour)
	if err := f.emu.Mutate("", "customers", 2, 2, 1); err != nil {
		t.Fatal(err)
	}
	res = f.sync(t, engine.Options{})
	if !strings.Contains(strings.Join(res.Notes, "\n"), "30-day") {
		t.Fatalf("expired cursor not reported: notes %q", res.Notes)
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)
	runs, err := f.dst.Runs(ctx, "default", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || !strings.Contains(string(runs[0].Streams), "30-day") {
		t.Fatalf("run history: %d runs, latest %s", len(runs), runs[0].Streams)
	}
}

func TestConnectedAccountRowsCarryIt(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 3, Objects: 1500, ConnectedAccounts: 1})
	acct := f.emu.Accounts()[1]
	client, err := stripe.New(stripe.Config{Key: "sk_test_engine", APIBase: f.srv.URL, Account: acct, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	streams := enginetest.SeededStreams(t, f.emu, acct)
	f.sync(t, engine.Options{Account: acct, Pipeline: acct, Streams: streams})
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, acct, streams)
}

// A bad option names the setting (as the config file does), never a flag
// of one face or another.
func TestBadStreamNamesTheSetting(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 1, Objects: 200})
	_, err := engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: f.dst, Streams: []string{"custommers"}})
	var se *engine.SettingError
	if !errors.As(err, &se) || se.Setting() != "streams" || !strings.HasPrefix(err.Error(), "streams: ") || !strings.Contains(err.Error(), "custommers") {
		t.Fatalf("err = %v", err)
	}
	for _, opts := range []engine.Options{{LookbackDays: -1}, {WindowDays: -2}, {Concurrency: -1}, {ReconcileEvery: time.Minute}} {
		err := opts.Validate()
		if !errors.As(err, &se) || strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: err = %v", opts, err)
		}
	}
}

func TestDenseStreamIsSplitAndComplete(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 11, Objects: 6000})
	res := f.sync(t, engine.Options{Streams: []string{"charges", "customers"}, Concurrency: 12, BatchRows: 300})
	for _, s := range res.Streams {
		if s.Stream == "charges" && s.Pages < 2 {
			t.Fatalf("charges read in %d pages", s.Pages)
		}
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", []string{"charges", "customers"})
}

// TestFaultsAreRetriedNotDropped runs a backfill and an incremental sync
// through injected 500s, dropped connections and 429s: nothing is dropped,
// and the replica equals the account.
func TestFaultsAreRetriedNotDropped(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 13, Objects: 1200, FailRate: 0.05, DropRate: 0.02, RPS: 400})
	streams := []string{"customers", "charges", "invoices", "invoices_lines", "subscriptions", "subscriptions_items", "products", "prices"}
	res := f.sync(t, engine.Options{Streams: streams})
	stats := f.client.Stats()
	if stats.ServerErrors == 0 || stats.Retries == 0 {
		t.Fatalf("no faults were injected: %+v", stats)
	}
	if res.Status != "succeeded" {
		t.Fatalf("status %s", res.Status)
	}
	if err := f.emu.Mutate("", "customers", 5, 5, 2); err != nil {
		t.Fatal(err)
	}
	f.sync(t, engine.Options{Streams: streams})
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)
}

// TestFullRefreshRereads re-reads every stream despite saved state.
func TestFullRefreshRereads(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 17, Objects: 800})
	f.sync(t, engine.Options{Streams: []string{"customers", "products"}})
	res := f.sync(t, engine.Options{Streams: []string{"customers", "products"}})
	for _, s := range res.Streams {
		if s.Stream == "customers" && s.Rows != 0 {
			t.Fatalf("incremental run rewrote %d customers", s.Rows)
		}
	}
	res = f.sync(t, engine.Options{Streams: []string{"customers", "products"}, FullRefresh: true})
	want := len(f.emu.Objects("", "customers"))
	for _, s := range res.Streams {
		if s.Stream == "customers" && (s.Rows < int64(want) || s.Mode != "backfill") {
			t.Fatalf("full refresh: %+v, want %d rows in backfill mode", s, want)
		}
	}
}

// TestWindowedBackfillAndCreatedCursor cuts the backfill into windows and
// keeps a created cursor across runs with nothing new.
func TestWindowedBackfillAndCreatedCursor(t *testing.T) {
	f := newFixture(t, emulator.Config{Seed: 19, Objects: 1500})
	streams := []string{"balance_transactions", "charges", "customers"}
	res := f.sync(t, engine.Options{Streams: streams, WindowDays: 60})
	for _, s := range res.Streams {
		if s.Stream == "balance_transactions" && s.Pages < 15 {
			t.Fatalf("60-day windows over three years took only %d pages", s.Pages)
		}
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", streams)
	// balance_transactions has no events: the created cursor must survive
	// runs that find nothing new instead of falling back to a full read.
	for i := 0; i < 2; i++ {
		res = f.sync(t, engine.Options{Streams: streams, LookbackDays: 1})
		for _, s := range res.Streams {
			if s.Stream == "balance_transactions" && (s.Mode != "incremental" || s.Pages > 3) {
				t.Fatalf("run %d: balance_transactions %+v, want a cheap incremental read", i, s)
			}
		}
	}
}

// TestNoEventsPermissionRereads falls back to full re-reads, and says so,
// when the key may not read events.
func TestNoEventsPermissionRereads(t *testing.T) {
	const key = "rk_test_noeventsnoevents"
	f := newFixture(t, emulator.Config{Seed: 23, Objects: 600, Restricted: map[string][]string{key: {"rak_customer_read", "rak_test_helpers_test_clock_read"}}})
	client, err := stripe.New(stripe.Config{Key: key, APIBase: f.srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	f.sync(t, engine.Options{Streams: []string{"customers"}})
	if err := f.emu.Mutate("", "customers", 2, 2, 1); err != nil {
		t.Fatal(err)
	}
	res := f.sync(t, engine.Options{Streams: []string{"customers"}})
	if !strings.Contains(strings.Join(res.Notes, "\n"), "rak_event_read") {
		t.Fatalf("notes %q do not say why", res.Notes)
	}
	enginetest.AssertReplicaEqualsAccount(t, f.dst.(dest.Querier), f.emu, "", []string{"customers"})
}
