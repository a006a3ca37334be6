package stripe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

const testKey = stripe.Secret("sk_test_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd")

// fakeClock is an injected clock whose sleeps return at once and move time
// forward, so backoff and pacing run instantly and deterministically.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
	// onSleep, when set, runs at each sleep (e.g. to cancel a context).
	onSleep func(d time.Duration)
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	if until := f.t.Add(d); until.After(f.t) {
		f.t = until
	}
	hook := f.onSleep
	f.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	return ctx.Err()
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func (f *fakeClock) slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// seen is one request as the fault server received it.
type seen struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// faultServer answers with its script of handlers in order, repeating the
// last one, and records every request.
type faultServer struct {
	*httptest.Server
	mu     sync.Mutex
	script []http.HandlerFunc
	reqs   []seen
}

func newFaultServer(t *testing.T, script ...http.HandlerFunc) *faultServer {
	return newFaultServerTB(t, script...)
}

func newFaultServerTB(t testing.TB, script ...http.HandlerFunc) *faultServer {
	t.Helper()
	fs := &faultServer{script: script}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fs.mu.Lock()
		n := len(fs.reqs)
		fs.reqs = append(fs.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Clone()})
		h := fs.script[min(n, len(fs.script)-1)]
		fs.mu.Unlock()
		w.Header().Set("Request-Id", fmt.Sprintf("req_%d", n+1))
		h(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *faultServer) requests() []seen {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]seen(nil), fs.reqs...)
}

func respond(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func stripeErr(typ, code, param, msg string) string {
	return fmt.Sprintf(`{"error":{"type":%q,"code":%q,"param":%q,"message":%q}}`, typ, code, param, msg)
}

// dropConn closes the connection without answering.
func dropConn(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// truncated promises a longer body than it sends, then closes.
func truncated(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(200)
	io.WriteString(w, `{"id":"cus_`)
	http.NewResponseController(w).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func newClient(t *testing.T, base string, mod func(*stripe.Config)) (*stripe.Client, *fakeClock) {
	t.Helper()
	cfg := stripe.Config{Key: testKey, APIBase: base, UserAgent: "stripeline/test"}
	if mod != nil {
		mod(&cfg)
	}
	c, err := stripe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	stripe.SetClock(c, clk.now, clk.sleep, func() float64 { return 0.5 })
	return c, clk
}

func TestRateLimitedThenSuccessHonoursRetryAfter(t *testing.T) {
	fs := newFaultServer(t,
		respond(429, stripeErr("invalid_request_error", "rate_limit", "", "Too many requests"), "Retry-After", "3"),
		respond(200, `{"id":"cus_1","object":"customer"}`),
	)
	c, clk := newClient(t, fs.URL, nil)
	body, err := c.Get(context.Background(), "/v1/customers/cus_1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(body), `{"id":"cus_1","object":"customer"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if got := len(fs.requests()); got != 2 {
		t.Errorf("requests = %d, want 2", got)
	}
	if !containsDuration(clk.slept(), 3*time.Second) {
		t.Errorf("sleeps %v do not include the Retry-After of 3s", clk.slept())
	}
	st := c.Stats()
	if st.RateLimited != 1 || st.Retries != 1 || st.Requests != 2 {
		t.Errorf("stats = %+v, want 1 rate limited, 1 retry, 2 requests", st)
	}
}

func containsDuration(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

func TestRateLimitStormLowersAndRestoresGlobalRate(t *testing.T) {
	fs := newFaultServer(t,
		respond(429, stripeErr("invalid_request_error", "rate_limit", "", "Too many requests")),
		respond(429, stripeErr("invalid_request_error", "rate_limit", "", "Too many requests")),
		respond(200, `{}`),
	)
	c, clk := newClient(t, fs.URL, func(c *stripe.Config) { c.GlobalRPS = 40 })
	if _, err := c.Get(context.Background(), "/v1/balance", nil); err != nil {
		t.Fatal(err)
	}
	// Two 429s more than a second apart (backoff 0.5s·jitter, 1s·jitter…):
	// each one halves; the rate climbs back as quiet time passes.
	if got := c.Stats().GlobalRPS; got >= 40 || got < 40.0/32 {
		t.Fatalf("global rate after a 429 storm = %v, want lowered below 40", got)
	}
	clk.advance(time.Minute)
	if _, err := c.Get(context.Background(), "/v1/balance", nil); err != nil {
		t.Fatal(err)
	}
	if got := c.Stats().GlobalRPS; got != 40 {
		t.Errorf("global rate a quiet minute later = %v, want 40", got)
	}
}

func TestShouldRetryHeader(t *testing.T) {
	tests := []struct {
		name     string
		script   []http.HandlerFunc
		wantReqs int
		wantKind error
	}{
		{"false stops a 500", []http.HandlerFunc{respond(500, stripeErr("api_error", "", "", "boom"), "Stripe-Should-Retry", "false")}, 1, stripe.ErrServer},
		{"false stops a 429", []http.HandlerFunc{respond(429, stripeErr("invalid_request_error", "lock_timeout", "", "locked"), "Stripe-Should-Retry", "false")}, 1, stripe.ErrRateLimited},
		{"true retries a 400", []http.HandlerFunc{
			respond(400, stripeErr("invalid_request_error", "", "", "try again"), "Stripe-Should-Retry", "true"),
			respond(200, `{}`),
		}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFaultServer(t, tt.script...)
			c, _ := newClient(t, fs.URL, nil)
			_, err := c.Get(context.Background(), "/v1/charges", nil)
			if tt.wantKind == nil && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			if got := len(fs.requests()); got != tt.wantReqs {
				t.Errorf("requests = %d, want %d", got, tt.wantReqs)
			}
		})
	}
}

func TestServerErrorRetriedUpToBound(t *testing.T) {
	fs := newFaultServer(t, respond(500, stripeErr("api_error", "", "", "Something went wrong")))
	c, clk := newClient(t, fs.URL, func(c *stripe.Config) { c.MaxRetries = 3; c.MaxBackoff = 4 * time.Second })
	_, err := c.Get(context.Background(), "/v1/invoices", url.Values{"limit": {"100"}})
	var se *stripe.Error
	if !errors.As(err, &se) || !errors.Is(err, stripe.ErrServer) {
		t.Fatalf("err = %v, want *Error ErrServer", err)
	}
	if got := len(fs.requests()); got != 4 {
		t.Errorf("requests = %d, want 4 (1 + 3 retries)", got)
	}
	if se.StatusCode != 500 || se.RequestID != "req_4" || se.Attempts != 4 {
		t.Errorf("error = %+v, want status 500, request req_4, 4 attempts", se)
	}
	// Exponential backoff with jitter fixed at 0.5: 0.375s, 0.75s, 1.5s
	// (endpoint and global pacing sleeps may be interleaved).
	var backoffs []time.Duration
	for _, d := range clk.slept() {
		if d >= 300*time.Millisecond {
			backoffs = append(backoffs, d)
		}
	}
	want := []time.Duration{375 * time.Millisecond, 750 * time.Millisecond, 1500 * time.Millisecond}
	if fmt.Sprint(backoffs) != fmt.Sprint(want) {
		t.Errorf("backoffs = %v, want %v", backoffs, want)
	}
	if !strings.Contains(err.Error(), "GET /v1/invoices") || !strings.Contains(err.Error(), "req_4") {
		t.Errorf("message %q should name the request and its id", err)
	}
}

func TestBackoffCapped(t *testing.T) {
	fs := newFaultServer(t, respond(503, "<html>unavailable</html>"))
	c, clk := newClient(t, fs.URL, func(c *stripe.Config) { c.MaxRetries = 8; c.MaxBackoff = 2 * time.Second })
	_, err := c.Get(context.Background(), "/v1/invoices", nil)
	if !errors.Is(err, stripe.ErrServer) {
		t.Fatalf("err = %v, want ErrServer for a non-JSON 503", err)
	}
	for _, d := range clk.slept() {
		if d > 2*time.Second {
			t.Errorf("slept %v, more than MaxBackoff 2s", d)
		}
	}
}

func TestBadRequestNotRetried(t *testing.T) {
	fs := newFaultServer(t, respond(400, stripeErr("invalid_request_error", "parameter_invalid_integer", "limit", "Invalid integer: abc")))
	c, _ := newClient(t, fs.URL, nil)
	_, err := c.Get(context.Background(), "/v1/customers", url.Values{"limit": {"abc"}})
	var se *stripe.Error
	if !errors.As(err, &se) || !errors.Is(err, stripe.ErrInvalidRequest) {
		t.Fatalf("err = %v, want ErrInvalidRequest", err)
	}
	if got := len(fs.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
	if se.Param != "limit" || !strings.Contains(err.Error(), `parameter "limit"`) {
		t.Errorf("error %q (param %q) should name the parameter limit", err, se.Param)
	}
}

func TestAuthenticationErrorHidesKey(t *testing.T) {
	// Stripe's message may quote the key; the error must not.
	fs := newFaultServer(t, respond(401, stripeErr("invalid_request_error", "", "", "Invalid API Key provided: "+testKey.Reveal())))
	c, _ := newClient(t, fs.URL, nil)
	_, err := c.Get(context.Background(), "/v1/account", nil)
	if !errors.Is(err, stripe.ErrAuthentication) {
		t.Fatalf("err = %v, want ErrAuthentication", err)
	}
	var se *stripe.Error
	errors.As(err, &se)
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", se), fmt.Sprintf("%#v", se), se.Message} {
		if strings.Contains(s, testKey.Reveal()) || strings.Contains(s, "0123456789") {
			t.Errorf("error text leaks the key: %s", s)
		}
	}
	if got, want := err.Error(), "Stripe rejected the API key sk_test_…abcd (401): check the key (api_key) (request req_1)"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if got := len(fs.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestPermissionError(t *testing.T) {
	msg := "The provided key 'rk_test_****abcd' does not have the required permissions for this endpoint on account 'acct_1'. Having the 'rak_customer_read' permission would allow this request to continue."
	fs := newFaultServer(t, respond(403, stripeErr("invalid_request_error", "", "", msg)))
	c, _ := newClient(t, fs.URL, func(c *stripe.Config) { c.Key = "rk_test_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd" })
	_, err := c.Get(context.Background(), "/v1/customers", nil)
	var se *stripe.Error
	if !errors.As(err, &se) || !errors.Is(err, stripe.ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
	if se.Permission != "rak_customer_read" {
		t.Errorf("Permission = %q, want rak_customer_read", se.Permission)
	}
	if !strings.Contains(err.Error(), "rak_customer_read") || !strings.Contains(err.Error(), "restricted key rk_test_…abcd") {
		t.Errorf("message %q should name the restricted key and the permission", err)
	}
	if errors.Is(err, stripe.ErrAuthentication) {
		t.Error("a 403 must not match ErrAuthentication")
	}
}

func TestPostRetriedWithSameIdempotencyKey(t *testing.T) {
	fs := newFaultServer(t,
		respond(500, stripeErr("api_error", "", "", "boom")),
		dropConn,
		respond(200, `{"id":"cus_new"}`, "Idempotent-Replayed", "true"),
	)
	c, _ := newClient(t, fs.URL, func(c *stripe.Config) { c.Account = "acct_platform" })
	res, err := c.Do(context.Background(), &stripe.Request{
		Method: "POST", Path: "/v1/customers",
		Body:    url.Values{"email": {"a@example.com"}, "metadata[plan]": {"gold"}},
		Account: "acct_connected",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replayed || res.RequestID != "req_3" {
		t.Errorf("response replayed=%v request=%s, want true, req_3", res.Replayed, res.RequestID)
	}
	reqs := fs.requests()
	if len(reqs) != 3 {
		t.Fatalf("requests = %d, want 3", len(reqs))
	}
	key := reqs[0].Header.Get("Idempotency-Key")
	if key == "" {
		t.Fatal("POST sent without an Idempotency-Key")
	}
	for i, r := range reqs {
		if got := r.Header.Get("Idempotency-Key"); got != key {
			t.Errorf("attempt %d Idempotency-Key = %q, want %q", i+1, got, key)
		}
		if r.Body != "email=a%40example.com&metadata%5Bplan%5D=gold" {
			t.Errorf("attempt %d body = %q", i+1, r.Body)
		}
		for h, want := range map[string]string{
			"Stripe-Account": "acct_connected",
			"Stripe-Version": catalog.SpecVersion(),
			"User-Agent":     "stripeline/test",
			"Authorization":  "Bearer " + testKey.Reveal(),
			"Content-Type":   "application/x-www-form-urlencoded",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("attempt %d %s = %q, want %q", i+1, h, got, want)
			}
		}
	}
}

func TestPostWithCallerIdempotencyKey(t *testing.T) {
	fs := newFaultServer(t, respond(409, stripeErr("invalid_request_error", "lock_timeout", "", "conflict")), respond(200, `{}`))
	c, _ := newClient(t, fs.URL, nil)
	if _, err := c.Do(context.Background(), &stripe.Request{Method: "POST", Path: "/v1/customers/cus_1", IdempotencyKey: "mine-1"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range fs.requests() {
		if got := r.Header.Get("Idempotency-Key"); got != "mine-1" {
			t.Errorf("Idempotency-Key = %q, want mine-1", got)
		}
	}
	if got := len(fs.requests()); got != 2 {
		t.Errorf("requests = %d, want 2 (409 retried)", got)
	}
}

func TestDroppedConnectionsRetried(t *testing.T) {
	fs := newFaultServer(t, dropConn, truncated, respond(200, `{"id":"cus_1"}`))
	c, _ := newClient(t, fs.URL, nil)
	body, err := c.Get(context.Background(), "/v1/customers/cus_1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"id":"cus_1"}` {
		t.Errorf("body = %s", body)
	}
	if got := c.Stats().NetworkErrors; got != 2 {
		t.Errorf("network errors = %d, want 2", got)
	}
}

func TestUnreachableBase(t *testing.T) {
	c, _ := newClient(t, "http://127.0.0.1:1", func(c *stripe.Config) { c.MaxRetries = 2 })
	_, err := c.Get(context.Background(), "/v1/account", nil)
	if !errors.Is(err, stripe.ErrNetwork) {
		t.Fatalf("err = %v, want ErrNetwork", err)
	}
	want := "cannot reach Stripe at http://127.0.0.1:1: connection refused — check the API base URL (api_base) and the network (3 attempts)"
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	fs := newFaultServer(t, respond(500, stripeErr("api_error", "", "", "boom")))
	c, clk := newClient(t, fs.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel while the client backs off after the first 500.
	clk.onSleep = func(d time.Duration) {
		if d >= 300*time.Millisecond {
			cancel()
		}
	}
	_, err := c.Get(ctx, "/v1/charges", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := len(fs.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}

	// A context already cancelled sends nothing.
	_, err = c.Get(ctx, "/v1/charges", nil)
	if !errors.Is(err, context.Canceled) || len(fs.requests()) != 1 {
		t.Errorf("err = %v after %d requests, want context.Canceled and no new request", err, len(fs.requests()))
	}
}

func TestContextCancelDuringRequest(t *testing.T) {
	started := make(chan struct{})
	fs := newFaultServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	c, _ := newClient(t, fs.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.Get(ctx, "/v1/charges", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := len(fs.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestNoRetry(t *testing.T) {
	fs := newFaultServer(t, respond(500, stripeErr("api_error", "", "", "boom")))
	c, _ := newClient(t, fs.URL, nil)
	_, err := c.Do(context.Background(), &stripe.Request{Path: "/v1/charges", NoRetry: true})
	if !errors.Is(err, stripe.ErrServer) || len(fs.requests()) != 1 {
		t.Errorf("err = %v after %d requests, want one attempt", err, len(fs.requests()))
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, k := range []stripe.Secret{"", "pk_test_123", "sk_test_", "hunter2hunter2hunter2"} {
		_, err := stripe.New(stripe.Config{Key: k})
		if err == nil {
			t.Errorf("New(%q) succeeded", k.Reveal())
			continue
		}
		if len(k) > len("sk_test_") && strings.Contains(err.Error(), k.Reveal()) {
			t.Errorf("New error %q contains the key", err)
		}
	}
}

func TestSlowAttemptTimesOutAndRetries(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	fs := newFaultServer(t, hang, respond(200, `{"id":"ch_1"}`))
	c, _ := newClient(t, fs.URL, func(c *stripe.Config) { c.Timeout = 50 * time.Millisecond })
	body, err := c.Get(context.Background(), "/v1/charges/ch_1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"id":"ch_1"}` || c.Stats().NetworkErrors != 1 {
		t.Errorf("body %s, network errors %d; want the second attempt's body after one timeout", body, c.Stats().NetworkErrors)
	}

	fs = newFaultServer(t, hang)
	c, _ = newClient(t, fs.URL, func(c *stripe.Config) { c.Timeout = 20 * time.Millisecond; c.MaxRetries = 1 })
	_, err = c.Get(context.Background(), "/v1/charges/ch_1", nil)
	if !errors.Is(err, stripe.ErrNetwork) || !strings.Contains(err.Error(), "no response within the request timeout") {
		t.Errorf("err = %v, want a network error saying the request timed out", err)
	}
}

func TestProxy(t *testing.T) {
	var mu sync.Mutex
	var proxied []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proxied = append(proxied, r.URL.String())
		mu.Unlock()
		respond(200, `{"id":"acct_1"}`)(w, r)
	}))
	defer proxy.Close()
	// The target is never dialled: the proxy answers.
	c, _ := newClient(t, "http://stripe.invalid", func(c *stripe.Config) { c.Proxy = proxy.URL })
	if _, err := c.Get(context.Background(), "/v1/account", nil); err != nil {
		t.Fatal(err)
	}
	if len(proxied) != 1 || proxied[0] != "http://stripe.invalid/v1/account" {
		t.Errorf("proxy saw %v, want one request for http://stripe.invalid/v1/account", proxied)
	}
	if _, err := stripe.New(stripe.Config{Key: testKey, Proxy: "::bad"}); err == nil {
		t.Error("New accepted a malformed proxy URL")
	}
}
