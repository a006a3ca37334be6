package emulator

import (
	"fmt"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// connect picks the account the request acts on: the main account, or the
// connected one its Stripe-Account header names (the main account's own id
// is accepted too); any other id is Stripe's 403 account_invalid.
func (e *Emulator) connect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		id := r.Header.Get("Stripe-Account")
		e.mu.RLock()
		a, ok := e.account(id)
		if !ok && id == e.accounts[0].id {
			a, ok = e.accounts[0], true
		}
		if ok && e.revoked[a.id] {
			ok = false
		}
		e.mu.RUnlock()
		if !ok {
			e.writeErr(w, c.reqID, &apiError{status: 403, typ: "invalid_request_error", code: "account_invalid",
				msg: fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). Application access may have been revoked.", maskKey(c.key), id)})
			return
		}
		if l := e.accountLimiter(a.id); l != nil && !l.Allow() {
			e.writeErr(w, c.reqID, rateLimited("account-rate"))
			return
		}
		c.acct = a
		next.ServeHTTP(w, r)
	})
}

// accountLimiter is the account's own bucket (Config.AccountRPS), or nil.
func (e *Emulator) accountLimiter(id string) *rate.Limiter {
	if e.cfg.AccountRPS <= 0 {
		return nil
	}
	e.acctMu.Lock()
	defer e.acctMu.Unlock()
	l := e.acctLimits[id]
	if l == nil {
		l = newLimiter(e.cfg.AccountRPS)
		e.acctLimits[id] = l
	}
	return l
}

// Deauthorize revokes the platform's access to a connected account, as
// when its owner disconnects the platform's application: the account
// leaves GET /v1/accounts, requests naming it in Stripe-Account are refused
// with Stripe's 403 account_invalid, and the main account's events list
// gains an account.application.deauthorized event naming it (the event
// Stripe sends the platform). Its data is kept. It reports whether id is a
// connected account.
func (e *Emulator) Deauthorize(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.byAcct[id]
	if !ok || a == e.accounts[0] || e.revoked[id] {
		return ok && a != e.accounts[0]
	}
	e.revoked[id] = true
	e.emitDeauthorized(a, time.Unix(e.unix(), 0))
	return true
}

// emitDeauthorized records account.application.deauthorized on the
// connected account (with its account field, as Connect events carry it)
// and delivers it to the webhook endpoints that listen to connected
// accounts. Callers hold e.mu.
func (e *Emulator) emitDeauthorized(a *account, _ time.Time) {
	app := []byte(`{"id":"ca_emulator","object":"application","name":"stripeline emulator platform"}`)
	e.emit(a, "account.application.deauthorized", app, nil)
}

// Revoked reports whether Deauthorize revoked the account.
func (e *Emulator) Revoked(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.revoked[id]
}
