package emulator

import (
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
)

func TestManyTestClocks(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := small(t, Config{Seed: 8, Objects: 1500, TestClocks: 40, Shape: ShapeSmallStreams, Now: now})
	clocks := pageAll(t, e, "/v1/test_helpers/test_clocks")
	if len(clocks) != 40 {
		t.Fatalf("%d test clocks, want 40", len(clocks))
	}
	plainCust := map[string]bool{}
	for _, id := range pageAll(t, e, "/v1/customers") {
		plainCust[id] = true
	}
	plainSubs := map[string]bool{}
	for _, id := range pageAll(t, e, "/v1/subscriptions", "status", "all") {
		plainSubs[id] = true
	}
	plainQuotes := map[string]bool{}
	for _, id := range pageAll(t, e, "/v1/quotes") {
		plainQuotes[id] = true
	}
	clocked, quotes := 0, 0
	for _, c := range clocks {
		clock := mustOK(t, call(e, "GET", "/v1/test_helpers/test_clocks/"+c, nil))
		created := clock.get("created").Int()
		if created > now.Unix() || created < now.Unix()-7*86400 || clock.get("deletes_after").Int() != created+7*86400 {
			t.Errorf("clock %s created %d deletes after %d: Stripe deletes clocks a week after creation", c, created, clock.get("deletes_after").Int())
		}
		custs := pageAll(t, e, "/v1/customers", "test_clock", c)
		if len(custs) < 1 || len(custs) > 3 {
			t.Errorf("clock %s has %d customers; Stripe allows 1 to 3", c, len(custs))
		}
		clocked += len(custs)
		mine := map[string]bool{}
		for _, id := range custs {
			mine[id] = true
			if plainCust[id] {
				t.Errorf("customer %s of clock %s is in the plain list", id, c)
			}
			if got := mustOK(t, call(e, "GET", "/v1/customers/"+id, nil)).get("test_clock").Str; got != c {
				t.Errorf("customer %s: test_clock %q, want %s", id, got, c)
			}
		}
		subs := pageAll(t, e, "/v1/subscriptions", "status", "all", "test_clock", c)
		if len(subs) < len(custs) {
			t.Errorf("clock %s: %d subscriptions for %d customers", c, len(subs), len(custs))
		}
		for _, id := range subs {
			s := mustOK(t, call(e, "GET", "/v1/subscriptions/"+id, nil))
			if plainSubs[id] || !mine[s.get("customer").Str] || s.get("test_clock").Str != c {
				t.Errorf("subscription %s of clock %s: plain %v, customer %s", id, c, plainSubs[id], s.get("customer").Str)
			}
		}
		for _, id := range pageAll(t, e, "/v1/quotes", "test_clock", c) {
			quotes++
			if plainQuotes[id] {
				t.Errorf("quote %s of clock %s is in the plain list", id, c)
			}
		}
	}
	if got, want := len(e.Objects("", "customers")), len(plainCust)+clocked; got != want {
		t.Errorf("%d customers, %d plain + %d under clocks", got, len(plainCust), clocked)
	}
	if clocked < 40 || quotes == 0 {
		t.Errorf("%d customers and %d quotes under 40 clocks", clocked, quotes)
	}
	if n := len(pageAll(t, e, "/v1/test_helpers/test_clocks", "limit", "100")); n != 40 {
		t.Errorf("paged %d clocks", n)
	}
}

func TestNoTestClocks(t *testing.T) {
	e := small(t, Config{Seed: 8, Objects: 600, TestClocks: -1})
	if n := len(e.Objects("", "test_helpers_test_clocks")); n != 0 {
		t.Fatalf("%d test clocks, want none", n)
	}
	if got, plain := len(e.Objects("", "customers")), len(pageAll(t, e, "/v1/customers")); got != plain {
		t.Fatalf("%d customers, %d listed", got, plain)
	}
}

// topLevelFilled are the top-level lists the small-streams shape fills:
// all but the connected accounts (the emulator's own accounts) and lists
// that need a parameter no stream supplies.
func topLevelFilled() []catalog.Stream {
	var out []catalog.Stream
	for _, s := range catalog.All() {
		if s.Parent == "" && s.Name != "accounts" && len(s.RequiredParams) == 0 {
			out = append(out, s)
		}
	}
	return out
}

func TestSmallStreamsFillEveryTopLevelList(t *testing.T) {
	e := sharedEmulator(t)
	plain := small(t, Config{Seed: 42, Objects: 1500})
	filled := 0
	for _, s := range topLevelFilled() {
		n := e.Counts("")[s.Name]
		if n == 0 {
			t.Errorf("%s: no objects in the small-streams shape", s.Name)
			continue
		}
		filled++
		if d := defByName[s.Name]; d != nil && d.generic {
			// Quotes under test clocks are extra; the plain list holds 2 to 5.
			if n := len(pageAll(t, e, listings(e, "", d)[0])); n < 2 || n > 5 {
				t.Errorf("%s: %d objects, want 2 to 5", s.Name, n)
			}
			if m := plain.Counts("")[s.Name]; m != 0 {
				t.Errorf("%s: %d objects in the default shape, want none", s.Name, m)
			}
		}
	}
	if filled < 70 {
		t.Errorf("%d top-level lists hold objects, want about 70", filled)
	}
	if _, err := New(Config{Shape: "huge"}); err == nil || !strings.Contains(err.Error(), "small-streams") {
		t.Errorf("unknown shape: %v", err)
	}
}

func TestUnpaginatedListReturnsEverything(t *testing.T) {
	e := sharedEmulator(t)
	want := e.Counts("")["reporting_report_types"]
	r := mustOK(t, call(e, "GET", "/v1/reporting/report_types", nil))
	if got := len(ids(r)); got != want || want == 0 || r.get("has_more").Bool() {
		t.Fatalf("%d of %d report types, has_more %v", got, want, r.get("has_more").Bool())
	}
	if r := call(e, "GET", "/v1/reporting/report_types?limit=1", nil); r.code != 400 || r.get("error.param").Str != "limit" {
		t.Fatalf("limit on an unpaginated list: %d %s", r.code, r.body)
	}
	all := pageAll(t, e, "/v1/tax/registrations", "status", "all")
	if len(all) != e.Counts("")["tax_registrations"] {
		t.Fatalf("status=all listed %d of %d tax registrations", len(all), e.Counts("")["tax_registrations"])
	}
}

func TestMutateChildren(t *testing.T) {
	e := small(t, Config{Seed: 12, Objects: 1500})
	before := e.ChildCounts("", "customers_tax_ids")
	total := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	if err := e.Mutate("", "customers_tax_ids", 3, 0, 0); err != nil {
		t.Fatal(err)
	}
	after := e.ChildCounts("", "customers_tax_ids")
	if total(after) != total(before)+3 || len(e.Objects("", "customers_tax_ids")) != total(after) {
		t.Fatalf("tax ids %d → %d", total(before), total(after))
	}
	created := eventsOf(t, e, "customer.tax_id.created")
	if len(created) < 3 {
		t.Fatalf("%d customer.tax_id.created events", len(created))
	}
	for _, ev := range created[:3] {
		obj := ev.Get("data.object")
		cus := obj.Get("customer").Str
		if cus == "" || obj.Get("owner.customer").Str != cus {
			t.Fatalf("created tax id %s", obj.Raw)
		}
		got := ids(mustOK(t, call(e, "GET", "/v1/customers/"+cus+"/tax_ids", nil)))
		if !strings.Contains(strings.Join(got, ","), obj.Get("id").Str) {
			t.Fatalf("tax id %s not listed under %s: %v", obj.Get("id").Str, cus, got)
		}
	}
	if err := e.Mutate("", "customers_tax_ids", 0, 5, 2); err != nil {
		t.Fatal(err)
	}
	if n := total(e.ChildCounts("", "customers_tax_ids")); n != total(after)-2 {
		t.Fatalf("after 2 deletes %d tax ids, want %d (updates of objects without metadata are ignored)", n, total(after)-2)
	}
	if got := len(eventsOf(t, e, "customer.tax_id.deleted")); got < 2 {
		t.Fatalf("%d customer.tax_id.deleted events", got)
	}
	// A subscription item has no events: its change is the subscription's.
	n := len(eventsOf(t, e, "customer.subscription.updated"))
	if err := e.Mutate("", "subscriptions_items", 0, 1, 0); err != nil {
		t.Fatal(err)
	}
	ups := eventsOf(t, e, "customer.subscription.updated")
	if len(ups) != n+1 {
		t.Fatalf("%d customer.subscription.updated events after an item update, want %d", len(ups), n+1)
	}
	found := false
	for _, it := range ups[0].Get("data.object.items.data").Array() {
		found = found || it.Get("metadata.emulator_rev").Exists()
	}
	sub := ups[0].Get("data.object.id").Str
	live := mustOK(t, call(e, "GET", "/v1/subscription_items?subscription="+sub, nil))
	if !found || !strings.Contains(string(live.body), "emulator_rev") {
		t.Fatalf("the updated item is not in its subscription's event or list: %s", ups[0].Get("data.object.items").Raw)
	}
	if got := gjson.GetBytes(live.body, "data.#").Int(); got == 0 {
		t.Fatal("no items listed")
	}
}

// TestCloneAnnouncesChildren: a customer created with tax ids emits
// customer.created and then a customer.tax_id.created for each, whose
// customer and owner name the new customer.
func TestCloneAnnouncesChildren(t *testing.T) {
	e := small(t, Config{Seed: 14, Objects: 1500})
	before := len(e.Objects("", "customers_tax_ids"))
	old := objectIDs(e, "", "customers")
	if err := e.Mutate("", "customers", 60, 0, 0); err != nil {
		t.Fatal(err)
	}
	added := len(e.Objects("", "customers_tax_ids")) - before
	if added == 0 {
		t.Fatal("no new customer has a tax id; clone more customers")
	}
	created := map[string]bool{}
	for _, ev := range eventsOf(t, e, "customer.created") {
		if id := ev.Get("data.object.id").Str; !old[id] {
			created[id] = true
		}
	}
	n := 0
	for _, ev := range eventsOf(t, e, "customer.tax_id.created") {
		obj := ev.Get("data.object")
		if !created[obj.Get("customer").Str] {
			continue
		}
		n++
		if obj.Get("owner.customer").Str != obj.Get("customer").Str {
			t.Errorf("tax id %s: customer %s, owner %s", obj.Get("id").Str, obj.Get("customer").Str, obj.Get("owner.customer").Str)
		}
	}
	if n != added {
		t.Errorf("%d customer.tax_id.created events for %d tax ids of new customers", n, added)
	}
}
