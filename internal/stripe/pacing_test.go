package stripe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/stripe"
)

func TestEndpointKey(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"GET", "/v1/customers", "GET /v1/customers"},
		{"get", "/v1/customers/cus_NffrFeUfNV2Hib", "GET /v1/customers/{id}"},
		{"GET", "/v1/invoices/in_123/lines", "GET /v1/invoices/{id}/lines"},
		{"GET", "/v1/invoices/in_1MtHbELkdIwHu7ixl4OzzPMv/lines?limit=100", "GET /v1/invoices/{id}/lines"},
		{"GET", "/v1/customers/search", "GET /v1/customers/search"},
		{"GET", "/v1/checkout/sessions/cs_test_a1b2/line_items", "GET /v1/checkout/sessions/{id}/line_items"},
		{"POST", "/v1/customers/cus_1/balance_transactions/cbtxn_9", "POST /v1/customers/{id}/balance_transactions/{id}"},
		{"DELETE", "/v1/products/prod_X", "DELETE /v1/products/{id}"},
		{"GET", "/v1/products/gold-plan", "GET /v1/products/{id}"},
		{"GET", "/v1/treasury/financial_accounts/fa_1/features", "GET /v1/treasury/financial_accounts/{id}/features"},
		{"GET", "/v1/account", "GET /v1/account"},
		{"GET", "/v1/accounts/acct_1Abc/persons", "GET /v1/accounts/{id}/persons"},
	}
	for _, tt := range tests {
		if got := stripe.EndpointKey(tt.method, tt.path); got != tt.want {
			t.Errorf("EndpointKey(%s, %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

// maxInWindow returns the most times falling in any window [t, t+w).
func maxInWindow(times []time.Time, w time.Duration) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestPacingNeverExceedsBuckets(t *testing.T) {
	fs := newFaultServer(t, respond(200, `{"object":"list","data":[],"has_more":false}`))
	const globalRPS, endpointRPS = 50, 20
	c, _ := newClient(t, fs.URL, func(c *stripe.Config) { c.GlobalRPS = globalRPS; c.EndpointRPS = endpointRPS })
	var mu sync.Mutex
	var global, search []time.Time
	perEndpoint := map[string][]time.Time{}
	stripe.SetAdmitted(c, func(bucket string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		switch bucket {
		case "global":
			global = append(global, at)
		case "search":
			search = append(search, at)
		default:
			perEndpoint[bucket] = append(perEndpoint[bucket], at)
		}
	})

	paths := []string{"/v1/customers", "/v1/invoices/in_1/lines", "/v1/invoices/in_2/lines", "/v1/charges", "/v1/customers/search", "/v1/charges/search"}
	const perWorker = 30
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range perWorker {
				p := paths[(w+i)%len(paths)]
				if _, err := c.Get(context.Background(), p, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	if got, want := len(global), 8*perWorker; got != want {
		t.Fatalf("admitted %d requests, want %d", got, want)
	}
	// A bucket of R/s with burst b admits at most R + b in any second.
	if got, limit := maxInWindow(global, time.Second), globalRPS+globalRPS/10; got > limit {
		t.Errorf("global bucket admitted %d requests in one second, limit %d", got, limit)
	}
	// And the bucket did hold requests back: 240 requests at 50/s span about
	// 4.7s (less the burst). The admission stamps come from the bucket's own
	// reservations, which may round a token's time under load: allow 10 %.
	first, last := slices.MinFunc(global, time.Time.Compare), slices.MaxFunc(global, time.Time.Compare)
	if span := last.Sub(first); span < time.Duration(0.9*float64(len(global)-globalRPS/10)/globalRPS*float64(time.Second)) {
		t.Errorf("240 requests admitted within %v: the global bucket did not pace", span)
	}
	if len(perEndpoint) != 5 {
		t.Errorf("endpoints = %v, want 5 (the two invoice lines paths share one)", slices.Collect(mapKeys(perEndpoint)))
	}
	// The two search endpoints share one search bucket.
	if got, limit := maxInWindow(search, time.Second), endpointRPS+endpointRPS/10; len(search) != 80 || got > limit {
		t.Errorf("search bucket admitted %d of %d requests in one second, limit %d", got, len(search), limit)
	}
	for ep, times := range perEndpoint {
		if got, limit := maxInWindow(times, time.Second), endpointRPS+endpointRPS/10; got > limit {
			t.Errorf("endpoint %s admitted %d requests in one second, limit %d", ep, got, limit)
		}
	}
	if got := len(fs.requests()); got != 8*perWorker {
		t.Errorf("server saw %d requests, want %d", got, 8*perWorker)
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestRetriesArePaced(t *testing.T) {
	fs := newFaultServer(t, respond(500, stripeErr("api_error", "", "", "boom")))
	c, _ := newClient(t, fs.URL, func(c *stripe.Config) { c.MaxRetries = 4 })
	n := 0
	stripe.SetAdmitted(c, func(bucket string, _ time.Time) {
		if bucket == "global" {
			n++
		}
	})
	c.Get(context.Background(), "/v1/charges", nil)
	if n != 5 {
		t.Errorf("paced %d attempts, want 5 (every retry waits on the buckets)", n)
	}
}

func TestSecretNeverPrintsInFull(t *testing.T) {
	key := stripe.Secret("sk_live_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789wxyz")
	const redacted = "sk_live_…wxyz"
	type holder struct {
		Name string
		Key  stripe.Secret
	}
	h := holder{"x", key}
	var outs []string
	for _, f := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%d", "%10s"} {
		outs = append(outs, fmt.Sprintf(f, key), fmt.Sprintf(f, h), fmt.Sprintf(f, &h))
	}
	outs = append(outs, fmt.Sprint(key), fmt.Sprintln(key), key.String(), key.GoString())
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "key", key, "h", h)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", key, slog.Any("any", key))
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, key.Reveal()) || strings.Contains(o, "0123456789") {
			t.Errorf("output leaks the key: %s", o)
		}
	}
	if got := key.String(); got != redacted {
		t.Errorf("String() = %q, want %q", got, redacted)
	}
	if !strings.Contains(string(js), `"Key":"`+redacted+`"`) {
		t.Errorf("JSON = %s, want the redacted key", js)
	}
	if key.Mode() != "live" || key.Kind() != "secret" {
		t.Errorf("mode/kind = %s/%s, want live/secret", key.Mode(), key.Kind())
	}
	if rk := stripe.Secret("rk_test_abc"); rk.Mode() != "test" || rk.Kind() != "restricted" || rk.String() != "rk_test_…" {
		t.Errorf("rk_test key: mode %s kind %s string %s", rk.Mode(), rk.Kind(), rk)
	}
}

func TestParsePageSplitsObjects(t *testing.T) {
	body := []byte(`{"object":"list","url":"/v1/invoices","has_more":true,"data":[` +
		`{"id":"in_1","lines":{"data":[{"id":"il_1"}],"has_more":false},"note":"a \"quoted\" ]"},` +
		` {"id":"in_2","amount":12,"nested":[[1,2],{"x":[]}]} ,{"id":"in_3"}]}`)
	p, err := stripe.ParsePage(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"id":"in_1","lines":{"data":[{"id":"il_1"}],"has_more":false},"note":"a \"quoted\" ]"}`,
		`{"id":"in_2","amount":12,"nested":[[1,2],{"x":[]}]}`,
		`{"id":"in_3"}`,
	}
	var got []string
	for _, o := range p.Data {
		got = append(got, string(o))
		if !json.Valid(o) {
			t.Errorf("object %s is not valid JSON", o)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("data = %q, want %q", got, want)
	}
	if !p.HasMore || p.URL != "/v1/invoices" || p.NextPage != "" {
		t.Errorf("page = has_more %v url %q next %q", p.HasMore, p.URL, p.NextPage)
	}
	// Objects alias the body rather than copying it.
	if &p.Data[2][0] != &body[bytes.Index(body, []byte(`{"id":"in_3"}`))] {
		t.Error("objects are copies, want sub-slices of the body")
	}
	for _, bad := range []string{`{"data":`, `{"object":"customer"}`, `not json`, `{"data":[{"id":"a"},{"id":`, `{"data":[{"id":"a"},{"id":"b"}`, `{"data":[1,2]}`} {
		if _, err := stripe.ParsePage([]byte(bad)); err == nil {
			t.Errorf("ParsePage(%s) succeeded", bad)
		}
	}
}

// listServer serves n objects newest first with Stripe's list and search
// pagination.
func listServer(t *testing.T, n int) *faultServer {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cus_%04d", n-i) // newest first
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit == 0 {
			limit = 10
		}
		start := 0
		if sa := q.Get("starting_after"); sa != "" {
			start = slices.Index(ids, sa) + 1
		}
		if pg := q.Get("page"); pg != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(pg, "page_"))
		}
		end := min(start+limit, len(ids))
		var objs []string
		for _, id := range ids[start:end] {
			objs = append(objs, fmt.Sprintf(`{"id":%q,"object":"customer"}`, id))
		}
		next := "null"
		if end < len(ids) {
			next = fmt.Sprintf(`"page_%d"`, end)
		}
		respond(200, fmt.Sprintf(`{"object":"list","url":%q,"has_more":%v,"next_page":%s,"data":[%s]}`,
			r.URL.Path, end < len(ids), next, strings.Join(objs, ",")))(w, r)
	}
	return newFaultServer(t, page)
}

func TestEachPages(t *testing.T) {
	fs := listServer(t, 250)
	c, _ := newClient(t, fs.URL, nil)
	var ids []string
	err := c.Each(context.Background(), "/v1/customers", url.Values{"created[gte]": {"0"}}, func(obj json.RawMessage) error {
		var o struct{ ID string }
		if err := json.Unmarshal(obj, &o); err != nil {
			return err
		}
		ids = append(ids, o.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 250 || ids[0] != "cus_0250" || ids[249] != "cus_0001" {
		t.Errorf("got %d ids from %v to %v, want 250 from cus_0250 to cus_0001", len(ids), ids[0], ids[len(ids)-1])
	}
	reqs := fs.requests()
	if len(reqs) != 3 {
		t.Fatalf("requests = %d, want 3 pages of 100", len(reqs))
	}
	for i, wantAfter := range []string{"", "cus_0151", "cus_0051"} {
		q, _ := url.ParseQuery(reqs[i].Query)
		if q.Get("limit") != "100" || q.Get("starting_after") != wantAfter || q.Get("created[gte]") != "0" {
			t.Errorf("page %d query = %s, want limit=100 starting_after=%q created[gte]=0", i+1, reqs[i].Query, wantAfter)
		}
	}

	// fn's error stops paging.
	stop := fmt.Errorf("stop")
	n := 0
	err = c.Each(context.Background(), "/v1/customers", url.Values{"limit": {"10"}}, func(json.RawMessage) error {
		n++
		if n == 15 {
			return stop
		}
		return nil
	})
	if err != stop || n != 15 {
		t.Errorf("Each = %v after %d objects, want stop after 15", err, n)
	}
}

func TestSearchFollowsNextPage(t *testing.T) {
	fs := listServer(t, 120)
	c, _ := newClient(t, fs.URL, nil)
	var n int
	q := url.Values{"query": {"email:'a@b.c'"}}
	if err := c.Search(context.Background(), "/v1/customers/search", q, 0, func(json.RawMessage) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 120 || len(fs.requests()) != 2 {
		t.Errorf("search got %d objects in %d requests, want 120 in 2", n, len(fs.requests()))
	}
	n = 0
	if err := c.Search(context.Background(), "/v1/customers/search", q, 30, func(json.RawMessage) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 30 {
		t.Errorf("search with max 30 got %d objects", n)
	}
	if q.Get("page") != "" {
		t.Error("Search modified the caller's query")
	}
}
