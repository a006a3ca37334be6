package stripe

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Retry is one retry the client is about to make, as Config.OnRetry sees
// it. It holds no secret: the path has no query string and the reason no
// response body.
type Retry struct {
	Method string // request method
	Path   string // request path without the query string
	// Attempt is the attempt about to be made (2 for the first retry) of
	// MaxAttempts at most.
	Attempt, MaxAttempts int
	// Delay is the wait before it (backoff with jitter, or Retry-After).
	Delay time.Duration
	// StatusCode is the status that failed, 0 when no answer came.
	StatusCode int
	// Reason says why: "connection refused", "503 Service Unavailable",
	// "429 Too Many Requests"…
	Reason    string
	RequestID string // the failed attempt's Request-Id, if any
	// Base is the API base URL.
	Base string
	// Unreached is true for a network error while no request of the client
	// has had an answer yet: the base may be down, mistyped or blocked.
	Unreached bool
}

// String is the retry in one line, e.g. "cannot reach http://127.0.0.1:9
// (connection refused); retrying GET /v1/account, attempt 2 of 6 in 380ms".
func (r Retry) String() string {
	next := fmt.Sprintf("attempt %d of %d in %s", r.Attempt, r.MaxAttempts, roundDelay(r.Delay))
	if r.Unreached {
		return fmt.Sprintf("cannot reach %s (%s); retrying %s %s, %s", r.Base, r.Reason, r.Method, r.Path, next)
	}
	return fmt.Sprintf("%s %s: %s; retrying, %s", r.Method, r.Path, r.Reason, next)
}

// roundDelay keeps a delay readable: 380ms, 1.5s, 20s.
func roundDelay(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// retryDecision is what shouldRetry decided about a failed attempt.
type retryDecision struct {
	retry       bool
	delay       time.Duration
	reason      string
	maxAttempts int
}

// shouldRetry is the one place that decides retries: whether to retry,
// after how long, why, and how many attempts the request may make in all.
func (c *Client) shouldRetry(req *Request, method, idem string, attempt int, e *Error, h http.Header) retryDecision {
	limit := c.cfg.MaxRetries
	if e.Kind == ErrNetwork && !c.answered.Load() {
		limit = min(limit, c.cfg.UnreachedRetries)
		if c.unreachable.Load() {
			// A request already rode out its retries without an answer:
			// the next ones fail at once rather than wait as long again.
			limit = 0
		}
	}
	no := retryDecision{}
	// A POST without an idempotency key could create twice.
	if req.NoRetry || attempt > limit || (method == http.MethodPost && idem == "") {
		return no
	}
	d := retryDecision{retry: true, maxAttempts: limit + 1, reason: statusReason(e)}
	switch h.Get("Stripe-Should-Retry") {
	case "false":
		return no
	case "true":
		d.delay = c.retryDelay(attempt, h)
		return d
	}
	switch {
	case e.Kind == ErrNetwork:
		d.delay = c.backoff(attempt)
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		d.delay = c.retryDelay(attempt, h)
	case e.StatusCode == http.StatusConflict:
		d.delay = c.backoff(attempt)
	default:
		return no
	}
	return d
}

// statusReason names a failure for a retry line: the network error's cause,
// or the status with Stripe's error code when there is one.
func statusReason(e *Error) string {
	if e.Kind == ErrNetwork {
		if e.cause == nil {
			return "the connection failed"
		}
		return networkReason(e.cause)
	}
	s := strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

// retryDelay honours Retry-After (seconds or an HTTP date) when present,
// and otherwise backs off exponentially with jitter.
func (c *Client) retryDelay(attempt int, h http.Header) time.Duration {
	if ra := h.Get("Retry-After"); ra != "" {
		limit := max(c.cfg.MaxBackoff, time.Minute)
		if secs, err := strconv.ParseFloat(ra, 64); err == nil && secs >= 0 {
			return min(time.Duration(secs*float64(time.Second)), limit)
		}
		if t, err := http.ParseTime(ra); err == nil {
			return min(max(t.Sub(c.now()), 0), limit)
		}
	}
	return c.backoff(attempt)
}

// backoff is 500ms·2^(attempt-1), capped at MaxBackoff, with "equal jitter"
// (between half and all of it) so retries of concurrent requests spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := float64(500*time.Millisecond) * math.Pow(2, float64(attempt-1))
	d = min(d, float64(c.cfg.MaxBackoff))
	return time.Duration(d/2 + c.jitter()*d/2)
}
