package emulator

import (
	"strings"
	"testing"
)

func TestConnectedObjectsSizeEachAccount(t *testing.T) {
	e := small(t, Config{Seed: 5, ConnectedAccounts: 3, ConnectedObjects: 120})
	accts := e.Accounts()
	if len(accts) != 4 {
		t.Fatalf("accounts %v", accts)
	}
	list := mustOK(t, call(e, "GET", "/v1/accounts?limit=100", nil))
	if n := len(list.get("data").Array()); n != 3 {
		t.Fatalf("GET /v1/accounts lists %d accounts, want 3: %s", n, list.body)
	}
	for _, a := range accts[1:] {
		n := 0
		for _, c := range e.Counts(a) {
			n += c
		}
		// Generation is approximate (children ride on parents); far fewer
		// than the main account's 1,500 shows the knob took.
		if n == 0 || n > 600 {
			t.Errorf("account %s holds %d objects with ConnectedObjects 120", a, n)
		}
	}
}

func TestAccountRPSLimitsEachAccountOnItsOwn(t *testing.T) {
	e := small(t, Config{Seed: 6, ConnectedAccounts: 2, AccountRPS: 1})
	accts := e.Accounts()
	// A burst of one request per account: each has a token of its own.
	for _, a := range accts {
		mustOK(t, call(e, "GET", "/v1/customers?limit=1", nil, "Stripe-Account", a))
	}
	// The second request of the same account in the same instant is 429.
	r := call(e, "GET", "/v1/customers?limit=1", nil, "Stripe-Account", accts[1])
	if r.code != 429 || r.header.Get("Stripe-Rate-Limited-Reason") != "account-rate" || r.get("error.code").Str != "rate_limit" {
		t.Fatalf("second request of %s: %d %s %v", accts[1], r.code, r.body, r.header)
	}
}

func TestDeauthorizeRevokesAccess(t *testing.T) {
	e := small(t, Config{Seed: 7, ConnectedAccounts: 2})
	accts := e.Accounts()
	gone := accts[1]
	if r := call(e, "POST", "/_emulator/deauthorize", nil); r.code != 400 || !strings.Contains(string(r.body), "account") {
		t.Fatalf("deauthorize without an account: %d %s", r.code, r.body)
	}
	if e.Revoked(gone) {
		t.Fatal("an empty admin call revoked an account")
	}
	if !e.Deauthorize(gone) || !e.Revoked(gone) {
		t.Fatal("Deauthorize did not revoke")
	}
	r := call(e, "GET", "/v1/customers", nil, "Stripe-Account", gone)
	if r.code != 403 || r.get("error.code").Str != "account_invalid" || !strings.Contains(r.get("error.message").Str, "Application access may have been revoked") {
		t.Fatalf("revoked account: %d %s", r.code, r.body)
	}
	list := mustOK(t, call(e, "GET", "/v1/accounts?limit=100", nil))
	for _, x := range list.get("data").Array() {
		if x.Get("id").Str == gone {
			t.Fatalf("GET /v1/accounts still lists %s", gone)
		}
	}
	mustOK(t, call(e, "GET", "/v1/customers?limit=1", nil, "Stripe-Account", accts[2]))
	// The event Stripe sends the platform, on the account's own events.
	found := false
	e.mu.RLock()
	for _, rec := range e.byAcct[gone].events.recs {
		if rec.typ == "account.application.deauthorized" && strings.Contains(string(rec.data), `"account":"`+gone+`"`) {
			found = true
		}
	}
	e.mu.RUnlock()
	if !found {
		t.Fatal("no account.application.deauthorized event")
	}
}
