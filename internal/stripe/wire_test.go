package stripe_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/stripeline/stripeline/internal/stripe"
)

// wireAttempt is what the wire server saw of one request.
type wireAttempt struct {
	contentLength    int64
	lengthHeader     string
	transferEncoding []string
	form             url.Values
	bodyLen          int
	idempotencyKey   string
}

// TestPostBodyHasContentLength checks at the wire that a POST body goes out
// with Content-Length and without chunked transfer encoding, on the first
// attempt and on every retry of the same request.
func TestPostBodyHasContentLength(t *testing.T) {
	var mu sync.Mutex
	var seen []wireAttempt
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := wireAttempt{
			contentLength:    r.ContentLength,
			lengthHeader:     r.Header.Get("Content-Length"),
			transferEncoding: r.TransferEncoding,
			idempotencyKey:   r.Header.Get("Idempotency-Key"),
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		a.form = r.PostForm
		mu.Lock()
		seen = append(seen, a)
		n := len(seen)
		mu.Unlock()
		switch n {
		case 1:
			respond(500, stripeErr("api_error", "", "", "boom"))(w, r)
		case 2:
			respond(409, stripeErr("invalid_request_error", "lock_timeout", "", "conflict"))(w, r)
		default:
			respond(200, `{"id":"cus_1","object":"customer"}`)(w, r)
		}
	}))
	defer srv.Close()
	c, _ := newClient(t, srv.URL, nil)
	body := url.Values{
		"email":               {"ann@example.com"},
		"name":                {"Ann Lée"},
		"metadata[plan]":      {"gold & more"},
		"metadata[ext]":       {"a=b"},
		"address[city]":       {"Paris"},
		"preferred_locales[]": {"fr", "en"},
	}
	if _, err := c.Do(context.Background(), &stripe.Request{Method: "POST", Path: "/v1/customers", Body: body}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("attempts = %d, want 3 (500 and 409 retried)", len(seen))
	}
	want := int64(len(body.Encode()))
	for i, a := range seen {
		if a.contentLength != want || a.lengthHeader != strconv.FormatInt(want, 10) {
			t.Errorf("attempt %d: Content-Length %q (parsed %d), want %d", i+1, a.lengthHeader, a.contentLength, want)
		}
		if len(a.transferEncoding) != 0 {
			t.Errorf("attempt %d: Transfer-Encoding %v, want none", i+1, a.transferEncoding)
		}
		for k, v := range map[string]string{"email": "ann@example.com", "name": "Ann Lée", "metadata[plan]": "gold & more", "metadata[ext]": "a=b", "address[city]": "Paris"} {
			if got := a.form.Get(k); got != v {
				t.Errorf("attempt %d: %s = %q, want %q", i+1, k, got, v)
			}
		}
		if got := a.form["preferred_locales[]"]; len(got) != 2 || got[0] != "fr" || got[1] != "en" {
			t.Errorf("attempt %d: preferred_locales[] = %v, want [fr en]", i+1, got)
		}
		if a.idempotencyKey == "" || a.idempotencyKey != seen[0].idempotencyKey {
			t.Errorf("attempt %d: Idempotency-Key %q, want the first attempt's %q", i+1, a.idempotencyKey, seen[0].idempotencyKey)
		}
	}
}

// TestBodilessRequestsAreNotChunked: a POST without parameters says
// Content-Length: 0, and a GET carries no body at all.
func TestBodilessRequestsAreNotChunked(t *testing.T) {
	var mu sync.Mutex
	var seen []wireAttempt
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, wireAttempt{contentLength: r.ContentLength, lengthHeader: r.Header.Get("Content-Length"), transferEncoding: r.TransferEncoding, bodyLen: len(b)})
		mu.Unlock()
		respond(200, `{"id":"cus_1","object":"customer"}`)(w, r)
	}))
	defer srv.Close()
	c, _ := newClient(t, srv.URL, nil)
	ctx := context.Background()
	if _, err := c.Do(ctx, &stripe.Request{Method: "POST", Path: "/v1/customers/cus_1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "/v1/customers/cus_1", url.Values{"expand[]": {"tax_ids"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("requests = %d, want 2", len(seen))
	}
	if p := seen[0]; p.lengthHeader != "0" || p.contentLength != 0 || len(p.transferEncoding) != 0 || p.bodyLen != 0 {
		t.Errorf("empty POST: Content-Length %q, Transfer-Encoding %v, %d body bytes; want Content-Length 0 and no body", p.lengthHeader, p.transferEncoding, p.bodyLen)
	}
	if g := seen[1]; g.lengthHeader != "" || len(g.transferEncoding) != 0 || g.bodyLen != 0 {
		t.Errorf("GET: Content-Length %q, Transfer-Encoding %v, %d body bytes; want no body", g.lengthHeader, g.transferEncoding, g.bodyLen)
	}
}
