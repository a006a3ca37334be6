package emulator

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// knobs are the latency, limits and injected faults one request meets,
// taken when it arrives: a request keeps them while it waits out its
// latency, whatever SetFaults changes meanwhile.
type knobs struct {
	latency  time.Duration
	global   rateLimiter // nil: unlimited
	endpoint rateLimiter // nil: unlimited
	drop     bool        // the connection is dropped without an answer
	fail     bool        // the answer is a 500 (see idempotency)
}

// conditions takes the request's knobs, drawing its injected faults.
func (e *Emulator) conditions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		e.faultMu.Lock()
		c.knobs.latency = e.delay
		if e.global != nil {
			c.knobs.global = e.global
		}
		if e.endpointRPS > 0 {
			l, ok := e.endpoints[c.tg.endpoint]
			if !ok {
				l = newLimiter(e.endpointRPS)
				e.endpoints[c.tg.endpoint] = l
			}
			c.knobs.endpoint = l
		}
		c.knobs.drop = e.dropRate > 0 && e.faultRand.Float64() < e.dropRate
		c.knobs.fail = e.failRate > 0 && e.faultRand.Float64() < e.failRate
		e.faultMu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// SetFaults changes the latency, rate limits and fault rates at runtime.
func (e *Emulator) SetFaults(latency time.Duration, rps, endpointRPS, failRate, dropRate float64) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	e.delay = latency
	e.global = nil
	if rps > 0 {
		e.global = newLimiter(rps)
	}
	e.endpointRPS = endpointRPS
	e.endpoints = map[string]*rate.Limiter{}
	e.failRate = failRate
	e.dropRate = dropRate
}

// faults drops the connection of a request drawn to be dropped. A request
// drawn to fail is answered by the idempotency stage, which knows whether
// the request must run first.
func (e *Emulator) faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !exchangeOf(r).knobs.drop {
			next.ServeHTTP(w, r)
			return
		}
		e.dropped.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	})
}

// serverError is the injected failure: Stripe's 500, worth a retry.
func serverError() *apiError {
	return &apiError{status: 500, typ: "api_error", msg: "An unknown error occurred",
		header: map[string]string{"Stripe-Should-Retry": "true"}}
}
