package emulator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/emulator"
)

// received is what a webhook receiver got: each body whose signature
// stripe-go's own verifier accepts, and the ones it refused.
type received struct {
	bodies chan []byte
	bad    chan error
	status func(n int) int // the answer to the n-th delivery (from 1)
	n      atomic.Int64
}

func newReceiver(t *testing.T, secret *string) (*received, *httptest.Server) {
	rc := &received{bodies: make(chan []byte, 100), bad: make(chan error, 100), status: func(int) int { return 200 }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if code := rc.status(int(rc.n.Add(1))); code != 200 {
			w.WriteHeader(code)
			return
		}
		if _, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), *secret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true}); err != nil {
			rc.bad <- err
			w.WriteHeader(400)
			return
		}
		rc.bodies <- body
	}))
	t.Cleanup(srv.Close)
	return rc, srv
}

func register(t *testing.T, e *emulator.Emulator, hookURL string, events ...string) string {
	t.Helper()
	form := url.Values{"url": {hookURL}}
	for _, ev := range events {
		form.Add("enabled_events[]", ev)
	}
	res := do(t, e, "POST", "/v1/webhook_endpoints", form)
	secret := gjson.GetBytes(res, "secret").Str
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create webhook endpoint: no secret in %s", res)
	}
	// The secret is shown once: not on retrieve or list.
	id := gjson.GetBytes(res, "id").Str
	if got := do(t, e, "GET", "/v1/webhook_endpoints/"+id, nil); gjson.GetBytes(got, "secret").Exists() {
		t.Errorf("retrieve shows the secret: %s", got)
	}
	return secret
}

func do(t *testing.T, e *emulator.Emulator, method, path string, form url.Values) []byte {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_emulator0000000000000000")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery within 10s")
	}
	var zero T
	return zero
}

func TestWebhooksAreDeliveredSigned(t *testing.T) {
	e, err := emulator.New(emulator.Config{Seed: 3, Objects: 300, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var secret string
	rc, srv := newReceiver(t, &secret)
	secret = register(t, e, srv.URL+"/hook", "customer.created", "customer.updated")

	created := do(t, e, "POST", "/v1/customers", url.Values{"email": {"hook@example.com"}})
	body := wait(t, rc.bodies)
	if gjson.GetBytes(body, "type").Str != "customer.created" || gjson.GetBytes(body, "data.object.id").Str != gjson.GetBytes(created, "id").Str {
		t.Fatalf("delivered %s", body)
	}
	// An event type the endpoint did not enable is not delivered.
	do(t, e, "POST", "/v1/products", url.Values{"name": {"Hooked"}})
	id := gjson.GetBytes(created, "id").Str
	do(t, e, "POST", "/v1/customers/"+id, url.Values{"name": {"Updated"}})
	if body := wait(t, rc.bodies); gjson.GetBytes(body, "type").Str != "customer.updated" {
		t.Fatalf("delivered %s, want customer.updated (product.created is not enabled)", gjson.GetBytes(body, "type").Str)
	}
	if len(rc.bad) > 0 {
		t.Fatalf("signature refused: %v", <-rc.bad)
	}
}

func TestWebhooksAreRetriedAndDuplicated(t *testing.T) {
	e, err := emulator.New(emulator.Config{Seed: 3, Objects: 300, ConnectedAccounts: -1,
		Webhooks: emulator.WebhookConfig{Duplicates: 1, Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var secret string
	rc, srv := newReceiver(t, &secret)
	rc.status = func(n int) int {
		if n <= 2 {
			return 503 // the first two attempts fail
		}
		return 200
	}
	secret = register(t, e, srv.URL, "*")
	do(t, e, "POST", "/v1/customers", url.Values{"email": {"dup@example.com"}})
	first, second := wait(t, rc.bodies), wait(t, rc.bodies)
	if gjson.GetBytes(first, "id").Str != gjson.GetBytes(second, "id").Str {
		t.Errorf("the duplicate is another event: %s vs %s", gjson.GetBytes(first, "id"), gjson.GetBytes(second, "id"))
	}
	// Both failures were counted before their retries were sent.
	if s := e.WebhookStats(); s.Failed != 2 || s.GaveUp != 0 {
		t.Errorf("stats %+v: want 2 failed attempts, none given up", s)
	}
}

func TestWebhookURLsStayOnThisMachine(t *testing.T) {
	e, err := emulator.New(emulator.Config{Seed: 3, Objects: 300, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	req := httptest.NewRequest("POST", "/v1/webhook_endpoints", strings.NewReader(url.Values{"url": {"https://example.com/hook"}, "enabled_events[]": {"*"}}.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_emulator0000000000000000")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != 400 || gjson.GetBytes(rec.Body.Bytes(), "error.param").Str != "url" {
		t.Fatalf("non-loopback URL: %d %s", rec.Code, rec.Body.Bytes())
	}
}

// WaitWebhooks returns once every delivery, retries included, has ended;
// OnAttempt is told of each attempt and its status; SignedAgo dates the
// signature in the past.
func TestWaitWebhooksAndOnAttempt(t *testing.T) {
	var attempts, failures atomic.Int64
	e, err := emulator.New(emulator.Config{Seed: 1, Objects: 50, ConnectedAccounts: -1, TestClocks: -1,
		Webhooks: emulator.WebhookConfig{Retries: 2, Backoff: time.Millisecond, SignedAgo: time.Hour,
			OnAttempt: func(status int, took time.Duration) {
				attempts.Add(1)
				if status != 200 {
					failures.Add(1)
				}
			}}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var stale atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts := strings.TrimPrefix(strings.Split(r.Header.Get("Stripe-Signature"), ",")[0], "t=")
		if sec, _ := strconv.ParseInt(ts, 10, 64); time.Since(time.Unix(sec, 0)) > 50*time.Minute {
			stale.Add(1)
		}
		// Some attempts fail (every other one answered so far): retries.
		if attempts.Load()%2 == 0 {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	register(t, e, srv.URL, "customer.created")
	if err := e.Mutate("", "customers", 3, 0, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.WebhookStats()
	if st.Pending != 0 || st.InFlight != 0 || st.Delivered+st.GaveUp != 3 {
		t.Errorf("after WaitWebhooks: %+v", st)
	}
	if got := attempts.Load(); got != st.Delivered+st.Failed {
		t.Errorf("OnAttempt told of %d attempts, stats count %d", got, st.Delivered+st.Failed)
	}
	if failures.Load() != st.Failed {
		t.Errorf("OnAttempt told of %d failures, stats count %d", failures.Load(), st.Failed)
	}
	if stale.Load() != attempts.Load() {
		t.Errorf("%d of %d signatures dated an hour back", stale.Load(), attempts.Load())
	}
}
