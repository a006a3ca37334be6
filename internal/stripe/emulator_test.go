package stripe_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/stripe"
)

// These tests run the client against the stateful emulator with its fault
// knobs turned on: rate limits, injected 500s and dropped connections.

// serveEmulator starts an emulator account behind a loopback HTTP server.
func serveEmulator(t *testing.T, cfg emulator.Config) (*emulator.Emulator, string) {
	t.Helper()
	if cfg.Objects == 0 {
		cfg.Objects = 300
	}
	if cfg.ConnectedAccounts == 0 {
		cfg.ConnectedAccounts = -1
	}
	e, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv.URL
}

// emulatorClient is a client that paces far above the emulator's limits, so
// the emulator's 429s decide the rate, and backs off briefly so the test is
// quick. Keep-alives are off so every dropped connection reaches the client
// as a network error (net/http silently resends a request whose reused
// connection closed).
func emulatorClient(t *testing.T, base string, key stripe.Secret) *stripe.Client {
	t.Helper()
	c, err := stripe.New(stripe.Config{
		Key:         key,
		APIBase:     base,
		GlobalRPS:   1000,
		EndpointRPS: 1000,
		MaxRetries:  100,
		MaxBackoff:  20 * time.Millisecond,
		HTTPClient:  &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func idsOf(t *testing.T, objs []json.RawMessage) []string {
	t.Helper()
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		id := gjson.GetBytes(o, "id").Str
		if id == "" {
			t.Fatalf("object without id: %s", o)
		}
		out = append(out, id)
	}
	return out
}

// TestEachSurvivesEmulatorFaults pages a 2,000-object stream through rate
// limits, injected 500s and dropped connections: every object arrives
// exactly once, and every failure the emulator produced was seen and
// retried by the client.
func TestEachSurvivesEmulatorFaults(t *testing.T) {
	cases := []struct {
		name             string
		rps, endpointRPS float64
		limit            string
	}{
		// Without a rate limit the run is deterministic (sequential
		// requests, seeded faults); small pages make ~250 requests.
		{name: "faults", limit: "10"},
		{name: "rps", rps: 5, limit: "100"},
		{name: "endpoint_rps", endpointRPS: 5, limit: "100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, base := serveEmulator(t, emulator.Config{Seed: 11})
			if err := e.Mutate("", "products", 2000-len(e.Objects("", "products")), 0, 0); err != nil {
				t.Fatal(err)
			}
			want := idsOf(t, e.Objects("", "products"))
			if len(want) != 2000 {
				t.Fatalf("the account has %d products, want 2000", len(want))
			}
			e.SetFaults(0, tc.rps, tc.endpointRPS, 0.2, 0.05)
			e.ResetStats()

			c := emulatorClient(t, base, "sk_test_emulatorfaults0001")
			seen := map[string]int{}
			var got []string
			err := c.Each(context.Background(), "/v1/products", url.Values{"limit": {tc.limit}}, func(obj json.RawMessage) error {
				id := gjson.GetBytes(obj, "id").Str
				seen[id]++
				got = append(got, id)
				return nil
			})
			if err != nil {
				t.Fatalf("Each: %v", err)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s listed %d times", id, n)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("listed %d products, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("product %d is %s, want %s (newest first)", i, got[i], want[i])
				}
			}

			cs, es := c.Stats(), e.Stats()
			t.Logf("client %+v; emulator requests %d, 429 %d, 5xx %d, dropped %d", cs, es.Requests, es.RateLimited, es.ServerErrors, es.Dropped)
			if cs.Requests != es.Requests || cs.RateLimited != es.RateLimited || cs.ServerErrors != es.ServerErrors || cs.NetworkErrors != es.Dropped {
				t.Errorf("the client saw requests %d, 429 %d, 5xx %d, network errors %d; the emulator answered %d, 429 %d, 5xx %d, dropped %d",
					cs.Requests, cs.RateLimited, cs.ServerErrors, cs.NetworkErrors, es.Requests, es.RateLimited, es.ServerErrors, es.Dropped)
			}
			// The run succeeded, so each failed attempt was followed by
			// exactly one retry.
			if failed := cs.RateLimited + cs.ServerErrors + cs.NetworkErrors; cs.Retries != failed {
				t.Errorf("%d retries for %d failed attempts", cs.Retries, failed)
			}
			if tc.rps > 0 || tc.endpointRPS > 0 {
				if cs.RateLimited == 0 {
					t.Error("no 429s: the client never outpaced the emulator's limit")
				}
			} else if cs.ServerErrors == 0 || cs.NetworkErrors == 0 {
				t.Errorf("faults not exercised: %d 500s, %d dropped connections", cs.ServerErrors, cs.NetworkErrors)
			}
		})
	}
}

// TestCreateRetriedWithOneIdempotencyKey creates customers while the
// emulator fails and drops requests. An injected 500 on a POST with an
// idempotency key loses the answer of a create that ran, so a client that
// retried with a new key would create twice; each customer must exist once.
func TestCreateRetriedWithOneIdempotencyKey(t *testing.T) {
	e, base := serveEmulator(t, emulator.Config{Seed: 12, FailRate: 0.3, DropRate: 0.1})
	c := emulatorClient(t, base, "sk_test_emulatoridem00001")
	const n = 30
	replayed := 0
	created := map[string]string{} // email → id
	for i := range n {
		email := fmt.Sprintf("idem-%02d@example.com", i)
		res, err := c.Do(context.Background(), &stripe.Request{
			Method: "POST", Path: "/v1/customers",
			Body: url.Values{"email": {email}, "metadata[test]": {"idempotency"}},
		})
		if err != nil {
			t.Fatalf("create %s: %v", email, err)
		}
		if res.Replayed {
			replayed++
		}
		created[email] = gjson.GetBytes(res.Body, "id").Str
	}
	count := map[string]int{}
	for _, obj := range e.Objects("", "customers") {
		if gjson.GetBytes(obj, "metadata.test").Str != "idempotency" {
			continue
		}
		email := gjson.GetBytes(obj, "email").Str
		count[email]++
		if id := gjson.GetBytes(obj, "id").Str; created[email] != id {
			t.Errorf("%s: the emulator holds %s, the client got %s", email, id, created[email])
		}
	}
	if len(count) != n {
		t.Errorf("%d customers created, want %d", len(count), n)
	}
	for email, k := range count {
		if k != 1 {
			t.Errorf("%s created %d times", email, k)
		}
	}
	st, es := c.Stats(), e.Stats()
	if st.ServerErrors == 0 || st.NetworkErrors == 0 || replayed == 0 {
		t.Errorf("faults not exercised: %d 500s, %d dropped, %d replayed answers", st.ServerErrors, st.NetworkErrors, replayed)
	}
	if st.ServerErrors != es.ServerErrors || st.NetworkErrors != es.Dropped {
		t.Errorf("client saw %d 500s and %d network errors; the emulator sent %d and dropped %d", st.ServerErrors, st.NetworkErrors, es.ServerErrors, es.Dropped)
	}
}

// TestRestrictedKeyPermissionError reads with a restricted key granted
// only customers: other streams fail with ErrPermission naming the missing
// permission, without retries and without the key.
func TestRestrictedKeyPermissionError(t *testing.T) {
	const key = stripe.Secret("rk_test_onlycustomersread01")
	_, base := serveEmulator(t, emulator.Config{Seed: 13, Restricted: map[string][]string{string(key): {"rak_customer_read"}}})
	c := emulatorClient(t, base, key)
	if _, err := c.ListPage(context.Background(), "/v1/customers", url.Values{"limit": {"3"}}); err != nil {
		t.Fatalf("customers with rak_customer_read: %v", err)
	}
	_, err := c.ListPage(context.Background(), "/v1/charges", url.Values{"limit": {"3"}})
	var se *stripe.Error
	if !errors.Is(err, stripe.ErrPermission) || !errors.As(err, &se) {
		t.Fatalf("charges: %v, want ErrPermission", err)
	}
	if se.Permission != "rak_charge_read" || se.StatusCode != 403 || se.Attempts != 1 {
		t.Errorf("permission %q, status %d, attempts %d", se.Permission, se.StatusCode, se.Attempts)
	}
	msg := err.Error()
	if !strings.Contains(msg, "rak_charge_read") || !strings.Contains(msg, "GET /v1/charges") || strings.Contains(msg, key.Reveal()) {
		t.Errorf("message %q: want the permission and request, never the key", msg)
	}
}

// TestBadKeyAuthenticationError sends a key the emulator rejects: one
// attempt, ErrAuthentication, and a message with the key redacted.
func TestBadKeyAuthenticationError(t *testing.T) {
	const key = stripe.Secret("sk_test_not-a-real-key-9f8e7d")
	_, base := serveEmulator(t, emulator.Config{Seed: 14})
	c := emulatorClient(t, base, key)
	_, err := c.Get(context.Background(), "/v1/customers", nil)
	var se *stripe.Error
	if !errors.Is(err, stripe.ErrAuthentication) || !errors.As(err, &se) {
		t.Fatalf("got %v, want ErrAuthentication", err)
	}
	if se.StatusCode != 401 || se.Attempts != 1 || c.Stats().Retries != 0 {
		t.Errorf("status %d after %d attempts, %d retries", se.StatusCode, se.Attempts, c.Stats().Retries)
	}
	msg := err.Error()
	if strings.Contains(msg, key.Reveal()) || strings.Contains(msg, "not-a-real-key") || !strings.Contains(msg, key.String()) {
		t.Errorf("message %q: want the key redacted as %s", msg, key)
	}
}
