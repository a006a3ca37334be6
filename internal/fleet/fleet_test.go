package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/fleet"
	"github.com/stripeline/stripeline/internal/stripe"
)

func TestParseSelection(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want fleet.Selection
		err  string
	}{
		{in: []string{"all"}, want: fleet.Selection{All: true}},
		{in: []string{"all,-acct_2"}, want: fleet.Selection{All: true, Except: []string{"acct_2"}}},
		{in: []string{"acct_1", "acct_2,platform"}, want: fleet.Selection{IDs: []string{"acct_1", "acct_2"}, Platform: true}},
		{in: []string{""}, want: fleet.Selection{}},
		{in: []string{"cus_1"}, err: `"cus_1" is not an account selection item: use all, platform, acct_… (an account) or -acct_… (leave one out)`},
		{in: []string{"-acct_1"}, err: "-acct_… leaves an account out of all: add all, or list the accounts to sync"},
	} {
		got, err := fleet.ParseSelection(c.in...)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%v: error %v, want %s", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", c.in, diff)
		}
		back, err := fleet.ParseSelection(got.String())
		if err != nil || !cmp.Equal(back, got) {
			t.Errorf("%v: text form %q reads back as %+v, %v", c.in, got.String(), back, err)
		}
	}
}

func TestStateKey(t *testing.T) {
	if got := fleet.StateKey("acme", fleet.Platform); got != "acme" {
		t.Errorf("platform key %q: a platform-only pipeline's state would be lost", got)
	}
	if got := fleet.StateKey("acme", "acct_1"); got != "acme@acct_1" {
		t.Errorf("account key %q", got)
	}
}

func client(t *testing.T, base string) *stripe.Client {
	t.Helper()
	c, err := stripe.New(stripe.Config{Key: "sk_test_fleet0000000000", APIBase: base, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiscoverPagesTheAccountsAndSkipsRevokedOnes(t *testing.T) {
	t.Parallel()
	emu, err := emulator.New(emulator.Config{Seed: 4, Objects: 300, ConnectedAccounts: 105, ConnectedObjects: 1, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	ids := emu.Accounts()[1:]
	emu.Deauthorize(ids[3])
	got, err := fleet.Discover(context.Background(), client(t, srv.URL), fleet.Selection{All: true, Except: []string{ids[7]}})
	if err != nil {
		t.Fatal(err)
	}
	// The platform first, then 105 - 1 revoked - 1 left out, over two pages.
	if len(got) != 104 || got[0].ID != fleet.Platform {
		t.Fatalf("discovered %d accounts, first %+v", len(got), got[0])
	}
	for _, a := range got {
		if a.ID == ids[3] || a.ID == ids[7] {
			t.Errorf("discovered %s", a.ID)
		}
	}
	// A revoked account's requests are Stripe's 403 account_invalid.
	c, err := stripe.New(stripe.Config{Key: "sk_test_fleet0000000000", APIBase: srv.URL, Account: ids[3], MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListPage(context.Background(), "/v1/customers", nil)
	if !fleet.Revoked(err) {
		t.Fatalf("revoked account's request: %v", err)
	}
	if fleet.Revoked(errors.New("x")) || fleet.Revoked(fmt.Errorf("w: %w", &stripe.Error{StatusCode: 403, Code: "secret_key_required"})) {
		t.Fatal("Revoked says yes to other errors")
	}
}
