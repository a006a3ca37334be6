package pipeline_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/config"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/replicacheck"
	"github.com/stripeline/stripeline/internal/stripe"
)

// fleetFixture is a service working runs on a SQLite store against an
// emulator with connected accounts.
func fleetFixture(t *testing.T, accounts int) (*pipeline.Service, *emulator.Emulator, string, string) {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 11, Objects: 200, ConnectedAccounts: accounts, ConnectedObjects: 60, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	svc, err := pipeline.Open(context.Background(), pipeline.Options{
		Store: "sqlite://" + filepath.Join(dir, "store.db"), Work: true, Workers: 3, PollInterval: 20 * time.Millisecond,
		Getenv:       func(string) string { return "sk_test_fleet123" },
		ClientOption: func(c *stripe.Config) { c.MaxBackoff = time.Millisecond; c.MaxRetries = 2 },
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
	return svc, emu, srv.URL, "sqlite://" + filepath.Join(dir, "replica.db")
}

func runAndWait(t *testing.T, svc *pipeline.Service, name string) *pipeline.Run {
	t.Helper()
	ctx := context.Background()
	run, err := svc.Run(ctx, name, pipeline.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	done, err := svc.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// TestFleetSyncsEveryAccountApartAndSkipsDeauthorizedOnes: accounts: all
// syncs the platform and each connected account, each into the same tables
// under its _stripeline_account, each with its own state key; an account
// that then disconnects is marked, skipped and keeps its rows, and the
// others go on incrementally.
func TestFleetSyncsEveryAccountApartAndSkipsDeauthorizedOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, emu, base, replica := fleetFixture(t, 3)
	sel, _ := fleet.ParseSelection("all")
	p := pipeline.Pipeline{Name: "plat", Connection: pipeline.Connection{KeyRef: "env:STRIPE_API_KEY", APIBase: base, Accounts: pipeline.Accounts{Select: sel, PlatformRPS: 500}},
		Dest: replica, Streams: testStreams, Schedule: pipeline.Manual}
	if _, err := svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	done := runAndWait(t, svc, "plat")
	if done.Status != pipeline.RunSucceeded || done.Rows == 0 {
		t.Fatalf("fleet run: %s %s %s (%+v)", done.Status, done.ErrorKind, done.Error, done)
	}
	d, err := dest.Open(ctx, replica)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, a := range emu.Accounts() {
		if err := replicacheck.Compare(ctx, d.(dest.Querier), emu, a, testStreams); err != nil {
			t.Errorf("account %q: %v", a, err)
		}
		st, err := d.LoadState(ctx, fleet.StateKey("plat", a))
		if err != nil || len(st["customers"]) == 0 {
			t.Errorf("account %q has no state of its own: %v %v", a, st, err)
		}
	}
	accts, err := svc.Accounts(ctx, "plat")
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 4 {
		t.Fatalf("%d accounts recorded, want 4", len(accts))
	}
	for _, a := range accts {
		if a.State != pipeline.RunSucceeded || a.Phase != pipeline.PhaseBackfill || a.Worker == "" || a.LastSuccess.IsZero() || a.LagSeconds < 0 || a.Rows == 0 {
			t.Errorf("account %s: %+v", a.Label(), a)
		}
	}
	// One account disconnects; another gets new customers.
	gone, changed := emu.Accounts()[1], emu.Accounts()[2]
	emu.Deauthorize(gone)
	if err := emu.Mutate(changed, "customers", 3, 1, 0); err != nil {
		t.Fatal(err)
	}
	_, before, _ := d.(dest.Querier).Query(ctx, `SELECT COUNT(*) FROM customers WHERE _stripeline_account = '`+gone+`'`)
	done = runAndWait(t, svc, "plat")
	if done.Status != pipeline.RunSucceeded {
		t.Fatalf("second run: %s %s", done.Status, done.Error)
	}
	accts, _ = svc.Accounts(ctx, "plat")
	for _, a := range accts {
		switch a.Account {
		case gone:
			if a.Standing != pipeline.StandingDeauthorized {
				t.Errorf("deauthorized account: %+v", a)
			}
		default:
			if a.Phase != pipeline.PhaseIncremental || a.State != pipeline.RunSucceeded {
				t.Errorf("account %s second run: %+v", a.Label(), a)
			}
		}
	}
	if err := replicacheck.Compare(ctx, d.(dest.Querier), emu, changed, testStreams); err != nil {
		t.Errorf("changed account: %v", err)
	}
	_, after, _ := d.(dest.Querier).Query(ctx, `SELECT COUNT(*) FROM customers WHERE _stripeline_account = '`+gone+`'`)
	if len(before) != 1 || len(after) != 1 || before[0][0] != after[0][0] {
		t.Errorf("the deauthorized account's rows changed: %v → %v", before, after)
	}
	st, err := d.LoadState(ctx, fleet.StateKey("plat", gone))
	if err != nil {
		t.Fatal(err)
	}
	var flag struct{ Standing string }
	if err := json.Unmarshal(st[pipeline.AccountFlagStream], &flag); err != nil || flag.Standing != pipeline.StandingDeauthorized {
		t.Errorf("no deauthorized flag in the destination: %s %v", st[pipeline.AccountFlagStream], err)
	}
}

// TestFleetAccountRefusedDoesNotBlockTheOthers: a listed account the key
// may not act on (403 account_invalid) is marked and skipped; the others
// are synced and the run says which.
func TestFleetAccountRefusedDoesNotBlockTheOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, emu, base, replica := fleetFixture(t, 2)
	ok := emu.Accounts()[1]
	sel, _ := fleet.ParseSelection("acct_notmine", ok)
	p := pipeline.Pipeline{Name: "some", Connection: pipeline.Connection{KeyRef: "env:STRIPE_API_KEY", APIBase: base, Accounts: pipeline.Accounts{Select: sel}},
		Dest: replica, Streams: testStreams, Schedule: pipeline.Manual}
	if _, err := svc.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	done := runAndWait(t, svc, "some")
	if done.Status != pipeline.RunSucceeded {
		t.Fatalf("run: %s %s", done.Status, done.Error)
	}
	d, err := dest.Open(ctx, replica)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := replicacheck.Compare(ctx, d.(dest.Querier), emu, ok, testStreams); err != nil {
		t.Error(err)
	}
	accts, _ := svc.Accounts(ctx, "some")
	if len(accts) != 2 {
		t.Fatalf("%d accounts", len(accts))
	}
	for _, a := range accts {
		switch {
		case a.Account == "acct_notmine" && (a.Standing != pipeline.StandingDeauthorized || a.State != pipeline.RunSkipped || !strings.Contains(a.Error, "403 account_invalid")):
			t.Errorf("refused account: %+v", a)
		case a.Account == ok && a.State != pipeline.RunSucceeded:
			t.Errorf("other account: %+v", a)
		}
	}
	if !slices.ContainsFunc(done.Notes, func(n string) bool { return strings.Contains(n, "acct_notmine skipped") }) {
		t.Errorf("the run does not say the account was skipped: %q", done.Notes)
	}
}

func TestAccountsSettingIsChecked(t *testing.T) {
	sel, _ := fleet.ParseSelection("all")
	for _, c := range []struct {
		conn pipeline.Connection
		want string
	}{
		{pipeline.Connection{KeyRef: "env:K", Account: "acct_1", Accounts: pipeline.Accounts{Select: sel}}, "accounts: \"all\" and account acct_1 are both set: give account for one connected account, or accounts for several"},
		{pipeline.Connection{KeyRef: "env:K", Accounts: pipeline.Accounts{PlatformRPS: 10}}, "platform_rps: \"10\" caps the requests of several accounts: set accounts too (all, or a list of acct_… ids)"},
		{pipeline.Connection{KeyRef: "env:K", Accounts: pipeline.Accounts{Select: sel, PlatformRPS: -1}}, "platform_rps: \"-1\" must be positive (0 for no platform-wide cap)"},
	} {
		p := pipeline.Pipeline{Name: "x", Connection: c.conn, Dest: "sqlite://x.db", Schedule: pipeline.Manual}
		if err := p.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
}

func TestFleetFromTheConfigFile(t *testing.T) {
	for _, c := range []struct {
		yaml, want, err string
	}{
		{yaml: "accounts: all\n    platform_rps: 300", want: "all"},
		{yaml: "accounts: [acct_1, acct_2]", want: "acct_1,acct_2"},
		{yaml: `accounts: "all,-acct_3"`, want: "all,-acct_3"},
		{yaml: "accounts: [cus_1]", err: `config field pipelines[0].accounts: "cus_1" is not an account selection item: use all, platform, acct_… (an account) or -acct_… (leave one out)`},
	} {
		cfg := config.Default()
		doc := "pipelines:\n  - name: plat\n    dest: sqlite://x.db\n    " + c.yaml + "\n"
		if err := config.Parse([]byte(doc), cfg); err != nil {
			t.Fatalf("%s: %v", c.yaml, err)
		}
		p, err := pipeline.FromConfig(cfg, 0)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %s", c.yaml, err, c.err)
			}
			continue
		}
		if err != nil || p.Connection.Accounts.Select.String() != c.want || !p.Fleet() {
			t.Errorf("%s: %v %+v", c.yaml, err, p.Connection.Accounts)
		}
		if strings.Contains(c.yaml, "platform_rps") && p.Connection.Accounts.PlatformRPS != 300 {
			t.Errorf("platform_rps %v", p.Connection.Accounts.PlatformRPS)
		}
	}
}
