package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// ServeHTTP answers Stripe API requests under /v1/ and the emulator's
// admin endpoints under /_emulator/, through the stages of handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.handler.ServeHTTP(w, r)
}

// middleware is one stage of the request pipeline.
type middleware func(http.Handler) http.Handler

// newHandler builds the pipeline every request goes through, outermost
// first. Each stage answers the request itself (an error in Stripe's shape,
// a dropped connection) or passes it on; what a stage learns (the route, the
// key, the account) it notes on the request's exchange for the stages after it.
func (e *Emulator) newHandler() http.Handler {
	stages := []middleware{
		e.requestID,   // Request-Id on every answer; the exchange begins
		e.admin,       // /_emulator/: no stats, no key, no limits
		e.stats,       // requests, in flight, per endpoint
		e.conditions,  // the knobs in force when the request arrives
		e.latency,     // the configured delay
		e.faults,      // dropped connections
		e.rateLimit,   // 429s, global then per endpoint
		e.auth,        // the API key
		e.connect,     // the Stripe-Account the request acts on
		e.permissions, // restricted keys' grants
		e.body,        // form parameters
	}
	h := e.idempotency(e.handle)
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h
}

// exchange is what the stages learn of one request, kept in its context.
type exchange struct {
	reqID string
	tg    *target
	knobs knobs
	key   string
	acct  *account
}

type exchangeKey struct{}

// exchangeOf returns the request's exchange, begun by the requestID stage.
func exchangeOf(r *http.Request) *exchange { return r.Context().Value(exchangeKey{}).(*exchange) }

// requestID begins the exchange and names the request in its Request-Id header.
func (e *Emulator) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &exchange{reqID: fmt.Sprintf("req_%014d", e.reqSeq.Add(1))}
		w.Header().Set("Request-Id", c.reqID)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, c)))
	})
}

// admin sends /_emulator/ requests to the admin endpoints, ahead of every
// stage that counts, limits or authenticates.
func (e *Emulator) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			e.serveAdmin(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
