package bench

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/emulator"
)

// TestFloorCountsEveryListing checks the floor of a small-streams account
// with test clocks against counts made independently from the objects.
func TestFloorCountsEveryListing(t *testing.T) {
	l, err := startLocal(emulator.Config{Seed: 3, Objects: 3000, TestClocks: 3, Shape: emulator.ShapeSmallStreams, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := computeFloor(l, everyStream(), 100, 25, 300*time.Millisecond)
	counts := l.Counts("")

	plainCustomers := 0
	for _, o := range l.Objects("", "customers") {
		if gjson.GetBytes(o, "test_clock").Str == "" {
			plainCustomers++
		}
	}
	var lineRest int64
	for _, o := range l.Objects("", "invoices") {
		if gjson.GetBytes(o, "lines.has_more").Bool() {
			n := gjson.GetBytes(o, "lines.total_count").Int()
			if n == 0 {
				n = int64(l.ChildCounts("", "invoices_lines")[gjson.GetBytes(o, "id").Str])
			}
			lineRest += (n - 10 + 99) / 100
		}
	}
	if lineRest == 0 {
		t.Fatal("no invoice has more than ten lines; the account is too small for this test")
	}
	for _, c := range []struct {
		endpoint string
		want     int64
	}{
		// The plain listing and one per clock.
		{"GET /v1/customers", ceilDiv(int64(plainCustomers), 100) + 3},
		// One request per customer, those under clocks included.
		{"GET /v1/customers/{id}/payment_methods", int64(counts["customers"])},
		{"GET /v1/entitlements/active_entitlements", int64(counts["customers"])},
		// Embedded lists: the remainders only.
		{"GET /v1/invoices/{id}/lines", lineRest},
		{"GET /v1/customers/{id}/tax_ids", 0},
		// Lists of the same objects as a top-level list: nothing.
		{"GET /v1/customers/{id}/subscriptions", 0},
		{"GET /v1/charges/{id}/refunds", 0},
		// The clock list, once, as the test clock stream.
		{"GET /v1/test_helpers/test_clocks", 1},
		// A list of a few objects: one request; quotes once per clock more.
		{"GET /v1/billing/alerts", 1},
		{"GET /v1/quotes", 4},
		// The events backfill and the cursor read before it.
		{"GET /v1/events", ceilDiv(int64(counts["events"]), 100) + 1},
		// Needs a parameter no stream supplies.
		{"GET /v1/billing/meters/{id}/event_summaries", 0},
	} {
		if got := f.ByEndpoint[c.endpoint]; got != c.want {
			t.Errorf("%s: floor counts %d requests, want %d", c.endpoint, got, c.want)
		}
	}
	if f.TestClocks != 3 || f.ClockListings != 9 {
		t.Errorf("%d clocks, %d per-clock listings; want 3 and 9", f.TestClocks, f.ClockListings)
	}
	var sum int64
	for _, n := range f.ByStream {
		sum += n
	}
	if sum != f.Pages || f.Pages == 0 {
		t.Errorf("per-stream requests add up to %d, total %d", sum, f.Pages)
	}
	if f.Seconds < float64(f.Pages)/100 || f.Seconds < float64(f.EndpointPages)/25 || f.Seconds < float64(f.SequentialPages)*0.3 {
		t.Errorf("floor %.2fs below one of its terms: %+v", f.Seconds, f)
	}
}

func TestAllocateAddsUp(t *testing.T) {
	for _, n := range []int{0, 1, 10, 37, 1000, 10000} {
		got := allocate(changePlan, n)
		sum := 0
		for i, k := range got {
			sum += k
			c, u, d := changePlan[i].split(k)
			if c+u+d != k || (!changePlan[i].creates && c > 0) || (!changePlan[i].updates && u > 0) || (!changePlan[i].deletes && d > 0) {
				t.Errorf("%s: %d changes split into %d creates, %d updates, %d deletes", changePlan[i].stream, k, c, u, d)
			}
		}
		if sum != n {
			t.Errorf("allocate(%d) gives %d changes", n, sum)
		}
	}
}
