package emulator

import (
	"fmt"
	"net/http"
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
		e.mu.RUnlock()
		if !ok {
			e.writeErr(w, c.reqID, &apiError{status: 403, typ: "invalid_request_error", code: "account_invalid",
				msg: fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). Application access may have been revoked.", maskKey(c.key), id)})
			return
		}
		c.acct = a
		next.ServeHTTP(w, r)
	})
}
