package emulator

import (
	"net/http"

	"golang.org/x/time/rate"
)

// rateLimiter is what the rateLimit stage asks of a token bucket.
type rateLimiter interface{ Allow() bool }

func newLimiter(rps float64) *rate.Limiter { return rate.NewLimiter(rate.Limit(rps), burst(rps)) }

// burst lets a second's worth of requests through at once, at least one.
func burst(rps float64) int {
	if rps < 1 {
		return 1
	}
	return int(rps)
}

// rateLimit answers Stripe's 429 when the account's bucket, then the
// endpoint's, has no token for the request.
func (e *Emulator) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := exchangeOf(r)
		if c.knobs.global != nil && !c.knobs.global.Allow() {
			e.writeErr(w, c.reqID, rateLimited("global-rate"))
			return
		}
		if c.knobs.endpoint != nil && !c.knobs.endpoint.Allow() {
			e.writeErr(w, c.reqID, rateLimited("endpoint-rate"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func rateLimited(reason string) *apiError {
	return &apiError{status: 429, typ: "invalid_request_error", code: "rate_limit",
		msg:    "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
		header: map[string]string{"Stripe-Rate-Limited-Reason": reason, "Stripe-Should-Retry": "true"}}
}
