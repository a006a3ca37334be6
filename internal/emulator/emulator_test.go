package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

var (
	sharedOnce sync.Once
	shared     *Emulator
	sharedErr  error
)

// sharedEmulator is a 20k-object account of the small-streams shape (every
// top-level list holds objects) the read-only tests share.
func sharedEmulator(t *testing.T) *Emulator {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = New(Config{Seed: 42, Objects: 20000, Shape: ShapeSmallStreams, Now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func small(t *testing.T, cfg Config) *Emulator {
	t.Helper()
	if cfg.Objects == 0 {
		cfg.Objects = 1500
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) get(path string) gjson.Result { return gjson.GetBytes(r.body, path) }

// call sends one request; body values are form-encoded; hdr pairs are headers.
func call(e *Emulator, method, path string, form url.Values, hdr ...string) reply {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.Header.Set("Authorization", "Bearer sk_test_emulator1234")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return reply{w.Code, w.Header(), w.Body.Bytes()}
}

func mustOK(t *testing.T, r reply) reply {
	t.Helper()
	if r.code != 200 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	return r
}

func ids(r reply) []string {
	var out []string
	for _, x := range r.get("data").Array() {
		out = append(out, x.Get("id").Str)
	}
	return out
}

// listURL is the list path of a stream for one parent (or none).
func listURL(d *streamDef, parent string) string {
	if d.parent == "" {
		return d.path
	}
	if d.parentInQuery {
		return d.path + "?" + d.parentParam + "=" + parent
	}
	return replaceParam(d.path, parent)
}

func withQuery(u string, kv ...string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return u + sep + v.Encode()
}

// listings are the lists that together hold every object of a stream: one
// per parent for children, plus test-clock and all-status variants.
func listings(e *Emulator, account string, d *streamDef) []string {
	if d.parent != "" {
		var out []string
		for _, p := range e.Objects(account, d.parent) {
			out = append(out, listURL(d, gjson.GetBytes(p, "id").Str))
		}
		return out
	}
	base := d.path
	if s, ok := catalog.Lookup(d.name); ok {
		for k, v := range s.ListParams {
			base = withQuery(base, k, v)
		}
	}
	out := []string{base}
	if d.testClock {
		for _, c := range e.Objects(account, "test_helpers_test_clocks") {
			out = append(out, withQuery(base, "test_clock", gjson.GetBytes(c, "id").Str))
		}
	}
	return out
}

// pageAll pages forward with starting_after and returns the ids in order.
func pageAll(t *testing.T, e *Emulator, u string, extra ...string) []string {
	t.Helper()
	var out []string
	after := ""
	for i := 0; ; i++ {
		kv := append([]string{"limit", "100"}, extra...)
		if unpaginatedURL(u) {
			kv = extra
		}
		if after != "" {
			kv = append(kv, "starting_after", after)
		}
		r := mustOK(t, call(e, "GET", withQuery(u, kv...), nil))
		page := ids(r)
		out = append(out, page...)
		if !r.get("has_more").Bool() {
			return out
		}
		if len(page) == 0 {
			t.Fatalf("%s: has_more with an empty page", u)
		}
		after = page[len(page)-1]
		if i > 100000 {
			t.Fatal("paging does not end")
		}
	}
}

// unpaginatedURL reports whether u lists a stream that takes no limit.
func unpaginatedURL(u string) bool {
	path, _, _ := strings.Cut(u, "?")
	for _, d := range defs {
		if d.unpaginated && d.path == path {
			return true
		}
	}
	return false
}

func exactlyOnce(t *testing.T, what string, got []string, want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("%s: %s listed twice", what, id)
		}
		seen[id] = true
		if !want[id] {
			t.Errorf("%s: %s listed but not an object of the stream", what, id)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s: %s never listed", what, id)
		}
	}
}

func objectIDs(e *Emulator, account, stream string) map[string]bool {
	out := map[string]bool{}
	for _, o := range e.Objects(account, stream) {
		out[gjson.GetBytes(o, "id").Str] = true
	}
	return out
}

func TestPagingYieldsEveryObjectOnce(t *testing.T) {
	e := sharedEmulator(t)
	for _, d := range defs {
		t.Run(d.name, func(t *testing.T) {
			want := objectIDs(e, "", d.name)
			if len(want) == 0 {
				t.Fatalf("stream %s is empty", d.name)
			}
			var fwd, back []string
			for _, u := range listings(e, "", d) {
				got := pageAll(t, e, u)
				fwd = append(fwd, got...)
				if len(got) == 0 {
					continue
				}
				if d.unpaginated {
					back = append(back, got...)
					continue
				}
				// Backwards from the oldest with ending_before.
				back = append(back, got[len(got)-1])
				before := got[len(got)-1]
				for {
					r := mustOK(t, call(e, "GET", withQuery(u, "limit", "100", "ending_before", before), nil))
					page := ids(r)
					back = append(back, page...)
					if !r.get("has_more").Bool() || len(page) == 0 {
						break
					}
					before = page[0]
				}
			}
			exactlyOnce(t, d.name+" forward", fwd, want)
			exactlyOnce(t, d.name+" backward", back, want)
			// Newest first, ties by id.
			if d.parent == "" {
				got := pageAll(t, e, listings(e, "", d)[0])
				objs := map[string]int64{}
				for _, o := range e.Objects("", d.name) {
					objs[gjson.GetBytes(o, "id").Str] = createdOf(o, d)
				}
				for i := 1; i < len(got); i++ {
					a, b := objs[got[i-1]], objs[got[i]]
					if a < b || a == b && got[i-1] < got[i] {
						t.Fatalf("%s not newest first at %d: %s(%d) before %s(%d)", d.name, i, got[i-1], a, got[i], b)
					}
				}
			}
		})
	}
}

func createdOf(o []byte, d *streamDef) int64 {
	if d.name == "invoiceitems" {
		return gjson.GetBytes(o, "date").Int()
	}
	return gjson.GetBytes(o, "created").Int()
}

func TestCreatedSlicesPartitionEveryStream(t *testing.T) {
	e := sharedEmulator(t)
	for _, d := range defs {
		if !d.created || d.parent != "" {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			want := objectIDs(e, "", d.name)
			var lo, hi int64 = 1 << 62, 0
			for _, o := range e.Objects("", d.name) {
				c := createdOf(o, d)
				lo, hi = min(lo, c), max(hi, c)
			}
			var got []string
			step := (hi-lo)/7 + 1
			for _, u := range listings(e, "", d) {
				for s := lo; s <= hi; s += step {
					got = append(got, pageAll(t, e, u, "created[gte]", fmt.Sprint(s), "created[lt]", fmt.Sprint(s+step))...)
				}
			}
			exactlyOnce(t, d.name+" created slices", got, want)
		})
	}
}

func TestEmbeddedListsContinueInTheirEndpoint(t *testing.T) {
	e := sharedEmulator(t)
	long := 0
	for _, inv := range e.Objects("", "invoices") {
		lines := gjson.GetBytes(inv, "lines")
		id := gjson.GetBytes(inv, "id").Str
		if !lines.Get("has_more").Bool() {
			continue
		}
		long++
		first := lines.Get("data").Array()
		if len(first) != 10 {
			t.Fatalf("%s embeds %d lines with has_more", id, len(first))
		}
		rest := pageAll(t, e, lines.Get("url").Str, "starting_after", first[9].Get("id").Str)
		all := pageAll(t, e, "/v1/invoices/"+id+"/lines")
		var embedded []string
		for _, l := range first {
			embedded = append(embedded, l.Get("id").Str)
		}
		if got := append(embedded, rest...); strings.Join(got, ",") != strings.Join(all, ",") {
			t.Fatalf("%s: embedded+rest %v != lines %v", id, got, all)
		}
	}
	if long == 0 {
		t.Fatal("no invoice has more than 10 lines")
	}
}

func TestListErrorsInStripeShape(t *testing.T) {
	e := sharedEmulator(t)
	some := ids(mustOK(t, call(e, "GET", "/v1/customers", nil)))[0]
	cases := []struct {
		path  string
		code  int
		param string
		ecode string
	}{
		{"/v1/customers?limit=0", 400, "limit", ""},
		{"/v1/customers?limit=101", 400, "limit", ""},
		{"/v1/customers?starting_after=" + some + "&ending_before=" + some, 400, "ending_before", ""},
		{"/v1/customers?starting_after=cus_nope", 400, "starting_after", "resource_missing"},
		{"/v1/customers?colour=red", 400, "colour", "parameter_unknown"},
		{"/v1/payment_methods?created[gte]=1", 400, "created[gte]", "parameter_unknown"},
		{"/v1/customers?created[gte]=abc", 400, "created[gte]", ""},
		{"/v1/customers/cus_nope", 404, "id", "resource_missing"},
		{"/v1/invoices/in_nope/lines", 404, "invoice", "resource_missing"},
		{"/v1/subscription_items", 400, "subscription", ""},
		{"/v1/nothing_here", 404, "", ""},
	}
	for _, c := range cases {
		r := call(e, "GET", c.path, nil)
		if r.code != c.code || r.get("error.param").Str != c.param || r.get("error.code").Str != c.ecode || r.get("error.type").Str != "invalid_request_error" || r.get("error.message").Str == "" {
			t.Errorf("%s: %d %s", c.path, r.code, r.body)
		}
		if !strings.HasPrefix(r.header.Get("Request-Id"), "req_") {
			t.Errorf("%s: no Request-Id", c.path)
		}
	}
	r := mustOK(t, call(e, "GET", "/v1/customers/"+some+"?expand[]=default_source", nil))
	if r.get("id").Str != some {
		t.Fatalf("retrieve: %s", r.body)
	}
}

func TestCanceledAndTestClockObjectsAreHidden(t *testing.T) {
	e := sharedEmulator(t)
	plain := pageAll(t, e, "/v1/subscriptions")
	all := pageAll(t, e, "/v1/subscriptions", "status", "all")
	canceled := pageAll(t, e, "/v1/subscriptions", "status", "canceled")
	if len(canceled) == 0 || len(plain) >= len(all) {
		t.Fatalf("plain %d, all %d, canceled %d", len(plain), len(all), len(canceled))
	}
	for _, id := range plain {
		r := mustOK(t, call(e, "GET", "/v1/subscriptions/"+id, nil))
		if s := r.get("status").Str; s == "canceled" || s == "incomplete_expired" {
			t.Fatalf("plain list shows %s subscription %s", s, id)
		}
	}
	clocks := ids(mustOK(t, call(e, "GET", "/v1/test_helpers/test_clocks", nil)))
	if len(clocks) != 2 {
		t.Fatalf("clocks %v", clocks)
	}
	under := pageAll(t, e, "/v1/customers", "test_clock", clocks[0])
	if len(under) == 0 {
		t.Fatal("no customer under a test clock")
	}
	plainCust := map[string]bool{}
	for _, id := range pageAll(t, e, "/v1/customers") {
		plainCust[id] = true
	}
	for _, id := range under {
		if plainCust[id] {
			t.Fatalf("test-clock customer %s in the plain list", id)
		}
	}
}

func TestAuthErrors(t *testing.T) {
	e := small(t, Config{Seed: 2, Restricted: map[string][]string{"rk_test_cust": {"rak_customer_read"}}})
	r := call(e, "GET", "/v1/customers", nil, "Authorization", "")
	if r.code != 401 || !strings.Contains(r.get("error.message").Str, "did not provide an API key") {
		t.Fatalf("no key: %d %s", r.code, r.body)
	}
	r = call(e, "GET", "/v1/customers", nil, "Authorization", "Bearer pk_test_abcdefgh1234")
	if r.code != 401 || r.get("error.message").Str != "Invalid API Key provided: pk_test_****1234" {
		t.Fatalf("bad key: %d %s", r.code, r.body)
	}
	r = call(e, "GET", "/v1/customers", nil, "Authorization", "Bearer rk_test_cust")
	mustOK(t, r)
	r = call(e, "GET", "/v1/charges", nil, "Authorization", "Bearer rk_test_cust")
	want := fmt.Sprintf("The provided key 'rk_test_****cust' does not have the required permissions for this endpoint on account '%s'. Having the 'rak_charge_read' permission would allow this request to continue.", e.MainAccountID())
	if r.code != 403 || r.get("error.message").Str != want {
		t.Fatalf("restricted: %d %s", r.code, r.body)
	}
	r = call(e, "POST", "/v1/customers", url.Values{"name": {"x"}}, "Authorization", "Bearer rk_test_cust")
	if r.code != 403 || !strings.Contains(r.get("error.message").Str, "rak_customer_write") {
		t.Fatalf("restricted write: %d %s", r.code, r.body)
	}
	r = call(e, "GET", "/v1/customers", nil, "Stripe-Account", "acct_doesnotexist")
	if r.code != 403 || !strings.Contains(r.get("error.message").Str, "acct_doesnotexist") || strings.Contains(string(r.body), "emulator1234") {
		t.Fatalf("unknown account: %d %s", r.code, r.body)
	}
}

func TestConnectedAccountsHaveTheirOwnData(t *testing.T) {
	e := small(t, Config{Seed: 3, ConnectedAccounts: 2})
	accts := e.Accounts()
	if len(accts) != 3 || accts[0] != "" {
		t.Fatalf("accounts %v", accts)
	}
	main := objectIDs(e, "", "customers")
	got := pageAll(t, e, "/v1/customers", "test_clock", "")
	_ = got
	r := mustOK(t, call(e, "GET", "/v1/customers?limit=100", nil, "Stripe-Account", accts[1]))
	for _, id := range ids(r) {
		if main[id] {
			t.Fatalf("connected account lists main customer %s", id)
		}
	}
	if len(ids(r)) == 0 {
		t.Fatal("connected account has no customers")
	}
	ev := mustOK(t, call(e, "GET", "/v1/events?limit=1", nil, "Stripe-Account", accts[1]))
	if ev.get("data.0.account").Str != accts[1] {
		t.Fatalf("connected event %s", ev.body)
	}
	acct := mustOK(t, call(e, "GET", "/v1/account", nil, "Stripe-Account", accts[2]))
	if acct.get("id").Str != accts[2] {
		t.Fatalf("account %s", acct.body)
	}
}

func TestDeterministic(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := small(t, Config{Seed: 9, Objects: 800, Now: now})
	b := small(t, Config{Seed: 9, Objects: 800, Now: now})
	for _, d := range defs {
		x, _ := json.Marshal(a.Objects("", d.name))
		y, _ := json.Marshal(b.Objects("", d.name))
		if string(x) != string(y) {
			t.Fatalf("%s differs between runs with one seed", d.name)
		}
	}
	c := small(t, Config{Seed: 10, Objects: 800, Now: now})
	x, _ := json.Marshal(a.Objects("", "customers"))
	y, _ := json.Marshal(c.Objects("", "customers"))
	if string(x) == string(y) {
		t.Fatal("seeds 9 and 10 make the same customers")
	}
}

// TestNothingIsCreatedInTheFuture: every object and event of a generated
// account was created at or before the clock (an incremental sync's events
// cursor relies on it).
func TestNothingIsCreatedInTheFuture(t *testing.T) {
	now := time.Unix(1790000000, 0)
	e, err := New(Config{Seed: 42, Objects: 100000, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, acct := range e.Accounts() {
		for stream := range e.Counts(acct) {
			for _, o := range e.Objects(acct, stream) {
				var v struct {
					ID      string `json:"id"`
					Created int64  `json:"created"`
				}
				if err := json.Unmarshal(o, &v); err != nil {
					t.Fatal(err)
				}
				if v.Created > now.Unix()+5 {
					t.Fatalf("%s %s created %d, after the clock %d", stream, v.ID, v.Created, now.Unix())
				}
			}
		}
	}
}
