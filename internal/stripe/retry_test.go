package stripe_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/stripe"
)

// retryLog collects what Config.OnRetry sees.
type retryLog struct {
	mu      sync.Mutex
	retries []stripe.Retry
}

func (l *retryLog) add(r stripe.Retry) {
	l.mu.Lock()
	l.retries = append(l.retries, r)
	l.mu.Unlock()
}

func (l *retryLog) all() []stripe.Retry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stripe.Retry(nil), l.retries...)
}

// closedBase returns the URL of a loopback port nothing listens on.
func closedBase(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestOnRetrySeesEveryRetry(t *testing.T) {
	fs := newFaultServer(t,
		respond(503, "<html>unavailable</html>"),
		respond(429, stripeErr("invalid_request_error", "rate_limit", "", "Too many requests"), "Retry-After", "3"),
		truncated,
		respond(409, stripeErr("invalid_request_error", "lock_timeout", "", "locked")),
		respond(200, `{"id":"cus_1"}`),
	)
	var log retryLog
	c, clk := newClient(t, fs.URL, func(c *stripe.Config) { c.MaxRetries = 6; c.OnRetry = log.add })
	if _, err := c.Get(context.Background(), "/v1/customers/cus_1", nil); err != nil {
		t.Fatal(err)
	}
	// Jitter fixed at 0.5: backoff is ¾ of 500ms·2^(n-1).
	want := []stripe.Retry{
		{Attempt: 2, Delay: 375 * time.Millisecond, StatusCode: 503, Reason: "503 Service Unavailable", RequestID: "req_1"},
		{Attempt: 3, Delay: 3 * time.Second, StatusCode: 429, Reason: "429 Too Many Requests (rate_limit)", RequestID: "req_2"},
		{Attempt: 4, Delay: 1500 * time.Millisecond, Reason: "unexpected EOF", RequestID: "req_3"},
		{Attempt: 5, Delay: 3 * time.Second, StatusCode: 409, Reason: "409 Conflict (lock_timeout)", RequestID: "req_4"},
	}
	for i := range want {
		want[i].Method, want[i].Path, want[i].MaxAttempts, want[i].Base = "GET", "/v1/customers/cus_1", 7, fs.URL
	}
	got := log.all()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("retries seen (-want +got):\n%s", diff)
	}
	// Each retry is announced before its wait, with the wait it then makes.
	for _, r := range got {
		if !containsDuration(clk.slept(), r.Delay) {
			t.Errorf("retry %d announced a %v wait the client did not make (sleeps %v)", r.Attempt, r.Delay, clk.slept())
		}
	}
	if got, want := got[0].String(), "GET /v1/customers/cus_1: 503 Service Unavailable; retrying, attempt 2 of 7 in 380ms"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
}

// TestUnreachedBaseGivesUpSooner: while no request has had an answer, a
// network error is retried UnreachedRetries times, each retry saying the
// base cannot be reached; a base that has answered gets MaxRetries.
func TestUnreachedBaseGivesUpSooner(t *testing.T) {
	base := closedBase(t)
	var log retryLog
	c, clk := newClient(t, base, func(c *stripe.Config) { c.OnRetry = log.add })
	_, err := c.Get(context.Background(), "/v1/account", nil)
	if !errors.Is(err, stripe.ErrNetwork) {
		t.Fatalf("err = %v, want ErrNetwork", err)
	}
	if want := fmt.Sprintf("cannot reach Stripe at %s: connection refused — check the API base URL (api_base) and the network (6 attempts)", base); err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	got := log.all()
	if len(got) != stripe.DefaultUnreachedRetries {
		t.Fatalf("saw %d retries, want %d", len(got), stripe.DefaultUnreachedRetries)
	}
	var waited time.Duration
	for i, r := range got {
		if r.Attempt != i+2 || r.MaxAttempts != 6 || !r.Unreached || r.Reason != "connection refused" || r.StatusCode != 0 {
			t.Errorf("retry %d = %+v, want attempt %d of 6, unreached, connection refused", i, r, i+2)
		}
		waited += r.Delay
	}
	if want := fmt.Sprintf("cannot reach %s (connection refused); retrying GET /v1/account, attempt 2 of 6 in 380ms", base); got[0].String() != want {
		t.Errorf("line = %q, want %q", got[0].String(), want)
	}
	// 0.375+0.75+1.5+3+6 s with the jitter fixed at 0.5.
	if waited != 11625*time.Millisecond {
		t.Errorf("backoff before giving up = %v, want 11.625s", waited)
	}
	if len(clk.slept()) == 0 {
		t.Error("no backoff was made")
	}
	// The next request of that client fails at once: the base had its
	// chance.
	_, err = c.Get(context.Background(), "/v1/events", nil)
	var se *stripe.Error
	if !errors.As(err, &se) || se.Attempts != 1 || len(log.all()) != stripe.DefaultUnreachedRetries {
		t.Errorf("request after giving up: %v, %d retries seen; want one attempt and no retry", err, len(log.all())-stripe.DefaultUnreachedRetries)
	}

	// Once the base has answered, a broken connection is a blip: the full
	// MaxRetries apply and the retries do not say "cannot reach".
	fs := newFaultServer(t, respond(200, `{"id":"acct_1"}`), dropConn)
	var log2 retryLog
	c, _ = newClient(t, fs.URL, func(c *stripe.Config) { c.OnRetry = log2.add })
	if _, err := c.Get(context.Background(), "/v1/account", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "/v1/account", nil); !errors.Is(err, stripe.ErrNetwork) {
		t.Fatalf("err = %v, want ErrNetwork", err)
	}
	got = log2.all()
	if len(got) != stripe.DefaultMaxRetries {
		t.Fatalf("saw %d retries after an answer, want %d", len(got), stripe.DefaultMaxRetries)
	}
	for _, r := range got {
		if r.Unreached || r.MaxAttempts != stripe.DefaultMaxRetries+1 || strings.Contains(r.String(), "cannot reach") {
			t.Errorf("retry after an answer = %+v (%s), want reached, of %d", r, r, stripe.DefaultMaxRetries+1)
		}
	}
}

// TestNoRetryNoObserver: what is not retried is not announced.
func TestNoRetryNoObserver(t *testing.T) {
	fs := newFaultServer(t, respond(400, stripeErr("invalid_request_error", "parameter_unknown", "x", "Received unknown parameter: x")))
	var log retryLog
	c, _ := newClient(t, fs.URL, func(c *stripe.Config) { c.OnRetry = log.add })
	if _, err := c.Get(context.Background(), "/v1/customers", nil); !errors.Is(err, stripe.ErrInvalidRequest) {
		t.Fatalf("err = %v, want ErrInvalidRequest", err)
	}
	if got := log.all(); len(got) != 0 {
		t.Errorf("a 400 was announced as retried: %v", got)
	}
}
