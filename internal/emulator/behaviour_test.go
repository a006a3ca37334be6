package emulator

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestRateLimitAnswersStripes429(t *testing.T) {
	e := small(t, Config{Seed: 1, Objects: 300, RPS: 5})
	limited := 0
	for i := 0; i < 40; i++ {
		r := call(e, "GET", "/v1/customers", nil)
		if r.code == 429 {
			limited++
			if r.get("error.code").Str != "rate_limit" || r.get("error.type").Str != "invalid_request_error" || r.header.Get("Stripe-Rate-Limited-Reason") != "global-rate" || r.header.Get("Retry-After") != "" {
				t.Fatalf("429 shape: %v %s", r.header, r.body)
			}
		}
	}
	// Tokens refill at 5/s; a 40-request burst can't pass in well under a second.
	if limited < 20 {
		t.Fatalf("only %d of 40 requests limited", limited)
	}
	if got := e.Stats().RateLimited; got != int64(limited) {
		t.Fatalf("stats count %d 429s, saw %d", got, limited)
	}
	// Per-endpoint limits name their reason; admin endpoints are never limited.
	e.SetFaults(0, 0, 2, 0, 0)
	var reasons []string
	for i := 0; i < 10; i++ {
		if r := call(e, "GET", "/v1/products", nil); r.code == 429 {
			reasons = append(reasons, r.header.Get("Stripe-Rate-Limited-Reason"))
		}
	}
	if len(reasons) == 0 || reasons[0] != "endpoint-rate" {
		t.Fatalf("endpoint limit reasons %v", reasons)
	}
	if r := call(e, "GET", "/v1/charges", nil); r.code != 200 {
		t.Fatalf("another endpoint limited: %d", r.code)
	}
	for i := 0; i < 20; i++ {
		if r := call(e, "GET", "/_emulator/stats", nil); r.code != 200 {
			t.Fatalf("admin limited: %d", r.code)
		}
	}
}

func TestInjectedFailuresAndDrops(t *testing.T) {
	e := small(t, Config{Seed: 1, Objects: 300, FailRate: 1})
	r := call(e, "GET", "/v1/customers", nil)
	if r.code != 500 || r.header.Get("Stripe-Should-Retry") != "true" || r.get("error.type").Str != "api_error" {
		t.Fatalf("fail: %d %v %s", r.code, r.header, r.body)
	}
	if e.Stats().ServerErrors != 1 {
		t.Fatalf("stats %+v", e.Stats())
	}
	e.SetFaults(0, 0, 0, 0, 1)
	srv := httptest.NewServer(e)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer sk_test_x123")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request answered %d", resp.StatusCode)
	}
	if e.Stats().Dropped != 1 {
		t.Fatalf("stats %+v", e.Stats())
	}
	e.SetFaults(0, 0, 0, 0, 0)
	e.ResetStats()
	if r := call(e, "GET", "/v1/customers", nil); r.code != 200 {
		t.Fatalf("after reset: %d", r.code)
	}
	st := e.Stats()
	if st.Requests != 1 || st.ByEndpoint["GET /v1/customers"] != 1 || st.PeakConcurrency < 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	e := small(t, Config{Seed: 1, Objects: 300, Latency: time.Hour})
	srv := httptest.NewServer(e)
	defer srv.Close()
	c := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer sk_test_x123")
	if _, err := c.Do(req); err == nil {
		t.Fatal("an hour of latency answered")
	}
	// The server closes cleanly: the handler returned on cancellation.
}

func TestIdempotentReplay(t *testing.T) {
	e := small(t, Config{Seed: 4})
	form := url.Values{"email": {"idem@example.com"}, "metadata[a]": {"1"}}
	first := mustOK(t, call(e, "POST", "/v1/customers", form, "Idempotency-Key", "k1"))
	again := mustOK(t, call(e, "POST", "/v1/customers", form, "Idempotency-Key", "k1"))
	if string(first.body) != string(again.body) || again.header.Get("Idempotent-Replayed") != "true" || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("replay: %s / %s %v", first.body, again.body, again.header)
	}
	if n := len(pageAll(t, e, "/v1/customers", "email", "idem@example.com")); n != 1 {
		t.Fatalf("%d customers created", n)
	}
	other := call(e, "POST", "/v1/customers", url.Values{"email": {"other@example.com"}}, "Idempotency-Key", "k1")
	if other.code != 400 || other.get("error.type").Str != "idempotency_error" {
		t.Fatalf("different params: %d %s", other.code, other.body)
	}
	// Keys are per account.
	acct := e.Accounts()[1]
	mustOK(t, call(e, "POST", "/v1/customers", url.Values{"email": {"other@example.com"}}, "Idempotency-Key", "k1", "Stripe-Account", acct))
	// An injected 500 loses the answer of a create that ran: the retry with
	// the same key gets the created customer, replayed, and nothing twice.
	e.SetFaults(0, 0, 0, 1, 0)
	lost := url.Values{"email": {"lost@example.com"}}
	f := call(e, "POST", "/v1/customers", lost, "Idempotency-Key", "k2")
	e.SetFaults(0, 0, 0, 0, 0)
	g := mustOK(t, call(e, "POST", "/v1/customers", lost, "Idempotency-Key", "k2"))
	if f.code != 500 || f.header.Get("Stripe-Should-Retry") != "true" || g.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("lost answer: %d then %d %v", f.code, g.code, g.header)
	}
	if got := pageAll(t, e, "/v1/customers", "email", "lost@example.com"); len(got) != 1 || got[0] != g.get("id").Str {
		t.Fatalf("customers after a lost answer: %v, want [%s]", got, g.get("id").Str)
	}
	// Without a key nothing is kept and the failed request did not run.
	e.SetFaults(0, 0, 0, 1, 0)
	h := call(e, "POST", "/v1/customers", url.Values{"email": {"nokey@example.com"}})
	e.SetFaults(0, 0, 0, 0, 0)
	if h.code != 500 || len(pageAll(t, e, "/v1/customers", "email", "nokey@example.com")) != 0 {
		t.Fatalf("failed create without a key: %d, created anyway", h.code)
	}
}

// eventsOf lists the events of one type newest first.
func eventsOf(t *testing.T, e *Emulator, typ string) []gjson.Result {
	t.Helper()
	r := mustOK(t, call(e, "GET", "/v1/events?limit=100&type="+url.QueryEscape(typ), nil))
	return r.get("data").Array()
}

func TestWritesEmitEvents(t *testing.T) {
	e := small(t, Config{Seed: 5})
	c := mustOK(t, call(e, "POST", "/v1/customers", url.Values{"email": {"w@example.com"}, "name": {"Zoë"}, "metadata[tier]": {"gold"}, "metadata[keep]": {"yes"}}))
	id := c.get("id").Str
	if !strings.HasPrefix(id, "cus_") || c.get("metadata.tier").Str != "gold" || c.get("created").Int() != e.Now().Unix() && c.get("created").Int() != e.Now().Unix()-1 {
		t.Fatalf("created %s", c.body)
	}
	if ev := eventsOf(t, e, "customer.created"); len(ev) == 0 || ev[0].Get("data.object.id").Str != id {
		t.Fatalf("no customer.created for %s", id)
	}
	u := mustOK(t, call(e, "POST", "/v1/customers/"+id, url.Values{"metadata[tier]": {""}, "metadata[new]": {"v"}, "name": {"Zoë Ünïcode 🚀"}}))
	if u.get("metadata.tier").Exists() || u.get("metadata.new").Str != "v" || u.get("metadata.keep").Str != "yes" || u.get("name").Str != "Zoë Ünïcode 🚀" {
		t.Fatalf("update %s", u.body)
	}
	ev := eventsOf(t, e, "customer.updated")
	if len(ev) == 0 || ev[0].Get("data.object.id").Str != id {
		t.Fatalf("no customer.updated")
	}
	prev := ev[0].Get("data.previous_attributes")
	if prev.Get("metadata.tier").Str != "gold" || !prev.Get("metadata.new").Exists() || prev.Get("metadata.new").Type != gjson.Null || prev.Get("name").Str != "Zoë" {
		t.Fatalf("previous_attributes %s", prev.Raw)
	}
	if ev[0].Get("data.object.name").Str != "Zoë Ünïcode 🚀" {
		t.Fatalf("event snapshot %s", ev[0].Raw)
	}
	cl := mustOK(t, call(e, "POST", "/v1/customers/"+id, url.Values{"metadata": {""}}))
	if cl.get("metadata").Raw != "{}" {
		t.Fatalf("metadata= did not clear: %s", cl.body)
	}
	// Unknown parameters are named.
	bad := call(e, "POST", "/v1/customers/"+id, url.Values{"nmae": {"x"}})
	if bad.code != 400 || bad.get("error.param").Str != "nmae" || bad.get("error.code").Str != "parameter_unknown" {
		t.Fatalf("unknown param: %d %s", bad.code, bad.body)
	}
	bad = call(e, "POST", "/v1/customers", url.Values{"address[cty]": {"x"}})
	if bad.code != 400 || bad.get("error.param").Str != "address[cty]" {
		t.Fatalf("unknown nested param: %d %s", bad.code, bad.body)
	}
	// Delete.
	d := mustOK(t, call(e, "DELETE", "/v1/customers/"+id, nil))
	if d.get("deleted").Bool() != true || d.get("object").Str != "customer" || d.get("id").Str != id {
		t.Fatalf("delete %s", d.body)
	}
	if ev := eventsOf(t, e, "customer.deleted"); len(ev) == 0 || ev[0].Get("data.object.id").Str != id {
		t.Fatal("no customer.deleted")
	}
	if got := e.DeletedIDs("", "customers"); len(got) != 1 || got[0] != id {
		t.Fatalf("DeletedIDs %v", got)
	}
	if objectIDs(e, "", "customers")[id] {
		t.Fatal("deleted customer still listed")
	}
	if g := mustOK(t, call(e, "GET", "/v1/customers/"+id, nil)); !g.get("deleted").Bool() {
		t.Fatalf("retrieve deleted %s", g.body)
	}
}

func TestWritesOnOtherStreams(t *testing.T) {
	e := small(t, Config{Seed: 6})
	vd := validator{sp: e.sp}
	prod := mustOK(t, call(e, "POST", "/v1/products", url.Values{"name": {"Widget ✨"}}))
	price := mustOK(t, call(e, "POST", "/v1/prices", url.Values{"product": {prod.get("id").Str}, "currency": {"usd"}, "unit_amount": {"1200"}, "recurring[interval]": {"month"}}))
	if price.get("unit_amount").Int() != 1200 || price.get("recurring.interval").Str != "month" || price.get("type").Str != "recurring" {
		t.Fatalf("price %s", price.body)
	}
	if r := call(e, "DELETE", "/v1/prices/"+price.get("id").Str, nil); r.code != 404 {
		t.Fatalf("price delete answered %d", r.code)
	}
	cus := mustOK(t, call(e, "POST", "/v1/customers", url.Values{"email": {"s@example.com"}}))
	sub := mustOK(t, call(e, "POST", "/v1/subscriptions", url.Values{"customer": {cus.get("id").Str}, "items[0][price]": {price.get("id").Str}, "items[0][quantity]": {"2"}}))
	if sub.get("items.data.0.price.id").Str != price.get("id").Str || sub.get("items.data.0.quantity").Int() != 2 || sub.get("status").Str != "active" {
		t.Fatalf("subscription %s", sub.body)
	}
	items := mustOK(t, call(e, "GET", "/v1/subscription_items?subscription="+sub.get("id").Str, nil))
	if len(ids(items)) != 1 {
		t.Fatalf("items %s", items.body)
	}
	cancel := mustOK(t, call(e, "DELETE", "/v1/subscriptions/"+sub.get("id").Str, nil))
	if cancel.get("status").Str != "canceled" {
		t.Fatalf("cancel %s", cancel.body)
	}
	if ev := eventsOf(t, e, "customer.subscription.deleted"); len(ev) == 0 || ev[0].Get("data.object.status").Str != "canceled" {
		t.Fatal("no customer.subscription.deleted")
	}
	if !objectIDs(e, "", "subscriptions")[sub.get("id").Str] {
		t.Fatal("a canceled subscription is still an object")
	}
	coupon := mustOK(t, call(e, "POST", "/v1/coupons", url.Values{"percent_off": {"25"}, "duration": {"once"}}))
	txr := mustOK(t, call(e, "POST", "/v1/tax_rates", url.Values{"display_name": {"VAT"}, "percentage": {"19.5"}, "inclusive": {"false"}}))
	ii := mustOK(t, call(e, "POST", "/v1/invoiceitems", url.Values{"customer": {cus.get("id").Str}, "amount": {"500"}, "currency": {"usd"}}))
	for name, r := range map[string]reply{"product": prod, "price": price, "subscription": sub, "coupon": coupon, "tax_rate": txr, "invoiceitem": ii} {
		if errs := vd.validateJSON(r.body, e.sp.component(name), name); len(errs) > 0 {
			t.Errorf("%s: %v", name, errs)
		}
	}
	pm := e.Objects("", "payment_methods")[0]
	pmID := gjson.GetBytes(pm, "id").Str
	det := mustOK(t, call(e, "POST", "/v1/payment_methods/"+pmID+"/detach", url.Values{}))
	if det.get("customer").Type != gjson.Null {
		t.Fatalf("detach %s", det.body)
	}
	if ev := eventsOf(t, e, "payment_method.detached"); len(ev) == 0 || ev[0].Get("data.object.id").Str != pmID {
		t.Fatal("no payment_method.detached")
	}
	if miss := call(e, "POST", "/v1/subscriptions", url.Values{"items[0][price]": {price.get("id").Str}}); miss.code != 400 || miss.get("error.param").Str != "customer" {
		t.Fatalf("missing customer: %d %s", miss.code, miss.body)
	}
}

func TestMutateChangesStreamsWithEvents(t *testing.T) {
	e := small(t, Config{Seed: 7})
	before := e.Counts("")
	for _, s := range []string{"customers", "products", "invoices", "subscriptions", "charges"} {
		if err := e.Mutate("", s, 4, 6, 2); err != nil {
			t.Fatalf("mutate %s: %v", s, err)
		}
	}
	after := e.Counts("")
	if after["customers"] != before["customers"]+2 || after["invoices"] != before["invoices"]+2 || after["charges"] != before["charges"]+4 || after["subscriptions"] != before["subscriptions"]+4 {
		t.Fatalf("counts before %v after %v", before, after)
	}
	if after["invoices_lines"] <= before["invoices_lines"] {
		t.Fatal("new invoices came without lines")
	}
	if len(e.DeletedIDs("", "customers")) != 2 || len(e.DeletedIDs("", "products")) != 2 {
		t.Fatal("deletes not recorded")
	}
	for _, typ := range []string{"customer.created", "customer.updated", "customer.deleted", "product.deleted", "invoice.created", "charge.updated", "customer.subscription.deleted"} {
		ev := eventsOf(t, e, typ)
		if len(ev) == 0 || ev[0].Get("created").Int() < e.Now().Unix()-2 {
			t.Errorf("no fresh %s event", typ)
		}
	}
	// The admin endpoint does the same, form or JSON.
	r := call(e, "POST", "/_emulator/mutate", url.Values{"stream": {"customers"}, "creates": {"3"}})
	if r.code != 200 || e.Counts("")["customers"] != after["customers"]+3 {
		t.Fatalf("admin mutate: %d %s", r.code, r.body)
	}
	req := httptest.NewRequest("POST", "/_emulator/mutate", strings.NewReader(`{"stream":"products","updates":2,"account":"`+e.Accounts()[1]+`"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("admin JSON mutate: %d %s", w.Code, w.Body)
	}
	if err := e.Mutate("", "no_such_stream", 1, 0, 0); err == nil {
		t.Fatal("unknown stream accepted")
	}
	var objs []json.RawMessage
	o := call(e, "GET", "/_emulator/objects?stream=customers", nil)
	if err := json.Unmarshal(o.body, &objs); err != nil || len(objs) != e.Counts("")["customers"] {
		t.Fatalf("admin objects: %v %d", err, len(objs))
	}
}

func TestEventsRetentionAndFilters(t *testing.T) {
	e := small(t, Config{Seed: 8})
	all := pageAll(t, e, "/v1/events")
	if len(all) == 0 {
		t.Fatal("no events")
	}
	lo := e.Now().Unix() - 30*86400
	for _, ev := range e.Objects("", "events") {
		if gjson.GetBytes(ev, "created").Int() < lo {
			t.Fatalf("event older than 30 days listed: %s", gjson.GetBytes(ev, "id").Str)
		}
	}
	wild := pageAll(t, e, "/v1/events", "type", "customer.*")
	exact := pageAll(t, e, "/v1/events", "type", "customer.created")
	if len(wild) <= len(exact) || len(exact) == 0 {
		t.Fatalf("customer.* %d, customer.created %d", len(wild), len(exact))
	}
	for _, id := range wild {
		r := mustOK(t, call(e, "GET", "/v1/events/"+id, nil))
		if !strings.HasPrefix(r.get("type").Str, "customer.") {
			t.Fatalf("customer.* matched %s", r.get("type").Str)
		}
	}
	two := pageAll(t, e, "/v1/events?types[]=customer.created&types[]=invoice.created")
	if len(two) <= len(exact) {
		t.Fatalf("types[] %d", len(two))
	}
	// A change now, then 31 days later everything before it is gone.
	if err := e.Mutate("", "customers", 0, 1, 0); err != nil {
		t.Fatal(err)
	}
	r := call(e, "POST", "/_emulator/advance?seconds="+fmt.Sprint(31*86400), nil)
	if r.code != 200 {
		t.Fatalf("advance: %d", r.code)
	}
	if left := pageAll(t, e, "/v1/events"); len(left) != 0 {
		t.Fatalf("%d events survive 31 days", len(left))
	}
	if g := call(e, "GET", "/v1/events/"+all[0], nil); g.code != 404 {
		t.Fatalf("expired event retrievable: %d", g.code)
	}
	if err := e.Mutate("", "customers", 1, 0, 0); err != nil {
		t.Fatal(err)
	}
	if left := pageAll(t, e, "/v1/events"); len(left) != 1 {
		t.Fatalf("%d fresh events", len(left))
	}
}

func TestSearch(t *testing.T) {
	e := small(t, Config{Seed: 9})
	c := mustOK(t, call(e, "POST", "/v1/customers", url.Values{"email": {"findme@example.com"}, "name": {"Søren Kierkegaard"}, "metadata[plan]": {"gold"}}))
	id := c.get("id").Str
	search := func(q string, extra ...string) reply {
		return call(e, "GET", withQuery("/v1/customers/search", append([]string{"query", q}, extra...)...), nil)
	}
	for _, q := range []string{"email:'findme@example.com'", "name~'Kierke'", "metadata['plan']:'gold'", "email:'findme@example.com' AND metadata['plan']:'gold'", "email:'nope@x.y' OR name:'Søren Kierkegaard'", fmt.Sprintf("created>=%d AND email~'findme'", c.get("created").Int())} {
		r := mustOK(t, search(q))
		if got := ids(r); len(got) != 1 || got[0] != id || r.get("object").Str != "search_result" {
			t.Errorf("%s → %s", q, r.body)
		}
	}
	neg := mustOK(t, search("-email:'findme@example.com' AND name~'Kierke'"))
	if len(ids(neg)) != 0 {
		t.Errorf("negation matched %v", ids(neg))
	}
	// Paging through every customer with created>0.
	n, page := 0, ""
	for i := 0; i < 1000; i++ {
		extra := []string{"limit", "100", "expand[]", "total_count"}
		if page != "" {
			extra = append(extra, "page", page)
		}
		r := mustOK(t, search("created>0", extra...))
		n += len(ids(r))
		if r.get("total_count").Int() != int64(e.Counts("")["customers"]) {
			t.Fatalf("total_count %d", r.get("total_count").Int())
		}
		if !r.get("has_more").Bool() {
			break
		}
		page = r.get("next_page").Str
	}
	if n != e.Counts("")["customers"] {
		t.Fatalf("search paged %d of %d", n, e.Counts("")["customers"])
	}
	for _, q := range []string{"email:'a' AND name:'b' OR phone:'c'", "name~'ab'", "email:unquoted", "colour:'red'", "email:", ""} {
		r := search(q)
		if r.code != 400 || r.get("error.param").Str != "query" {
			t.Errorf("%q: %d %s", q, r.code, r.body)
		}
	}
	if r := mustOK(t, call(e, "GET", "/v1/charges/search?query="+url.QueryEscape("status:'succeeded' AND amount>100")+"&limit=5", nil)); len(ids(r)) != 5 {
		t.Errorf("charges search %s", r.body)
	}
}

func TestEmptyCatalogStreams(t *testing.T) {
	e := sharedEmulator(t)
	if len(e.catStreams) == 0 {
		t.Skip("the catalog lists no other streams yet")
	}
	cus := ids(mustOK(t, call(e, "GET", "/v1/customers?limit=1", nil)))[0]
	for _, s := range e.catStreams {
		if s.Parent == "customers" && !s.ParentInQuery {
			u := replaceParam(s.Path, cus)
			if r := call(e, "GET", u, nil); r.code != 200 || r.get("object").Str != "list" {
				t.Errorf("%s: %d %s", u, r.code, r.body)
			}
			u = replaceParam(s.Path, "cus_missing")
			if r := call(e, "GET", u, nil); r.code != 404 || r.get("error.code").Str != "resource_missing" {
				t.Errorf("%s: %d %s", u, r.code, r.body)
			}
		}
	}
}

func TestServesOverTCP(t *testing.T) {
	e := small(t, Config{Seed: 1, Objects: 300})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e}
	go srv.Serve(ln)
	defer srv.Close()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/customers?limit=3", nil)
	req.SetBasicAuth("sk_test_basic123", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Request-Id"), "req_") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}
